"""The admin API acting on a running server: :class:`PipelineControl`, the
:class:`~livecast.admin.state.AdminControl` that ``livecast serve`` injects (adapter).

- **Events.** Create asks the pipeline for a new event (``LivePipeline.create_event``: on an RTMP
  server, a stream id and a freshly generated stream key, refused until started); start puts it
  on air (``start_event``: its channel and its encoder accepted); stop ends any event the origin
  serves (``end_event``: EXT-X-ENDLIST at once, a recording becomes VOD). The pipeline's refusals
  (``RequestError``) become :class:`~livecast.admin.state.Conflict`.
- **Sessions** are listed from whichever lease store the origin's session endpoints use: the
  in-memory table, or Redis (awaited; every account is found by a bounded ``SCAN`` of the
  store's keys). Redis not answering is :class:`~livecast.admin.state.Unavailable` (503).
- **Status** (:mod:`livecast.admin.status`): the pipelines and the origin from memory, the
  edges (``LivePipeline.edge_status_urls``) asked over HTTP.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from livecast.access.leases import Lease, LeaseStore, MemoryLeaseStore
from livecast.admin.state import MAX_SESSIONS_LISTED, Conflict, SessionPage, Unavailable, list_table
from livecast.admin.status import edge_statuses, origin_status, pipeline_statuses
from livecast.errors import AccessError, RequestError
from livecast.ingest.keys import PublishPoint

if TYPE_CHECKING:
    from livecast.access.redis_leases import RedisLeaseStore
    from livecast.pipeline import LivePipeline

__all__ = ["PipelineControl", "store_sessions"]

EDGE_TIMEOUT = 1.0  # seconds an edge has to answer its stub_status
SCAN_TIMEOUT = 2.0  # seconds to find the accounts of a Redis store


class PipelineControl:
    """The :class:`~livecast.admin.state.AdminControl` of a :class:`LivePipeline` (module doc)."""

    def __init__(self, pipeline: LivePipeline, *, edge_timeout: float = EDGE_TIMEOUT) -> None:
        self.pipeline = pipeline
        self.edge_timeout = edge_timeout

    async def create_event(self, event_id: str) -> PublishPoint | None:
        try:
            return self.pipeline.create_event(event_id)
        except RequestError as refusal:
            raise Conflict(str(refusal)) from refusal

    async def start_event(self, event_id: str) -> None:
        try:
            await self.pipeline.start_event(event_id)
        except RequestError as refusal:
            raise Conflict(str(refusal)) from refusal

    async def stop_event(self, event_id: str) -> None:
        if event_id not in self.pipeline.channels:
            raise Conflict(f"event {event_id!r} is not served by this origin")
        await self.pipeline.end_event(event_id)

    async def sessions(self, account: str | None, now: float) -> SessionPage:
        endpoints = self.pipeline.sessions
        store = endpoints.store if endpoints is not None else None
        return await store_sessions(store, account, now)

    async def status(self, now: float) -> dict[str, Any]:
        return {
            "pipelines": pipeline_statuses(self.pipeline),
            "origins": [origin_status(self.pipeline)],
            "edges": await edge_statuses(self.pipeline.edge_status_urls, self.edge_timeout),
        }


async def store_sessions(store: LeaseStore | None, account: str | None, now: float) -> SessionPage:
    """The live leases of ``account`` (or of every account) in ``store``, at most
    ``MAX_SESSIONS_LISTED``; :class:`Unavailable` when Redis does not answer."""
    if store is None:
        return SessionPage((), False)
    if isinstance(store, MemoryLeaseStore):
        return list_table(store.table, account, now)
    redis = _redis_store(store)
    if redis is None:
        raise Unavailable(f"this lease store ({type(store).__name__}) cannot list its sessions")
    try:
        if account is not None:
            leases = await redis.sessions(account, now)
        else:
            leases = []
            for name in await redis_accounts(redis, MAX_SESSIONS_LISTED + 1):
                leases += await redis.sessions(name, now)
                if len(leases) > MAX_SESSIONS_LISTED:
                    break
    except AccessError as failure:
        raise Unavailable("the lease store did not answer") from failure
    return page_of(leases)


def page_of(leases: list[Lease]) -> SessionPage:
    return SessionPage(tuple(leases[:MAX_SESSIONS_LISTED]), len(leases) > MAX_SESSIONS_LISTED)


async def redis_accounts(store: RedisLeaseStore, limit: int) -> list[str]:
    """Up to ``limit`` accounts holding leases in a Redis store: its lease sets are the keys
    ``<prefix><account>`` (``…:started`` and ``…:ended`` beside them), found by ``SCAN``."""
    from redis.exceptions import RedisError

    accounts: list[str] = []
    try:
        async with asyncio.timeout(SCAN_TIMEOUT):
            async for raw in store.client.scan_iter(match=store.prefix + "*", count=1000):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                name = key.removeprefix(store.prefix)
                if ":" not in name:
                    accounts.append(name)
                    if len(accounts) >= limit:
                        break
    except (RedisError, OSError, TimeoutError) as exc:
        raise AccessError("lease_store_unavailable", f"SCAN failed: {type(exc).__name__}") from exc
    return sorted(accounts)


def _redis_store(store: LeaseStore) -> RedisLeaseStore | None:
    try:
        from livecast.access.redis_leases import RedisLeaseStore
    except ImportError:  # redis is not installed: no Redis store either
        return None
    return store if isinstance(store, RedisLeaseStore) else None
