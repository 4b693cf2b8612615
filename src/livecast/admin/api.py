"""The admin API's HTTP core — sans-IO, like h11: bytes and headers in, an :class:`AdminResponse`
out, ``now`` passed in; :mod:`livecast.admin.server` puts it on a socket.

Every request meets, in this order: the per-client token bucket (429 with ``Retry-After``; failed
authentications count too, so guessing secrets is as slow as the bucket), the body limit (413),
the route table of :mod:`livecast.admin.openapi` (404, 405 with ``Allow``), the bearer check (401
with ``WWW-Authenticate: Bearer``, nothing changed), the body's JSON and its schema (400 naming the
field), then the operation (404/409/503 from :mod:`livecast.admin.state`). An operation that acts
on the world (with an injected :class:`~livecast.admin.state.AdminControl`) is answered in two
steps: :meth:`AdminApi.handle` gives the :class:`~livecast.admin.state.AdminCall` to await, and
:meth:`AdminApi.finish` the answer once the server has its result. A bug is a 500 whose log
line names the operation, never a header or a body: bearer secrets and issued tokens stay out of
logs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from livecast.admin.openapi import (
    PREFIX,
    QUERY_SCHEMAS,
    REVOCATIONS_PAGE,
    ROUTES,
    SCHEMAS,
    Route,
    document,
)
from livecast.admin.state import (
    EVENT_ID,
    AdminCall,
    AdminState,
    Conflict,
    NotFound,
    SessionPage,
    Unavailable,
)
from livecast.errors import ConfigError, LivecastError
from livecast.ingest.keys import PublishPoint, fingerprint

__all__ = ["MAX_BODY_BYTES", "AdminApi", "AdminResponse", "BadRequest", "RateLimit", "hash_secret"]

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_SECRET_CHARS = 512
_TOKEN68 = re.compile(r"[A-Za-z0-9._~+/-]+=*")
JSON_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
READER_PATH = PREFIX + "/revocations"


def hash_secret(secret: str) -> str:
    """How an admin secret is configured: the hex SHA-256 of its UTF-8 text."""
    return hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


class BadRequest(LivecastError):
    """A request body or query the API refuses (400); ``field`` names the culprit."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class AdminResponse:
    """What to send: the status, the headers (without Date/Connection/Content-Length), the body."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (case-insensitive), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def json(self) -> Any:
        """The body parsed as JSON (tests)."""
        return json.loads(self.body)


def json_response(status: int, value: Any, extra: Sequence[tuple[str, str]] = ()) -> AdminResponse:
    body = json.dumps(value, separators=(",", ":")).encode()
    return AdminResponse(status, (*JSON_HEADERS, *extra), body)


def error(
    status: int, message: str, field: str = "", extra: Sequence[tuple[str, str]] = ()
) -> AdminResponse:
    value = {"error": message, "field": field} if field else {"error": message}
    return json_response(status, value, extra)


def refused(refusal: NotFound | Conflict | Unavailable) -> AdminResponse:
    """The answer to a domain refusal: 404, 409, or 503 with ``Retry-After``."""
    if isinstance(refusal, NotFound):
        return error(404, str(refusal))
    if isinstance(refusal, Conflict):
        return error(409, str(refusal))
    return error(503, str(refusal), extra=(("Retry-After", "1"),))


def sessions_response(page: SessionPage) -> AdminResponse:
    """The answer listing ``page`` (schema ``SessionList``)."""
    sessions = [
        {"account": s.account, "session": s.session, "started": s.started, "expires": s.expires}
        for s in page.leases
    ]
    return json_response(200, {"sessions": sessions, "truncated": page.truncated})


def _where(publish: PublishPoint | None) -> str:
    """How a log line names where an event's encoder publishes: the key by its fingerprint."""
    return "" if publish is None else f" (publish to {publish.url}, key {fingerprint(publish.key)})"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket per client address: ``rate`` requests per second, bursts of ``burst``;
    at most ``max_clients`` buckets are kept (the least recently seen go first)."""

    rate: float = 20.0
    burst: float = 40.0
    max_clients: int = 10_000

    def validate(self) -> RateLimit:
        if not self.rate > 0 or not self.burst >= 1 or self.max_clients < 1:
            raise ConfigError("admin.rate_limit", "rate > 0, burst ≥ 1 and max_clients ≥ 1")
        return self


@dataclass(slots=True)
class Buckets:
    """The token buckets of :class:`RateLimit` — pure: ``now`` is passed in."""

    limit: RateLimit
    buckets: OrderedDict[str, tuple[float, float]] = field(default_factory=OrderedDict)

    def take(self, client: str, now: float) -> float:
        """Take one token for ``client``: 0 when allowed, else the seconds until one is there."""
        tokens, last = self.buckets.pop(client, (self.limit.burst, now))
        tokens = min(self.limit.burst, tokens + max(0.0, now - last) * self.limit.rate)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.limit.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > self.limit.max_clients:
            self.buckets.popitem(last=False)
        return wait


def _check_string(schema: dict[str, Any], value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise BadRequest("expected a string", name)
    if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", math.inf):
        raise BadRequest("string length out of range", name)
    pattern = schema.get("pattern")
    if pattern is not None and (value.endswith("\n") or not re.search(pattern, value)):
        raise BadRequest(f"does not match {pattern}", name)


def _check_integer(schema: dict[str, Any], value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest("expected an integer", name)
    if isinstance(value, float) and not value.is_integer():
        raise BadRequest("expected an integer", name)
    if not schema.get("minimum", -math.inf) <= value <= schema.get("maximum", math.inf):
        raise BadRequest("integer out of range", name)
    return int(value)


def validate_body(schema: dict[str, Any], value: Any) -> dict[str, Any]:
    """``value`` (a parsed JSON body) checked against an object schema of :data:`SCHEMAS`:
    no unknown, missing or mistyped field; integers come back as ``int``."""
    if not isinstance(value, dict):
        raise BadRequest("expected a JSON object")
    properties: dict[str, Any] = schema["properties"]
    for name in value:
        if name not in properties:
            raise BadRequest("unknown field", name)
    for name in schema.get("required", ()):
        if name not in value:
            raise BadRequest("missing field", name)
    if not schema.get("minProperties", 0) <= len(value) <= schema.get("maxProperties", math.inf):
        raise BadRequest(f"give exactly one of {', '.join(properties)}")
    checked: dict[str, Any] = {}
    for name, item in value.items():
        prop = properties[name]
        if prop["type"] == "integer":
            checked[name] = _check_integer(prop, item, name)
        else:
            _check_string(prop, item, name)
            checked[name] = item
    return checked


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def parse_json(body: bytes) -> Any:
    """The JSON value of ``body`` or :class:`BadRequest` (not UTF-8, not JSON, NaN, too deep)."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequest("the body is not JSON") from None


