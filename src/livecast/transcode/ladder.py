"""The ABR ladder and the one FFmpeg command line that encodes it (pure).

One FFmpeg process decodes the source once, ``split``s the video into one scaler + libx264 encoder
per rung, encodes AAC once, and writes every rendition as fragmented MP4 (``ftyp`` + empty ``moov``,
then ``moof`` + ``mdat`` pairs) to its own pipe, ``pipe:N`` on a file descriptor the supervisor
passes with ``pass_fds``.

Timing contract with the packager:

* Video: one fragment is exactly one part, ``part_frames`` frames (10 at 30 fps for 1/3 s parts).
  FFmpeg's mov muxer cuts a fragment when the next packet's dts minus the fragment's first dts is
  ≥ ``-frag_duration`` (exact rational comparison), so ``frag_duration`` is the part duration in µs
  rounded *down*. Keyframes (IDR) sit exactly on every segment boundary, in every rung: fixed GOP =
  ``segment_frames``, no scene-cut keyframes, and ``-force_key_frames`` on the same boundaries.
  ``-tune zerolatency`` (no B-frames, no lookahead) makes each part reach Python ≈ 0.1 s after
  its media end.
* Audio: AAC-LC in fragments of ``audio_fragment_frames`` AAC frames (1024 samples each), at most
  15 % of a part, so the packager can group consecutive fragments into parts of 85–100 % of the part
  target and cut segments at the fragment nearest each segment boundary.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from livecast.errors import ConfigError
from livecast.transcode.source_spec import SourceSpec

__all__ = [
    "AAC_FRAME_SAMPLES",
    "AUDIO_RENDITION",
    "DEFAULT_LADDER",
    "DEFAULT_RUNGS",
    "MOVFLAGS",
    "Ladder",
    "Rung",
    "build_argv",
]

AUDIO_RENDITION = "audio"
AAC_FRAME_SAMPLES = 1024
MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof+skip_sidx+skip_trailer"
PART_MIN, PART_MAX = 0.2, 1.0
AUDIO_FRAGMENT_SHARE = 0.15  # an audio fragment is at most this share of a part
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
_EPS = 1e-6
DEFAULT_X264_PARAMS = "cabac=1:deblock=1:8x8dct=1"
_X264_PARAMS = re.compile(r"(?:[a-z0-9_-]+=[A-Za-z0-9_.,+-]+(?::[a-z0-9_-]+=[A-Za-z0-9_.,+-]+)*)?")
_SNAP = 0.02  # a duration within 2 % of a frame (part) or of a part (segment) is snapped to it


@dataclass(frozen=True)
class Rung:
    """One video rendition: a name (used in URLs), a frame size and a target bitrate."""

    name: str
    width: int
    height: int
    video_kbps: int

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == AUDIO_RENDITION:
            raise ConfigError("rungs.name", f"{self.name!r} is not a valid rendition name")
        for key, value in (("width", self.width), ("height", self.height)):
            if value < 16 or value % 2:
                raise ConfigError(f"rungs.{key}", f"{value} must be an even number ≥ 16")
        if not 50 <= self.video_kbps <= 50_000:
            raise ConfigError("rungs.video_kbps", f"{self.video_kbps} is outside 50–50000")


def _whole_multiple(value: float, unit: Fraction) -> int | None:
    """``value / unit`` if it is within 2 % of a positive whole number (0.333 s → 10 frames at
    30 fps), else None."""
    ratio = value / float(unit)
    whole = round(ratio)
    return whole if whole >= 1 and abs(ratio - whole) <= _SNAP else None


@dataclass(frozen=True)
class Ladder:
    """The encoding ladder: video rungs (largest first) plus one AAC rendition named "audio"."""

    rungs: tuple[Rung, ...]
    fps: int = 30
    audio_kbps: int = 128
    audio_rate: int = 48_000
    part_duration: float = 1 / 3
    segment_duration: float = 2.0
    # ultrafast with CABAC, deblocking and 8×8 transforms turned back on: 29% of the 2 cores for
    # the default ladder vs 44% with veryfast (benchmarks/bench_ladder_cpu.py, same run).
    preset: str = "ultrafast"
    x264_params: str = DEFAULT_X264_PARAMS
    tune_zerolatency: bool = True
    audio_channels: int = 2

    def __post_init__(self) -> None:
        """Validate; snap ``part_duration`` to whole frames and ``segment_duration`` to whole
        parts, so that e.g. 0.333 becomes exactly 10/30 s."""
        self._check_rungs()
        self._check_audio()
        if not isinstance(self.fps, int) or not 1 <= self.fps <= 120:
            raise ConfigError("fps", f"{self.fps} is not a whole number of frames/s in 1–120")
        if not PART_MIN - _EPS <= self.part_duration <= PART_MAX + _EPS:
            raise ConfigError("part_duration", f"{self.part_duration} s is outside 0.2–1 s")
        part_frames = _whole_multiple(self.part_duration, Fraction(1, self.fps))
        if part_frames is None:
            raise ConfigError(
                "part_duration",
                f"{self.part_duration} s is not a whole number of frames at {self.fps} fps",
            )
        parts = _whole_multiple(self.segment_duration, Fraction(part_frames, self.fps))
        if parts is None or parts < 2:
            raise ConfigError(
                "segment_duration",
                f"{self.segment_duration} s is not a multiple (≥ 2) of the part duration",
            )
        if self.segment_duration > 10 + _EPS:
            raise ConfigError("segment_duration", f"{self.segment_duration} s is above 10 s")
        object.__setattr__(self, "part_duration", part_frames / self.fps)
        object.__setattr__(self, "segment_duration", parts * part_frames / self.fps)

    def _check_rungs(self) -> None:
        if not self.rungs:
            raise ConfigError("rungs", "the ladder needs at least one video rung")
        names = [r.name for r in self.rungs]
        if len(set(names)) != len(names):
            raise ConfigError("rungs", f"duplicate rung names in {names}")
        areas = [r.width * r.height for r in self.rungs]
        if areas != sorted(areas, reverse=True):
            raise ConfigError("rungs", "rungs must be ordered from the largest frame size down")

    def _check_audio(self) -> None:
        if self.audio_rate not in (44_100, 48_000):
            raise ConfigError("audio_rate", f"{self.audio_rate} is not 44100 or 48000")
        if not 16 <= self.audio_kbps <= 512:
            raise ConfigError("audio_kbps", f"{self.audio_kbps} is outside 16–512")
        if self.audio_channels not in (1, 2):
            raise ConfigError("audio_channels", f"{self.audio_channels} is not 1 or 2")
        if not self.preset.isalpha():
            raise ConfigError("preset", f"{self.preset!r} is not an x264 preset name")
        if not _X264_PARAMS.fullmatch(self.x264_params):
            raise ConfigError("x264_params", f"{self.x264_params!r} is not key=value[:key=value]")

    @property
    def part_frames(self) -> int:
        """Video frames per part (= per fMP4 fragment)."""
        return round(self.part_duration * self.fps)

    @property
    def parts_per_segment(self) -> int:
        return round(self.segment_duration * self.fps / self.part_frames)

    @property
    def segment_frames(self) -> int:
        """Video frames per segment = the fixed GOP length."""
        return self.part_frames * self.parts_per_segment

    @property
    def renditions(self) -> tuple[str, ...]:
        """Every output's name: the video rungs in order, then "audio"."""
        return (*(r.name for r in self.rungs), AUDIO_RENDITION)

    @property
    def video_frag_duration_us(self) -> int:
        """``-frag_duration`` for video: the part duration in µs, rounded down (see module doc)."""
        return (self.part_frames * 1_000_000) // self.fps

    @property
    def audio_fragment_frames(self) -> int:
        """AAC frames per audio fragment: the most that stay ≤ 15 % of a part (at least 1)."""
        aac_frame = AAC_FRAME_SAMPLES / self.audio_rate
        return max(1, math.floor(AUDIO_FRAGMENT_SHARE * self.part_duration / aac_frame + _EPS))

    @property
    def audio_frag_duration_us(self) -> int:
        samples = self.audio_fragment_frames * AAC_FRAME_SAMPLES
        return (samples * 1_000_000) // self.audio_rate


