"""The admin API's route table and the OpenAPI 3.0.3 document built from it.

:data:`ROUTES` is the one list of operations: :mod:`livecast.admin.api` dispatches on it and
validates request bodies against its :data:`SCHEMAS`, and :func:`document` renders it — so the
document and the routes cannot drift. Patterns are anchored (``^…$``) as JSON Schema searches;
the validator matches them the same way and refuses a trailing newline besides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livecast.access.tokens import MAX_TOKEN_BYTES
from livecast.admin.state import MAX_SESSIONS_LISTED, MAX_TITLE_CHARS, MAX_TTL_S

__all__ = ["PREFIX", "QUERY_SCHEMAS", "REVOCATIONS_PAGE", "ROUTES", "SCHEMAS", "Route", "document"]

PREFIX = "/admin/v1"
NAME_PATTERN = "^[A-Za-z0-9_-]{1,64}$"
_NAME: dict[str, Any] = {"type": "string", "pattern": NAME_PATTERN, "minLength": 1, "maxLength": 64}
_TIME: dict[str, Any] = {"type": "number"}
_TIME_OR_NULL: dict[str, Any] = {"type": "number", "nullable": True}
_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}
_COUNT_OR_NULL: dict[str, Any] = {"type": "integer", "minimum": 0, "nullable": True}
_TEXT_OR_NULL: dict[str, Any] = {"type": "string", "nullable": True}


@dataclass(frozen=True, slots=True)
class Route:
    """One operation: ``method`` on ``path`` (a template under :data:`PREFIX`, ``{id}`` for a
    path parameter), answered by the API's ``op_<operation_id>`` method with ``status``."""

    method: str
    path: str
    operation_id: str
    summary: str
    status: int = 200
    body: str | None = None  # the request body's schema name
    response: str | None = None  # the success body's schema name (None: no body)
    query: tuple[str, ...] = ()  # optional query parameters (a NAME, or QUERY_SCHEMAS' schema)
    auth: bool = True
    readers: bool = False  # a reader secret (AdminApi.allow_reader, the edges) may call it too
    errors: tuple[int, ...] = ()  # statuses beyond 400/401/405/413/429

    @property
    def segments(self) -> tuple[str, ...]:
        """The full path split on ``/`` (``{…}`` segments match one path segment)."""
        return tuple((PREFIX + self.path).split("/"))

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(seg[1:-1] for seg in self.segments if seg.startswith("{"))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/events", "list_events", "List events", response="EventList"),
    Route(
        "POST", "/events", "create_event",
        "Create an event (on an RTMP server: a stream key and the URL its encoder publishes to)",
        201, "EventCreate", "EventCreated", errors=(409,),
    ),
    Route("GET", "/events/{id}", "get_event", "Get an event", response="Event", errors=(404,)),
    Route(
        "POST", "/events/{id}/start", "start_event", "Start an event (created → live)",
        response="Event", errors=(404, 409),
    ),
    Route(
        "POST", "/events/{id}/stop", "stop_event", "Stop an event (live → ended)",
        response="Event", errors=(404, 409),
    ),
    Route(
        "POST", "/tokens", "issue_token", "Issue a playback token", 201, "TokenRequest",
        "TokenIssued", errors=(404,),
    ),
    Route(
        "POST", "/revocations", "revoke", "Revoke a session or one token", 204, "Revocation",
        errors=(409,),
    ),
    Route(
        "GET", "/revocations", "list_revocations",
        "Revocations changed after a sequence number (the edges poll it)",
        response="RevocationChanges", query=("since",), readers=True,
    ),
    Route("GET", "/sessions", "list_sessions", "List live sessions (leases)",
          response="SessionList", query=("account",), errors=(503,)),
    Route("GET", "/status", "status", "Status of pipelines, origins and edges",
          response="Status"),
    Route("GET", "/openapi.json", "openapi", "This document", response="Document", auth=False),
)  # fmt: skip