def match(route: Route, segments: Sequence[str]) -> dict[str, str] | None:
    """The path parameters if ``segments`` (percent-decoded) fit ``route``'s template."""
    template = route.segments
    if len(template) != len(segments):
        return None
    params: dict[str, str] = {}
    for want, got in zip(template, segments, strict=True):
        if want.startswith("{"):
            params[want[1:-1]] = got
        elif want != got:
            return None
    return params


class AdminApi:
    """The admin API over an :class:`AdminState`. ``admin_hashes``: hex SHA-256 of each admin
    secret (:func:`hash_secret`); the secrets themselves are never held."""

    def __init__(
        self,
        state: AdminState,
        admin_hashes: Iterable[str],
        *,
        rate_limit: RateLimit | None = None,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self.state = state
        self._hashes = tuple(bytes.fromhex(h) for h in admin_hashes)
        if not self._hashes or any(len(h) != 32 for h in self._hashes):
            raise ConfigError("admin.secrets", "give at least one hex SHA-256 of an admin secret")
        self._reader_hashes: tuple[bytes, ...] = ()
        self.buckets = Buckets((rate_limit or RateLimit()).validate())
        self.max_body = max_body
        self.document = json.dumps(document()).encode()
        missing = [r.operation_id for r in ROUTES if not hasattr(self, "op_" + r.operation_id)]
        if missing:
            raise TypeError(f"routes without an operation: {missing}")

    def allow_reader(self, secret_hash: str) -> None:
        """Let the secret of this hex SHA-256 call the ``readers`` routes (GET /revocations) and
        nothing else — what ``livecast up`` gives its edges. Readers are not rate limited there:
        every edge behind one address polls twice a second."""
        try:
            digest = bytes.fromhex(secret_hash)
        except ValueError:
            digest = b""
        if len(digest) != 32:
            raise ConfigError("admin.readers", "a reader is given by the hex SHA-256 of its secret")
        self._reader_hashes += (digest,)

    def handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        client: str,
        now: float,
    ) -> AdminResponse | AdminCall:
        """The answer to one request, or the call to await first (then :meth:`finish`); never
        raises."""
        try:
            return self._handle(method, path, query, headers, body, client, now)
        except Exception:
            log.exception("admin API bug answering %s %s", method, path[:200])
            return error(500, "internal error")

    def _handle(
        self,
        method: str,
        path: str,
        query: str,
        headers: Sequence[tuple[str, str]],
        body: bytes,
        client: str,
        now: float,
    ) -> AdminResponse | AdminCall:
        wait = self.buckets.take(client, now)
        if wait > 0 and not (
            method == "GET" and path == READER_PATH and self._matches(headers, self._reader_hashes)
        ):
            retry = (("Retry-After", str(max(1, math.ceil(wait)))),)
            return error(429, "rate limited", extra=retry)
        if len(body) > self.max_body:
            return error(413, f"the body is over {self.max_body} bytes")
        try:
            segments = [unquote(seg, errors="strict") for seg in path.split("/")]
        except UnicodeDecodeError:
            return error(404, "no such path")
        candidates = [(r, p) for r in ROUTES if (p := match(r, segments)) is not None]
        if not candidates:
            return error(404, "no such path")
        chosen = next(((r, p) for r, p in candidates if r.method == method), None)
        if chosen is None:
            allow = ", ".join(sorted({r.method for r, _ in candidates}))
            return error(405, "method not allowed", extra=(("Allow", allow),))
        route, params = chosen
        if route.auth and not (
            self.authorized(headers)
            or (route.readers and self._matches(headers, self._reader_hashes))
        ):
            return error(
                401, "a valid bearer token is required", extra=(("WWW-Authenticate", "Bearer"),)
            )
        try:
            args = self._arguments(route, query, body)
            return getattr(self, "op_" + route.operation_id)(params, args, now)  # type: ignore[no-any-return]
        except BadRequest as refusal:
            return error(400, str(refusal), refusal.field)
        except (NotFound, Conflict, Unavailable) as refusal:
            return refused(refusal)

    def finish(self, call: AdminCall, result: object, now: float) -> AdminResponse:
        """The answer to a request whose :class:`AdminCall` the server awaited: ``result`` is
        what the control returned, or the exception it raised (a refusal: 404/409/503, nothing
        changed). The call's event is released either way; never raises."""
        try:
            if isinstance(result, NotFound | Conflict | Unavailable):
                return refused(result)
            if isinstance(result, BaseException):
                raise result
            return self._finish(call, result, now)
        except (NotFound, Conflict, Unavailable) as refusal:
            return refused(refusal)
        except Exception:
            log.exception("admin API bug finishing %s", call.operation)
            return error(500, "internal error")
        finally:
            self.state.release(call)

    def _finish(self, call: AdminCall, result: object, now: float) -> AdminResponse:
        catalog = self.state.catalog
        if call.operation == "create_event":
            publish = result if isinstance(result, PublishPoint) else None
            pending = sum(op == "create_event" for op in self.state.reserved.values()) - 1
            event = catalog.create(call.event_id, call.title, now, publish, pending=pending)
            log.info("admin: created event %s%s", event.id, _where(publish))
            return json_response(201, event.created_json())
        if call.operation == "start_event":
            event = catalog.start(call.event_id, now)
            log.info("admin: event %s is live", event.id)
            return json_response(200, event.to_json())
        if call.operation == "stop_event":
            event = catalog.stop(call.event_id, now)
            log.info("admin: event %s ended", event.id)
            return json_response(200, event.to_json())
        if call.operation == "list_sessions":
            assert isinstance(result, SessionPage)
            return sessions_response(result)
        assert isinstance(result, dict)
        return json_response(200, self.state.status(now, result))

    def authorized(self, headers: Sequence[tuple[str, str]]) -> bool:
        """Whether exactly one ``Authorization: Bearer <secret>`` names an admin secret."""
        return self._matches(headers, self._hashes)

    @staticmethod
    def _matches(headers: Sequence[tuple[str, str]], hashes: tuple[bytes, ...]) -> bool:
        """Whether exactly one ``Authorization: Bearer <secret>`` names one of ``hashes``."""
        if not hashes:
            return False
        values = [v for k, v in headers if k.lower() == "authorization"]
        if len(values) != 1:
            return False
        scheme, _, secret = values[0].strip().partition(" ")
        secret = secret.strip()
        if scheme.lower() != "bearer" or not 0 < len(secret) <= MAX_SECRET_CHARS:
            return False
        if not _TOKEN68.fullmatch(secret):
            return False
        digest = hashlib.sha256(secret.encode("ascii")).digest()
        found = False
        for known in hashes:  # every hash compared: the timing names none
            found |= hmac.compare_digest(digest, known)
        return found

    def _arguments(self, route: Route, query: str, body: bytes) -> dict[str, Any]:
        """The validated query (GET) or body (POST) of a request to ``route``."""
        args: dict[str, Any] = {}
        try:
            pairs = parse_qsl(query, keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the query is not UTF-8") from None
        for name, value in pairs:
            if name not in route.query or name in args:
                raise BadRequest("unknown or repeated query parameter", name[:64])
            schema = QUERY_SCHEMAS.get(name)
            if schema is not None and schema["type"] == "integer":
                if not (value.isascii() and value.isdigit() and len(value) <= 16):
                    raise BadRequest("expected a non-negative integer", name)
                args[name] = _check_integer(schema, int(value), name)
                continue
            _check_string(SCHEMAS["EventCreate"]["properties"]["id"], value, name)
            args[name] = value
        if route.body is not None:
            args.update(validate_body(SCHEMAS[route.body], parse_json(body)))
        elif body.strip() not in (b"", b"{}"):
            raise BadRequest("this operation takes no body")
        return args

    # -- the operations (one per route; ``params``: path parameters, ``args``: body/query) ----

    def _event_id(self, params: dict[str, str]) -> str:
        event_id = params["id"]
        if not EVENT_ID.fullmatch(event_id):
            raise NotFound("no such event")
        return event_id

    def op_list_events(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse:
        return json_response(200, {"events": [e.to_json() for e in self.state.catalog.list()]})

    def op_create_event(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse | AdminCall:
        if self.state.control is not None:
            return self.state.reserve(AdminCall("create_event", args["id"], args["title"]))
        event = self.state.catalog.create(args["id"], args["title"], now)
        log.info("admin: created event %s", event.id)
        return json_response(201, event.to_json())

    def op_get_event(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse:
        return json_response(200, self.state.catalog.get(self._event_id(params)).to_json())

    def op_start_event(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse | AdminCall:
        if self.state.control is not None:
            return self.state.reserve(AdminCall("start_event", self._event_id(params)))
        event = self.state.catalog.start(self._event_id(params), now)
        log.info("admin: event %s is live", event.id)
        return json_response(200, event.to_json())

    def op_stop_event(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse | AdminCall:
        if self.state.control is not None:
            return self.state.reserve(AdminCall("stop_event", self._event_id(params)))
        event = self.state.catalog.stop(self._event_id(params), now)
        log.info("admin: event %s ended", event.id)
        return json_response(200, event.to_json())

    def op_issue_token(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse:
        issued = self.state.issue_token(
            args["event"], args["account"], args["session"], args["ttl_s"], now
        )
        log.info("admin: issued a token for %s/%s", args["event"], args["session"])
        return json_response(201, {"token": issued.token, "exp": issued.exp})

    def op_revoke(self, params: dict[str, str], args: dict[str, Any], now: float) -> AdminResponse:
        if "session" in args:
            self.state.revoke_session(args["session"], now)
            log.info("admin: revoked session %s", args["session"])
        else:
            self.state.revoke_token(args["token"], now)
            log.info("admin: revoked one token")
        return AdminResponse(204, (("Cache-Control", "no-store"),))

    def op_list_revocations(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse:
        """The revocations changed after ``since`` (0: every live one), a page at a time. The
        edges read this with patterns (edge/token_lua.py): keep the keys in this order."""
        changes = self.state.revocations.changes(args.get("since", 0), REVOCATIONS_PAGE)
        entries = [
            {"kind": e.kind, "id": e.id, "until": math.ceil(e.until)} for e in changes.entries
        ]
        return json_response(
            200,
            {
                "epoch": changes.epoch,
                "seq": changes.seq,
                "more": changes.more,
                "revocations": entries,
            },
        )

    def op_list_sessions(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse | AdminCall:
        if self.state.control is not None:  # the origin's lease store (Redis: awaited)
            return AdminCall("list_sessions", account=args.get("account"))
        return sessions_response(self.state.sessions(args.get("account"), now))

    def op_status(
        self, params: dict[str, str], args: dict[str, Any], now: float
    ) -> AdminResponse | AdminCall:
        if self.state.control is not None:
            return AdminCall("status")
        return json_response(200, self.state.status(now))

    def op_openapi(self, params: dict[str, str], args: dict[str, Any], now: float) -> AdminResponse:
        return AdminResponse(200, JSON_HEADERS, self.document)
