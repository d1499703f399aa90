"""Screen-time arithmetic: each sampled frame stands for the time until the next sample."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def sample_durations(times_s: Sequence[float], duration_s: float) -> np.ndarray:
    """Seconds each sample stands for: up to the next sample, the last one up to the video's end."""
    times = np.asarray(times_s, dtype=float)
    if len(times) == 0:
        return times
    ends = np.append(times[1:], max(duration_s, times[-1]))
    return np.clip(ends - times, 0.0, None)


def segments(times_s: Sequence[float], present: Sequence[bool], duration_s: float) -> list[tuple[float, float]]:
    """Appearance intervals ``(start_s, end_s)``: maximal runs of consecutive samples where present."""
    times = np.asarray(times_s, dtype=float)
    flags = np.asarray(present, dtype=bool)
    ends = times + sample_durations(times, duration_s)
    out: list[tuple[float, float]] = []
    start = None
    for i, flag in enumerate(flags):
        if flag and start is None:
            start = times[i]
        if start is not None and (not flag or i == len(flags) - 1):
            out.append((float(start), float(ends[i] if flag else times[i])))
            start = None
    return out


def screen_time_tables(
    times_s: Sequence[float], presence: np.ndarray, characters: list[str], duration_s: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per character: (seconds, percent, appearances) table and the appearance segments table.

    ``presence`` is a boolean array, one row per sample and one column per character.
    """
    weights = sample_durations(times_s, duration_s)
    presence = np.asarray(presence, dtype=bool).reshape(len(weights), len(characters))
    rows, segs = [], []
    for j, name in enumerate(characters):
        runs = segments(times_s, presence[:, j], duration_s)
        seconds = float(weights[presence[:, j]].sum())
        rows.append((name, round(seconds, 3), round(100.0 * seconds / duration_s, 2) if duration_s > 0 else 0.0, len(runs)))
        segs.extend((name, round(a, 3), round(b, 3), round(b - a, 3)) for a, b in runs)
    table = pd.DataFrame(rows, columns=["character", "seconds", "percent", "appearances"])
    seg_table = pd.DataFrame(segs, columns=["character", "start_s", "end_s", "duration_s"])
    return table, seg_table
