"""Origin processes for ``livecast up --origins N``: epoch-locked ``livecast serve`` replicas.

The first origin is the pipeline in livecast's own process; :func:`origin_replicas` starts the
other N - 1 as ``python -m livecast serve`` children, each in a session of its own with a
parent-death signal (as nginx, ``edge.nginx``), waits until each answers, restarts one that exits
and stops them all on exit. With the loop source each replica replays from the same epoch
(``--source loop --epoch E``: it rejoins in step, docs/edge.md "Several origins"); with a
contribution source each replica has an RTMP port of its own, which the encoder publishes to as
well (docs/ingest.md, "Epoch lock"), and is ready once it answers (503 while it waits for the
encoder). Also the loopback helpers the topology shares: :func:`free_port`, :func:`url_host`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import livecast
from livecast.admin.settings import AdminSettings
from livecast.config import (
    CONTRIBUTION_SOURCES,
    ORIGINS_NEED_LOOP,
    EventConfig,
    config_toml,
    origins_allowed,
)
from livecast.edge.nginx import die_with_parent, stop_session
from livecast.errors import ConfigError, LivecastError

log = logging.getLogger(__name__)

MULTIVARIANT = "/live/main.m3u8"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel's choice)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def url_host(host: str) -> str:
    """``host`` as it goes in a URL (a wildcard shown as loopback, IPv6 in brackets)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    return f"[{shown}]" if ":" in shown else shown


