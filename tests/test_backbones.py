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


def _red_and_blue_detector(path, input_shape=(48, 48, 3)):
    """A tiny saved network ending in global average pooling, like the SqueezeNet file: channel 0
    of its map is how red a pixel is, channel 1 how blue (a 1x1 convolution on RGB 0-1)."""
    keras = keras_module()
    inputs = keras.Input(input_shape)
    conv = keras.layers.Conv2D(2, 1, use_bias=False)
    outputs = keras.layers.GlobalAveragePooling2D()(conv(keras.layers.Rescaling(1 / 255)(inputs)))
    model = keras.Model(inputs, outputs)
    conv.set_weights([np.array([[[[1, 0], [0, 0], [0, 1]]]], np.float32)])
    model.save(path)
    return path


def _frame_with_red_square(x, y, size=24):
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[y:y + size, x:x + size] = (0, 0, 255)  # BGR red
    return frame


def test_max_over_the_whole_frame_sees_a_small_character_anywhere(tmp_path):
    path = _red_and_blue_detector(tmp_path / "detector.keras")
    small_thing = [_frame_with_red_square(40, 40), _frame_with_red_square(560, 300)]

    plain = load_backbone(str(path))  # the frame squashed to 48x48, the map averaged
    whole = load_backbone(f"{path}@max320")  # the frame at 320x180, each channel's maximum

    assert whole.prepare(small_thing[0]).shape == (180, 320, 3)  # aspect ratio kept
    X = whole.features(small_thing)
    assert np.allclose(X[:, 0], 1.0, atol=0.01) and np.allclose(X[:, 1], 0.0)  # full strength, wherever it is
    assert (plain.features(small_thing)[:, 0] < 0.01).all()  # diluted by the empty frame around it
    assert whole.spec["pooling"] == "max" and whole.spec["frame_width"] == 320 and whole.dim == 2
    assert whole.cache_key.endswith("@max320") and whole.cache_key != plain.cache_key

    average = load_backbone(f"{path}@avg")  # 640 px wide by default, the map averaged
    assert average.spec["frame_width"] == 640
    assert np.allclose(average.features(small_thing)[:, 0], 24 * 24 / (640 * 360), rtol=0.05)


def test_whole_frame_backbones_take_any_input_shape_and_say_what_they_need(tmp_path):
    wide = _red_and_blue_detector(tmp_path / "wide.keras", input_shape=(48, 64, 3))
    with pytest.raises(ScreentimeError, match=r"must take square RGB images .*, or use wide.keras@max"):
        load_backbone(str(wide))
    assert load_backbone(f"{wide}@max").features([_frame_with_red_square(0, 0)]).shape == (1, 2)

    keras = keras_module()
    inputs = keras.Input((32, 32, 3))
    keras.Model(inputs, keras.layers.Dense(4)(keras.layers.Flatten()(inputs))).save(tmp_path / "flat.keras")
    with pytest.raises(ScreentimeError, match="@max needs a network whose output is a feature map or ends in "
                                              "global pooling"):
        load_backbone(f"{tmp_path / 'flat.keras'}@max")
    with pytest.raises(ScreentimeError, match="@max applies to Keras backbones .* not to 'colour'"):
        load_backbone("colour@max")
    with pytest.raises(ScreentimeError, match="the width after @max must be 32 to 4096 px"):
        load_backbone(f"{wide}@max8")
    backbone = application_backbone("mobilenet_v2", weights=None, pooling="max", frame_width=96)
    assert backbone.features([_frame_with_red_square(0, 0)]).shape == (1, 1280)


def test_a_model_trained_on_whole_frames_keeps_them_when_it_predicts(tmp_path, train_cartoon, train_labels):
    from helpers.learning_curve import model_training_settings
    from helpers.model import load_model
    from helpers.pipeline import predict, train

    path = _red_and_blue_detector(tmp_path / "detector.keras")
    train(train_cartoon.video, train_labels, tmp_path / "model", backbone=f"{path}@max320")
    model = load_model(tmp_path / "model")
    assert model.backbone.spec["pooling"] == "max" and model.backbone.spec["frame_width"] == 320
    assert model.backbone.cache_key == load_backbone(f"{path}@max320").cache_key  # shares the cache
    assert model_training_settings(tmp_path / "model")["backbone"].endswith("backbone.keras@max320")
    result = predict(train_cartoon.video, tmp_path / "model", tmp_path / "run", fps=1)
    assert len(result.predictions) == round(len(train_cartoon.truth) / 25)


def test_an_imagenet_backbone_on_whole_frames_warns_about_nothing_but_the_download(tmp_path, monkeypatch, recwarn):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    try:
        application_backbone("mobilenet_v2", weights="imagenet", pooling="max", frame_width=640)
    except ScreentimeError as exc:
        assert "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5" in str(exc)
    else:
        pytest.skip("this machine could download the weights")
    assert not [w for w in recwarn if "input_shape" in str(w.message)]
