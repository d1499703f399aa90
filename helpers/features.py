"""Features of sampled frames: decode and prepare in one thread while the model works in another.

A bounded queue between the two keeps memory flat however long the video is (at most a few
batches of prepared frames exist at once). Features come from the cache when they are there.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np
import pandas as pd

from .backbones import Backbone
from .cache import CachedVideo
from .progress import progress
from .video import DecodeStats, VideoStream, make_selector, warn_if_above_rate

T = TypeVar("T")
BATCH_SIZE = 32
QUEUE_DEPTH = 2


@dataclass
class Features:
    """Features of sampled frames: ``frames`` (frame, time_s) row-aligned with ``X``.

    ``computed`` counts frames that went through the model in this call (0 on a full cache hit).
    """

    frames: pd.DataFrame
    X: np.ndarray
    stats: DecodeStats = field(default_factory=DecodeStats)
    computed: int = 0
    frame_times: np.ndarray = field(default_factory=lambda: np.zeros(0))  # every decoded frame's time


def prefetch(items: Iterator[T], depth: int = QUEUE_DEPTH) -> Iterator[T]:
    """Run the iterator ``items`` in a background thread, ``depth`` items ahead of the consumer."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(message: tuple) -> bool:
        while not stop.is_set():
            try:
                slots.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, raised there
            put(("error", exc))

    worker = threading.Thread(target=work, name="screentime-decode", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = slots.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=10)


class _OnDemand:
    """The current frame's pixels, converted at most once and only if someone asks."""

    def __init__(self, retrieve: Callable[[], np.ndarray]):
        self._retrieve, self._image = retrieve, None

    def __call__(self) -> np.ndarray:
        if self._image is None:
            self._image = self._retrieve()
        return self._image


def selected_indices(times: np.ndarray, fps: float | None, frames: Iterable[int] | None) -> np.ndarray:
    """Which frames a sampling request picks, given every frame's timestamp (no decoding)."""
    select = make_selector(fps, frames)
    return np.array([i for i, t in enumerate(times) if select(i, float(t))], dtype=np.int64)


def cache_enabled() -> bool:
    """The cache is on unless ``SCREENTIME_NO_CACHE`` is set (``--no-cache``)."""
    return not os.environ.get("SCREENTIME_NO_CACHE")


#: Called with (index, time_s, get_image) for every decoded frame, in the decoding thread.
FrameWatcher = Callable[[int, float, Callable[[], np.ndarray]], None]


def extract_features(video: str | os.PathLike, backbone: Backbone, fps: float | None = 1.0, *,
                     frames: Iterable[int] | None = None, batch_size: int = BATCH_SIZE,
                     watch: FrameWatcher | None = None) -> Features:
    """Features of the frames of ``video`` sampled at ``fps`` (None: all) or listed in ``frames``.

    ``watch`` sees every decoded frame of the pass (e.g. the shot detector); a full cache hit
    decodes nothing, so it then sees none.
    """
    frames = None if frames is None else sorted(set(int(f) for f in frames))
    entry = CachedVideo.open(video, backbone.cache_key) if backbone.cache_key and cache_enabled() else None
    if entry is not None and entry.times is not None:
        wanted = selected_indices(entry.times, fps, frames)
        X = entry.lookup(wanted)
        if X is not None:
            table = pd.DataFrame({"frame": wanted, "time_s": entry.times[wanted]})
            return Features(table, X, entry.stats, computed=0, frame_times=entry.times)

    stream = VideoStream(video)
    if frames is None:
        warn_if_above_rate(stream.info, fps)
    select = make_selector(fps, frames)
    times: list[float] = []
    rows: list[tuple[int, float]] = []

    def prepared_batches() -> Iterator[list[tuple[int, np.ndarray]]]:
        batch = []
        for index, time_s in progress(stream, total=stream.info.claimed_frames, desc="features"):
            times.append(time_s)
            image = _OnDemand(stream.retrieve)
            if watch is not None:
                watch(index, time_s, image)
            if select(index, time_s):
                rows.append((index, time_s))
                if entry is None or entry.lookup(np.array([index])) is None:
                    batch.append((index, backbone.prepare(image())))
                    if len(batch) == batch_size:
                        yield batch
                        batch = []
        if batch:
            yield batch

    computed_idx, computed_X = [], []
    try:
        for batch in prefetch(prepared_batches()):
            computed_X.append(backbone.embed([p for _, p in batch]))
            computed_idx.extend(i for i, _ in batch)
    finally:  # even when interrupted: a re-run resumes from what was computed
        new_idx = np.array(computed_idx, dtype=np.int64)
        new_X = np.concatenate(computed_X) if computed_X else None
        if entry is not None and new_X is not None:
            entry.store_features(new_idx, new_X)
    wanted = np.array([i for i, _ in rows], dtype=np.int64)
    if entry is not None:
        entry.store_timeline(np.array(times), stream.stats)
        X = entry.lookup(wanted)  # cached and new rows, in frame order
    else:
        X = new_X
    if X is None:
        X = np.zeros((len(wanted), 0), np.float32)
    table = pd.DataFrame(rows, columns=["frame", "time_s"])
    return Features(table, X, stream.stats, computed=len(new_idx), frame_times=np.array(times))
