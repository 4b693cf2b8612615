"""Finding the FFmpeg binary and a font for the test source's overlay.

FFmpeg, in order: an explicit path, ``$LIVECAST_FFMPEG``, the binary bundled with the
``imageio-ffmpeg`` wheel (FFmpeg 9 with libx264 — a project dependency, so it is always there on a
supported install), then ``ffmpeg`` on ``$PATH``. A missing binary is a :class:`TranscodeError`
naming what was tried.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable

from livecast.errors import TranscodeError

__all__ = ["FFMPEG_ENV", "FONT_CANDIDATES", "FONT_ENV", "find_ffmpeg", "find_font"]

log = logging.getLogger("livecast.transcode")

FFMPEG_ENV = "LIVECAST_FFMPEG"
FONT_ENV = "LIVECAST_FONT"

# Monospaced first: the clock's digits then do not jiggle from frame to frame.
FONT_CANDIDATES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationMono-Regular.ttf",
    "/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSansMono.ttf",  # Fedora
    "/usr/share/fonts/TTF/DejaVuSansMono.ttf",  # Arch
    "/usr/share/fonts/dejavu-sans-mono-fonts/DejaVuSansMono.ttf",
    "/Library/Fonts/Arial.ttf",  # macOS
    "/System/Library/Fonts/Supplemental/Arial.ttf",
)


def _is_executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def _imageio_ffmpeg() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None
    return str(exe) if exe and _is_executable(str(exe)) else None


def find_ffmpeg(path: str | None = None) -> str:
    """The FFmpeg executable to run (see the module docstring for the search order)."""
    if path is not None:
        if _is_executable(path):
            return path
        raise TranscodeError(f"ffmpeg not found or not executable at {path!r}")
    env = os.environ.get(FFMPEG_ENV)
    if env:
        if _is_executable(env):
            return env
        raise TranscodeError(f"${FFMPEG_ENV}={env!r} is not an executable file")
    found = _imageio_ffmpeg() or shutil.which("ffmpeg")
    if found is None:
        raise TranscodeError(
            f"no FFmpeg found: pass a path, set ${FFMPEG_ENV}, "
            "or install imageio-ffmpeg (pip install imageio-ffmpeg)"
        )
    return found


def _first_file(paths: Iterable[str]) -> str | None:
    return next((p for p in paths if os.path.isfile(p)), None)


def find_font(candidates: Iterable[str] = FONT_CANDIDATES) -> str | None:
    """A TrueType font for drawtext: ``$LIVECAST_FONT``, else a common system font, else None."""
    env = os.environ.get(FONT_ENV)
    if env:
        if os.path.isfile(env):
            return env
        log.warning("$%s=%r is not a file; looking for a system font", FONT_ENV, env)
    return _first_file(candidates)
