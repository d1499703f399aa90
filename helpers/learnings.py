"""Measurements the notebooks make: label review, validation on a later stretch, learning curves,
and the experiments of ``05_learnings`` ("what worked and what did not", measured instead of told).

Everything is scored the way the package scores predictions (``helpers.evaluate.evaluate_frames``):
frame accuracy means every character of the frame is right.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .errors import ScreentimeError
from .evaluate import evaluate_frames
from .labels import format_label, label_matrix

# --------------------------------------------------------------------------------------------------
# Scoring


def predictions_table(frames: pd.DataFrame, present: np.ndarray, characters: Sequence[str]) -> pd.DataFrame:
    """A predictions table (frame, time_s, present) from a boolean presence matrix."""
    table = frames[["frame", "time_s"]].reset_index(drop=True).copy()
    table["present"] = [format_label({c for c, on in zip(characters, row) if on}) for row in np.asarray(present)]
    return table


def score(frames: pd.DataFrame, present: np.ndarray, characters: Sequence[str], truth: pd.DataFrame,
          duration_s: float | None = None) -> dict[str, Any]:
    """Score a presence matrix for ``frames`` against ``truth`` (frame/time_s, label).

    Returns ``evaluate_frames``'s result plus ``mean_f1`` over characters and ``screen_time_error_pct``:
    the mean over characters of |predicted - true| screen time, in percent of the seconds scored.
    """
    result = evaluate_frames(predictions_table(frames, present, characters), truth, duration_s)
    chars = result["characters"].values()
    result["mean_f1"] = float(np.mean([c["f1"] for c in chars])) if chars else float("nan")
    result["screen_time_error_pct"] = float(np.mean([c["error_pct_of_scored"] for c in chars])) if chars else float("nan")
    return result


def labels_as_truth(table: pd.DataFrame) -> pd.DataFrame:
    """A labels table (frame, time_s, names) as a truth table (frame, time_s, label)."""
    return pd.DataFrame({"frame": table["frame"].astype(int).to_numpy(), "time_s": table["time_s"].to_numpy(),
                         "label": [format_label(n) for n in table["names"]]})


# --------------------------------------------------------------------------------------------------
# Validation on a later stretch


@dataclass
class Split:
    """Training rows (earlier) and validation rows (the later stretch), as boolean masks."""

    train: np.ndarray
    validation: np.ndarray
    cut_s: float


def later_stretch_split(times_s: Sequence[float], fraction: float = 0.25) -> Split:
    """Hold out the last ``fraction`` of the labelled time span: frames close in time look alike, so a
    random split would validate on near-copies of training frames and flatter the model."""
    times = np.asarray(times_s, dtype=float)
    if not 0 < fraction < 1:
        raise ScreentimeError(f"validation_fraction must be between 0 and 1, not {fraction}")
    if len(times) < 4:
        raise ScreentimeError(f"only {len(times)} labelled frames: label at least a few dozen to train and validate")
    order = np.sort(times)
    cut = float(order[min(len(order) - 1, round(len(order) * (1 - fraction)))])
    validation = times >= cut
    return Split(~validation, validation, cut)


def check_both_classes(Y: np.ndarray, characters: Sequence[str]) -> list[str]:
    """Characters that ``Y`` shows always or never (a head cannot learn them from these rows)."""
    return [c for j, c in enumerate(characters) if Y[:, j].min() == Y[:, j].max()] if len(Y) else list(characters)


def check_split(Y: np.ndarray, split: Split, characters: Sequence[str]) -> list[str]:
    """Fail when the training part cannot teach a character; notes when the validation part cannot test one."""
    for name in check_both_classes(Y[split.train], characters):
        raise ScreentimeError(f"the labels before {split.cut_s:.1f} s (the training part) show {name} on every frame "
                              f"or on none; label frames with and without {name} earlier in the video, "
                              "or lower validation_fraction")
    return [f"the validation part (from {split.cut_s:.1f} s) shows {name} on every frame or on none: "
            f"its validation scores for {name} say little" for name in check_both_classes(Y[split.validation], characters)]


def curve_configuration(backbone: str, head: str) -> tuple[str, str]:
    """The one backbone and head that a learning curve uses: the first pair ``screentime train``
    would validate among ``backbone`` and ``head`` (alternatives joined with ``|``)."""
    from .pipeline import combinations, parse_backbones, parse_heads

    return combinations(parse_backbones(backbone), parse_heads(head))[0]


def label_count_curve(X: np.ndarray, Y: np.ndarray, split: Split, characters: Sequence[str],
                      frames: pd.DataFrame, head: str = "logistic", steps: Sequence[int] = (8, 4, 2, 1),
                      seed: int = 0, epochs: int | None = None) -> pd.DataFrame:
    """Accuracy on the training rows and on the later stretch when training on every ``step``-th label.

    Fewer labels (a larger step) is like labelling one frame every few seconds instead of every second.
    """
    from .heads import make_head

    truth = labels_as_truth(frames.assign(names=[frozenset(c for c, y in zip(characters, row) if y) for row in Y]))
    train_idx = np.flatnonzero(split.train)
    rows = []
    for step in steps:
        use = train_idx[::step]
        if check_both_classes(Y[use], characters):
            continue
        model = make_head(head, seed=seed, epochs=epochs).fit(X[use], Y[use])
        acc = {}
        for part, mask in (("train", use), ("validation", np.flatnonzero(split.validation))):
            present = model.predict_proba(X[mask]) >= 0.5
            acc[part] = score(frames.iloc[mask], present, characters, truth.iloc[mask])["accuracy"]
        rows.append((len(use), step, acc["train"], acc["validation"]))
    return pd.DataFrame(rows, columns=["labels", "every_nth", "train_accuracy", "validation_accuracy"])


def decide(model: Any, proba: np.ndarray, times_s: Sequence[float]) -> np.ndarray:
    """The model's presence decisions for samples at ``times_s``: thresholds, and temporal smoothing
    when this version of the package has it (``ScreentimeModel.present(proba, times_s)``)."""
    try:
        return np.asarray(model.present(proba, np.asarray(times_s, dtype=float)), dtype=bool)
    except TypeError:  # a model without smoothing decides each frame alone
        return np.asarray(model.present(proba), dtype=bool)


def validate_training(video: os.PathLike | str, frames: pd.DataFrame, split: Split, out_dir: os.PathLike | str,
                      **train_options: Any) -> tuple[dict[str, Any], Any]:
    """Train exactly as ``helpers.pipeline.train`` does, on the labels before the cut only, and score
    the resulting model on the later stretch. Returns the scores and the model (saved in ``out_dir``)."""
    from pathlib import Path

    from .features import extract_features
    from .fileio import write_csv
    from .pipeline import train

    folder = Path(out_dir)
    truth = labels_as_truth(frames)
    write_csv(truth[split.train], folder / "labels_before_cut.csv")
    model = train(video, folder / "labels_before_cut.csv", folder / "model", **train_options)
    later = truth[split.validation]
    feats = extract_features(video, model.backbone, fps=None, frames=later["frame"])
    present = decide(model, model.predict_proba(feats.X), feats.frames["time_s"])
    return score(feats.frames, present, model.characters, later), model


# --------------------------------------------------------------------------------------------------
# A configurable Keras head for the experiments


def _standardise(X: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return ((X - mean) / scale).astype(np.float32)


class ExperimentMLP:
    """Dense layers (relu) with dropout and sigmoid outputs, like ``helpers.heads.MLPHead``, with knobs.

    ``hidden``: sizes of the hidden layers; ``dropout`` after each; ``class_weights``: weight each
    character's positives by negatives/positives (as the package's mlp head does). With validation
    data, ``history`` has the validation curves and the weights of the epoch with the lowest
    validation loss are kept (``predict_proba(X, best=True)``): the "best checkpoint".
    """

    def __init__(self, hidden: Sequence[int] = (256,), dropout: float = 0.5, class_weights: bool = True,
                 epochs: int = 60, seed: int = 0, batch_size: int = 32, learning_rate: float = 1e-3):
        self.hidden, self.dropout, self.class_weights = tuple(hidden), dropout, class_weights
        self.epochs, self.seed, self.batch_size, self.learning_rate = epochs, seed, batch_size, learning_rate
        self.history: dict[str, list[float]] = {}
        self.best_epoch: int | None = None
        self._best_weights = None

    def fit(self, X: np.ndarray, Y: np.ndarray, validation: tuple[np.ndarray, np.ndarray] | None = None) -> ExperimentMLP:
        from .backbones import keras_module
        from .heads import class_weighted_bce

        keras = keras_module()
        keras.utils.set_random_seed(self.seed)
        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale = np.where(std > 1e-8, std, 1.0)
        layers: list[Any] = [keras.Input((X.shape[1],))]
        for i, size in enumerate(self.hidden):
            layers.append(keras.layers.Dense(size, activation="relu"))
            if self.dropout:
                layers.append(keras.layers.Dropout(self.dropout, seed=self.seed + i))
        layers.append(keras.layers.Dense(Y.shape[1], activation="sigmoid"))
        self.model = keras.Sequential(layers)
        self.model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                           loss=class_weighted_bce(Y, keras.ops, balanced=self.class_weights),
                           metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])
        callbacks = []
        val = None
        if validation is not None:
            val = (self._x(validation[0]), validation[1])
            owner = self

            class KeepBest(keras.callbacks.Callback):
                best = np.inf

                def on_epoch_end(self, epoch, logs=None):
                    loss = float((logs or {}).get("val_loss", np.inf))
                    if loss < self.best:
                        self.best, owner.best_epoch = loss, epoch + 1
                        owner._best_weights = [w.copy() for w in self.model.get_weights()]

            callbacks.append(KeepBest())
        fit = self.model.fit(self._x(X), Y, epochs=self.epochs, batch_size=self.batch_size, verbose=0,
                             shuffle=True, validation_data=val, callbacks=callbacks)
        self.history = {k: [float(v) for v in vals] for k, vals in fit.history.items()}
        self._last_weights = [w.copy() for w in self.model.get_weights()]
        return self

    def _x(self, X: np.ndarray) -> np.ndarray:
        return _standardise(X, self.mean, self.scale)

    def predict_proba(self, X: np.ndarray, best: bool = False) -> np.ndarray:
        if best and self._best_weights is None:
            raise ScreentimeError("no best checkpoint: fit with validation data first")
        self.model.set_weights(self._best_weights if best else self._last_weights)
        try:
            return np.asarray(self.model.predict_on_batch(self._x(X)))
        finally:
            self.model.set_weights(self._last_weights)

    def history_table(self) -> pd.DataFrame:
        """One row per epoch: loss, accuracy and, with validation data, val_loss, val_accuracy."""
        table = pd.DataFrame(self.history)
        table.insert(0, "epoch", np.arange(1, len(table) + 1))
        return table


# --------------------------------------------------------------------------------------------------
# Label review


def corrupt_labels(table: pd.DataFrame, fraction: float, characters: Sequence[str], seed: int = 0
                   ) -> tuple[pd.DataFrame, list[int]]:
    """Flip the labels of ``fraction`` of the frames to a different character set (to demonstrate the review).

    Returns the new table and the frame indices that were changed.
    """
    if fraction <= 0 or not len(table):
        return table.copy(), []
    rng = np.random.default_rng(seed)
    out = table.copy().reset_index(drop=True)
    choices = [frozenset(), *(frozenset([c]) for c in characters)]
    rows = rng.choice(len(out), size=max(1, round(fraction * len(out))), replace=False)
    for r in rows:
        options = [s for s in choices if s != out.at[r, "names"]]
        out.at[r, "names"] = options[rng.integers(len(options))]
    return out, sorted(int(out.at[r, "frame"]) for r in rows)


def review_labels(X: np.ndarray, table: pd.DataFrame, characters: Sequence[str], *, folds: int = 5,
                  confidence: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Labels that look inconsistent, one row per flagged frame (frame, time_s, label, reason, p_<character>).

    Two independent checks:

    - ``model disagrees``: a logistic head trained on the *other* labels (interleaved folds, so each
      frame's neighbours in time are in the training folds) is confident the label is wrong
      (probability above ``confidence`` against it) for some character;
    - ``isolated``: the label differs from both neighbouring labels, which agree with each other.
    """
    from .heads import LogisticHead

    Y = label_matrix(table["names"], list(characters))
    n = len(table)
    proba = np.full(Y.shape, np.nan, dtype=np.float32)
    fold_of = np.arange(n) % max(2, folds)
    for k in range(max(2, folds)):
        test, train = fold_of == k, fold_of != k
        if not test.any() or check_both_classes(Y[train], characters):
            continue
        proba[test] = LogisticHead(seed=seed).fit(X[train], Y[train]).predict_proba(X[test])
    order = np.argsort(table["time_s"].to_numpy(), kind="stable")
    label_text = np.array([format_label(s) for s in table["names"]], dtype=object)
    rows = []
    for pos, i in enumerate(order):
        reasons = []
        against = [c for j, c in enumerate(characters) if not np.isnan(proba[i, j])
                   and abs(proba[i, j] - Y[i, j]) > confidence]
        if against:
            reasons.append("model disagrees on " + ", ".join(against))
        if 0 < pos < n - 1:
            before, after = label_text[order[pos - 1]], label_text[order[pos + 1]]
            if before == after != label_text[i]:
                reasons.append(f"isolated (neighbours say {before})")
        if reasons:
            rows.append({"frame": int(table["frame"].iloc[i]), "time_s": float(table["time_s"].iloc[i]),
                         "label": label_text[i], "reason": "; ".join(reasons),
                         **{f"p_{c}": round(float(proba[i, j]), 3) for j, c in enumerate(characters)}})
    columns = ["frame", "time_s", "label", "reason", *(f"p_{c}" for c in characters)]
    return pd.DataFrame(rows, columns=columns)


