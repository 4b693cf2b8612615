"""Corrupt encoder output raises the project's MediaError and nothing else (property-based):
a struct.error or IndexError escaping the reader would bypass the encoder-restart path and stall
the rendition silently."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livecast.errors import MediaError
from livecast.media import boxes
from livecast.media.fmp4 import FMP4StreamReader
from tests.unit.synth import audio_fragment, video_fragment

STREAMS = {
    "video": boxes.init_segment("video", timescale=15360) + video_fragment(0).data
    + video_fragment(1).data,
    "audio": boxes.init_segment("audio", timescale=48000) + audio_fragment(0).data,
}  # fmt: skip


def read_all(data: bytes) -> None:
    """Feed ``data`` in one go; a MediaError is the only failure allowed."""
    with contextlib.suppress(MediaError):
        FMP4StreamReader().feed(data)


@pytest.mark.parametrize("kind", sorted(STREAMS))
@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_streams_raise_only_media_errors(kind: str, data: st.DataObject) -> None:
    stream = bytearray(STREAMS[kind])
    flips = data.draw(st.lists(st.integers(0, len(stream) - 1), min_size=1, max_size=8))
    for position in flips:
        stream[position] = data.draw(st.integers(0, 255))
    read_all(bytes(stream))


@pytest.mark.parametrize("kind", sorted(STREAMS))
@settings(max_examples=200, deadline=None)
@given(cut=st.integers(0, 10_000), extra=st.binary(max_size=64))
def test_truncated_and_padded_streams_raise_only_media_errors(
    kind: str, cut: int, extra: bytes
) -> None:
    stream = STREAMS[kind]
    read_all(stream[: cut % (len(stream) + 1)] + extra)


def test_a_trun_claiming_more_samples_than_it_holds_is_a_media_error() -> None:
    stream = bytearray(STREAMS["video"])
    trun = stream.index(b"trun")
    stream[trun + 8 : trun + 12] = (0xFFFFFFF0).to_bytes(4, "big")  # sample_count
    with pytest.raises(MediaError):
        FMP4StreamReader().feed(bytes(stream))
