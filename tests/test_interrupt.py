"""Ctrl-C during predict or train: one line, previous outputs intact, and the re-run resumes from the cache."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers.fileio import write_csv
from helpers.pipeline import train

from .terminal import run_on_terminal


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory, train_cartoon, train_labels):
    """VGG16 with random weights at 64 px (saved in the folder, so its features are cacheable): ~60 frames/s."""
    folder = tmp_path_factory.mktemp("slow") / "model"
    train(train_cartoon.video, train_labels, folder, backbone="vgg16", weights=None, input_size=64)
    return folder


def interrupt_when(args: list, marker: bytes, cache, delay: float = 3.0) -> tuple[int, str]:
    """Run ``screentime ARGS`` with stderr on a terminal; press Ctrl-C ``delay`` s after ``marker`` shows."""
    pressed: list[float] = []  # [when to press], then [when to press, when pressed]

    def press_ctrl_c(output: bytes, proc) -> None:
        if not pressed and marker in output:
            pressed.append(time.time() + delay)
        if len(pressed) == 1 and pressed[0] <= time.time():
            proc.send_signal(signal.SIGINT)
            pressed.append(time.time())

    status, output = run_on_terminal(args, {"SCREENTIME_CACHE": str(cache)}, press_ctrl_c)
    assert len(pressed) == 2, f"never interrupted: {output[-500:]}"
    return status, output


def cached_rows(cache) -> int:
    import numpy as np

    files = list(cache.rglob("features-*.npz"))
    return sum(len(np.load(f)["frames"]) for f in files)


def test_ctrl_c_during_predict(tmp_path, slow_model, test_cartoon):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("previous results\n")
    status, err = interrupt_when(["predict", test_cartoon.video, "--model", slow_model, "--out", out, "--fps", "all"],
                                 b"classifying", tmp_path / "cache")
    assert status == 130, err
    assert "screentime: interrupted" in err and "Traceback" not in err
    assert (out / "predictions.csv").read_text() == "previous results\n"
    done = cached_rows(tmp_path / "cache")
    assert 0 < done < 750  # the frames computed before Ctrl-C are kept

    rerun = subprocess.run([sys.executable, "-m", "helpers", "predict", str(test_cartoon.video), "--model",
                            str(slow_model), "--out", str(out), "--fps", "all"], capture_output=True, text=True,
                           env={**os.environ, "SCREENTIME_CACHE": str(tmp_path / "cache")})
    assert rerun.returncode == 0, rerun.stderr
    assert f"750 frames classified ({done} from the feature cache)" in rerun.stdout


def test_ctrl_c_during_train(tmp_path, slow_model, train_cartoon):
    write_csv(train_cartoon.truth, tmp_path / "every_frame.csv")  # 1500 labels: long enough to interrupt
    before = {p.name: p.read_bytes() for p in slow_model.iterdir()}
    status, err = interrupt_when(["train", "--video", train_cartoon.video, "--labels", tmp_path / "every_frame.csv",
                                  "--out", slow_model, "--backbone", slow_model / "backbone.keras"],
                                 b"computing", tmp_path / "cache")
    assert status == 130, err
    assert "screentime: interrupted" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in slow_model.iterdir()} == before  # the old model is untouched
    assert 0 < cached_rows(tmp_path / "cache") < 1500