DEFAULT_RUNGS = (
    Rung("720p", 1280, 720, 2500),
    Rung("480p", 854, 480, 1200),
    Rung("360p", 640, 360, 600),
)
DEFAULT_LADDER = Ladder(rungs=DEFAULT_RUNGS)


def _fmp4_args(frag_duration_us: int, fd: int) -> list[str]:
    return [
        "-f", "mp4",
        "-movflags", MOVFLAGS,
        "-frag_duration", str(frag_duration_us),
        "-flush_packets", "1",
        f"pipe:{fd}",
    ]  # fmt: skip


def _video_output(ladder: Ladder, index: int, rung: Rung, fd: int) -> list[str]:
    gop = ladder.segment_frames
    tune = ["-tune", "zerolatency"] if ladder.tune_zerolatency else []
    return [
        "-map", f"[vout{index}]",
        "-c:v", "libx264",
        "-preset", ladder.preset,
        *tune,
        *(["-x264-params", ladder.x264_params] if ladder.x264_params else []),
        "-profile:v", "high",
        "-pix_fmt", "yuv420p",
        "-b:v", f"{rung.video_kbps}k",
        "-maxrate", f"{rung.video_kbps}k",
        "-bufsize", f"{rung.video_kbps}k",
        "-g", str(gop),
        "-keyint_min", str(gop),
        "-sc_threshold", "0",
        "-bf", "0",
        "-forced-idr", "1",
        "-force_key_frames", f"expr:gte(n,n_forced*{gop})",
        *_fmp4_args(ladder.video_frag_duration_us, fd),
    ]  # fmt: skip


