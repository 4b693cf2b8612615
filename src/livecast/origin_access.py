"""Who may reach the origin, from the event config: the token gate of ``[access]``, its session
endpoints over the lease store it names (memory or Redis) and the admin API of ``[admin]``
(docs/access.md) — built here for :class:`livecast.pipeline.LivePipeline`, which starts and stops
them with the origin."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from livecast.access.heartbeat import SessionEndpoints
from livecast.access.leases import LeasePolicy, LeaseStore, LeaseTable, MemoryLeaseStore
from livecast.access.settings import AccessSettings, redacted
from livecast.access.token_gate import DEFAULT_EXEMPT, TokenGate
from livecast.access.tokens import RevocationList
from livecast.admin.api import AdminApi
from livecast.admin.server import AdminServer
from livecast.admin.state import AdminControl, AdminState
from livecast.config import EventConfig
from livecast.errors import ConfigError

log = logging.getLogger(__name__)


def token_gate(
    config: EventConfig, open_paths: Iterable[str], revoked: RevocationList | None = None
) -> TokenGate | None:
    """The origin's token gate when ``[access] tokens = true`` (the key ring loaded now: a bad
    ring fails the start). ``open_paths`` — the player page and hls.js — need no token: the
    page hands the token it was given to the stream's requests as a cookie. ``revoked``: the
    revocation list the admin API writes to."""
    ring = config.access.key_ring()
    if ring is None:
        return None
    exempt = (*DEFAULT_EXEMPT, *open_paths)
    return TokenGate(
        ring,
        skew=config.access.skew,
        exempt_prefixes=exempt,
        revoked=revoked,
        unix_time=_unix_time,  # the origin's clock is monotonic; tokens carry Unix seconds
    )


def _unix_time(_monotonic_now: float) -> float:
    return time.time()


def session_endpoints(
    config: EventConfig, gate: TokenGate | None, env: Mapping[str, str] | None = None
) -> SessionEndpoints | None:
    """The session endpoints (joins, heartbeats, ends) when ``[access] max_streams`` limits the
    streams per account: over the lease store of ``[access] lease_store`` (or
    ``$LIVECAST_LEASE_STORE``), with the gate's key ring and revocations. Close them
    (:meth:`SessionEndpoints.close`) when the origin stops."""
    if not config.access.max_streams or gate is None:
        return None
    store = lease_store(config.access, env)
    return SessionEndpoints(
        gate.key_ring, store, skew=gate.skew, revoked=gate.revoked, unix_time=_unix_time
    )


def lease_store(settings: AccessSettings, env: Mapping[str, str] | None = None) -> LeaseStore:
    """This origin's lease table in memory, or the Redis store shared with other origins (its
    connections opened at the first call; Redis down then is answered by ``on_store_error``)."""
    policy = settings.lease_policy()
    url = settings.lease_store_url(env)
    if url is None:
        return MemoryLeaseStore(LeaseTable(policy))
    try:
        from livecast.access.redis_leases import RedisLeaseStore
    except ImportError as exc:
        raise ConfigError(
            "access.lease_store", "a Redis lease store needs redis: pip install 'livecast[access]'"
        ) from exc
    log.info(
        "stream leases in Redis at %s (on_store_error = %s)", redacted(url), policy.on_store_error
    )
    return RedisLeaseStore.connect(url, policy)


def admin_server(
    config: EventConfig,
    gate: TokenGate | None,
    sessions: SessionEndpoints | None = None,
    control: AdminControl | None = None,
) -> AdminServer | None:
    """The admin API of ``[admin] enabled = true``, sharing the gate's key ring and revocation
    list (a revoked token is refused by the origin's next check). ``control`` (the pipeline's,
    ``admin.control.PipelineControl``) acts on events and lists the sessions from the origin's
    lease store, memory or Redis; without it the API keeps a catalog and lists the sessions'
    in-memory table."""
    if not config.admin.enabled or gate is None:
        return None
    revocations = gate.revoked if gate.revoked is not None else RevocationList()
    table = sessions.leases if sessions is not None else None  # None over Redis
    leases = table if table is not None else LeaseTable(LeasePolicy())
    state = AdminState(
        key_ring=gate.key_ring, revocations=revocations, leases=leases, control=control
    )
    return AdminServer(AdminApi(state, config.admin.hashes()))


def list_live_events(server: AdminServer, event_ids: Iterable[str], now: float) -> None:
    """The events this origin serves, live in the admin API's catalog from its start."""
    catalog = server.api.state.catalog
    for event_id in event_ids:
        catalog.create(event_id, event_id, now)
        catalog.start(event_id, now)
