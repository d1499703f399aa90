"""Which frame to label next (initial order, active learning) and the time-blocked accuracy estimate."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from helpers import active


def test_farthest_in_time_spreads_every_prefix():
    times = np.arange(101, dtype=float)
    order = active.farthest_in_time(times, range(101))
    assert sorted(order) == list(range(101))
    assert order[:3] == [0, 100, 50]
    for k in (3, 5, 9, 17, 33):  # after k picks no gap is more than twice the even spacing
        picked = np.sort(times[order[:k]])
        assert np.diff(picked).max() <= 2 * 100 / (k - 1) + 1e-9


def test_farthest_in_time_respects_what_is_already_chosen():
    times = np.arange(11, dtype=float)
    assert active.farthest_in_time(times, range(11), chosen=[0, 10])[:1] == [5]
    assert active.farthest_in_time(times, [], chosen=[1]) == []


def test_initial_order_takes_one_frame_per_shot_first_then_evenly_in_time():
    frames = np.arange(0, 1000, 25)  # 40 samples of a 25 fps video, one per second
    times = frames / 25.0
    shots = [0, 100, 400, 425, 900]  # 5 shots: 4, 12, 1, 19 and 4 samples
    order = active.initial_order(frames, times, shots)
    assert sorted(order) == list(frames)
    first = order[:5]
    shot_of = np.searchsorted(shots, first, side="right") - 1
    assert sorted(shot_of) == [0, 1, 2, 3, 4]  # one per shot
    assert first[0] == 50  # middle sample of the first shot (0, 25, 50, 75)
    assert 400 in first  # a one-sample shot is not forgotten
    assert active.initial_order(frames, times, shots) == order  # deterministic
    # Without cuts: evenly in time from the start.
    assert active.initial_order(frames, times, [0])[:3] == [500, 0, 975]
    assert active.evenly_in_time(frames, times)[:3] == [0, 975, 475]
    assert active.initial_order([], [], [0]) == []


def test_ready_needs_three_frames_with_and_without_each_character():
    Y = np.array([[1, 0]] * 3 + [[0, 1]] * 3, dtype=float)
    assert active.ready(Y)
    assert not active.ready(Y[1:])
    assert not active.ready(np.ones((10, 1)))  # never seen without it
    assert not active.ready(np.zeros((0, 2)))
    assert not active.ready(np.zeros((5, 0)))


def test_uncertainty_is_largest_at_the_threshold_and_takes_the_least_sure_character():
    proba = np.array([[0.5, 0.0], [0.99, 0.02], [0.9, 0.4], [0.75, 1.0]])
    u = active.uncertainty(proba)
    assert u[0] == pytest.approx(1.0) and u[1] < 0.05
    assert u[2] == pytest.approx(0.8) and u[3] == pytest.approx(0.5)


def _separable(n=60, seed=0):
    """Two characters, each decided by its own feature; times in order."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0.3], axis=1).astype(np.float32)
    return X, Y, np.arange(n, dtype=float)


def test_propose_ranks_frames_near_the_boundary_first_and_never_a_labelled_one():
    X, Y, _ = _separable(200)
    labelled = list(range(0, 200, 10))
    assert active.propose(X, labelled[:4], Y[labelled[:4]]) is None  # not enough of each yet
    ranked = active.propose(X, labelled, Y[labelled])
    assert len(ranked) == 200 - len(labelled) and not set(ranked) & set(labelled)
    margin = np.minimum(np.abs(X[:, 0]), np.abs(X[:, 1] - 0.3))
    top, bottom = ranked[:20], ranked[-20:]
    assert margin[top].mean() < margin[bottom].mean() / 3
    assert list(active.propose(X, labelled, Y[labelled], k=5)) == list(ranked[:5])
    assert 7 not in active.propose(X, labelled, Y[labelled], exclude=[7])


def test_time_blocked_estimate_is_honest_where_a_random_split_would_flatter():
    # 12 scenes of 10 near-identical frames each; the label is a coin toss per scene, unrelated to
    # anything a new scene would show. Random folds see every scene in training and score ~100%;
    # contiguous time blocks hold out whole scenes and score what the model really knows (chance).
    rng = np.random.default_rng(1)
    scenes = np.repeat(np.arange(12), 10)
    looks = rng.normal(size=(12, 40))
    X = (looks[scenes] + rng.normal(scale=0.01, size=(120, 40))).astype(np.float32)
    Y = (rng.random(12) < 0.5)[scenes].astype(np.float32)[:, None]
    times = np.arange(120, dtype=float)
    estimate = active.estimate_accuracy(X, Y, times, ["tom"])
    assert estimate is not None and estimate.labels == 120 and estimate.blocks == 5
    assert estimate.accuracy < 0.75
    shuffled = active.estimate_accuracy(X, Y, rng.permutation(times), ["tom"])  # what random folds would say
    assert shuffled.accuracy > 0.95
    assert "estimated accuracy" in estimate.describe() and 0 < estimate.stderr < 0.1


