"""The live pipeline, wired end to end: source → hub → packager → store → origin.

This is the adapter layer that owns the event loop objects. Each event of the server is a
:class:`~livecast.channel.Channel`: its source (the FFmpeg supervisor, the loop replayer, or the
contribution encoders publishing with that event's keys) publishes fMP4 into the stream hub; its
packager reads the stream from its own bounded queue, and the bytes live in the shared store:
the :class:`~livecast.store.ram.RamRing` (the live window), or with ``[record] dir`` the
:class:`~livecast.store.archive.Recording` (the live window in RAM, the whole event on disk; an
event whose recording ended is served as VOD, its source never started). The HTTP
:class:`OriginServer` in front of the pure :class:`OriginApp` answers from the registry of every
event's stream (``/live/<id>/…``; the default event ``main`` also at the short URLs). One RTMP
server takes every event's encoders: the stream key says which event and which input (primary or
backup). Bytes flow one way; every published part wakes the requests parked on it
(``OriginServer.notify``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import mimetypes
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path

from livecast.access.tokens import RevocationList
from livecast.admin.control import PipelineControl
from livecast.channel import Channel
from livecast.config import CONTRIBUTION_SOURCES, EventConfig
from livecast.errors import ConfigError, LivecastError, RequestError
from livecast.hub.publisher import Publisher
from livecast.hub.source import Source
from livecast.hub.stream import StreamHub
from livecast.ingest.keys import PublishPoint, StreamKeys, fingerprint, new_stream_key
from livecast.ingest.rtmp_server import PublishSink, RtmpServer
from livecast.ingest.srt_ingest import SrtListener, free_udp_port
from livecast.ingest.switch import SLATE
from livecast.origin.app import OriginApp, StaticAsset
from livecast.origin.http import OriginServer
from livecast.origin.streams import StreamRegistry
from livecast.origin_access import (
    admin_server,
    list_live_events,
    session_endpoints,
    token_gate,
)
from livecast.packager.event import DEFAULT_STREAM, LiveEvent, RenditionSpec
from livecast.packager.live import PackagingConfig
from livecast.pipeline_metrics import IngestMetrics, RecordMetrics, channel_metrics
from livecast.qoe.origin_tap import origin_qoe
from livecast.sources.contribution import ContributionSource
from livecast.sources.loop_source import LoopSource, default_cache_dir
from livecast.sources.slate import SlateReplay
from livecast.sources.testsrc import test_source
from livecast.stop_signals import StopRequest, stop_on_signals
from livecast.store import control
from livecast.store.archive import Recording
from livecast.store.contract import Store
from livecast.store.ram import RamRing
from livecast.telemetry.metrics import Registry
from livecast.transcode.ffmpeg import find_ffmpeg, find_font
from livecast.transcode.ladder import AUDIO_RENDITION, build_argv
from livecast.transcode.supervisor import TranscodeSupervisor
from livecast.web.assets import find_hlsjs, player_page_html

__all__ = [
    "LivePipeline",
    "StopRequest",
    "declared_part_target",
    "replay_history",
    "static_assets",
    "stop_on_signals",
]

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
    """Every event of this server (one :class:`~livecast.channel.Channel` each: the default
    event ``main``, plus ``[[events]]`` for contribution sources), the shared store, the origin
    that serves them all, and the ingest server that takes their encoders."""

    def __init__(self, config: EventConfig) -> None:
        self.config = config
        self.ladder = config.ladder()
        self.ffmpeg = find_ffmpeg(config.ffmpeg or None)
        self.font = config.font or find_font()
        if self.font is None:
            log.warning("no TrueType font found: the test pattern will have no clock overlay")
        self.packaging = PackagingConfig(
            part_target=declared_part_target(self.ladder.part_duration),
            segment_duration=self.ladder.segment_duration,
            window=config.window,
        )
        self.recording: Recording | None = None
        self.store: Store = RamRing()
        if config.record.enabled:
            self.recording = Recording(config.record.path, fsync=config.record.fsync)
            self.store = self.recording
        self.streams = StreamRegistry(default=DEFAULT_STREAM)
        self.registry = Registry()
        assets = static_assets()
        gate = token_gate(config, assets, RevocationList())  # [access]: docs/access.md
        self.sessions = session_endpoints(config, gate)  # [access] max_streams: awaited paths
        sessions = self.sessions
        self.app = OriginApp.for_streams(self.streams, assets)
        self.server = OriginServer(
            self.app,
            self.registry,
            cache_key=self.app.cache_key,
            shedding=config.shedding,
            gate=gate,
            async_endpoints=sessions.routes() if sessions is not None else None,
            collectors=(sessions.collector(self.registry),) if sessions is not None else (),
        )
        # livecast_qoe_*: CMCD of the requests reaching the origin (and the edges', livecast up)
        self.qoe = origin_qoe(self.registry, time.time, time.time() - self.server.clock())
        self.server.cmcd_tap = self.qoe.tap.offer
        self.server.collectors += (self.qoe.collect,)
        self.admin = admin_server(config, gate, self.sessions, PipelineControl(self))
        self.hub = StreamHub()
        self._metrics = channel_metrics(self.registry)
        self.ingest_metrics = IngestMetrics(self.registry)
        self.record_metrics = RecordMetrics(self.registry)
        self._ended_here: set[str] = set()  # events ended while this process served them
        self.end_on_stop = True  # stop() ends the events (False: a recording continues later)
        self._watch: asyncio.Task[None] | None = None
        self._ending_tasks: set[asyncio.Task[None]] = set()
        self.channels: dict[str, Channel] = {}
        self.not_started: set[str] = set()  # created at run time (create_event), not started yet
        self.edge_status_urls: tuple[str, ...] = ()  # the edges' /edge/status, for the status
        self.contributions: dict[str, ContributionSource] = {}
        # the encoders' bytes, clock jumps and ladder runs, read at each /metrics answer
        self.server.collectors += (lambda: self.ingest_metrics.collect(self.contributions),)
        self.rtmp: RtmpServer | None = None
        self.channel = self._add_channel(DEFAULT_STREAM)
        self.channel.source = self._make_source(self.channel)
        self.srt: list[SrtListener] = []
        if config.source in CONTRIBUTION_SOURCES:
            self._add_contribution_events()
            if config.source == "srt":
                self.srt = self._srt_listeners()
            else:
                self.rtmp = RtmpServer(
                    self._authorize_publisher,
                    max_message_bytes=config.ingest.max_message_kb * 1024,
                )

    def _add_channel(self, stream_id: str) -> Channel:
        specs = [RenditionSpec(r.name, "video") for r in self.ladder.rungs]
        specs.append(RenditionSpec(AUDIO_RENDITION, "audio"))
        event = LiveEvent(self.packaging, specs, stream=stream_id, store=self.store)
        event.dvr_window = self.config.record.dvr_window
        self.streams.add(stream_id, event)
        stream = self.hub.create(stream_id, tuple(self.ladder.renditions))
        channel = Channel(
            event,
            stream,
            self._metrics,
            source_name=self.config.source,
            on_changed=self.server.notify,
        )
        self.channels[stream_id] = channel
        return channel

    def _add_contribution_events(self) -> None:
        """The keys of every event's inputs, and the channels of the ``[[events]]``."""
        ingest = self.config.ingest
        keys = {f"{DEFAULT_STREAM}/primary": ingest.stream_key}
        if ingest.backup_key:
            keys[f"{DEFAULT_STREAM}/backup"] = ingest.backup_key
        for extra in self.config.events:
            channel = self._add_channel(extra.id)
            channel.source = self._contribution(channel, extra.inputs)
            keys[f"{extra.id}/primary"] = extra.stream_key
            if extra.backup_key:
                keys[f"{extra.id}/backup"] = extra.backup_key
        self.keys = StreamKeys(keys)

    def _srt_listeners(self) -> list[SrtListener]:
        """One SRT listener per input of every event: the port says which (SRT callers send a
        stream id, but FFmpeg's listener does not show it); the passphrase is the input's key.
        Port 0: a free port each (tests)."""
        ingest = self.config.ingest
        host = ingest.host or self.config.host
        events = [(DEFAULT_STREAM, ingest.srt_port, ingest.stream_key, ingest.backup_key)]
        events += [(e.id, e.srt_port, e.stream_key, e.backup_key) for e in self.config.events]
        listeners = []
        for stream_id, port, key, backup in events:
            inputs = [("primary", port, key)] + ([("backup", port + 1, backup)] if backup else [])
            for name, input_port, passphrase in inputs:
                listeners.append(
                    SrtListener(
                        self.ffmpeg,
                        host,
                        input_port if port else free_udp_port(host or "0.0.0.0"),
                        passphrase,
                        self.contributions[stream_id].inputs[name],
                        name=f"{stream_id}/{name}",
                        latency_ms=ingest.srt_latency_ms,
                        max_tag_bytes=ingest.max_message_kb * 1024,
                    )
                )
        return listeners

    # ------------------------------------------------------------------ the default channel
    @property
    def event(self) -> LiveEvent:
        return self.channel.event

    @property
    def publisher(self) -> Publisher:
        return self.channel.publisher

    @property
    def source(self) -> Source:
        return self.channel.source

    @property
    def contribution(self) -> ContributionSource | None:
        return self.contributions.get(DEFAULT_STREAM)

    # ------------------------------------------------------------------ sources
    def _make_source(self, channel: Channel) -> Source:
        publisher = channel.publisher
        if self.config.source in CONTRIBUTION_SOURCES:
            return self._contribution(channel, self.config.ingest.inputs)
        if self.config.source == "loop":
            return LoopSource(
                self.ladder,
                self.ffmpeg,
                publisher.on_data,
                on_start=publisher.on_start,
                loop_seconds=self.config.loop_seconds,
                cache_dir=self._cache_dir(),
                font=self.font,
                epoch=self.config.epoch or None,
                history=replay_history(self.config.window, self.ladder.segment_duration),
            )
        return TranscodeSupervisor(
            self._argv, self.ladder.renditions, publisher.on_data, on_start=publisher.on_start
        )

    def _contribution(self, channel: Channel, inputs: tuple[str, ...]) -> ContributionSource:
        stream_id = channel.id
        publisher = channel.publisher

        def show_on_air(name: str, gap: float | None) -> None:
            self._show_on_air(stream_id, inputs, name, gap)

        source = ContributionSource(
            self.ladder,
            self.ffmpeg,
            publisher.on_data,
            on_start=publisher.on_start,
            inputs=inputs,
            policy=self.config.ingest.policy,
            slate=self._slate(publisher) if self.config.ingest.slate else None,
            on_switch=lambda switch: self.ingest_metrics.switches.inc(
                switch.before or "none", switch.after, stream_id
            ),
            on_aired=show_on_air,
            name=stream_id,
            on_unpublished=(
                (lambda: self._end_after_drain(stream_id))
                if self.config.ingest.end_on_unpublish
                else None
            ),
        )
        self.contributions[stream_id] = source
        return source

    def _end_after_drain(self, stream_id: str) -> None:
        """The publisher ended the event: once the ladder has encoded its last frames, end it."""

        async def end() -> None:
            await self.contributions[stream_id].drain(timeout=5.0)
            await self.end_event(stream_id)

        self._end_in_background(stream_id, end())

    def _end_in_background(self, stream_id: str, ending: Coroutine[None, None, None]) -> None:
        """An end that :meth:`stop` waits for instead of cancelling it half-way (a source
        stopped half-way cannot be stopped again)."""
        task = asyncio.get_running_loop().create_task(ending, name=f"end-{stream_id}")
        self._ending_tasks.add(task)
        task.add_done_callback(self._ending_tasks.discard)

    def _cache_dir(self) -> Path:
        return Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()

    def _slate(self, publisher: Publisher) -> SlateReplay:
        return SlateReplay(
            self.ladder,
            self.ffmpeg,
            publisher.on_data,
            on_start=publisher.on_start,
            cache_dir=self._cache_dir(),
            font=self.font,
        )

    def _show_on_air(
        self, stream_id: str, inputs: tuple[str, ...], name: str, gap: float | None
    ) -> None:
        for shown in (*inputs, SLATE):
            self.ingest_metrics.on_air.set(1.0 if shown == name else 0.0, shown, stream_id)
        if gap is not None:
            self.ingest_metrics.switch_gap.set(gap, stream_id)
            log.warning("%s: %s on air %.2f s after the previous input's last media",
                        stream_id, name, gap)  # fmt: skip

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
        """Where the default event's encoders publish: the RTMP server URL (the stream key goes
        in its own field), or each input's SRT URL (the key is the ``passphrase``)."""
        host = self.config.ingest.host or self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        if self.srt:
            return [
                f"srt://{shown}:{listener.port}?streamid=#!::r=live/{DEFAULT_STREAM},m=publish"
                for listener in self.srt
                if listener.name.startswith(f"{DEFAULT_STREAM}/")
            ]
        if self.rtmp is None:
            return []
        return [f"rtmp://{shown}:{self.rtmp.port}/{self.config.ingest.app}"]

    @property
    def waits_for_encoder(self) -> bool:
        return self.contribution is not None

    # ------------------------------------------------------------------ contribution
    def _authorize_publisher(self, app: str, key: str) -> PublishSink | str:
        """The ingest server's question: may this (application, stream key) publish? The sink
        of that event's input, or the reason for the refusal (logged by the server with the
        key's fingerprint)."""
        if app != self.config.ingest.app:
            self.ingest_metrics.publishes.inc("unknown_app")
            return f"unknown application {app!r} (publish to /{self.config.ingest.app})"
        label = self.keys.stream_for(key)
        if label is None:
            self.ingest_metrics.publishes.inc("wrong_key")
            return f"wrong stream key (fingerprint {fingerprint(key)})"
        stream_id, name = label.split("/")
        if stream_id in self.not_started:
            self.ingest_metrics.publishes.inc("not_started")
            return (
                f"event {stream_id!r} is created but not started "
                f"(POST /admin/v1/events/{stream_id}/start)"
            )
        if self._over(stream_id):
            self.ingest_metrics.publishes.inc("ended")
            return f"event {stream_id!r} has ended"
        sink = self.contributions[stream_id].inputs[name]
        live = self.rtmp is not None and self.rtmp.has_publisher(sink)
        if live and not self.config.ingest.takeover:
            self.ingest_metrics.publishes.inc("busy")
            return (
                f"the {name} input of {stream_id!r} already has a publisher "
                "(set ingest.takeover to replace it)"
            )
        self.ingest_metrics.publishes.inc("accepted")
        return sink

    # ------------------------------------------------------------------ events made at run time
    def create_event(self, stream_id: str) -> PublishPoint:
        """A new event (the admin API's create): a stream id of its own and a freshly generated
        key for its encoder, which is refused until :meth:`start_event`. ``RequestError(409)``
        when this server's source cannot take new events (only ``source = "rtmp"`` can: a loop
        or test source makes its own events, an SRT input needs a port of its own) or the id is
        taken (an event of this server, or a recording of that id)."""
        if self.rtmp is None:
            raise RequestError(
                409,
                f"this server's source ({self.config.source}) cannot take new events: only "
                'source = "rtmp" can; its own events are listed',
            )
        if stream_id in self.channels or stream_id in self.not_started:
            raise RequestError(409, f"this server already has an event {stream_id!r}")
        if self.recording is not None and (self.recording.directory / stream_id).exists():
            raise RequestError(409, f"a recording of {stream_id!r} exists: pick another id")
        key = new_stream_key()
        self.keys = self.keys.with_key(f"{stream_id}/primary", key)
        self.not_started.add(stream_id)
        point = PublishPoint(self.ingest_urls[0], key)
        log.info("event %s created: its encoder publishes to %s with the key %s (fingerprint)",
                 stream_id, point.url, fingerprint(key))  # fmt: skip
        return point

    async def start_event(self, stream_id: str) -> None:
        """A created event goes live: its channel (``/live/<id>/…``: 503 until its encoder's
        first segments) and its encoder accepted from now on. An event of the configuration is
        live from the start (``RequestError(409)`` for any but a created one)."""
        if stream_id not in self.not_started:
            raise RequestError(409, f"event {stream_id!r} was not created here, or has started")
        channel = self._add_channel(stream_id)
        channel.source = self._contribution(channel, ("primary",))
        await channel.source.start()
        self.not_started.discard(stream_id)
        log.info("event %s started: its encoder may publish", stream_id)

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
            for channel in self.channels.values():
                if channel.event.ended:  # a recording that ended: VOD, nothing to encode
                    log.info(
                        "event %s ended before this start: serving its recording as VOD "
                        "(move %s away to go live again)",
                        channel.id,
                        self.config.record.path / channel.id,
                    )
                    continue
                await channel.source.start()
        if self.recording is not None:
            self._watch = asyncio.create_task(self._watch_recording(), name="record-watch")
        if self.rtmp is not None:
            await self._listen_ingest(self.rtmp, self.config.ingest.rtmp_port)
        for listener in self.srt:
            await listener.start()

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
        if self.admin is not None:
            admin = self.config.admin
            try:
                await self.admin.start(admin.host, admin.port)
            except OSError as exc:
                await self.server.stop()
                where = f"{admin.host}:{admin.port}"
                raise LivecastError(f"cannot listen for the admin API on {where}: {exc}") from exc
            list_live_events(self.admin, self.channels, time.time())
            log.info("admin API on http://%s:%d/admin/v1/", admin.host, self.admin.port)

    async def wait_ready(self, timeout: float = 30.0, stream: str = DEFAULT_STREAM) -> None:
        """Until every rendition of ``stream`` has a complete segment (so the multivariant
        playlist is real)."""
        await self.channels[stream].wait_ready(timeout)

    async def stop(self, *, end: bool = True) -> None:
        """Stop serving. ``end``: the events end too (EXT-X-ENDLIST, the recording's end mark);
        without it a recording stays open, and the next start continues it."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self.admin is not None:
            await self.admin.stop()  # no new operations; those under way finish first
        await asyncio.gather(*self._ending_tasks, return_exceptions=True)
        if self.rtmp is not None:
            await self.rtmp.stop()
        for listener in self.srt:
            await listener.stop()
        for channel in self.channels.values():
            await channel.stop(end=end)  # delivers the last bytes
        self.server.notify()
        await self.server.stop()
        if self.sessions is not None:
            await self.sessions.close()  # the lease store's connections
        if self.recording is not None:
            self.record_metrics.update(self.recording, self.channels)
            self.recording.close()

    async def end_event(self, stream_id: str = DEFAULT_STREAM) -> None:
        """The event is over: its encoder stops, every media playlist gets EXT-X-ENDLIST at once
        (the held requests are answered), a recorded event is VOD at the same URLs from now on
        — also after a restart. The origin keeps serving."""
        channel = self.channels[stream_id]
        if channel.event.ended:
            return
        self._ended_here.add(stream_id)
        await channel.stop(end=True)
        self.server.notify()
        self.record_metrics.update(self.recording, self.channels)
        log.info("event %s ended%s", stream_id,
                 ": VOD at the same URLs" if self.recording is not None else "")  # fmt: skip

    def _over(self, stream_id: str) -> bool:
        """The event ended, or is ending (its source stops first)."""
        return stream_id in self._ended_here or self.channels[stream_id].event.ended

    async def end_events(self) -> None:
        for stream_id in list(self.channels):
            await self.end_event(stream_id)

    async def _watch_recording(self) -> None:
        """Every second: ``livecast event stop`` requests, the recording's metrics."""
        assert self.recording is not None
        while True:
            for stream_id in control.end_requests(self.recording.directory):
                if stream_id in self.channels:
                    self._end_in_background(stream_id, self.end_event(stream_id))
                control.clear(self.recording.directory, stream_id)
            self.record_metrics.update(self.recording, self.channels)
            await asyncio.sleep(1.0)

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
            await self.stop(end=self.end_on_stop)

    async def serve_until(self, stop: asyncio.Event) -> bool:
        """Serve until ``stop`` is set (True) or the source gives up for good (False). An event
        that ended (before this start, or by :meth:`end_event`) is served until ``stop``."""
        stopped = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                if self._over(DEFAULT_STREAM):
                    await stopped
                    break
                ended = asyncio.ensure_future(self.source.wait())
                await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
                ended.cancel()
                if ended.done() and not stop.is_set() and not self._over(DEFAULT_STREAM):
                    return False
        finally:
            stopped.cancel()
        return True

    # ------------------------------------------------------------------ the test source
    def _argv(self, fds: dict[str, int], epoch: float) -> list[str]:
        source = test_source(self.ladder, epoch, self.font)
        return build_argv(self.ffmpeg, source, self.ladder, fds)
