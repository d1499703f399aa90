"""``screentime evaluate``: the confusion matrix, the learning curve, their figures and bad options.

Real files and real models: the synthetic cartoons of conftest, the colour backbone, the real CLI.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from helpers.cli import main
from helpers.evaluate import accuracy_interval, evaluate_frames, format_report, interval_blocks
from helpers.learning_curve import default_sizes, learning_curve, nested_order, offset_starts
from helpers.pipeline import predict

from .conftest import Run, assert_one_line_error, screentime

LABELS = ["none", "jerry", "tom", "jerry;tom"]


def hand_made_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight predicted samples; truth for six of them (one 'ignore', one missing)."""
    predictions = pd.DataFrame({
        "frame": range(8),
        "time_s": np.arange(8) * 0.5,
        "present_raw": ["none", "tom", "tom", "jerry;tom", "jerry", "jerry", "tom", "none"],
        "present": ["none", "none", "tom", "tom", "jerry;tom", "jerry", "tom", "none"],
    })
    truth = pd.DataFrame({"frame": range(7),
                          "label": ["none", "none", "tom", "jerry;tom", "jerry", "jerry", "ignore"]})
    return predictions, truth


def assert_real_png(path: Path, min_width: int) -> None:
    """A PNG that opens, is at least ``min_width`` pixels wide and is not a blank canvas."""
    assert path.is_file() and path.stat().st_size > 15_000, path
    image = cv2.imread(str(path))
    assert image is not None and image.shape[1] >= min_width and image.shape[0] >= 300, image.shape
    assert image.std() > 20 and (image < 100).mean() > 0.01  # text, lines and cells, not only background


