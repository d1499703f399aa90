"""The ``detector`` head: a small network trained on a backbone's whole feature map (``--head detector``).

``NAME@max`` keeps, for each of the backbone's features, its maximum over the frame, and a
logistic head then weighs those maxima. That loses *where* each feature fired: a ball in TOM's
colours in one corner and an ear shape in another add up like a cat. The detector looks at every
place of the feature map instead (each 2x2 block of places reduced to its maximum first): a 1x1
convolution (32 ReLU units) and a second one give each place one score per character, and a frame's
score is the best place's. It is trained on the frames' labels alone (a character is in the frame
if some place shows it: multiple-instance learning). On the hard benchmark it scored 0.4-6.5 points
above ``@max`` with the logistic head (docs/accuracy.md); with a few dozen labels it can fail where
the logistic head does not.

At prediction the backbone and the trained detector run as one :class:`DetectorBackbone`, whose
"features" are the per-character scores, so features stay small and cacheable; the model's head,
:class:`SigmoidHead`, turns scores into probabilities. Maps exist only for the labelled
frames while training (float16, about 0.2 MB a frame for a 640x360 frame through SqueezeNet).
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .backbones import KerasBackbone, keras_module
from .errors import ScreentimeError, UsageError
from .heads import class_weighted_bce, sigmoid

HIDDEN = 32  # ReLU units per place of the map
#: Detectors trained side by side from different starting weights, their scores averaged: one alone
#: scored 1-2 points lower with some starting weights than with others (docs/accuracy.md).
MEMBERS = 3
L2 = 1e-3  # weight decay on both convolutions
STEPS = 500  # gradient steps of 32 random labelled frames, whatever the number of labels
BATCH = 32
PREDICT_BATCH = 64  # maps scored per call (memory)
DETECTOR_FILE = "detector.keras"
#: Each 2x2 block of the backbone's map is reduced to its maximum before the detector sees it: a
#: quarter of the memory per labelled frame, a third of the time per fit, and as accurate or more on
#: the benchmark (docs/accuracy.md). Models saved before it record no map_pool and used 1.
MAP_POOL = 2


def feature_map_backbone(net: Any, name: str, map_pool: int = MAP_POOL) -> KerasBackbone:
    """``net`` switched to handing over feature maps (``map_pool`` x ``map_pool`` blocks of places
    max-pooled); it must be a Keras backbone run on the whole frame."""
    if not isinstance(net, KerasBackbone) or not net.frame_width:
        raise UsageError(f"--head detector needs one Keras backbone run on the whole frame, such as "
                         f"model.keras@max or mobilenet_v2@max, not {name!r}")
    net.pooling, net.map_pool = "none", map_pool
    return net


class DetectorHead:
    """Trains on feature maps (n, height, width, channels); scores are the best place's, per character."""

    kind = "detector"

    def __init__(self, seed: int = 0, epochs: int | None = None, hidden: int = HIDDEN, members: int = MEMBERS):
        self.seed, self.epochs, self.hidden, self.members = seed, epochs, hidden, members
        self.model = None  # maps -> the members' mean score per character (what is saved)

    def fit(self, maps: np.ndarray, Y: np.ndarray) -> "DetectorHead":
        if maps.ndim != 4:
            raise ScreentimeError("the detector head trains on whole feature maps: use screentime train "
                                  "--head detector with a NAME@max backbone")
        keras = keras_module()
        keras.utils.set_random_seed(self.seed)
        # Each feature scaled by the spread of its frame maxima, so one decay suits every backbone
        # (at least a quarter of their typical size: a feature whose maximum hardly varies may still
        # tell places apart).
        maxima = np.concatenate([maps[i:i + PREDICT_BATCH].max(axis=(1, 2)).astype(np.float32)
                                 for i in range(0, len(maps), PREDICT_BATCH)])
        scale = np.maximum(maxima.std(axis=0), 0.25 * np.sqrt((maxima ** 2).mean(axis=0))) + 1e-3
        decay = keras.regularizers.l2(L2)
        rescale = keras.layers.Rescaling(1.0 / scale)
        members = [keras.Sequential([keras.layers.Conv2D(self.hidden, 1, activation="relu", kernel_regularizer=decay),
                                     keras.layers.Conv2D(Y.shape[1], 1, kernel_regularizer=decay),
                                     keras.layers.GlobalMaxPooling2D()]) for _ in range(self.members)]

        def new_input() -> Any:
            return keras.Input((None, None, maps.shape[-1]))  # float32: see _as_input

        # Trained side by side, each member on its own random batches from its own starting weights
        # (the sum of their losses: each learns from its own); used as one, their scores averaged.
        inputs = [new_input() for _ in members]
        trainer = keras.Model(inputs, [member(rescale(x)) for member, x in zip(members, inputs)])
        trainer.compile(optimizer=keras.optimizers.Adam(1e-3),
                        loss=[class_weighted_bce(Y, keras.ops, from_logits=True)] * self.members)
        frame_maps = new_input()
        scores = [member(rescale(frame_maps)) for member in members]
        self.model = keras.Model(frame_maps, keras.layers.Average()(scores) if len(scores) > 1 else scores[0])
        steps = self.epochs * math.ceil(len(maps) / BATCH) if self.epochs else STEPS
        streams = [_random_batches(maps, Y, self.seed + i) for i in range(self.members)]
        for _ in range(steps):  # batch by batch: model.fit on a generator kept every fold's maps alive
            batches = [next(stream) for stream in streams]
            trainer.train_on_batch([b[0] for b in batches], [b[1] for b in batches])
        return self

    def scores(self, maps: np.ndarray) -> np.ndarray:
        """One score (a logit) per frame and character."""
        out = [np.asarray(self.model.predict_on_batch(_as_input(maps[i:i + PREDICT_BATCH])), dtype=np.float32)
               for i in range(0, len(maps), PREDICT_BATCH)]
        return np.concatenate(out) if out else np.zeros((0, int(self.model.output_shape[-1])), np.float32)

    def predict_proba(self, maps: np.ndarray) -> np.ndarray:
        return sigmoid(self.scores(maps))

    def digest(self) -> str:
        """A short hash of the weights: part of the feature cache key of a :class:`DetectorBackbone`."""
        h = hashlib.sha256()
        for w in self.model.get_weights():
            h.update(np.ascontiguousarray(w).tobytes())
        return h.hexdigest()[:16]

    def save(self, path: Path) -> None:
        self.model.save(path)

    @classmethod
    def load(cls, path: Path) -> "DetectorHead":
        head = cls()
        try:
            head.model = keras_module().models.load_model(path, compile=False)
        except Exception as exc:
            raise ScreentimeError(f"the detector in {path} is missing or corrupt ({exc.__class__.__name__}); "
                                  "train the model again") from exc
        return head


