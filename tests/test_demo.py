"""The demo: a different synthetic video than the one trained on, scored against its truth."""

from __future__ import annotations

from helpers.demo import format_demo, run_demo


def test_demo_is_accurate_on_an_unseen_video(tmp_path):
    result = run_demo(tmp_path)
    assert result.accuracy >= 0.97
    assert (result.table["error_pct_of_video"] <= 2.0).all(), result.table
    assert set(result.table["character"]) == {"jerry", "tom"}
    text = format_demo(result)
    assert "frame accuracy" in text and "true_s" in text
    interval = result.accuracy_interval  # how sure: the test video's shots resampled
    assert interval["unit"] == "shots" and interval["blocks"] >= 5
    assert interval["low"] <= result.accuracy <= interval["high"]
    assert f"95% interval {100 * interval['low']:.1f}-{100 * interval['high']:.1f}%" in text
    assert (tmp_path / "predict" / "screentime.csv").is_file()