def class_balance(table: pd.DataFrame, characters: Sequence[str]) -> pd.DataFrame:
    """How many labelled frames show each character, and how many show each exact combination."""
    labels = pd.Series([format_label(s) for s in table["names"]])
    per_char = [("character", c, int(sum(c in s for s in table["names"]))) for c in characters]
    combos = [("label", name, int(count)) for name, count in labels.value_counts().sort_index().items()]
    out = pd.DataFrame(per_char + combos, columns=["kind", "name", "frames"])
    out["percent"] = (100.0 * out["frames"] / max(1, len(table))).round(1)
    return out


# --------------------------------------------------------------------------------------------------
# The experiments of 05_learnings


@dataclass
class Data:
    """Features of the labelled training frames and of the sampled frames of the held-out video."""

    characters: list[str]
    train_frames: pd.DataFrame
    X_train: np.ndarray
    Y_train: np.ndarray
    test_frames: pd.DataFrame
    X_test: np.ndarray
    test_truth: pd.DataFrame
    test_duration_s: float
    split: Split = field(init=False)

    def __post_init__(self) -> None:
        self.split = later_stretch_split(self.train_frames["time_s"])


@dataclass
class Labelled:
    """Labelled frames (frame, time_s, names) in frame order, their features and 0/1 label matrix."""

    frames: pd.DataFrame
    X: np.ndarray
    Y: np.ndarray
    characters: list[str]


