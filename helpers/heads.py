"""Classifier heads on top of backbone features: one presence probability per character.

- ``logistic`` (default): standardised features, one class-balanced logistic regression per
  character (scikit-learn). Fast, stable with a few dozen labels.
- ``mlp``: a Keras dense head (hidden layer, dropout, sigmoid outputs) trained with a
  class-weighted binary cross-entropy, as the tutorial's "what worked" suggested.
- ``detector``: a small network on a whole-frame backbone's feature map (:mod:`helpers.detector`).

A frame can show several characters, so each character is its own yes/no decision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from .errors import ScreentimeError

HEADS = ("logistic", "mlp", "detector")


class Head(Protocol):
    kind: str

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "Head": ...

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...

    def save(self, folder: Path) -> None: ...


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Probabilities from scores (logits), without overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def class_weighted_bce(Y: np.ndarray, ops, *, balanced: bool = True, from_logits: bool = False):
    """A Keras loss: binary cross-entropy per character, each character's positives weighted by
    negatives / positives in ``Y`` (``balanced``) so that a rare character counts as much as a common
    one. ``from_logits``: the model outputs scores, not probabilities."""
    positives = Y.mean(axis=0).clip(1e-3, 1 - 1e-3)
    pos_weight = ((1 - positives) / positives).astype(np.float32) if balanced else np.ones(Y.shape[1], np.float32)

    def loss(y_true, y_pred):
        p = ops.clip(ops.sigmoid(y_pred) if from_logits else y_pred, 1e-7, 1 - 1e-7)
        return ops.mean(-(pos_weight * y_true * ops.log(p) + (1 - y_true) * ops.log(1 - p)), axis=-1)

    return loss


class _Standardiser:
    """Each feature to zero mean and unit variance; with ``blocks`` (the sizes of a fused backbone's
    parts, in order), each part is then scaled so that all parts have the same total variance.

    Without that, standardising gives every feature the same weight, so a 512-feature network part
    outweighs a 264-feature colour part by its size alone (and the parts' L2 normalisation is undone).
    """

    def __init__(self, mean: np.ndarray | None = None, scale: np.ndarray | None = None,
                 blocks: Sequence[int] | None = None):
        self.mean, self.scale = mean, scale
        self.blocks = list(blocks) if blocks else None

    def fit(self, X: np.ndarray) -> "_Standardiser":
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale = np.where(std > 1e-8, std, 1.0)
        if self.blocks and len(self.blocks) > 1:
            if sum(self.blocks) != X.shape[1]:
                raise ValueError(f"feature blocks {self.blocks} do not add up to {X.shape[1]} features")
            sizes = np.array(self.blocks, dtype=float)
            # Dividing a part of d features by sqrt(d / mean size) gives it a total variance of the mean size.
            self.scale = self.scale * np.repeat(np.sqrt(sizes / sizes.mean()), self.blocks)
        return self

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return ((X - self.mean) / self.scale).astype(np.float32)


class LogisticHead:
    """One L2-regularised, class-balanced logistic regression per character."""

    kind = "logistic"

    def __init__(self, C: float = 0.1, seed: int = 0, blocks: Sequence[int] | None = None):
        self.C, self.seed = C, seed
        self.scaler = _Standardiser(blocks=blocks)
        self.coef = self.intercept = None

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "LogisticHead":
        from sklearn.linear_model import LogisticRegression

        self.scaler.fit(X)
        Xs = self.scaler(X)
        coefs, intercepts = [], []
        for j in range(Y.shape[1]):
            clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=2000, random_state=self.seed)
            clf.fit(Xs, Y[:, j])
            coefs.append(clf.coef_[0])
            intercepts.append(clf.intercept_[0])
        self.coef, self.intercept = np.array(coefs, np.float32), np.array(intercepts, np.float32)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(self.scaler(X) @ self.coef.T + self.intercept)

    def save(self, folder: Path) -> None:
        np.savez(folder / "head.npz", mean=self.scaler.mean, scale=self.scaler.scale,
                 coef=self.coef, intercept=self.intercept, C=self.C)

    @classmethod
    def load(cls, folder: Path) -> "LogisticHead":
        with np.load(folder / "head.npz") as data:
            head = cls(C=float(data["C"]))
            head.scaler = _Standardiser(data["mean"], data["scale"])
            head.coef, head.intercept = data["coef"], data["intercept"]
        return head


class MLPHead:
    """Dense(hidden, relu) -> Dropout -> Dense(characters, sigmoid), positives weighted per character."""

    kind = "mlp"

    def __init__(self, hidden: int = 256, dropout: float = 0.5, epochs: int = 60, seed: int = 0,
                 blocks: Sequence[int] | None = None):
        self.hidden, self.dropout, self.epochs, self.seed = hidden, dropout, epochs, seed
        self.scaler = _Standardiser(blocks=blocks)
        self.model = None
        self.history: dict[str, list[float]] = {}

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "MLPHead":
        from .backbones import keras_module

        keras = keras_module()
        keras.utils.set_random_seed(self.seed)
        self.scaler.fit(X)
        self.model = keras.Sequential([
            keras.Input((X.shape[1],)),
            keras.layers.Dense(self.hidden, activation="relu"),
            keras.layers.Dropout(self.dropout, seed=self.seed),
            keras.layers.Dense(Y.shape[1], activation="sigmoid"),
        ])
        self.model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=class_weighted_bce(Y, keras.ops))
        fit = self.model.fit(self.scaler(X), Y, epochs=self.epochs, batch_size=32, verbose=0, shuffle=True)
        self.history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.predict_on_batch(self.scaler(X)))

    def save(self, folder: Path) -> None:
        np.savez(folder / "scaler.npz", mean=self.scaler.mean, scale=self.scaler.scale)
        self.model.save(folder / "head.keras")

    @classmethod
    def load(cls, folder: Path) -> "MLPHead":
        from .backbones import keras_module

        head = cls()
        with np.load(folder / "scaler.npz") as data:
            head.scaler = _Standardiser(data["mean"], data["scale"])
        head.model = keras_module().models.load_model(folder / "head.keras", compile=False)
        return head


def make_head(kind: str, seed: int = 0, epochs: int | None = None, blocks: Sequence[int] | None = None) -> Head:
    """A new, untrained head of the given kind; ``blocks``: a fused backbone's part sizes, weighed alike."""
    if kind == "logistic":
        return LogisticHead(seed=seed, blocks=blocks)
    if kind == "mlp":
        return MLPHead(seed=seed, blocks=blocks, **({"epochs": epochs} if epochs else {}))
    if kind == "detector":
        from .detector import DetectorHead

        return DetectorHead(seed=seed, epochs=epochs)
    raise ScreentimeError(f"unknown head {kind!r}; choose one of {', '.join(HEADS)}")


def load_head(kind: str, folder: Path) -> Head:
    """Load a trained head saved in a model folder."""
    if kind == "detector":
        from .detector import SigmoidHead

        return SigmoidHead.load(folder)
    return {"logistic": LogisticHead, "mlp": MLPHead}[kind].load(folder)
