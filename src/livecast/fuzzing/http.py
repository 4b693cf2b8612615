"""The HTTP target: raw bytes to a real origin over real sockets on 127.0.0.1.

RFC 9112 §4: ``status-line = HTTP-version SP status-code SP [ reason-phrase ]``; §5:
``field-line = field-name ":" OWS field-value OWS``; §6.3: a response to HEAD, and 1xx/204/304,
have no content, otherwise the length is given by Content-Length (the origin always sends one).
The origin (``livecast.origin.http``) documents: GET and HEAD only (else 405); URL too long →
414; headers too large → 431; malformed → 400; a refused token → 403; ``503`` only for a hold
that timed out, a shed request or a slow endpoint; a 500 only when handling a request failed —
a bug.

Inputs are 1–3 pipelined requests built from mutated valid parts — methods, targets the origin
publishes with path tricks (``..``, ``%2e``, NUL, ``//``, over-long, non-ASCII, absolute-form),
LL-HLS directives with bad values, CMCD payloads, tokens in the query and in cookies (valid,
mutated, garbage), versions, headers (huge, too many, duplicated or bad ``Content-Length``,
chunked bodies, ``Upgrade``, folded and NUL-bearing lines) — then sometimes byte flips or a cut;
or plain random bytes. Each is sent on a new connection, which is then half-closed.

Properties: everything received is a sequence of well-formed HTTP/1.1 responses (status line,
field lines, as many body bytes as Content-Length says unless the answer is to HEAD) — or
nothing, a clean close; no status is 5xx other than 503, and every status is one the origin
documents (:data:`DOCUMENTED`); and afterwards the origin still answers a viewer's ``GET`` of
the multivariant playlist with 200.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import strategies as st

from livecast.fuzzing import directives
from livecast.fuzzing.core import ArcTracer, RunOne, Session, Target, violation
from livecast.fuzzing.origin import exchange, running_origin

MAX_INPUT = 64 * 1024
STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9]{2}) [\x20-\x7e]*\r\n")
FIELD_LINE = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+): ?([\x20-\x7e]*)\r\n")
# Filled in by the session: the paths the running origin publishes, and a valid token.
PLACEHOLDER_TOKEN = b"@TOKEN@"
PUBLISHED = (
    "/live/main.m3u8",
    "/live/720p/index.m3u8",
    "/live/audio/index.m3u8",
    "@INIT@",
    "@SEGMENT@",
    "@PART@",
    "/metrics",
    "/healthz",
    "/",
    "/player.html",
    "/live/nosuch/index.m3u8",
    "/live/other/main.m3u8",
    "/live/720p/seg-1.m4s",
    "/live/720p/part-1.99.m4s",
    "/live/720p/recording.json",
)

METHODS = (b"GET", b"GET", b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"OPTIONS", b"TRACE")
ODD_METHODS = (b"CONNECT", b"PRI", b"get", b"G ET", b"", b"GET\x00", b"\xff\xfe", b"PATCH")
TRICKS = (
    "/../..", "/%2e%2e/%2E%2E", "%00", "\x00", "//", "/./", "/", "%", "%zz", "%2F", "%c0%ae",
    "é", " ", "\t", "?", "#frag", ";x=1", "/.%2e/", "%252e%252e", "\\..\\",
)  # fmt: skip
VERSIONS = (b"HTTP/1.1",) * 6 + (b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 x", b"HTTP/9.9", b"")
CMCD = (
    "CMCD=bl%3D1000%2Cbr%3D800%2Ccid%3D%22main%22%2Cot%3Dv%2Csf%3Dh%2Csid%3D%22s1%22%2Cst%3Dl",
    "CMCD=", "CMCD=%", "CMCD=bl%3D%C2%B2", "CMCD=sid%3D%22a%2Cb", "CMCD=" + "x" * 3000,
)  # fmt: skip
TOKENS = ("token=@TOKEN@", "token=@TOKEN@", "token=", "token=v1.x", "token=@TOKEN@x", "token=%00")


@st.composite
def target(draw: st.DrawFn) -> bytes:
    path = draw(st.sampled_from(PUBLISHED))
    if draw(st.integers(0, 2)) == 0:
        at = draw(st.integers(0, len(path)))
        path = path[:at] + draw(st.sampled_from(TRICKS)) + path[at:]
    if draw(st.integers(0, 9)) == 0:
        path = draw(st.sampled_from(("http://127.0.0.1", "http://x:1", "*", ""))) + path
    if draw(st.integers(0, 19)) == 0:
        path += "/x" * draw(st.integers(2000, 5000))
    args = draw(
        st.lists(
            st.one_of(
                st.sampled_from(TOKENS),
                st.sampled_from(CMCD),
                directives.queries(),
                st.text(st.characters(codec="latin-1"), max_size=12),
            ),
            max_size=4,
        )
    )
    query = "&".join(args)
    return (path + ("?" + query if query else "")).encode("utf-8", "surrogatepass")


@st.composite
def headers(draw: st.DrawFn) -> bytes:
    lines = [b"Host: 127.0.0.1"] if draw(st.integers(0, 9)) else []
    choices = (
        b"Cookie: livecast_token=@TOKEN@",
        b"Cookie: a=b; livecast_token=garbage; livecast_token=@TOKEN@",
        b"Cookie: " + b"c=1; " * 3000,
        b"Content-Length: 0",
        b"Content-Length: 5",
        b"Content-Length: -1",
        b"Content-Length: abc",
        b"Content-Length: 99999999999999999999",
        b"Content-Length: 3\r\nContent-Length: 4",
        b"Transfer-Encoding: chunked",
        b"Transfer-Encoding: chunked\r\nContent-Length: 3",
        b"Connection: close",
        b"Connection: keep-alive",
        b"Connection: Upgrade\r\nUpgrade: h2c",
        b"Upgrade: websocket",
        b"Expect: 100-continue",
        b"X-Huge: " + b"x" * 20000,
        b"\r\n".join(b"X-%d: y" % i for i in range(150)),
        b"NoColon",
        b" folded: line",
        b"X-Nul: a\x00b",
        b"X-Bin: \xff\xfe",
        b": empty-name",
        b"Range: bytes=0-10",
        b"If-None-Match: *",
    )
    for _ in range(draw(st.integers(0, 4))):
        lines.append(draw(st.sampled_from(choices) | st.binary(max_size=40)))
    return b"".join(line + b"\r\n" for line in lines)


@st.composite
def request(draw: st.DrawFn) -> bytes:
    method = draw(
        st.sampled_from(METHODS) if draw(st.integers(0, 5)) else st.sampled_from(ODD_METHODS)
    )
    line: bytes = method + b" " + draw(target()) + b" " + draw(st.sampled_from(VERSIONS)) + b"\r\n"
    body = draw(st.sampled_from((b"", b"", b"", b"hello", b"5\r\nhello\r\n0\r\n\r\n", b"0\r\n")))
    return line + draw(headers()) + b"\r\n" + body


@st.composite
def http_inputs(draw: st.DrawFn) -> bytes:
    """1–3 pipelined requests, sometimes mutated; or random bytes (see the module)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=2048))
    data = bytearray(b"".join(draw(st.lists(request(), min_size=1, max_size=3))))
    if draw(st.integers(0, 4)) == 0:
        data = data.replace(b"\r\n", b"\n")
    for _ in range(draw(st.integers(0, 3)) if draw(st.booleans()) else 0):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.integers(0, 9)) == 0:
        del data[draw(st.integers(0, len(data))) :]
    return bytes(data[:MAX_INPUT])


