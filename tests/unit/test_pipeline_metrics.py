"""The recording's metrics (pipeline_metrics.RecordMetrics) follow the recording: segments added
to its VOD playlist, counted once each however often the figures are brought up to date."""

from __future__ import annotations

from pathlib import Path

from livecast.pipeline_metrics import RecordMetrics
from livecast.store.archive import Recording
from livecast.telemetry.metrics import Registry

from .synth import Feeder, make_event


def test_recorded_segments_are_counted_once_each(tmp_path: Path) -> None:
    recording = Recording(tmp_path)
    try:
        event = make_event(window=12.0, store=recording)
        feeder = Feeder(event)
        registry = Registry()
        metrics = RecordMetrics(registry)
        metrics.update(recording, {})
        feeder.advance_to(20.0)
        metrics.update(recording, {})
        metrics.update(recording, {})  # nothing new: nothing added
        renditions = recording.renditions()
        assert renditions
        for stream_id, name, rendition in renditions:
            assert rendition.index.count >= 2
            assert metrics.segments.value(stream_id, name) == rendition.index.count
        before = {(s, n): r.index.count for s, n, r in renditions}
        feeder.advance_to(40.0)
        metrics.update(recording, {})
        for stream_id, name, rendition in recording.renditions():
            assert rendition.index.count > before[(stream_id, name)]
            assert metrics.segments.value(stream_id, name) == rendition.index.count
        text = registry.render().decode()
        assert "# TYPE livecast_record_segments_total counter" in text
    finally:
        recording.close()
