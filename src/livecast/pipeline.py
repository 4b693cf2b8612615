"""The live pipeline, wired end to end: source → hub → packager → store → origin.

This is the adapter layer that owns the event loop objects. A source (the FFmpeg supervisor, or
the loop replayer) publishes fMP4 into the stream hub through a
:class:`~livecast.hub.publisher.Publisher`; the packager reads the stream from its own bounded
queue (:class:`~livecast.packager.feed.PackagerFeed` on the sans-IO :class:`LiveEvent`, whose
bytes live in the :class:`~livecast.store.ram.RamRing`), and the HTTP :class:`OriginServer` in
front of the pure :class:`OriginApp` answers from a registry of streams. Bytes flow one way;
every published part wakes the requests parked on it (``OriginServer.notify``). Media that cannot
be read or packaged makes the pipeline ask the source for a new run (:meth:`Source.restart`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import mimetypes
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from livecast.config import CONTRIBUTION_SOURCES, EventConfig
from livecast.errors import ConfigError, LivecastError, MediaError
from livecast.hub.publisher import Publisher
from livecast.hub.source import Source
from livecast.hub.stream import StreamHub
from livecast.ingest.keys import StreamKeys, fingerprint
from livecast.ingest.rtmp_server import PublishSink, RtmpServer
from livecast.ingest.switch import SLATE, Switch
from livecast.origin.app import OriginApp, StaticAsset
from livecast.origin.http import OriginServer
from livecast.origin.streams import StreamRegistry
from livecast.packager.event import DEFAULT_STREAM, LiveEvent, RenditionSpec
from livecast.packager.feed import FeedResult, PackagerFeed
from livecast.packager.live import PackagingConfig
from livecast.sources.contribution import ContributionSource
from livecast.sources.loop_source import LoopSource, default_cache_dir
from livecast.sources.slate import SlateReplay
from livecast.sources.testsrc import test_source
from livecast.store.ram import RamRing
from livecast.telemetry.metrics import Registry
from livecast.transcode.ffmpeg import find_ffmpeg, find_font
from livecast.transcode.ladder import AUDIO_RENDITION, build_argv
from livecast.transcode.supervisor import TranscodeSupervisor
from livecast.web.assets import find_hlsjs, player_page_html

log = logging.getLogger("livecast.pipeline")


def declared_part_target(part_duration: float) -> float:
    """PART-TARGET as written in the playlist: the part duration rounded up at 5 decimals, so
    that no part (rendered at 5 decimals too) exceeds it."""
    return math.ceil(part_duration * 100_000 - 1e-6) / 100_000


def replay_history(window: float, segment_duration: float) -> float:
    """Seconds of media a loop replay started after its epoch rebuilds at once: what the
    packager retains (two windows) plus margin, so that its playlists and retained media are
    the same as those of a replica that ran from the epoch on."""
    return 2 * window + 3 * segment_duration


def static_assets() -> dict[str, StaticAsset]:
    """The player page and hls.js, served by the origin itself (no CDN)."""
    assets = {"/player.html": StaticAsset(player_page_html(), "text/html; charset=utf-8")}
    try:
        hlsjs = find_hlsjs()
    except ConfigError as exc:
        log.warning("%s — the player page will not work", exc)
    else:
        kind = mimetypes.guess_type(hlsjs.name)[0] or "application/javascript"
        assets["/hls.min.js"] = StaticAsset(hlsjs.read_bytes(), kind)
    return assets


class LivePipeline:
    def __init__(self, config: EventConfig) -> None:
        self.config = config
        self.ladder = config.ladder()
        self.ffmpeg = find_ffmpeg(config.ffmpeg or None)
        self.font = config.font or find_font()
        if self.font is None:
            log.warning("no TrueType font found: the test pattern will have no clock overlay")
        packaging = PackagingConfig(
            part_target=declared_part_target(self.ladder.part_duration),
            segment_duration=self.ladder.segment_duration,
            window=config.window,
        )
        specs = [RenditionSpec(r.name, "video") for r in self.ladder.rungs]
        specs.append(RenditionSpec(AUDIO_RENDITION, "audio"))
        self.store = RamRing()
        self.event = LiveEvent(packaging, specs, stream=DEFAULT_STREAM, store=self.store)
        self.streams = StreamRegistry.single(self.event, stream_id=DEFAULT_STREAM)
        self.registry = Registry()
        self.app = OriginApp.for_streams(self.streams, static_assets())
        self.server = OriginServer(self.app, self.registry, cache_key=self.app.cache_key)
        self.hub = StreamHub()
        stream = self.hub.create(DEFAULT_STREAM, tuple(self.ladder.renditions))
        self.publisher = Publisher(stream, self._on_broken)
        self.contribution: ContributionSource | None = None
        self.source: Source = self._make_source()
        self.rtmp: RtmpServer | None = None
        if config.source in CONTRIBUTION_SOURCES:
            ingest = config.ingest
            keys = {"primary": ingest.stream_key, "backup": ingest.backup_key}
            self.keys = StreamKeys({name: keys[name] for name in ingest.inputs})
            self.rtmp = RtmpServer(
                self._authorize_publisher,
                max_message_bytes=config.ingest.max_message_kb * 1024,
            )
        self._feed = PackagerFeed(self.event)
        self._packager_queue = stream.attach("packager", wake=self._wake_packager)
        self._drain_scheduled = False
        self._ready = asyncio.Event()
        self._parts = self.registry.counter(
            "livecast_packager_parts_total", "Parts published", ("rendition",)
        )
        self._media_errors = self.registry.counter(
            "livecast_packager_media_errors_total", "Unusable encoder output", ("rendition",)
        )
        self._restarts = self.registry.counter(
            "livecast_transcode_restarts_total", "Encoder restarts after a failure"
        )
        self._switches = self.registry.counter(
            "livecast_ingest_switches_total",
            "Changes of what is on air (primary, backup, slate)",
            ("from", "to"),
        )
        self._on_air = self.registry.gauge(
            "livecast_ingest_on_air", "1 for what viewers see now (an input or the slate)",
            ("input",),
        )  # fmt: skip
        self._switch_gap = self.registry.gauge(
            "livecast_ingest_switch_gap_seconds",
            "The last input switch: seconds from the old input's last media to the new one on air",
        )
        self._publishes = self.registry.counter(
            "livecast_ingest_publishes_total",
            "Encoders asking to publish, by outcome (accepted, wrong_key, unknown_app, busy)",
            ("result",),
        )
        self._dropped = self.registry.counter(
            "livecast_hub_dropped_units_total",
            "Media units a stream reader's full queue dropped",
            ("stream", "reader"),
        )

    def _make_source(self) -> Source:
        if self.config.source in CONTRIBUTION_SOURCES:
            self.contribution = ContributionSource(
                self.ladder,
                self.ffmpeg,
                self.publisher.on_data,
                on_start=self.publisher.on_start,
                inputs=self.config.ingest.inputs,
                policy=self.config.ingest.policy,
                slate=self._slate() if self.config.ingest.slate else None,
                on_switch=self._count_switch,
                on_aired=self._show_on_air,
            )
            return self.contribution
        if self.config.source == "loop":
            return LoopSource(
                self.ladder,
                self.ffmpeg,
                self.publisher.on_data,
                on_start=self.publisher.on_start,
                loop_seconds=self.config.loop_seconds,
                cache_dir=self._cache_dir(),
                font=self.font,
                epoch=self.config.epoch or None,
                history=replay_history(self.config.window, self.ladder.segment_duration),
            )
        return TranscodeSupervisor(
            self._argv,
            self.ladder.renditions,
            self.publisher.on_data,
            on_start=self.publisher.on_start,
        )

    def _cache_dir(self) -> Path:
        return Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()

    def _slate(self) -> SlateReplay:
        return SlateReplay(
            self.ladder,
            self.ffmpeg,
            self.publisher.on_data,
            on_start=self.publisher.on_start,
            cache_dir=self._cache_dir(),
            font=self.font,
        )

    def _count_switch(self, switch: Switch) -> None:
        self._switches.inc(switch.before or "none", switch.after)

    def _show_on_air(self, name: str, gap: float | None) -> None:
        for shown in (*self.config.ingest.inputs, SLATE):
            self._on_air.set(1.0 if shown == name else 0.0, shown)
        if gap is not None:
            self._switch_gap.set(gap)
            log.warning("%s on air %.2f s after the previous input's last media", name, gap)

    # ------------------------------------------------------------------ URLs
    @property
    def base_url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        return f"http://{shown}:{self.server.port}"

    @property
    def playlist_url(self) -> str:
        return f"{self.base_url}/live/main.m3u8"

    @property
    def player_url(self) -> str:
        return f"{self.base_url}/player.html"

    @property
    def ingest_urls(self) -> list[str]:
        """Where the encoder publishes (RTMP server URL; the stream key goes in its own field)."""
        if self.rtmp is None:
            return []
        host = self.config.ingest.host or self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return [f"rtmp://{shown}:{self.rtmp.port}/{self.config.ingest.app}"]

    @property
    def waits_for_encoder(self) -> bool:
        return self.contribution is not None

    # ------------------------------------------------------------------ contribution
    def _authorize_publisher(self, app: str, key: str) -> PublishSink | str:
        """The ingest server's question: may this (application, stream key) publish? The sink,
        or the reason for the refusal (logged by the server with the key's fingerprint)."""
        if app != self.config.ingest.app:
            self._publishes.inc("unknown_app")
            return f"unknown application {app!r} (publish to /{self.config.ingest.app})"
        name = self.keys.stream_for(key)
        if name is None or self.contribution is None:
            self._publishes.inc("wrong_key")
            return f"wrong stream key (fingerprint {fingerprint(key)})"
        sink = self.contribution.inputs[name]
        live = self.rtmp is not None and self.rtmp.has_publisher(sink)
        if live and not self.config.ingest.takeover:
            self._publishes.inc("busy")
            return f"the {name} input already has a publisher (set ingest.takeover to replace it)"
        self._publishes.inc("accepted")
        return sink

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Listen, then start the source — or the other way round for an epoch-locked replica
        (``epoch`` given): it opens its port only once it holds what the replicas that ran
        since the epoch hold, so that an edge failing over to it finds the same media (until
        then a connection is refused, which an edge fails over on; a 404 it would not)."""
        if self.config.epoch:
            await self.source.start()
            await self._listen()
        else:
            await self._listen()
            await self.source.start()
        if self.rtmp is not None:
            await self._listen_ingest(self.rtmp, self.config.ingest.rtmp_port)

    async def _listen_ingest(self, server: RtmpServer, port: int) -> None:
        host = self.config.ingest.host or self.config.host
        try:
            await server.start(host, port)
        except OSError as exc:
            await self.server.stop()
            raise LivecastError(
                f"cannot listen for RTMP on {host}:{port}: {exc.strerror or exc}"
            ) from exc

    async def _listen(self) -> None:
        try:
            await self.server.start(self.config.host, self.config.port)
        except OSError as exc:
            where = f"{self.config.host}:{self.config.port}"
            raise LivecastError(f"cannot listen on {where}: {exc.strerror or exc}") from exc

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Until every rendition has a complete segment (so the multivariant playlist is real)."""
        waiter = asyncio.ensure_future(self._ready.wait())
        ended = asyncio.ensure_future(self.source.wait())
        await asyncio.wait({waiter, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        ended.cancel()
        if not self._ready.is_set():
            tail = " | ".join(self.source.stderr_tail[-3:])
            raise LivecastError(f"the stream did not start within {timeout:g} s: {tail}")

    async def stop(self) -> None:
        if self.rtmp is not None:
            await self.rtmp.stop()
        await self.source.stop()  # delivers the last bytes
        self.publisher.end()
        self._drain_packager()
        self.server.notify()
        await self.server.stop()

    @contextlib.asynccontextmanager
    async def running(
        self, timeout: float = 30.0, *, ready: bool = True
    ) -> AsyncIterator[LivePipeline]:
        """Started and ready (:meth:`wait_ready`, unless ``ready=False``) inside the block,
        stopped when it is left."""
        try:
            await self.start()
            if ready:
                await self.wait_ready(timeout=timeout)
            yield self
        finally:
            await self.stop()

    async def serve_until(self, stop: asyncio.Event) -> bool:
        """Serve until ``stop`` is set (True) or the source gives up for good (False)."""
        ended = asyncio.ensure_future(self.source.wait())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
        ended.cancel()
        stopped.cancel()
        return stop.is_set()

    # ------------------------------------------------------------------ source → hub → packager
    def _argv(self, fds: dict[str, int], epoch: float) -> list[str]:
        source = test_source(self.ladder, epoch, self.font)
        return build_argv(self.ffmpeg, source, self.ladder, fds)

    def _on_broken(self, rendition: str, error: MediaError) -> None:
        """The current run's media is unusable (read by the publisher or packaged by the feed):
        the one log line, then a new run from the source."""
        self._media_errors.inc(rendition)
        log.error(
            "unusable media on %s from the %s source (%s); restarting it",
            rendition,
            self.config.source,
            error,
        )
        self.source.restart(f"unusable media on {rendition}: {error}")

    def _wake_packager(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain_packager)

    def _drain_packager(self) -> None:
        self._drain_scheduled = False
        batch = self._packager_queue.take()
        if batch.dropped:
            self._dropped.inc(DEFAULT_STREAM, "packager", amount=batch.dropped)
        self._after_feed(self._feed.apply(batch))

    def _after_feed(self, result: FeedResult) -> None:
        for generation in result.runs_started:
            if generation > 0:
                self._restarts.inc()
        for rendition, parts in result.parts.items():
            self._parts.inc(rendition, amount=parts)
        if result.broken is not None:
            self.publisher.broken(*result.broken)
        if result.changed:
            self.server.notify()
        if not self._ready.is_set() and self.event.ready:
            self._ready.set()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM while the block runs (the commands that serve)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