def _audio_output(ladder: Ladder, label: str, fd: int) -> list[str]:
    return [
        "-map", f"[{label}]",
        "-c:a", "aac",
        "-profile:a", "aac_low",
        "-b:a", f"{ladder.audio_kbps}k",
        "-ar", str(ladder.audio_rate),
        "-ac", str(ladder.audio_channels),
        *_fmp4_args(ladder.audio_frag_duration_us, fd),
    ]  # fmt: skip


def filtergraph(source: SourceSpec, ladder: Ladder) -> str:
    """The whole ``-filter_complex``: the source's chain, one split, one scaler per rung."""
    n = len(ladder.rungs)
    split_outs = "".join(f"[vsplit{i}]" for i in range(n))
    chains = [source.filtergraph, f"[{source.video_label}]split={n}{split_outs}"]
    for i, rung in enumerate(ladder.rungs):
        chains.append(
            f"[vsplit{i}]scale={rung.width}:{rung.height}:flags=bilinear,setsar=1[vout{i}]"
        )
    return ";".join(chains)


def _check_fds(ladder: Ladder, fds: Mapping[str, int]) -> None:
    missing = [name for name in ladder.renditions if name not in fds]
    if missing:
        raise ConfigError("fds", f"no pipe for rendition(s) {missing}")
    extra = sorted(set(fds) - set(ladder.renditions))
    if extra:
        raise ConfigError("fds", f"pipes for unknown rendition(s) {extra}")
    numbers = [fds[name] for name in ladder.renditions]
    if len(set(numbers)) != len(numbers) or min(numbers) < 3:
        raise ConfigError("fds", f"pipe fds must be distinct and ≥ 3, got {numbers}")


def build_argv(
    ffmpeg: str,
    source: SourceSpec,
    ladder: Ladder,
    fds: Mapping[str, int],
    *,
    loglevel: str = "warning",
) -> list[str]:
    """The argv of the single FFmpeg process encoding ``ladder`` from ``source``.

    ``fds`` maps every rendition name (``ladder.renditions``) to the file descriptor number the
    child writes that rendition to (``pipe:N``; pass the same numbers in ``pass_fds``).
    """
    _check_fds(ladder, fds)
    argv = [ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel]
    argv += list(source.input_args)
    argv += ["-filter_complex", filtergraph(source, ladder)]
    for index, rung in enumerate(ladder.rungs):
        argv += _video_output(ladder, index, rung, fds[rung.name])
    argv += _audio_output(ladder, source.audio_label, fds[AUDIO_RENDITION])
    return argv
