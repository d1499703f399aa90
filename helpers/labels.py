"""Label files: the project's ``frame,time_s,label`` CSV and the tutorial's ``mapping.csv``.

A label is a character name, ``none`` (no character), several names joined with ``;``, or
``ignore`` (the frame is not used). Names are normalised: lower-case, spaces become ``_``.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import ScreentimeError
from .fileio import read_csv

NONE = "none"
IGNORE = "ignore"
TUTORIAL_CLASSES = (NONE, "jerry", "tom")


def normalise_name(name: str) -> str:
    """A character name as the project stores it: trimmed, lower-case, inner spaces as ``_``."""
    return re.sub(r"\s+", "_", str(name).strip().lower())


def parse_label(value: object, where: str) -> frozenset[str] | None:
    """``'Tom; jerry'`` -> {'tom', 'jerry'}; ``none`` -> empty set; ``ignore`` -> None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or not str(value).strip():
        raise ScreentimeError(f"{where}: empty label; write a character name, 'none' or 'ignore'")
    names = {normalise_name(part) for part in str(value).split(";") if part.strip()}
    if names == {IGNORE}:
        return None
    if IGNORE in names:
        raise ScreentimeError(f"{where}: 'ignore' cannot be combined with character names")
    names.discard(NONE)
    return frozenset(names)


def format_label(names: frozenset[str] | set[str]) -> str:
    """The CSV form of a set of characters: sorted names joined by ``;``, or ``none``."""
    return ";".join(sorted(names)) if names else NONE


@dataclass
class Labels:
    """Labelled frames: ``table`` has columns frame (or NaN), time_s (or NaN), names (frozenset)."""

    table: pd.DataFrame
    source: str
    image_ids: bool = False  # True when frames are still tutorial Image_IDs to resolve

    @property
    def characters(self) -> list[str]:
        """Every character named in the labels, sorted."""
        return sorted(set().union(*self.table["names"])) if len(self.table) else []


def read_labels(path: str | os.PathLike, classes: list[str] | None = None) -> Labels:
    """Read a labels CSV in either format. ``classes`` names the tutorial's integer classes in order."""
    df = read_csv(path, "labels file")
    df.columns = [str(c).strip() for c in df.columns]
    name = Path(path).name
    if len(df) == 0:
        raise ScreentimeError(f"labels file {path} has no rows; label some frames first")
    if {"Image_ID", "Class"} <= set(df.columns):
        return _read_mapping(df, path, classes)
    missing = [c for c in ("label",) if c not in df.columns]
    if missing or not ({"frame", "time_s"} & set(df.columns)):
        raise ScreentimeError(
            f"labels file {path} has columns {', '.join(df.columns)}; it needs 'label' and 'frame' and/or 'time_s' "
            "(or the tutorial's 'Image_ID,Class')")
    rows = []
    for i, row in enumerate(df.itertuples(index=False), start=2):
        where = f"{name} line {i}"
        names = parse_label(row.label, where)
        frame = _number(getattr(row, "frame", float("nan")), where, "frame", integer=True)
        time_s = _number(getattr(row, "time_s", float("nan")), where, "time_s")
        if math.isnan(frame) and math.isnan(time_s):
            raise ScreentimeError(f"{where}: no frame and no time_s; give at least one")
        if names is not None:
            rows.append((frame, time_s, names))
    return Labels(_dedupe(pd.DataFrame(rows, columns=["frame", "time_s", "names"]), path), str(path))


def _number(value: object, where: str, column: str, integer: bool = False) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ScreentimeError(f"{where}: {column} {value!r} is not a number") from None
    if number < 0 or (integer and number != int(number)):
        kind = "a whole number >= 0" if integer else "a number >= 0"
        raise ScreentimeError(f"{where}: {column} {value!r} must be {kind}")
    return number


