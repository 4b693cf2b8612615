"""The authenticated admin API (docs/access.md, "Admin API").

- :mod:`livecast.admin.state` — the pure state it acts on (events, tokens, revocations, leases);
- :mod:`livecast.admin.openapi` — the route table and the OpenAPI 3.0.3 document built from it;
- :mod:`livecast.admin.api` — the sans-IO HTTP core (auth, rate limit, validation, routing);
- :mod:`livecast.admin.server` — the asyncio + httptools adapter serving it on a socket.
"""