def labelled_features(video: os.PathLike | str, labels_csv: os.PathLike | str, backbone: Any,
                      classes: list[str] | None = None, frames_csv: os.PathLike | str | None = None) -> Labelled:
    """Features of the labelled frames of ``video`` (from the cache when computed before)."""
    from .features import extract_features
    from .notebooks import load_labels

    table, characters = load_labels(labels_csv, video, classes, frames_csv)
    feats = extract_features(video, backbone, fps=None, frames=table["frame"])
    if list(feats.frames["frame"]) != list(table["frame"]):
        raise ScreentimeError(f"{video} did not decode every labelled frame; check the labels belong to this video")
    return Labelled(table, feats.X, label_matrix(table["names"], characters), characters)


def load_data(train_video: os.PathLike | str, labels_csv: os.PathLike | str, test_video: os.PathLike | str,
              test_truth_csv: os.PathLike | str, backbone: Any, fps: float) -> Data:
    """Features of the labelled frames of ``train_video`` and of ``test_video`` sampled at ``fps``."""
    from .features import extract_features
    from .fileio import read_csv

    train = labelled_features(train_video, labels_csv, backbone)
    test = extract_features(test_video, backbone, fps)
    return Data(train.characters, train.frames, train.X, train.Y, test.frames.reset_index(drop=True),
                test.X, read_csv(test_truth_csv, "truth file"), test.stats.duration_s)


