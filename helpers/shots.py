"""Shot cuts, found by PySceneDetect's adaptive content detector (not a home-made one).

The adaptive detector compares each frame's change with the changes around it, so it also finds
cuts between two shots of the same set (a small absolute change, large next to the still frames
around it). It looks at 5 frames per second (downscaled to 40 px wide), fed from the same decoding
pass that computes features, so finding shots costs no second pass over the video; the decoding
thread only fetches and shrinks those frames, and a thread of its own judges them, a few at a time.
Smoothing restarts at each cut: a character who appears right after a cut is judged on the new
shot's evidence alone. Shots are cached per video like features.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Callable

import cv2
import numpy as np
import pandas as pd

from .cache import cache_root, video_key
from .errors import ScreentimeError
from .fileio import atomic_path
from .threads import BackgroundWorker
from .video import VideoStream

ADAPTIVE_THRESHOLD = 3.0  # a cut changes at least 3x more than the looks around it...
MIN_CONTENT_VAL = 5.0  # ...and at least this much in absolute terms (PySceneDetect's content score)
WINDOW = 2  # "around it": this many looks either side (PySceneDetect's default)
MIN_SHOT_FRAMES = 5
DETECT_FPS = 5.0  # fewer miss cuts, even tuned: 2.5 a second found 104 (108) of 111, 1 a second 86 (106)
DETECT_WIDTH = 40  # less work than 80 or 160 px, and finds the same cuts (benchmarks/shots.py)
LOOKS_PER_HANDOFF = 8  # shrunk frames handed to the detector's thread together (fewer thread switches)
DETECT_QUEUE_DEPTH = 4  # handoffs waiting for the detector's thread (bounds memory)
#: Part of the cache key: bump it whenever detection changes, so no stale shots are reused.
DETECTION_VERSION = 5


class CutDetector:
    """Feed it every decoded frame (index, time, a way to get the image); ``finish()`` gives shot starts.

    The feeding (decoding) thread fetches the frames it looks at (it must: they come from its
    capture) and shrinks them to ``width`` px, which is cheap; PySceneDetect's scoring runs in a
    worker thread of its own, handed ``LOOKS_PER_HANDOFF`` frames at a time, so that decoding does
    not wait for it. The worker's errors are raised in the feeding thread.
    """

    def __init__(self, nominal_fps: float, looks_per_s: float = DETECT_FPS, width: int = DETECT_WIDTH,
                 threshold: float = ADAPTIVE_THRESHOLD, window: int = WINDOW):
        from scenedetect import AdaptiveDetector

        logging.getLogger("pyscenedetect").setLevel(logging.ERROR)
        self.fps = nominal_fps if nominal_fps > 0 else 25.0
        self.step = max(1, round(self.fps / looks_per_s))
        self.width = width
        self.detector = AdaptiveDetector(adaptive_threshold=threshold, min_content_val=MIN_CONTENT_VAL,
                                         min_scene_len=MIN_SHOT_FRAMES, window_width=window)
        self.starts = [0]
        self.last_index: int | None = None
        self._last_small: np.ndarray | None = None
        self._pending: list[tuple[int, np.ndarray]] = []
        self._worker: BackgroundWorker[list[tuple[int, np.ndarray]]] = BackgroundWorker(
            self._judge_all, depth=DETECT_QUEUE_DEPTH, name="screentime-shots")

    def __call__(self, index: int, time_s: float, image: Callable[[], np.ndarray]) -> None:
        if index % self.step:
            return
        self.last_index = index
        self._last_small = downscale(image(), self.width)
        self._pending.append((index, self._last_small))
        if len(self._pending) == LOOKS_PER_HANDOFF:
            self._hand_over()

    def _hand_over(self) -> None:
        """Give the shrunk frames gathered so far to the detector's thread."""
        if self._pending:
            self._worker.submit(self._pending)
            self._pending = []

    def _judge_all(self, looks: list[tuple[int, np.ndarray]]) -> None:
        """Let the detector judge shrunk frames, in order (in the worker thread)."""
        for index, small in looks:
            self._judge(index, small)

    def _judge(self, index: int, small: np.ndarray) -> None:
        from scenedetect import FrameTimecode

        cuts = self.detector.process_frame(FrameTimecode(index, fps=self.fps), small)
        self.starts += [int(cut.frame_num) for cut in cuts]

    @property
    def saw_frames(self) -> bool:
        return self.last_index is not None

    def finish(self) -> list[int]:
        """First frame of every shot, 0 included (waits for the worker to judge every frame)."""
        self._hand_over()
        self._worker.close()
        end = self.last_index
        if end is None:
            return [0]
        from scenedetect import FrameTimecode

        # The detector judges a frame against the ones after it too: repeat the last frame (no
        # change, so no cut of its own) so that a cut in the final moments is still judged.
        for k in range(1, self.detector.window_width + 1):
            self._judge(end + k * self.step, self._last_small)
        self.starts += [int(cut.frame_num) for cut in self.detector.post_process(FrameTimecode(end, fps=self.fps))]
        return sorted(f for f in set(self.starts) if f <= end)


def downscale(frame: np.ndarray, width: int = DETECT_WIDTH) -> np.ndarray:
    """The frame at ``width`` pixels wide, as the detector sees it."""
    h, w = frame.shape[:2]
    # INTER_LINEAR: 6x cheaper than INTER_AREA here, and aliasing does not hide a cut.
    return cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_LINEAR)


def _cache_path(video: str | os.PathLike):
    name = (f"shots-v{DETECTION_VERSION}-adaptive-{ADAPTIVE_THRESHOLD:g}-w{WINDOW}-{MIN_CONTENT_VAL:g}"
            f"-{MIN_SHOT_FRAMES}-{DETECT_FPS:g}-{DETECT_WIDTH}.json")
    return cache_root() / video_key(video) / name


def cached_shot_starts(video: str | os.PathLike) -> list[int] | None:
    """Shot starts from the cache, or None."""
    try:
        return [int(f) for f in json.loads(_cache_path(video).read_text())]
    except (OSError, ValueError, TypeError):
        return None


def store_shot_starts(video: str | os.PathLike, starts: list[int]) -> None:
    """Remember shot starts (a cache that cannot be written is not an error)."""
    try:
        with atomic_path(_cache_path(video)) as tmp:
            tmp.write_text(json.dumps(starts))
    except ScreentimeError:
        pass


def detect_shot_starts(video: str | os.PathLike, looks_per_s: float = DETECT_FPS, width: int = DETECT_WIDTH,
                       threshold: float = ADAPTIVE_THRESHOLD, window: int = WINDOW) -> list[int]:
    """Decoded frame index where each shot begins, from one decoding pass of its own (no cache)."""
    stream = VideoStream(video)
    detector = CutDetector(stream.info.nominal_fps, looks_per_s, width, threshold, window)
    for index, time_s in stream:
        detector(index, time_s, stream.retrieve)
    return detector.finish()


def shot_starts(video: str | os.PathLike, use_cache: bool = True) -> list[int]:
    """Decoded frame index where each shot begins (the first is 0): cached, or one decoding pass."""
    if use_cache and (starts := cached_shot_starts(video)) is not None:
        return starts
    starts = detect_shot_starts(video)
    if use_cache:
        store_shot_starts(video, starts)
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
