"""Feature extractors ("backbones"): turn BGR frames into one feature vector each.

- ``colour``: HSV colour histograms of the whole frame, no download, no TensorFlow.
- ``colour+hog``: the same plus a HOG shape descriptor from scikit-image.
- ``vgg16``, ``mobilenet_v2``, ``efficientnet_b0``: ``keras.applications`` with ImageNet weights
  (downloaded and cached by Keras on first use), global-average pooled.
- a path to a ``.keras`` model taking RGB 0–255 pixels at its own input size.
- a Keras backbone with ``@max`` (or ``@avg``) after its name (``model.keras@max``): the network
  run fully convolutionally on the whole frame kept at its aspect ratio, 640 px wide (``@max960``:
  960), its last feature map reduced to each channel's maximum (or mean) over the frame. A small
  character is a small part of the frame: averaging dilutes it, the maximum keeps it.
- several of these joined with commas (``colour,model.keras``): fused features.

Each backbone applies its own preprocessing, so callers always pass OpenCV's BGR uint8 frames.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, Sequence

import cv2
import numpy as np

from .errors import ScreentimeError, UsageError
from .precision import choose_precision, in_bfloat16

APPLICATIONS: dict[str, dict[str, Any]] = {
    "vgg16": {"module": "vgg16", "cls": "VGG16", "size": 224,
              "preprocessing": "keras.applications.vgg16.preprocess_input: RGB->BGR, ImageNet mean subtracted"},
    "mobilenet_v2": {"module": "mobilenet_v2", "cls": "MobileNetV2", "size": 224,
                     "preprocessing": "keras.applications.mobilenet_v2.preprocess_input: RGB scaled to [-1, 1]"},
    "efficientnet_b0": {"module": "efficientnet", "cls": "EfficientNetB0", "size": 224,
                        "preprocessing": "keras.applications.efficientnet.preprocess_input: RGB 0-255 (rescaling inside the model)"},
}
CLASSICAL = ("colour", "colour+hog")
BACKBONE_CHOICES = (*CLASSICAL, *APPLICATIONS, "PATH.keras", "NAME@max (whole frame, max-pooled)", "A,B (fusion)")

#: ``NAME@max``, ``NAME@avg``, optionally with a width: ``NAME@max960``.
SPATIAL_SUFFIX = re.compile(r"^(?P<base>.+)@(?P<pooling>max|avg)(?P<width>\d+)?$")
#: Width (px) a ``@max`` backbone sees frames at, aspect ratio kept. On the hard synthetic cartoons
#: (320x180) 640 px beat 320 and 480 and matched 960 at about half its cost (docs/accuracy.md).
SPATIAL_WIDTH = 640
#: A ``@max`` backbone runs at most this many pixels per call (32 images of 227x227), so that a
#: wide frame's activations take no more memory than a batch of small square ones.
MAX_PIXELS_PER_CALL = 32 * 227 * 227


class Backbone(Protocol):
    """Anything that maps BGR uint8 frames to one float32 feature vector each.

    ``prepare`` (resize, colour conversion) runs per frame in the decoding thread; ``embed`` runs on
    a batch of prepared frames; ``features`` does both. ``cache_key`` names the exact features
    (None: not cacheable, e.g. random weights); ``dim`` is the number of features per frame.
    """

    spec: dict[str, Any]
    cache_key: str | None

    def prepare(self, image: np.ndarray) -> np.ndarray: ...

    def embed(self, prepared: Sequence[np.ndarray]) -> np.ndarray: ...

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray: ...

    @property
    def dim(self) -> int: ...


def file_digest(path: str | os.PathLike) -> str:
    """Short SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


@contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Silence what native libraries write straight to file descriptor 2 (not with SCREENTIME_DEBUG=1)."""
    if os.environ.get("SCREENTIME_DEBUG"):
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def keras_module():
    """Import Keras on the TensorFlow backend, with TensorFlow's start-up chatter silenced and its
    thread counts set (``SCREENTIME_THREADS``, see helpers.threads)."""
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        with native_stderr_silenced():
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # CUDA probing logs here, not mid-run
            tf.get_logger().setLevel("ERROR")  # e.g. retracing notes when the last batch is smaller
        from .threads import apply_tensorflow_threads

        apply_tensorflow_threads(tf)  # before TensorFlow runs anything
    import keras

    return keras


def keras_cache_dir() -> Path:
    """Where Keras caches downloaded weights (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


class ColourBackbone:
    """Colour statistics of the whole frame: a 32x8 hue x saturation histogram and an 8-bin value one.

    Hue and saturation describe a character's paint whatever the lighting; the whole-frame
    histogram does not care where on screen the character stands.
    """

    def __init__(self, hog: bool = False, width: int = 160):
        self.hog = hog
        self.width = width
        self.spec = {"kind": "classical", "name": "colour+hog" if hog else "colour", "input_size": width,
                     "preprocessing": f"BGR resized to {width} px wide (INTER_AREA), HSV histograms, square-rooted"
                                      + ("; HOG of 64x64 grey" if hog else "")}

        self.cache_key = f"{self.spec['name']}-{width}-v1"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return cv2.resize(image, (self.width, max(1, round(h * self.width / w))), interpolation=cv2.INTER_AREA)

    def _one(self, small: np.ndarray) -> np.ndarray:
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        parts = [cv2.calcHist([hsv], [0, 1], None, [32, 8], [0, 180, 0, 256]).ravel(),
                 cv2.calcHist([hsv], [2], None, [8], [0, 256]).ravel()]
        feats = [np.sqrt(p / max(p.sum(), 1.0)) for p in parts]
        if self.hog:
            from skimage.feature import hog

            grey = cv2.resize(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
            feats.append(hog(grey, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2)))
        return np.concatenate(feats).astype(np.float32)

    def embed(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([self._one(im) for im in prepared])

    @property
    def dim(self) -> int:
        """Number of features per frame."""
        return int(self._one(np.zeros((9, self.width, 3), np.uint8)).size)

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed([self.prepare(im) for im in images])


def spatial_suffix(spec: dict[str, Any]) -> str:
    """``@max640`` (say) for a backbone that pools over the whole frame, else ``""``."""
    return f"@{spec['pooling']}{spec['frame_width']}" if spec.get("frame_width") else ""


def fully_convolutional(model: Any) -> Any:
    """The same network (same weights) taking RGB images of any size and returning its last
    feature map, i.e. without a global pooling layer at its end."""
    keras = keras_module()
    config = model.get_config()
    for layer in config.get("layers", []):
        if layer.get("class_name") == "InputLayer":
            layer["config"]["batch_shape"] = [None, None, None, 3]
    try:
        flexible = model.__class__.from_config(config)
        flexible.set_weights(model.get_weights())
    except Exception as exc:
        raise ScreentimeError(f"the backbone {model.name} cannot be rebuilt for frames of any size "
                              f"({exc.__class__.__name__}); use it without @max") from exc
    output = flexible.outputs[0]
    last = flexible.layers[-1]
    if len(output.shape) == 2 and isinstance(last, (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)):
        output = last.input
    if len(output.shape) != 4:
        raise ScreentimeError(f"the backbone {model.name} gives {tuple(output.shape)}; @max needs a network whose "
                              "output is a feature map or ends in global pooling")
    return keras.Model(flexible.inputs, output)


def max_pool_places(maps: np.ndarray, size: int) -> np.ndarray:
    """Feature maps (n, height, width, channels) with each ``size`` x ``size`` block of places reduced
    to its maximum (a partial block at the bottom or right edge too)."""
    if size == 1:
        return maps
    n, height, width, channels = maps.shape
    tall, wide = -(-height // size) * size, -(-width // size) * size
    if (tall, wide) != (height, width):
        maps = np.pad(maps, ((0, 0), (0, tall - height), (0, wide - width), (0, 0)), constant_values=-np.inf)
    return maps.reshape(n, tall // size, size, wide // size, size, channels).max(axis=(2, 4))


class KerasBackbone:
    """A Keras image model used as a feature extractor.

    By default a frame is resized to the model's square input and spatial outputs are averaged.
    With ``frame_width`` (``NAME@max``) the frame keeps its aspect ratio at that width, the network
    runs fully convolutionally, and its last feature map is reduced by ``pooling`` (max or avg), or
    kept as a map with ``pooling="none"`` (float16 maps for :mod:`helpers.detector`, each
    ``map_pool`` x ``map_pool`` block of places reduced to its maximum; never cached).
    """

    def __init__(self, model: Any, preprocess: Callable[[np.ndarray], np.ndarray], spec: dict[str, Any],
                 cache_key: str | None = None, *, pooling: str = "avg", frame_width: int | None = None):
        self.model = model  # float32, as loaded and as saved
        self.preprocess = preprocess
        self.size = int(spec["input_size"])
        self.pooling, self.frame_width = pooling, frame_width
        self.map_pool = 1  # with pooling="none": places merged map_pool x map_pool (max)
        self.spec = {**spec, "pooling": pooling, "frame_width": frame_width} if frame_width else spec
        network = fully_convolutional(model) if frame_width else model
        self.precision = choose_precision(network)
        self._runner = in_bfloat16(network) if self.precision == "bfloat16" else None
        if self._runner is None:
            self.precision, self._runner = "float32", network
        self._channels = int(network.output_shape[-1])
        # None: never cached (random weights)
        self.base_cache_key = None if cache_key is None else cache_key + spatial_suffix(self.spec)

    @property
    def cache_key(self) -> str | None:
        """Features are cached per backbone and per precision (bfloat16 ones differ slightly); whole
        feature maps (``pooling="none"``) are not cached."""
        if self.pooling == "none":
            return None
        return self.pooled_cache_key

    @property
    def pooled_cache_key(self) -> str | None:
        """The cache key of the pooled features, whatever ``pooling`` is now."""
        if self.base_cache_key is None or self.precision == "float32":
            return self.base_cache_key
        return f"{self.base_cache_key}-{self.precision}"

    def prepare(self, image: np.ndarray) -> np.ndarray:
        if self.frame_width:
            h, w = image.shape[:2]
            size = (self.frame_width, max(32, round(h * self.frame_width / w)))
            shrink = size[0] < w
        else:
            size, shrink = (self.size, self.size), True
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB)

    def embed(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        batch = np.stack(prepared).astype(np.float32)
        step = max(1, MAX_PIXELS_PER_CALL // (batch.shape[1] * batch.shape[2])) if self.frame_width else len(batch)
        out = np.concatenate([self._pooled(batch[i:i + step]) for i in range(0, len(batch), step)])
        return out.astype(np.float16 if self.pooling == "none" else np.float32, copy=False)

    def _pooled(self, batch: np.ndarray) -> np.ndarray:
        out = np.asarray(self._runner.predict_on_batch(self.preprocess(batch)), dtype=np.float32)
        if self.pooling == "none":  # float16: half the memory; a detector reads them as float32
            return max_pool_places(out, self.map_pool).astype(np.float16)
        if out.ndim > 2:
            axes = tuple(range(1, out.ndim - 1))
            out = out.max(axis=axes) if self.pooling == "max" else out.mean(axis=axes)
        return out

    @property
    def dim(self) -> int:
        """Number of features per frame (the channels of the output, after pooling)."""
        return self._channels

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed([self.prepare(im) for im in images])

    def save(self, path: Path) -> None:
        """Save the backbone network itself (used when its weights are not re-downloadable)."""
        self.model.save(path)


def _missing_weights_error(name: str, exc: Exception) -> ScreentimeError:
    url = re.search(r"https?://\S+?\.h5", str(exc))
    fname = url.group(0).rsplit("/", 1)[-1] if url else f"the {name} weights file"
    source = f" (from {url.group(0)})" if url else ""
    return ScreentimeError(
        f"cannot download ImageNet weights for {name} (offline?): put {fname}{source} in {keras_cache_dir()}/, "
        f"or pass --weights PATH, or use --backbone colour or a .keras file"
    )


def application_backbone(name: str, weights: str | None = "imagenet", input_size: int | None = None, *,
                         pooling: str = "avg", frame_width: int | None = None) -> KerasBackbone:
    """A ``keras.applications`` backbone; ``weights`` is ``imagenet``, ``None`` (random) or a file path.

    ``frame_width``: whole frames at that width, the last feature map reduced by ``pooling``.
    """
    if name not in APPLICATIONS:
        raise UsageError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_CHOICES)}")
    meta = APPLICATIONS[name]
    keras = keras_module()
    module = getattr(keras.applications, meta["module"])
    size = int(input_size or meta["size"])
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        raise ScreentimeError(f"weights file {weights} does not exist; check the --weights path")
    try:
        with warnings.catch_warnings():  # any input size is what @max asks for: no warning about it
            warnings.filterwarnings("ignore", message=".*input_shape. is undefined or non-square")
            model = getattr(keras.applications, meta["cls"])(
                include_top=False, weights=weights, pooling=None if frame_width else "avg",
                input_shape=(None, None, 3) if frame_width else (size, size, 3))
    except ValueError as exc:
        raise ScreentimeError(f"cannot build {name} with input size {size} and weights {weights}: {exc}") from exc
    except Exception as exc:  # Keras raises a bare Exception when the download fails
        if "URL fetch failure" in str(exc) or isinstance(exc, OSError):
            raise _missing_weights_error(name, exc) from exc
        raise
    spec = {"kind": "application", "name": name, "weights": weights or "none", "input_size": size,
            "preprocessing": meta["preprocessing"]}
    key = None if weights is None else f"{name}-{size}-{'imagenet' if weights == 'imagenet' else file_digest(weights)}"
    return KerasBackbone(model, module.preprocess_input, spec, key, pooling=pooling, frame_width=frame_width)


def file_backbone(path: str | os.PathLike, *, pooling: str = "avg", frame_width: int | None = None) -> KerasBackbone:
    """A saved ``.keras`` model whose input is RGB pixels 0–255 at its own (square) input size.

    ``frame_width``: whole frames at that width, the last feature map reduced by ``pooling``.
    """
    p = Path(path)
    if not p.is_file():
        raise ScreentimeError(f"backbone file {p} does not exist; check the path of the .keras model")
    keras = keras_module()
    try:
        model = keras.models.load_model(p, compile=False)
    except Exception as exc:
        raise ScreentimeError(f"{p} is not a Keras model file this Keras can load ({exc.__class__.__name__}); "
                              "save it with model.save('NAME.keras')") from exc
    shape = model.input_shape
    if isinstance(shape, list):
        raise ScreentimeError(f"{p} has several inputs; a backbone takes one batch of RGB images")
    square = shape[1] is not None and shape[1] == shape[2]
    if len(shape) != 4 or shape[-1] != 3 or not (square or frame_width):
        raise ScreentimeError(f"{p} takes input {shape}; a backbone must take square RGB images (None, S, S, 3)"
                              + ("" if len(shape) != 4 or shape[-1] != 3 else f", or use {p.name}@max"))
    if len(model.outputs) != 1:
        raise ScreentimeError(f"{p} has {len(model.outputs)} outputs; a backbone gives one feature vector or "
                              "feature map per image: save a model with only the output you want")
    spec = {"kind": "file", "name": p.name, "input_size": int(shape[1] or 0),
            "preprocessing": "RGB 0-255 float32 (any further preprocessing is inside the model)"}
    return KerasBackbone(model, lambda x: x, spec, f"file-{file_digest(p)}", pooling=pooling, frame_width=frame_width)


class FusionBackbone:
    """Several backbones side by side: their features concatenated, each part L2-normalised.

    Colour separates characters with distinct palettes and fails on props painted like them; an
    ImageNet network sees shapes but fails on a new camera angle. Together a head can use both.
    The heads standardise each feature and then weigh the parts alike whatever their sizes
    (``blocks``; see :mod:`helpers.heads`).
    """

    def __init__(self, parts: Sequence[Backbone]):
        self.parts = list(parts)
        names = [p.spec["name"] for p in self.parts]
        self.spec = {"kind": "fusion", "name": ",".join(names), "parts": [dict(p.spec) for p in self.parts],
                     "input_size": [p.spec["input_size"] for p in self.parts],
                     "preprocessing": "each part's own, then each part's features L2-normalised and concatenated"}
        keys = [p.cache_key for p in self.parts]
        self.cache_key = None if None in keys else "fusion-" + hashlib.sha256("|".join(keys).encode()).hexdigest()[:16]

    @property
    def blocks(self) -> list[int]:
        """Number of features of each part, in order (the head weighs the parts alike)."""
        return [part.dim for part in self.parts]

    @property
    def dim(self) -> int:
        return sum(self.blocks)

    def prepare(self, image: np.ndarray) -> tuple:
        return tuple(p.prepare(image) for p in self.parts)

    def embed(self, prepared: Sequence[tuple]) -> np.ndarray:
        blocks = []
        for j, part in enumerate(self.parts):
            X = part.embed([item[j] for item in prepared])
            blocks.append(X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-8))
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def features(self, images: Sequence[np.ndarray]) -> np.ndarray:
        return self.embed([self.prepare(im) for im in images])


def load_backbone(name: str, *, weights: str | None = "imagenet", input_size: int | None = None) -> Backbone:
    """The backbone called ``name`` (see the module docstring), ready to extract features.

    Several names joined with commas (``colour,squeezenet.keras``) make a :class:`FusionBackbone`.
    """
    key = str(name).strip()
    if "," in key:
        return FusionBackbone([load_backbone(part, weights=weights, input_size=input_size)
                               for part in key.split(",") if part.strip()])
    options: dict[str, Any] = {}  # NAME@max: whole frames, pooled (Keras backbones only)
    spatial = SPATIAL_SUFFIX.match(key)
    if spatial:
        key = spatial["base"].strip()
        options = {"pooling": spatial["pooling"], "frame_width": int(spatial["width"] or SPATIAL_WIDTH)}
        if not 32 <= options["frame_width"] <= 4096:
            raise UsageError(f"backbone {name!r}: the width after @{spatial['pooling']} must be 32 to 4096 px")
    elif key.lower() in ("colour", "color"):
        return ColourBackbone()
    elif key.lower() in ("colour+hog", "color+hog"):
        return ColourBackbone(hog=True)
    if key.lower() in APPLICATIONS:
        return application_backbone(key.lower(), weights, input_size, **options)
    if key.endswith(".keras") or Path(key).exists():
        return file_backbone(key, **options)
    if spatial:
        raise UsageError(f"backbone {name!r}: @{spatial['pooling']} applies to Keras backbones "
                         f"({', '.join(APPLICATIONS)} or a .keras file), not to {key!r}")
    raise UsageError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONE_CHOICES)}")


