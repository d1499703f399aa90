"""Temporal smoothing and the time-blocked choice of thresholds and strength."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.calibration import calibrate, time_blocks
from helpers.heads import LogisticHead
from helpers.smoothing import STRENGTHS, smooth, viterbi


def test_a_lone_flicker_is_removed_but_a_long_change_is_kept():
    times = np.arange(20) * 0.2
    proba = np.full(20, 0.9)
    proba[5] = 0.3  # one doubtful frame inside an appearance
    proba[12:] = 0.05  # the character leaves for good
    path = viterbi(proba, times, strength_s=1.0)
    assert path[:12].all() and not path[12:].any()
    assert not viterbi(proba, times, strength_s=0.0)[5]  # without smoothing the flicker stays


def test_strength_means_the_same_at_any_sampling_rate():
    """A clear 0.6 s absence is kept with strength 0.5 s and removed with 1 s, at 5 and at 25 fps."""
    for fps in (5, 25):
        times = np.arange(int(4 * fps)) / fps
        proba = np.where((times >= 2.0) & (times < 2.6 - 1e-9), 0.1, 0.9)
        middle = int(2.3 * fps)
        assert not viterbi(proba, times, strength_s=0.5)[middle]
        assert viterbi(proba, times, strength_s=1.0)[middle]


def test_restart_at_breaks():
    times = np.arange(10) * 0.1
    proba = np.array([0.9] * 5 + [0.45] * 5)
    assert viterbi(proba, times, strength_s=3.0)[5:].all()  # carried over without a break
    assert not viterbi(proba, times, strength_s=3.0, breaks=[5])[5:].any()  # a cut: decided afresh


def test_thresholds_shift_the_decision():
    proba = np.array([[0.4], [0.4]])
    assert smooth(proba, np.array([0.0, 1.0]), 0.0, [0.3]).all()
    assert not smooth(proba, np.array([0.0, 1.0]), 0.0, [0.5]).any()


def test_time_blocks_are_contiguous_and_balanced():
    times = np.random.default_rng(0).permutation(100).astype(float)
    blocks = time_blocks(times, 5)
    for b in range(5):
        assert (blocks == b).sum() == 20
        span = times[blocks == b]
        assert span.max() - span.min() == 19


def test_calibration_on_real_features(train_cartoon, train_labels):
    from helpers.backbones import ColourBackbone
    from helpers.features import extract_features
    from helpers.labels import label_matrix, read_labels

    labels = read_labels(train_labels)
    feats = extract_features(train_cartoon.video, ColourBackbone(), frames=labels.table["frame"])
    Y = label_matrix(labels.table["names"], ["jerry", "tom"])
    chosen = calibrate(feats.X, Y, feats.frames["time_s"].to_numpy(), LogisticHead)
    assert len(chosen["thresholds"]) == 2 and all(0.2 <= t <= 0.8 for t in chosen["thresholds"])
    assert chosen["strength_s"] in STRENGTHS
    scores = chosen["accuracy_by_strength_s"]
    assert scores["0"] == chosen["accuracy_raw"] >= 0.8
    assert scores[f"{chosen['strength_s']:g}"] >= max(scores.values()) - chosen["strength_tolerance"] - 1e-4


def test_smoothing_is_kept_unless_validation_clearly_prefers_none():
    """The one-standard-error rule: 1 s wins unless 'off' is better by more than validation's noise."""
    from helpers.calibration import choose_strength

    one_label_apart = {0.0: 0.94, 0.5: 0.9383, 1.0: 0.9383, 2.0: 0.925, 3.0: 0.9167}  # 600 labels
    assert choose_strength(one_label_apart, 600) == (1.0, pytest.approx(0.0097, abs=1e-4))
    assert choose_strength(one_label_apart, 100_000)[0] == 0.0  # so many labels that 0.17 points is real
    clearly_off = {0.0: 0.90, 0.5: 0.85, 1.0: 0.84, 2.0: 0.80, 3.0: 0.75}
    assert choose_strength(clearly_off, 600)[0] == 0.0
    milder = {0.0: 0.90, 0.5: 0.895, 1.0: 0.87, 2.0: 0.85, 3.0: 0.80}
    assert choose_strength(milder, 600)[0] == 0.5
    perfect = {0.0: 1.0, 0.5: 0.96, 1.0: 0.92, 2.0: 0.92, 3.0: 0.92}  # 26 labels, all right: no noise
    assert choose_strength(perfect, 26) == (0.0, 0.0)