def test_estimate_on_separable_labels_and_too_few_labels():
    X, Y, times = _separable(80)
    estimate = active.estimate_accuracy(X, Y, times, ["jerry", "tom"])
    assert estimate.accuracy > 0.85 and set(estimate.per_character) == {"jerry", "tom"}
    assert active.estimate_accuracy(X[:5], Y[:5], times[:5]) is None
    # A character seen in one stretch only: the estimate still exists (predicted absent elsewhere).
    Y2 = Y.copy()
    Y2[:, 1] = 0
    Y2[:6, 1] = 1
    assert active.estimate_accuracy(X, Y2, times, ["jerry", "tom"]) is not None


def test_review_lists_labels_the_out_of_fold_model_contradicts_surest_first():
    X, Y, times = _separable(100, seed=3)
    wrong = [int(np.argmax(X[:, 0])), int(np.argmin(X[:, 0]))]  # the clearest jerry and clearest not-jerry
    Y_bad = Y.copy()
    Y_bad[wrong, 0] = 1 - Y_bad[wrong, 0]
    proba = active.out_of_fold_by_time(X, Y_bad, times)
    found = active.review(Y_bad, proba, ["jerry", "tom"])
    assert {d.position for d in found[:2]} == set(wrong)
    assert found[0].confidence >= found[-1].confidence
    d = next(d for d in found if d.position == wrong[0])
    assert "jerry" not in d.labelled and "jerry" in d.predicted
    assert active.review(Y, None, ["jerry", "tom"]) == []


def test_tolerant_head_predicts_a_constant_character_as_seen():
    X, Y, _ = _separable(40)
    Y[:, 1] = 0
    proba = active.TolerantHead().fit(X, Y).predict_proba(X)
    assert proba.shape == (40, 2) and np.all(proba[:, 1] == 0)
    assert np.mean((proba[:, 0] >= 0.5) == Y[:, 0]) > 0.9


def _planner(n=90, **kwargs):
    X, Y, times = _separable(n, seed=5)
    frames = np.arange(n) * 25
    return active.Planner(frames, times, X, ["jerry", "tom"], [0, 25 * 30, 25 * 60], **kwargs), Y


def test_planner_follows_the_initial_order_then_the_models_doubts():
    planner, Y = _planner()
    seen = []
    while not planner.is_active():
        p = planner.next_position()
        assert p == next(q for q in planner.order if q not in seen)
        planner.set_label(p, frozenset(c for c, on in zip(["jerry", "tom"], Y[p]) if on))
        seen.append(p)
    assert len(seen) >= 6 and active.ready(Y[seen])
    p = planner.next_position()
    assert p == planner.result.proposals[0] and p not in seen
    planner.skipped.add(p)
    assert planner.next_position() == planner.result.proposals[1]
    planner.set_label(seen[0], None)  # ignore: still labelled, no longer trained on
    used, _, _ = planner.training_set()
    assert seen[0] not in used and len(used) == len(seen) - 1
    planner.set_label(seen[0], None, unlabel=True)
    assert seen[0] not in planner.labels


def test_planner_estimates_and_reviews_once_it_has_enough_labels():
    planner, Y = _planner()
    for p in planner.order[:active.MIN_FOR_ESTIMATE - 1]:
        planner.set_label(p, frozenset(c for c, on in zip(["jerry", "tom"], Y[p]) if on))
    assert planner.result.estimate is None
    flipped = planner.order[active.MIN_FOR_ESTIMATE - 1]
    planner.set_label(flipped, frozenset({"jerry", "tom"}) - frozenset(c for c, on in zip(["jerry", "tom"], Y[flipped]) if on))
    assert planner.result.estimate is not None and planner.history[-1][0] == active.MIN_FOR_ESTIMATE
    assert all(p in planner.labels for p, _ in planner.result.review)


def test_retrainer_in_the_background_coalesces_and_never_blocks():
    runs, gate = [], threading.Event()

    def work():
        gate.wait(5)
        runs.append(time.time())
        return len(runs)

    done = []
    retrainer = active.Retrainer(work, background=True, on_done=done.append)
    start = time.time()
    for _ in range(20):
        retrainer.schedule()
    assert time.time() - start < 0.5  # the caller never waits for a retrain
    gate.set()
    assert retrainer.wait(10)
    assert 1 <= len(runs) <= 2 and done == list(range(1, len(runs) + 1))  # 20 changes, at most 2 retrains


def test_retrainer_keeps_going_after_a_failed_retrain():
    calls = []

    def work():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("boom")
        return "ok"

    retrainer = active.Retrainer(work, background=False)
    retrainer.schedule()
    retrainer.schedule()
    assert len(calls) == 2 and isinstance(retrainer.errors[0], ValueError)


def test_planner_in_background_mode_ends_with_the_latest_labels():
    planner, Y = _planner(background=True)
    for p in planner.order[:30]:
        planner.set_label(p, frozenset(c for c, on in zip(["jerry", "tom"], Y[p]) if on))
    assert planner.retrainer.wait(30)
    assert planner.result.version == planner.version and planner.result.labels == 30
