"""Feature extraction: overlapped decode/model threads, and the feature cache."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from helpers.backbones import ColourBackbone, application_backbone
from helpers.errors import ScreentimeError
from helpers.features import extract_features, prefetch
from helpers.video import sample_frames


def test_features_match_a_plain_decode(short_cartoon, monkeypatch):
    monkeypatch.setenv("SCREENTIME_NO_CACHE", "1")
    backbone = ColourBackbone()
    feats = extract_features(short_cartoon.video, backbone, fps=2, batch_size=4)
    reference = [f for f in sample_frames(short_cartoon.video, fps=2)]
    assert list(feats.frames["frame"]) == [f.index for f in reference]
    assert np.allclose(feats.X, backbone.features([f.image for f in reference]))
    assert feats.computed == 12 and feats.stats.frames_decoded == 150


def test_second_run_comes_from_the_cache(tmp_path, monkeypatch, short_cartoon):
    monkeypatch.setenv("SCREENTIME_CACHE", str(tmp_path))
    backbone = ColourBackbone()
    first = extract_features(short_cartoon.video, backbone, fps=1)
    assert first.computed == 6
    again = extract_features(short_cartoon.video, backbone, fps=1)
    assert again.computed == 0 and np.array_equal(again.X, first.X)
    assert again.frames.equals(first.frames) and again.stats.duration_s == pytest.approx(6.0)
    # a subset of cached frames (training labels) is also a hit; new frames are computed and merged
    assert extract_features(short_cartoon.video, backbone, frames=[25, 100]).computed == 0
    more = extract_features(short_cartoon.video, backbone, fps=2)
    assert more.computed == 6
    assert extract_features(short_cartoon.video, backbone, fps=2).computed == 0


def test_random_weights_are_never_cached(tmp_path, monkeypatch, short_cartoon):
    monkeypatch.setenv("SCREENTIME_CACHE", str(tmp_path))
    backbone = application_backbone("mobilenet_v2", weights=None, input_size=32)
    assert backbone.cache_key is None
    extract_features(short_cartoon.video, backbone, fps=1)
    assert extract_features(short_cartoon.video, backbone, fps=1).computed == 6


def test_a_damaged_cache_is_recomputed(tmp_path, monkeypatch, short_cartoon):
    monkeypatch.setenv("SCREENTIME_CACHE", str(tmp_path))
    first = extract_features(short_cartoon.video, ColourBackbone(), fps=1)
    for f in tmp_path.rglob("*.npz"):
        f.write_bytes(b"garbage")
    again = extract_features(short_cartoon.video, ColourBackbone(), fps=1)
    assert again.computed == 6 and np.array_equal(again.X, first.X)


def test_prefetch_keeps_order_and_passes_errors_on():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ScreentimeError("broken video")

    with pytest.raises(ScreentimeError, match="broken video"):
        list(prefetch(failing()))


def test_a_model_error_stops_the_decoding_and_preparing_threads(short_cartoon, monkeypatch):
    """The model fails on its first batch: the error reaches the caller and no thread keeps decoding,
    even while the traceback is kept (as Jupyter keeps the last one)."""
    monkeypatch.setenv("SCREENTIME_NO_CACHE", "1")

    class Failing(ColourBackbone):
        def embed(self, prepared):
            raise ScreentimeError("model broke")

    with pytest.raises(ScreentimeError, match="model broke") as caught:
        extract_features(short_cartoon.video, Failing(), fps=None, batch_size=2)

    def pipeline_threads() -> set[str]:
        return {t.name for t in threading.enumerate()} & {"screentime-decode", "screentime-prepare"}

    deadline = time.monotonic() + 5
    while pipeline_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pipeline_threads() and caught.tb is not None


def test_an_unwritable_cache_warns_but_the_run_succeeds(tmp_path, monkeypatch, short_cartoon, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv("SCREENTIME_CACHE", str(blocker / "cache"))
    feats = extract_features(short_cartoon.video, ColourBackbone(), fps=1)
    assert feats.X.shape == (6, 264) and feats.computed == 6
    assert "feature cache not written" in caplog.text
