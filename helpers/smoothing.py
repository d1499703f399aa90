"""Temporal smoothing: characters stay on screen for seconds, so decisions should not flicker.

For each character the smoothed decision is the on/off sequence that best agrees with the
classifier over *time* while paying a fixed price for every switch:

    cost = sum over samples of  seconds_i * (-log p_i(state_i))  +  penalty * (number of switches)

Evidence is weighted by the seconds each sample stands for, so the strength means the same at
any sampling rate. The strength ``strength_s`` is in seconds: a change backed by clear evidence
(probability 0.9 against 0.1) must last about ``strength_s`` seconds to be kept; shorter flickers
are smoothed away. ``strength_s = 0`` turns smoothing off. The sequence restarts freely at
``breaks`` (sample indices that begin a new stretch, e.g. a shot cut or a validation block).
The best sequence is found exactly by dynamic programming (Viterbi).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

#: Candidate strengths (seconds) tried at training time; 0 = no smoothing.
STRENGTHS = (0.0, 0.5, 1.0, 2.0, 3.0)
_CLEAR_EVIDENCE = math.log(0.9 / 0.1)


def sample_weights(times_s: np.ndarray) -> np.ndarray:
    """Seconds each sample stands for (until the next one; the last one a typical interval)."""
    times = np.asarray(times_s, dtype=float)
    if len(times) < 2:
        return np.ones(len(times))
    gaps = np.diff(times)
    return np.append(gaps, np.median(gaps)).clip(min=1e-6)


def viterbi(proba: np.ndarray, times_s: np.ndarray, strength_s: float, breaks: Sequence[int] = ()) -> np.ndarray:
    """Smoothed presence (bool per sample) of one character from its per-sample probabilities."""
    p = np.clip(np.asarray(proba, dtype=float), 1e-6, 1 - 1e-6)
    n = len(p)
    if n == 0 or strength_s <= 0:
        return p >= 0.5
    w = sample_weights(times_s)
    cost = np.stack([-np.log(1 - p), -np.log(p)], axis=1) * w[:, None]  # state 0 absent, 1 present
    penalty = np.full(n, strength_s * _CLEAR_EVIDENCE / 2)
    penalty[[b for b in breaks if 0 < b < n]] = 0.0
    total = cost[0].copy()
    came_from = np.zeros((n, 2), dtype=np.int8)
    for i in range(1, n):
        stay, switch = total, total[::-1] + penalty[i]
        came_from[i] = np.where(stay <= switch, [0, 1], [1, 0])
        total = np.minimum(stay, switch) + cost[i]
    path = np.empty(n, dtype=bool)
    state = int(np.argmin(total))
    for i in range(n - 1, -1, -1):
        path[i] = bool(state)
        state = int(came_from[i, state])
    return path


def smooth(proba: np.ndarray, times_s: np.ndarray, strength_s: float, thresholds: Sequence[float],
           breaks: Sequence[int] = ()) -> np.ndarray:
    """Smoothed presence for every character (columns of ``proba``), each at its own threshold.

    A threshold t shifts the evidence so that probability t counts as even odds.
    """
    out = np.zeros(proba.shape, dtype=bool)
    for j, t in enumerate(thresholds):
        out[:, j] = viterbi(_shift(proba[:, j], t), times_s, strength_s, breaks)
    return out


def _shift(p: np.ndarray, threshold: float) -> np.ndarray:
    """Move probabilities so that ``threshold`` maps to 0.5 (a shift in log-odds)."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    t = min(max(threshold, 1e-3), 1 - 1e-3)
    logit = np.log(p / (1 - p)) - math.log(t / (1 - t))
    return 1 / (1 + np.exp(-logit))
