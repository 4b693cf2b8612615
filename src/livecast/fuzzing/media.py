"""fMP4 targets: the box reader behind every parse of encoder output (ISO/IEC 14496-12 §4.2).

ISO/IEC 14496-12 §4.2: "size is an integer that specifies the number of bytes in this box,
including all its fields and contained boxes; if size is 1 then the actual size is in the field
largesize; if size is 0, then this box shall be the last one in the file". Corrupt encoder output
must raise :class:`~livecast.errors.MediaError` from the reader's own bounds checks — a
``struct.error``/``IndexError`` escaping (or being translated at the ``parse_*`` boundary) would
bypass the encoder-restart path.

Inputs are valid CMAF pieces (init segments and fragments built by :mod:`livecast.media.boxes`)
mutated by byte flips, box-size rewrites, truncation, splicing and insertion, or random bytes;
each is fed to one consumer: the stream reader (in chunks), ``parse_init``, ``parse_fragment``
or the loop rewriter ``rewrite_fragment``. Properties: only ``MediaError`` escapes, it is never a
translated ``struct.error``/``IndexError``, and an unmutated piece parses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import cache

from hypothesis import strategies as st

from livecast.errors import MediaError
from livecast.fuzzing.core import Target, stateless, violation
from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader, TrackInfo, parse_fragment, parse_init
from livecast.media.rewrite import rewrite_fragment

CONSUMERS = ("stream", "init", "fragment", "rewrite")
MAX_INPUT = 16 * 1024


@dataclass(frozen=True)
class MediaInput:
    """One fMP4 input: which consumer reads it, the bytes, chunking and rewrite options."""

    consumer: str
    data: bytes
    pristine: bool  # unmutated: must parse
    track: str = "video"  # the track the seed belongs to ("video" or "audio")
    chunk: int = 0  # stream: feed in chunks of this many bytes (0: at once)
    decode_time: int | None = None
    sequence: int | None = None
    clip_end: int | None = None


@cache
def _seeds() -> dict[str, tuple[bytes, str]]:
    """Valid pieces by name: (bytes, the kind of track they belong to)."""
    video_init = boxes.init_segment("video", timescale=15360)
    audio_init = boxes.init_segment("audio", timescale=48000)
    video = boxes.fragment(
        sequence=3,
        decode_time=1536,
        sample_durations=[512, 512, 512],
        sample_sizes=[4, 3, 2],
        first_is_sync=True,
    )
    audio = boxes.fragment(
        sequence=9,
        decode_time=2**33,  # past 32 bits: a 64-bit tfdt
        sample_durations=[1024],
        sample_sizes=[6],
        first_is_sync=True,
    )
    return {
        "video-init": (video_init, "video"),
        "audio-init": (audio_init, "audio"),
        "video-fragment": (video, "video"),
        "audio-fragment": (audio, "audio"),
        "video-stream": (video_init + video + video, "video"),
        "audio-stream": (audio_init + audio, "audio"),
    }


@cache
def _tracks() -> dict[str, TrackInfo]:
    seeds = _seeds()
    return {
        "video": parse_init(seeds["video-init"][0]),
        "audio": parse_init(seeds["audio-init"][0]),
    }


def _box_offsets(data: bytes) -> list[int]:
    """Offsets of every plausible box header (a printable four-character type after a size)."""
    return [
        i
        for i in range(len(data) - 7)
        if all(0x61 <= c <= 0x7A or 0x30 <= c <= 0x39 for c in data[i + 4 : i + 8])
    ]


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` after 1–4 mutations of the kinds corrupt encoder output shows."""
    out = bytearray(original)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "size", "truncate", "insert", "delete", "splice")))
        if not out:
            out.extend(draw(st.binary(max_size=16)))
            continue
        at = draw(st.integers(0, len(out) - 1))
        if kind == "flip":
            out[at] = draw(st.integers(0, 255))
        elif kind == "size":
            offsets = _box_offsets(bytes(out)) or [0]
            where = draw(st.sampled_from(offsets))
            size = draw(
                st.one_of(
                    st.sampled_from((0, 1, 7, 8, 9, 15, 16, 2**31, 2**32 - 1)),
                    st.integers(0, len(out) + 16),
                )
            )
            out[where : where + 4] = struct.pack(">I", size)[: len(out) - where]
        elif kind == "truncate":
            del out[at:]
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del out[at : at + draw(st.integers(1, 16))]
        else:  # splice: a copy of another range of the same bytes
            end = draw(st.integers(at, len(out)))
            out[draw(st.integers(0, len(out))) : 0] = out[at:end]
    return bytes(out[:MAX_INPUT])


@st.composite
def media_inputs(draw: st.DrawFn) -> MediaInput:
    """A consumer and its bytes: a mutated seed (mostly), a pristine seed, or random bytes."""
    consumer = draw(st.sampled_from(CONSUMERS))
    seeds = _seeds()
    wanted = "init" if consumer == "init" else ("fragment" if consumer != "stream" else "stream")
    names = sorted(name for name in seeds if name.endswith(wanted))
    original, track = seeds[draw(st.sampled_from(names))]
    how = draw(st.sampled_from(("mutated", "mutated", "mutated", "pristine", "random")))
    if how == "mutated":
        data = draw(mutated(original))
    elif how == "random":
        data = draw(st.binary(max_size=512))
    else:
        data = original
    chunk = draw(st.sampled_from((0, 1, 7, 64)))
    if how == "pristine":
        return MediaInput(consumer, data, pristine=True, track=track, chunk=chunk)
    options = st.none() | st.integers(0, 2**64)
    return MediaInput(
        consumer,
        data,
        pristine=False,
        track=track,
        chunk=chunk,
        decode_time=draw(options),
        sequence=draw(st.none() | st.integers(-1, 2**32)),
        clip_end=draw(options),
    )


def _feed(data: bytes, chunk: int) -> None:
    reader = FMP4StreamReader()
    if chunk <= 0:
        reader.feed(data)
        return
    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])


def run_media(item: MediaInput) -> None:
    """Read ``item`` with its consumer (see the module for the properties)."""
    track = _tracks()[item.track]
    try:
        if item.consumer == "stream":
            _feed(item.data, item.chunk)
        elif item.consumer == "init":
            parse_init(item.data)
        elif item.consumer == "fragment":
            parse_fragment(item.data, track)
        else:
            rewrite_fragment(
                item.data,
                track,
                decode_time=item.decode_time,
                sequence=item.sequence,
                clip_end=item.clip_end,
            )
    except MediaError as error:
        violation(
            not isinstance(error.__cause__, struct.error | IndexError),
            f"a read escaped the box reader's bounds checks: {error.__cause__!r}",
        )
        violation(not item.pristine, f"a valid {item.consumer} input was refused: {error}")
        raise


TARGETS = (
    Target(
        "media.fmp4",
        "mutated CMAF init segments and fragments → stream reader, parse_*, rewrite_fragment",
        media_inputs(),
        stateless(run_media),
        documented=(MediaError,),
    ),
)
