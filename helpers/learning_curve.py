"""Learning curve: accuracy on a test video against the number of labelled frames trained on.

Each point is a real ``train`` + ``predict`` on a nested subset of the labels, spread evenly in
time (never a random split of neighbouring frames), scored against the test video's truth.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ScreentimeError, UsageError
from .evaluate import evaluate_frames, read_truth
from .fileio import write_csv
from .labels import format_label


#: Learning-curve sizes double from here up to (and always including) all the labels.
FIRST_SIZE = 5
#: Nested orders per learning curve, each starting at a different labelled frame.
REPEATS = 3


def default_sizes(n_labels: int) -> list[int]:
    """5, 10, 20, 40, ... below ``n_labels``, then ``n_labels`` itself."""
    sizes, size = [], FIRST_SIZE
    while size < n_labels:
        sizes.append(size)
        size *= 2
    return [*sizes, n_labels]


def parse_sizes(text: str) -> list[int]:
    """``"5,10,20"`` -> [5, 10, 20] (sorted, without repeats); one clear line when it is not that."""
    try:
        sizes = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise UsageError(f"--sizes must be whole numbers joined with commas, like 5,10,20; not {text!r}") from None
    if not sizes:
        raise UsageError("--sizes is empty; give numbers of labelled frames like 5,10,20")
    return sizes


def check_sizes(sizes: Sequence[int], n_labels: int, labels_source: str) -> list[int]:
    """The sizes, sorted, if each is a possible number of training labels (2 to ``n_labels``)."""
    if n_labels < 2:
        raise ScreentimeError(f"labels file {labels_source} has {n_labels} usable labelled frame(s); "
                              "a learning curve needs at least 2")
    wrong = [s for s in sizes if not 2 <= s <= n_labels]
    if wrong:
        raise ScreentimeError(f"learning-curve size {wrong[0]} is not possible: {labels_source} has {n_labels} "
                              f"usable labelled frames; use sizes from 2 to {n_labels}")
    return sorted({int(s) for s in sizes})


def offset_starts(n_labels: int, smallest: int, repeats: int) -> list[int]:
    """Where each nested order starts (positions in time order): spread over the first gap of the
    smallest subset, so the repeats' small subsets differ; duplicates removed."""
    gap = n_labels / max(1, smallest)
    return sorted({min(n_labels - 1, int(r * gap / repeats)) for r in range(max(1, repeats))})


def nested_order(times: Sequence[float], start: int) -> list[int]:
    """Positions of all labelled frames, each next one farthest in time from those before
    (the labelling widget's order before a model helps): every prefix is spread evenly in time."""
    from .active import farthest_in_time

    return [start, *farthest_in_time(np.asarray(times, dtype=float), range(len(times)), chosen=[start])]


def label_times(table: pd.DataFrame) -> np.ndarray:
    """Each labelled frame's time: ``time_s`` when every label has one, else the frame number (the
    same order and, at a constant frame rate, the same spacing)."""
    times = pd.to_numeric(table["time_s"], errors="coerce").to_numpy(float)
    return times if np.isfinite(times).all() else table["frame"].to_numpy(float)


def why_untrainable(names: Sequence[frozenset[str]]) -> str | None:
    """Why ``train`` would refuse these labels (no character at all, or one shown on every frame); else None."""
    characters = sorted(set().union(*names))
    if not characters:
        return "no labelled frame shows a character"
    for name in characters:
        if all(name in n for n in names):
            return f"every labelled frame shows {name}"
    return None


def _train_and_score(subset: pd.DataFrame, train_video: str | os.PathLike, test_video: str | os.PathLike,
                     truth: pd.DataFrame, work: Path, fps: float | None, training: dict[str, Any]) -> dict[str, Any]:
    """Train on ``subset`` (frame, label), predict ``test_video``, score it: one learning-curve point."""
    from .pipeline import predict, train

    labels_csv = work / "labels.csv"
    write_csv(subset, labels_csv)
    # Small subsets are the point here: no warning that validation could not run (docs/evaluate.md says so).
    train(train_video, labels_csv, work / "model", warn_unvalidated=False, **training)
    result = predict(test_video, work / "model", work / "predict", fps)
    scores = evaluate_frames(result.predictions, truth, result.duration_s)
    return {"accuracy": scores["accuracy"], "accuracy_raw": scores.get("accuracy_raw", math.nan),
            "frames_scored": scores["frames_scored"]}


def learning_curve(train_video: str | os.PathLike, labels: str | os.PathLike, test_video: str | os.PathLike,
                   truth: str | os.PathLike | pd.DataFrame, sizes: Sequence[int] | None = None, *,
                   backbone: str = "colour", head: str = "logistic", weights: str | None = "imagenet",
                   input_size: int | None = None, fps: float | None = 1.0, repeats: int = REPEATS,
                   classes: list[str] | None = None, frames_csv: str | os.PathLike | None = None,
                   seed: int = 0) -> pd.DataFrame:
    """Frame accuracy on ``test_video`` after training on nested subsets of the labels of ``train_video``.

    Subsets are prefixes of a farthest-point order in time (never a random split), so each is spread
    evenly over the labelled stretch and each larger one contains the smaller ones. ``repeats`` orders
    start at different labelled frames; identical subsets (e.g. all the labels) are trained once.
    Each point is a real ``pipeline.train`` and ``pipeline.predict`` in a temporary folder (features
    come from the cache after the first). A subset that ``train`` would refuse (no character, or one
    on every frame) is a row with NaN accuracy and the reason in ``note``.

    Returns one row per trained subset: labels, repeat, start_frame (the labelled frame its order
    starts at), accuracy, accuracy_raw, frames_scored, seconds (train + predict), note.
    """
    from .pipeline import load_training_labels
    from .video import VideoStream

    truth_table = read_truth(truth)
    VideoStream(test_video)  # a bad test video fails now, not after the training
    table = load_training_labels(labels, train_video, classes, frames_csv).table.sort_values("frame")
    table = table.reset_index(drop=True)
    sizes = check_sizes(sizes or default_sizes(len(table)), len(table), str(labels))
    training = {"backbone": backbone, "head": head, "weights": weights, "input_size": input_size, "seed": seed}
    rows, done = [], set()
    with tempfile.TemporaryDirectory(prefix="screentime-curve-") as tmp:
        for repeat, start in enumerate(offset_starts(len(table), sizes[0], repeats)):
            order = nested_order(label_times(table), start)
            for size in sizes:
                chosen = tuple(sorted(order[:size]))
                if chosen in done:
                    continue
                done.add(chosen)
                rows.append(_curve_point(table.iloc[list(chosen)], repeat, int(table["frame"].iloc[start]),
                                         train_video, test_video, truth_table, Path(tmp), fps, training))
    return pd.DataFrame(rows, columns=["labels", "repeat", "start_frame", "accuracy", "accuracy_raw",
                                       "frames_scored", "seconds", "note"])


