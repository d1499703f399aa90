"""Float32 or bfloat16 for Keras backbones: bfloat16 where the CPU multiplies it in hardware, if asked.

Some CPUs multiply bfloat16 in hardware: Intel AMX (Xeon Sapphire Rapids and later) and AVX-512
BF16 (AMD Zen 4 and later, Intel Cooper Lake). TensorFlow's oneDNN kernels use it for convolutions
run in Keras's ``mixed_bfloat16`` policy. On 2 cores, that made VGG16 4.4x and SqueezeNet 2.6x
faster with AMX (a Xeon) and 2.0x and 1.8x with AVX-512 BF16 (an AMD EPYC), with features within
0.5% and 1.2% of float32 (relative distance; cosine similarity above 0.9998), while MobileNetV2,
made of depthwise convolutions, got 1.2-1.3x *slower* on both. On the accuracy benchmark
SqueezeNet's cells moved by 0 to 2 points, 0.25 points lower on average (docs/speed.md), so float32
stays the default: ``SCREENTIME_PRECISION=auto`` runs a backbone in bfloat16 where it pays (such a
CPU, no GPU in use, no depthwise convolution in the network), and ``bfloat16`` forces it. Features
of the two precisions are cached apart.
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


#: Linux's CPU flags for hardware bfloat16 arithmetic that oneDNN uses: Intel AMX, AVX-512 BF16.
BFLOAT16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def bfloat16_flag_in(cpuinfo: str) -> str | None:
    """The hardware-bfloat16 flag (AMX first) on the ``flags`` lines of ``/proc/cpuinfo`` text, or None."""
    flags = {flag for line in cpuinfo.splitlines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}
    return next((flag for flag in BFLOAT16_CPU_FLAGS if flag in flags), None)


@functools.lru_cache(maxsize=1)
def cpu_bfloat16_flag() -> str | None:
    """The flag by which this CPU multiplies bfloat16 in hardware (AMX first), or None (not Linux too)."""
    try:
        return bfloat16_flag_in(Path("/proc/cpuinfo").read_text())
    except OSError:
        return None


def _layers(model: Any) -> list[Any]:
    """Every layer of ``model``, nested models' layers included."""
    found = []
    for layer in getattr(model, "layers", []):
        found.append(layer)
        found += _layers(layer)
    return found


def has_depthwise_convolutions(model: Any) -> bool:
    """Whether the network uses depthwise convolutions (MobileNet, EfficientNet), which bfloat16 slows down."""
    return any(type(layer).__name__ in ("DepthwiseConv2D", "SeparableConv2D") for layer in _layers(model))


def choose_precision(model: Any) -> str:
    """``float32`` or ``bfloat16`` for running ``model`` here (see the module docstring)."""
    requested = requested_precision()
    if requested != "auto":
        return requested
    import tensorflow as tf

    if tf.config.list_logical_devices("GPU") or not cpu_bfloat16_flag() or has_depthwise_convolutions(model):
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
