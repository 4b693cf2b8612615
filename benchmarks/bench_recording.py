"""Recording: what writing every part to disk costs the packager, and what a 2-hour DVR playlist
costs the origin, each against its peer in the same run.

**Write path** (per part). A :class:`~livecast.packager.event.LiveEvent` is fed a synthetic ladder
as the encoder would, paced at ``speed`` × real time (1 = real time): 720p/480p/360p video at
2,500/1,200/600 kb/s in one 1/3 s fragment per part (30 fps, a keyframe every 2 s) and 128 kb/s
AAC in one-frame fragments, 2 s segments, into a temporary directory (``--dir`` picks the disk).
Each ``on_fragment`` call that completes a part is timed (``perf_counter_ns``) — the packager's
cutting plus the store's ``put_part`` (and, once a segment, ``put_segment`` + retiring): the whole
write path of a part. Rows, one after the other, interleaved over ``rounds`` rounds:

* ``ram`` (the peer): the RAM ring only (``LiveEvent``'s default store);
* ``off``: :class:`~livecast.store.archive.Recording` with ``fsync = "off"``;
* ``segment`` (the default): fsync of each completed segment, the journal and the playlist index
  on a background thread — the event loop does not wait, so the thread's own time per segment
  (and how long after its submission it was done) is reported as well: that is the disk's true
  cost, paid off the loop;
* ``part``: fsync of every part and the journal inline, before ``put_part`` returns.

The first segment of each row is warm-up (files created, init segments written) and not counted.
The same rows are then fed back to back (no pacing): in real time every part is the first call
after an idle wait and pays for cold caches (≈ 70 µs on this machine, in every row alike), which
the back-to-back pass leaves out — the store's own cost per part, warm.

**DVR playlist render.** A recording of 2 hours (3,600 segments of 2 s) is built in seconds by
feeding the same ladder with tiny samples (the render does not depend on the media's size, only on
the segment count) with media time as the clock (PDT = epoch + media time: no sleeps). Then, in the
same run, timed ``repeat`` times each:

* ``LiveRendition.recorded_playlist(start=live end − 2 h, dvr_window=2 h)``: a start-over playlist
  over the whole DVR window (header + one ``pread`` of the pre-rendered body);
* the live playlist (the peer): ``LiveEvent.media_playlist_bytes`` of the 30 s live window with
  parts and rendition reports, the version bumped before each call so that it is rendered anew
  (what the origin does once per published part);
* for reference, what the index avoids: ``render_media_playlist`` of the same 3,600 segments held
  as ``SegmentEntry`` objects in memory.

    python benchmarks/bench_recording.py [--seconds 20] [--rounds 2] [--speed 1] [--dvr-hours 2]
    python benchmarks/bench_recording.py --quick      # a few seconds: the smoke run
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

from livecast.hls.playlist import MediaPlaylist, SegmentEntry, render_media_playlist  # noqa: E402
from livecast.media import boxes  # noqa: E402
from livecast.media.fmp4 import FMP4StreamReader, Fragment, InitSegment  # noqa: E402
from livecast.packager.cutter import PartCut, SegmentCut  # noqa: E402
from livecast.packager.event import LiveEvent, RenditionSpec  # noqa: E402
from livecast.packager.live import PackagingConfig  # noqa: E402
from livecast.store.archive import Recording, Syncer  # noqa: E402
from livecast.store.contract import Store, segment_name  # noqa: E402

FPS = 30
FRAMES_PER_PART = 10  # 1/3 s video parts, one fragment each (as the ladder asks FFmpeg)
GOP = 2 * FPS
TIMESCALE = 15360
AUDIO_RATE = 48000
AAC_FRAME = 1024
SEGMENT = 2.0
PART_TARGET = 0.33334  # declared_part_target(1/3)
WINDOW = 30.0
EPOCH = 1_764_000_000.0
WARMUP = SEGMENT  # media seconds not counted at the start of each row
# name → (width, height, bits/s); audio is AAC at AUDIO_BPS
LADDER = {
    "720p": (1280, 720, 2_500_000),
    "480p": (854, 480, 1_200_000),
    "360p": (640, 360, 600_000),
}
AUDIO_BPS = 128_000
MODES = ("ram", "off", "segment", "part")
Schedule = list[tuple[float, str, Fragment]]  # (media end, rendition, fragment), in feed order


# ---------------------------------------------------------------------------- synthetic ladder
def _read(data: bytes, init: bytes | None = None) -> InitSegment | Fragment:
    reader = FMP4StreamReader()
    if init is not None:
        reader.feed(init)
    (item,) = reader.feed(data)
    return item


class Ladder:
    """Init segments and fragments of the ladder; ``scale`` shrinks every sample (DVR build)."""

    def __init__(self, scale: float = 1.0, audio_frames: int = 1) -> None:
        self.audio_frames = audio_frames  # AAC frames per audio fragment
        self.init_bytes: dict[str, bytes] = {}
        self.sample: dict[str, int] = {}
        for name, (width, height, bps) in LADDER.items():
            self.init_bytes[name] = boxes.init_segment(
                "video", timescale=TIMESCALE, width=width, height=height
            )
            self.sample[name] = max(1, round(bps * scale / 8 / FPS))
        self.init_bytes["audio"] = boxes.init_segment("audio", timescale=AUDIO_RATE)
        self.sample["audio"] = max(1, round(AUDIO_BPS * scale / 8 * AAC_FRAME / AUDIO_RATE))

    def inits(self) -> dict[str, InitSegment]:
        out = {}
        for name, data in self.init_bytes.items():
            item = _read(data)
            assert isinstance(item, InitSegment)
            out[name] = item
        return out

    def video(self, name: str, index: int) -> Fragment:
        first = index * FRAMES_PER_PART
        data = boxes.fragment(
            sequence=index + 1,
            decode_time=first * (TIMESCALE // FPS),
            sample_durations=[TIMESCALE // FPS] * FRAMES_PER_PART,
            sample_sizes=[self.sample[name]] * FRAMES_PER_PART,
            first_is_sync=first % GOP == 0,
        )
        item = _read(data, self.init_bytes[name])
        assert isinstance(item, Fragment)
        return item

    def audio(self, index: int) -> Fragment:
        frames = self.audio_frames
        data = boxes.fragment(
            sequence=index + 1,
            decode_time=index * frames * AAC_FRAME,
            sample_durations=[AAC_FRAME] * frames,
            sample_sizes=[self.sample["audio"]] * frames,
            first_is_sync=True,
        )
        item = _read(data, self.init_bytes["audio"])
        assert isinstance(item, Fragment)
        return item

    def schedule(self, seconds: float) -> Iterator[tuple[float, str, Fragment]]:
        """Every fragment ending by ``seconds`` of media time, in the order an encoder emits
        them (by end time, audio first on a tie)."""
        video_index = audio_index = 0
        audio_seconds = self.audio_frames * AAC_FRAME / AUDIO_RATE
        while True:
            video_end = (video_index + 1) * FRAMES_PER_PART / FPS
            audio_end = (audio_index + 1) * audio_seconds
            if min(video_end, audio_end) > seconds + 1e-9:
                return
            if audio_end <= video_end:
                yield audio_end, "audio", self.audio(audio_index)
                audio_index += 1
            else:
                for name in LADDER:
                    yield video_end, name, self.video(name, video_index)
                video_index += 1


def make_event(store: Store | None) -> LiveEvent:
    config = PackagingConfig(part_target=PART_TARGET, segment_duration=SEGMENT, window=WINDOW)
    specs = [RenditionSpec(name, "video") for name in LADDER]
    return LiveEvent(config, [*specs, RenditionSpec("audio", "audio")], store=store)


def start(event: LiveEvent, ladder: Ladder) -> None:
    event.start_generation(0, EPOCH)
    for name, init in ladder.inits().items():
        event.on_init(name, init)


# ---------------------------------------------------------------------------- write path
class TimedSyncer(Syncer):
    """The recording's fsync thread, timing every call it runs (in submission order)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[float, float]] = []  # (run time, submission → done), seconds

    def submit(self, call: Callable[[], None]) -> None:
        queued = time.perf_counter()

        def timed() -> None:
            began = time.perf_counter()
            try:
                call()
            finally:
                done = time.perf_counter()
                self.calls.append((done - began, done - queued))

        super().submit(timed)


