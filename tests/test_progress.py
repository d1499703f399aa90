"""Progress bars: shown on a terminal while decoding and validating, never with --quiet or in a log file."""

from __future__ import annotations

import subprocess
import sys

from .terminal import run_on_terminal

BAR = "%|"  # tqdm draws "  40%|████      | 300/750 [...]"


def test_predict_shows_a_decoding_bar_on_a_terminal(tmp_path, trained_model, test_cartoon):
    args = ["predict", test_cartoon.video, "--model", trained_model, "--out", tmp_path / "out", "--no-cache",
            "--no-report"]
    status, shown = run_on_terminal(args)
    assert status == 0, shown
    assert "features:" in shown and BAR in shown and "frame/s" in shown
    assert "classifying" in shown  # notes show on a terminal too

    status, shown = run_on_terminal([*args, "--quiet"])
    assert status == 0, shown
    assert BAR not in shown and "classifying" not in shown


def test_no_bar_when_stderr_is_a_file(tmp_path, trained_model, test_cartoon):
    run = subprocess.run([sys.executable, "-m", "helpers", "predict", str(test_cartoon.video), "--model",
                          str(trained_model), "--out", str(tmp_path / "out"), "--no-cache", "--no-report"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert BAR not in run.stderr and run.stderr == ""


def test_train_shows_validation_progress_on_a_terminal(tmp_path, train_cartoon, train_labels):
    status, shown = run_on_terminal(["train", "--video", train_cartoon.video, "--labels", train_labels,
                                     "--out", tmp_path / "model"])
    assert status == 0, shown
    assert "validating:" in shown and "time block" in shown and BAR in shown
    assert "fitting the logistic head on all 60 labelled frames" in shown