def _read_mapping(df: pd.DataFrame, path: str | os.PathLike, classes: list[str] | None) -> Labels:
    names = [normalise_name(c) for c in (classes or TUTORIAL_CLASSES)]
    rows = []
    for i, row in enumerate(df.itertuples(index=False), start=2):
        where = f"{Path(path).name} line {i}"
        try:
            cls = int(row.Class)
            if cls != float(row.Class):
                raise ValueError
        except (TypeError, ValueError):
            raise ScreentimeError(f"{where}: Class {row.Class!r} is not a whole number") from None
        if not 0 <= cls < len(names):
            raise ScreentimeError(
                f"{where}: unknown class {cls}; --classes names only 0..{len(names) - 1} ({','.join(names)}); "
                "pass --classes with a name for every class")
        label = parse_label(names[cls], where)
        if label is not None:
            rows.append((str(row.Image_ID).strip(), float("nan"), label))
    return Labels(_dedupe(pd.DataFrame(rows, columns=["frame", "time_s", "names"]), path), str(path), image_ids=True)


def _dedupe(table: pd.DataFrame, path: str | os.PathLike) -> pd.DataFrame:
    key = "frame" if table["frame"].notna().all() else "time_s"
    for value, group in table.groupby(key, sort=False):
        if group["names"].nunique() > 1:
            labels = " and ".join(sorted({format_label(n) for n in group["names"]}))
            raise ScreentimeError(f"labels file {path}: {key} {value} is labelled twice, as {labels}; keep one")
    return table.drop_duplicates(subset=[key]).reset_index(drop=True)


def resolve_image_ids(labels: Labels, frames_csv: str | os.PathLike | None, nominal_fps: float) -> Labels:
    """Turn tutorial Image_IDs (``frame12.jpg``) into decoded frame indices.

    With the ``frames.csv`` that ``screentime extract`` wrote, its ``Image_ID,frame`` table is used.
    Without it, the tutorial's own numbering is assumed: image N is frame ``N * floor(fps)``.
    """
    if not labels.image_ids:
        return labels
    table = labels.table.copy()
    if frames_csv is not None:
        frames = read_csv(frames_csv, "frames file")
        if not {"Image_ID", "frame"} <= set(frames.columns):
            raise ScreentimeError(f"frames file {frames_csv} needs columns Image_ID,frame (as written by screentime extract)")
        lookup = dict(zip(frames["Image_ID"].astype(str).str.strip(), frames["frame"].astype(int)))
        unknown = [i for i in table["frame"] if i not in lookup]
        if unknown:
            raise ScreentimeError(f"Image_ID {unknown[0]} in {labels.source} is not in {frames_csv}; "
                                  "label only images that extract wrote")
        table["frame"] = [lookup[i] for i in table["frame"]]
        if "time_s" in frames:
            time_of = dict(zip(frames["frame"].astype(int), frames["time_s"].astype(float)))
            table["time_s"] = [time_of[f] for f in table["frame"]]
    else:
        step = max(1, math.floor(nominal_fps)) if nominal_fps else 1
        numbers = []
        for image_id in table["frame"]:
            match = re.search(r"(\d+)\.\w+$", image_id)
            if not match:
                raise ScreentimeError(f"Image_ID {image_id!r} in {labels.source} has no frame number; "
                                      "expected names like frame12.jpg")
            numbers.append(int(match.group(1)) * step)
        table["frame"] = numbers
    table["frame"] = table["frame"].astype(float)
    return Labels(_dedupe(table, labels.source), labels.source)


def resolve_times(labels: Labels, times: np.ndarray) -> Labels:
    """Give labels that only have ``time_s`` the index of the decoded frame nearest that time."""
    table = labels.table.copy()
    need = table["frame"].isna()
    if need.any():
        t = table.loc[need, "time_s"].to_numpy()
        pos = np.clip(np.searchsorted(times, t), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(t), int)
        if len(times) > 1:
            pos = np.where(np.abs(times[pos - 1] - t) <= np.abs(times[pos] - t), pos - 1, pos)
        late = t > times[-1] + 1.0
        if late.any():
            raise ScreentimeError(f"labels file {labels.source}: time_s {t[late][0]:.3f} is past the end of the video "
                                  f"({times[-1]:.3f} s); check the labels belong to this video")
        table.loc[need, "frame"] = pos.astype(float)
    return Labels(_dedupe(table, labels.source), labels.source)


def label_matrix(names: pd.Series, characters: list[str]) -> np.ndarray:
    """One row per frame, one 0/1 column per character."""
    return np.array([[c in n for c in characters] for n in names], dtype=np.float32).reshape(len(names), len(characters))