def parse_responses(data: bytes) -> list[int]:
    """The statuses of the HTTP/1.1 responses laid end to end in ``data``; PropertyViolation
    when something in it is not one. A body is as long as Content-Length says, unless the answer
    was to HEAD: then the next response starts right after the head."""
    statuses = []
    pos = 0
    while pos < len(data):
        status = STATUS_LINE.match(data, pos)
        violation(status is not None, f"not a status line at {pos}: {data[pos : pos + 80]!r}")
        assert status is not None
        statuses.append(int(status[1]))
        pos = status.end()
        length = None
        while not data.startswith(b"\r\n", pos):
            field = FIELD_LINE.match(data, pos)
            violation(field is not None, f"not a field line at {pos}: {data[pos : pos + 80]!r}")
            assert field is not None
            if field[1].lower() == b"content-length":
                violation(field[2].isdigit(), f"bad Content-Length {field[2]!r}")
                length = int(field[2])
            pos = field.end()
        pos += 2
        violation(length is not None, f"a response without Content-Length: {status[0]!r}")
        assert length is not None
        rest = data[pos:]
        head_only = STATUS_LINE.match(rest) is not None and (
            len(rest) < length or (rest[length:] and not STATUS_LINE.match(rest[length:]))
        )
        if head_only or not rest:
            continue
        violation(len(rest) >= length, f"a body cut short: {len(rest)} of {length} bytes")
        pos += length
    return statuses


# Every status the origin's modules answer with (grep ``Response(``, ``RequestError(`` in
# livecast.origin, livecast.access, livecast.hls): anything else is undocumented.
DOCUMENTED = frozenset({200, 302, 400, 403, 404, 405, 409, 414, 431, 503})


def check(answer: bytes) -> None:
    """The properties of one exchange (see the module)."""
    for status in parse_responses(answer):
        violation(status < 500 or status == 503, f"answered {status}")
        violation(status in DOCUMENTED, f"answered {status}, which the origin never documents")


def http_session(*, gated: bool) -> Session:
    """The session of an HTTP target: start the origin (``gated``: behind a token gate), yield
    the function that sends one input and checks the answers, stop the origin."""

    @contextmanager
    def session(tracer: ArcTracer) -> Iterator[RunOne]:
        with running_origin(tracer, gated=gated) as origin:
            token = origin.token.encode()
            by_kind = {
                "@INIT@": next(u for u in origin.uris if "/init-" in u),
                "@SEGMENT@": next(u for u in origin.uris if "/seg-" in u),
                "@PART@": next(u for u in reversed(origin.uris) if "/part-" in u),
            }
            viewer = f"/live/main.m3u8?token={origin.token}"

            def run(data: bytes) -> None:
                for placeholder, uri in by_kind.items():
                    data = data.replace(placeholder.encode(), uri.encode())
                data = data.replace(PLACEHOLDER_TOKEN, token)
                check(exchange(origin.port, data))
                statuses = parse_responses(origin.get(viewer))
                violation(statuses == [200], f"the origin no longer serves a viewer: {statuses}")

            yield run

    return session


TARGETS = (
    Target(
        "http.origin",
        "raw requests (mutated, pipelined, random) to a real token-gated origin on 127.0.0.1",
        http_inputs(),
        http_session(gated=True),
    ),
    Target(
        "http.open",
        "the same to an origin without a gate (the keep-alive GET fast path, answer cache)",
        http_inputs(),
        http_session(gated=False),
    ),
)
