"""Unusual video files for reliability tests, written with PyAV (FFmpeg): exact timestamps,
variable frame rates, faststart MP4s that can be truncated, audio-only files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np


def encode(path: Path, frames: Sequence[np.ndarray], times_s: Sequence[float], *, faststart: bool = False,
           codec: str = "libx264") -> Path:
    """Write BGR ``frames`` shown at ``times_s`` (any spacing: variable frame rate) as H.264 MP4."""
    height, width = frames[0].shape[:2]
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, 1000)
        stream.codec_context.time_base = Fraction(1, 1000)
        stream.options = {"bf": "0", "g": "12"}  # no B-frames: decode order = presentation order
        for image, t in zip(frames, times_s):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_audio_only(path: Path, seconds: float = 2.0) -> Path:
    """An MP4 holding one AAC audio track and no video."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=44100)
        samples = (0.2 * np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(44100 * seconds)))).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            frame.sample_rate, frame.pts = 44100, start
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to ``keep`` of its size, as an interrupted download or copy would."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def strip_media(path: Path) -> Path:
    """Keep a faststart MP4's header (which still lists every frame) and drop all picture data."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"mdat") + 8])
    return path
