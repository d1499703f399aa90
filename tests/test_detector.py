"""The detector head: a small network on a whole-frame backbone's feature map (``--head detector``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers.backbones import keras_module, load_backbone, max_pool_places
from helpers.detector import (DetectorBackbone, DetectorHead, detector_backbone_from_spec, feature_map_backbone,
                              save_detector_backbone)
from helpers.errors import ScreentimeError
from helpers.heads import LogisticHead

from .conftest import assert_one_line_error, screentime


def _colour_block_network(path):
    """A tiny saved network: each 8x8 block of the frame becomes one place of its map, channel 0 how
    red the block is on average, channel 1 how blue (RGB 0-1), then global average pooling."""
    keras = keras_module()
    inputs = keras.Input((48, 48, 3))
    conv = keras.layers.Conv2D(2, 1, use_bias=False)
    blocks = keras.layers.AveragePooling2D(8)(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(conv(blocks)))
    conv.set_weights([np.array([[[[1, 0], [0, 0], [0, 1]]]], np.float32)])
    model.save(path)
    return path


def _frames(rng, n):
    """Frames of 640x360 (320x180 as the backbone sees them: 8x8 blocks on its grid). Half show the
    'character', one block half red and half blue; the others a half-red block and, elsewhere, a
    half-blue one. Each feature's maximum over the frame is the same (0.5 red, 0.5 blue) for both."""
    frames, labels = [], []
    for i in range(n):
        frame = np.zeros((360, 640, 3), np.uint8)
        y, x = 16 * rng.integers(0, 20), 16 * rng.integers(0, 18)
        if i % 2:
            frame[y:y + 16, x:x + 8] = (0, 0, 255)  # BGR red left half...
            frame[y:y + 16, x + 8:x + 16] = (255, 0, 0)  # ...and blue right half of one block
        else:
            frame[y:y + 16, x:x + 8] = (0, 0, 255)
            frame[(y + 160) % 352:(y + 160) % 352 + 16, x + 320:x + 328] = (255, 0, 0)
        frames.append(frame)
        labels.append([i % 2])
    return frames, np.array(labels)


def test_the_detector_sees_what_is_together_in_one_place_which_the_maximum_loses(tmp_path):
    path = _colour_block_network(tmp_path / "blocks.keras")
    rng = np.random.default_rng(0)
    train_frames, Y = _frames(rng, 80)
    test_frames, Y_test = _frames(rng, 40)

    pooled = load_backbone(f"{path}@max320")
    X, X_test = pooled.features(train_frames), pooled.features(test_frames)
    assert np.allclose(X, 0.5, atol=0.01)  # the maximum cannot tell the two kinds of frame apart...
    logistic = (LogisticHead().fit(X, Y).predict_proba(X_test) >= 0.5) == Y_test
    assert logistic.mean() <= 0.7

    maps = feature_map_backbone(load_backbone(f"{path}@max320"), "blocks.keras@max320")
    M = maps.features(train_frames)
    # the 22x40 map, each 2x2 block of places max-pooled; maps are never cached
    assert M.shape == (80, 11, 20, 2) and M.dtype == np.float16 and maps.cache_key is None
    detector = DetectorHead().fit(M, Y)  # ...the detector, looking at each place, can
    assert ((detector.predict_proba(maps.features(test_frames)) >= 0.5) == Y_test).mean() >= 0.95

    combined = DetectorBackbone(maps, detector)  # what a trained model predicts with
    assert combined.dim == 1 and combined.cache_key.startswith(pooled.cache_key + "-detector-pool2-")
    assert np.allclose(combined.features(test_frames), detector.scores(maps.features(test_frames)), atol=1e-5)


def test_map_places_are_max_pooled_in_blocks_including_partial_ones_at_the_edges():
    maps = np.arange(15, dtype=np.float32).reshape(1, 3, 5, 1)  # rows 0-4, 5-9, 10-14
    assert max_pool_places(maps, 2)[0, :, :, 0].tolist() == [[6, 8, 9], [11, 13, 14]]
    assert max_pool_places(maps, 1) is maps


def test_a_detector_saved_before_map_pooling_still_sees_whole_maps(tmp_path):
    """Models from before MAP_POOL record no map_pool: they are rebuilt with whole maps, as trained."""
    path = _colour_block_network(tmp_path / "blocks.keras")
    frames, Y = _frames(np.random.default_rng(1), 40)
    maps = feature_map_backbone(load_backbone(f"{path}@max320"), "blocks", map_pool=1)
    detector = DetectorHead(epochs=2).fit(maps.features(frames), Y)
    old = DetectorBackbone(maps, detector, map_pool=1)
    spec = save_detector_backbone(old, tmp_path)
    del spec["map_pool"]
    again = detector_backbone_from_spec(spec, tmp_path)
    assert again.base.map_pool == 1 and again.cache_key == old.cache_key and "-pool" not in old.cache_key
    assert np.allclose(again.features(frames[:4]), old.features(frames[:4]), atol=1e-5)


