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
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from livecast.telemetry.prometheus_config import TargetGroup, file_sd_json, topology_targets

if TYPE_CHECKING:
    from livecast.edge.topology import Topology

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


@contextlib.contextmanager
def targets_written(top: Topology, targets: Path | None) -> Iterator[None]:
    """Keep ``targets`` (file_sd JSON of ``top``) written while the block runs, removed after;
    nothing when ``targets`` is None."""
    if targets is None:
        yield
        return
    write_atomically(targets, file_sd_json(targets_of(top)))
    log.info("Prometheus targets in %s", targets)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            targets.unlink()
