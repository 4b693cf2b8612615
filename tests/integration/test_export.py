"""``export_recording`` on a real recording: the live pipeline (real FFmpeg, an encoder restart, so
two init segments) records into a temporary directory once; every test exports from it (or from a
damaged copy) and reads the MP4 back with ffprobe."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livecast.config import load_config
from livecast.errors import StoreError, TranscodeError
from livecast.pipeline import LivePipeline
from livecast.store import journal
from livecast.store.contract import segment_name
from livecast.store.export import export_recording
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.requirements import need

pytestmark = pytest.mark.integration

EVENT = "main"
SEGMENT = 2.0  # the default ladder's segment duration: "within one segment"
AAC_FRAME = 1024 / 48000


@dataclass(frozen=True)
class Recorded:
    directory: Path
    ffprobe: str

    def segments(self, rendition: str) -> list[journal.RecordedSegment]:
        text = (self.directory / EVENT / rendition / "journal.log").read_text()
        return [s for s in journal.replay(text).segments if s.complete and not s.gap]

    def duration(self, rendition: str = "720p") -> float:
        return sum(s.duration for s in self.segments(rendition))


async def record(directory: Path) -> None:
    """About 7 s of the test source with one encoder restart, recorded under ``directory``."""
    config = load_config(None, env={}, overrides={"port": 0, "record": {"dir": str(directory)}})
    async with LivePipeline(config).running() as pipeline:
        await asyncio.sleep(3.0)  # the kill comes in the middle of a segment
        pipeline.source.restart("test: a second encoder run")
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            runs = [_runs(directory / EVENT / r) for r in ("720p", "480p", "360p", "audio")]
            if all(len(complete) >= 2 and complete[-1] >= 2 for complete in runs):
                break
        else:
            pytest.fail("the second encoder run did not record two segments in 20 s")


def _runs(rendition: Path) -> list[int]:
    """Complete segments per encoder run (init segment) of a rendition's journal."""
    path = rendition / "journal.log"
    segments = journal.replay(path.read_text()).segments if path.exists() else []
    counts: dict[str, int] = {}
    for s in segments:
        if s.complete:
            counts[s.init_name] = counts.get(s.init_name, 0) + 1
    return list(counts.values())


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    need("ffmpeg")
    ffprobe = need("ffprobe")
    directory = tmp_path_factory.mktemp("recordings")
    asyncio.run(record(directory))
    return Recorded(directory, ffprobe)