def save_backbone(backbone: Backbone, model_dir: Path, filename: str = "backbone.keras") -> dict[str, Any]:
    """Store what a model folder needs to rebuild ``backbone``; returns the spec to record."""
    if isinstance(backbone, FusionBackbone):
        parts = [save_backbone(p, model_dir, f"backbone{j}.keras") for j, p in enumerate(backbone.parts)]
        return {**backbone.spec, "parts": parts}
    if backbone.spec["kind"] == "detector":
        from .detector import save_detector_backbone

        return save_detector_backbone(backbone, model_dir)  # type: ignore[arg-type]
    spec = dict(backbone.spec)
    if spec["kind"] == "file" or (spec["kind"] == "application" and spec["weights"] != "imagenet"):
        assert isinstance(backbone, KerasBackbone)
        backbone.save(model_dir / filename)
        spec["file"] = filename
        if backbone.base_cache_key:  # the copy computes the same features: share the original's cache
            spec["cache_key"] = backbone.base_cache_key
    return spec


def backbone_from_spec(spec: dict[str, Any], model_dir: Path) -> Backbone:
    """Rebuild the backbone recorded in a model folder."""
    if spec["kind"] == "fusion":
        return FusionBackbone([backbone_from_spec(part, model_dir) for part in spec["parts"]])
    if spec["kind"] == "classical":
        return ColourBackbone(hog=spec["name"] == "colour+hog")
    if spec["kind"] == "detector":
        from .detector import detector_backbone_from_spec

        return detector_backbone_from_spec(spec, model_dir)
    options = {"pooling": spec.get("pooling", "avg"), "frame_width": spec.get("frame_width")}
    if "file" in spec:
        loaded = file_backbone(model_dir / spec["file"], **options)
        if spec["kind"] == "application":
            module = getattr(keras_module().applications, APPLICATIONS[spec["name"]]["module"])
            loaded.preprocess = module.preprocess_input
            loaded.base_cache_key = f"{spec['name']}-{loaded.base_cache_key}"
        # Each save writes different bytes, so the copy's own digest would give every retrained
        # model folder a cache of its own; the original's key is shared by all of them.
        loaded.base_cache_key = spec.get("cache_key") or loaded.base_cache_key
        loaded.spec = dict(spec)
        return loaded
    return application_backbone(spec["name"], spec.get("weights", "imagenet"), spec["input_size"], **options)
