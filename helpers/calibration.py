"""Choosing thresholds and smoothing strength on the training labels, honestly.

Neighbouring frames are near-duplicates, so a random split flatters. Here the labelled frames are
cut into contiguous blocks of time; each block is predicted by a head trained on the other blocks
(out-of-fold), and the per-character thresholds and the smoothing strength are chosen on those
out-of-fold predictions: the preferred one (threshold 0.5, one second of smoothing) unless another
scores better by more than one standard error.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .heads import Head
from .progress import progress
from .smoothing import STRENGTHS, smooth

THRESHOLDS = np.round(np.arange(0.2, 0.81, 0.05), 2)
#: Among equally good strengths, prefer one second (characters stay on screen for seconds), then
#: milder ones; no smoothing only when validation says it is clearly best.
PREFERENCE = (1.0, 0.5, 2.0, 3.0, 0.0)
MIN_LABELS = 15


def within_noise_of_best(best: float, n_labels: int) -> tuple[float, float]:
    """The lowest validated accuracy that counts as equally good as ``best`` on ``n_labels`` labels,
    and the tolerance: one standard error, sqrt(p (1 - p) / n) (0 for a perfect score)."""
    tolerance = math.sqrt(best * (1 - best) / max(n_labels, 1))
    return best - tolerance - 1e-9, tolerance


def choose_strength(scores: dict[float, float], n_labels: int) -> tuple[float, float]:
    """The preferred strength (``PREFERENCE``) among those whose validated accuracy is within one
    standard error of the best, and that tolerance.

    The one-standard-error rule of model selection: a difference smaller than the validation's own
    noise, sqrt(p (1 - p) / n), is no evidence. With labels once a second, 0.5 or 1 s of smoothing
    changes only a few labelled samples, so without the rule one label more or less decided it
    (docs/accuracy.md). A perfect score has no noise: then only exact ties count.
    """
    floor, tolerance = within_noise_of_best(max(scores.values()), n_labels)
    return next(s for s in PREFERENCE if scores[s] >= floor), tolerance


def choose_threshold(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """One character's threshold: the one nearest 0.5 among ``THRESHOLDS`` whose out-of-fold
    accuracy is within one standard error of the best, and that tolerance.

    The same rule as :func:`choose_strength`: with a few hundred labels, a threshold far from 0.5
    can win by a label or two, which is validation's noise, not evidence (docs/accuracy.md: with
    300 labels, 0.8 for a character whose screen time then came out 3% short).
    """
    scores = [np.mean((proba >= t) == y.astype(bool)) for t in THRESHOLDS]
    floor, tolerance = within_noise_of_best(max(scores), len(y))
    candidates = [t for t, s in zip(THRESHOLDS, scores) if s >= floor]
    return float(min(candidates, key=lambda t: abs(t - 0.5))), tolerance


def validated_accuracy(calibration: dict[str, Any], strength_s: float) -> float | None:
    """Out-of-fold accuracy at ``strength_s`` from what :func:`calibrate` returned (or ``model.json``
    recorded), or None when validation did not run."""
    scores = calibration.get("accuracy_by_strength_s")
    return scores.get(f"{strength_s:g}") if scores else None


def time_blocks(times_s: np.ndarray, k: int) -> np.ndarray:
    """Block number (0..k-1) of each sample: k contiguous stretches of time with equal counts."""
    order = np.argsort(times_s, kind="stable")
    blocks = np.empty(len(times_s), dtype=int)
    for b, chunk in enumerate(np.array_split(order, k)):
        blocks[chunk] = b
    return blocks


def out_of_fold(X: np.ndarray, Y: np.ndarray, blocks: np.ndarray, make_head: Callable[[], Head]) -> np.ndarray | None:
    """Each block's probabilities from a head trained on the other blocks (None if a fold lacks a class)."""
    proba = np.zeros(Y.shape, dtype=float)
    for b in progress(np.unique(blocks), desc="validating", unit="time block"):
        train = blocks != b
        ys = Y[train]
        if (ys.min(axis=0) == ys.max(axis=0)).any():
            return None
        proba[~train] = make_head().fit(X[train], ys).predict_proba(X[~train])
    return proba


def exact_accuracy(present: np.ndarray, Y: np.ndarray) -> float:
    """Share of samples whose whole set of characters is right."""
    return float(np.mean(np.all(present == Y.astype(bool), axis=1)))


def calibrate(X: np.ndarray, Y: np.ndarray, times_s: np.ndarray, make_head: Callable[[], Head],
              k: int = 5) -> dict[str, Any]:
    """Thresholds per character and a smoothing rate chosen on time-blocked out-of-fold predictions."""
    n_chars = Y.shape[1]
    default = {"thresholds": [0.5] * n_chars, "strength_s": 0.0, "validation": "not enough labels"}
    if len(Y) < MIN_LABELS:
        return default
    blocks = time_blocks(times_s, k)
    proba = out_of_fold(X, Y, blocks, make_head)
    if proba is None:
        return {**default, "validation": "a time block lacks examples of a class"}
    order = np.argsort(times_s, kind="stable")
    proba, Y, times, blocks = proba[order], Y[order], times_s[order], blocks[order]
    breaks = [i for i in range(1, len(blocks)) if blocks[i] != blocks[i - 1]]

    chosen = [choose_threshold(proba[:, j], Y[:, j]) for j in range(n_chars)]
    thresholds = [threshold for threshold, _ in chosen]

    raw = exact_accuracy(proba >= np.array(thresholds), Y)
    scores = {s: exact_accuracy(smooth(proba, times, s, thresholds, breaks), Y) for s in STRENGTHS}
    strength, tolerance = choose_strength(scores, len(Y))
    return {"thresholds": thresholds, "strength_s": strength,
            "validation": f"{k} contiguous time blocks of the labelled frames, out-of-fold",
            "accuracy_raw": round(raw, 4),
            "accuracy_by_strength_s": {f"{s:g}": round(a, 4) for s, a in scores.items()},
            "strength_tolerance": round(tolerance, 4),
            "threshold_tolerance": [round(tol, 4) for _, tol in chosen]}