@dataclass
class OriginProcess:
    """An epoch-locked origin replica: ``livecast serve --source loop --epoch E`` in a session
    of its own, with a parent-death signal (as nginx, ``edge/nginx.py``)."""

    name: str
    argv: list[str]
    host: str  # where it listens, as an upstream address
    port: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0  # time.monotonic() of the last spawn
    restarts: int = 0
    ingest_url: str = ""  # a contribution replica: where the encoder publishes to it too
    ready_statuses: tuple[int, ...] = (200,)  # a contribution replica: 503 (waiting) will do

    @property
    def base_url(self) -> str:
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def spawn(self) -> None:
        package_root = str(Path(livecast.__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env = {**os.environ, "PYTHONPATH": package_root + (os.pathsep + path if path else "")}
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # its URLs are not ours to print; its log goes to stderr
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self.started = time.monotonic()

    async def wait_ready(self, timeout: float) -> None:
        """Until its multivariant playlist answers 200 (every rendition has a segment)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.returncode is not None:
                code = None if self.proc is None else self.proc.returncode
                raise LivecastError(f"{self.name} exited (code {code}) before it was ready")
            if await http_status(self.host, self.port, MULTIVARIANT) in self.ready_statuses:
                return
            await asyncio.sleep(0.1)
        raise LivecastError(f"{self.name} ({self.base_url}) was not ready within {timeout:g} s")

    async def stop(self) -> None:
        if self.proc is not None:
            await stop_session(self.proc, 10.0, self.name)


async def http_status(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    """The status code of ``GET path`` (HTTP/1.1, Connection: close); None when unreachable."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (TimeoutError, OSError):
        return None
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        fields = line.split()
        return int(fields[1]) if len(fields) >= 2 and fields[1].isdigit() else None
    except (TimeoutError, OSError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _replica(
    config: EventConfig, epoch: float, index: int, workdir: Path, host: str
) -> OriginProcess:
    """Replica ``index``: its own config file (a contribution replica: its own RTMP port; no
    admin API — the first origin's is the event's)."""
    config = dataclasses.replace(config, admin=AdminSettings())
    port = free_port(config.host or "0.0.0.0")
    name = f"origin-{index}"
    argv = [sys.executable, "-m", "livecast", "serve"]
    if config.source in CONTRIBUTION_SOURCES:
        rtmp_port = free_port(config.ingest.host or config.host or "0.0.0.0")
        ingest = dataclasses.replace(config.ingest, rtmp_port=rtmp_port)
        conf_file = workdir / f"{name}.toml"  # holds the keys: the directory is the user's own
        conf_file.write_text(config_toml(dataclasses.replace(config, ingest=ingest)), "utf-8")
        argv += ["--config", str(conf_file)]
        ingest_host = url_host(config.ingest.host or config.host)
        ingest_url = f"rtmp://{ingest_host}:{rtmp_port}/{config.ingest.app}"
        origin = OriginProcess(name, argv, host, port, ingest_url=ingest_url)
        origin.ready_statuses = (200, 503)
    else:
        conf_file = workdir / "origin.toml"
        conf_file.write_text(config_toml(config), encoding="utf-8")
        argv += ["--config", str(conf_file), "--source", "loop", "--epoch", repr(epoch)]
        origin = OriginProcess(name, argv, host, port)
    origin.argv += ["--host", config.host, "--port", str(port)]
    if config.record.enabled:  # each replica records on its own (one writer per journal)
        origin.argv += ["--record-dir", str(config.record.path / name)]
    return origin


RESTART_DELAY = 1.0  # seconds before a replica that exited is started again
QUICK_EXIT = 10.0  # a replica that exits sooner after its start than this ...
QUICK_EXITS_MAX = 3  # ... that many times in a row is given up


async def _supervise(origin: OriginProcess) -> None:
    """Restart a replica that exits (crash, kill) with the same epoch: it joins in step with the
    others (docs/edge.md, "Several origins"); meanwhile the edges fail over. Cancelled to stop."""
    quick = 0
    while True:
        assert origin.proc is not None
        code = await origin.proc.wait()
        ran = time.monotonic() - origin.started
        quick = quick + 1 if ran < QUICK_EXIT else 0
        if quick >= QUICK_EXITS_MAX:
            log.error(
                "%s exited %d times in a row within %g s; given up", origin.name, quick, QUICK_EXIT
            )
            return
        log.warning(
            "%s (pid %d) exited with code %s after %.1f s; the edges fail over to the other "
            "origins; restarting it in %g s",
            origin.name,
            origin.proc.pid,
            code,
            ran,
            RESTART_DELAY,
        )
        await asyncio.sleep(RESTART_DELAY)
        await origin.spawn()
        origin.restarts += 1
        log.info("%s restarted: pid %d on %s", origin.name, origin.proc.pid, origin.base_url)


@contextlib.asynccontextmanager
async def origin_replicas(
    config: EventConfig, epoch: float, count: int, workdir: Path, ready_timeout: float = 60.0
) -> AsyncIterator[list[OriginProcess]]:
    """``count`` epoch-locked origin processes (the loop source from ``epoch``, or the encoder's
    contribution on an RTMP port each) with the rest of ``config``, each on a free port; ready
    inside the block, restarted when one exits, all stopped (SIGTERM, then SIGKILL to the process
    group) when the block is left."""
    if not origins_allowed(config.source):
        raise ConfigError("origins", ORIGINS_NEED_LOOP)
    host = url_host(config.host).strip("[]")
    origins: list[OriginProcess] = []
    supervisors: list[asyncio.Task[None]] = []
    try:
        for index in range(1, count + 1):
            origin = _replica(config, epoch, index, workdir, host)
            origins.append(origin)
            await origin.spawn()
        started = time.monotonic()
        await asyncio.gather(*(o.wait_ready(ready_timeout) for o in origins))
        for origin in origins:
            log.info(
                "%s: pid %s on %s (%s), ready in %.1f s",
                origin.name,
                origin.pid,
                origin.base_url,
                f"publish to {origin.ingest_url}" if origin.ingest_url else f"epoch {epoch:.3f}",
                time.monotonic() - started,
            )
            supervisors.append(asyncio.create_task(_supervise(origin), name=origin.name))
        yield origins
    finally:
        for task in supervisors:
            task.cancel()
        await asyncio.gather(*supervisors, return_exceptions=True)
        await asyncio.gather(*(o.stop() for o in origins))
