"""A counting relay in front of the origin: what exactly reaches it, and an outage on demand.

:class:`RequestTap` listens on a loopback port and relays every connection byte for byte to the
origin, reading the request lines on the way (``GET /live/720p/index.m3u8?_HLS_msn=… HTTP/1.1``)
into a counter by request target. Put it between the edges and the origin to count origin
requests per object (miss collapsing, offload), and :meth:`cut` / :meth:`restore` it to take
the origin away from the edges and give it back (connections refused meanwhile).

It parses nothing but request lines, so it works with keep-alive and pipelining; request bodies
are not expected (GET/HEAD only — the origin refuses the rest).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter

_REQUEST_LINE = re.compile(rb"^([A-Z]{3,10}) (\S+) HTTP/1\.[01]$")


class RequestTap:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.counts: Counter[str] = Counter()  # request target → requests relayed
        self.host = "127.0.0.1"
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def count(self, target: str) -> int:
        """Requests for exactly ``target`` (path and query as sent)."""
        return self.counts[target]

    def count_path(self, path: str) -> int:
        """Requests for ``path`` whatever their query."""
        return sum(n for t, n in self.counts.items() if t.partition("?")[0] == path)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._server = await asyncio.start_server(self._accept, host, port, backlog=4096)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Stop listening and drop every relayed connection: the origin is unreachable."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()  # ends both pumps of the connection
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=2.0)
        if server is not None:
            await server.wait_closed()

    async def restore(self) -> None:
        """Listen again on the same port."""
        if self._server is None:
            self._server = await asyncio.start_server(
                self._accept, self.host, self.port, backlog=4096
            )

    async def stop(self) -> None:
        await self.cut()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pump(reader, upstream_writer, count=True),
                self._pump(upstream_reader, writer, count=False),
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()
            self._tasks.discard(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        pending = b""
        try:
            while data := await reader.read(65536):
                if count:
                    *lines, pending = (pending + data).split(b"\r\n")
                    for line in lines:
                        match = _REQUEST_LINE.match(line)
                        if match is not None:
                            self.counts[match[2].decode("latin-1")] += 1
                    pending = pending[-16384:]
                writer.write(data)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
