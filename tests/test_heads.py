"""The heads' standardisation: a fused backbone's parts weigh alike in the head, whatever their sizes."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.heads import load_head, make_head


def separable_with_noise(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """4 features that tell the character apart, then 400 of pure noise (a small part and a large one)."""
    y = rng.integers(0, 2, n)
    telling = y[:, None] + rng.normal(0, 1, (n, 4))
    return np.hstack([telling, rng.normal(0, 1, (n, 400))]).astype(np.float32), y[:, None]


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_a_small_telling_part_is_not_drowned_by_a_large_noisy_one(kind):
    rng = np.random.default_rng(0)
    X, Y = separable_with_noise(60, rng)
    X_new, Y_new = separable_with_noise(2000, rng)
    accuracy = {}
    for blocks in (None, [4, 400]):
        head = make_head(kind, epochs=30, blocks=blocks).fit(X, Y)
        accuracy[str(blocks)] = np.mean((head.predict_proba(X_new) >= 0.5) == Y_new)
    assert accuracy["[4, 400]"] >= 0.75
    assert accuracy["[4, 400]"] >= accuracy["None"] + 0.1, accuracy


def test_each_part_gets_the_same_total_variance():
    X = np.random.default_rng(1).normal(0, [1.0] * 2 + [5.0] * 8, (500, 10))
    head = make_head("logistic", blocks=[2, 8]).fit(X, (X[:, :1] > 0).astype(int))
    Xs = head.scaler(X)
    assert Xs[:, :2].var(axis=0).sum() == pytest.approx(5.0, rel=1e-3)  # the mean part size
    assert Xs[:, 2:].var(axis=0).sum() == pytest.approx(5.0, rel=1e-3)
    assert make_head("logistic").fit(X, (X[:, :1] > 0).astype(int)).scaler(X).var(axis=0) == pytest.approx(1.0, rel=1e-3)
    with pytest.raises(ValueError, match="do not add up to 10 features"):
        make_head("logistic", blocks=[2, 9]).fit(X, (X[:, :1] > 0).astype(int))


def test_the_weighing_is_saved_with_the_head(tmp_path):
    X, Y = separable_with_noise(60, np.random.default_rng(2))
    head = make_head("logistic", blocks=[4, 400]).fit(X, Y)
    head.save(tmp_path)
    assert np.array_equal(load_head("logistic", tmp_path).predict_proba(X), head.predict_proba(X))
