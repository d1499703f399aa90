"""Threads: the background worker (the shot detector's thread) and TensorFlow's thread settings."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from helpers.errors import UsageError
from helpers.threads import IDLE_S, THREADS_ENV, BackgroundWorker, requested_threads

ROOT = Path(__file__).resolve().parents[1]


def test_the_worker_handles_every_item_in_order_in_its_own_thread():
    seen, threads = [], set()

    def handle(item: int) -> None:
        seen.append(item)
        threads.add(threading.current_thread().name)

    worker = BackgroundWorker(handle, depth=2, name="test-worker")
    for item in range(500):
        worker.submit(item)
    worker.close()
    assert seen == list(range(500)) and threads == {"test-worker"}


def test_the_worker_keeps_at_most_depth_items_waiting():
    release, submitted = threading.Event(), []
    worker = BackgroundWorker(lambda item: release.wait(), depth=3)

    def feed() -> None:
        for item in range(10):
            worker.submit(item)
            submitted.append(item)

    feeder = threading.Thread(target=feed)
    feeder.start()
    deadline = time.time() + 10
    while len(submitted) < 4 and time.time() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    assert len(submitted) == 4  # one being handled, three waiting; the fifth submit waits for room
    release.set()
    feeder.join()
    worker.close()
    assert len(submitted) == 10


def test_an_error_in_the_worker_is_raised_in_the_submitting_thread():
    def handle(item: int) -> None:
        if item == 3:
            raise ValueError("bad frame 3")

    worker = BackgroundWorker(handle, depth=1)
    with pytest.raises(ValueError, match="bad frame 3"):
        for item in range(1000):
            worker.submit(item)
    with pytest.raises(ValueError, match="bad frame 3"):
        worker.close()


def test_an_idle_worker_leaves_no_thread_behind():
    worker = BackgroundWorker(lambda item: None, name="test-idle")
    worker.submit(1)  # never closed, as in an interrupted pass
    time.sleep(IDLE_S * 3)
    assert "test-idle" not in {t.name for t in threading.enumerate()}
    worker.submit(2)  # a later item starts a new thread
    worker.close()


def test_a_detector_error_reaches_the_main_thread(short_cartoon, monkeypatch):
    """A frame PySceneDetect cannot take (greyscale instead of BGR) fails shot detection in the main thread.

    PySceneDetect runs in a thread of its own, so the feature pass itself raises the error only if
    that thread judged the bad looks before the pass ended (the next looks handed over raise it:
    see test_an_error_in_the_worker_is_raised_in_the_submitting_thread); ``finish`` raises it in any
    case. Which of the two comes first depends on how busy the machine is, so only the second is
    asserted here.
    """
    from helpers.backbones import ColourBackbone
    from helpers.features import extract_features
    from helpers.shots import CutDetector

    monkeypatch.setenv("SCREENTIME_NO_CACHE", "1")
    cuts = CutDetector(25.0)

    def watch_grey(index, time_s, image):
        cuts(index, time_s, lambda: cv2.cvtColor(image(), cv2.COLOR_BGR2GRAY))

    try:
        extract_features(short_cartoon.video, ColourBackbone(), fps=1, watch=watch_grey)
    except cv2.error:
        pass  # the detector's thread got to the bad looks while the pass was still running
    with pytest.raises(cv2.error):
        cuts.finish()


def test_the_threaded_detector_finds_a_cut():
    from helpers.shots import CutDetector

    cuts, black, white = CutDetector(25.0), np.zeros((90, 160, 3), np.uint8), np.full((90, 160, 3), 255, np.uint8)
    for index in range(0, 500, 5):
        frame = black if index < 250 else white
        cuts(index, index / 25, lambda frame=frame: frame)
    assert cuts.finish() == [0, 250]


def tensorflow_threads(threads: str | None) -> dict[str, int]:
    """In a fresh process with real TensorFlow, after a model ran: the intra-op and inter-op
    settings, and the threads running (the inter-op pool's are named tf_Compute)."""
    code = ("import collections, os; import numpy as np; from helpers.backbones import keras_module; "
            "keras = keras_module(); import tensorflow as tf; "
            "model = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(32, 32, 3)); "
            "model.predict_on_batch(np.zeros((2, 32, 32, 3), np.float32)); "
            "names = collections.Counter(open(f'/proc/self/task/{t}/comm').read().strip() "
            "for t in os.listdir('/proc/self/task')); "
            "print(tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads(), names['tf_Compute'], sum(names.values()))")
    env = {key: value for key, value in os.environ.items() if key != THREADS_ENV}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=env if threads is None else {**env, THREADS_ENV: threads})
    assert run.returncode == 0, run.stderr[-2000:]
    return dict(zip(["intra", "inter", "inter_pool", "all"], map(int, run.stdout.split())))


def test_tensorflow_runs_one_op_at_a_time_on_the_threads_asked_for():
    default, five = tensorflow_threads(None), tensorflow_threads("5")
    assert default["intra"] == 0 and five["intra"] == 5  # 0: TensorFlow's choice, one thread per core
    assert default["inter"] == five["inter"] == 1
    assert default["inter_pool"] == five["inter_pool"] == 1  # one op at a time
    cores = len(os.sched_getaffinity(0))
    assert five["all"] - default["all"] == 5 - cores  # the intra-op pool really has 5 threads


def test_screentime_threads_must_be_a_positive_number(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert requested_threads() is None
    monkeypatch.setenv(THREADS_ENV, "2")
    assert requested_threads() == 2
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(UsageError, match=THREADS_ENV):
            requested_threads()
