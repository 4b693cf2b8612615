"""The ``livecast`` command: a thin entry point over the pipeline and the probe.

  livecast demo  [--host H] [--port P]      live event from the built-in test source
                 [--source test|loop]       (loop: pre-encoded once, replayed as live)
  livecast serve --config event.toml        the same, from a config file
                 [--epoch E]                (loop: media time 0 at Unix time E; replicas
                                            given the same E serve identical bytes)
                 [--record-dir D]           (record under D: DVR, VOD at the same URLs)
  livecast event stop EVENT [--config F | --record-dir D]
                                            end a recorded event (EXT-X-ENDLIST, VOD)
  livecast export EVENT OUT.mp4 [--rendition R] [--start T] [--end T] [--config F | --record-dir D]
                                            remux a recording (or a range) to one MP4
  livecast probe URL [--seconds N] [--json] join an LL-HLS stream, report startup and latency
  livecast token issue|verify|keygen …      signed playback tokens (docs/access.md)
  livecast up [--edges K] [--shield] [--port P] [--config FILE] [--origin-port N]
              [--source test|loop|rtmp] [--origins N]
                                            origin(s) + nginx edges ([edge] in the config
                                            file); --origins N ≥ 2: N epoch-locked loop
                                            or rtmp origins (the encoder publishes to
                                            each), the edges fail over between them;
                                            prints one URL per edge

SIGTERM ends the event being served (EXT-X-ENDLIST; a recording becomes VOD), then the server
exits after ``record.end_linger`` seconds; SIGINT (Ctrl-C) only stops the server: a recorded event
continues where it was at the next start. ``demo`` records under ./recordings (or
$LIVECAST_RECORD_DIR); an ended demo recording is moved aside to main-<time> at the next start.

Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from livecast import __version__
from livecast.config import SOURCES, EventConfig, load_config
from livecast.errors import ConfigError, LivecastError

if TYPE_CHECKING:
    from livecast.rehearse.locust_engine import LocustOptions

log = logging.getLogger("livecast")
DEMO_RECORD_DIR = "recordings"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livecast", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"livecast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run a live event from the built-in test source")
    demo.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=None, help="port (default 8080)")
    demo.add_argument("--part-duration", type=float, default=None, help="seconds, 0.2–1")
    serve = sub.add_parser("serve", help="run a live event from a config file")
    serve.add_argument("--config", required=True, help="event TOML file (docs/configuration.md)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--epoch",
        type=float,
        default=None,
        help="loop source: Unix time of media time 0 (0: now); origins given the same epoch "
        "serve the same bytes under the same names",
    )
    for command in (demo, serve):
        command.add_argument(
            "--source", choices=SOURCES, default=None, help="test (live encode) or loop (replay)"
        )
        command.add_argument("--record-dir", default=None, help="record under this directory")
    event = sub.add_parser("event", help="act on a recorded event: stop (end it, VOD)")
    event.add_argument("action", choices=["stop"])
    event.add_argument("event", help="event id (main, or an [[events]] id)")
    event.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the end")
    export = sub.add_parser("export", help="remux a recorded event to one MP4 (no re-encode)")
    export.add_argument("event", help="event id (main, or an [[events]] id)")
    export.add_argument("out", help="the MP4 file to write")
    export.add_argument("--rendition", default=None, help="video rendition (default: the best)")
    export.add_argument("--start", default=None, help="RFC 3339 or Unix seconds")
    export.add_argument("--end", default=None, help="RFC 3339 or Unix seconds")
    for command in (event, export):
        command.add_argument("--config", default=None, help="the event file ([record] dir)")
        command.add_argument("--record-dir", default=None, help="the recording directory")
    up = sub.add_parser("up", help="origin, optional shield and K nginx edges (docs/edge.md)")
    up.add_argument("--edges", type=int, default=None, help="nginx edges (default 2, [edge])")
    up.add_argument(
        "--shield", action="store_true", default=None, help="a shield between edges and origin"
    )
    up.add_argument("--port", type=int, default=None, help="first edge's port (8081; 0: any)")
    up.add_argument("--config", default=None, help="event TOML file (docs/configuration.md)")
    up.add_argument("--origin-port", type=int, default=None, help="origin port (default 8080)")
    up.add_argument("--source", choices=SOURCES, default=None, help="test (live encode) or loop")
    up.add_argument(
        "--origins",
        type=int,
        default=None,
        help="origin processes (default 1, [edge]); ≥ 2: epoch-locked, loop or rtmp source",
    )
    up.add_argument(
        "--prometheus-targets",
        default=None,
        metavar="FILE",
        help="write Prometheus file_sd targets (origins, shield, edges) here while running",
    )
    rehearse = sub.add_parser(
        "rehearse",
        help="dress rehearsal: virtual viewers against the stack, GO/NO-GO",
        description="livecast rehearse SCENARIO.toml --out DIR | "
        "livecast rehearse compare A/results.json B/results.json",
    )
    rehearse.add_argument("what", nargs="+", help="SCENARIO.toml, or: compare A.json B.json")
    rehearse.add_argument("--out", default=None, help="directory for results.json + report.html")
    rehearse.add_argument(
        "--engine",
        choices=("driver", "locust"),
        default="driver",
        help="driver: local asyncio driver processes; locust: Locust master/workers",
    )
    rehearse.add_argument(
        "--workers",
        type=int,
        default=None,
        help="driver processes (overrides the scenario's workers); locust: workers to start, "
        "or with --master-bind to wait for",
    )
    rehearse.add_argument(
        "--master-bind", default=None, help="locust: HOST:PORT to wait for remote workers at"
    )
    rehearse.add_argument(
        "--connect-timeout",
        type=float,
        default=None,
        help="locust: seconds the master waits for its workers (default 120)",
    )
    rehearse.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve livecast_rehearsal_* at http://127.0.0.1:PORT/metrics (0: any free port)",
    )
    rehearse.add_argument(
        "--dashboard-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve the live dashboard at http://127.0.0.1:PORT/ (0: any free port)",
    )
    dashboard = sub.add_parser(
        "dashboard",
        help="live web page of Prometheus endpoints: viewers, QoE, per-tier load (SSE)",
        description="livecast dashboard --port P --scrape URL [--scrape URL …] (docs/dashboard.md)",
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to serve the page on")
    dashboard.add_argument("--port", type=int, default=8090, help="port of the page (0: any)")
    dashboard.add_argument(
        "--scrape",
        action="append",
        default=[],
        metavar="URL",
        help="a Prometheus text endpoint, scraped once a second (repeatable)",
    )
    worker = sub.add_parser(
        "rehearse-worker",
        help="a Locust worker of a distributed rehearsal (livecast rehearse --engine locust)",
        add_help=False,  # its own parser (livecast.rehearse.locust_worker) answers --help
    )
    worker.add_argument("worker_args", nargs=argparse.REMAINDER)
    simulate = sub.add_parser(
        "simulate",
        help="the scenario carried to millions of viewers by a calibrated model, GO/NO-GO",
        description="livecast simulate SCENARIO.toml --out DIR (docs/simulation.md)",
    )
    simulate.add_argument("scenario", help="a rehearsal scenario with its [simulate] table")
    simulate.add_argument("--out", required=True, help="directory for results.json + report.html")
    from livecast.access import token_cli
    from livecast.simulate import calibrate, sweep

    token_cli.add_parser(sub)
    calibrate.add_parser(sub)
    sweep.add_parser(sub)
    probe = sub.add_parser("probe", help="follow an LL-HLS stream and report startup/latency")
    probe.add_argument("url", help="multivariant or media playlist URL")
    probe.add_argument("--seconds", type=float, default=10.0)
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    probe.add_argument("--rendition", default=None, help="variant URI or resolution to follow")
    return parser


def _record_dir(config_file: str | None, record_dir: str | None) -> Path:
    """The recording directory a command acts on: --record-dir, else the config's (or the
    environment's, or the demo's ./recordings)."""
    if record_dir:
        return Path(record_dir)
    config = load_config(config_file)
    return config.record.path if config.record.enabled else Path(DEMO_RECORD_DIR)


def _event_stop(args: argparse.Namespace) -> int:
    import time

    from livecast.store import control

    directory = _record_dir(args.config, args.record_dir)
    control.request_end(directory, args.event)
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        if control.ended(directory, args.event):
            print(f"event {args.event} ended: its recording is VOD at the same URLs")
            return 0
        time.sleep(0.2)
    print(
        f"livecast: the end of {args.event} was requested, but no server ended it within "
        f"{args.timeout:g} s (is it being served with --record-dir {directory}?)",
        file=sys.stderr,
    )
    return 1


def _export(args: argparse.Namespace) -> int:
    from livecast.errors import RequestError
    from livecast.origin.dvr import parse_time
    from livecast.store.export import export_recording

    try:
        start = parse_time("--start", args.start) if args.start else None
        end = parse_time("--end", args.end) if args.end else None
    except RequestError as exc:
        print(f"livecast export: {exc}", file=sys.stderr)
        return 2
    directory = _record_dir(args.config, args.record_dir)
    ffmpeg = load_config(args.config).ffmpeg or None if args.config else None
    result = export_recording(
        directory,
        args.event,
        Path(args.out),
        rendition=args.rendition,
        start=start,
        end=end,
        ffmpeg=ffmpeg,
    )
    print(f"{result.out}: {result.duration:.1f} s ({', '.join(result.renditions)})")
    return 0


def _demo_recording(config: EventConfig) -> EventConfig:
    """The demo records (./recordings unless $LIVECAST_RECORD_DIR says otherwise); an ended
    recording of its event is moved aside, so that each demo after an end is a new show."""
    import dataclasses
    import os

    from livecast.packager.event import DEFAULT_STREAM
    from livecast.store import control
    from livecast.store.settings import RECORD_DIR_ENV

    if RECORD_DIR_ENV not in os.environ and not config.record.enabled:
        record = dataclasses.replace(config.record, dir=DEMO_RECORD_DIR)
        config = dataclasses.replace(config, record=record)
    if config.record.enabled:
        moved = control.move_aside_if_ended(config.record.path, DEFAULT_STREAM)
        if moved is not None:
            log.info("the previous demo ended: its recording is now event %s", moved.name)
    return config


async def _run_event(config: EventConfig) -> int:
    from livecast.ingest.keys import fingerprint
    from livecast.pipeline import LivePipeline, stop_on_signals

    pipeline = LivePipeline(config)
    with stop_on_signals() as stop:
        waits = pipeline.waits_for_encoder
        log.info("waiting for the encoder…" if waits else "waiting for the first segments…")
        async with pipeline.running(ready=not waits):
            print(pipeline.playlist_url, flush=True)
            print(pipeline.player_url, flush=True)
            for url in pipeline.ingest_urls:
                print(url, flush=True)
            if waits:
                log.info(
                    "publish to %s with the event's stream key (%s, fingerprint %s)",
                    " or ".join(pipeline.ingest_urls),
                    "the SRT passphrase" if config.source == "srt" else "the RTMP stream key",
                    fingerprint(config.ingest.stream_key),
                )
            for extra in config.events:
                log.info(
                    "event %s: %s/live/%s/main.m3u8 (stream key fingerprint %s)",
                    extra.id, pipeline.base_url, extra.id, fingerprint(extra.stream_key),
                )  # fmt: skip
            log.info(
                "live: parts of %.3f s, segments of %.1f s; Ctrl-C stops",
                pipeline.ladder.part_duration,
                pipeline.ladder.segment_duration,
            )
            if not await pipeline.serve_until(stop):
                log.error("the source gave up; stopping")
                return 1
            if stop.ends_event:
                await pipeline.end_events()
                log.info("SIGTERM: the event ended; serving %g s more", config.record.end_linger)
                await asyncio.sleep(config.record.end_linger)
            else:
                pipeline.end_on_stop = False  # a recording continues at the next start
            log.info("stopping")
            return 0


def _run(coro_factory: object) -> int:
    from livecast.origin.wire import install_uvloop

    install_uvloop()
    assert callable(coro_factory)
    return int(asyncio.run(coro_factory()))


def _rehearse_worker(args: list[str]) -> int:
    """A fresh interpreter: gevent patches the standard library before anything is imported."""
    import os

    command = [sys.executable, "-m", "livecast.rehearse.locust_worker", *args]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
    return 2  # not reached


def _locust_options(
    args: argparse.Namespace, scenario_path: str, scenario_workers: int
) -> LocustOptions | None:
    """The Locust engine's options (workers: --workers, else the scenario's, else one per core);
    LivecastError for a flag that does not fit the engine."""
    import hashlib
    import os

    from livecast.rehearse.locust_engine import DEFAULT_WAIT, LocustOptions
    from livecast.rehearse.locust_shape import parse_address

    if args.engine != "locust":
        for flag, value in (("--master-bind", args.master_bind),
                            ("--connect-timeout", args.connect_timeout)):  # fmt: skip
            if value is not None:
                raise LivecastError(f"{flag} needs --engine locust")
        return None
    bind = parse_address(args.master_bind, "--master-bind") if args.master_bind else None
    timeout = DEFAULT_WAIT if args.connect_timeout is None else args.connect_timeout
    try:
        sha = hashlib.sha256(Path(scenario_path).read_bytes()).hexdigest()
    except OSError as exc:
        raise ConfigError("scenario", f"cannot read {scenario_path}: {exc}") from exc
    workers = args.workers if args.workers is not None else scenario_workers or os.cpu_count() or 1
    return LocustOptions(workers, bind, timeout, sha).validate()


def _rehearse(args: argparse.Namespace) -> int:
    """0 GO / no regression, 1 NO-GO / regression, 2 could not run / unusable input."""
    what: list[str] = args.what
    out: str | None = args.out
    if what[0] == "compare":
        from livecast.results.compare import compare_files, render_table

        if len(what) != 3:
            print(
                "livecast rehearse compare: give A/results.json and B/results.json", file=sys.stderr
            )
            return 2
        comparison = compare_files(Path(what[1]), Path(what[2]))
        print(render_table(comparison))
        return comparison.exit_code
    if len(what) != 1 or out is None:
        print(
            "livecast rehearse: usage: livecast rehearse SCENARIO.toml --out DIR", file=sys.stderr
        )
        return 2
    from livecast import accel
    from livecast.rehearse.runner import rehearse
    from livecast.scenario.file import load_scenario

    scenario = load_scenario(what[0])
    if accel.state() != "compiled":  # a third more CPU per viewer (docs/rehearsal.md)
        print(f"livecast rehearse: viewers run {accel.state()}", file=sys.stderr)
    try:
        locust = _locust_options(args, what[0], scenario.workers)
    except ConfigError:
        raise
    except LivecastError as exc:
        print(f"livecast rehearse: {exc}", file=sys.stderr)
        return 2
    if args.workers is not None and locust is None:
        if args.workers < 0:
            print(f"livecast rehearse: --workers {args.workers} is negative", file=sys.stderr)
            return 2
        scenario = dataclasses.replace(scenario, workers=args.workers)
    from livecast.rehearse.live import LiveOptions

    live = LiveOptions(metrics_port=args.metrics_port, dashboard_port=args.dashboard_port)
    return _run(lambda: rehearse(scenario, Path(out), locust=locust, live=live))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rehearse-worker"]:  # its own parser, in its own interpreter
        return _rehearse_worker(argv[1:])
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "rehearse":
            return _rehearse(args)
        if args.command == "dashboard":
            from livecast.dashboard.feed import serve_dashboard

            return _run(lambda: serve_dashboard(args.scrape, args.host, args.port))
        if args.command == "calibrate":
            from livecast.simulate import calibrate

            return calibrate.main(args)
        if args.command == "sweep":
            from livecast.simulate import sweep

            return sweep.main(args)
        if args.command == "simulate":
            from livecast.simulate.run import run_file

            return run_file(args.scenario, args.out)
        if args.command == "token":
            from livecast.access import token_cli

            return token_cli.main(args)
        if args.command == "event":
            return _event_stop(args)
        if args.command == "export":
            return _export(args)
        if args.command == "probe":
            from livecast.probe.client import run_probe

            return _run(lambda: run_probe(args.url, args.seconds, args.json, args.rendition))
        if args.command == "up":
            from livecast.edge.topology import run_up, spec_from_settings

            overrides = {"port": args.origin_port, "source": args.source}
            config = load_config(args.config, overrides=overrides)
            spec = spec_from_settings(
                config.edge,
                edges=args.edges,
                shield=args.shield,
                port=args.port,
                origins=args.origins,
            )
            logging.getLogger().setLevel(config.log_level.upper())
            # --prometheus-targets: docs/operations.md
            targets = Path(args.prometheus_targets) if args.prometheus_targets else None
            return _run(lambda: run_up(config, spec, targets))
        overrides = {"host": args.host, "port": args.port, "source": args.source}
        if args.command == "demo":
            overrides["part_duration"] = args.part_duration
            config = load_config(None, overrides=overrides)
        else:
            overrides["epoch"] = args.epoch
            config = load_config(args.config, overrides=overrides)
        if args.record_dir is not None:
            record = dataclasses.replace(config.record, dir=args.record_dir).validate()
            config = dataclasses.replace(config, record=record)
        if args.command == "demo":
            config = _demo_recording(config)
        logging.getLogger().setLevel(config.log_level.upper())
        return _run(lambda: _run_event(config))
    except ConfigError as exc:
        print(f"livecast: {exc}", file=sys.stderr)
        return 2
    except LivecastError as exc:
        print(f"livecast: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
