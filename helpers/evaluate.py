"""Scoring predictions against ground truth: frame accuracy, per-character P/R/F1, screen time."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from .errors import ScreentimeError, UsageError
from .fileio import read_csv, write_json
from .labels import format_label, parse_label
from .progress import log
from .screentime import sample_durations

#: The accuracy interval: its level, how many resamplings, and the fewest blocks that give one.
INTERVAL_LEVEL = 0.95
INTERVAL_ROUNDS = 2000
MIN_INTERVAL_BLOCKS = 5
#: Length of the blocks resampled where the shots are not known.
INTERVAL_BLOCK_S = 10.0


def _presence_sets(series: pd.Series, where: str) -> list[frozenset[str] | None]:
    return [parse_label(v, f"{where} row {i + 2}") for i, v in enumerate(series)]


def check_truth_columns(truth: pd.DataFrame, where: str) -> None:
    """One clear line unless ``truth`` has a ``label`` column and ``frame`` and/or ``time_s``."""
    if "label" not in truth.columns or not ({"frame", "time_s"} & set(truth.columns)):
        raise ScreentimeError(f"{where} needs a 'label' column and 'frame' and/or 'time_s'")


def read_truth(truth: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """A truth table (frame and/or time_s, label), read and checked before any long work starts."""
    table = truth.copy() if isinstance(truth, pd.DataFrame) else read_csv(truth, "truth file")
    table.columns = [str(c).strip() for c in table.columns]
    check_truth_columns(table, "truth" if isinstance(truth, pd.DataFrame) else f"truth file {truth}")
    return table


def warn_unknown_characters(predictions: pd.DataFrame, truth_characters: set[str]) -> None:
    """Warn about characters of the truth that the model never knew (no ``p_<name>`` column): a name
    spelt differently in the two files scores as a miss on every frame."""
    known = {str(c)[2:] for c in predictions.columns if str(c).startswith("p_")}
    unknown = sorted(truth_characters - known)
    if known and unknown:
        log.warning("the truth names %s, which the model does not know (it knows %s): those frames score as "
                    "misses; check the names match", ", ".join(unknown), ", ".join(sorted(known)))


class BlockBootstrap:
    """Resampling by whole blocks (``blocks[i]`` is sample i's block, e.g. its shot), drawn with
    replacement, because mistakes come in runs and neighbouring frames are not independent. One set
    of draws serves every statistic of an evaluation; with fewer than ``MIN_INTERVAL_BLOCKS`` blocks
    there are none, and no interval."""

    def __init__(self, blocks: np.ndarray, rounds: int = INTERVAL_ROUNDS, seed: int = 0):
        _, self.block = np.unique(np.asarray(blocks), return_inverse=True)
        self.n_blocks = int(self.block.max()) + 1 if len(self.block) else 0
        self.draws = (np.random.default_rng(seed).integers(0, self.n_blocks, size=(rounds, self.n_blocks))
                      if self.n_blocks >= MIN_INTERVAL_BLOCKS else None)

    def interval(self, numerator: np.ndarray, denominator: np.ndarray,
                 level: float = INTERVAL_LEVEL) -> tuple[float, float] | None:
        """A percentile interval for ``sum(numerator) / sum(denominator)`` over the samples."""
        if self.draws is None:
            return None
        top = np.bincount(self.block, weights=np.asarray(numerator, dtype=float), minlength=self.n_blocks)
        bottom = np.bincount(self.block, weights=np.asarray(denominator, dtype=float), minlength=self.n_blocks)
        with np.errstate(invalid="ignore", divide="ignore"):  # a draw of only zero-length samples has no ratio
            ratios = top[self.draws].sum(axis=1) / bottom[self.draws].sum(axis=1)
        tail = 100 * (1 - level) / 2
        low, high = np.nanpercentile(ratios, [tail, 100 - tail])
        return float(low), float(high)


def accuracy_interval(correct: np.ndarray, blocks: np.ndarray | BlockBootstrap) -> tuple[float, float] | None:
    """A block-bootstrap interval for the share of ``correct`` samples (``BlockBootstrap``)."""
    resample = blocks if isinstance(blocks, BlockBootstrap) else BlockBootstrap(blocks)
    return resample.interval(np.asarray(correct, dtype=float), np.ones(len(correct)))


def interval_blocks(times_s: np.ndarray, shot_starts_s: Sequence[float] | None) -> tuple[np.ndarray, str]:
    """Each sample's block for the accuracy interval: its shot when the shots are known, else its
    ``INTERVAL_BLOCK_S`` stretch; and what the blocks are, in words."""
    times_s = np.asarray(times_s, dtype=float)
    if shot_starts_s is not None and len(shot_starts_s):
        return np.searchsorted(np.sort(np.asarray(shot_starts_s, dtype=float)), times_s + 1e-6), "shots"
    return np.floor(times_s / INTERVAL_BLOCK_S).astype(int), f"stretches of {INTERVAL_BLOCK_S:g} s"


def evaluate_frames(predictions: pd.DataFrame, truth: pd.DataFrame, duration_s: float | None = None,
                    shot_starts_s: Sequence[float] | None = None) -> dict[str, Any]:
    """Score ``predictions`` (frame, time_s, present) against ``truth`` (frame and/or time_s, label).

    Frames whose truth is ``ignore`` or missing are not scored. Screen time is each scored sample's
    duration (until the next sample) summed where the character is predicted / truly present. The
    accuracy gets a 95% interval by resampling whole shots (``shot_starts_s``, in seconds) or, when
    they are not given, 10 s stretches (``accuracy_interval``).
    """
    for col in ("time_s", "present"):
        if col not in predictions.columns:
            raise ScreentimeError(f"predictions need columns frame,time_s,present; {col!r} is missing")
    check_truth_columns(truth, "truth")
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
    warn_unknown_characters(predictions, set().union(*merged["true_set"]))
    scored_s = float(merged["weight"].sum())
    correct = np.array([p == t for p, t in zip(merged["pred_set"], merged["true_set"])])
    blocks, unit = interval_blocks(merged["time_s"].to_numpy(), shot_starts_s)
    resample = BlockBootstrap(blocks)
    interval = accuracy_interval(correct, resample)
    result: dict[str, Any] = {
        "frames_scored": int(len(merged)),
        "seconds_scored": round(scored_s, 3),
        "accuracy": float(correct.mean()),
        "accuracy_interval": {"level": INTERVAL_LEVEL, "blocks": resample.n_blocks, "unit": unit,
                              "low": None if interval is None else round(interval[0], 4),
                              "high": None if interval is None else round(interval[1], 4)},
        "characters": {},
    }
    raw = None
    if "present_raw" in merged.columns:  # the same frames before temporal smoothing
        raw = _presence_sets(merged["present_raw"], "predictions")
        result["accuracy_raw"] = float(np.mean([p == t for p, t in zip(raw, merged["true_set"])]))
    weight = merged["weight"].to_numpy()
    for name in characters:
        p = np.array([name in s for s in merged["pred_set"]])
        t = np.array([name in s for s in merged["true_set"]])
        tp, fp, fn = int((p & t).sum()), int((p & ~t).sum()), int((~p & t).sum())
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        pred_s, true_s = float(weight[p].sum()), float(weight[t].sum())
        error_interval = resample.interval(100 * weight * (p.astype(float) - t), weight)
        result["characters"][name] = {
            "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "predicted_s": round(pred_s, 3), "true_s": round(true_s, 3),
            "error_s": round(pred_s - true_s, 3),
            "error_pct_of_scored": round(100 * abs(pred_s - true_s) / scored_s, 2) if scored_s else 0.0,
            # predicted - true seconds as % of the scored length, over the same resampled blocks
            "error_pct_interval": None if error_interval is None else [round(v, 2) for v in error_interval],
        }
    true_sets, pred_sets = list(merged["true_set"]), list(merged["pred_set"])
    shared = presence_order([*true_sets, *pred_sets, *(raw or [])])  # both matrices get the same rows
    result["confusion"] = confusion_matrix(true_sets, pred_sets, shared)
    if raw is not None:
        result["confusion_raw"] = confusion_matrix(true_sets, raw, shared)
    return result


# --------------------------------------------------------------------------------------------------
# Confusion matrix: the true set of characters on screen against the predicted set


def presence_order(sets: Iterable[frozenset[str]]) -> list[frozenset[str]]:
    """The distinct sets of characters in reading order: none, single characters, pairs, ... (alphabetical)."""
    return sorted(set(sets), key=lambda names: (len(names), sorted(names)))


def confusion_matrix(true_sets: Sequence[frozenset[str]], pred_sets: Sequence[frozenset[str]],
                     order: Sequence[frozenset[str]] | None = None) -> dict[str, Any]:
    """Frames per (true set, predicted set): ``counts[i][j]`` frames truly show ``labels[i]`` and are
    predicted as ``labels[j]``. Labels are written as in the CSVs (``none``, ``tom``, ``jerry;tom``)."""
    order = list(order) if order is not None else presence_order([*true_sets, *pred_sets])
    position = {names: i for i, names in enumerate(order)}
    counts = np.zeros((len(order), len(order)), dtype=int)
    for true, pred in zip(true_sets, pred_sets):
        counts[position[true], position[pred]] += 1
    return {"rows": "truth", "columns": "predicted", "labels": [format_label(names) for names in order],
            "counts": counts.tolist()}


def display_label(label: str) -> str:
    """A CSV label as people read it in tables and figures: ``jerry;tom`` -> ``jerry+tom``."""
    return label.replace(";", "+")


def format_confusion(confusion: dict[str, Any], title: str = "confusion") -> list[str]:
    """The matrix as a compact text table (rows: truth, columns: predicted, cells: frames)."""
    names = [display_label(label) for label in confusion["labels"]]
    corner = "truth \\ predicted"
    first = max(len(corner), *(len(n) for n in names)) + 2
    widths = [max(6, len(n) + 2) for n in names]
    lines = [f"{title} (rows: truth, columns: predicted; frames):",
             f"{corner:<{first}}" + "".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    for name, row in zip(names, confusion["counts"]):
        lines.append(f"{name:<{first}}" + "".join(f"{c:>{w}}" for c, w in zip(row, widths)))
    return lines


def read_shot_starts(predictions_csv: str | os.PathLike) -> list[float] | None:
    """The shot starts (seconds) from the ``shots.csv`` that ``predict`` wrote next to
    ``predictions_csv``; None when there is none, when ``predict`` ran with ``--no-shots`` (its
    ``video.json`` says so), or, with a warning, when it is unusable."""
    shots_csv = Path(predictions_csv).with_name("shots.csv")
    if not shots_csv.is_file() or not _shots_were_detected(Path(predictions_csv).with_name("video.json")):
        return None
    try:
        shots = read_csv(shots_csv, "shots file")
    except ScreentimeError:  # unreadable or empty: the scores do not need it
        shots = pd.DataFrame()
    starts = pd.to_numeric(shots["start_s"], errors="coerce") if "start_s" in shots.columns else None
    if starts is None or starts.isna().any() or starts.empty:
        log.warning("%s has no usable start_s column; the intervals resample %g s stretches instead of shots",
                    shots_csv, INTERVAL_BLOCK_S)
        return None
    return starts.tolist()


def _shots_were_detected(video_json: Path) -> bool:
    """False only when ``predict``'s ``video.json`` records that it ran without shot detection."""
    try:
        return json.loads(video_json.read_text()).get("shots_detected", True) is not False
    except (OSError, ValueError, AttributeError):
        return True


def evaluate_files(predictions_csv: str | os.PathLike, truth_csv: str | os.PathLike,
                   json_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """``screentime evaluate``: read both CSVs (and the shots next to the predictions), score,
    optionally write the result as JSON."""
    pred = read_csv(predictions_csv, "predictions file")
    result = evaluate_frames(pred, read_truth(truth_csv), shot_starts_s=read_shot_starts(predictions_csv))
    if json_path:
        write_json(result, json_path)
    return result


def format_report(result: dict[str, Any]) -> str:
    """A plain-text report of an evaluation result."""
    lines = [f"frames scored: {result['frames_scored']} ({result['seconds_scored']:.1f} s)",
             f"frame accuracy: {100 * result['accuracy']:.1f}%"
             + (f" (before smoothing {100 * result['accuracy_raw']:.1f}%)" if "accuracy_raw" in result else ""),
             *format_interval(result.get("accuracy_interval")),
             f"{'character':<14}{'precision':>10}{'recall':>8}{'F1':>7}{'pred s':>9}{'true s':>9}{'err %':>7}"
             + ("  95% interval of (pred - true) %" if _has_error_intervals(result) else "")]
    for name, c in result["characters"].items():
        interval = c.get("error_pct_interval")
        lines.append(f"{name:<14}{c['precision']:>10.3f}{c['recall']:>8.3f}{c['f1']:>7.3f}"
                     f"{c['predicted_s']:>9.1f}{c['true_s']:>9.1f}{c['error_pct_of_scored']:>7.2f}"
                     + (f"  {interval[0]:+.2f} to {interval[1]:+.2f}" if interval else ""))
    if "confusion" in result:
        lines += format_confusion(result["confusion"])
    return "\n".join(lines)


def _has_error_intervals(result: dict[str, Any]) -> bool:
    return any(c.get("error_pct_interval") for c in result["characters"].values())


def format_interval(interval: dict[str, Any] | None) -> list[str]:
    """The accuracy interval as a report line (none for results saved before it existed)."""
    if not interval:
        return []
    if interval["low"] is None:
        return [f"  no interval: it needs {MIN_INTERVAL_BLOCKS} {interval['unit']} or more, and the scored frames "
                f"span {interval['blocks']}"]
    return [f"  {100 * interval['level']:.0f}% interval {100 * interval['low']:.1f}-{100 * interval['high']:.1f}% "
            f"(resampling the {interval['blocks']} {interval['unit']} scored: mistakes come in runs)"]


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (for reports and benchmark output; no extra dependency)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# ``screentime evaluate``: scores, confusion matrix, learning curve, figures

LEARNING_CURVE_OPTIONS = ("train_video", "labels", "video", "model", "backbone", "fps", "sizes", "repeats")


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_evaluate_options(predictions: str | None, learning: bool, options: dict[str, Any]) -> None:
    """One clear line (exit status 2) for a combination of ``evaluate`` options that cannot work."""
    given = [name for name in LEARNING_CURVE_OPTIONS if options.get(name) is not None]
    if not learning and given:
        raise UsageError(f"{_option(given[0])} only goes with --learning-curve; add --learning-curve or drop it")
    if not predictions and not learning:
        raise UsageError("evaluate needs --predictions P (score a prediction) or --learning-curve "
                         "--train-video TV --labels L --video V (accuracy against the number of labels)")
    if learning:
        missing = [_option(name) for name in ("train_video", "labels", "video") if not options.get(name)]
        if missing:
            raise UsageError("--learning-curve needs --train-video, --labels and --video; "
                             f"missing {', '.join(missing)}")
        if options.get("repeats") is not None and options["repeats"] < 1:
            raise UsageError(f"--repeats must be at least 1, not {options['repeats']}")


def _use_agg_backend() -> None:
    """Figures are files here: draw with Agg (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")


def _check_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` now, so an unwritable one fails before minutes of work."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ScreentimeError(f"cannot write to {path}: {exc.strerror}; choose a writable folder for --plots") from exc
    return path


def write_confusion_plot(result: dict[str, Any], folder: str | os.PathLike, title: str) -> Path:
    """``folder/confusion.png``: the smoothed (``present``) matrix, and the raw one beside it when scored."""
    from .plots import confusion_matrices, save

    panels = {"after smoothing (present)": result["confusion"]}
    if "confusion_raw" in result:
        panels["before smoothing (present_raw)"] = result["confusion_raw"]
    return save(confusion_matrices(panels, title), Path(folder) / "confusion.png")


def evaluate_command(*, truth: str, predictions: str | None = None, json_path: str | None = None,
                     plots_dir: str | None = None, learning: bool = False, train_video: str | None = None,
                     labels: str | None = None, video: str | None = None, model: str | None = None,
                     backbone: str | None = None, fps: str | None = None, sizes: str | None = None,
                     repeats: int | None = None) -> str:
    """``screentime evaluate``: score ``predictions`` and/or draw a learning curve; returns what to print."""
    from .learning_curve import (REPEATS, format_learning_curve, json_records, learning_curve,
                                 model_training_settings, parse_sizes, write_learning_curve)
    from .pipeline import fps_label
    from .video import parse_fps

    check_evaluate_options(predictions, learning, {
        "train_video": train_video, "labels": labels, "video": video, "model": model, "backbone": backbone,
        "fps": fps, "sizes": sizes, "repeats": repeats})
    folder = _check_folder(plots_dir) if plots_dir else None
    if folder is not None:
        _use_agg_backend()
    out: list[str] = []
    data: dict[str, Any] = {}
    written: list[Path] = []
    if predictions:
        data = evaluate_files(predictions, truth)
        out.append(format_report(data))
        if folder is not None:
            title = f"Confusion matrix: characters on screen in {Path(predictions).name} vs {Path(truth).name}"
            written.append(write_confusion_plot(data, folder, title))
    if learning:
        rate = parse_fps(fps if fps is not None else "1")
        settings = model_training_settings(model) if model else {"backbone": backbone or "colour"}
        wanted = parse_sizes(sizes) if sizes else None
        curve = learning_curve(train_video, labels, video, truth, wanted, fps=rate,
                               repeats=repeats if repeats is not None else REPEATS, **settings)
        n_labels = int(curve["labels"].max())
        out.append(f"learning curve: {settings['backbone']} backbone, nested subsets of the {n_labels} labels of "
                   f"{Path(train_video).name} (evenly in time), predicting {Path(video).name} at "
                   f"{f'{rate:g} fps' if rate else 'every frame'}:")
        out.append(format_learning_curve(curve))
        data["learning_curve"] = {"train_video": str(train_video), "labels": str(labels), "video": str(video),
                                  "fps": fps_label(rate), **settings, "runs": json_records(curve)}
        if folder is not None:
            title = f"Learning curve: accuracy on {Path(video).name} vs labelled frames of {Path(train_video).name}"
            written += write_learning_curve(curve, folder, title)
    if json_path:
        write_json(data, json_path)
        written.append(Path(json_path))
    out += [f"wrote {path}" for path in written]
    return "\n".join(out)