def _as_input(maps: np.ndarray) -> np.ndarray:
    """Maps are kept as float16 (half the memory) and handed to the detector as float32: fed half
    precision, TensorFlow's CPU kernels print an error line ("oneDNN supports DT_HALF only on
    platforms with AVX-512") on machines without AVX-512, in the middle of a user's output."""
    return maps.astype(np.float32, copy=False)


def _random_batches(maps: np.ndarray, Y: np.ndarray, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless batches of random labelled frames (with a few dozen labels, Keras epochs would cost
    more than the steps themselves)."""
    rng = np.random.default_rng(seed)
    size = min(BATCH, len(maps))
    while True:
        rows = np.sort(rng.choice(len(maps), size, replace=False))
        yield _as_input(maps[rows]), Y[rows].astype(np.float32)


class DetectorBackbone:
    """A whole-frame Keras backbone and a trained detector as one backbone: its features are the
    detector's per-character scores (small, and cached under the detector's weights)."""

    def __init__(self, base: KerasBackbone, detector: DetectorHead, map_pool: int = MAP_POOL):
        self.base, self.detector = feature_map_backbone(base, base.spec["name"], map_pool), detector
        name = f"{base.spec['name']}+detector"
        self.spec = {"kind": "detector", "name": name, "base": dict(base.spec), "input_size": base.spec["input_size"],
                     "map_pool": map_pool,
                     "preprocessing": f"the base backbone's map, {map_pool}x{map_pool} places max-pooled; "
                                      "then the detector's best place per character"}
        key, pooled = base.pooled_cache_key, "" if map_pool == 1 else f"-pool{map_pool}"
        self.cache_key = None if key is None else f"{key}-detector{pooled}-{detector.digest()}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        return self.base.prepare(image)

    def embed(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        return self.detector.scores(self.base.embed(prepared))

    @property
    def dim(self) -> int:
        return int(self.detector.model.output_shape[-1])

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed([self.prepare(im) for im in images])


class SigmoidHead:
    """The head of a detector model: probabilities from the :class:`DetectorBackbone`'s scores."""

    kind = "detector"

    def fit(self, X: np.ndarray, Y: np.ndarray) -> "SigmoidHead":
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return sigmoid(np.asarray(X, dtype=np.float32))

    def save(self, folder: Path) -> None:
        """Nothing to save: the detector is saved with the backbone."""

    @classmethod
    def load(cls, folder: Path) -> "SigmoidHead":
        return cls()


def with_detector(base: KerasBackbone, detector: DetectorHead) -> tuple[DetectorBackbone, SigmoidHead]:
    """The backbone and head of a model whose detector was trained on ``base``'s feature maps."""
    return DetectorBackbone(base, detector, base.map_pool), SigmoidHead()


def save_detector_backbone(backbone: DetectorBackbone, model_dir: Path) -> dict[str, Any]:
    """Write the base backbone (when it cannot be rebuilt by name) and the detector; returns the spec."""
    from .backbones import save_backbone

    backbone.detector.save(model_dir / DETECTOR_FILE)
    return {**backbone.spec, "base": save_backbone(backbone.base, model_dir), "detector": DETECTOR_FILE}


def detector_backbone_from_spec(spec: dict[str, Any], model_dir: Path) -> DetectorBackbone:
    """Rebuild a :class:`DetectorBackbone` recorded in a model folder."""
    from .backbones import backbone_from_spec

    base = backbone_from_spec(spec["base"], model_dir)
    assert isinstance(base, KerasBackbone)
    return DetectorBackbone(base, DetectorHead.load(model_dir / spec["detector"]), int(spec.get("map_pool", 1)))
