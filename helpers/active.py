"""Which frame to label next, and how good the labels are so far (pure logic, no widgets).

- **Initial order** (:func:`initial_order`): one frame per shot first (the middle sample of each
  shot, shots taken farthest-point in time), then the remaining samples farthest-point in time, so
  that every prefix of the order is spread over the whole video.
- **Active learning** (:func:`propose`): once every character has at least ``MIN_EXAMPLES`` labelled
  frames with it and as many without it, a logistic head is trained on the labelled frames' cached
  features and the unlabelled samples are ranked by uncertainty: the probability closest to the
  decision threshold, taken over the characters (the most uncertain character decides).
- **Accuracy estimate** (:func:`estimate_accuracy`) and **review** (:func:`review`): the labelled
  frames are cut into contiguous blocks of time; each block is predicted by a head trained on the
  others (never a random split: neighbouring frames are near-duplicates and would flatter). The
  share of labelled frames whose whole set of characters is right is the estimate; labelled frames
  whose out-of-fold prediction disagrees with their label form the review list.

:class:`Planner` keeps a labelling session's state (labels, skipped frames, the latest retrain) and
:class:`Retrainer` retrains in a background thread after each label (or synchronously, for tests and
benchmarks). The labelling widget (``helpers.labeller``) and ``benchmarks/labels_needed.py`` use the
same code, so the measured order is the order a user sees.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from .calibration import exact_accuracy, time_blocks
from .heads import LogisticHead

#: Labelled frames with and without each character before the model proposes frames.
MIN_EXAMPLES = 3
#: Contiguous blocks of time for the cross-validated estimate and the review list.
BLOCKS = 5
#: Labelled frames needed before an accuracy estimate is shown.
MIN_FOR_ESTIMATE = 10
THRESHOLD = 0.5


# --------------------------------------------------------------------------------------------------
# The initial order: shots, then evenly in time


def farthest_in_time(times: np.ndarray, candidates: Sequence[int], chosen: Sequence[int] = ()) -> list[int]:
    """Order ``candidates`` (positions into ``times``) so each next one is farthest in time from all before.

    Positions in ``chosen`` count as already taken. With nothing chosen the first is the earliest.
    Ties go to the earlier sample, so the order is deterministic.
    """
    times = np.asarray(times, dtype=float)
    cand = np.array(sorted(set(int(c) for c in candidates) - set(int(c) for c in chosen)), dtype=np.int64)
    if not len(cand):
        return []
    t = times[cand]
    if len(chosen):
        taken = times[np.asarray(list(chosen), dtype=np.int64)]
        dist = np.min(np.abs(t[:, None] - taken[None, :]), axis=1)
    else:
        dist = np.full(len(cand), np.inf)
    order, alive = [], np.ones(len(cand), dtype=bool)
    for _ in range(len(cand)):
        score = np.where(alive, dist, -1.0)
        if not np.isfinite(score).any():  # nothing chosen yet: start at the earliest sample
            i = int(np.argmin(np.where(alive, t, np.inf)))
        else:
            i = int(np.argmax(score))
        order.append(int(cand[i]))
        alive[i] = False
        dist = np.minimum(dist, np.abs(t - t[i]))
    return order


def initial_order(frame_indices: Sequence[int], times: Sequence[float], shot_starts: Iterable[int] = (0,)) -> list[int]:
    """The frames of ``frame_indices`` in the order to label them before a model can help.

    First the middle sample of each shot (``shot_starts``: first decoded frame of each shot), shots
    taken farthest-point in time; then every other sample, farthest-point in time from those before.
    Returns frame indices (a permutation of ``frame_indices``).
    """
    frames = np.asarray(frame_indices, dtype=np.int64)
    times = np.asarray(times, dtype=float)
    if not len(frames):
        return []
    by_frame = np.argsort(frames, kind="stable")
    starts = sorted({int(s) for s in shot_starts} | {int(frames.min())})
    shot_of = np.searchsorted(np.asarray(starts), frames[by_frame], side="right") - 1
    middles = []
    for shot in np.unique(shot_of):
        members = by_frame[shot_of == shot]
        middles.append(int(members[len(members) // 2]))
    first = farthest_in_time(times, middles)
    rest = farthest_in_time(times, range(len(frames)), chosen=first)
    return [int(frames[p]) for p in first + rest]


def evenly_in_time(frame_indices: Sequence[int], times: Sequence[float]) -> list[int]:
    """The frames farthest-point in time, ignoring shots (the benchmark's 'evenly in time' order)."""
    return [int(np.asarray(frame_indices)[p]) for p in farthest_in_time(np.asarray(times, float), range(len(times)))]


# --------------------------------------------------------------------------------------------------
# Models on few labels


class TolerantHead:
    """A logistic head that also copes with a character never (or always) seen in training.

    Such a character is predicted absent (or present) everywhere: what a model trained on those
    labels would honestly do. Lets cross-validation run on few labels.
    """

    def __init__(self, make: Callable[[], object] = LogisticHead):
        self.make = make
        self.head = None
        self.constant: np.ndarray | None = None
        self.varying: np.ndarray | None = None

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "TolerantHead":
        Y = np.asarray(Y, dtype=np.float32)
        self.varying = Y.min(axis=0) != Y.max(axis=0)
        self.constant = Y[0].copy() if len(Y) else np.zeros(Y.shape[1], np.float32)
        self.head = self.make().fit(X, Y[:, self.varying]) if self.varying.any() else None
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        out = np.tile(self.constant.astype(float), (len(X), 1))
        if self.head is not None:
            out[:, self.varying] = self.head.predict_proba(X)
        return out


def ready(Y: np.ndarray, min_examples: int = MIN_EXAMPLES) -> bool:
    """Every character has at least ``min_examples`` labelled frames with it and as many without."""
    Y = np.asarray(Y)
    if Y.ndim != 2 or Y.shape[1] == 0 or len(Y) == 0:
        return False
    positives = Y.sum(axis=0)
    return bool(np.all(positives >= min_examples) and np.all(len(Y) - positives >= min_examples))


def uncertainty(proba: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """1 where a probability sits on the threshold, 0 where it is certain; max over characters."""
    proba = np.asarray(proba, dtype=float)
    scale = np.where(proba >= threshold, 1 - threshold, threshold)
    return np.max(1 - np.abs(proba - threshold) / scale, axis=1) if proba.shape[1] else np.zeros(len(proba))


def propose(X_candidates: np.ndarray, labelled_idx: Sequence[int], Y: np.ndarray, k: int | None = None, *,
            make_head: Callable[[], object] = LogisticHead, min_examples: int = MIN_EXAMPLES,
            exclude: Iterable[int] = ()) -> np.ndarray | None:
    """Positions of the unlabelled candidates to label next, most uncertain first (``k`` of them, or all).

    ``labelled_idx`` are positions into ``X_candidates`` row-aligned with ``Y``. Returns None while
    some character lacks ``min_examples`` frames with it or without it (use the initial order then).
    Ties (equally uncertain) go to the earlier position.
    """
    Y = np.asarray(Y, dtype=np.float32)
    if not ready(Y, min_examples):
        return None
    labelled = np.asarray(labelled_idx, dtype=np.int64)
    head = make_head().fit(X_candidates[labelled], Y)
    free = np.ones(len(X_candidates), dtype=bool)
    free[labelled] = False
    for e in exclude:
        free[int(e)] = False
    positions = np.flatnonzero(free)
    if not len(positions):
        return positions
    score = uncertainty(head.predict_proba(X_candidates[positions]))
    ranked = positions[np.argsort(-score, kind="stable")]
    return ranked if k is None else ranked[:k]


# --------------------------------------------------------------------------------------------------
# Time-blocked cross-validation: the accuracy estimate and the review list


def out_of_fold_by_time(X: np.ndarray, Y: np.ndarray, times: np.ndarray, k: int = BLOCKS,
                        make_head: Callable[[], object] = LogisticHead) -> np.ndarray | None:
    """Each labelled frame's probabilities from a head trained on the other ``k`` contiguous blocks of time.

    Unlike ``calibration.out_of_fold`` a fold whose training blocks lack a character still predicts
    (that character absent), so the estimate exists as soon as there are a few labels. None when
    there are fewer labels than blocks.
    """
    Y = np.asarray(Y, dtype=np.float32)
    if len(Y) < max(k, 2) or Y.shape[1] == 0:
        return None
    blocks = time_blocks(np.asarray(times, dtype=float), k)
    proba = np.zeros(Y.shape, dtype=float)
    for b in np.unique(blocks):
        train = blocks != b
        proba[~train] = TolerantHead(make_head).fit(X[train], Y[train]).predict_proba(X[~train])
    return proba


@dataclass
class Estimate:
    """Cross-validated accuracy of a model trained on the labels so far."""

    accuracy: float  # share of labelled frames whose whole set of characters is right, out-of-fold
    labels: int
    blocks: int
    per_character: dict[str, float] = field(default_factory=dict)

    @property
    def stderr(self) -> float:
        """Binomial standard error of ``accuracy`` (frames are not independent: a rough guide)."""
        return float(np.sqrt(max(self.accuracy * (1 - self.accuracy), 1e-12) / max(self.labels, 1)))

    def describe(self) -> str:
        return (f"estimated accuracy {100 * self.accuracy:.0f}% ± {100 * self.stderr:.0f}% "
                f"({self.labels} labels, {self.blocks} blocks of time)")


def estimate_accuracy(X: np.ndarray, Y: np.ndarray, times: np.ndarray, characters: Sequence[str] = (),
                      k: int = BLOCKS, proba: np.ndarray | None = None, min_labels: int = MIN_FOR_ESTIMATE,
                      make_head: Callable[[], object] = LogisticHead) -> Estimate | None:
    """Time-blocked cross-validated exact accuracy on the labelled frames (None below ``min_labels``)."""
    Y = np.asarray(Y, dtype=np.float32)
    if len(Y) < min_labels:
        return None
    if proba is None:
        proba = out_of_fold_by_time(X, Y, times, k, make_head)
    if proba is None:
        return None
    present = proba >= THRESHOLD
    per = {name: float(np.mean(present[:, j] == Y[:, j].astype(bool))) for j, name in enumerate(characters)}
    return Estimate(exact_accuracy(present, Y), len(Y), k, per)


@dataclass
class Disagreement:
    """A labelled frame whose out-of-fold prediction disagrees with its label."""

    position: int  # row in the X/Y given to review()
    predicted: frozenset
    labelled: frozenset
    confidence: float  # how far the prediction is on the wrong side, 0..1 (largest over characters)


def review(Y: np.ndarray, proba: np.ndarray | None, characters: Sequence[str], limit: int | None = None,
           min_confidence: float = 0.0) -> list[Disagreement]:
    """Labelled frames whose out-of-fold prediction (``proba``) disagrees with the label, surest first."""
    if proba is None:
        return []
    Y = np.asarray(Y).astype(bool)
    present = proba >= THRESHOLD
    wrong = present != Y
    out = []
    for i in np.flatnonzero(wrong.any(axis=1)):
        confidence = float(np.max(np.abs(proba[i] - THRESHOLD)[wrong[i]]) / 0.5)
        if confidence >= min_confidence:
            out.append(Disagreement(int(i), frozenset(c for c, on in zip(characters, present[i]) if on),
                                    frozenset(c for c, on in zip(characters, Y[i]) if on), confidence))
    out.sort(key=lambda d: (-d.confidence, d.position))
    return out[:limit] if limit else out


# --------------------------------------------------------------------------------------------------
# A labelling session


@dataclass
class Retrain:
    """What one retrain found; ``version`` counts label changes, so a stale result can be told apart."""

    version: int
    labels: int
    proposals: np.ndarray | None  # candidate positions, most uncertain first; None: not ready, use the initial order
    estimate: Estimate | None
    review: list[tuple[int, Disagreement]]  # (candidate position, disagreement)


class Planner:
    """The state of a labelling session over candidate samples (row-aligned ``frames``, ``times``, ``X``).

    ``labels`` maps a candidate position to its set of characters (``frozenset()`` = none) or to
    None (``ignore``: labelled, not used). ``skipped`` holds positions skipped in this session.
    """

    def __init__(self, frames: Sequence[int], times: Sequence[float], X: np.ndarray, characters: list[str],
                 shot_starts: Iterable[int] = (0,), *, background: bool = False,
                 make_head: Callable[[], object] = LogisticHead, min_examples: int = MIN_EXAMPLES,
                 estimate: bool = True):
        self.frames = np.asarray(frames, dtype=np.int64)
        self.times = np.asarray(times, dtype=float)
        self.X = np.asarray(X)
        self.characters = characters  # shared with the caller: adding a character here adds it there
        self.make_head = make_head
        self.min_examples = min_examples
        self.estimate = estimate  # False: only propose frames (no cross-validation; the benchmark's fast mode)
        self.position_of = {int(f): i for i, f in enumerate(self.frames)}
        self.order = [self.position_of[f] for f in initial_order(self.frames, self.times, shot_starts)]
        self.labels: dict[int, frozenset | None] = {}
        self.skipped: set[int] = set()
        self.version = 0
        self.history: list[tuple[int, float]] = []  # (labels, estimated accuracy) after each retrain
        self._lock = threading.Lock()
        self.result = Retrain(0, 0, None, None, [])
        self.retrainer = Retrainer(self.retrain, background=background)

    # -- labels

    def set_label(self, position: int, names: frozenset | None, *, unlabel: bool = False) -> None:
        """Record a label (``None`` = ignore; ``unlabel=True`` removes it) and schedule a retrain."""
        with self._lock:
            if unlabel:
                self.labels.pop(int(position), None)
            else:
                self.labels[int(position)] = None if names is None else frozenset(names)
            self.version += 1
        self.retrainer.schedule()

    def training_set(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Positions of frames labelled with characters (or none), their 0/1 matrix, and the version."""
        with self._lock:
            used = sorted(p for p, n in self.labels.items() if n is not None)
            Y = np.array([[c in self.labels[p] for c in self.characters] for p in used], dtype=np.float32)
            return np.asarray(used, dtype=np.int64), Y.reshape(len(used), len(self.characters)), self.version

    # -- the next frame

    def next_position(self, exclude: Iterable[int] = ()) -> int | None:
        """The candidate to label next: the model's most uncertain, else the next in the initial order."""
        done = set(self.labels) | self.skipped | {int(e) for e in exclude}
        result = self.result
        if result.proposals is not None:
            for p in result.proposals:
                if int(p) not in done:
                    return int(p)
        for p in self.order:
            if p not in done:
                return p
        return None

    def is_active(self) -> bool:
        """Whether the latest retrain proposes frames (enough labels of every character)."""
        return self.result.proposals is not None

    # -- retraining

    def retrain(self) -> Retrain:
        """Train on the labels, rank the unlabelled candidates, estimate accuracy, list disagreements."""
        used, Y, version = self.training_set()
        characters = list(self.characters)[: Y.shape[1]]
        proposals = propose(self.X, used, Y, make_head=self.make_head, min_examples=self.min_examples)
        proba = (out_of_fold_by_time(self.X[used], Y, self.times[used], BLOCKS, self.make_head)
                 if self.estimate and len(used) >= MIN_FOR_ESTIMATE and Y.shape[1] else None)
        estimate = estimate_accuracy(self.X[used], Y, self.times[used], characters, proba=proba,
                                     make_head=self.make_head) if proba is not None else None
        disagreements = [(int(used[d.position]), d) for d in review(Y, proba, characters)]
        result = Retrain(version, len(used), proposals, estimate, disagreements)
        with self._lock:
            if version >= self.result.version:
                self.result = result
                if estimate is not None and (not self.history or self.history[-1][0] != len(used)):
                    self.history.append((len(used), estimate.accuracy))
        return result


class Retrainer:
    """Run ``work`` after each change: in a background thread (coalescing bursts), or right away.

    Background mode never blocks the caller; changes made while a retrain runs trigger exactly one
    more retrain. ``on_done(result)`` is called after each run (in the worker thread).
    """

    def __init__(self, work: Callable[[], object], background: bool = True,
                 on_done: Callable[[object], None] | None = None):
        self.work = work
        self.background = background
        self.on_done = on_done
        self.errors: list[BaseException] = []
        self._pending = False
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()

    def schedule(self) -> None:
        if not self.background:
            self._run_once()
            return
        with self._cond:
            self._pending = True
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="screentime-retrain", daemon=True)
                self._thread.start()

    def _run_once(self) -> None:
        try:
            result = self.work()
        except Exception as exc:  # a failed retrain must not break labelling; the next label retries
            self.errors.append(exc)
            return
        if self.on_done is not None:
            self.on_done(result)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending:
                    self._thread = None
                    self._cond.notify_all()
                    return
                self._pending = False
            self._run_once()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until no retrain is running or pending (True), or ``timeout`` seconds pass (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._thread is None and not self._pending, timeout)