def test_confusion_matrix_counts_a_hand_computed_case():
    predictions, truth = hand_made_case()
    result = evaluate_frames(predictions, truth)
    assert result["frames_scored"] == 6
    assert result["confusion"] == {"rows": "truth", "columns": "predicted", "labels": LABELS,
                                   "counts": [[2, 0, 0, 0],   # none: both right
                                              [0, 1, 0, 1],   # jerry: once right, once jerry+tom
                                              [0, 0, 1, 0],   # tom: right
                                              [0, 0, 1, 0]]}  # jerry+tom: predicted tom alone
    assert result["confusion_raw"]["labels"] == LABELS
    assert result["confusion_raw"]["counts"] == [[1, 0, 1, 0], [0, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    for key, accuracy in (("confusion", result["accuracy"]), ("confusion_raw", result["accuracy_raw"])):
        counts = np.array(result[key]["counts"])
        assert counts.sum() == 6 and np.trace(counts) / 6 == pytest.approx(accuracy)
    assert result["accuracy"] == pytest.approx(4 / 6) and result["accuracy_raw"] == pytest.approx(5 / 6)
    assert result["accuracy_interval"] == {"level": 0.95, "blocks": 1, "unit": "stretches of 10 s",
                                           "low": None, "high": None}  # 3.5 s of frames: too few to resample
    json.dumps(result)  # goes into --json as it is

    report = format_report(result).splitlines()
    assert report[2] == "  no interval: it needs 5 stretches of 10 s or more, and the scored frames span 1"
    assert all(c["error_pct_interval"] is None for c in result["characters"].values())
    assert report[3].endswith("err %")  # no interval column without intervals
    header = next(i for i, line in enumerate(report) if line.startswith("truth \\ predicted"))
    assert report[header].split()[3:] == ["none", "jerry", "tom", "jerry+tom"]
    assert report[header + 4].split() == ["jerry+tom", "0", "0", "1", "0"]


def test_without_present_raw_there_is_one_matrix():
    predictions, truth = hand_made_case()
    result = evaluate_frames(predictions.drop(columns="present_raw"), truth)
    assert "confusion_raw" not in result and "accuracy_raw" not in result
    assert result["confusion"]["labels"] == LABELS  # jerry+tom is a true set, so it is a row


def test_the_accuracy_interval_is_wider_when_mistakes_come_in_runs():
    """20 shots of 10 frames, 90% right either way: mistakes spread over every shot say more about
    the accuracy than the same number of mistakes filling two shots (one wrong shot more or less
    moves it by 5 points)."""
    blocks = np.repeat(np.arange(20), 10)
    spread = np.ones(200, bool)
    spread[::10] = False                       # one wrong frame in every shot
    runs = np.ones(200, bool)
    runs[:20] = False                          # two whole shots wrong
    assert spread.mean() == runs.mean() == 0.9
    low_s, high_s = accuracy_interval(spread, blocks)
    low_r, high_r = accuracy_interval(runs, blocks)
    assert low_s == high_s == pytest.approx(0.9)  # every shot alike: resampling them changes nothing
    assert low_r < 0.85 and high_r == pytest.approx(1.0)
    assert low_r < 0.9 < high_r
    assert accuracy_interval(np.ones(200, bool), blocks) == (1.0, 1.0)
    assert accuracy_interval(runs, np.repeat(np.arange(4), 50)) is None  # 4 shots: no interval


def test_samples_fall_in_their_shot_or_their_ten_second_stretch():
    times = np.array([0.0, 1.9, 2.0, 2.5, 9.9, 10.0, 25.0])
    shot_of, unit = interval_blocks(times, [0.0, 2.0, 9.95])
    assert unit == "shots" and list(shot_of) == [1, 1, 2, 2, 2, 3, 3]
    stretch_of, unit = interval_blocks(times, None)
    assert unit == "stretches of 10 s" and list(stretch_of) == [0, 0, 0, 0, 0, 1, 2]


def test_cli_writes_the_confusion_plot_and_json(tmp_path, trained_model, test_cartoon):
    predict(test_cartoon.video, trained_model, tmp_path / "run", fps=2)
    run = screentime("evaluate", "--predictions", tmp_path / "run" / "predictions.csv",
                     "--truth", test_cartoon.truth_csv, "--json", tmp_path / "scores.json",
                     "--plots", tmp_path / "plots")
    assert run.status == 0, run.err
    assert "truth \\ predicted" in run.out and f"wrote {tmp_path / 'plots' / 'confusion.png'}" in run.out
    scores = json.loads((tmp_path / "scores.json").read_text())
    for key, accuracy in (("confusion", scores["accuracy"]), ("confusion_raw", scores["accuracy_raw"])):
        counts = np.array(scores[key]["counts"])
        assert counts.sum() == scores["frames_scored"] == 60
        assert np.trace(counts) / counts.sum() == pytest.approx(accuracy)
    assert set(scores["confusion"]["labels"]) == set(LABELS)  # the cartoon shows all four
    shots = pd.read_csv(tmp_path / "run" / "shots.csv")
    interval = scores["accuracy_interval"]  # resampled by the shots predict wrote next to the predictions
    assert interval["unit"] == "shots" and interval["blocks"] == len(shots) >= 5
    assert interval["low"] <= scores["accuracy"] <= interval["high"]
    assert f"95% interval {100 * interval['low']:.1f}-{100 * interval['high']:.1f}% (resampling the " \
           f"{len(shots)} shots scored" in run.out
    for name, c in scores["characters"].items():  # screen time: predicted - true, as % of the scored length
        low, high = c["error_pct_interval"]
        signed = 100 * c["error_s"] / scores["seconds_scored"]
        assert low - 0.01 <= signed <= high + 0.01 and abs(signed) == pytest.approx(c["error_pct_of_scored"], abs=0.01)
        assert f"{c['error_pct_of_scored']:.2f}  {low:+.2f} to {high:+.2f}" in run.out
    assert_real_png(tmp_path / "plots" / "confusion.png", min_width=900)  # two matrices side by side
    assert "does not know" not in run.err

    # A damaged shots.csv beside the predictions: still scored, by 10 s stretches, with a warning.
    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "predictions.csv").write_bytes((tmp_path / "run" / "predictions.csv").read_bytes())
    (tmp_path / "damaged" / "shots.csv").write_text("")
    run = screentime("evaluate", "--predictions", tmp_path / "damaged" / "predictions.csv",
                     "--truth", test_cartoon.truth_csv)
    assert run.status == 0, run.err
    assert "shots.csv has no usable start_s column; the intervals resample 10 s stretches instead of shots" in run.err
    assert "no interval: it needs 5 stretches of 10 s or more, and the scored frames span 3" in run.out  # 30 s

    # A truth that spells a character differently from the model: scored, with a warning that says why.
    misspelt = tmp_path / "truth_misspelt.csv"
    test_cartoon.truth.assign(label=test_cartoon.truth["label"].str.replace("jerry", "jerry_mouse")).to_csv(
        misspelt, index=False)
    run = screentime("evaluate", "--predictions", tmp_path / "run" / "predictions.csv", "--truth", misspelt)
    assert run.status == 0, run.err
    assert ("the truth names jerry_mouse, which the model does not know (it knows jerry, tom): those frames score "
            "as misses; check the names match") in run.err


def test_nested_subsets_are_spread_evenly_in_time():
    times = np.arange(60.0)
    order = nested_order(times, start=0)
    assert sorted(order) == list(range(60))  # every labelled frame once: prefixes are nested subsets
    for size in (5, 10, 20):
        chosen = np.sort(times[order[:size]])
        assert np.diff(np.r_[chosen, 60.0 + chosen[0]]).max() <= 2 * 60 / size  # no gap over twice the even one
    assert offset_starts(60, 5, 3) == [0, 4, 8]
    assert offset_starts(6, 6, 3) == [0]  # one frame apart: the repeats would be the same subsets
    assert default_sizes(90) == [5, 10, 20, 40, 80, 90] and default_sizes(4) == [4]


def test_learning_curve_improves_with_labels(tmp_path, train_cartoon, train_labels, test_cartoon, trained_model):
    plots = tmp_path / "plots"
    run = screentime("evaluate", "--learning-curve", "--train-video", train_cartoon.video, "--labels", train_labels,
                     "--video", test_cartoon.video, "--truth", test_cartoon.truth_csv, "--model", trained_model,
                     "--sizes", "5,10,60", "--repeats", "2", "--plots", plots, "--json", tmp_path / "curve.json")
    assert run.status == 0, run.err
    assert "did not run" not in run.err  # 5 and 10 labels cannot be validated, and are meant to be small
    curve = pd.read_csv(plots / "learning_curve.csv")
    assert list(curve.columns) == ["labels", "repeat", "start_frame", "accuracy", "accuracy_raw", "frames_scored",
                                   "seconds", "note"]
    assert sorted(curve["labels"]) == [5, 5, 10, 10, 60]  # all 60 labels are one subset, trained once
    assert curve["note"].isna().all()  # every subset had frames with and without each character
    assert curve[["accuracy", "accuracy_raw"]].stack().between(0, 1).all()
    assert (curve["frames_scored"] == 30).all()  # the 30 s test video at 1 fps
    mean = curve.groupby("labels")["accuracy"].mean()
    assert mean[60] >= 0.95  # all the labels: this easy cartoon is learnt
    assert mean[5] < mean[60]  # five labels are not enough: the subsets really are small
    assert_real_png(plots / "learning_curve.png", min_width=600)
    saved = json.loads((tmp_path / "curve.json").read_text())["learning_curve"]
    assert saved["backbone"] == "colour" and saved["head"] == "logistic" and len(saved["runs"]) == 5
    table = run.out.splitlines()
    assert table[0].startswith("learning curve: colour backbone, nested subsets of the 60 labels")
    assert [line.split()[:2] for line in table[2:5]] == [["5", "2"], ["10", "2"], ["60", "1"]]


def test_learning_curve_records_subsets_that_cannot_be_trained(train_cartoon, train_labels, test_cartoon):
    curve = learning_curve(train_cartoon.video, train_labels, test_cartoon.video, test_cartoon.truth,
                           sizes=[2], repeats=3)
    assert len(curve) == 3 and curve["start_frame"].is_unique
    untrained = curve[curve["accuracy"].isna()]
    assert len(untrained) and untrained["note"].str.startswith("not trained: ").all()
    assert curve["accuracy"].dropna().between(0, 1).all()


def run_in_process(capsys, *args: str | Path) -> Run:
    """The real command line, in this process (fast enough to try every bad combination)."""
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return Run(status, captured.out, captured.err)


def test_bad_options_get_one_clear_line(capsys, tmp_path, train_cartoon, train_labels, test_cartoon):
    truth = test_cartoon.truth_csv
    curve = ["--learning-curve", "--train-video", train_cartoon.video, "--labels", train_labels,
             "--video", test_cartoon.video, "--truth", truth]
    (tmp_path / "file").write_text("a file where a folder should be")
    cases = [
        (("evaluate", "--truth", truth), ["needs --predictions P", "--learning-curve"], 2),
        (("evaluate", "--truth", truth, "--learning-curve", "--labels", train_labels, "--video", test_cartoon.video),
         ["--learning-curve needs --train-video, --labels and --video; missing --train-video"], 2),
        (("evaluate", "--truth", truth, "--learning-curve"), ["missing --train-video, --labels, --video"], 2),
        (("evaluate", "--truth", truth, "--predictions", "p.csv", "--train-video", train_cartoon.video),
         ["--train-video only goes with --learning-curve"], 2),
        (("evaluate", *curve, "--model", "m", "--backbone", "colour"),
         ["--backbone: not allowed with argument --model"], 2),
        (("evaluate", *curve, "--sizes", "5,ten"), ["--sizes must be whole numbers"], 2),
        (("evaluate", *curve, "--repeats", "0"), ["--repeats must be at least 1"], 2),
        (("evaluate", *curve, "--fps", "0"), ["--fps must be a positive"], 2),
        (("evaluate", *curve, "--sizes", "5,1000"), ["size 1000 is not possible", "60 usable labelled frames"], 1),
        (("evaluate", *curve, "--model", tmp_path / "nomodel"), ["nomodel does not exist"], 1),
        (("evaluate", *curve, "--plots", tmp_path / "file"), ["cannot write to", "--plots"], 1),
        (("evaluate", *curve[:-1], tmp_path / "missing.csv"), ["truth file", "missing.csv does not exist"], 1),
    ]
    for args, fragments, status in cases:
        assert_one_line_error(run_in_process(capsys, *args), *fragments, status=status)
