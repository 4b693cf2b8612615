"""A throw-away redis-server for tests and rehearsals: Debian's ``redis-server`` on 127.0.0.1, on
a free port, without persistence, in its own directory.

    with RedisServer(workdir / "redis") as redis:      # started; answers PING
        url = redis.url                                # redis://127.0.0.1:<port>/0
        ...
        redis.stop(); redis.start()                    # a restart: same port, empty again
        redis.commandstats()                           # {"evalsha": 1234, "ping": 1, ...}

The adapter is synchronous and needs no Redis client library: ``PING`` and ``INFO
commandstats`` are sent over a plain socket (RESP inline commands). ``commandstats()`` is what
Redis itself counted since it (re)started — the rehearsal's "round trips per viewer per minute"
come from it, not from the origins' own counters. ``pause()``/``resume()`` (SIGSTOP/SIGCONT)
make a hung Redis for the fail-open/fail-closed tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from livecast.edge.nginx import die_with_parent
from livecast.errors import LivecastError

HOST = "127.0.0.1"
START_TIMEOUT = 10.0
PORT_ATTEMPTS = 3  # a free port taken by someone else before redis-server bound it: another
MAX_REPLY_BYTES = 1 << 20


class RedisServerError(LivecastError):
    """redis-server is missing, did not start, or did not answer."""


def find_redis_server() -> str:
    """The path of ``redis-server`` (Debian package ``redis-server``), or RedisServerError."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisServerError(
            "redis-server is not on PATH: apt-get install redis-server (scripts/install.sh --test)"
        )
    return binary


def free_port(host: str = HOST) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One redis-server process on loopback: ``start()`` waits until it answers ``PING``;
    ``stop()`` ends it (its data is gone: no RDB, no AOF); ``start()`` again reuses the port.
    Without ``directory`` a temporary one is made (and removed by :meth:`close`)."""

    def __init__(
        self, directory: Path | str | None = None, *, binary: str | None = None, port: int = 0
    ) -> None:
        self.binary = binary or find_redis_server()
        self._own_directory = directory is None
        self.directory = Path(directory or tempfile.mkdtemp(prefix="livecast-redis-"))
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0`` (the port is chosen by the first :meth:`start`)."""
        if not self.port:
            raise RedisServerError("redis-server has no port yet: start() it first")
        return f"redis://{HOST}:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start it and wait until it answers PING (RedisServerError after 10 s or an exit)."""
        if self.running:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        chosen = bool(self.port)
        for attempt in range(1 if chosen else PORT_ATTEMPTS):
            if not chosen:
                self.port = free_port()
            try:
                self._launch()
                return
            except RedisServerError:
                if chosen or attempt == PORT_ATTEMPTS - 1:
                    raise

    def _launch(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        log = (self.directory / "redis-server.log").open("ab")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                preexec_fn=die_with_parent,  # no Redis outlives a rehearsal killed mid-run
            )
        except OSError as exc:
            raise RedisServerError(f"cannot run {self.binary}: {exc}") from exc
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._end_process()
                raise RedisServerError(
                    f"redis-server did not start on {HOST}:{self.port} "
                    f"(see {self.directory / 'redis-server.log'})"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        """End the process (a paused one too); its data is gone. The port is kept."""
        self._end_process()

    def restart(self) -> None:
        """Stop and start again on the same port: an empty Redis, as after a crash."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop, and remove the directory if this adapter made it."""
        self.stop()
        if self._own_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def pause(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing is answered (a hung Redis)."""
        os.kill(self._pid(), signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self._pid(), signal.SIGCONT)

    def ping(self) -> bool:
        """Whether it answers PING now."""
        try:
            return self._command(b"PING", timeout=0.5).startswith(b"+PONG")
        except OSError:
            return False

    def commandstats(self) -> dict[str, int]:
        """The calls per command Redis counted since it started (``INFO commandstats``), e.g.
        ``{"evalsha": 1234, "script|load": 2, "ping": 1, "zadd": 1234, …}`` — the start-up PINGs
        and earlier INFOs included (Redis counts a command once it has answered it), and so are
        the commands a Lua script runs inside Redis (ZADD, PEXPIRE …), which are no round trips:
        a client's round trips are its ``evalsha`` (+ ``script|load``) calls."""
        try:
            reply = self._command(b"INFO commandstats", timeout=2.0)
        except OSError as exc:
            raise RedisServerError(f"redis-server on port {self.port} did not answer") from exc
        return parse_commandstats(_bulk_string(reply))

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- the process and the wire ------------------------------------------------------------

    def _pid(self) -> int:
        if self.process is None:
            raise RedisServerError("redis-server is not running")
        return self.process.pid

    def _end_process(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)  # a paused server cannot handle SIGTERM
            process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def _command(self, inline: bytes, *, timeout: float) -> bytes:
        """One inline command's whole reply (a status line, or a bulk string read to its end)."""
        with socket.create_connection((HOST, self.port), timeout=timeout) as conn:
            conn.sendall(inline + b"\r\n")
            reply = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return reply
                reply += chunk
                if _complete(reply) or len(reply) > MAX_REPLY_BYTES:
                    return reply


def _complete(reply: bytes) -> bool:
    head, sep, rest = reply.partition(b"\r\n")
    if not sep:
        return False
    if not head.startswith(b"$"):
        return True  # +status, -error, :integer: one line
    size = int(head[1:])
    return size < 0 or len(rest) >= size + 2


def _bulk_string(reply: bytes) -> str:
    head, _, rest = reply.partition(b"\r\n")
    if not head.startswith(b"$"):
        raise RedisServerError(f"unexpected reply to INFO: {head[:80]!r}")
    size = int(head[1:])
    return rest[: max(size, 0)].decode("utf-8", "replace")


def parse_commandstats(info: str) -> dict[str, int]:
    """``cmdstat_<command>:calls=N,usec=…`` lines → ``{command: N}``."""
    counts: dict[str, int] = {}
    for line in info.splitlines():
        name, sep, fields = line.partition(":")
        if not sep or not name.startswith("cmdstat_"):
            continue
        for field in fields.split(","):
            key, _, value = field.partition("=")
            if key == "calls" and value.isdigit():
                counts[name.removeprefix("cmdstat_")] = int(value)
    return counts