REVOCATIONS_PAGE = 1000  # entries per answer of GET /revocations
MAX_SEQ = 2**53 - 1  # sequence numbers stay exact in every JSON reader
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "since": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
}

SCHEMAS: dict[str, dict[str, Any]] = {
    "EventCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "title"],
        "properties": {
            "id": _NAME,
            "title": {"type": "string", "minLength": 1, "maxLength": MAX_TITLE_CHARS},
        },
    },
    "TokenRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["event", "account", "session", "ttl_s"],
        "properties": {
            "event": _NAME,
            "account": _NAME,
            "session": _NAME,
            "ttl_s": {"type": "integer", "minimum": 1, "maximum": MAX_TTL_S},
        },
    },
    "Revocation": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {
            "session": _NAME,
            "token": {"type": "string", "minLength": 1, "maxLength": MAX_TOKEN_BYTES},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "title", "state", "created_at", "started_at", "ended_at", "ingest"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "state": {"type": "string", "enum": ["created", "live", "ended"]},
            "created_at": _TIME,
            "started_at": _TIME_OR_NULL,
            "ended_at": _TIME_OR_NULL,
            "ingest": {
                "type": "object",
                "nullable": True,
                "required": ["url", "key_fingerprint"],
                "properties": {
                    "url": {"type": "string"},
                    "key_fingerprint": {"type": "string", "pattern": "^[0-9a-f]{8}$"},
                },
            },
        },
    },
    "EventCreated": {
        "allOf": [
            {"$ref": "#/components/schemas/Event"},
            {
                "type": "object",
                "properties": {"stream_key": {"type": "string"}, "publish_url": {"type": "string"}},
            },
        ],
    },
    "EventList": {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
        },
    },
    "TokenIssued": {
        "type": "object",
        "required": ["token", "exp"],
        "properties": {"token": {"type": "string"}, "exp": {"type": "integer"}},
    },
    "Session": {
        "type": "object",
        "required": ["account", "session", "started", "expires"],
        "properties": {
            "account": {"type": "string"},
            "session": {"type": "string"},
            "started": _TIME,
            "expires": _TIME,
        },
    },
    "SessionList": {
        "type": "object",
        "required": ["sessions", "truncated"],
        "properties": {
            "sessions": {
                "type": "array",
                "maxItems": MAX_SESSIONS_LISTED,
                "items": {"$ref": "#/components/schemas/Session"},
            },
            "truncated": {"type": "boolean"},
        },
    },
    "RevocationChanges": {
        "type": "object",
        "required": ["epoch", "seq", "more", "revocations"],
        "properties": {
            "epoch": {"type": "string", "pattern": "^[0-9a-f]{1,64}$"},
            "seq": {"type": "integer", "minimum": 0},
            "more": {"type": "boolean"},
            "revocations": {
                "type": "array",
                "maxItems": REVOCATIONS_PAGE,
                "items": {
                    "type": "object",
                    "required": ["kind", "id", "until"],
                    "properties": {
                        "kind": {"type": "string", "enum": ["session", "token"]},
                        "id": {"type": "string"},
                        "until": {"type": "integer"},
                    },
                },
            },
        },
    },
    "Status": {
        "type": "object",
        "required": ["events", "revocations", "pipelines", "origins", "edges"],
        "properties": {
            "events": {
                "type": "object",
                "required": ["created", "live", "ended"],
                "properties": {"created": _COUNT, "live": _COUNT, "ended": _COUNT},
            },
            "revocations": _COUNT,
            "pipelines": {"type": "array", "items": {"$ref": "#/components/schemas/Pipeline"}},
            "origins": {"type": "array", "items": {"$ref": "#/components/schemas/Origin"}},
            "edges": {"type": "array", "items": {"$ref": "#/components/schemas/Edge"}},
        },
    },
    "Pipeline": {
        "type": "object",
        "required": [
            "stream",
            "state",
            "source",
            "on_air",
            "renditions",
            "media_age_s",
            "recording",
        ],
        "properties": {
            "stream": {"type": "string"},
            "state": {"type": "string", "enum": ["created", "waiting", "live", "ended"]},
            "source": {"type": "string"},
            "on_air": _TEXT_OR_NULL,
            "renditions": {"type": "array", "items": {"type": "string"}},
            "media_age_s": {"type": "number", "minimum": 0, "nullable": True},
            "recording": {
                "type": "object",
                "nullable": True,
                "required": ["ended", "errors", "gap_segments"],
                "properties": {
                    "ended": {"type": "boolean"},
                    "errors": _COUNT,
                    "gap_segments": _COUNT,
                },
            },
        },
    },
    "Origin": {
        "type": "object",
        "required": ["address", "connections", "requests", "streams", "shed_level", "leases"],
        "properties": {
            "address": {"type": "string"},
            "connections": _COUNT,
            "requests": _COUNT,
            "streams": {"type": "array", "items": {"type": "string"}},
            "shed_level": _COUNT_OR_NULL,
            "leases": {
                "type": "object",
                "nullable": True,
                "required": ["store", "admitted", "leases"],
                "properties": {
                    "store": {"type": "string", "enum": ["memory", "redis"]},
                    "admitted": _COUNT,
                    "leases": _COUNT_OR_NULL,
                },
            },
        },
    },
    "Edge": {
        "type": "object",
        "required": [
            "url",
            "up",
            "active",
            "accepts",
            "handled",
            "requests",
            "reading",
            "writing",
            "waiting",
            "error",
        ],
        "properties": {
            "url": {"type": "string"},
            "up": {"type": "boolean"},
            **{
                name: _COUNT_OR_NULL
                for name in (
                    "active",
                    "accepts",
                    "handled",
                    "requests",
                    "reading",
                    "writing",
                    "waiting",
                )
            },
            "error": _TEXT_OR_NULL,
        },
    },
    "Document": {"type": "object", "required": ["openapi", "paths"]},
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
}