def _score_proba(data: Data, proba: np.ndarray) -> dict[str, Any]:
    return score(data.test_frames, proba >= 0.5, data.characters, data.test_truth, data.test_duration_s)


def _row(experiment: str, variant: str, scores: Sequence[dict[str, Any]] = (), note: str = "",
         features_per_s: float = float("nan")) -> dict[str, Any]:
    acc = [s["accuracy"] for s in scores]
    return {
        "experiment": experiment, "variant": variant,
        "accuracy_pct": round(100 * float(np.mean(acc)), 1) if acc else float("nan"),
        "spread_pts": round(100 * float(np.std(acc)), 1) if len(acc) > 1 else float("nan"),
        "mean_f1": round(float(np.mean([s["mean_f1"] for s in scores])), 3) if scores else float("nan"),
        "screen_time_error_pct": round(float(np.mean([s["screen_time_error_pct"] for s in scores])), 2)
        if scores else float("nan"),
        "features_per_s": round(features_per_s, 1) if np.isfinite(features_per_s) else float("nan"),
        "runs": len(scores), "note": note,
    }


EXPERIMENTS = {
    "a": "(a) ImageNet top layer vs trained head",
    "b": "(b) one hidden layer vs deeper + dropout",
    "c": "(c) class weights",
    "d": "(d) last epoch vs best checkpoint",
    "e": "(e) temporal smoothing",
    "f": "(f) backbones",
}


