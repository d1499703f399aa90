"""Shot cuts, found by PySceneDetect's adaptive content detector (not a home-made one).

The adaptive detector compares each frame's change with the changes around it, so it also finds
cuts between two shots of the same set (a small absolute change, large next to the still frames
around it). Smoothing restarts at each cut: a character who appears right after a cut is judged on
the new shot's evidence alone.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd

from .cache import cache_root, video_key
from .errors import ScreentimeError
from .fileio import atomic_path
from .progress import log

ADAPTIVE_THRESHOLD = 3.0  # a cut changes at least 3x more than the frames around it...
MIN_CONTENT_VAL = 5.0  # ...and at least this much in absolute terms (PySceneDetect's content score)
MIN_SHOT_FRAMES = 5


def shot_starts(video: str | os.PathLike, use_cache: bool = True) -> list[int]:
    """Decoded frame index where each shot begins (the first is 0)."""
    cached = (cache_root() / video_key(video)
              / f"shots-adaptive-{ADAPTIVE_THRESHOLD:g}-{MIN_CONTENT_VAL:g}-{MIN_SHOT_FRAMES}.json")
    if use_cache and cached.is_file():
        try:
            return [int(f) for f in json.loads(cached.read_text())]
        except (ValueError, OSError):
            pass
    from scenedetect import AdaptiveDetector, SceneManager, open_video

    logging.getLogger("pyscenedetect").setLevel(logging.ERROR)
    try:
        manager = SceneManager()
        manager.add_detector(AdaptiveDetector(adaptive_threshold=ADAPTIVE_THRESHOLD, min_content_val=MIN_CONTENT_VAL,
                                              min_scene_len=MIN_SHOT_FRAMES))
        manager.detect_scenes(video=open_video(str(video)), show_progress=False)
        found = [int(start.frame_num) for start, _ in manager.get_scene_list(start_in_scene=True)]
        # PySceneDetect numbers frames from its reader's position, which starts at 1 on some AVI
        # files; our indices count decoded frames from 0.
        starts = sorted({0} | {f - found[0] for f in found}) if found else [0]
    except Exception as exc:  # the video decoded for features; a detector failure must not lose the run
        log.warning("shot detection failed on %s (%s); smoothing runs without cuts", video, exc)
        return [0]
    if use_cache:
        try:
            with atomic_path(cached) as tmp:
                tmp.write_text(json.dumps(starts))
        except ScreentimeError:
            pass
    return starts


def shots_table(starts: list[int], frame_times: np.ndarray, duration_s: float) -> pd.DataFrame:
    """Shots as ``start_s, end_s`` from their first frames and every frame's presentation time."""
    starts = [f for f in starts if f < len(frame_times)] or [0]
    begin = [float(frame_times[f]) for f in starts]
    end = begin[1:] + [float(duration_s)]
    return pd.DataFrame({"start_s": np.round(begin, 4), "end_s": np.round(end, 4)})


def sample_breaks(sample_frames: np.ndarray, starts: list[int]) -> list[int]:
    """Sample positions where a new shot begins (the first sample at or after each cut)."""
    positions = np.searchsorted(np.asarray(sample_frames), np.asarray(starts[1:], dtype=np.int64))
    return sorted({int(p) for p in positions if 0 < p < len(sample_frames)})
