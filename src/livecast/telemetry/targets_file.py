"""``livecast up --prometheus-targets FILE``: the thin adapter that writes the file_sd JSON of
:mod:`livecast.telemetry.prometheus_config` for a running topology.

The file is written once every tier listens (atomically: a temporary file renamed over it, so
Prometheus's file watcher never reads half a file) and removed when ``livecast up`` stops, so a
stopped topology leaves no targets on ports another process may take next.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

from livecast.errors import LivecastError
from livecast.telemetry.prometheus_config import TargetGroup, file_sd_json, topology_targets

if TYPE_CHECKING:
    from livecast.config import EventConfig
    from livecast.edge.topology import Topology, TopologySpec

log = logging.getLogger(__name__)


def targets_of(top: Topology) -> list[TargetGroup]:
    """The target groups of a running topology: its origins, then the shield and edges."""
    tiers = [(t.conf.name, t.base_url) for t in top.tier.tiers]
    return topology_targets(top.origin_base_urls, tiers)


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a sibling temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


async def run_up_with_targets(config: EventConfig, spec: TopologySpec, targets: Path) -> int:
    """``livecast up`` (as :func:`livecast.edge.topology.run_up`: entry URLs on stdout, the
    origins and ingest URLs logged, serve until SIGINT/SIGTERM (0) or until the source gives
    up) that also writes ``targets`` (file_sd JSON) while the topology runs."""
    from livecast.edge.topology import running_topology
    from livecast.pipeline import stop_on_signals

    with stop_on_signals() as stop:
        async with running_topology(config, spec) as top:
            write_atomically(targets, file_sd_json(targets_of(top)))
            try:
                for url in top.entry_urls:
                    print(url, flush=True)
                log.info(
                    "origin%s %s; %d edge(s)%s; Prometheus targets in %s; Ctrl-C stops",
                    "s" if top.replicas else "",
                    ", ".join(top.origin_base_urls),
                    len(top.entry_urls),
                    " behind a shield" if spec.shield else "",
                    targets,
                )
                ingest = top.pipeline.ingest_urls + [r.ingest_url for r in top.replicas]
                if ingest:
                    log.info("the encoder publishes to every origin: %s", ", ".join(ingest))
                if not await top.pipeline.serve_until(stop):
                    raise LivecastError("the source gave up; stopping")
                log.info("stopping")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    targets.unlink()
        return 0
