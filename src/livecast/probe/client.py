"""The probe's asyncio adapter: a tiny keep-alive HTTP/1.1 client driving the sans-IO
:class:`~livecast.probe.core.ProbeSession`, and ``run_probe`` behind ``livecast probe``.

Two lanes (playlist, part), one keep-alive connection per lane and origin, each request with its
own timeout; responses parsed with httptools. Time is ``time.time()`` (the PDT clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httptools

from livecast.errors import ProbeError
from livecast.httpsink import ResponseSink
from livecast.probe.core import ProbeReport, ProbeRequest, ProbeSession

TICK = 0.25  # seconds between stall checks
USER_AGENT = "livecast-probe"


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to ``scheme://netloc``, reopened when needed."""

    def __init__(self, scheme: str, netloc: str) -> None:
        if scheme not in ("http", "https"):
            raise ProbeError(f"unsupported URL scheme {scheme!r} (http or https)")
        split = urlsplit(f"{scheme}://{netloc}")
        if split.hostname is None:
            raise ProbeError(f"no host in {scheme}://{netloc}")
        self.scheme = scheme
        self.host = split.hostname
        self.port = split.port or (443 if scheme == "https" else 80)
        self.netloc = netloc
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def get(
        self, target: str, timeout: float, keep_body: bool = True
    ) -> tuple[int, bytes, int]:
        """GET ``target`` (path + query): (status, body if ``keep_body``, body size)."""
        try:
            async with asyncio.timeout(timeout):
                reused = self._writer is not None
                try:
                    return await self._exchange(target, keep_body)
                except (ConnectionError, EOFError):
                    self.close()
                    if not reused:
                        raise
                return await self._exchange(target, keep_body)  # the server closed an idle one
        except BaseException:
            self.close()  # timed out or cancelled mid-response: the connection is unusable
            raise

    async def _exchange(self, target: str, keep_body: bool) -> tuple[int, bytes, int]:
        if self._writer is None:
            context = ssl.create_default_context() if self.scheme == "https" else None
            self._reader, self._writer = await asyncio.open_connection(
                self.host, self.port, ssl=context
            )
        reader, writer = self._reader, self._writer
        assert reader is not None
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {self.netloc}\r\nUser-Agent: {USER_AGENT}\r\n"
            "Accept: */*\r\n\r\n"
        )
        writer.write(request.encode("latin-1"))
        response = ResponseSink(keep_body)
        while not response.complete:
            data = await reader.read(256 * 1024)
            if not data:
                raise EOFError("the server closed the connection")
            try:
                response.parser.feed_data(data)
            except httptools.HttpParserError as exc:
                self.close()
                raise ConnectionError(f"malformed HTTP response: {exc}") from exc
        if not response.keep_alive:
            self.close()
        return response.status, response.body, response.size

    def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host: {exc.strerror or exc}"
    if isinstance(exc, EOFError | asyncio.IncompleteReadError | ConnectionResetError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


class ProbeRunner:
    """Runs a :class:`ProbeSession` over real connections until a deadline or a failure."""

    def __init__(self, session: ProbeSession, clock: Callable[[], float] = time.time) -> None:
        self.session = session
        self.clock = clock
        self.failure: ProbeError | None = None
        self._connections: dict[tuple[str, str, str], HttpConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    async def run(self, seconds: float) -> ProbeReport:
        """Follow the stream for ``seconds``; raise :class:`ProbeError` if it cannot join."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        try:
            self._dispatch(self.session.start(self.clock()))
            while self.failure is None and not self.session.finished:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(TICK, remaining))
                self._guard(lambda: self.session.on_tick(self.clock()))
        finally:
            await self._shutdown()
        if self.failure is not None and self.session.playlist is None:
            raise self.failure  # could not join: no report worth printing
        return self.session.report(self.clock())

    def _dispatch(self, requests: list[ProbeRequest]) -> None:
        for request in requests:
            task = asyncio.ensure_future(self._execute(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _guard(self, step: Callable[[], list[ProbeRequest]]) -> None:
        try:
            self._dispatch(step())
        except ProbeError as exc:
            self.failure = exc
            self._wake.set()

    def _connection(self, request: ProbeRequest) -> tuple[HttpConnection, str]:
        split = urlsplit(request.url)
        key = (request.lane, split.scheme, split.netloc)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._connections[key] = HttpConnection(split.scheme, split.netloc)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
        return connection, target

    async def _execute(self, request: ProbeRequest) -> None:
        if request.delay > 0:
            await asyncio.sleep(request.delay)
        session = self.session
        try:
            connection, target = self._connection(request)
            keep_body = request.kind in ("multivariant", "playlist")
            status, body, size = await connection.get(target, request.timeout, keep_body)
        except ProbeError as exc:
            self.failure = exc
            self._wake.set()
            return
        except (OSError, EOFError, TimeoutError, asyncio.IncompleteReadError) as exc:
            detail = _describe(exc)
            self._guard(lambda: session.on_error(request, 0, self.clock(), detail))
            return
        now = self.clock()
        if status != 200:
            self._guard(lambda: session.on_error(request, status, now))
        elif request.kind == "multivariant":
            text = body.decode("utf-8", errors="replace")
            self._guard(lambda: session.on_multivariant(text, now))
        elif request.kind == "playlist":
            text = body.decode("utf-8", errors="replace")
            self._guard(lambda: session.on_playlist(text, now))
        else:
            self._guard(lambda: session.on_part(request.url, size, now))
        if session.finished:
            self._wake.set()

    async def _shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in self._connections.values():
            connection.close()


async def probe(url: str, seconds: float, rendition: str | None = None) -> ProbeReport:
    """Follow the LL-HLS stream at ``url`` for ``seconds``; the report of what was seen.

    Raises :class:`ProbeError` when the stream cannot be joined (unreachable, bad playlist)."""
    if seconds <= 0:
        raise ProbeError(f"--seconds must be positive, got {seconds:g}")
    return await ProbeRunner(ProbeSession(url, rendition)).run(seconds)


def format_report(report: ProbeReport) -> str:
    """A short human-readable table."""

    def ms(value: float | None) -> str:
        return "–" if value is None else f"{value * 1000:.0f} ms"

    def spread(values: dict[str, float] | None) -> str:
        if values is None:
            return "–"
        return " / ".join(ms(values[k]) for k in ("p50", "p95", "max"))

    errors = ", ".join(f"{k}×{v}" for k, v in sorted(report.errors.items())) or "none"
    rows = [
        ("stream", report.media_url or report.url),
        ("result", "ok" if report.ok else f"FAILED: {report.error}"),
        ("followed", f"{report.seconds:.1f} s"),
        ("startup", ms(report.startup)),
        ("parts", f"{report.parts} ({report.bytes / 1e6:.2f} MB in {report.requests} requests)"),
        ("latency p50/p95/max", spread(report.latency)),
        ("blocking wait p50/p95/max", spread(report.blocking_wait)),
        ("longest gap between parts", ms(report.max_part_gap)),
        ("errors", errors),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


async def run_probe(url: str, seconds: float, as_json: bool, rendition: str | None) -> int:
    """``livecast probe``: print the report (table or one JSON object); 0 if the stream was
    followed for the whole time, 1 otherwise (with a one-line message on stderr)."""
    try:
        report = await probe(url, seconds, rendition)
    except ProbeError as exc:
        if as_json:
            print(json.dumps({"url": url, "ok": False, "error": str(exc)}), flush=True)
        print(f"livecast: probe: {exc}", file=sys.stderr, flush=True)
        return 1
    if as_json:
        print(json.dumps(report.as_dict()), flush=True)
    else:
        print(format_report(report), flush=True)
    if not report.ok:
        print(f"livecast: probe: {report.error}", file=sys.stderr, flush=True)
        return 1
    return 0
