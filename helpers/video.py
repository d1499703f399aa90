"""Reading videos: sequential decoding, presentation timestamps, and drift-free frame sampling.

Only the frames that are asked for are converted to images (``grab`` every frame, ``retrieve``
only the sampled ones), so memory holds one frame at a time however long the video is. Times come
from each frame's presentation timestamp, not from ``index / nominal fps``, and the number of
frames is what actually decodes, not what the container claims.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import cv2
import numpy as np

from .errors import ScreentimeError, UsageError
from .progress import log, progress

#: Timestamps closer than this (seconds) to a sampling target count as on it (absorbs float error).
TIME_TOLERANCE_S = 1e-4


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (``claimed_frames`` may be wrong)."""

    path: str
    nominal_fps: float
    width: int
    height: int
    claimed_frames: int


@dataclass
class Frame:
    """One decoded frame: 0-based index among decoded frames, presentation time, BGR pixels."""

    index: int
    time_s: float
    image: np.ndarray


@dataclass
class DecodeStats:
    """What a full sequential pass found: frames that decoded and the video's real duration."""

    frames_decoded: int = 0
    last_time_s: float = 0.0
    frame_interval_s: float = 0.0

    @property
    def duration_s(self) -> float:
        """Length of the video: the last frame is shown for one frame interval."""
        return self.last_time_s + self.frame_interval_s if self.frames_decoded else 0.0


def parse_fps(value: str | float | None) -> float | None:
    """Parse a sampling rate: a positive number of frames per second, or ``all`` (returns None)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "all"):
        return None
    try:
        fps = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"--fps must be a positive number of frames per second or 'all', not {value!r}") from None
    if not math.isfinite(fps) or fps <= 0:
        raise UsageError(f"--fps must be a positive number of frames per second or 'all', not {value!r}")
    return fps


#: Still-image files: OpenCV opens one as a one-frame "video", which has no screen time to measure.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def check_video_path(path: str | os.PathLike) -> Path:
    """Fail with one clear line if ``path`` cannot be a readable video file."""
    p = Path(path)
    if not p.exists():
        raise ScreentimeError(f"video {p} does not exist; check the path")
    if p.is_dir():
        raise ScreentimeError(f"video {p} is a folder; give the path of a video file")
    if not os.access(p, os.R_OK):
        raise ScreentimeError(f"video {p} is not readable; check its permissions")
    if p.stat().st_size == 0:
        raise ScreentimeError(f"video {p} is an empty file (0 bytes); copy the video again")
    if p.suffix.lower() in IMAGE_SUFFIXES:
        raise ScreentimeError(f"{p} is a still image, not a video; give the video file it comes from")
    return p


class VideoStream:
    """Decode a video front to back; iterate to get ``(index, time_s)``, then ``retrieve()`` if wanted.

    >>> stream = VideoStream("clip.mp4")                      # doctest: +SKIP
    >>> for index, time_s in stream:                          # doctest: +SKIP
    ...     if index % 10 == 0:
    ...         image = stream.retrieve()
    """

    def __init__(self, path: str | os.PathLike):
        self.path = check_video_path(path)
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise ScreentimeError(
                f"{self.path} is not a video OpenCV can read (unknown format, no video track, or a corrupt or "
                "truncated file); "
                "convert it to H.264 MP4, e.g. ffmpeg -i INPUT -c:v libx264 OUTPUT.mp4"
            )
        cap = self._cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.info = VideoInfo(
            path=str(self.path),
            nominal_fps=float(fps) if fps and math.isfinite(fps) and fps > 0 else 0.0,
            width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            claimed_frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
        )
        self.stats = DecodeStats()

    def __iter__(self) -> Iterator[tuple[int, float]]:
        cap = self._cap
        default_interval = 1.0 / self.info.nominal_fps if self.info.nominal_fps else 1.0 / 25
        interval = default_interval
        first_raw = prev_raw = None
        index = -1
        try:
            while cap.grab():
                index += 1
                raw = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                if first_raw is None:
                    first_raw = raw
                elif not (raw > prev_raw) or not math.isfinite(raw):
                    # Missing timestamp (OpenCV reports 0) or out of order: one interval on.
                    raw = prev_raw + interval
                else:
                    interval = raw - prev_raw
                prev_raw = raw
                time_s = raw - first_raw
                self.stats.frames_decoded = index + 1
                self.stats.last_time_s = time_s
                yield index, time_s
        finally:
            self.stats.frame_interval_s = interval if index > 0 else default_interval
            cap.release()
        if self.stats.frames_decoded == 0:
            raise ScreentimeError(
                f"{self.path} decodes no frame (empty, audio-only or corrupt video); check that it plays"
            )
        claimed, decoded = self.info.claimed_frames, self.stats.frames_decoded
        if claimed > decoded + 1:
            lost_s = (claimed - decoded) / self.info.nominal_fps if self.info.nominal_fps else float("nan")
            log.warning("%s: the container claims %d frames but only %d decode; the file may be truncated "
                        "(about %.1f s, %.0f%% lost); results cover the %.1f s that decode",
                        self.path.name, claimed, decoded, lost_s, 100 * (claimed - decoded) / claimed,
                        self.stats.duration_s)
        elif claimed and claimed != decoded:
            log.info("%s: the container claims %d frames, %d decode (using the decoded ones)",
                     self.path.name, claimed, decoded)

    def retrieve(self) -> np.ndarray:
        """The BGR image of the frame just grabbed."""
        ok, image = self._cap.retrieve()
        if not ok or image is None:
            raise ScreentimeError(f"{self.path}: a frame could not be decoded; the file may be corrupt")
        return image


class RateSelector:
    """Pick frames at ``fps`` per second without drift: the first frame at or after each k / fps."""

    def __init__(self, fps: float):
        self.fps = fps
        self._next_target = 0.0

    def __call__(self, index: int, time_s: float) -> bool:
        if time_s + TIME_TOLERANCE_S < self._next_target:
            return False
        self._next_target = (math.floor((time_s + TIME_TOLERANCE_S) * self.fps) + 1) / self.fps
        return True


def warn_if_above_rate(info: VideoInfo, fps: float | None) -> None:
    """Say so when a sampling rate above the video's own rate will simply keep every frame."""
    if fps is not None and info.nominal_fps and fps > info.nominal_fps + 1e-6:
        log.warning("--fps %g is above the video's %.3g frames per second: sampling every frame",
                    fps, info.nominal_fps)