def feed(
    mode: str, schedule: Schedule, ladder: Ladder, directory: Path, speed: float
) -> dict[str, Any]:
    """One row: the event fed ``schedule`` paced at ``speed`` × real time (0: back to back);
    what each part cost."""
    recording: Recording | None = None
    syncer: TimedSyncer | None = None
    if mode != "ram":
        recording = Recording(directory, fsync=mode)
        recording.syncer.close()  # replaced before any rendition is opened (no thread started)
        recording.syncer = syncer = TimedSyncer()
    event = make_event(recording)
    start(event, ladder)
    parts: dict[str, list[int]] = {name: [] for name in [*LADDER, "audio"]}
    closing: list[int] = []  # parts that also completed their segment
    began = time.perf_counter()
    for end, name, fragment in schedule:
        wait = began + end / speed - time.perf_counter() if speed > 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        t0 = time.perf_counter_ns()
        cuts = event.on_fragment(name, fragment)
        took = time.perf_counter_ns() - t0
        if end <= WARMUP + 1e-9 or not any(isinstance(c, PartCut) for c in cuts):
            continue
        parts[name].append(took)
        if any(isinstance(c, SegmentCut) for c in cuts):
            closing.append(took)
    fed_s = time.perf_counter() - began
    event.end()
    written = 0
    if recording is not None:
        closed = time.perf_counter()
        recording.close()  # waits for the fsync thread
        written = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        shutil.rmtree(directory)
        drain = time.perf_counter() - closed
    else:
        drain = 0.0
    return {
        "parts_ns": parts,
        "closing_ns": closing,
        "syncer": syncer.calls if syncer else [],
        "written_bytes": written,
        "close_s": drain,
        "fed_s": fed_s,
    }