def _curve_point(subset: pd.DataFrame, repeat: int, start_frame: int, train_video: str | os.PathLike,
                 test_video: str | os.PathLike, truth: pd.DataFrame, work: Path, fps: float | None,
                 training: dict[str, Any]) -> dict[str, Any]:
    """One row of the learning curve (see :func:`learning_curve`)."""
    from .progress import log

    row = {"labels": len(subset), "repeat": repeat, "start_frame": start_frame,
           "accuracy": math.nan, "accuracy_raw": math.nan, "frames_scored": 0, "seconds": 0.0, "note": ""}
    reason = why_untrainable(list(subset["names"]))
    if reason:
        row["note"] = f"not trained: {reason}"
        return row
    started = time.perf_counter()
    labels_table = pd.DataFrame({"frame": subset["frame"].astype(int),
                                 "label": [format_label(n) for n in subset["names"]]})
    row.update(_train_and_score(labels_table, train_video, test_video, truth, work, fps, training))
    row["seconds"] = round(time.perf_counter() - started, 2)
    log.info("learning curve: %d labels (repeat %d): %.1f%%", len(subset), repeat, 100 * row["accuracy"])
    return row


def summarise_learning_curve(curve: pd.DataFrame) -> pd.DataFrame:
    """Per number of labels: runs trained, mean/min/max accuracy after and before smoothing."""
    rows = []
    for size, group in curve.groupby("labels", sort=True):
        scored = group[group["accuracy"].notna()]
        rows.append({"labels": int(size), "runs": len(scored), "skipped": len(group) - len(scored),
                     "accuracy": scored["accuracy"].mean(), "accuracy_min": scored["accuracy"].min(),
                     "accuracy_max": scored["accuracy"].max(), "accuracy_raw": scored["accuracy_raw"].mean()})
    return pd.DataFrame(rows, columns=["labels", "runs", "skipped", "accuracy", "accuracy_min", "accuracy_max",
                                       "accuracy_raw"])


def _percent(value: float) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{100 * value:.1f}%"


def format_learning_curve(curve: pd.DataFrame) -> str:
    """A small text table: labels, runs, mean accuracy (min-max) after smoothing, and before smoothing."""
    lines = [f"{'labels':>6}{'runs':>6}  {'accuracy (min-max)':<24}{'before smoothing':>16}"]
    for row in summarise_learning_curve(curve).itertuples(index=False):
        spread = f" ({_percent(row.accuracy_min)}-{_percent(row.accuracy_max)})" if row.runs > 1 else ""
        skipped = f"  {row.skipped} not trained" if row.skipped else ""
        lines.append(f"{row.labels:>6}{row.runs:>6}  {_percent(row.accuracy) + spread:<24}"
                     f"{_percent(row.accuracy_raw):>16}{skipped}")
    return "\n".join(lines)


def json_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (NaN becomes null)."""
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in row.items()}
            for row in table.astype(object).to_dict("records")]


def model_training_settings(model_dir: str | os.PathLike) -> dict[str, Any]:
    """The backbone and head of a trained model folder, as ``pipeline.train`` options, to redo its training."""
    from .backbones import spatial_suffix
    from .model import read_model_card

    card = read_model_card(model_dir)
    spec, head = card["backbone"], card["head"].get("kind", "logistic")
    if spec.get("kind") == "detector":  # retrain the detector on the same base backbone
        spec = spec["base"]
    if spec.get("kind") == "classical":
        return {"backbone": spec["name"], "head": head}
    if spec.get("kind") == "application" and spec.get("weights") == "imagenet":
        return {"backbone": spec["name"] + spatial_suffix(spec), "head": head, "input_size": int(spec["input_size"])}
    if spec.get("kind") == "file" and spec.get("file"):
        return {"backbone": str(Path(model_dir) / spec["file"]) + spatial_suffix(spec), "head": head}
    raise ScreentimeError(f"the backbone of {model_dir} ({spec.get('name')}) cannot be rebuilt for retraining; "
                          "pass --backbone instead of --model")


def write_learning_curve(curve: pd.DataFrame, folder: str | os.PathLike, title: str) -> list[Path]:
    """``folder/learning_curve.csv`` (one row per trained subset) and ``folder/learning_curve.png``."""
    from .plots import accuracy_vs_labels, save

    csv_path = Path(folder) / "learning_curve.csv"
    write_csv(curve, csv_path)
    return [csv_path, save(accuracy_vs_labels(curve, title), Path(folder) / "learning_curve.png")]
