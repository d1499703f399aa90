"""Every backbone kind on real frames: classical, keras.applications (random weights), .keras files."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.backbones import (
    APPLICATIONS,
    ColourBackbone,
    application_backbone,
    keras_module,
    load_backbone,
)
from helpers.errors import ScreentimeError
from helpers.video import sample_frames

from .conftest import SHARED


@pytest.fixture(scope="module")
def frames(short_cartoon):
    return [f.image for f in sample_frames(short_cartoon.video, fps=1)][:3]


def test_colour_features_are_normalised_histograms(frames):
    X = ColourBackbone().features(frames)
    assert X.shape == (3, 32 * 8 + 8) and X.dtype == np.float32 and ColourBackbone().dim == 264
    assert ColourBackbone(hog=True).dim == ColourBackbone(hog=True).features(frames).shape[1]
    assert np.allclose((X[:, :256] ** 2).sum(axis=1), 1.0, atol=1e-4)


def test_colour_with_hog_is_longer(frames):
    assert load_backbone("colour+hog").features(frames).shape[1] > ColourBackbone().features(frames).shape[1]


@pytest.mark.parametrize("name, dim", [("vgg16", 512), ("mobilenet_v2", 1280), ("efficientnet_b0", 1280)])
def test_keras_applications_with_random_weights(frames, name, dim):
    backbone = application_backbone(name, weights=None, input_size=64)
    X = backbone.features(frames)
    assert X.shape == (3, dim) and np.isfinite(X).all() and backbone.dim == dim
    assert backbone.spec["preprocessing"] == APPLICATIONS[name]["preprocessing"]


def test_keras_file_backbone_with_a_feature_map_output(tmp_path, frames):
    keras = keras_module()
    inputs = keras.Input((48, 48, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    outputs = keras.layers.Conv2D(8, 3, strides=2)(x)  # a map: pooled by the backbone
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, outputs).save(path)
    backbone = load_backbone(str(path))
    assert backbone.spec["input_size"] == 48
    assert backbone.features(frames).shape == (3, 8) and backbone.dim == 8


def test_a_keras_file_with_several_outputs_is_refused(tmp_path):
    keras = keras_module()
    inputs = keras.Input((40, 40, 3))
    conv = keras.layers.Conv2D(4, 3)(inputs)
    keras.Model(inputs, [keras.layers.GlobalAveragePooling2D()(conv), keras.layers.Flatten()(conv)]).save(
        tmp_path / "two.keras")
    with pytest.raises(ScreentimeError, match="two.keras has 2 outputs; a backbone gives one feature vector"):
        load_backbone(str(tmp_path / "two.keras"))


@pytest.mark.skipif(not (SHARED / "models").is_dir(), reason="needs ../shared/models")
def test_real_squeezenet_file(frames):
    backbone = load_backbone(str(SHARED / "models" / "squeezenet_v1_1_imagenet.keras"))
    assert backbone.features(frames).shape == (3, 512)


def test_missing_imagenet_download_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    try:
        application_backbone("mobilenet_v2", weights="imagenet", input_size=96)
    except ScreentimeError as exc:
        message = str(exc)
    else:
        pytest.skip("this machine could download the weights")
    assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5" in message
    assert str(tmp_path / "keras" / "models") in message and "--weights PATH" in message


def test_unknown_backbone_and_missing_files(tmp_path):
    with pytest.raises(ScreentimeError, match="unknown backbone 'resnet'"):
        load_backbone("resnet")
    with pytest.raises(ScreentimeError, match="does not exist"):
        load_backbone(str(tmp_path / "missing.keras"))
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(ScreentimeError, match="not a Keras model file"):
        load_backbone(str(tmp_path / "junk.keras"))
    with pytest.raises(ScreentimeError, match="weights file .* does not exist"):
        application_backbone("vgg16", weights=str(tmp_path / "w.h5"))


def test_fusion_concatenates_normalised_parts(frames, tmp_path):
    from helpers.backbones import FusionBackbone

    keras = keras_module()
    inputs = keras.Input((40, 40, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3)(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "tiny.keras")
    fused = load_backbone(f"colour,{tmp_path / 'tiny.keras'}")
    assert isinstance(fused, FusionBackbone) and fused.spec["name"] == "colour,tiny.keras"
    X = fused.features(frames)
    assert X.shape == (3, 264 + 6) and fused.blocks == [264, 6] and fused.dim == 270
    assert np.allclose(np.linalg.norm(X[:, :264], axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(X[:, 264:], axis=1), 1, atol=1e-5)
    assert fused.cache_key and fused.cache_key != ColourBackbone().cache_key