def _stats_us(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    if not ordered:
        return {"n": 0, "median": float("nan"), "p95": float("nan"), "mean": float("nan")}
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {
        "n": len(ordered),
        "median": statistics.median(ordered) / 1000,
        "p95": p95 / 1000,
        "mean": statistics.fmean(ordered) / 1000,
    }


def _stats_ms(samples_s: list[float]) -> dict[str, float]:
    in_us = _stats_us([round(s * 1e9) for s in samples_s])
    return {k: v if k == "n" else v / 1000 for k, v in in_us.items()}


def measure_write_path(
    seconds: float, rounds: int, speed: float, directory: str | None
) -> dict[str, Any]:
    ladder = Ladder()
    schedule = list(ladder.schedule(seconds))
    media_bytes = {
        name: sum(len(f.data) for _, n, f in schedule if n == name) for name in [*LADDER, "audio"]
    }
    pooled: dict[str, dict[str, Any]] = {
        mode: {
            "parts_ns": {},
            "closing_ns": [],
            "syncer": [],
            "written_bytes": 0,
            "close_s": [],
            "fed_s": 0.0,
        }
        for mode in MODES
    }
    ticks = machine_ticks()
    with tempfile.TemporaryDirectory(prefix="livecast-recording-", dir=directory) as tmp:
        for round_ in range(rounds):
            for mode in MODES:
                fed = feed(mode, schedule, ladder, Path(tmp) / f"{mode}-{round_}", speed)
                into = pooled[mode]
                for name, samples in fed["parts_ns"].items():
                    into["parts_ns"].setdefault(name, []).extend(samples)
                into["closing_ns"].extend(fed["closing_ns"])
                into["syncer"].extend(fed["syncer"])
                into["written_bytes"] += fed["written_bytes"]
                into["close_s"].append(fed["close_s"])
                into["fed_s"] += fed["fed_s"]
    machine_busy = busy_between(ticks, machine_ticks())
    rows: dict[str, Any] = {}
    for mode, into in pooled.items():
        every = [s for samples in into["parts_ns"].values() for s in samples]
        row: dict[str, Any] = {
            "all": _stats_us(every),
            "by_rendition": {n: _stats_us(s) for n, s in into["parts_ns"].items()},
            "segment_closing": _stats_us(into["closing_ns"]),
            "written_bytes": into["written_bytes"],
            "close_s": into["close_s"],
        }
        calls = into["syncer"]
        if calls:  # two calls per rendition-segment: the segment file, then journal + index
            pairs = list(zip(calls[0::2], calls[1::2], strict=True))
            run_s = [a[0] + b[0] for a, b in pairs]
            row["fsync_thread"] = {
                "segments": len(pairs),
                "per_segment_ms": _stats_ms(run_s),
                "segment_file_ms": _stats_ms([a[0] for a, _ in pairs]),
                "journal_index_ms": _stats_ms([b[0] for _, b in pairs]),
                "done_after_submit_ms": _stats_ms([b[1] for _, b in pairs]),
                "busy_share": sum(run_s) / into["fed_s"],
            }
        rows[mode] = row
    peer = rows["ram"]["all"]
    for row in rows.values():
        row["ratio_median"] = row["all"]["median"] / peer["median"]
        row["ratio_p95"] = row["all"]["p95"] / peer["p95"]
        row["ratio_mean"] = row["all"]["mean"] / peer["mean"]
    return {
        "seconds": seconds,
        "rounds": rounds,
        "speed": speed,
        "directory": directory or tempfile.gettempdir(),
        "machine_busy": machine_busy,
        "media_kbps": {n: round(8 * b / seconds / 1000) for n, b in media_bytes.items()},
        "part_bytes": {n: round(b / (seconds * 3)) for n, b in media_bytes.items()},
        "rows": rows,
    }


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_between(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else float("nan")


# ---------------------------------------------------------------------------- DVR playlist
def _time_ns(call: Callable[[], object], repeat: int) -> list[int]:
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        call()
        samples.append(time.perf_counter_ns() - t0)
    return samples


def measure_dvr(hours: float, repeat: int, directory: str | None) -> dict[str, Any]:
    dvr_window = hours * 3600
    rendition_name = "720p"
    # Tiny samples; 15 AAC frames per audio fragment (0.32 s: one per part) keep the build short.
    ladder = Ladder(scale=0.001, audio_frames=15)
    with tempfile.TemporaryDirectory(prefix="livecast-dvr-", dir=directory) as tmp:
        recording = Recording(Path(tmp), fsync="off")
        event = make_event(recording)
        event.dvr_window = dvr_window
        start(event, ladder)
        built = time.perf_counter()
        fed = 0
        for _, name, fragment in ladder.schedule(dvr_window + WINDOW):
            event.on_fragment(name, fragment)
            fed += 1
        build_s = time.perf_counter() - built
        rendition = event.renditions[rendition_name]
        recorded = rendition.recorded_range()
        assert recorded is not None
        begin = recorded[1] - dvr_window

        def dvr() -> bytes:
            return rendition.recorded_playlist(begin, None, dvr_window=event.dvr_window)

        def live() -> bytes:
            event.version += 1  # a new version: rendered anew, as after every published part
            return event.media_playlist_bytes(rendition_name)

        index = rendition.recording.index if rendition.recording else None
        assert index is not None
        head = index.find_pdt(begin)
        records = [index.record(i) for i in range(head, index.count)]
        in_memory = MediaPlaylist(
            target_duration=event.config.target_duration,
            media_sequence=records[0].msn,
            playlist_type="EVENT",
            segments=[
                SegmentEntry(uri=segment_name(r.msn), duration=r.duration, pdt=r.pdt)
                for r in records
            ],
        )

        def naive() -> bytes:
            return render_media_playlist(in_memory).encode()

        dvr_bytes, live_bytes = dvr(), live()
        calls: dict[str, Callable[[], object]] = {"dvr": dvr, "live": live, "naive": naive}
        samples: dict[str, list[int]] = {name: [] for name in calls}
        for _ in range(4):  # interleaved quarters, against drift
            for name, call in calls.items():
                samples[name] += _time_ns(call, max(1, repeat // 4))
        timed = {name: _stats_us(s) for name, s in samples.items()}
        recording.close()
    return {
        "hours": hours,
        "build_s": build_s,
        "fragments_fed": fed,
        "rendition": rendition_name,
        "dvr_segments": dvr_bytes.count(b"#EXTINF"),
        "dvr_bytes": len(dvr_bytes),
        "live_segments": live_bytes.count(b"#EXTINF"),
        "live_parts": live_bytes.count(b"#EXT-X-PART:"),
        "live_bytes": len(live_bytes),
        "naive_bytes": len(naive()),
        "dvr_us": timed["dvr"],
        "live_us": timed["live"],
        "naive_us": timed["naive"],
        "ratio_dvr_live": timed["dvr"]["median"] / timed["live"]["median"],
        "ratio_naive_dvr": timed["naive"]["median"] / timed["dvr"]["median"],
    }


# ---------------------------------------------------------------------------- run / report
def run(
    seconds: float = 20.0,
    rounds: int = 2,
    speed: float = 1.0,
    dvr_hours: float = 2.0,
    repeat: int = 400,
    directory: str | None = None,
) -> dict[str, Any]:
    return {
        "write": measure_write_path(seconds, rounds, speed, directory),
        "write_back_to_back": measure_write_path(seconds, rounds, 0.0, directory),
        "dvr": measure_dvr(dvr_hours, repeat, directory),
    }


def report(figures: dict[str, Any]) -> str:
    lines = _write_lines(figures["write"])
    if "write_back_to_back" in figures:
        lines += _write_lines(figures["write_back_to_back"])
    return "\n".join(lines + _dvr_lines(figures["dvr"]))


def _write_lines(write: dict[str, Any]) -> list[str]:
    kbps = ", ".join(f"{n} {v:,}" for n, v in write["media_kbps"].items())
    pace = f"at {write['speed']:g}× real time" if write["speed"] > 0 else "back to back (unpaced)"
    lines = [
        f"write path per part (on_fragment that completes a part: packager + store), µs; "
        f"{write['rounds']} × {write['seconds']:g} s of media per row {pace} into "
        f"{write['directory']}; kb/s {kbps}; machine busy {write['machine_busy']:.0%} "
        "(every process)",
        f"  {'row':<8} {'parts':>6} {'median':>8} {'p95':>8} {'mean':>8}  "
        f"{'× ram median / p95 / mean':>26}  {'segment-closing part median':>28}",
    ]
    for mode, row in write["rows"].items():
        a = row["all"]
        lines.append(
            f"  {mode:<8} {a['n']:>6} {a['median']:>8.0f} {a['p95']:>8.0f} {a['mean']:>8.0f}  "
            f"{row['ratio_median']:>8.2f} / {row['ratio_p95']:>5.2f} / {row['ratio_mean']:>5.2f}  "
            f"{row['segment_closing']['median']:>28.0f}"
        )
    names = list(write["rows"]["ram"]["by_rendition"])
    medians = "; ".join(
        f"{name} "
        + " / ".join(f"{row['by_rendition'][name]['median']:.0f}" for row in write["rows"].values())
        for name in names
    )
    lines.append(f"  median by rendition ({' / '.join(write['rows'])}): {medians}")
    thread = write["rows"]["segment"].get("fsync_thread")
    if thread:
        per, lag = thread["per_segment_ms"], thread["done_after_submit_ms"]
        lines.append(
            f"  fsync thread (segment): {thread['segments']} rendition-segments, "
            f"{per['median']:.1f} ms median / {per['p95']:.1f} ms p95 each (segment file "
            f"{thread['segment_file_ms']['median']:.1f} + journal and index "
            f"{thread['journal_index_ms']['median']:.1f} ms); done {lag['median']:.1f} / "
            f"{lag['p95']:.1f} ms after submission; thread time / feeding time "
            f"{thread['busy_share']:.1%}"
        )
    return lines


def _dvr_lines(dvr: dict[str, Any]) -> list[str]:
    d, lv, nv = dvr["dvr_us"], dvr["live_us"], dvr["naive_us"]
    return [
        f"playlist render, {dvr['rendition']}, µs (median / p95 of {d['n']}); recording of "
        f"{dvr['hours']:g} h built in {dvr['build_s']:.1f} s ({dvr['fragments_fed']:,} fragments)",
        f"  DVR {dvr['hours']:g} h recorded_playlist: {d['median']:.0f} / {d['p95']:.0f}  "
        f"({dvr['dvr_segments']:,} segments, {dvr['dvr_bytes'] / 1024:.0f} KB)",
        f"  live 30 s media_playlist_bytes (peer): {lv['median']:.0f} / {lv['p95']:.0f}  "
        f"({dvr['live_segments']} segments, {dvr['live_parts']} parts, "
        f"{dvr['live_bytes'] / 1024:.1f} KB)",
        f"  ratio DVR / live: {dvr['ratio_dvr_live']:.2f}×",
        f"  for reference, the same DVR segments rendered from memory (render_media_playlist): "
        f"{nv['median']:.0f} / {nv['p95']:.0f} = {dvr['ratio_naive_dvr']:.0f}× the index",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="media per row and round")
    parser.add_argument("--rounds", type=int, default=2, help="rows interleaved this many times")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="× real time for the paced pass (1 = real time)"
    )
    parser.add_argument("--dvr-hours", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=400, help="renders timed per playlist")
    parser.add_argument("--dir", default=None, help="where to record (default: the temp dir)")
    parser.add_argument("--quick", action="store_true", help="a few seconds (smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        figures = run(**QUICK, directory=args.dir)
    else:
        figures = run(args.seconds, args.rounds, args.speed, args.dvr_hours, args.repeat, args.dir)
    print(report(figures))
    return 0


QUICK: dict[str, Any] = {"seconds": 4.0, "rounds": 1, "speed": 4.0, "dvr_hours": 0.25, "repeat": 50}

if __name__ == "__main__":
    sys.exit(main())