def head_experiments(data: Data, seeds: Sequence[int], epochs: int) -> list[dict[str, Any]]:
    """(b), (c), (d): variants of the Keras head on the same features, scored on the held-out video."""
    variants = {
        ("b", "one hidden layer (256), no dropout"): {"hidden": (256,), "dropout": 0.0},
        ("b", "two hidden layers (256, 128), dropout 0.5"): {"hidden": (256, 128), "dropout": 0.5},
        ("c", "without class weights"): {"hidden": (256,), "dropout": 0.5, "class_weights": False},
        ("c", "with class weights (the package's mlp head)"): {"hidden": (256,), "dropout": 0.5, "class_weights": True},
    }
    scores: dict[tuple[str, str], list[dict[str, Any]]] = {key: [] for key in variants}
    last, best, best_epochs = [], [], []
    tr, va = data.split.train, data.split.validation
    for seed in seeds:
        for key, kwargs in variants.items():
            head = ExperimentMLP(epochs=epochs, seed=seed, **kwargs).fit(data.X_train, data.Y_train)
            scores[key].append(_score_proba(data, head.predict_proba(data.X_test)))
        head = ExperimentMLP(epochs=epochs, seed=seed).fit(
            data.X_train[tr], data.Y_train[tr], validation=(data.X_train[va], data.Y_train[va]))
        last.append(_score_proba(data, head.predict_proba(data.X_test)))
        best.append(_score_proba(data, head.predict_proba(data.X_test, best=True)))
        best_epochs.append(head.best_epoch)
    rows = [_row(EXPERIMENTS[key[0]], key[1], s, f"Keras head, {epochs} epochs, all {len(data.Y_train)} labels")
            for key, s in scores.items()]
    split_note = (f"trained on the {int(tr.sum())} labels before {data.split.cut_s:.0f} s, "
                  f"checkpoint chosen on the {int(va.sum())} after")
    rows.append(_row(EXPERIMENTS["d"], f"last epoch ({epochs})", last, split_note))
    rows.append(_row(EXPERIMENTS["d"], "best checkpoint (lowest validation loss)", best,
                     f"{split_note}; best epochs: {', '.join(map(str, best_epochs))}"))
    return rows


def _timed_features(backbone: Any, images: Sequence[np.ndarray]) -> float:
    """Feature vectors per second on ``images`` (after one warm-up batch), in the calling thread."""
    backbone.features(images[: min(4, len(images))])
    start = time.perf_counter()
    backbone.features(images)
    return len(images) / max(time.perf_counter() - start, 1e-9)


def random_weights(backbone: Any) -> bool:
    """True for a keras.applications backbone built without trained weights (useful for timing only)."""
    spec = getattr(backbone, "spec", {})
    return spec.get("kind") == "application" and spec.get("weights") == "none"


