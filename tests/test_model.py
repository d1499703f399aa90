"""Training, the model folder's save/load round trip, and a broken model folder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.errors import ScreentimeError
from helpers.model import load_model
from helpers.pipeline import extract_features, train
from helpers.video import sample_frames


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory, train_cartoon, train_labels):
    folder = tmp_path_factory.mktemp("models") / "colour"
    train(train_cartoon.video, train_labels, folder, backbone="colour")
    return folder


def test_model_folder_records_what_predict_needs(colour_model):
    card = json.loads((colour_model / "model.json").read_text())
    assert card["characters"] == ["jerry", "tom"]
    assert card["backbone"]["name"] == "colour" and card["backbone"]["input_size"] == 160
    assert "HSV" in card["backbone"]["preprocessing"]
    assert card["head"]["kind"] == "logistic" and card["screentime_version"]
    assert card["training"]["labelled_frames"] == 60


@pytest.mark.parametrize("head", ["logistic", "mlp"])
def test_round_trip_gives_identical_probabilities(tmp_path, train_cartoon, train_labels, head):
    model = train(train_cartoon.video, train_labels, tmp_path / head, backbone="colour", head=head, epochs=5)
    feats = extract_features(train_cartoon.video, model.backbone, fps=0.5)
    again = load_model(tmp_path / head)
    assert np.allclose(model.predict_proba(feats.X), again.predict_proba(feats.X), atol=1e-6)


def test_keras_backbone_with_random_weights_is_saved_in_the_folder(tmp_path, train_cartoon, train_labels):
    model = train(train_cartoon.video, train_labels, tmp_path / "m", backbone="mobilenet_v2", weights=None,
                  input_size=48)
    assert (tmp_path / "m" / "backbone.keras").is_file()
    feats = extract_features(train_cartoon.video, model.backbone, fps=0.2)
    again = load_model(tmp_path / "m")
    reloaded = extract_features(train_cartoon.video, again.backbone, fps=0.2)
    assert np.allclose(again.predict_proba(reloaded.X), model.predict_proba(feats.X), atol=1e-4)


def test_retraining_replaces_the_folder_whole(colour_model, train_cartoon, train_labels):
    (colour_model / "stray.txt").write_text("old")
    train(train_cartoon.video, train_labels, colour_model, backbone="colour")
    assert not (colour_model / "stray.txt").exists() and (colour_model / "model.json").is_file()


def test_broken_model_folders(tmp_path, colour_model):
    with pytest.raises(ScreentimeError, match="does not exist; train one"):
        load_model(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScreentimeError, match="no model.json"):
        load_model(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    with pytest.raises(ScreentimeError, match="corrupt"):
        load_model(bad)
    card = json.loads((colour_model / "model.json").read_text())
    (bad / "model.json").write_text(json.dumps({**card, "format_version": 99, "screentime_version": "9.0"}))
    with pytest.raises(ScreentimeError, match="made by screentime 9.0 .* retrain"):
        load_model(bad)
    (bad / "model.json").write_text(json.dumps(card))  # no head.npz beside it
    with pytest.raises(ScreentimeError, match="head .* is missing or corrupt"):
        load_model(bad)


def test_training_needs_frames_with_and_without_each_character(tmp_path, train_cartoon):
    (tmp_path / "all_tom.csv").write_text("frame,label\n0,tom\n10,tom\n")
    with pytest.raises(ScreentimeError, match="every labelled frame shows 'tom'"):
        train(train_cartoon.video, tmp_path / "all_tom.csv", tmp_path / "m")
    (tmp_path / "nobody.csv").write_text("frame,label\n0,none\n10,none\n")
    with pytest.raises(ScreentimeError, match="names no character"):
        train(train_cartoon.video, tmp_path / "nobody.csv", tmp_path / "m")


def test_label_past_the_last_frame(tmp_path, train_cartoon):
    (tmp_path / "late.csv").write_text("frame,label\n0,none\n10,tom\n5000,tom\n")
    with pytest.raises(ScreentimeError, match="labels frame 5000, but .* decodes only 1500 frames"):
        train(train_cartoon.video, tmp_path / "late.csv", tmp_path / "m")


def test_fused_model_round_trip(tmp_path, train_cartoon, train_labels):
    from helpers.backbones import keras_module

    keras = keras_module()
    inputs = keras.Input((40, 40, 3))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3)(inputs))
    keras.Model(inputs, outputs).save(tmp_path / "tiny.keras")
    model = train(train_cartoon.video, train_labels, tmp_path / "m", backbone=f"colour,{tmp_path / 'tiny.keras'}")
    assert (tmp_path / "m" / "backbone1.keras").is_file() and not (tmp_path / "m" / "backbone0.keras").exists()
    again = load_model(tmp_path / "m")
    feats = extract_features(train_cartoon.video, again.backbone, fps=0.5)
    assert feats.X.shape[1] == 270
    images = [f.image for f in sample_frames(train_cartoon.video, fps=0.5)]
    assert np.allclose(again.predict_proba(feats.X), model.predict_proba(model.backbone.features(images)), atol=1e-4)
    # The head weighed the two parts alike: standardised, then each part scaled to the same total variance.
    labelled = extract_features(train_cartoon.video, again.backbone, fps=None, frames=range(0, 1500, 25)).X
    weight = labelled.std(axis=0) / again.head.scaler.scale
    varying = labelled.std(axis=0) > 1e-6
    assert np.allclose(weight[:264][varying[:264]], np.sqrt(135 / 264), rtol=1e-3)
    assert np.allclose(weight[264:][varying[264:]], np.sqrt(135 / 6), rtol=1e-3)


def test_alternative_backbones_are_validated_and_the_best_is_kept(tmp_path, train_cartoon, train_labels):
    """``colour+hog|colour``: both are validated on time blocks; the better one (not the first) is saved."""
    model = train(train_cartoon.video, train_labels, tmp_path / "m", backbone="colour+hog | colour")
    choice = json.loads((tmp_path / "m" / "model.json").read_text())["training"]["backbone_choice"]
    scores = choice["validated_accuracy"]
    assert list(scores) == ["colour+hog", "colour"]
    assert choice["picked"] == max(scores, key=scores.get) == model.backbone.spec["name"] == "colour"
    assert load_model(tmp_path / "m").backbone.spec["name"] == "colour"


def test_choosing_a_backbone_needs_enough_labels(tmp_path, train_cartoon):
    labels = tmp_path / "few.csv"
    train_cartoon.truth.iloc[::250].to_csv(labels, index=False)  # 6 labels: too few to validate
    with pytest.raises(ScreentimeError, match="cannot choose between backbones colour \\| colour\\+hog"):
        train(train_cartoon.video, labels, tmp_path / "m", backbone="colour|colour+hog")


def test_retrained_models_share_the_file_backbones_feature_cache(tmp_path, monkeypatch, train_cartoon, train_labels,
                                                                 test_cartoon):
    """A new head (new labels, another head type) on the same .keras backbone recomputes no features."""
    from helpers.backbones import keras_module, load_backbone

    monkeypatch.setenv("SCREENTIME_CACHE", str(tmp_path / "cache"))
    keras = keras_module()
    inputs = keras.Input((40, 40, 3))
    keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(6, 3)(inputs))).save(tmp_path / "net.keras")
    net = str(tmp_path / "net.keras")
    train(train_cartoon.video, train_labels, tmp_path / "a", backbone=net)
    train(train_cartoon.video, train_labels, tmp_path / "b", backbone=net, head="mlp", epochs=5)
    first, second = load_model(tmp_path / "a").backbone, load_model(tmp_path / "b").backbone
    assert first.cache_key == second.cache_key == load_backbone(net).cache_key
    assert extract_features(test_cartoon.video, first, fps=1).computed == 30  # predicting with model a
    assert extract_features(test_cartoon.video, second, fps=1).computed == 0  # then with model b



def test_training_says_when_validation_could_not_run(tmp_path, train_cartoon, train_labels, caplog):
    labels = train_cartoon.truth.iloc[::25].copy()
    train(train_cartoon.video, train_labels, tmp_path / "ok")
    assert "did not run" not in caplog.text  # 60 labels, both characters throughout: validated
    labels["label"] = ["none" if "tom" in label else label for label in labels["label"]]
    labels.iloc[10, labels.columns.get_loc("label")] = "tom"  # TOM labelled in one frame only
    labels.to_csv(tmp_path / "rare.csv", index=False)
    model = train(train_cartoon.video, tmp_path / "rare.csv", tmp_path / "rare")
    assert model.thresholds == [0.5, 0.5] and model.smoothing_s == 0.0
    assert ("validation on time blocks of the labels did not run (a time block lacks examples of a class), so "
            "thresholds are 0.5 and there is no smoothing; frames labelled with each character: jerry ") in caplog.text
    assert "tom 1; label at least 15 frames" in caplog.text
