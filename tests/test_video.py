"""Sampling frames: indices and presentation times checked against a full decode."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from helpers.errors import ScreentimeError, UsageError
from helpers.synthetic import make_cartoon
from helpers.video import frame_times, parse_fps, probe, sample_frames


def full_decode(path):
    """Every frame with OpenCV's plain read(), the reference."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = cap.read()
        if not ok:
            return frames
        frames.append(image)


def test_one_frame_per_second_keeps_frames_0_25_50(short_cartoon):
    sampled = list(sample_frames(short_cartoon.video, fps=1.0))
    assert [f.index for f in sampled] == [0, 25, 50, 75, 100, 125]
    assert [f.time_s for f in sampled] == pytest.approx([0, 1, 2, 3, 4, 5], abs=1e-6)


def test_sampled_pixels_equal_the_full_decode(short_cartoon):
    reference = full_decode(short_cartoon.video)
    for frame in sample_frames(short_cartoon.video, fps=2.5):
        assert np.array_equal(frame.image, reference[frame.index])


def test_all_samples_every_decoded_frame_with_increasing_times(short_cartoon):
    sampled = list(sample_frames(short_cartoon.video, fps=None))
    assert [f.index for f in sampled] == list(range(150))
    times = np.array([f.time_s for f in sampled])
    assert times[0] == 0 and np.allclose(np.diff(times), 0.04)


def test_ntsc_rate_does_not_drift(tmp_path):
    """At 29.97 fps the tutorial's frameId % 29 keeps a frame every 29; we keep one per real second."""
    video = tmp_path / "ntsc.mp4"
    make_cartoon(video, seconds=40, fps=30000 / 1001, seed=5, size=(96, 64))
    sampled = list(sample_frames(video, fps=1.0))
    assert len(sampled) == 40
    for k, frame in enumerate(sampled):
        assert frame.index == math.ceil(k * 30000 / 1001 - 1e-6)
        assert k <= frame.time_s < k + 1001 / 30000
    tutorial_count = sum(1 for i in range(1199) if i % math.floor(30000 / 1001) == 0)
    assert tutorial_count == 42  # the drift the project avoids: 42 "seconds" in 40


def test_avi_timestamps_start_at_zero(tmp_path):
    video = tmp_path / "clip.avi"
    make_cartoon(video, seconds=2, fps=10, seed=1, size=(64, 48))
    times, stats = frame_times(video)
    assert stats.frames_decoded == 20
    assert times == pytest.approx(np.arange(20) / 10, abs=1e-6)
    assert stats.duration_s == pytest.approx(2.0)


def test_rate_above_the_video_rate_takes_every_frame(short_cartoon, caplog):
    sampled = list(sample_frames(short_cartoon.video, fps=100))
    assert len(sampled) == 150
    assert "sampling every frame" in caplog.text


def test_explicit_frames(short_cartoon):
    assert [f.index for f in sample_frames(short_cartoon.video, frames=[149, 3, 77])] == [3, 77, 149]


def test_probe_counts_what_decodes(short_cartoon):
    info, stats = probe(short_cartoon.video)
    assert (info.width, info.height, info.nominal_fps) == (320, 180, 25)
    assert stats.frames_decoded == 150
    assert stats.duration_s == pytest.approx(6.0)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "nan", "inf"])
def test_bad_fps_is_a_usage_error(value):
    with pytest.raises(UsageError, match="--fps must be a positive number"):
        parse_fps(value)


def test_fps_all_and_numbers():
    assert parse_fps("all") is None and parse_fps("ALL") is None
    assert parse_fps("0.5") == 0.5


def test_missing_folder_text_and_empty_files_are_refused(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 50)
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(ScreentimeError, match="does not exist"):
        list(sample_frames(tmp_path / "nope.mp4"))
    with pytest.raises(ScreentimeError, match="is a folder"):
        list(sample_frames(tmp_path))
    with pytest.raises(ScreentimeError, match="not a video OpenCV can read|decodes no frame"):
        list(sample_frames(tmp_path / "notes.mp4"))
    with pytest.raises(ScreentimeError, match="empty file"):
        list(sample_frames(tmp_path / "empty.mp4"))


def test_hard_cartoon_truth_follows_visibility(tmp_path):
    """Hard mode: same seed, same video and truth; a character hidden behind a pillar is not present."""
    from helpers.labels import parse_label
    from helpers.synthetic import shot_plan

    a = make_cartoon(tmp_path / "a.mp4", seconds=60, seed=4, hard=True, size=(160, 90))
    b = make_cartoon(tmp_path / "b.mp4", seconds=60, seed=4, hard=True, size=(160, 90))
    assert a.equals(b) and (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    planned = {}
    for first, end, kind in shot_plan(60, 25, 4):
        for f in range(first, end):
            planned[f] = {"none": set(), "both": {"jerry", "tom"}}.get(kind, {kind})
    shown = [parse_label(label, "truth") for label in a["label"]]
    assert all(s <= planned[f] for f, s in zip(a["frame"], shown))  # only ever fewer than planned
    assert any(s < planned[f] for f, s in zip(a["frame"], shown))  # some are hidden by a pillar


def test_cartoon_truth_counts_a_character_hidden_by_the_other_as_absent():
    """A small JERRY drawn behind a large TOM is not on screen; beside him, he is."""
    from helpers.synthetic import _render, _Sprite

    background = np.full((180, 320, 3), 200, np.uint8)
    hidden = [_Sprite("jerry", 100, 100, 0, 0, 0.6), _Sprite("tom", 100, 100, 0, 0, 1.8)]
    beside = [_Sprite("jerry", 40, 150, 0, 0, 0.6), _Sprite("tom", 220, 100, 0, 0, 1.8)]
    assert _render(background, hidden, None, 0.0)[1] == ["tom"]
    assert _render(background, beside, None, 0.0)[1] == ["jerry", "tom"]
