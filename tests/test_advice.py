"""What ``train`` tells the user about the model it made: its validated accuracy, and when to try a network."""

from __future__ import annotations

import json

from helpers.advice import GOOD_ENOUGH, MIN_LABELS_FOR_ADVICE, stronger_backbone_hint, training_summary, uses_network
from helpers.backbones import ColourBackbone, load_backbone
from helpers.fileio import write_csv
from helpers.heads import LogisticHead
from helpers.model import ScreentimeModel
from helpers.synthetic import make_cartoon

from .conftest import screentime


def _model(backbone, accuracy_by_strength: dict[str, float] | None, smoothing_s: float = 1.0,
           choice: dict | None = None, labels: int = 300, thresholds=(0.5, 0.5)) -> ScreentimeModel:
    calibration = {"validation": "5 contiguous time blocks of the labelled frames, out-of-fold"}
    if accuracy_by_strength is not None:
        calibration.update(accuracy_raw=accuracy_by_strength["0"], accuracy_by_strength_s=accuracy_by_strength)
    training = {"labelled_frames": labels, "calibration": calibration, **({"backbone_choice": choice} if choice else {})}
    return ScreentimeModel(["jerry", "tom"], backbone, LogisticHead(), list(thresholds), training, smoothing_s)


def test_the_summary_gives_the_accuracy_at_the_chosen_smoothing_and_without_it():
    model = _model(ColourBackbone(), {"0": 0.9, "0.5": 0.93, "1": 0.965})
    assert training_summary(model) == [
        "validation (5 contiguous time blocks of the labelled frames, out-of-fold): 96.5% of the 300 labelled "
        "frames right with 1 s of smoothing (90.0% without)"]
    unsmoothed = _model(ColourBackbone(), {"0": 0.9, "1": 0.85}, smoothing_s=0.0)
    assert training_summary(unsmoothed)[0].endswith("90.0% of the 300 labelled frames right without smoothing")


def test_smoothing_kept_within_the_noise_is_explained():
    model = _model(ColourBackbone(), {"0": 0.943, "1": 0.94})
    assert "94.0% of the 300 labelled frames right with 1 s of smoothing (94.3% without; within validation's " \
           "noise, so smoothing is kept)" in training_summary(model)[0]


def test_a_threshold_moved_from_half_is_named():
    model = _model(ColourBackbone(), {"0": 0.94, "1": 0.95}, thresholds=(0.65, 0.5))
    assert training_summary(model)[1] == "thresholds moved from 0.5 by validation (better beyond its noise): jerry 0.65"
    assert len(training_summary(_model(ColourBackbone(), {"0": 0.94, "1": 0.95}))) == 1  # both at 0.5: no line


def test_each_backbone_tried_is_listed_with_its_score():
    choice = {"picked": "colour,net.keras@max", "validated_accuracy": {"colour": 0.807, "colour,net.keras@max": 0.94}}
    model = _model(ColourBackbone(), {"0": 0.94, "1": 0.94}, choice=choice)
    assert training_summary(model)[1] == "backbones validated: colour 80.7%, colour,net.keras@max 94.0% (kept)"


def test_a_colour_model_below_the_bar_suggests_a_network_and_nothing_else_does():
    hint = stronger_backbone_hint(_model(ColourBackbone(), {"0": 0.8, "1": 0.807}))
    assert hint is not None and hint.startswith("colour features validated at 80.7%")
    assert '--backbone "colour|colour,mobilenet_v2@max"' in hint and "MODEL.keras@max --head detector" in hint
    assert stronger_backbone_hint(_model(ColourBackbone(hog=True), {"0": 0.8, "1": 0.8})) is not None
    assert stronger_backbone_hint(_model(ColourBackbone(), {"0": GOOD_ENOUGH, "1": GOOD_ENOUGH})) is None
    fused = load_backbone("colour,mobilenet_v2", weights=None, input_size=32)
    assert uses_network(fused.spec) and not uses_network(ColourBackbone().spec)
    assert stronger_backbone_hint(_model(fused, {"0": 0.8, "1": 0.807})) is None
    compared = {"picked": "colour", "validated_accuracy": {"colour": 0.807, "colour,net.keras@max": 0.78}}
    assert stronger_backbone_hint(_model(ColourBackbone(), {"0": 0.8, "1": 0.807}, choice=compared)) is None


def test_with_few_labels_the_estimate_is_flagged_as_low_and_no_backbone_is_suggested():
    few = _model(ColourBackbone(), {"0": 0.8, "1": 0.83}, labels=MIN_LABELS_FOR_ADVICE - 1)
    assert training_summary(few)[0].endswith(f"(80.0% without); with under {MIN_LABELS_FOR_ADVICE} labels this "
                                             "runs low, as each block is predicted by a model that saw only the others")
    assert stronger_backbone_hint(few) is None
    enough = _model(ColourBackbone(), {"0": 0.8, "1": 0.83}, labels=MIN_LABELS_FOR_ADVICE)
    assert training_summary(enough)[0].endswith("(80.0% without)") and stronger_backbone_hint(enough) is not None


def test_without_validation_there_is_no_summary_and_no_hint():
    model = _model(ColourBackbone(), None, smoothing_s=0.0)
    assert training_summary(model) == [] and stronger_backbone_hint(model) is None


def test_train_on_footage_colour_cannot_separate_prints_the_score_and_the_hint(tmp_path):
    video = tmp_path / "hard.mp4"
    truth = make_cartoon(video, seconds=60, seed=7, hard=True)
    write_csv(truth.iloc[::5], tmp_path / "labels.csv")  # 5 a second: 300 labels
    run = screentime("train", "--video", video, "--labels", tmp_path / "labels.csv", "--out", tmp_path / "model")
    assert run.status == 0, run.err
    calibration = json.loads((tmp_path / "model" / "model.json").read_text())["training"]["calibration"]
    strength = json.loads((tmp_path / "model" / "model.json").read_text())["smoothing"]["strength_s"]
    accuracy = calibration["accuracy_by_strength_s"][f"{strength:g}"]
    assert accuracy < GOOD_ENOUGH
    assert f"{accuracy:.1%} of the 300 labelled frames right" in run.out
    hints = [line for line in run.err.splitlines() if "validated at" in line]
    assert hints == [f"screentime: colour features validated at {accuracy:.1%}; colour cannot tell a character "
                     "from things painted in its colours, and a network run on the whole frame scored 9-24 points "
                     "higher on such footage (docs/accuracy.md): try --backbone \"colour|colour,mobilenet_v2@max\" "
                     "(ImageNet weights, downloaded once) or \"colour|colour,MODEL.keras@max\"; with 300 labels or "
                     "more, also --backbone MODEL.keras@max --head detector"]
