"""Keras backbones run in float32, or in bfloat16 where asked and where the CPU multiplies it in hardware (AMX)."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.backbones import keras_module, load_backbone
from helpers.errors import UsageError
from helpers.precision import PRECISION_ENV, bfloat16_flag_in, choose_precision, cpu_bfloat16_flag
from helpers.video import sample_frames


@pytest.fixture(scope="module")
def frames(short_cartoon):
    return [f.image for f in sample_frames(short_cartoon.video, fps=1)][:4]


def small_network(path, depthwise: bool = False):
    """A saved .keras backbone: convolutions on 48x48 RGB, pooled to 16 features."""
    keras = keras_module()
    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    if depthwise:
        x = keras.layers.DepthwiseConv2D(3)(x)
    x = keras.layers.Conv2D(16, 3, activation="relu")(x)
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x)).save(path)
    return str(path)


def test_bfloat16_features_are_close_to_float32_and_cached_apart(tmp_path, frames, monkeypatch):
    path = small_network(tmp_path / "net.keras")
    monkeypatch.setenv(PRECISION_ENV, "float32")
    exact = load_backbone(path)
    monkeypatch.setenv(PRECISION_ENV, "bfloat16")
    fast = load_backbone(path)
    assert (exact.precision, fast.precision) == ("float32", "bfloat16")
    A, B = exact.features(frames), fast.features(frames)
    assert B.dtype == np.float32 and not np.array_equal(A, B)  # really computed in bfloat16
    cosine = (A * B).sum(1) / (np.linalg.norm(A, axis=1) * np.linalg.norm(B, axis=1))
    assert cosine.min() > 0.999
    assert fast.cache_key == exact.cache_key + "-bfloat16"


def test_the_saved_network_stays_float32(tmp_path, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "bfloat16")
    backbone = load_backbone(small_network(tmp_path / "net.keras"))
    backbone.save(tmp_path / "saved.keras")
    saved = keras_module().models.load_model(tmp_path / "saved.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}


def test_float32_unless_asked(tmp_path, frames, monkeypatch):
    monkeypatch.delenv(PRECISION_ENV, raising=False)
    assert load_backbone(small_network(tmp_path / "net.keras")).precision == "float32"


def test_auto_picks_bfloat16_only_on_a_bfloat16_cpu_and_never_for_depthwise_networks(tmp_path, monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "auto")
    keras = keras_module()
    plain = keras.models.load_model(small_network(tmp_path / "plain.keras"))
    depthwise = keras.models.load_model(small_network(tmp_path / "dw.keras", depthwise=True))
    assert choose_precision(depthwise) == "float32"  # MobileNet-like: bfloat16 slows it down
    import tensorflow as tf

    uses_gpu = bool(tf.config.list_logical_devices("GPU"))  # a GPU keeps float32
    assert choose_precision(plain) == ("bfloat16" if cpu_bfloat16_flag() and not uses_gpu else "float32")


def test_a_bad_setting_says_what_to_write(monkeypatch, tmp_path):
    monkeypatch.setenv(PRECISION_ENV, "half")
    with pytest.raises(UsageError, match="SCREENTIME_PRECISION must be one of float32, auto, bfloat16"):
        load_backbone(small_network(tmp_path / "net.keras"))


def test_the_cpu_flags_that_mean_hardware_bfloat16():
    xeon = "processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_bf16 amx_tile\nbugs\t\t: spectre_v1\n"
    zen4 = "flags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n"
    older = "flags\t\t: fpu avx2 avx512f avx512_vnni\nbugs\t\t: amx_bf16_in_a_bug_name\n"
    assert bfloat16_flag_in(xeon) == "amx_bf16"  # AMX first: it gains twice as much
    assert bfloat16_flag_in(zen4) == "avx512_bf16"
    assert bfloat16_flag_in(older) is None  # only the flags line counts, and whole flags
    assert bfloat16_flag_in("") is None
