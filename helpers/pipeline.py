"""The pipeline stages the command line and the notebooks call: extract, features, train, predict."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from . import __version__
from .backbones import SPATIAL_SUFFIX, Backbone, load_backbone
from .calibration import MIN_LABELS, calibrate, validated_accuracy
from .detector import feature_map_backbone, with_detector
from .errors import ScreentimeError, UsageError
from .features import cache_enabled, extract_features
from .fileio import atomic_path, write_csv, write_json
from .heads import HEADS, make_head
from .labels import (
    Labels,
    format_label,
    label_matrix,
    read_labels,
    resolve_image_ids,
    resolve_times,
)
from .model import ScreentimeModel, load_model
from .progress import log
from .screentime import screen_time_tables
from .shots import (
    CutDetector,
    cached_shot_starts,
    sample_breaks,
    shot_starts,
    shots_table,
    store_shot_starts,
)
from .video import VideoStream, frame_times, sample_frames


def extract(video: str | os.PathLike, out_dir: str | os.PathLike, fps: float | None = 1.0) -> pd.DataFrame:
    """Write sampled frames as ``frame0.jpg, frame1.jpg, ...`` plus ``frames.csv`` (Image_ID, frame, time_s)."""
    out = Path(out_dir)
    rows = []
    for count, frame in enumerate(sample_frames(video, fps, desc="extracting")):
        name = f"frame{count}.jpg"
        with atomic_path(out / name) as tmp:
            ok, data = cv2.imencode(".jpg", frame.image)
            if not ok:
                raise ScreentimeError(f"could not encode frame {frame.index} as JPEG")
            tmp.write_bytes(data.tobytes())
        rows.append((name, frame.index, round(frame.time_s, 4)))
    table = pd.DataFrame(rows, columns=["Image_ID", "frame", "time_s"])
    write_csv(table, out / "frames.csv")
    return table


def load_training_labels(labels_csv: str | os.PathLike, video: str | os.PathLike,
                         classes: list[str] | None = None, frames_csv: str | os.PathLike | None = None) -> Labels:
    """Read labels in either format and pin every label to a decoded frame index of ``video``."""
    labels = read_labels(labels_csv, classes)
    if labels.image_ids:
        beside = Path(labels_csv).with_name("frames.csv")
        frames_csv = frames_csv or (beside if beside.is_file() else None)
        if frames_csv is None:
            log.info("no frames.csv beside %s: reading Image_IDs with the tutorial's numbering "
                     "(image N = frame N x floor(fps))", Path(labels_csv).name)
        labels = resolve_image_ids(labels, frames_csv, VideoStream(video).info.nominal_fps)
    if labels.table["frame"].isna().any():
        times, _ = frame_times(video)
        labels = resolve_times(labels, times)
    labels.table["frame"] = labels.table["frame"].astype(int)
    return labels


#: Separates alternative backbones in ``--backbone``; the one that validates best is kept.
ALTERNATIVES = "|"


@dataclass
class _Candidate:
    """One backbone's features of the labelled frames and what time-blocked validation said of them."""

    name: str
    net: Backbone
    X: np.ndarray
    Y: np.ndarray
    chosen: dict[str, Any]
    head: str = "logistic"

    @property
    def validated_accuracy(self) -> float | None:
        """Out-of-fold exact accuracy at the chosen smoothing strength (None when validation could not run)."""
        return validated_accuracy(self.chosen, self.chosen["strength_s"])


#: A label's time_s may differ from its frame's time by this much before train warns (typed or rounded times).
LABEL_TIME_TOLERANCE_S = 0.5


def warn_if_label_times_disagree(labels_csv: str | os.PathLike, video: str | os.PathLike, frames: np.ndarray,
                                 label_times: np.ndarray, frame_times: np.ndarray) -> None:
    """Warn when labels give both a frame and a time_s and the frame is not shown at that time (frames win)."""
    gap = np.abs(np.asarray(label_times, dtype=float) - np.asarray(frame_times, dtype=float))
    off = np.flatnonzero(gap > LABEL_TIME_TOLERANCE_S)  # NaN (no time_s given) compares False
    if len(off):
        i = off[0]
        log.warning("labels file %s: frame %d is at %.2f s in %s, but the file says %.2f s (%d of %d labels are "
                    "more than %.1f s off); using the frames: check the labels belong to this video",
                    labels_csv, frames[i], frame_times[i], video, label_times[i], len(off), len(gap),
                    LABEL_TIME_TOLERANCE_S)


