"""``screentime demo``: the whole pipeline on two synthetic cartoons, offline, in well under a minute."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .evaluate import evaluate_frames, format_interval
from .fileio import write_csv
from .labels import parse_label
from .pipeline import predict, train
from .synthetic import make_cartoon

TRAIN_SECONDS, TEST_SECONDS, VIDEO_FPS = 90.0, 60.0, 25.0
LABEL_EVERY_S = 1.0
PREDICT_FPS = 5.0


@dataclass
class DemoResult:
    """The demo's comparison of predicted and true screen time on the test video."""

    table: pd.DataFrame  # character, predicted_s, true_s, error_pct_of_video
    accuracy: float
    out_dir: Path
    accuracy_interval: dict[str, Any] | None = None  # helpers.evaluate's, resampling the test video's shots


def true_screen_time(truth: pd.DataFrame, fps: float) -> dict[str, float]:
    """Seconds each character is on screen according to per-frame truth."""
    seconds: dict[str, float] = {}
    for label in truth["label"]:
        for name in parse_label(label, "truth") or ():
            seconds[name] = seconds.get(name, 0.0) + 1.0 / fps
    return seconds


def run_demo(out_dir: str | os.PathLike = "data/demo", seed: int = 0) -> DemoResult:
    """Generate train/test cartoons, label the train one ~1 frame per second, train, predict, score."""
    out = Path(out_dir)
    train_truth = make_cartoon(out / "train.mp4", seconds=TRAIN_SECONDS, fps=VIDEO_FPS, seed=seed + 1)
    test_truth = make_cartoon(out / "test.mp4", seconds=TEST_SECONDS, fps=VIDEO_FPS, seed=seed + 2)
    write_csv(train_truth, out / "train_truth.csv")
    write_csv(test_truth, out / "test_truth.csv")
    step = int(round(VIDEO_FPS * LABEL_EVERY_S))
    write_csv(train_truth.iloc[::step], out / "train_labels.csv")

    train(out / "train.mp4", out / "train_labels.csv", out / "model", backbone="colour", seed=seed)
    result = predict(out / "test.mp4", out / "model", out / "predict", fps=PREDICT_FPS)
    scores = evaluate_frames(result.predictions, test_truth, result.duration_s, result.shot_starts_s())

    truth_s = true_screen_time(test_truth, VIDEO_FPS)
    table = result.screentime[["character", "seconds"]].rename(columns={"seconds": "predicted_s"})
    table["true_s"] = [round(truth_s.get(c, 0.0), 3) for c in table["character"]]
    table["error_pct_of_video"] = (100 * (table["predicted_s"] - table["true_s"]).abs() / result.duration_s).round(2)
    return DemoResult(table, scores["accuracy"], out, scores["accuracy_interval"])


def format_demo(result: DemoResult) -> str:
    """What ``screentime demo`` prints."""
    return "\n".join([
        f"Synthetic test video ({TEST_SECONDS:.0f} s), trained on {TRAIN_SECONDS:.0f} s labelled once per second, "
        f"predicted at {PREDICT_FPS:g} frames per second:",
        result.table.to_string(index=False),
        f"frame accuracy: {100 * result.accuracy:.1f}%",
        *format_interval(result.accuracy_interval),
        f"outputs in {result.out_dir}/ (model/, predict/predictions.csv, predict/screentime.csv, predict/segments.csv)",
    ])
