"""The input contract of the transcoder (pure): what every source — the test source, the file
loop, RTMP/SRT ingest — hands to :func:`livecast.transcode.ladder.build_argv`.

Sources import this module; the transcoder never imports a source (data flows one way).
"""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_LABEL = "v"
AUDIO_LABEL = "a"


@dataclass(frozen=True)
class SourceSpec:
    """The input half of an FFmpeg command line.

    ``input_args`` holds every input option and ``-i`` (a duration limit, if any, as ``-t`` before
    each ``-i``). ``filtergraph`` is a ``-filter_complex`` chain that ends in the labels
    ``[video_label]`` and ``[audio_label]``; the transcoder appends to it with ``;``.
    """

    input_args: tuple[str, ...]
    filtergraph: str
    video_label: str = VIDEO_LABEL
    audio_label: str = AUDIO_LABEL
    description: str = ""