def test_a_threshold_far_from_half_must_win_by_more_than_noise():
    """The same rule for each character's threshold: 0.5 unless another is better beyond validation's noise."""
    from helpers.calibration import choose_threshold

    y = np.r_[np.ones(30), np.zeros(270)]
    proba = np.where(y == 1, 0.9, 0.1)
    proba[:2] = 0.1  # two positives no threshold finds: best accuracy 298/300, one standard error 1.4 labels
    proba[30] = 0.6  # one negative that only thresholds above 0.6 get right: one label, noise
    assert choose_threshold(proba, y) == (0.5, pytest.approx(0.0047, abs=1e-4))
    proba[30:40] = 0.6  # ten such negatives: 3 points, evidence
    assert choose_threshold(proba, y)[0] == 0.65
    proba[30:40], proba[:2] = 0.1, 0.9  # everything right at 0.5: a perfect score has no noise
    assert choose_threshold(proba, y) == (0.5, 0.0)


def test_too_few_labels_keep_the_defaults():
    X, Y = np.zeros((5, 3)), np.array([[0], [1], [0], [1], [0]])
    chosen = calibrate(X, Y, np.arange(5.0), LogisticHead)
    assert chosen["thresholds"] == [0.5] and chosen["strength_s"] == 0.0


def test_shots_are_found_where_the_generator_cut(tmp_path, monkeypatch):
    """PySceneDetect finds every cut of a synthetic cartoon, even between two shots of the same set,
    at most one look (5 per second: 5 frames at 25 fps) after it happened."""
    from helpers.shots import sample_breaks, shot_starts, shots_table
    from helpers.synthetic import make_cartoon, shot_plan
    from helpers.video import frame_times

    monkeypatch.setenv("SCREENTIME_CACHE", str(tmp_path / "cache"))
    video = tmp_path / "cuts.mp4"
    make_cartoon(video, seconds=30, seed=2)
    truth = [first for first, _, _ in shot_plan(30, 25, 2)]
    starts = shot_starts(video)
    assert len(starts) == len(truth)
    assert all(0 <= found - cut < 5 for found, cut in zip(starts, truth))
    assert shot_starts(video) == starts  # the second time from the cache
    times, stats = frame_times(video)
    table = shots_table(starts, times, stats.duration_s)
    assert table["start_s"].tolist() == [round(f / 25, 4) for f in starts]
    assert table["end_s"].iloc[-1] == 30.0 and (table["end_s"] > table["start_s"]).all()
    samples = np.arange(0, 750, 25)  # one frame per second
    assert sample_breaks(samples, starts) == sorted({int(np.searchsorted(samples, f)) for f in starts[1:]} - {0, 30})


def test_predict_writes_shots_and_smooths_within_them(tmp_path, train_cartoon, train_labels, test_cartoon):
    import pandas as pd

    from helpers.pipeline import predict, train

    train(train_cartoon.video, train_labels, tmp_path / "m")
    result = predict(test_cartoon.video, tmp_path / "m", tmp_path / "out", fps=5)
    shots = pd.read_csv(tmp_path / "out" / "shots.csv")
    assert list(shots.columns) == ["start_s", "end_s"] and len(shots) >= 5
    assert shots["start_s"].iloc[0] == 0 and shots["end_s"].iloc[-1] == result.duration_s
    assert {"present_raw", "present"} <= set(result.predictions.columns)
    assert result.shot_starts_s() == shots["start_s"].tolist()  # what evaluate resamples by
    unshot = predict(test_cartoon.video, tmp_path / "m", tmp_path / "out2", fps=5, shots=False)
    assert len(unshot.shots) == 1 and unshot.shot_starts_s() is None  # one "shot" is not a shot: 10 s stretches


def test_shots_found_during_the_feature_pass_equal_a_separate_pass(tmp_path, monkeypatch, test_cartoon):
    from helpers.backbones import ColourBackbone
    from helpers.features import extract_features
    from helpers.shots import CutDetector, shot_starts
    from helpers.video import VideoStream

    monkeypatch.setenv("SCREENTIME_NO_CACHE", "1")
    cuts = CutDetector(VideoStream(test_cartoon.video).info.nominal_fps)
    extract_features(test_cartoon.video, ColourBackbone(), fps=1, watch=cuts)
    assert cuts.finish() == shot_starts(test_cartoon.video, use_cache=False)
