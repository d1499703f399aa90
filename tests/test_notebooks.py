"""The notebooks: executed end to end by ``screentime notebooks`` (papermill, a real kernel), committed clean.

Runs with ``quick`` parameters on generated videos; the whole file takes about two minutes on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from helpers import learnings
from helpers.errors import ScreentimeError, UsageError
from helpers.fileio import write_csv
from helpers.notebooks import NOTEBOOKS, notebook_parameters, parse_value, run_notebooks
from helpers.pipeline import extract

from .conftest import assert_one_line_error, screentime

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _outputs(nb, output_type: str | None = None) -> list[dict]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if output_type is None or o["output_type"] == output_type]


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        parts.append(o.get("text", "") if o["output_type"] == "stream" else o.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------------
# The committed notebooks


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_no_outputs_and_one_parameters_cell(name):
    nb = _read(NOTEBOOK_DIR / f"{name}.ipynb")
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{name}.ipynb cell {i + 1} carries outputs: clear them before committing"
            assert cell.get("execution_count") is None, f"{name}.ipynb cell {i + 1} carries an execution count"
    tagged = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {name[:2]}")
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_documents_every_parameter(name):
    nb = _read(NOTEBOOK_DIR / f"{name}.ipynb")
    params = notebook_parameters(NOTEBOOK_DIR / f"{name}.ipynb")
    assert {"run_dir", "quick", "seed"} <= set(params)
    for key in params:
        assert f"`{key}`" in nb.cells[0].source, f"{name}.ipynb: parameter {key} is not explained in the first cell"


# --------------------------------------------------------------------------------------------------
# Executed end to end


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """``screentime notebooks -p quick True`` with every default: the synthetic demo, no downloads."""
    out = tmp_path_factory.mktemp("notebooks") / "run"
    result = screentime("notebooks", "--out", out, "-p", "quick", "True")
    assert result.status == 0, result.err
    return out, result


def test_all_five_notebooks_run_on_the_synthetic_demo(demo_run):
    out, result = demo_run
    assert str(out) in result.out
    for name in NOTEBOOKS:
        nb = _read(out / f"{name}.ipynb")
        assert not _outputs(nb, "error"), name
        assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip()), name
    for path in ("video.json", "frames/frames.csv", "frames/frame0.jpg", "labels.csv", "label_review.csv",
                 "model/model.json", "predict/predictions.csv", "predict/screentime.csv", "predict/segments.csv",
                 "predict/scores.json", "learnings/results.csv", "learnings/certainty.csv"):
        assert (out / path).is_file(), path
    figures = {p.name for p in (out / "figures").glob("*.png")}
    assert {"01_frame_grid.png", "02_class_balance.png", "02_grid_tom.png", "03_learning_curves.png",
            "04_timeline.png", "04_thumbnails.png", "05_learnings.png"} <= figures


def test_executed_notebooks_show_their_plots_and_use_this_python(demo_run):
    out, _ = demo_run
    for name in NOTEBOOKS:
        nb = _read(out / f"{name}.ipynb")
        pngs = [o for o in _outputs(nb) if "image/png" in o.get("data", {})]
        assert pngs, f"{name}.ipynb shows no figure"
        as_text = [o for o in _outputs(nb) if "image/png" not in o.get("data", {"image/png": 0})
                   and "<Figure size" in o["data"].get("text/plain", "")]
        assert not as_text, f"{name}.ipynb shows a figure as text instead of a picture"
    assert f"kernel Python: {sys.executable}" in _text(_read(out / "01_extract.ipynb"))


def test_the_run_predicts_and_scores_the_unseen_demo_video(demo_run):
    out, _ = demo_run
    table = pd.read_csv(out / "predict" / "screentime.csv")
    assert set(table["character"]) == {"jerry", "tom"}
    assert (table["seconds"] > 0).all()
    scores = json.loads((out / "predict" / "scores.json").read_text())
    assert scores["accuracy"] >= 0.8
    labels = pd.read_csv(out / "labels.csv")
    assert (labels["label"] == "ignore").any()  # the labels flipped on purpose were set aside


def test_learnings_measure_or_say_why_not(demo_run):
    out, _ = demo_run
    results = pd.read_csv(out / "learnings" / "results.csv")
    experiments = set(results["experiment"])
    assert experiments == set(learnings.EXPERIMENTS.values())
    unmeasured = results[results["accuracy_pct"].isna()]
    assert unmeasured["note"].str.len().gt(0).all()  # no blank rows: every missing number says why
    a = results[results["experiment"].str.startswith("(a)")]
    assert a["accuracy_pct"].notna().all() or (a["note"] == "skipped: ImageNet weights not available offline").all()
    f = results[results["experiment"].str.startswith("(f)")].set_index("variant")
    assert f.loc[["colour", "colour+hog"], "accuracy_pct"].notna().all()
    assert f.loc[["vgg16", "mobilenet_v2", "efficientnet_b0"], "accuracy_pct"].isna().all()
    assert (f["features_per_s"] > 0).all()
    measured = results[results["experiment"].str[:3].isin(["(b)", "(c)", "(d)"])]
    assert measured["accuracy_pct"].between(0, 100).all()


def test_the_notebooks_run_on_a_users_video_with_a_tutorial_mapping_csv(tmp_path, train_cartoon):
    """--video and --labels: the tutorial's mapping.csv over images written by extract; 05 is left out."""
    frames = extract(train_cartoon.video, tmp_path / "frames", fps=0.5)
    truth = train_cartoon.truth.set_index("frame")["label"]
    classes = {"none": 0, "jerry": 1, "tom": 2}  # the tutorial's classes: a frame with both cannot be said
    mapping = pd.DataFrame({"Image_ID": frames["Image_ID"], "Class": [classes.get(truth[f], -1) for f in frames["frame"]]})
    write_csv(mapping[mapping["Class"] >= 0], tmp_path / "frames" / "mapping.csv")
    out = run_notebooks(train_cartoon.video, tmp_path / "frames" / "mapping.csv", tmp_path / "run",
                        {"quick": True, "epoch_curves": False}, names=NOTEBOOKS[:4], echo=lambda line: None)
    reviewed = pd.read_csv(out / "labels.csv")
    assert len(reviewed) == int((mapping["Class"] >= 0).sum())
    assert set(reviewed["frame"]) <= set(frames["frame"])  # Image_IDs read through frames.csv
    card = json.loads((out / "model" / "model.json").read_text())
    assert card["characters"] == ["jerry", "tom"]
    predictions = pd.read_csv(out / "predict" / "predictions.csv")
    assert predictions["time_s"].max() > 55  # 04 measured the whole 60 s video
    assert (out / "predict" / "scores.json").is_file()  # scored against train_truth.csv beside the video


