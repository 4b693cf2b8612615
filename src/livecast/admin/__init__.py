"""The authenticated admin API (docs/access.md, "Admin API").

- :mod:`livecast.admin.state` — the pure state it acts on (events, tokens, revocations, leases);
- :mod:`livecast.admin.openapi` — the route table and the OpenAPI 3.0.3 document built from it;
- :mod:`livecast.admin.api` — the sans-IO HTTP core (auth, rate limit, validation, routing);
- :mod:`livecast.admin.server` — the asyncio + httptools adapter serving it on a socket (it awaits
  the core's calls on the control);
- :mod:`livecast.admin.control` — the control over a running pipeline (events, sessions, status);
- :mod:`livecast.admin.status` — the status of the pipelines, the origin and the edges.
"""