def probe(ffprobe: str, path: Path, *entries: str) -> dict[str, Any]:
    done = subprocess.run(
        [ffprobe, "-v", "error", *entries, "-of", "json", str(path)],
        capture_output=True,
        check=True,
        timeout=30,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def streams(ffprobe: str, path: Path) -> tuple[float, dict[str, dict[str, Any]]]:
    found = probe(ffprobe, path, "-show_format", "-show_streams")
    by_type = {s["codec_type"]: s for s in found["streams"]}
    return float(found["format"]["duration"]), by_type


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ---------------------------------------------------------------------------- what it writes


def test_the_whole_event_with_two_encoder_runs_is_one_mp4_of_its_duration(
    recorded: Recorded, tmp_path: Path
) -> None:
    out = tmp_path / "show.mp4"
    result = export_recording(recorded.directory, EVENT, out)
    assert result.out == out and result.renditions == ("720p", "audio")
    assert result.runs == 2 and result.skipped == 0
    assert result.segments == len(recorded.segments("720p"))
    duration, found = streams(recorded.ffprobe, out)
    assert set(found) == {"video", "audio"}
    assert (found["video"]["codec_name"], found["video"]["height"]) == ("h264", 720)
    assert found["audio"]["codec_name"] == "aac"
    # The export lasts as long as the recording (the pause of the restart is not in either).
    assert abs(duration - recorded.duration()) < SEGMENT
    assert result.duration == pytest.approx(recorded.duration(), abs=1e-6)
    assert abs(float(found["video"]["duration"]) - result.duration) < 0.05
    assert abs(float(found["audio"]["duration"]) - result.duration) < 2 * AAC_FRAME
    assert leftovers(tmp_path) == []  # no temporary file left beside it
    # It decodes from end to end without an error.
    decode = subprocess.run(
        [find_ffmpeg(), "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    assert decode.returncode == 0 and decode.stderr == b"", decode.stderr.decode()


@pytest.mark.parametrize("shortened", ["720p", "audio"])
def test_audio_and_video_of_the_next_run_start_together_after_a_kill(
    recorded: Recorded, tmp_path: Path, shortened: str
) -> None:
    """An encoder killed mid-segment leaves more audio than video in its last segment (measured:
    0.25 s), or less. Made certain here: one track of that segment keeps its first part only
    (as a recovery that found only one part on disk would). Audio beyond the video is cut; audio
    that falls short leaves a hole; either way the next run's audio starts with its video."""
    copy = tmp_path / "copy"
    shutil.copytree(recorded.directory, copy)
    segments = recorded.segments("720p")
    restart = next(i for i, s in enumerate(segments) if s.discontinuity)
    track = recorded.segments(shortened)
    cut = max(i for i in range(restart) if len(track[i].parts) >= 3)
    short = track[cut]
    _keep_first_part(copy / EVENT / shortened, short)
    lost = short.duration - short.parts[0].duration
    out = tmp_path / "show.mp4"
    result = export_recording(copy, EVENT, out)
    boundary = sum(s.duration for s in segments[: cut + 1])  # where run 2 starts in the MP4
    if shortened == "720p":
        boundary -= lost
    assert result.duration == pytest.approx(boundary + sum(s.duration for s in segments[cut + 1 :]))
    entries = "packet=stream_index,pts_time,flags"
    packets = probe(recorded.ffprobe, out, "-show_entries", entries)["packets"]
    video = [float(p["pts_time"]) for p in packets if p["stream_index"] == 0]
    audio = [float(p["pts_time"]) for p in packets if p["stream_index"] == 1]
    keyframes = [
        float(p["pts_time"]) for p in packets if p["stream_index"] == 0 and "K" in p["flags"]
    ]
    assert min(keyframes, key=lambda k: abs(k - boundary)) == pytest.approx(boundary, abs=0.001)
    assert all(b > a for a, b in itertools.pairwise(video))
    assert all(b > a for a, b in itertools.pairwise(audio))  # nothing played twice
    before = [a for a in audio if a < boundary - 0.001]  # ffprobe prints microseconds
    after = [a for a in audio if a >= boundary - 0.001]
    if shortened == "720p":
        assert before[-1] > boundary - 2 * AAC_FRAME  # the killed run's audio reaches the cut
    else:
        assert before[-1] < boundary - lost + AAC_FRAME  # and no further: a hole
    assert after[0] == pytest.approx(boundary, abs=0.002)  # the next run's audio starts there
    _, found = streams(recorded.ffprobe, out)
    assert abs(float(found["audio"]["duration"]) - result.duration) < 2 * AAC_FRAME


def _keep_first_part(rendition: Path, segment: journal.RecordedSegment) -> None:
    """Segment ``segment`` of ``rendition`` as if only its first part had been recorded."""
    path = rendition / segment_name(segment.msn)
    path.write_bytes(path.read_bytes()[: segment.parts[0].size])
    lines = (rendition / "journal.log").read_text().splitlines(keepends=True)
    dropped = [
        line for line in lines if line.startswith(f"part {segment.msn} ") and line.split()[2] != "0"
    ]
    assert len(dropped) == len(segment.parts) - 1
    kept = [line for line in lines if line not in dropped]
    (rendition / "journal.log").write_text("".join(kept))


def test_a_range_of_another_rendition_lasts_the_range_within_one_segment(
    recorded: Recorded, tmp_path: Path
) -> None:
    segments = recorded.segments("360p")
    start = segments[1].pdt + 0.7  # inside the second segment: the export begins where it does
    end = segments[-2].pdt + 0.5  # inside the last but one: cut there
    restart = next(i for i, s in enumerate(segments) if s.discontinuity)
    before = segments[restart - 1]
    pause = segments[restart].pdt - (before.pdt + before.duration)  # the encoder restarting
    if restart < 2 or segments[restart].pdt >= end:
        pause = 0.0  # not within the range
    out = tmp_path / "range.mp4"
    result = export_recording(
        recorded.directory, EVENT, out, rendition="360p", start=start, end=end
    )
    assert result.renditions == ("360p", "audio")
    assert result.segments == len(segments) - 2
    duration, found = streams(recorded.ffprobe, out)
    assert found["video"]["height"] == 360
    assert abs(duration - (end - start - pause)) < SEGMENT  # what was on air in the range
    assert duration == pytest.approx(end - segments[1].pdt - pause, abs=0.05)
    assert duration < recorded.duration("360p") - 2.0  # the range, not the whole event


def test_gaps_and_missing_segments_are_skipped(recorded: Recorded, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(recorded.directory, copy)
    segments = recorded.segments("720p")
    lost = segments[1]
    (copy / EVENT / "720p" / segment_name(lost.msn)).unlink()  # the disk lost it
    result = export_recording(copy, EVENT, tmp_path / "holed.mp4")
    assert result.skipped == 1 and result.segments == len(segments) - 1
    duration, found = streams(recorded.ffprobe, tmp_path / "holed.mp4")
    assert set(found) == {"video", "audio"}
    assert duration == pytest.approx(recorded.duration() - lost.duration, abs=0.05)


def test_the_audio_rendition_alone(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "audio.mp4"
    result = export_recording(recorded.directory, EVENT, out, rendition="audio")
    assert result.renditions == ("audio",)
    duration, found = streams(recorded.ffprobe, out)
    assert set(found) == {"audio"}
    assert abs(duration - recorded.duration("audio")) < SEGMENT


# ---------------------------------------------------------------------------- what it refuses


def test_bad_inputs_are_one_line_store_errors(recorded: Recorded, tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    last = recorded.segments("720p")[-1]
    cases: list[tuple[tuple[Path, str, Path], dict[str, Any], str]] = [
        ((tmp_path / "nowhere", EVENT, out), {}, "no recording directory: .* does not exist"),
        ((recorded.directory, "other", out), {}, r"no recorded event 'other' .*recorded: main\)"),
        ((recorded.directory, "../main", out), {}, "is not an event id"),
        ((recorded.directory, EVENT, out), {"rendition": "1080p"}, "no rendition '1080p'"),
        (
            (recorded.directory, EVENT, out),
            {"start": last.pdt + last.duration + 10},
            "is after the recording ends",
        ),
        (
            (recorded.directory, EVENT, out),
            {"start": last.pdt, "end": last.pdt - 1},
            "must be after start",
        ),
        ((recorded.directory, EVENT, tmp_path), {}, "cannot write .*: it is a directory"),
        (
            (recorded.directory, EVENT, tmp_path / "a-file" / "out.mp4"),
            {},
            "cannot write .*a-file is not a directory",
        ),
        (
            (recorded.directory, EVENT, tmp_path / "no-dir" / "out.mp4"),
            {},
            "cannot write .*no-dir does not exist",
        ),
    ]
    (tmp_path / "a-file").write_text("not a directory")
    for args, options, reason in cases:
        with pytest.raises(StoreError, match=reason) as raised:
            export_recording(*args, **options)
        assert "\n" not in str(raised.value)
    assert not out.exists()


def test_a_failed_export_leaves_the_previous_file_and_no_temporary(
    recorded: Recorded, tmp_path: Path
) -> None:
    out = tmp_path / "show.mp4"
    out.write_bytes(b"the previous export")
    with pytest.raises(TranscodeError, match="could not remux"):
        export_recording(recorded.directory, EVENT, out, ffmpeg=shutil.which("false"))
    assert out.read_bytes() == b"the previous export"
    assert leftovers(tmp_path) == []
    result = export_recording(recorded.directory, EVENT, out)  # replaced in one rename
    assert result.out.stat().st_size > 100_000 and leftovers(tmp_path) == []