def test_03_trains_the_detector_head_and_validates_alternatives(tmp_path, train_cartoon, train_labels):
    """head "detector|logistic" over two backbones: the curve uses the first pair (the detector on the
    network's maps), validation tries every pair that fits, and the best is saved."""
    from .test_detector import _colour_block_network

    network = _colour_block_network(tmp_path / "blocks.keras")
    out = run_notebooks(train_cartoon.video, train_labels, tmp_path / "run",
                        {"quick": True, "backbone": f"{network}@max320|colour", "head": "detector|logistic"},
                        names=["02_label_review", "03_train"], echo=lambda line: None)
    text = _text(_read(out / "03_train.ipynb"))
    assert f"sections 1 and 3 use the first alternative, {network}@max320 with the detector head" in text
    assert "-> 11 x 20 x 2 features each" in text  # the detector's maps: 22x40 places pooled 2x2, 2 channels
    assert (out / "figures" / "03_learning_curves.png").is_file()
    choice = json.loads((out / "model" / "model.json").read_text())["training"]["backbone_choice"]
    assert list(choice["validated_accuracy"]) == [f"{network}@max320 (detector head)", f"{network}@max320 (logistic head)",
                                                  "colour (logistic head)"]  # no detector on colour


def test_a_failing_notebook_is_named_with_its_cell(tmp_path, train_labels):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    run = screentime("notebooks", "--video", bad, "--labels", train_labels, "--out", tmp_path / "run")
    assert_one_line_error(run, "notebook 01_extract.ipynb failed at cell", "VideoStream(video_path)",
                          "not a video OpenCV can read", str(tmp_path / "run" / "01_extract.ipynb"), status=1)
    assert run.err.splitlines()[:-1] == ["01_extract ..."]  # nothing else: no kernel log, no traceback
    assert not (tmp_path / "run" / "02_label_review.ipynb").exists()  # the run stopped there


