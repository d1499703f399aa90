"""The command line as a user runs it: the full path, the contract's files, and every bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pandas as pd
import pytest

from .conftest import assert_one_line_error, screentime


@pytest.fixture(scope="module")
def trained(tmp_path_factory, train_cartoon, train_labels):
    folder = tmp_path_factory.mktemp("cli") / "model"
    run = screentime("train", "--video", train_cartoon.video, "--labels", train_labels, "--out", folder)
    assert run.status == 0, run.err
    assert "trained on 60 frames: jerry, tom" in run.out
    model = json.loads((folder / "model.json").read_text())
    validated = model["training"]["calibration"]["accuracy_by_strength_s"][f"{model['smoothing']['strength_s']:g}"]
    assert f"): {validated:.1%} of the 60 labelled frames right" in run.out.splitlines()[1]
    assert "with under 200 labels this runs low" in run.out  # 60 labels: a low estimate, and no backbone suggested
    assert "validated at" not in run.err
    return folder


def test_predict_writes_the_contract_files(tmp_path, trained, test_cartoon):
    run = screentime("predict", test_cartoon.video, "--model", trained, "--out", tmp_path, "--fps", "2")
    assert run.status == 0, run.err
    pred = pd.read_csv(tmp_path / "predictions.csv")
    assert list(pred.columns) == ["frame", "time_s", "p_jerry", "p_tom", "present_raw", "present"]
    assert len(pred) == 60 and list(pred["frame"][:3]) == [0, 13, 25]  # 0.5 s at 25 fps -> frame 13 (0.52 s)
    assert set(pred["present"]) | set(pred["present_raw"]) <= {"none", "jerry", "tom", "jerry;tom"}
    table = pd.read_csv(tmp_path / "screentime.csv")
    assert list(table.columns) == ["character", "seconds", "percent", "appearances"]
    segs = pd.read_csv(tmp_path / "segments.csv")
    assert list(segs.columns) == ["character", "start_s", "end_s", "duration_s"]
    for name, group in segs.groupby("character"):
        row = table.set_index("character").loc[name]
        assert group["duration_s"].sum() == pytest.approx(row["seconds"], abs=0.01)
        assert len(group) == row["appearances"]

    run = screentime("evaluate", "--predictions", tmp_path / "predictions.csv", "--truth", test_cartoon.truth_csv,
                     "--json", tmp_path / "scores.json")
    assert run.status == 0, run.err
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["frames_scored"] == 60 and scores["accuracy"] >= 0.95 and scores["accuracy_raw"] >= 0.9
    assert set(scores["characters"]) == {"jerry", "tom"}
    assert "frame accuracy" in run.out


def test_tutorial_workflow_extract_then_mapping_csv(tmp_path, train_cartoon):
    run = screentime("extract", train_cartoon.video, "--out", tmp_path / "frames")
    assert run.status == 0, run.err
    frames = pd.read_csv(tmp_path / "frames" / "frames.csv")
    assert list(frames.columns) == ["Image_ID", "frame", "time_s"] and len(frames) == 60
    assert cv2.imread(str(tmp_path / "frames" / "frame59.jpg")).shape == (180, 320, 3)
    truth = train_cartoon.truth.set_index("frame")
    classes = {"none": 0, "jerry": 1, "tom": 2}
    mapping = pd.DataFrame({"Image_ID": frames["Image_ID"],
                            "Class": [classes.get(truth.loc[f, "label"], -1) for f in frames["frame"]]})
    mapping = mapping[mapping["Class"] >= 0]  # the tutorial's scheme cannot say "both"
    mapping.to_csv(tmp_path / "frames" / "mapping.csv", index=False)
    run = screentime("train", "--video", train_cartoon.video, "--labels", tmp_path / "frames" / "mapping.csv",
                     "--out", tmp_path / "model", "--classes", "none,jerry,tom")
    assert run.status == 0, run.err
    assert json.loads((tmp_path / "model" / "model.json").read_text())["characters"] == ["jerry", "tom"]


def test_python_dash_m_and_version():
    run = screentime("--version")
    assert run.status == 0 and run.out.startswith("screentime ")


def test_generate(tmp_path):
    run = screentime("generate", tmp_path / "g.mp4", "--seconds", "3", "--seed", "4")
    assert run.status == 0, run.err
    assert len(pd.read_csv(tmp_path / "g.truth.csv")) == 75


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.mp4").write_text("not a video\n" * 100)
    writer = cv2.VideoWriter(str(d / "noframes.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    writer.release()
    (d / "nocols.csv").write_text("frame,what\n1,tom\n")
    (d / "late.csv").write_text("frame,label\n0,none\n25,tom\n99999,jerry\n")
    (d / "mapping.csv").write_text("Image_ID,Class\nframe0.jpg,0\nframe1.jpg,5\n")
    return d


def test_bad_inputs_get_one_clear_line(tmp_path, bad_files, trained, short_cartoon):
    d, video = bad_files, short_cartoon.video
    cases = [
        (("predict", d / "missing.mp4", "--model", trained, "--out", tmp_path), ["missing.mp4 does not exist"], 1),
        (("predict", d, "--model", trained, "--out", tmp_path), ["is a folder"], 1),
        (("predict", d / "notes.mp4", "--model", trained, "--out", tmp_path), ["notes.mp4"], 1),
        (("extract", d / "noframes.mp4", "--out", tmp_path), ["noframes.mp4"], 1),
        (("train", "--video", video, "--labels", d / "nocols.csv", "--out", tmp_path / "m"), ["needs 'label'"], 1),
        (("train", "--video", video, "--labels", d / "late.csv", "--out", tmp_path / "m"),
         ["labels frame 99999", "decodes only 150 frames"], 1),
        (("train", "--video", video, "--labels", d / "mapping.csv", "--out", tmp_path / "m"),
         ["unknown class 5", "--classes"], 1),
        (("predict", video, "--model", trained, "--out", tmp_path, "--fps", "0"), ["--fps must be a positive"], 2),
        (("predict", video, "--model", trained, "--out", tmp_path, "--fps", "-2"), ["--fps must be a positive"], 2),
        (("predict", video, "--model", d / "nomodel", "--out", tmp_path), ["nomodel does not exist; train one"], 1),
        (("train", "--video", video, "--labels", d / "late.csv"), ["--out"], 2),
        (("fly",), ["invalid choice"], 2),
    ]
    for args, fragments, status in cases:
        assert_one_line_error(screentime(*args), *fragments, status=status)
    assert not (tmp_path / "predictions.csv").exists()


def test_unwritable_output_folder(tmp_path, trained, short_cartoon):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    assert_one_line_error(screentime("predict", short_cartoon.video, "--model", trained, "--out", blocker / "out"),
                          "cannot write")


def test_debug_shows_the_traceback(tmp_path):
    run = screentime("extract", tmp_path / "missing.mp4", "--out", tmp_path, "--debug")
    assert run.status != 0 and "Traceback" in run.err


def test_predict_without_shots(tmp_path, trained, test_cartoon):
    run = screentime("predict", test_cartoon.video, "--model", trained, "--out", tmp_path, "--no-shots", "--no-report")
    assert run.status == 0, run.err
    shots = pd.read_csv(tmp_path / "shots.csv")
    assert len(shots) == 1 and shots["start_s"][0] == 0 and shots["end_s"][0] == pytest.approx(30.0)
    assert not (tmp_path / "report.html").exists()
    assert json.loads((tmp_path / "video.json").read_text())["shots_detected"] is False
    # evaluate resamples 10 s stretches, not that one "shot" (which is only the whole video)
    run = screentime("evaluate", "--predictions", tmp_path / "predictions.csv", "--truth", test_cartoon.truth_csv,
                     "--json", tmp_path / "scores.json")
    assert run.status == 0, run.err
    assert json.loads((tmp_path / "scores.json").read_text())["accuracy_interval"]["unit"] == "stretches of 10 s"


def run_with_reader_gone(*args) -> tuple[int, str]:
    """Run ``screentime`` with its output piped to a reader that has already gone away (as in
    ``screentime ... | head -1`` once head has its line): exit status and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "helpers", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    proc.stdout.close()  # long before the command prints: starting it alone takes a second
    err = proc.stderr.read().decode()
    return proc.wait(timeout=600), err


def test_a_reader_that_stops_early_is_not_an_error(tmp_path, trained, test_cartoon):
    status, err = run_with_reader_gone("predict", test_cartoon.video, "--model", trained, "--out", tmp_path,
                                       "--no-report")
    assert err == "" and status == 141  # like any command killed by SIGPIPE; no "unexpected error"
    assert len(pd.read_csv(tmp_path / "predictions.csv")) == 30  # the outputs were written before printing
    status, err = run_with_reader_gone("--help")
    assert err == "" and status == 0
