"""A scripted in-memory server for the player model: the pure OriginApp fed by a synthetic
encoder in step with ``now``, a per-viewer downlink shared first-in first-out, a fixed RTT, and
optional faults — plus smoke tests of a whole viewing session through it."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from livecast.origin.app import OriginApp
from livecast.origin.contract import Hold, Response
from livecast.origin.contract import Request as OriginRequest
from livecast.packager.event import LiveEvent
from livecast.player import Player, PlayerConfig, Request
from livecast.player.cmcd import from_url
from livecast.player.harness import ViewerHarness

from .synth import EPOCH, FPS, audio_fragment, make_event, video_fragment
from .synth import Feeder as SynthFeeder

URL = "http://origin.test/live/main.m3u8"
SIZES = {"720p": 6000, "360p": 2000}  # bytes per frame: 1.44 and 0.48 Mbit/s of video

Fault = Callable[[Request, float], int | None]  # → an HTTP status to answer instead


class LadderFeeder(SynthFeeder):
    """``synth.Feeder`` with a real ladder: each video rendition its own frame size."""

    def __init__(
        self,
        event: LiveEvent,
        sizes: dict[str, int] | None = None,
        generation: int = 0,
        epoch: float = EPOCH,
    ) -> None:
        super().__init__(event, generation, epoch)
        self.sizes = sizes or SIZES
        self.epoch = epoch
        self.stopped = False  # the encoder died: nothing more until a new feeder replaces it

    def advance_to(self, seconds: float) -> None:
        while not self.stopped:
            video_end = (self.video_index + 1) * 10 / FPS
            audio_end = (self.audio_index + 1) * 1024 / 48000
            if min(video_end, audio_end) > seconds + 1e-9:
                return
            if audio_end <= video_end:
                self.event.on_fragment("audio", audio_fragment(self.audio_index))
                self.audio_index += 1
            else:
                for name, size in self.sizes.items():
                    self.event.on_fragment(name, video_fragment(self.video_index, size=size))
                self.video_index += 1


@dataclass
class Sent:
    at: float
    request: Request
    status: int | None = None
    held: bool = False  # the origin parked it (blocking reload, preload-hinted part)


@dataclass
class _Transfer:
    request: Request
    done_at: float
    first_byte_at: float
    status: int
    body: bytes | None
    size: int
    error: str | None = None
    remaining: float = 0.0
    sent_at: float = 0.0


@dataclass
class ScriptedServer:
    """Runs one player against the origin; ``bandwidth(now)`` is the viewer's downlink. With a
    ``harness`` (``player.harness``, around that player) the server goes through it, as a driver
    does: answers, errors, and wakes at its deadlines."""

    app: OriginApp
    feeder: LadderFeeder
    bandwidth: Callable[[float], float] = lambda now: 20e6
    rtt: float = 0.02
    fault: Fault | None = None
    sent: list[Sent] = field(default_factory=list)
    _pending: list[Request] = field(default_factory=list)
    _held: dict[int, tuple[Request, Hold, float]] = field(default_factory=dict)
    _transfers: list[_Transfer] = field(default_factory=list)
    _link: list[_Transfer] = field(default_factory=list)
    now: float = 0.0
    ticks: int = 0
    harness: ViewerHarness | None = None

    def run(
        self,
        player: Player,
        start: float,
        until: float,
        dt: float = 0.01,
        *,
        at_deadlines: bool = False,
    ) -> None:
        self.now = start
        self.feeder.advance_to(start - self.feeder.epoch)
        self._pending.extend(self.harness.start(start) if self.harness else player.start(start))
        self.run_more(player, until, dt, at_deadlines=at_deadlines)

    def run_more(
        self, player: Player, until: float, dt: float = 0.01, *, at_deadlines: bool = False
    ) -> None:
        """Carry on until ``until`` (the feeder keeps producing unless its event ended). The
        player is ticked every step, or (``at_deadlines``) only once its ``next_deadline`` has
        come; ``ticks`` counts the ticks."""
        now = self.now
        while now < until and not player.finished:
            now = round(now + dt, 6)
            self.feeder.advance_to(now - self.feeder.epoch)
            self._resume_held(now)
            self._send_due(now, player)
            self._move_bytes(now, dt)
            for transfer in self._due_transfers(now):
                self._pending.extend(self._answer(player, transfer))
            harness = self.harness
            if harness is not None:
                deadline: float | None = harness.next_deadline()
            else:
                deadline = player.next_deadline() if at_deadlines else now
            if deadline is not None and now >= deadline:
                self.ticks += 1
                self._pending.extend(harness.wake(now) if harness else player.tick(now))
        self.now = now

    def kinds(self, kind: str) -> list[Sent]:
        return [s for s in self.sent if s.request.kind == kind]

    # ------------------------------------------------------------------ internals
    def _answer(self, player: Player, transfer: _Transfer) -> list[Request]:
        request_id, at = transfer.request.id, transfer.done_at
        if transfer.error is not None:
            if self.harness is not None:
                return self.harness.on_error(request_id, transfer.error, at)
            return player.on_error(request_id, transfer.error, at)
        if self.harness is not None:
            return self.harness.on_response(
                request_id,
                transfer.status,
                transfer.body,
                transfer.size,
                at,
                first_byte_at=transfer.first_byte_at,
                age=None,
            )
        return player.on_response(
            request_id, transfer.status, transfer.body, transfer.size, at, transfer.first_byte_at
        )

    def _send_due(self, now: float, player: Player) -> None:
        due = [r for r in self._pending if r.not_before <= now]
        self._pending = [r for r in self._pending if r.not_before > now]
        for request in due:
            if not player.wanted(request.id):
                continue
            record = Sent(now, request)
            self.sent.append(record)
            status = self.fault(request, now) if self.fault else None
            if status is not None:
                record.status = status
                self._start(request, now, Response(status, b"fault\n"))
                continue
            split = urlsplit(request.url)
            answer = self.app.handle(OriginRequest("GET", split.path, split.query), now)
            if isinstance(answer, Hold):
                record.held = True
                self._held[request.id] = (request, answer, now)
            else:
                record.status = answer.status
                self._start(request, now, answer)

    def _resume_held(self, now: float) -> None:
        for request_id, (request, hold, sent_at) in list(self._held.items()):
            answer = self.app.resume(hold.key, now)
            if answer is None and now >= hold.deadline:
                answer = self.app.expired(hold.key, now)
            if answer is not None:
                del self._held[request_id]
                self._start(request, now, answer, sent_at)
            elif now - sent_at > request.timeout:
                del self._held[request_id]
                self._transfers.append(_Transfer(request, now, now, 0, None, 0, "timeout"))

    def _start(
        self, request: Request, now: float, answer: Response, sent_at: float | None = None
    ) -> None:
        body = answer.body if request.kind in ("multivariant", "playlist", "session") else None
        sent_at = now if sent_at is None else sent_at
        transfer = _Transfer(
            request, now + self.rtt / 2, -1.0, answer.status, body, len(answer.body)
        )
        transfer.remaining = float(len(answer.body))
        transfer.sent_at = sent_at
        self._link.append(transfer)

    def _move_bytes(self, now: float, dt: float) -> None:
        """The downlink serves responses first in, first out at ``bandwidth(now)``."""
        budget = self.bandwidth(now) * dt / 8
        for transfer in list(self._link):
            if now - transfer.sent_at > transfer.request.timeout:
                self._link.remove(transfer)
                transfer.error, transfer.done_at = "timeout", now
                self._transfers.append(transfer)
                continue
            if transfer.done_at > now or budget <= 0:
                continue  # the first byte is still on its way (half the RTT)
            if transfer.first_byte_at < 0:
                transfer.first_byte_at = now - dt
            sent = min(budget, transfer.remaining)
            budget -= sent
            transfer.remaining -= sent
            if transfer.remaining <= 1e-9:
                self._link.remove(transfer)
                transfer.done_at = now + self.rtt / 2
                self._transfers.append(transfer)

    def _due_transfers(self, now: float) -> list[_Transfer]:
        due = sorted((t for t in self._transfers if t.done_at <= now), key=lambda t: t.done_at)
        self._transfers = [t for t in self._transfers if t.done_at > now]
        return due


def session(
    config: PlayerConfig,
    seconds: float = 20.0,
    bandwidth: Callable[[float], float] = lambda now: 20e6,
    fault: Fault | None = None,
    seed: int = 1,
    warmup: float = 10.0,
) -> tuple[Player, ScriptedServer]:
    """A viewer joining ``warmup`` s into the event and watching for ``seconds``."""
    event = make_event()
    server = ScriptedServer(OriginApp(event), LadderFeeder(event), bandwidth, fault=fault)
    player = Player(URL, config, random.Random(seed))
    start = EPOCH + warmup
    server.run(player, start, start + seconds)
    return player, server


# ---------------------------------------------------------------- smoke tests of a session


def test_llhls_viewer_joins_and_plays_without_stalls() -> None:
    player, server = session(PlayerConfig("s1"))
    record = player.outcome(EPOCH + 30.0)
    assert player.error is None and record.fatal_error is None, player.error
    assert player.status == "watching"
    assert record.startup_s == pytest.approx(0.21, abs=1e-6)
    assert record.stalls == 0
    assert record.played_s == pytest.approx(20.0 - 0.21, abs=1e-6)
    kinds = [s.request.kind for s in server.sent[:3]]
    assert kinds[0] == "multivariant" and kinds[1:] == ["playlist", "playlist"]
    assert {urlsplit(s.request.url).path for s in server.kinds("init")} >= {
        "/live/audio/init-882000000.mp4"
    }
    assert server.kinds("part") and not server.kinds("segment")
    blocking = [s for s in server.kinds("playlist") if "_HLS_msn=" in s.request.url]
    assert len(blocking) == 131  # two tracks, a blocking reload per ⅓ s part, for 20 s
    # start: PART-HOLD-BACK (1 s) behind the edge, plus the startup time
    samples = player.latency_samples
    assert record.latency is not None and record.latency.samples == len(samples) == 20  # 1/s
    assert samples == pytest.approx([1.211] * 20, abs=1e-3)  # no stall: it never drifts
    assert all(s.status in (200, None) for s in server.sent)
    # at the live edge the preload-hinted part is asked for before it exists (held by the origin)
    parts = [s for s in server.kinds("part") if s.at > EPOCH + 12.0]
    assert all(s.held for s in parts)
    # blocking reloads wait up to the origin's 3 × TD hold, plus a margin
    assert {s.request.timeout for s in blocking} == {3 * 2 + 1.0}
    # playback starts at hls.js's live sync position, PART-HOLD-BACK behind the edge: video is
    # loaded from the independent part before it, audio from the part holding it
    assert player.buffer is not None and player.buffer.start_position is not None
    start = player.buffer.start_position
    video_start = player.buffer.track_starts["video"]
    audio_start = player.buffer.track_starts["audio"]
    assert video_start is not None and audio_start is not None
    assert video_start <= start and 0 <= start - audio_start < 0.33


def test_every_request_carries_cmcd() -> None:
    _, server = session(PlayerConfig("s2"), seconds=5.0)
    assert all(from_url(s.request.url) is not None for s in server.sent)