def test_parameters_are_checked_before_any_notebook_runs(tmp_path):
    run = screentime("notebooks", "--out", tmp_path, "-p", "bakbone", "colour")
    assert_one_line_error(run, "no notebook has a parameter 'bakbone'", "backbone", status=2)
    with pytest.raises(UsageError, match="set video with --video"):
        run_notebooks(out=tmp_path, parameters={"video": "x.mp4"}, echo=lambda line: None)
    with pytest.raises(ScreentimeError, match="missing.mp4 does not exist"):
        run_notebooks(tmp_path / "missing.mp4", out=tmp_path, echo=lambda line: None)
    assert not list(tmp_path.glob("*.ipynb"))


def test_parameter_values_are_read_like_papermill():
    assert [parse_value(v) for v in ("True", "False", "None", "3", "0.5", "all", "[1, 2]")] == \
        [True, False, None, 3, 0.5, "all", [1, 2]]


# --------------------------------------------------------------------------------------------------
# The measurements behind 02, 03 and 05, in-process


def test_review_finds_labels_flipped_on_purpose(train_cartoon, train_labels):
    from helpers.backbones import load_backbone

    data = learnings.labelled_features(train_cartoon.video, train_labels, load_backbone("colour"))
    table, planted = learnings.corrupt_labels(data.frames, 0.05, data.characters, seed=1)
    flagged = learnings.review_labels(data.X, table, data.characters)
    assert set(planted) <= set(flagged["frame"])
    assert len(flagged) <= 2 * len(planted)  # correct labels are rarely flagged


def test_resampling_shots_says_how_little_runs_of_mistakes_tell(train_cartoon, train_labels, test_cartoon):
    from helpers.backbones import load_backbone

    data = learnings.load_data(train_cartoon.video, train_labels, test_cartoon.video, test_cartoon.truth_csv,
                               load_backbone("colour"), 5.0)
    table = learnings.certainty_experiment(data, test_cartoon.video, fewer_every=12)
    assert list(table["model"].unique()) == ["logistic head, 60 labels", "logistic head, 5 labels"]
    frames, shots = table[table["resampled"].str.startswith("frames")], table[table["resampled"].str.startswith("whole")]
    assert (frames["blocks"] == 150).all() and shots["blocks"].between(5, 30).all()
    assert (table["low_pct"] <= table["accuracy_pct"]).all() and (table["accuracy_pct"] <= table["high_pct"]).all()
    weak = table[table["model"] == "logistic head, 5 labels"].set_index("resampled")["width_pts"]
    assert weak.iloc[1] > 1.5 * weak.iloc[0]  # its mistakes come in runs: shots tell less than frames
    sentences = learnings.describe_certainty(table)
    assert len(sentences) == 2 and "x as wide, since its mistakes come in runs" in sentences[1]


def test_validation_is_the_later_stretch():
    split = learnings.later_stretch_split(np.arange(40.0), 0.25)
    assert split.validation.sum() == 10 and split.validation[-10:].all() and split.cut_s == 30.0
    with pytest.raises(ScreentimeError, match="between 0 and 1"):
        learnings.later_stretch_split(np.arange(40.0), 1.5)


def test_interpretation_only_uses_measured_numbers():
    rows = [learnings.not_available("a", "skipped: ImageNet weights not available offline"),
            {**learnings.not_available("b", ""), "variant": "x", "accuracy_pct": 80.0, "spread_pts": 1.0, "runs": 3},
            {**learnings.not_available("b", ""), "variant": "y", "accuracy_pct": 90.0, "spread_pts": 2.0, "runs": 3}]
    sentences = learnings.interpret(pd.DataFrame(rows))
    assert "skipped: ImageNet weights not available offline" in sentences["a"] and "%" not in sentences["a"]
    assert "+10.0 points" in sentences["b"] and "y is better" in sentences["b"]
