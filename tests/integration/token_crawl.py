"""A cookie-less HLS client for the token tests: GET with only the query token, follow every URI
of every playlist (multivariant → media playlists → init, segments, parts, the preload hint,
the rendition reports), as Safari's native player would."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urljoin


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def get(
    port: int, target: str, headers: dict[str, str] | None = None, timeout: float = 15.0
) -> Answer:
    """One GET on a fresh connection (Connection: close), read to the end."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}"
            "Connection: close\r\n\r\n".encode("latin-1")
        )
        data = await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parsed = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
    if "chunked" in parsed.get("transfer-encoding", ""):
        body = _unchunk(body)
    return Answer(int(status_line.split()[1]), parsed, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def playlist_uris(text: str) -> list[str]:
    """Every URI of a playlist: the URI lines and the quoted URI attributes (RFC 8216bis §4)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    return lines + re.findall(r'[:,]URI="([^"]*)"', text)


def without_token(target: str) -> str:
    path, _, query = target.partition("?")
    kept = [a for a in query.split("&") if a and not a.startswith("token=")]
    return path + ("?" + "&".join(kept) if kept else "")


Getter = Callable[[str], Awaitable[Answer]]


async def crawl(fetch: Getter, start: str) -> dict[str, Answer]:
    """Every target reachable from ``start`` through playlist URIs, with its answer; the URIs of
    one playlist are fetched together (a preload-hinted part waits while the others complete)."""
    answers: dict[str, Answer] = {}
    wave = [start]
    while wave:
        targets = [t for t in dict.fromkeys(wave) if t not in answers]
        replies = await asyncio.gather(*(fetch(t) for t in targets))
        wave = []
        for target, reply in zip(targets, replies, strict=True):
            answers[target] = reply
            if reply.status == 200 and target.partition("?")[0].endswith(".m3u8"):
                wave += [urljoin(target, uri) for uri in playlist_uris(reply.body.decode())]
    return answers


def kinds(targets: list[str]) -> set[str]:
    """Which kinds of object the targets name."""
    found = set()
    for target in targets:
        name = target.partition("?")[0].rsplit("/", 1)[-1]
        for kind in ("main.m3u8", "index.m3u8", "init-", "seg-", "part-"):
            if name.startswith(kind):
                found.add(kind)
    return found
