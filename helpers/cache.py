"""Feature cache: a re-run on the same video with the same backbone does no decoding or model work.

Keyed by the video's content (size plus a hash of its first and last MiB) and the backbone's
``cache_key``. Per video it keeps every decoded frame's timestamp (so any sampling rate can be
resolved without decoding) and, per backbone, the features of every frame computed so far. The
head, thresholds and sampling rate are not part of the key: changing them reuses the features.

Location: ``$SCREENTIME_CACHE``, else ``~/.cache/screentime``. Delete the folder to clear it.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from .fileio import atomic_path
from .progress import log
from .video import DecodeStats

_EDGE = 1 << 20


def cache_root() -> Path:
    """The cache folder (``$SCREENTIME_CACHE`` or ``~/.cache/screentime``)."""
    return Path(os.environ.get("SCREENTIME_CACHE") or Path.home() / ".cache" / "screentime")


def video_key(path: str | os.PathLike) -> str:
    """A content key for a video file: its size and the bytes of its first and last MiB."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(_EDGE))
        if size > 2 * _EDGE:
            f.seek(-_EDGE, os.SEEK_END)
            digest.update(f.read(_EDGE))
    return digest.hexdigest()[:24]


@dataclass
class CachedVideo:
    """What the cache knows about one video for one backbone."""

    folder: Path
    backbone_key: str
    times: np.ndarray | None = None  # time of every decoded frame, once a full pass happened
    stats: DecodeStats | None = None
    frames: np.ndarray | None = None  # frame indices with cached features, sorted
    X: np.ndarray | None = None

    @classmethod
    def open(cls, video: str | os.PathLike, backbone_key: str) -> "CachedVideo":
        entry = cls(cache_root() / video_key(video), backbone_key)
        try:  # missing or damaged parts are simply recomputed
            with np.load(entry.folder / "timeline.npz") as data:
                entry.times = data["times"]
                entry.stats = DecodeStats(int(data["frames_decoded"]), float(data["last_time_s"]),
                                          float(data["frame_interval_s"]))
        except (OSError, KeyError, ValueError):
            entry.times = entry.stats = None
        try:  # features can exist without a timeline: an interrupted first pass
            with np.load(entry._features_path()) as data:
                entry.frames, entry.X = data["frames"], data["X"]
        except (OSError, KeyError, ValueError):
            entry.frames = entry.X = None
        return entry

    def _features_path(self) -> Path:
        return self.folder / f"features-{self.backbone_key}.npz"

    def lookup(self, wanted: np.ndarray) -> np.ndarray | None:
        """Features of the ``wanted`` frames if every one is cached, else None."""
        if self.frames is None or len(wanted) == 0:
            return None
        pos = np.searchsorted(self.frames, wanted)
        if (pos >= len(self.frames)).any() or (self.frames[np.minimum(pos, len(self.frames) - 1)] != wanted).any():
            return None
        return self.X[pos]

    def store_timeline(self, times: np.ndarray, stats: DecodeStats) -> None:
        """Remember every decoded frame's timestamp after a complete pass."""
        self.times, self.stats = times, stats
        with self._guard(), atomic_path(self.folder / "timeline.npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, times=times, frames_decoded=stats.frames_decoded, last_time_s=stats.last_time_s,
                     frame_interval_s=stats.frame_interval_s)

    def store_features(self, frames: np.ndarray, X: np.ndarray) -> None:
        """Merge newly computed features (kept in memory even if the disk write fails)."""
        if len(frames) == 0:
            return
        if self.frames is not None and self.X is not None and self.X.shape[1:] == X.shape[1:]:
            keep = ~np.isin(self.frames, frames)
            frames, X = np.concatenate([self.frames[keep], frames]), np.concatenate([self.X[keep], X])
        order = np.argsort(frames)
        self.frames, self.X = frames[order], X[order]
        with self._guard(), atomic_path(self._features_path()) as tmp, open(tmp, "wb") as f:
            np.savez(f, frames=self.frames, X=self.X)

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:  # a cache that cannot be written must never fail a run
            log.warning("feature cache not written (%s); results are unaffected", exc)
