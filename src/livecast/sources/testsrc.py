"""The built-in test source (pure): a :class:`~livecast.transcode.source_spec.SourceSpec`, the
transcoder's input contract.

A ``SourceSpec`` is the input half of one FFmpeg command line: the input arguments (everything
up to and including the last ``-i``) and a ``-filter_complex`` fragment that produces exactly two
labelled streams, ``[v]`` (video at the ladder's frame rate) and ``[a]`` (audio). The transcoder
(:func:`livecast.transcode.ladder.build_argv`) appends the split/scale/encode/mux half.

:func:`test_source` is a synthetic live source: lavfi ``testsrc2`` (a moving pattern) read in real
time, with the wall clock (UTC, milliseconds) and the frame number burned in, plus a 1 kHz tone
that beeps once a second. The clock shown on a frame is ``epoch + pts`` — the same sum the packager
writes as ``EXT-X-PROGRAM-DATE-TIME`` — so a screenshot of the player and the playlist always
agree, and "latency behind live" can be read off the picture.

Real time means real time: FFmpeg ≥ 7 lets ``-re`` inputs burst 0.5 s ahead by default
(``-readrate_initial_burst``; 0 means "default"), which would make every part appear ~0.5 s
*before* the wall clock printed on it. The source sets a 1 ms burst instead.
"""

from __future__ import annotations

import logging

from livecast.transcode.ladder import Ladder
from livecast.transcode.source_spec import AUDIO_LABEL, VIDEO_LABEL, SourceSpec

__all__ = ["clock_text", "escape_filter_value", "test_source"]

log = logging.getLogger("livecast.sources")

SECONDS_PER_DAY = 86_400


def escape_filter_value(value: str) -> str:
    """Escape ``value`` for use as one option value inside a ``-filter_complex`` string.

    Two levels of FFmpeg quoting apply: the filter's option parser (``\\ ' :``), then the
    filtergraph parser (``\\ ' [ ] , ;``). Escaping each level with backslashes is exact for any
    text, whereas single quotes cannot contain a quote.
    """
    option_level = "".join("\\" + c if c in "\\':" else c for c in value)
    return "".join("\\" + c if c in "\\'[],;" else c for c in option_level)


def clock_text(epoch: float) -> str:
    """Drawtext expansion text showing ``epoch + pts`` as ``HH:MM:SS.mmm UTC  frame N``.

    Every field derives from one integer millisecond count ``M = floor((t + e) * 1000)`` with
    ``e = epoch mod 86400`` (small, so exact enough in a double), so the seconds and milliseconds
    can never disagree at a second boundary, as they could with ``%{pts:gmtime}`` plus a separate
    millisecond term (drawtext's ``pts:gmtime`` has no sub-second format).
    """
    day_offset = epoch % SECONDS_PER_DAY
    ms = f"floor((t+{day_offset:.6f})*1000)"

    def field(expr: str, digits: int) -> str:
        return f"%{{eif:{expr}:d:{digits}}}"

    hours = field(f"mod(floor({ms}/3600000),24)", 2)
    minutes = field(f"mod(floor({ms}/60000),60)", 2)
    seconds = field(f"mod(floor({ms}/1000),60)", 2)
    millis = field(f"mod({ms},1000)", 3)
    return f"{hours}:{minutes}:{seconds}.{millis} UTC  frame %{{frame_num}}"


def _drawtext(font: str, epoch: float, height: int) -> str:
    size = max(12, height // 18)
    options = {
        "fontfile": font,
        "fontsize": str(size),
        "fontcolor": "white",
        "box": "1",
        "boxcolor": "black@0.6",
        "boxborderw": str(max(2, size // 4)),
        "x": str(size),
        "y": f"h-{3 * size}",
        "text": clock_text(epoch),
    }
    return "drawtext=" + ":".join(f"{k}={escape_filter_value(v)}" for k, v in options.items())


def _duration_args(duration: float | None) -> tuple[str, ...]:
    return () if duration is None else ("-t", f"{duration:.6f}")


def test_source(
    ladder: Ladder,
    epoch: float,
    font: str | None,
    duration: float | None = None,
    *,
    initial_burst: float | None = 0.001,
) -> SourceSpec:
    """A real-time ``testsrc2`` pattern with a burned-in clock and a beeping 1 kHz tone.

    ``epoch`` is the wall-clock time (Unix seconds) of pts 0; ``font`` a TrueType file for the
    overlay, or None for no overlay (a warning is logged); ``duration`` stops both inputs after
    that many seconds (``-t`` goes before each ``-i``: after the inputs it would limit only the
    first output). Video is produced at the top rung's size and the ladder's frame rate.
    ``initial_burst`` is ``-readrate_initial_burst`` in seconds (None omits it: FFmpeg < 6.1).
    """
    top = ladder.rungs[0]
    video = f"testsrc2=size={top.width}x{top.height}:rate={ladder.fps}"
    audio = f"sine=frequency=1000:beep_factor=2:sample_rate={ladder.audio_rate}"
    limit = _duration_args(duration)
    realtime: tuple[str, ...] = ("-re",)
    if initial_burst is not None:
        realtime += ("-readrate_initial_burst", f"{initial_burst:g}")
    input_args = (
        *(*realtime, *limit, "-f", "lavfi", "-i", video),
        *(*realtime, *limit, "-f", "lavfi", "-i", audio),
    )
    chain = ["format=yuv420p"]
    if font is None:
        log.warning("no font found (set LIVECAST_FONT): the test source has no clock overlay")
    else:
        chain.append(_drawtext(font, epoch, top.height))
    filtergraph = f"[0:v]{','.join(chain)}[{VIDEO_LABEL}];[1:a]anull[{AUDIO_LABEL}]"
    return SourceSpec(
        input_args=input_args,
        filtergraph=filtergraph,
        description=f"testsrc2 {top.width}x{top.height}@{ladder.fps} + 1 kHz tone",
    )


setattr(test_source, "__test__", False)  # noqa: B010 — pytest must not collect it as a test
