"""The ``livecast`` command: a thin entry point over the pipeline and the probe.

  livecast demo  [--host H] [--port P]      live event from the built-in test source
                 [--source test|loop]       (loop: pre-encoded once, replayed as live)
  livecast serve --config event.toml        the same, from a config file
                 [--epoch E]                (loop: media time 0 at Unix time E; replicas
                                            given the same E serve identical bytes)
  livecast probe URL [--seconds N] [--json] join an LL-HLS stream, report startup and latency
  livecast up [--edges K] [--shield] [--port P] [--config FILE] [--origin-port N]
              [--source test|loop|rtmp] [--origins N]
                                            origin(s) + nginx edges ([edge] in the config
                                            file); --origins N ≥ 2: N epoch-locked loop
                                            or rtmp origins (the encoder publishes to
                                            each), the edges fail over between them;
                                            prints one URL per edge

Exit codes: 0 success, 1 runtime failure, 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence

from livecast import __version__
from livecast.config import SOURCES, EventConfig, load_config
from livecast.errors import ConfigError, LivecastError

log = logging.getLogger("livecast")


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
    rehearse = sub.add_parser(
        "rehearse",
        help="dress rehearsal: virtual viewers against the stack, GO/NO-GO",
        description="livecast rehearse SCENARIO.toml --out DIR | "
        "livecast rehearse compare A/results.json B/results.json",
    )
    rehearse.add_argument("what", nargs="+", help="SCENARIO.toml, or: compare A.json B.json")
    rehearse.add_argument("--out", default=None, help="directory for results.json + report.html")
    probe = sub.add_parser("probe", help="follow an LL-HLS stream and report startup/latency")
    probe.add_argument("url", help="multivariant or media playlist URL")
    probe.add_argument("--seconds", type=float, default=10.0)
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    probe.add_argument("--rendition", default=None, help="variant URI or resolution to follow")
    return parser


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
            log.info("stopping")
            return 0


def _run(coro_factory: object) -> int:
    from livecast.origin.wire import install_uvloop

    install_uvloop()
    assert callable(coro_factory)
    return int(asyncio.run(coro_factory()))


def _rehearse(what: list[str], out: str | None) -> int:
    """0 GO / no regression, 1 NO-GO / regression, 2 could not run / unusable input."""
    from pathlib import Path

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
    from livecast.rehearse.runner import rehearse
    from livecast.rehearse.scenario import load_scenario

    scenario = load_scenario(what[0])
    return _run(lambda: rehearse(scenario, Path(out)))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        if args.command == "rehearse":
            return _rehearse(args.what, args.out)
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
            return _run(lambda: run_up(config, spec))
        overrides = {"host": args.host, "port": args.port, "source": args.source}
        if args.command == "demo":
            overrides["part_duration"] = args.part_duration
            config = load_config(None, overrides=overrides)
        else:
            overrides["epoch"] = args.epoch
            config = load_config(args.config, overrides=overrides)
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
