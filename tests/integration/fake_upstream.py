"""A scripted HTTP upstream on loopback (a thread, HTTP/1.1 keep-alive) and a real nginx tier in
front of it, both synchronous — for the edge tests that need answers an origin would not give
(arbitrary playlists, a shedding origin's 503s)."""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from livecast.edge.nginx import find_nginx, prepare_prefix, worker_user
from livecast.edge.nginx_conf import TierConfig


@dataclass(frozen=True)
class Scripted:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


class FakeUpstream:
    """Answers each path from its script (the last answer repeats); counts requests by path."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Scripted]] = {}
        self.counts: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._names = itertools.count()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's name
                path = self.path.partition("?")[0]
                with upstream.lock:
                    upstream.counts[path] += 1
                    script = upstream.scripts.get(path)
                    answer = (
                        (script.pop(0) if len(script) > 1 else script[0])
                        if script
                        else Scripted(404, (("Cache-Control", "no-store"),), b"no\n")
                    )
                self.send_response(answer.status)
                for name, value in answer.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def script(self, path: str, *answers: Scripted) -> None:
        with self.lock:
            self.scripts[path] = list(answers)

    def serve_playlist(self, body: bytes, max_age: int = 60) -> str:
        """A new live path (stream ``main``) answering ``body`` as a playlist; the path."""
        path = f"/live/main/p{next(self._names)}/index.m3u8"
        headers = (
            ("Content-Type", "application/vnd.apple.mpegurl"),
            ("Cache-Control", f"public, max-age={max_age}"),
        )
        self.script(path, Scripted(200, headers, body))
        return path


def _listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nginx did not listen on {port}")


@contextlib.contextmanager
def running_tier(conf: TierConfig) -> Iterator[int]:
    """nginx for ``conf`` (its own session, fast shutdown on exit); yields its port."""
    conf = worker_user(conf)
    conf_file = prepare_prefix(conf)
    prefix = Path(conf.prefix)
    proc = subprocess.Popen(
        [find_nginx(), "-p", str(prefix), "-c", str(conf_file), "-e", str(prefix / "error.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _listening(conf.port)
        yield conf.port
    finally:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
