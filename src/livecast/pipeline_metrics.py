"""The live pipeline's own metrics (adapter): the ingest's switches and publishes, the recording's
disk errors and gaps — registered once in the origin's :class:`Registry`, kept up to date by
:class:`~livecast.pipeline.LivePipeline` (docs/ingest.md, docs/recording.md)."""

from __future__ import annotations

from collections.abc import Mapping

from livecast.channel import Channel, ChannelMetrics
from livecast.sources.contribution import ContributionSource
from livecast.store.archive import Recording
from livecast.telemetry.metrics import Registry

__all__ = ["IngestMetrics", "RecordMetrics", "channel_metrics"]


def channel_metrics(registry: Registry) -> ChannelMetrics:
    """The counters every channel adds to."""
    return ChannelMetrics(
        parts=registry.counter("livecast_packager_parts_total", "Parts published", ("rendition",)),
        media_errors=registry.counter(
            "livecast_packager_media_errors_total", "Unusable encoder output", ("rendition",)
        ),
        restarts=registry.counter(
            "livecast_transcode_restarts_total", "Encoder restarts after a failure"
        ),
        dropped=registry.counter(
            "livecast_hub_dropped_units_total",
            "Media units a stream reader's full queue dropped",
            ("stream", "reader"),
        ),
    )


class IngestMetrics:
    """What is on air, its switches and gaps, and the publishers' outcomes."""

    def __init__(self, registry: Registry) -> None:
        self.switches = registry.counter(
            "livecast_ingest_switches_total",
            "Changes of what is on air (primary, backup, slate)",
            ("from", "to", "stream"),
        )
        self.on_air = registry.gauge(
            "livecast_ingest_on_air", "1 for what viewers see now (an input or the slate)",
            ("input", "stream"),
        )  # fmt: skip
        self.switch_gap = registry.gauge(
            "livecast_ingest_switch_gap_seconds",
            "The last input switch: seconds from the old input's last media to the new one on air",
            ("stream",),
        )
        self.publishes = registry.counter(
            "livecast_ingest_publishes_total",
            "Encoders asking to publish, by outcome "
            "(accepted, wrong_key, unknown_app, busy, not_started, ended)",
            ("result",),
        )
        self.received = registry.counter(
            "livecast_ingest_received_bytes_total",
            "FLV bytes an input's encoder delivered to the transcoder",
            ("input", "stream"),
        )
        self.timestamp_jumps = registry.counter(
            "livecast_ingest_timestamp_jumps_total",
            "Encoder clock jumps re-based (docs/ingest.md)",
            ("input", "stream"),
        )
        self.transcode_runs = registry.counter(
            "livecast_transcode_runs_total",
            "Ladder FFmpeg runs started for an event's contribution",
            ("stream",),
        )
        self.input_overflows = registry.counter(
            "livecast_transcode_input_overflows_total",
            "Runs given up because the ladder FFmpeg fell behind its input",
            ("stream",),
        )

    def collect(self, contributions: Mapping[str, ContributionSource]) -> None:
        """Copy the contributions' own running totals (they only grow) into the counters."""
        for stream, source in contributions.items():
            for name, relay in source.relays.items():
                self.received.labels(name, stream).value = float(relay.stats.bytes_out)
                self.timestamp_jumps.labels(name, stream).value = float(relay.stats.timestamp_jumps)
            self.transcode_runs.labels(stream).value = float(source.stats.runs)
            self.input_overflows.labels(stream).value = float(source.stats.input_overflows)


class RecordMetrics:
    """The recording's segments, write errors, lost segments and ended events, per stream and
    rendition."""

    def __init__(self, registry: Registry) -> None:
        self.errors = registry.counter(
            "livecast_record_errors_total",
            "Writes the recording's disk refused (live went on from memory)",
            ("stream", "rendition"),
        )
        self.gaps = registry.counter(
            "livecast_record_gap_segments_total",
            "Segments the recording lost (EXT-X-GAP in its VOD playlist)",
            ("stream", "rendition"),
        )
        self.segments = registry.counter(
            "livecast_record_segments_total",
            "Segments added to the recording's VOD playlist (lost ones included: EXT-X-GAP)",
            ("stream", "rendition"),
        )
        self.ended = registry.gauge(
            "livecast_record_ended", "1 once the event ended (VOD at the live URLs)", ("stream",)
        )
        self._seen: dict[tuple[str, str], tuple[int, int, int]] = {}

    def update(self, recording: Recording | None, channels: Mapping[str, Channel]) -> None:
        """Bring the figures up to date with the recording's renditions and the channels."""
        if recording is None:
            return
        for stream_id, name, rendition in recording.renditions():
            errors, gaps, segments = self._seen.get((stream_id, name), (0, 0, 0))
            self.errors.labels(stream_id, name)  # present from the start, at 0
            self.gaps.labels(stream_id, name)
            self.segments.labels(stream_id, name)
            if rendition.errors > errors:
                self.errors.inc(stream_id, name, amount=rendition.errors - errors)
            if rendition.gap_segments > gaps:
                self.gaps.inc(stream_id, name, amount=rendition.gap_segments - gaps)
            if rendition.index.count > segments:
                self.segments.inc(stream_id, name, amount=rendition.index.count - segments)
            self._seen[(stream_id, name)] = (
                rendition.errors,
                rendition.gap_segments,
                rendition.index.count,
            )
        for stream_id, channel in channels.items():
            self.ended.set(1.0 if channel.event.ended else 0.0, stream_id)