_ERROR_TEXT = {
    400: "Malformed request (non-JSON, wrong type, unknown or missing field)",
    401: "Missing, malformed or wrong bearer token",
    404: "No such resource",
    405: "Method not allowed",
    409: "Conflicts with the current state",
    413: "Request body over 64 KB",
    429: "Rate limited (see Retry-After)",
    503: "The lease store did not answer (see Retry-After)",
}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_TEXT[status], "content": _json("Error")}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _responses(route: Route) -> dict[str, Any]:
    success: dict[str, Any] = {"description": route.summary}
    if route.response is not None:
        success["content"] = _json(route.response)
    responses: dict[str, Any] = {str(route.status): success}
    statuses = {400, 405, 413, 429, *route.errors} | ({401} if route.auth else set())
    for status in sorted(statuses):
        responses[str(status)] = _error(status)
    return responses


def _parameters(route: Route) -> list[dict[str, Any]]:
    params = [{"name": name, "in": "path", "required": True, "schema": _NAME}
              for name in route.path_params]  # fmt: skip
    params += [{"name": name, "in": "query", "required": False,
                "schema": QUERY_SCHEMAS.get(name, _NAME)} for name in route.query]  # fmt: skip
    return params


def operation(route: Route) -> dict[str, Any]:
    """The OpenAPI operation object of ``route``."""
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "responses": _responses(route),
    }
    if not route.auth:
        op["security"] = []
    params = _parameters(route)
    if params:
        op["parameters"] = params
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": _json(route.body)}
    return op


def document(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document of ``routes``."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "livecast admin API",
            "version": "1",
            "description": "Events, playback tokens, revocations, sessions and status "
            "(docs/access.md, Admin API). Every operation but this document needs a bearer "
            "token; every client address is rate limited.",
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