def backbone_experiments(train_video: os.PathLike | str, labels_csv: os.PathLike | str, test_video: os.PathLike | str,
                         test_truth_csv: os.PathLike | str, fps: float, backbones: dict[str, Any],
                         images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
    """(f): frame accuracy with the default logistic head (not for random weights: it would be meaningless)
    and feature vectors per second on ``images``, for each backbone."""
    from .heads import LogisticHead

    rows = []
    for name, backbone in backbones.items():
        speed = _timed_features(backbone, images)
        if random_weights(backbone):
            rows.append(_row(EXPERIMENTS["f"], name, [], "random weights: speed only, accuracy would be meaningless",
                             speed))
            continue
        data = load_data(train_video, labels_csv, test_video, test_truth_csv, backbone, fps)
        head = LogisticHead().fit(data.X_train, data.Y_train)  # deterministic: one run is enough
        rows.append(_row(EXPERIMENTS["f"], name, [_score_proba(data, head.predict_proba(data.X_test))],
                         "logistic head (the default)", speed))
    return rows


def imagenet_top_layer_experiment(train_video: os.PathLike | str, labels_csv: os.PathLike | str,
                                  test_video: os.PathLike | str, test_truth_csv: os.PathLike | str, fps: float,
                                  model: str = "mobilenet_v2", weights: str = "imagenet",
                                  download_timeout_s: float = 60.0) -> tuple[list[dict[str, Any]], str]:
    """(a): an ImageNet classifier's own top layer, mapped to characters, vs a head trained on its features.

    The top-1 ImageNet class of each labelled training frame is mapped to the characters shown on
    most frames with that class; a test frame shows a character when its top-1 class maps to it.
    The comparison trains the package's logistic head on the same network's pooled features.
    Returns the table rows and a one-line message (why it was skipped, or what was compared).
    """
    from .backbones import APPLICATIONS, KerasBackbone, keras_module
    from .heads import LogisticHead

    if model not in APPLICATIONS:
        raise ScreentimeError(f"imagenet_model {model!r} is not one of {', '.join(APPLICATIONS)}")
    weights = weights or "imagenet"
    if weights != "imagenet" and not os.path.isfile(weights):
        raise ScreentimeError(f"imagenet_weights file {weights} does not exist; give the full model's .h5 weights "
                              "or 'imagenet'")
    meta = APPLICATIONS[model]
    keras = keras_module()
    module = getattr(keras.applications, meta["module"])
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(download_timeout_s)
    try:
        net = getattr(keras.applications, meta["cls"])(include_top=True, weights=weights)
    except Exception as exc:  # offline: Keras raises a bare Exception ("URL fetch failure")
        reason = ("skipped: ImageNet weights not available offline" if weights == "imagenet"
                  else f"skipped: could not load {os.path.basename(weights)}")
        detail = " ".join(str(exc).split())[:160]
        return ([_row(EXPERIMENTS["a"], f"{model} ImageNet top layer", [], reason),
                 _row(EXPERIMENTS["a"], f"{model} features + trained head", [], reason)],
                f"(a) {reason} ({exc.__class__.__name__}: {detail})")
    finally:
        socket.setdefaulttimeout(old_timeout)
    # features: the global-average-pooled layer (MobileNetV2, EfficientNetB0), else the layer below the top (VGG16)
    pool = next((layer for layer in net.layers if "GlobalAveragePooling" in layer.__class__.__name__), net.layers[-2])
    both = keras.Model(net.inputs, keras.layers.Concatenate()([pool.output, net.outputs[0]]))
    size = int(net.input_shape[1])
    backbone = KerasBackbone(both, module.preprocess_input, {"kind": "application", "name": f"{model}-with-top",
                                                              "weights": str(weights), "input_size": size}, None)
    data = load_data(train_video, labels_csv, test_video, test_truth_csv, backbone, fps)
    width = int(pool.output.shape[-1])
    feats_tr, top_tr = data.X_train[:, :width], data.X_train[:, width:].argmax(axis=1)
    feats_te, top_te = data.X_test[:, :width], data.X_test[:, width:].argmax(axis=1)
    mapping: dict[int, np.ndarray] = {}
    for cls in np.unique(top_tr):
        mapping[int(cls)] = data.Y_train[top_tr == cls].mean(axis=0) >= 0.5
    none = np.zeros(len(data.characters), bool)
    present = np.array([mapping.get(int(c), none) for c in top_te])
    top_scores = score(data.test_frames, present, data.characters, data.test_truth, data.test_duration_s)
    head = LogisticHead().fit(feats_tr, data.Y_train)
    head_scores = _score_proba(data, head.predict_proba(feats_te))
    classes = len(mapping)
    rows = [_row(EXPERIMENTS["a"], f"{model} ImageNet top layer", [top_scores],
                 f"top-1 of 1000 ImageNet classes; {classes} class{'es' if classes != 1 else ''} seen on labelled frames, "
                 "mapped to characters by majority"),
            _row(EXPERIMENTS["a"], f"{model} features + trained head", [head_scores], "logistic head on pooled features")]
    return rows, f"(a) compared {model}'s ImageNet top layer with a head trained on its features"


def smoothing_experiment(data: Data, seeds: Sequence[int], epochs: int, strength_s: float = 1.0
                         ) -> list[dict[str, Any]]:
    """(e): the same probabilities decided frame by frame vs smoothed over time (``helpers.smoothing``),
    for the logistic head and for the Keras head; or one row saying smoothing does not exist yet."""
    try:
        from .smoothing import smooth
    except ImportError:
        return [not_available("e", "not available yet: this version of screentime has no temporal smoothing")]
    from .heads import LogisticHead

    times = data.test_frames["time_s"].to_numpy(float)
    half = [0.5] * len(data.characters)
    rows = []
    heads = {"logistic head": [LogisticHead().fit(data.X_train, data.Y_train)],
             "Keras head": [ExperimentMLP(epochs=epochs, seed=s).fit(data.X_train, data.Y_train) for s in seeds]}
    for name, fitted in heads.items():
        probas = [h.predict_proba(data.X_test) for h in fitted]
        raw = [score(data.test_frames, p >= 0.5, data.characters, data.test_truth, data.test_duration_s) for p in probas]
        smoothed = [score(data.test_frames, smooth(p, times, strength_s, half), data.characters, data.test_truth,
                          data.test_duration_s) for p in probas]
        rows.append(_row(EXPERIMENTS["e"], f"{name}, each frame alone", raw, "threshold 0.5"))
        rows.append(_row(EXPERIMENTS["e"], f"{name}, smoothed ({strength_s:g} s)", smoothed,
                         f"helpers.smoothing, strength {strength_s:g} s, threshold 0.5"))
    return rows


def certainty_experiment(data: Data, test_video: os.PathLike | str, fewer_every: int = 9) -> pd.DataFrame:
    """(g) How sure is one accuracy number? Frame accuracy on the held-out video of the logistic head
    trained on all labels and on every ``fewer_every``-th label (a weaker model), each with two 95%
    intervals (``helpers.evaluate``'s block bootstrap): resampling the frames one by one, as if each
    were independent evidence, and resampling whole shots (PySceneDetect's cuts), as
    ``screentime evaluate`` does."""
    from .heads import LogisticHead
    from .shots import sample_breaks, shot_starts

    frames = data.test_frames
    times = frames["time_s"].to_numpy(float)
    first_samples = [0, *sample_breaks(frames["frame"].to_numpy(), shot_starts(test_video))]
    rows = []
    for chosen in (slice(None), slice(None, None, fewer_every)):
        X, Y = data.X_train[chosen], data.Y_train[chosen]
        present = LogisticHead().fit(X, Y).predict_proba(data.X_test) >= 0.5
        table = predictions_table(frames, present, data.characters)
        for resampled, starts_s in (("frames, one by one (as if independent)", times),
                                    ("whole shots (screentime evaluate)", times[first_samples])):
            result = evaluate_frames(table, data.test_truth, data.test_duration_s, shot_starts_s=starts_s)
            interval = result["accuracy_interval"]
            low, high = ((np.nan, np.nan) if interval["low"] is None
                         else (100 * interval["low"], 100 * interval["high"]))
            rows.append({"model": f"logistic head, {len(Y)} labels", "resampled": resampled,
                         "blocks": interval["blocks"], "accuracy_pct": round(100 * result["accuracy"], 1),
                         "low_pct": round(low, 1), "high_pct": round(high, 1), "width_pts": round(high - low, 1)})
    return pd.DataFrame(rows)


def describe_certainty(table: pd.DataFrame) -> list[str]:
    """One sentence per model of ``certainty_experiment``'s table, from its numbers."""
    sentences = []
    for model, rows in table.groupby("model", sort=False):
        frames, shots = rows.iloc[0], rows.iloc[1]
        if np.isnan(shots["width_pts"]):
            sentences.append(f"{model}: the held-out video has only {shots['blocks']} shots, too few for an "
                             "interval; score a longer video.")
            continue
        ratio = shots["width_pts"] / frames["width_pts"] if frames["width_pts"] > 0 else float("inf")
        sentences.append(
            f"{model}: {shots['accuracy_pct']:.1f}% frame accuracy; treating the {frames['blocks']} frames as "
            f"independent gives a 95% interval {frames['width_pts']:.1f} points wide ({frames['low_pct']:.1f}-"
            f"{frames['high_pct']:.1f}%), resampling the {shots['blocks']} shots {shots['width_pts']:.1f} points "
            f"({shots['low_pct']:.1f}-{shots['high_pct']:.1f}%)"
            + (f": {ratio:.1f}x as wide, since its mistakes come in runs." if np.isfinite(ratio) and ratio > 1.2
               else "."))
    return sentences


def not_available(experiment: str, why: str) -> dict[str, Any]:
    """A table row for an experiment that cannot be run (no invented numbers)."""
    return _row(EXPERIMENTS[experiment], "-", [], why)


def interpret(results: pd.DataFrame) -> dict[str, str]:
    """One sentence per experiment (per pair of variants), written from the measured numbers."""
    out: dict[str, str] = {}
    for key, title in EXPERIMENTS.items():
        rows = results[results["experiment"] == title]
        if key == "f":
            out[key] = _interpret_backbones(rows)
            continue
        measured = rows[rows["accuracy_pct"].notna()]
        if len(measured) < 2:
            note = rows["note"].iloc[0] if len(rows) else "not run"
            out[key] = f"{title}: {note}; nothing to compare."
            continue
        sentences = [_compare(measured.iloc[i], measured.iloc[i + 1]) for i in range(0, len(measured) - 1, 2)]
        out[key] = f"{title}: " + "; ".join(sentences) + "."
    return out


def _compare(a: pd.Series, b: pd.Series) -> str:
    diff = b["accuracy_pct"] - a["accuracy_pct"]
    spread = float(np.nanmax([a["spread_pts"], b["spread_pts"], 0.0]))
    winner = b["variant"] if diff > 0 else a["variant"]
    if abs(diff) < max(1.0, 2 * spread):
        verdict = "no clear difference"
    elif min(a["runs"], b["runs"]) > 1 or "Keras" not in f"{a['note']} {a['variant']}":
        verdict = f"{winner} is better"
    else:  # one run of a head that depends on its seed: no spread to judge by
        verdict = f"{winner} ahead in a single run (more seeds would tell whether it is more than noise)"
    runs = f"seed-to-seed spread up to {spread:.1f} points over {int(a['runs'])} runs" if a["runs"] > 1 else "one run each"
    return (f"{a['variant']} {a['accuracy_pct']:.1f}% vs {b['variant']} {b['accuracy_pct']:.1f}% frame accuracy, "
            f"{diff:+.1f} points ({runs}): {verdict}")


def _interpret_backbones(rows: pd.DataFrame) -> str:
    if rows.empty:
        return "(f) backbones: not run."
    fastest = rows.loc[rows["features_per_s"].idxmax()]
    slowest = rows.loc[rows["features_per_s"].idxmin()]
    measured = rows[rows["accuracy_pct"].notna()]
    text = (f"(f) backbones: {fastest['variant']} computes {fastest['features_per_s']:.0f} frames/s, "
            f"{fastest['features_per_s'] / slowest['features_per_s']:.0f}x as many as {slowest['variant']} "
            f"({slowest['features_per_s']:.1f} frames/s) on this machine")
    if len(measured):
        top = measured.loc[measured["accuracy_pct"].idxmax()]
        text += f"; the most accurate backbone measured is {top['variant']} ({top['accuracy_pct']:.1f}%)"
    return text + "."
