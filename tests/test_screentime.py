"""Screen-time arithmetic: durations, appearance intervals, per-character tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers.screentime import sample_durations, screen_time_tables, segments


def test_each_sample_stands_until_the_next_and_the_last_until_the_end():
    assert sample_durations([0, 1, 2.5], 4.0) == pytest.approx([1, 1.5, 1.5])


def test_segments_are_runs_of_presence():
    times = [0, 1, 2, 3, 4, 5]
    assert segments(times, [1, 1, 0, 0, 1, 1], 6.0) == [(0, 2), (4, 6)]
    assert segments(times, [0, 1, 0, 1, 0, 0], 6.0) == [(1, 2), (3, 4)]
    assert segments(times, [0] * 6, 6.0) == []


def test_tables():
    times = [0, 1, 2, 3]
    presence = np.array([[1, 0], [1, 1], [0, 1], [1, 1]], bool)
    table, segs = screen_time_tables(times, presence, ["jerry", "tom"], 5.0)
    assert table.to_dict("records") == [
        {"character": "jerry", "seconds": 4.0, "percent": 80.0, "appearances": 2},
        {"character": "tom", "seconds": 4.0, "percent": 80.0, "appearances": 1},
    ]
    assert segs.values.tolist() == [["jerry", 0, 2, 2], ["jerry", 3, 5, 2], ["tom", 1, 5, 4]]


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.floats(0.001, 5.0), min_size=1, max_size=60),
    tail=st.floats(0.0, 5.0),
    flags=st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_screen_time_properties(gaps, tail, flags):
    times = np.concatenate([[0.0], np.cumsum(gaps)[:-1]])
    duration = float(times[-1] + tail)
    present = np.array(flags[: len(times)])[:, None]
    table, segs = screen_time_tables(times, present, ["x"], duration)
    seconds = table["seconds"][0]
    assert 0 <= seconds <= duration + 1e-3
    assert segs["duration_s"].sum() == pytest.approx(seconds, abs=1e-2)
    assert table["appearances"][0] == len(segs)
    starts, ends = segs["start_s"].to_numpy(), segs["end_s"].to_numpy()
    assert (ends >= starts).all() and (starts[1:] > ends[:-1] - 1e-9).all()


def test_outputs_are_written_atomically_with_normal_permissions(tmp_path):
    import os

    import pandas as pd

    from helpers.fileio import write_csv

    path = tmp_path / "out.csv"
    write_csv(pd.DataFrame({"a": [1]}), path)
    assert path.read_text() == "a\n1\n"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary file left behind


@settings(max_examples=200, deadline=None)
@given(
    intervals=st.lists(st.floats(0.005, 0.5), min_size=1, max_size=300),
    fps=st.floats(0.1, 60.0),
    presence_seed=st.integers(0, 2**32 - 1),
)
def test_sampled_screen_time_properties(intervals, fps, presence_seed):
    """Any timeline (variable frame rate), any sampling rate: seconds in [0, length], no overlapping intervals."""
    from helpers.video import RateSelector

    times = np.concatenate([[0.0], np.cumsum(intervals)[:-1]])
    duration = float(times[-1] + intervals[-1])
    select = RateSelector(fps)
    sampled = np.array([t for i, t in enumerate(times) if select(i, float(t))])
    assert sampled[0] == 0.0 and np.all(np.diff(sampled) > 0)
    presence = np.random.default_rng(presence_seed).random((len(sampled), 2)) < 0.5
    table, segs = screen_time_tables(sampled, presence, ["a", "b"], duration)
    assert (table["seconds"] >= 0).all() and (table["seconds"] <= duration + 1e-3).all()
    assert (table["percent"] <= 100.01).all()
    for name, group in segs.groupby("character"):
        starts, ends = group["start_s"].to_numpy(), group["end_s"].to_numpy()
        assert (ends > starts - 1e-9).all() and (starts[1:] >= ends[:-1] - 1e-3).all()
        assert ends.max() <= duration + 1e-3
