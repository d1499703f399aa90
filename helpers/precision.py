"""Float32 or bfloat16 for Keras backbones: bfloat16 where the CPU multiplies it in hardware, if asked.

CPUs with Intel AMX (Xeon Sapphire Rapids and later) multiply bfloat16 matrices in hardware, and
TensorFlow's oneDNN kernels use it for convolutions run in Keras's ``mixed_bfloat16`` policy. On the
project's machine (2 cores with AMX) that made VGG16 4.4x and SqueezeNet 2.6x faster, with features
within 0.5% and 1.2% of float32 (relative distance; cosine similarity above 0.9998), while
MobileNetV2, made of depthwise convolutions that AMX does not speed up, got 1.25x *slower*. On the
accuracy benchmark SqueezeNet's cells moved by 0 to 2 points, 0.25 points lower on average
(docs/speed.md), so float32 stays the default: ``SCREENTIME_PRECISION=auto`` runs a backbone in
bfloat16 where it pays (a CPU with AMX, no GPU in use, no depthwise convolution in the network), and
``bfloat16`` forces it. Features of the two precisions are cached apart.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .errors import UsageError
from .progress import log

PRECISION_ENV = "SCREENTIME_PRECISION"
CHOICES = ("float32", "auto", "bfloat16")


def requested_precision() -> str:
    """``SCREENTIME_PRECISION``: ``float32`` (unset), ``auto`` or ``bfloat16``."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower() or "float32"
    if value not in CHOICES:
        raise UsageError(f"{PRECISION_ENV} must be one of {', '.join(CHOICES)}, not {value!r}; or unset it")
    return value


@functools.lru_cache(maxsize=1)
def cpu_has_amx_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 matrices in hardware (Linux's ``amx_bf16`` CPU flag)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and " amx_bf16" in f" {line}" for line in text.splitlines())


def _layers(model: Any) -> list[Any]:
    """Every layer of ``model``, nested models' layers included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found += _layers(layer)
    return found


def has_depthwise_convolutions(model: Any) -> bool:
    """Whether the network uses depthwise convolutions (MobileNet, EfficientNet), which AMX does not speed up."""
    return any(type(layer).__name__ in ("DepthwiseConv2D", "SeparableConv2D") for layer in _layers(model))


def choose_precision(model: Any) -> str:
    """``float32`` or ``bfloat16`` for running ``model`` here (see the module docstring)."""
    requested = requested_precision()
    if requested != "auto":
        return requested
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU") or not cpu_has_amx_bf16() or has_depthwise_convolutions(model):
        return "float32"
    return "bfloat16"


def in_bfloat16(model: Any) -> Any | None:
    """A copy of ``model`` whose layers compute in bfloat16 (weights kept in float32), or None when
    the network cannot be copied that way (it then runs in float32)."""
    import keras

    def copy(layer: Any) -> Any:
        config = layer.get_config()
        if "dtype" in config and not isinstance(layer, keras.layers.InputLayer):
            config["dtype"] = "mixed_bfloat16"
        return layer.__class__.from_config(config)

    try:
        clone = keras.models.clone_model(model, clone_function=copy)
        clone.set_weights(model.get_weights())
    except Exception as exc:  # an unusual network (custom layers, nested models): float32 works everywhere
        log.info("running the backbone in float32: it could not be copied to bfloat16 (%s)", exc)
        return None
    return clone
