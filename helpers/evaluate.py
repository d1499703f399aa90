"""Scoring predictions against ground truth: frame accuracy, per-character P/R/F1, screen time."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .errors import ScreentimeError
from .fileio import read_csv, write_json
from .labels import parse_label
from .screentime import sample_durations


def _presence_sets(series: pd.Series, where: str) -> list[frozenset[str] | None]:
    return [parse_label(v, f"{where} row {i + 2}") for i, v in enumerate(series)]


def evaluate_frames(predictions: pd.DataFrame, truth: pd.DataFrame, duration_s: float | None = None) -> dict[str, Any]:
    """Score ``predictions`` (frame, time_s, present) against ``truth`` (frame and/or time_s, label).

    Frames whose truth is ``ignore`` or missing are not scored. Screen time is each scored sample's
    duration (until the next sample) summed where the character is predicted / truly present.
    """
    for col in ("time_s", "present"):
        if col not in predictions.columns:
            raise ScreentimeError(f"predictions need columns frame,time_s,present; {col!r} is missing")
    if "label" not in truth.columns or not ({"frame", "time_s"} & set(truth.columns)):
        raise ScreentimeError("truth needs a 'label' column and 'frame' and/or 'time_s'")
    pred = predictions.sort_values("time_s").reset_index(drop=True)
    if duration_s is None:  # the last sample stands for one typical sampling interval
        step = float(np.median(np.diff(pred["time_s"]))) if len(pred) > 1 else 0.0
        duration_s = float(pred["time_s"].iloc[-1]) + step
    pred["weight"] = sample_durations(pred["time_s"], duration_s)
    if "frame" in truth.columns and "frame" in pred.columns:
        merged = pred.merge(truth[["frame", "label"]], on="frame", how="left")
    else:
        t = truth[["time_s", "label"]].sort_values("time_s")
        merged = pd.merge_asof(pred, t, on="time_s", direction="nearest", tolerance=0.02)
    merged["pred_set"] = _presence_sets(merged["present"], "predictions")
    merged = merged[merged["label"].notna()]
    merged["true_set"] = _presence_sets(merged["label"], "truth")
    merged = merged[merged["true_set"].notna()]
    if merged.empty:
        raise ScreentimeError("no predicted frame has a truth label; check that both files describe the same video")
    characters = sorted(set().union(*merged["true_set"], *merged["pred_set"]))
    scored_s = float(merged["weight"].sum())
    result: dict[str, Any] = {
        "frames_scored": int(len(merged)),
        "seconds_scored": round(scored_s, 3),
        "accuracy": float(np.mean([p == t for p, t in zip(merged["pred_set"], merged["true_set"])])),
        "characters": {},
    }
    if "present_raw" in merged.columns:  # the same frames before temporal smoothing
        raw = _presence_sets(merged["present_raw"], "predictions")
        result["accuracy_raw"] = float(np.mean([p == t for p, t in zip(raw, merged["true_set"])]))
    for name in characters:
        p = np.array([name in s for s in merged["pred_set"]])
        t = np.array([name in s for s in merged["true_set"]])
        tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        pred_s, true_s = float(merged["weight"][p].sum()), float(merged["weight"][t].sum())
        result["characters"][name] = {
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "predicted_s": round(pred_s, 3), "true_s": round(true_s, 3),
            "error_s": round(pred_s - true_s, 3),
            "error_pct_of_scored": round(100 * abs(pred_s - true_s) / scored_s, 2) if scored_s else 0.0,
        }
    return result


def evaluate_files(predictions_csv: str | os.PathLike, truth_csv: str | os.PathLike,
                   json_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``screentime evaluate``: read both CSVs, score, optionally write the result as JSON."""
    pred = read_csv(predictions_csv, "predictions file")
    truth = read_csv(truth_csv, "truth file")
    truth.columns = [str(c).strip() for c in truth.columns]
    result = evaluate_frames(pred, truth)
    if json_path:
        write_json(result, json_path)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A plain-text report of an evaluation result."""
    lines = [f"frames scored: {result['frames_scored']} ({result['seconds_scored']:.1f} s)",
             f"frame accuracy: {100 * result['accuracy']:.1f}%"
             + (f" (before smoothing {100 * result['accuracy_raw']:.1f}%)" if "accuracy_raw" in result else ""),
             f"{'character':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'pred s':>9}{'true s':>9}{'err %':>7}"]
    for name, c in result["characters"].items():
        lines.append(f"{name:<14}{c['precision']:>10.3f}{c['recall']:>8.3f}{c['f1']:>7.3f}"
                     f"{c['predicted_s']:>9.1f}{c['true_s']:>9.1f}{c['error_pct_of_scored']:>7.2f}")
    return "\n".join(lines)


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (for reports and benchmark output; no extra dependency)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
