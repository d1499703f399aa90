"""Shared fixtures: real synthetic videos written once per test session, and a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from helpers.fileio import write_csv
from helpers.synthetic import make_cartoon

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass
class Cartoon:
    video: Path
    truth: pd.DataFrame
    truth_csv: Path


def _cartoon(folder: Path, name: str, seconds: float, seed: int, fps: float = 25.0) -> Cartoon:
    video = folder / f"{name}.mp4"
    truth = make_cartoon(video, seconds=seconds, fps=fps, seed=seed)
    truth_csv = folder / f"{name}_truth.csv"
    write_csv(truth, truth_csv)
    return Cartoon(video, truth, truth_csv)


@pytest.fixture(scope="session", autouse=True)
def feature_cache(tmp_path_factory) -> Path:
    """Tests write the feature cache into their own folder, never the user's."""
    folder = tmp_path_factory.mktemp("cache")
    os.environ["SCREENTIME_CACHE"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def videos(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="session")
def train_cartoon(videos) -> Cartoon:
    """60 s of synthetic cartoon to label and train on."""
    return _cartoon(videos, "train", 60.0, seed=11)


@pytest.fixture(scope="session")
def test_cartoon(videos) -> Cartoon:
    """A different 30 s cartoon to predict (never trained on)."""
    return _cartoon(videos, "test", 30.0, seed=12)


@pytest.fixture(scope="session")
def short_cartoon(videos) -> Cartoon:
    """A short clip for sampling and bad-input tests."""
    return _cartoon(videos, "short", 6.0, seed=3)


@pytest.fixture(scope="session")
def train_labels(videos, train_cartoon) -> Path:
    """Labels a user would make: one frame per second of the train video."""
    path = videos / "train_labels.csv"
    write_csv(train_cartoon.truth.iloc[::25], path)
    return path


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, train_cartoon, train_labels) -> Path:
    """A model trained once per session on the train cartoon's labels (default backbone and head).

    Tests read it and never change it (tests that retrain train their own)."""
    from helpers.pipeline import train

    folder = tmp_path_factory.mktemp("shared") / "model"
    train(train_cartoon.video, train_labels, folder)
    return folder


@dataclass
class Run:
    status: int
    out: str
    err: str


def screentime(*args: str | os.PathLike, cwd: Path | None = None) -> Run:
    """Run the installed ``screentime`` command as a user would."""
    proc = subprocess.run([sys.executable, "-m", "helpers", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=600)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def assert_one_line_error(run: Run, *fragments: str, status: int | None = None) -> None:
    """The command failed with exactly one line on stderr mentioning every fragment, no traceback."""
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert run.status != 0, run
    if status is not None:
        assert run.status == status, run
    assert "Traceback" not in run.err, run.err
    errors = [line for line in lines if line.startswith("screentime: error:")]
    assert len(errors) == 1, lines
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