def test_a_detector_model_round_trips_and_caches_its_scores(tmp_path, train_cartoon, train_labels):
    from helpers.learning_curve import model_training_settings
    from helpers.model import load_model
    from helpers.pipeline import predict, train

    path = _colour_block_network(tmp_path / "blocks.keras")
    # 10 passes over the 60 labels (20 steps) instead of 500 steps: this test is about files and caches
    trained = train(train_cartoon.video, train_labels, tmp_path / "model", backbone=f"{path}@max320", head="detector",
                    epochs=10)
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["head"] == {"kind": "detector"} and card["backbone"]["kind"] == "detector"
    assert card["backbone"]["base"]["pooling"] == "max" and card["backbone"]["base"]["frame_width"] == 320
    assert (tmp_path / "model" / "detector.keras").is_file() and (tmp_path / "model" / "backbone.keras").is_file()

    model = load_model(tmp_path / "model")
    frames = [np.zeros((180, 320, 3), np.uint8), np.full((180, 320, 3), 200, np.uint8)]
    assert np.allclose(model.backbone.features(frames), trained.backbone.features(frames), atol=1e-5)
    assert model.backbone.cache_key == trained.backbone.cache_key
    first = predict(train_cartoon.video, tmp_path / "model", tmp_path / "run", fps=1)
    again = predict(train_cartoon.video, tmp_path / "model", tmp_path / "run2", fps=1)
    assert first.computed == len(first.predictions) == 60 and again.computed == 0  # scores come from the cache
    assert first.predictions.equals(again.predictions)
    assert model_training_settings(tmp_path / "model") == {"backbone": str(tmp_path / "model" / "backbone.keras")
                                                           + "@max320", "head": "detector"}


def test_the_detector_needs_a_keras_backbone_on_the_whole_frame(tmp_path, train_cartoon, train_labels):
    path = _colour_block_network(tmp_path / "blocks.keras")
    for backbone in ("colour", str(path), f"colour,{path}@max"):
        run = screentime("train", "--video", train_cartoon.video, "--labels", train_labels, "--out", tmp_path / "m",
                         "--backbone", backbone, "--head", "detector")
        assert_one_line_error(run, "--head detector needs one Keras backbone run on the whole frame",
                              "model.keras@max", repr(backbone))
    assert not (tmp_path / "m").exists()
    with pytest.raises(ScreentimeError, match="the detector head trains on whole feature maps"):
        DetectorHead().fit(np.zeros((4, 3), np.float32), np.array([[0], [1], [0], [1]]))


def test_validation_chooses_between_heads_as_it_does_between_backbones(tmp_path, train_cartoon, train_labels):
    from helpers.model import load_model
    from helpers.pipeline import predict, train

    path = _colour_block_network(tmp_path / "blocks.keras")
    trained = train(train_cartoon.video, train_labels, tmp_path / "model", backbone=f"colour|{path}@max320",
                    head="logistic|detector", epochs=10)  # 20 steps instead of 500: this test is about choosing
    scores = trained.training["backbone_choice"]["validated_accuracy"]
    # colour gets no detector (not a network on the whole frame); the whole-frame network gets both heads
    assert list(scores) == ["colour (logistic head)", f"{path}@max320 (logistic head)",
                            f"{path}@max320 (detector head)"]
    picked = trained.training["backbone_choice"]["picked"]
    assert scores[picked] == max(scores.values())
    card = json.loads((tmp_path / "model" / "model.json").read_text())
    assert card["head"]["kind"] == picked.split("(")[1].split()[0]  # the picked candidate's head was saved
    assert len(predict(train_cartoon.video, tmp_path / "model", tmp_path / "run", fps=1).predictions) == 60
    assert load_model(tmp_path / "model").head.kind == card["head"]["kind"]

    run = screentime("train", "--video", train_cartoon.video, "--labels", train_labels, "--out", tmp_path / "m",
                     "--head", "logistic|svm")
    assert_one_line_error(run, "unknown head 'svm'", "logistic, mlp, detector", status=2)


def test_training_and_scoring_print_nothing_but_their_results(tmp_path):
    """Maps are stored as float16 but reach TensorFlow as float32: fed half precision, its CPU kernels
    print an error line (oneDNN and DT_HALF) into the user's output on machines without AVX-512."""
    script = (
        "import numpy as np\n"
        "from helpers.detector import DetectorHead\n"
        "rng = np.random.default_rng(0)\n"
        "maps = rng.random((40, 6, 8, 64)).astype(np.float16)  # smaller maps never reach oneDNN\n"
        "Y = np.array([[i % 2, (i // 2) % 2] for i in range(40)])\n"
        "head = DetectorHead(epochs=1, members=1).fit(maps, Y)\n"
        "print(head.predict_proba(maps).shape)\n"
    )
    # As a user runs it: the test suite's TF_CPP_MIN_LOG_LEVEL=3 would hide TensorFlow's error lines.
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**env, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "(40, 2)"
    assert "DT_HALF" not in run.stderr and "oneDNN" not in run.stderr, run.stderr
