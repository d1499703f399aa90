"""Ctrl-C during predict or train: one line, previous outputs intact, and the re-run resumes from the cache."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from helpers.fileio import write_csv
from helpers.pipeline import train


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory, train_cartoon, train_labels):
    """VGG16 with random weights at 64 px (saved in the folder, so its features are cacheable): ~60 frames/s."""
    folder = tmp_path_factory.mktemp("slow") / "model"
    train(train_cartoon.video, train_labels, folder, backbone="vgg16", weights=None, input_size=64)
    return folder


def interrupt_when(args: list, marker: bytes, cache, delay: float = 3.0) -> tuple[int, str]:
    """Run ``screentime ARGS`` with stderr on a terminal; press Ctrl-C ``delay`` s after ``marker`` shows."""
    master, slave = pty.openpty()
    env = {**os.environ, "SCREENTIME_CACHE": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # Ctrl-C's default action even where this test runs as a background job, which inherits SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-m", "helpers", *map(str, args)], stdout=subprocess.DEVNULL,
                            stderr=slave, stdin=subprocess.DEVNULL, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    os.close(slave)
    output, sent, deadline = b"", None, time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        if select.select([master], [], [], 0.2)[0]:
            try:
                output += os.read(master, 65536)
            except OSError:
                break
        if sent is None and marker in output:
            sent = time.time() + delay
        if sent is not None and 0 < sent <= time.time():
            proc.send_signal(signal.SIGINT)
            sent = -1.0
    while select.select([master], [], [], 0.5)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    status = proc.wait(timeout=60)
    assert sent == -1.0, f"never interrupted: {output.decode(errors='replace')[-500:]}"
    return status, output.decode(errors="replace")


def cached_rows(cache) -> int:
    import numpy as np

    files = list(cache.rglob("features-*.npz"))
    return sum(len(np.load(f)["frames"]) for f in files)


def test_ctrl_c_during_predict(tmp_path, slow_model, test_cartoon):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("previous results\n")
    status, err = interrupt_when(["predict", test_cartoon.video, "--model", slow_model, "--out", out, "--fps", "all"],
                                 b"classifying", tmp_path / "cache")
    assert status == 130, err
    assert "screentime: interrupted" in err and "Traceback" not in err
    assert (out / "predictions.csv").read_text() == "previous results\n"
    done = cached_rows(tmp_path / "cache")
    assert 0 < done < 750  # the frames computed before Ctrl-C are kept

    rerun = subprocess.run([sys.executable, "-m", "helpers", "predict", str(test_cartoon.video), "--model",
                            str(slow_model), "--out", str(out), "--fps", "all"], capture_output=True, text=True,
                           env={**os.environ, "SCREENTIME_CACHE": str(tmp_path / "cache")})
    assert rerun.returncode == 0, rerun.stderr
    assert f"750 frames classified ({done} from the feature cache)" in rerun.stdout


def test_ctrl_c_during_train(tmp_path, slow_model, train_cartoon):
    write_csv(train_cartoon.truth, tmp_path / "every_frame.csv")  # 1500 labels: long enough to interrupt
    before = {p.name: p.read_bytes() for p in slow_model.iterdir()}
    status, err = interrupt_when(["train", "--video", train_cartoon.video, "--labels", tmp_path / "every_frame.csv",
                                  "--out", slow_model, "--backbone", slow_model / "backbone.keras"],
                                 b"computing", tmp_path / "cache")
    assert status == 130, err
    assert "screentime: interrupted" in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in slow_model.iterdir()} == before  # the old model is untouched
    assert 0 < cached_rows(tmp_path / "cache") < 1500
