"""screentime: how long each character is on screen in a video, learned from a few labelled frames."""

__version__ = "0.1.0"

import os as _os

# FFmpeg (inside OpenCV) would print its own lines for unreadable files; the package reports them itself.
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
