"""The step loop: audience → viewers' requests → edges → shield → origin → outcomes (pure).

State lives in arrays ``[edge, mode, band]`` (``livecast.simulate.viewers``); each step of
``dt`` seconds runs the data flow down (requests offered to each tier, what each sends upstream)
and the outcomes back up (failure shares and answer times per kind, then what viewers see).
Feedback — retries, viewers who give up and rejoin, the machine's load on answer times — comes
from the previous step. The output of each step is a :class:`StepFigures`; ``record`` turns
them into the rehearsal's ``RunStats``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from livecast.player.config import PlayerConfig, RetryPolicy
from livecast.scenario.file import Scenario
from livecast.simulate import audience as shape
from livecast.simulate.delivery import Delivery, TierStep
from livecast.simulate.faults import StepFaults, faults_at
from livecast.simulate.settings import SimSettings
from livecast.simulate.tiers import (
    IK,
    INIT,
    MV,
    PART,
    PL_BLOCK,
    PL_PLAIN,
    REQUEST_KIND,
    SEGMENT,
    combine,
    queueing_factor,
)  # fmt: skip
from livecast.simulate.viewers import (
    CLASSIC,
    LL,
    Policy,
    abandon_share,
    continuous_stall,
    fatal_share,
    mean_backoff,
    request_rates,
    retry_window,
    rung_for,
    startup_mixture,
)  # fmt: skip

Floats = npt.NDArray[np.float64]
OBJECT_BYTES = np.array([600.0, 4000.0, 3000.0, 0.0, 0.0, 900.0])  # media from the bitrate
AUDIO_OVERHEAD = 1.16  # fMP4 boxes around AAC frames (see Model.audio_wire_bps)
RTT = 0.0005  # seconds, client ↔ edge (loopback-like; production adds its own in the profile)
BURST_WINDOW = 0.1  # seconds: synchronised retries (no jitter) arrive within it
LEFT, FATAL, START_FAILED, ABANDONED = "left", "fatal", "start_failed", "abandoned"
HORIZON = 64.0  # seconds of retry / exit / rejoin schedule kept ahead


@dataclass(frozen=True)
class Departure:
    """Viewers of one (mode, band) leaving in a step, with their per-viewer means."""

    count: float
    stalled_s: float
    played_s: float
    stalls: float
    latency_s: float
    bitrate_bps: float
    kind: str  # LEFT, FATAL, START_FAILED or ABANDONED


@dataclass
class StepFigures:
    """What one step produced (counts over the step, per-viewer figures as means)."""

    t: float
    present: float
    requests: Floats  # [IK] sent by viewers
    failed: Floats  # [IK] failed (any cause)
    refused: Floats  # [IK] of which: refused by a lost edge
    latency: Floats  # [IK] mean answer time
    retries: float
    retried: float  # first tries that failed and will be retried
    retries_burst: bool
    tiers: dict[str, TierStep]
    upstream_hits: tuple[float, float]  # edge (lookups, hits)
    startup_values: Floats
    startup_weights: Floats
    stalls: float
    latency_live: Floats  # [mode] mean latency behind live
    present_by_mode: Floats
    departed: list[Departure]


class Model:
    def __init__(self, scenario: Scenario, settings: SimSettings) -> None:
        self.scenario, self.settings = scenario, settings
        self.dt = settings.step
        self.steps = int(np.ceil(scenario.duration / self.dt))
        self.stream = settings.stream
        self.edges = settings.edges.count if settings.edges else 1
        bands = scenario.downlink
        weights = np.array([b.weight for b in bands], dtype=np.float64)
        self.band_share = weights / weights.sum()
        self.downlink = np.array([b.kbps * 1000 for b in bands], dtype=np.float64)
        self.mode_share = np.array([scenario.low_latency_share, 1 - scenario.low_latency_share])
        self.policy = Policy.of(scenario.retry_jitter)
        self.rates = request_rates(self.stream)
        self.video_bps = np.array(self.stream.video_kbps) * 1000
        self.audio_bps = self.stream.audio_kbps * 1000
        # what the player pulls: AAC in fMP4 carries ≈ 16 % of boxes per sample (livecast's
        # own audio segments: 37.3 KB per 2 s at 128 kbit/s); the video rungs' x264 rate
        # control lands on their nominal rate, boxes included (150 KB per 2 s at 600 kbit/s)
        self.audio_wire_bps = self.audio_bps * AUDIO_OVERHEAD
        shape_ = (self.edges, 2, len(bands))
        self.present = np.zeros(shape_)
        self.behind = np.zeros(shape_)  # per viewer: seconds further behind live than base
        self.stalled_pv = np.zeros(shape_)
        self.played_pv = np.zeros(shape_)
        self.stalls_pv = np.zeros(shape_)
        self.doomed = np.zeros(shape_)
        self.was_stalled = np.zeros(shape_, dtype=bool)
        self.blocked_until = np.zeros(shape_)  # a slow answer holds the cohort until then
        self.stall_from = np.zeros(shape_)
        player = PlayerConfig("simulated")
        self.hold_margin, self.resume_buffer = player.hold_margin, player.resume_buffer
        ahead = int(np.ceil(HORIZON / self.dt)) + 2
        self.ahead = ahead
        self.retry_due = np.zeros((ahead, self.edges, len(IK)))
        self.burst_due = np.zeros(ahead, dtype=bool)
        self.exit_due = np.zeros((ahead, *shape_))
        self.rejoin_due = np.zeros((ahead, 2, len(bands)))
        self.arrivals = shape.initial_arrivals(scenario.audience, scenario.duration, self.dt)
        self.surges = shape.surge_rates(settings.surges, scenario.duration, self.dt)
        self.churn = shape.churn_share(scenario.audience, self.dt)
        self.prev_failure = np.zeros((self.edges, len(IK)))
        self.bitrate = np.zeros((self.edges, len(bands)))
        p, d = self.stream.part_duration, self.stream.segment_duration
        # behind live at light load, as the rehearsal's players measure it (p50, ⅓ s parts, 2 s
        # segments: LL-HLS 1.52 s, classic 5.13 s; docs/simulation.md): LL-HLS PART-HOLD-BACK
        # (3 parts) and the start snapped back to an independent part, a quarter segment on
        # average; classic hls.js 3 segments back from the playlist's end, the newest one
        # still half a segment in the making
        self.base_latency = np.array([3 * p + d / 4, 2.5 * d])
        # the media buffered ahead of the playhead: all of it but the part (segment) in the making
        self.slack = self.base_latency - np.array([p / 2, d / 2])
        self.driver_burst = 0.0  # seconds of driver work per part boundary (shared_cores)
        self._retries_sent = 0.0
        self.replacements = 0.0
        self.delivery = Delivery(settings, scenario.duration, len(self.video_bps))

    # -- audience -------------------------------------------------------------------------

    def _slot(self, i: int) -> int:
        return i % self.ahead

    def _arrivals(self, i: int, up: npt.NDArray[np.bool_]) -> Floats:
        """Joiners of step ``i`` per cohort, steered to the edges that are up."""
        fresh = self.arrivals[i] + max(self.surges[i], 0.0) + self.replacements
        self.replacements = 0.0
        per_mode_band = fresh * self.mode_share[:, None] * self.band_share[None, :]
        per_mode_band = per_mode_band + self.rejoin_due[self._slot(i)]
        self.rejoin_due[self._slot(i)] = 0.0
        weights = up.astype(np.float64)
        if weights.sum() == 0:
            weights = np.ones(self.edges)
        weights /= weights.sum()
        return np.asarray(weights[:, None, None] * per_mode_band[None, :, :], dtype=np.float64)

    def _departures(self, i: int, t: float) -> Floats:
        """Share of each cohort leaving in step ``i`` (churn, exit surges)."""
        total = self.present.sum()
        share = self.churn
        if self.surges[i] < 0 and total > 0:
            share = 1 - (1 - share) * (1 - min(1.0, -self.surges[i] / total))
        exit_share = shape.exit_share(t, self.dt, self.scenario.duration, self.settings.exit_surge)
        return np.full(self.present.shape, 1 - (1 - share) * (1 - exit_share))

    # -- delivery -------------------------------------------------------------------------

    # -- one step -------------------------------------------------------------------------

    def _edge_faults(self, faults: StepFaults) -> tuple[npt.NDArray[np.bool_], Floats, Floats]:
        up = np.ones(self.edges, dtype=bool)
        extra = np.zeros((self.edges, len(IK)))
        errors = np.zeros((self.edges, len(IK)))
        kinds = REQUEST_KIND  # the faults and capacities name the request kinds
        for index, node in zip(faults.edges, faults.edge, strict=True):
            up[index] = not node.down
            extra[index] = [node.latency[k] for k in kinds]
            errors[index] = [node.error[k] for k in kinds]
        return up, extra, errors

    def _leave(self, i: int, t: float) -> list[Departure]:
        """Viewers leaving at step ``i``: churn and surges (outcome as the cohort's mean) and
        the fatal exits due now (who may rejoin)."""
        out: list[Departure] = []
        slot = self._slot(i)
        fatal = np.minimum(self.exit_due[slot], self.present)
        self.exit_due[slot] = 0.0
        if fatal.sum() > 0:
            out += self._outcomes(fatal, FATAL)
            self.present -= fatal
            self.doomed = np.maximum(self.doomed - fatal, 0.0)
            rejoin = fatal.sum(axis=0) * self.settings.rejoin_share
            later = self._slot(i + int(np.ceil(self.settings.rejoin_after / self.dt)) + 1)
            self.rejoin_due[later] += rejoin
        leaving = self.present * self._departures(i, t)
        if leaving.sum() > 0:
            out += self._outcomes(leaving, LEFT)
            self.present -= leaving
            self.doomed = np.minimum(self.doomed, self.present)
            if self.scenario.audience.replace:
                self.replacements += float(leaving.sum())
        return out

    def _outcomes(self, counts: Floats, kind: str) -> list[Departure]:
        """One departure record per (mode, band): counts summed over the edges, per-viewer
        figures their count-weighted means."""
        total = counts.sum(axis=0)  # [mode, band]
        safe = np.maximum(total, 1e-12)
        stalled, played, stalls, behind = (
            (array * counts).sum(axis=0) / safe
            for array in (self.stalled_pv, self.played_pv, self.stalls_pv, self.behind)
        )
        bitrate = self.bitrate.mean(axis=0)  # [band]
        return [
            Departure(
                float(total[mode, band]),
                float(stalled[mode, band]),
                float(played[mode, band]),
                float(stalls[mode, band]),
                float(self.base_latency[mode] + behind[mode, band]),
                float(bitrate[band]),
                kind,
            )
            for mode in (LL, CLASSIC)
            for band in range(counts.shape[2])
            if total[mode, band] > 0
        ]

    def step(self, i: int) -> StepFigures:
        t = i * self.dt
        dt = self.dt
        faults = faults_at(self.scenario.faults, t + dt / 2, self.edges)
        up, edge_latency, edge_errors = self._edge_faults(faults)
        departed = self._leave(i, t)
        joiners = self._arrivals(i, up)
        # what the viewers can pull: their downlink, or their share of a saturated edge NIC
        watchers = (self.present + joiners).sum(axis=(1, 2))
        node_bytes = self.settings.edges.bytes_per_s if self.settings.edges else (
            self.settings.origin.bytes_per_s if self.settings.origin else 1e12)  # fmt: skip
        fair = node_bytes * 8 / np.maximum(watchers, 1e-9)
        throughput = np.minimum(self.downlink[None, :], fair[:, None])
        rung = rung_for(self.video_bps, self.audio_bps, throughput)
        self.bitrate = self.video_bps[rung] + self.audio_wire_bps
        requests, retries = self._requests(joiners, i)
        slot = self._slot(i)
        burst = self.retry_due[slot].sum(axis=1) * self.burst_due[slot]
        self.retry_due[slot] = 0.0
        self.burst_due[slot] = False
        viewer_bytes = (self.present * self.bitrate[:, None, :]).sum(axis=(1, 2)) / 8 * dt
        delivery = self.delivery
        delivery.mean_bps = float(self.bitrate.mean())
        watching = self.present + joiners > 0.5
        objects = delivery.objects(rung, watching, joiners.sum(axis=(1, 2)) > 0)
        tiers, failure, latency = delivery.deliver(
            requests, objects, up, edge_latency, edge_errors, viewer_bytes, burst, faults
        )
        self._machine_load(requests, tiers)
        first_failures = (requests - retries) * failure
        self._schedule_retries(i, first_failures, failure)  # the chains of the first tries
        self.prev_failure = failure
        stall = self._play(i, failure, latency, throughput, faults.contribution_down)
        startup = self._start(i, joiners, failure, latency, throughput)
        hits = tiers["edge"].offered - tiers["edge"].failed if "edge" in tiers else 0.0
        upstream = tiers["shield"].offered if "shield" in tiers else (
            tiers["origin"].offered if "edge" in tiers else 0.0)  # fmt: skip
        return StepFigures(
            t=t, present=float(self.present.sum()),
            requests=requests.sum(axis=0), failed=(requests * failure).sum(axis=0),
            refused=(requests * (~up)[:, None]).sum(axis=0),
            latency=np.average(latency, axis=0, weights=requests + 1e-12),
            retries=float(burst.sum()) if burst.any() else self._retries_sent,
            retried=float(first_failures.sum()), retries_burst=bool(burst.any()), tiers=tiers,
            upstream_hits=(hits, max(hits - upstream, 0.0)),
            startup_values=startup[0], startup_weights=startup[1], stalls=stall[0],
            latency_live=stall[1], present_by_mode=self.present.sum(axis=(0, 2)),
            departed=departed + startup[2],
        )  # fmt: skip

    def _requests(self, joiners: Floats, i: int) -> tuple[Floats, Floats]:
        """Requests per edge and kind in the step ``[edge, IK]``: the steady cadence of the
        viewers (suspended while a failed request waits for its retry), the joiners' startup
        requests, and the retries due."""
        dt = self.dt
        waiting = self.blocked_until > i * dt  # a request in flight holds the next ones
        per_mode = (self.present * ~waiting).sum(axis=2)  # [edge, mode]
        steady = np.einsum("em,mk->ek", per_mode, self.rates) * dt * (1 - self.prev_failure)
        startup = np.zeros_like(steady)
        join = joiners.sum(axis=2)
        startup[:, MV] = join.sum(axis=1)
        startup[:, PL_PLAIN] = 2 * join.sum(axis=1)
        startup[:, INIT] = 2 * join.sum(axis=1)
        startup[:, PART] = 2 * join[:, LL]
        startup[:, SEGMENT] = 2 * join[:, CLASSIC]
        retries = self.retry_due[self._slot(i)].copy()
        self._retries_sent = float(retries.sum())
        return np.asarray(steady + startup + retries, dtype=np.float64), retries

    def _policy(self, kind: int) -> RetryPolicy:
        if kind == MV:
            return self.policy.multivariant
        if kind in (PL_BLOCK, PL_PLAIN):
            return self.policy.playlist
        return self.policy.fragment

    def _schedule_retries(self, i: int, failed: Floats, failure: Floats) -> None:
        """Failed requests come back after the policy's backoff; a retry fails as often as the
        first try did (the share of this step), until the retry budget is spent."""
        jitter = self.scenario.retry_jitter
        for kind in range(len(IK)):
            policy = self._policy(kind)
            if not failed[:, kind].any():
                continue
            waited = 0.0
            count = failed[:, kind].copy()
            for retry in range(policy.max_retries):
                waited += mean_backoff(policy, retry)
                later = i + max(1, round(waited / self.dt))
                if later - i >= self.ahead:
                    break
                self.retry_due[self._slot(later)][:, kind] += count
                self.burst_due[self._slot(later)] |= not jitter
                count = count * failure[:, kind]

    def _by_mode(self, per_kind: Floats, ll: int, classic: int) -> Floats:
        """``[edge, IK]`` → ``[edge, mode]``: the kind each mode uses for one role."""
        return np.stack([per_kind[:, ll], per_kind[:, classic]], axis=1)

    def _play(
        self, i: int, failure: Floats, latency: Floats, throughput: Floats, dropped: bool
    ) -> tuple[float, Floats]:
        """The step of the viewers watching: fatal errors, stalls, time behind live (kept per
        viewer, recorded as they leave). Returns (stall events, mean latency behind live per
        mode)."""
        dt = self.dt
        media = np.array([self.stream.part_duration, self.stream.segment_duration])
        f_media = self._by_mode(failure, PART, SEGMENT)
        f_list = self._by_mode(failure, PL_BLOCK, PL_PLAIN)
        n_media = np.array([self.rates[LL, PART], self.rates[CLASSIC, SEGMENT]]) * dt
        n_list = np.array([self.rates[LL, PL_BLOCK], self.rates[CLASSIC, PL_PLAIN]]) * dt
        fatal_list = fatal_share(f_list, n_list[None, :], self.policy.playlist)
        fatal_media = fatal_share(f_media, n_media[None, :], self.policy.fragment)
        fatal = combine(fatal_list, fatal_media)
        healthy = np.maximum(self.present - self.doomed, 0.0)
        doomed = healthy * fatal[:, :, None]
        dying = np.zeros_like(doomed)  # seconds each newly doomed viewer stalls before its end
        if doomed.sum() > 0:
            window = np.where(fatal_list >= fatal_media, retry_window(self.policy.playlist),
                              retry_window(self.policy.fragment))  # fmt: skip
            for steps in np.unique(np.maximum(1, np.round(window / dt)).astype(int)):
                mask = (np.maximum(1, np.round(window / dt)).astype(int) == steps)[:, :, None]
                self.exit_due[self._slot(i + min(int(steps), self.ahead - 1))] += doomed * mask
            self.doomed += doomed
            dying = np.maximum(0.0, window[:, :, None] - self.slack[None, :, None])
        lat_media = self._by_mode(latency, PART, SEGMENT)
        lat_list = self._by_mode(latency, PL_BLOCK, PL_PLAIN)
        # an LL-HLS player needs a playlist per part (the next hint): the slower paces it
        # a classic player's playlist comes from the cache at once, but as stale as the cache's
        # refresh is slow (stale-while-revalidate): new segments show up that much later
        classic = np.maximum(lat_media[:, CLASSIC], lat_list[:, CLASSIC] + self.delivery.staleness)
        pace = np.stack([np.maximum(lat_media[:, LL], lat_list[:, LL]), classic], 1)
        transfer = media[None, :, None] * self.bitrate[:, None, :] / throughput[:, None, :]
        # the answers' times include the machine's load; a rehearsal's driver adds its burst
        cycle = pace[:, :, None] + transfer + self.driver_burst / 2
        slack = self.slack[None, :, None]
        block_stall = self._block(i * dt, cycle, slack)
        slow = cycle > slack
        share = np.where(slow, 0.0, continuous_stall(cycle, media[None, :, None]))
        share[:, CLASSIC] = np.maximum(share[:, CLASSIC], self.delivery.stale_failure)
        if dropped:
            share = np.ones_like(share)
        failing = 1 - (1 - f_media) ** n_media[None, :]
        backoff = mean_backoff(self.policy.fragment, 0)
        retry_stall = failing[:, :, None] * np.maximum(0.0, backoff + cycle - slack)
        steady = ~slow & (share == 0)
        shift = np.where(steady, np.maximum(0.0, cycle - slack - self.behind), 0.0)
        alive = np.where(self.present > 0, healthy / np.maximum(self.present, 1e-12), 1.0)
        stall = np.minimum(dt, dt * share + retry_stall + shift + block_stall) * alive
        sudden = (share > 0) | (shift > 0) | (block_stall > 0)
        starting = (stall > 1e-3) & ~self.was_stalled
        events = np.where(
            starting, np.where(sudden, 1.0, np.minimum(1.0, failing[:, :, None])), 0.0
        )
        self.was_stalled = (share > 0) | (block_stall > 0)
        dying_total = doomed * dying  # their buffer runs out before the retries give up
        present = self.present
        self.stalled_pv += dying_total / np.maximum(present, 1e-12)
        events = events + np.where(dying > 0, doomed / np.maximum(present, 1e-12), 0.0)
        self.behind += stall
        self.stalled_pv += stall
        self.played_pv += dt - stall
        self.stalls_pv += events
        by_mode = present.sum(axis=(0, 2))
        behind = (present * self.behind).sum(axis=(0, 2)) / np.maximum(by_mode, 1e-12)
        live = self.base_latency + lat_media.mean(axis=0) + behind
        return float((events * present).sum()), live

    def _block(self, t: float, cycle: Floats, slack: Floats) -> Floats:
        """Answers slower than the buffer: the viewer's one request in flight per track holds
        its playback until it is answered or times out (then one backoff); the stall runs from
        when the buffer is spent to then. Returns each cohort's stall in the step at ``t``."""
        dt = self.dt
        timeout = np.array([3 * self.stream.segment_duration + self.hold_margin,
                            self.policy.fragment.timeout])[None, :, None]  # fmt: skip
        waited = np.minimum(cycle, timeout) + np.where(
            cycle > timeout, mean_backoff(self.policy.playlist, 0), 0.0
        )
        waited = waited + self.resume_buffer  # media to buffer again before playing on
        starts = (cycle > slack) & (self.blocked_until <= t)
        self.stall_from = np.where(starts, t + slack, self.stall_from)
        self.blocked_until = np.where(starts, t + waited, self.blocked_until)
        begin = np.maximum(t, self.stall_from)
        end = np.minimum(t + dt, self.blocked_until)
        return np.asarray(np.maximum(0.0, end - begin), dtype=np.float64)

    def _start(
        self, i: int, joiners: Floats, failure: Floats, latency: Floats, throughput: Floats
    ) -> tuple[Floats, Floats, list[Departure]]:
        """Joiners' startup: (startup values, their viewer counts, the departure records of
        those whose start failed or who left before the first frame)."""
        values_all, weights_all = [], []
        departures: list[Departure] = []
        media = (PART, SEGMENT)
        # the player starts PART-HOLD-BACK behind live, on existing media; on a rehearsal
        # machine each of the four rounds waits behind the driver's burst: U(0, burst) each
        waits = (4 * self.driver_burst, 4 * self.driver_burst)
        start_bps = self.video_bps[-1] + self.audio_wire_bps  # hls.js's default estimate: lowest
        for mode in (LL, CLASSIC):
            n = joiners[:, mode, :]  # [edge, band]
            if n.sum() <= 0:
                continue
            kinds = [MV, PL_PLAIN, INIT, media[mode]]
            rounds = np.stack([np.broadcast_to(latency[:, k, None], n.shape) for k in kinds], -1)
            duration = self.stream.part_duration if mode == LL else self.stream.segment_duration
            rounds = rounds.copy()
            rounds[..., 3] += duration * start_bps / throughput
            fails = np.stack([np.broadcast_to(failure[:, k, None], n.shape) for k in kinds], -1)
            policies = (self.policy.multivariant, self.policy.playlist, self.policy.fragment,
                        self.policy.fragment)  # fmt: skip
            values, weights, fatal = startup_mixture(rounds, fails, policies, waits[mode])
            leave = abandon_share(values, self.settings.abandon_after,
                                  self.settings.abandon_per_second)  # fmt: skip
            stay = weights * (1 - leave)
            gone = (n[..., None] * weights * leave).sum()
            failed = n * fatal
            started = n * stay.sum(axis=-1)
            counts = n[..., None] * stay  # [edge, band, point]; summed over the edges
            per_band = counts.sum(axis=0)
            values_all.append(((values * counts).sum(axis=0) / np.maximum(per_band, 1e-12)).ravel())
            weights_all.append(per_band.ravel())
            self._admit(mode, started)
            if failed.sum() > 0:
                later = self._slot(i + int(np.ceil(self.settings.rejoin_after / self.dt)) + 1)
                self.rejoin_due[later][mode] += failed.sum(axis=0) * self.settings.rejoin_share
                departures.append(Departure(float(failed.sum()), 0, 0, 0, 0, 0, START_FAILED))
            if gone > 0:
                departures.append(Departure(float(gone), 0, 0, 0, 0, 0, ABANDONED))
        if not values_all:
            return np.zeros(0), np.zeros(0), departures
        return np.concatenate(values_all), np.concatenate(weights_all), departures

    def _admit(self, mode: int, started: Floats) -> None:
        """Started viewers join their cohorts: the per-viewer means are diluted by newcomers
        who have not stalled, played or fallen behind yet."""
        old = self.present[:, mode, :]
        total = old + started
        keep = np.where(total > 0, old / np.maximum(total, 1e-12), 0.0)
        for array in (self.behind, self.stalled_pv, self.played_pv, self.stalls_pv):
            array[:, mode, :] *= keep
        self.present[:, mode, :] = total

    def _machine_load(self, requests: Floats, tiers: dict[str, TierStep]) -> None:
        """``shared_cores``: every tier and the viewers' driver on one machine (a rehearsal);
        the next step's answer times grow with its load."""
        cores = self.settings.shared_cores
        if not cores:
            return
        profile = self.settings.profile
        demand = float(requests.sum()) * profile.driver.cpu_s_per_request
        for name in ("edge", "shield"):
            if name in tiers:
                demand += tiers[name].offered * profile.edge.cpu_s_per_request
        origin = tiers["origin"]
        demand += origin.utilisation * self._origin_cores() * self.dt
        rho = demand / (cores * self.dt)
        self.delivery.machine_factor = float(queueing_factor(np.array([rho]))[0])
        # the LL-HLS players' blocking reloads and hinted parts are answered together at each
        # part boundary: the driver handles that burst of answers on its cores, and any other
        # answer waits behind it — on average half of it, per request round
        burst = float(self.present[:, LL].sum()) * 4 * profile.driver.cpu_s_per_request
        self.driver_burst = burst / cores * self.delivery.machine_factor

    def _origin_cores(self) -> int:
        origin = self.settings.origin
        return origin.count * origin.cores if origin is not None else 1

    def finish(self) -> list[Departure]:
        """Everyone still watching at the end of the show, as departures."""
        return self._outcomes(self.present, LEFT) if self.present.sum() > 0 else []
