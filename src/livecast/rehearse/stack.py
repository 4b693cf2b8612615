"""The stack a rehearsal starts: ``livecast serve`` in its own process, from an event file the
rehearsal writes (the scenario's ``[target]``, plus its ``[shedding]``, ``[record]`` and
``[access]`` tables), stopped with SIGINT afterwards; a contribution stack prints the RTMP URL its
encoders publish to."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from livecast.edge.nginx import die_with_parent
from livecast.errors import LivecastError
from livecast.rehearse.publishers import ingest_config, key_env
from livecast.scenario.file import StackSpec

STACK_START_TIMEOUT = 120.0  # a first loop pre-encode included


def shedding_config(spec: StackSpec) -> list[str]:
    """The ``[shedding]`` table of the stack's event file (``[target] shedding = true``)."""
    if not spec.shedding:
        return []
    lines = ["[shedding]", "enabled = true"]
    if spec.shedding_dvr_ms is not None:
        lines.append(f"dvr_ms = {spec.shedding_dvr_ms}")
    return lines


class Stack:
    """A livecast stack in its own process (``livecast serve``), stopped with SIGTERM. A
    contribution stack (``source = "rtmp"``) gets ``keys`` through its environment and prints
    the RTMP URL its encoders publish to (:attr:`rtmp_url`)."""

    def __init__(
        self,
        spec: StackSpec,
        workdir: Path,
        keys: tuple[str, ...] = (),
        record_dir: Path | None = None,
        tables: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.tables = tables or []  # more tables of the event file ([access])
        self.workdir = workdir
        self.keys = keys
        self.record_dir = record_dir  # the stack records there (start-over viewers need it)
        self.process: asyncio.subprocess.Process | None = None
        self.playlist_url = ""
        self.base_url = ""
        self.rtmp_url = ""

    async def start(self) -> None:
        config = self.workdir / "stack.toml"
        lines = [
            'host = "127.0.0.1"', "port = 0", f'source = "{self.spec.source}"',
            f"loop_seconds = {self.spec.loop_seconds}",
            f"part_duration = {self.spec.part_duration}", 'log_level = "warning"',
        ]  # fmt: skip
        if self.spec.cache_dir:
            lines.append(f'cache_dir = "{self.spec.cache_dir}"')
        lines += ingest_config(self.spec)  # a table: after every top-level key
        lines += shedding_config(self.spec)
        lines += self.tables
        if self.record_dir is not None:
            lines += ["[record]", f"dir = {json.dumps(str(self.record_dir))}"]
        config.write_text("\n".join(lines) + "\n")
        with open(self.log_path, "wb") as stack_log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "livecast", "serve", "--config", str(config),
                stdout=asyncio.subprocess.PIPE, stderr=stack_log,
                env={**os.environ, **key_env(self.keys)},
                preexec_fn=die_with_parent,  # no stack outlives a rehearsal killed mid-run
            )  # fmt: skip
        try:
            async with asyncio.timeout(STACK_START_TIMEOUT):
                await self._read_urls()
        except TimeoutError:
            pass
        if not self.playlist_url.endswith(".m3u8") or (
            self.spec.contribution and not self.rtmp_url.startswith("rtmp://")
        ):
            tail = self.log_path.read_text(errors="replace")[-500:]
            raise LivecastError(f"the stack did not start: {tail.strip() or 'no output'}")
        self.base_url = self.playlist_url.split("/live/", 1)[0]

    @property
    def log_path(self) -> Path:
        return self.workdir / "stack.log"

    async def _read_urls(self) -> None:
        """``serve`` prints the playlist URL, the player URL, then (rtmp) the ingest URL."""
        assert self.process is not None and self.process.stdout is not None
        stdout = self.process.stdout
        self.playlist_url = (await stdout.readline()).decode().strip()
        if self.spec.contribution:
            await stdout.readline()  # the player page
            self.rtmp_url = (await stdout.readline()).decode().strip()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGINT)  # stop the stack; the event is not "over" (SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