def warn_unvalidated_model(reason: str, positives: dict[str, int]) -> None:
    """Say that thresholds and smoothing are defaults because validation could not run, and what to label."""
    log.warning("validation on time blocks of the labels did not run (%s), so thresholds are 0.5 and there is "
                "no smoothing; frames labelled with each character: %s; label at least %d frames, with each "
                "character in every fifth of the video", reason,
                ", ".join(f"{c} {n}" for c, n in positives.items()), MIN_LABELS)


def _labelled_features(video: str | os.PathLike, labels: Labels, labels_csv: str | os.PathLike, net: Backbone,
                       characters: list[str], check_times: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features, label matrix and times of the labelled frames of ``video``, row-aligned."""
    log.info("computing %s features of %d labelled frames of %s", net.spec["name"], len(labels.table), video)
    feats = extract_features(video, net, fps=None, frames=labels.table["frame"])
    missing = sorted(set(labels.table["frame"]) - set(feats.frames["frame"]))
    if missing:
        n = feats.stats.frames_decoded
        raise ScreentimeError(f"labels file {labels_csv} labels frame {missing[0]}, but {video} decodes only "
                              f"{n} frames (0-{n - 1}); check the labels belong to this video")
    order = labels.table.set_index("frame").loc[feats.frames["frame"]]
    times = feats.frames["time_s"].to_numpy()
    if check_times:
        warn_if_label_times_disagree(labels_csv, video, feats.frames["frame"].to_numpy(), order["time_s"].to_numpy(),
                                     times)
    return feats.X, label_matrix(order["names"], characters), times


def parse_heads(head: str) -> list[str]:
    """The head kinds in ``head`` (alternatives joined with ``|``), each checked."""
    heads = [part.strip() for part in str(head).split(ALTERNATIVES) if part.strip()]
    unknown = [h for h in heads if h not in HEADS]
    if unknown or not heads:
        raise UsageError(f"unknown head {(unknown or [head])[0]!r}; choose one of {', '.join(HEADS)} "
                         "(alternatives joined with |)")
    return heads


def parse_backbones(backbone: str) -> list[str]:
    """The backbone names in ``backbone`` (alternatives joined with ``|``); at least one."""
    names = [part.strip() for part in str(backbone).split(ALTERNATIVES) if part.strip()]
    if not names:
        raise ScreentimeError(f"--backbone {backbone!r} names no backbone; e.g. colour or colour|model.keras")
    return names


def combinations(names: list[str], heads: list[str]) -> list[tuple[str, str]]:
    """(backbone, head) pairs to validate. With several heads, the detector is tried only on
    backbones run on the whole frame (``NAME@max``, not fused); with the detector alone, any other
    backbone is an error (raised when it is loaded)."""
    if heads != ["detector"] and "detector" in heads:
        return [(n, h) for n in names for h in heads
                if h != "detector" or ("," not in n and SPATIAL_SUFFIX.match(n.strip()))]
    return [(n, h) for n in names for h in heads]


def pick_backbone(candidates: list[_Candidate]) -> tuple[_Candidate, dict[str, Any] | None]:
    """The candidate with the best validated accuracy (the first listed among equals) and a record of the choice."""
    if len(candidates) == 1:
        return candidates[0], None
    scores = {c.name: c.validated_accuracy for c in candidates}
    if None in scores.values():
        reason = next(c.chosen["validation"] for c in candidates if c.validated_accuracy is None)
        raise ScreentimeError(f"cannot choose between backbones {' | '.join(scores)}: validation did not run "
                              f"({reason}); label more frames (at least 15, each character in every fifth of "
                              "the video) or give one backbone")
    best = max(scores.values())
    picked = next(c for c in candidates if scores[c.name] >= best - 1e-9)
    log.info("backbone %s picked by validation (%s)", picked.name,
             ", ".join(f"{name} {100 * a:.1f}%" for name, a in scores.items()))
    return picked, {"picked": picked.name, "validated_accuracy": {k: round(v, 4) for k, v in scores.items()},
                    "by": "out-of-fold exact accuracy on contiguous time blocks of the labels, after smoothing; "
                          "the first listed wins ties"}


def train(video: str | os.PathLike, labels_csv: str | os.PathLike, out_dir: str | os.PathLike, *,
          backbone: str = "colour", classes: list[str] | None = None, head: str = "logistic",
          weights: str | None = "imagenet", input_size: int | None = None,
          frames_csv: str | os.PathLike | None = None, epochs: int | None = None, seed: int = 0,
          warn_unvalidated: bool = True) -> ScreentimeModel:
    """Train a model on the labelled frames of ``video`` and save it to ``out_dir``.

    ``backbone`` may list alternatives separated by ``|`` (``colour|model.keras|colour,model.keras``):
    each is validated on contiguous time blocks of the labels and the best one is kept; so may
    ``head`` (``logistic|detector``: every backbone with every head that fits it). When that
    validation cannot run (too few labels), a warning says so unless ``warn_unvalidated`` is False.
    """
    heads = parse_heads(head)
    labels = load_training_labels(labels_csv, video, classes, frames_csv)
    characters = labels.characters
    if not characters:
        raise ScreentimeError(f"labels file {labels_csv} names no character (all frames are 'none'); "
                              "label frames where each character appears")
    Y_all = label_matrix(labels.table["names"], characters)
    for j, name in enumerate(characters):
        if Y_all[:, j].all():
            raise ScreentimeError(f"every labelled frame shows {name!r}; label some frames without {name} too")
    names = parse_backbones(backbone)

    def head_maker(net: Backbone, kind: str):
        """Makes untrained heads for ``net``'s features (a fused backbone's parts weighed alike)."""
        blocks = getattr(net, "blocks", None)
        return lambda: make_head(kind, seed=seed, epochs=epochs, blocks=blocks)

    candidates = []
    for name, kind in combinations(names, heads):
        net = load_backbone(name, weights=weights, input_size=input_size)
        if kind == "detector":
            net = feature_map_backbone(net, name)  # the detector trains on whole feature maps
        X, Y, times = _labelled_features(video, labels, labels_csv, net, characters, check_times=not candidates)
        chosen = calibrate(X, Y, times, head_maker(net, kind))
        label = name if len(heads) == 1 else f"{name} ({kind} head)"
        candidates.append(_Candidate(label, net, X, Y, chosen, kind))
    picked, choice = pick_backbone(candidates)
    log.info("fitting the %s head on all %d labelled frames", picked.head, len(picked.Y))
    model_head = head_maker(picked.net, picked.head)().fit(picked.X, picked.Y)
    model_backbone: Backbone = picked.net
    if picked.head == "detector":  # backbone and detector run as one at prediction, scores cached
        model_backbone, model_head = with_detector(picked.net, model_head)
    chosen, Y = picked.chosen, picked.Y
    positives = {c: int(Y[:, j].sum()) for j, c in enumerate(characters)}
    if warn_unvalidated and picked.validated_accuracy is None:
        warn_unvalidated_model(chosen["validation"], positives)
    model = ScreentimeModel(characters, model_backbone, model_head, chosen["thresholds"], {
        "video": str(video), "labels": str(labels_csv), "labelled_frames": int(len(Y)),
        "positives": positives,
        "calibration": {k: v for k, v in chosen.items() if k not in ("thresholds", "strength_s")},
        **({"backbone_choice": choice} if choice else {}),
        "screentime_version": __version__, "seed": seed,
    }, chosen["strength_s"])
    model.save(out_dir)
    return model


@dataclass
class Prediction:
    """What ``predict`` computed: per-sample table, per-character screen time, segments, video facts."""

    predictions: pd.DataFrame
    screentime: pd.DataFrame
    segments: pd.DataFrame
    shots: pd.DataFrame
    duration_s: float
    frames_decoded: int
    characters: list[str]
    computed: int = 0  # frames that went through the backbone (the rest came from the feature cache)
    shots_detected: bool = True  # False with --no-shots: ``shots`` is then the whole video as one shot

    def shot_starts_s(self) -> list[float] | None:
        """Where each shot starts (seconds), for resampling by shot in ``evaluate_frames``; None when
        shots were not detected."""
        return self.shots["start_s"].tolist() if self.shots_detected else None


def predict_video(video: str | os.PathLike, model: ScreentimeModel, fps: float | None = 1.0,
                  shots: bool = True) -> Prediction:
    """Classify sampled frames of ``video`` and compute each character's screen time.

    With ``shots``, cuts are found (PySceneDetect) and smoothing restarts at each one.
    """
    log.info("classifying %s (--fps %s)", video, f"{fps:g}" if fps else "all")
    use_cache = cache_enabled()
    starts = cached_shot_starts(video) if shots and use_cache else None
    cuts = CutDetector(VideoStream(video).info.nominal_fps) if shots and starts is None else None
    feats = extract_features(video, model.backbone, fps, watch=cuts)
    if cuts is not None:
        starts = cuts.finish() if cuts.saw_frames else shot_starts(video, use_cache)  # features were cached
        if use_cache and cuts.saw_frames:
            store_shot_starts(video, starts)
    starts = starts or [0]
    proba = model.predict_proba(feats.X)
    raw = model.present_raw(proba)
    breaks = sample_breaks(feats.frames["frame"].to_numpy(), starts)
    present = model.present(proba, feats.frames["time_s"].to_numpy(), breaks)
    table = feats.frames.copy()
    table["time_s"] = table["time_s"].round(4)
    for j, name in enumerate(model.characters):
        table[f"p_{name}"] = proba[:, j].round(4)
    table["present_raw"] = [format_label({c for c, on in zip(model.characters, row) if on}) for row in raw]
    table["present"] = [format_label({c for c, on in zip(model.characters, row) if on}) for row in present]
    duration = feats.stats.duration_s
    summary, segs = screen_time_tables(feats.frames["time_s"], present, model.characters, duration)
    shot_table = shots_table(starts, feats.frame_times, duration)
    return Prediction(table, summary, segs, shot_table, duration, feats.stats.frames_decoded, model.characters,
                      feats.computed, shots)


def predict(video: str | os.PathLike, model_dir: str | os.PathLike, out_dir: str | os.PathLike,
            fps: float | None = 1.0, shots: bool = True) -> Prediction:
    """``screentime predict``: load the model, predict ``video``, write the CSVs to ``out_dir``."""
    VideoStream(video)  # a bad video fails here, before the model loads
    model = load_model(model_dir)
    result = predict_video(video, model, fps, shots)
    write_prediction(video, result, out_dir, fps)
    return result


def write_prediction(video: str | os.PathLike, result: Prediction, out_dir: str | os.PathLike,
                     fps: float | None) -> None:
    """The files ``predict`` writes, each atomically: predictions, screen time, segments, shots, video facts."""
    out = Path(out_dir)
    write_csv(result.predictions, out / "predictions.csv")
    write_csv(result.screentime, out / "screentime.csv")
    write_csv(result.segments, out / "segments.csv")
    write_csv(result.shots, out / "shots.csv")
    write_json(video_summary(video, result, fps), out / "video.json")


def fps_label(fps: float | None) -> float | str:
    """A sampling rate as recorded in outputs: the number, or ``all``."""
    return fps if fps is not None else "all"


def video_summary(video: str | os.PathLike, result: Prediction, fps: float | None) -> dict[str, Any]:
    """Facts about a prediction run, written next to the CSVs."""
    return {"video": str(video), "duration_s": round(result.duration_s, 4), "frames_decoded": result.frames_decoded,
            "sampling_fps": fps_label(fps), "samples": int(len(result.predictions)),
            "characters": result.characters, "shots_detected": result.shots_detected,
            "screentime_version": __version__}