def make_selector(fps: float | None = 1.0, frames: Iterable[int] | None = None) -> Callable[[int, float], bool]:
    """A frame selector: every frame (``fps=None``), a rate, or an explicit set of frame indices."""
    if frames is not None:
        wanted = set(int(f) for f in frames)
        return lambda index, time_s: index in wanted
    if fps is None:
        return lambda index, time_s: True
    return RateSelector(fps)


def sample_frames(
    path: str | os.PathLike,
    fps: float | None = 1.0,
    *,
    frames: Iterable[int] | None = None,
    desc: str = "decoding",
) -> Iterator[Frame]:
    """Yield the sampled frames of a video in order, decoding sequentially.

    ``fps`` frames per second (``None`` for every frame), or exactly the frame indices in ``frames``.
    """
    stream = VideoStream(path)
    if frames is None:
        warn_if_above_rate(stream.info, fps)
    select = make_selector(fps, frames)
    total = stream.info.claimed_frames or None
    for index, time_s in progress(stream, total=total, desc=desc):
        if select(index, time_s):
            yield Frame(index, time_s, stream.retrieve())


def frame_times(path: str | os.PathLike) -> tuple[np.ndarray, DecodeStats]:
    """Presentation time of every decoded frame (grab only, no pixel conversion)."""
    stream = VideoStream(path)
    times = np.array([t for _, t in progress(stream, total=stream.info.claimed_frames, desc="timing")])
    return times, stream.stats


def probe(path: str | os.PathLike) -> tuple[VideoInfo, DecodeStats]:
    """Container facts plus what really decodes (frame count and duration), in one pass."""
    stream = VideoStream(path)
    for _ in stream:
        pass
    return stream.info, stream.stats


def encode_jpeg(image: np.ndarray, max_width: int | None = None, quality: int = 85) -> bytes:
    """JPEG bytes of a BGR frame, first shrunk (INTER_AREA) to at most ``max_width`` pixels wide."""
    h, w = image.shape[:2]
    if max_width and w > max_width:
        image = cv2.resize(image, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ScreentimeError("could not encode a frame as JPEG")
    return data.tobytes()
