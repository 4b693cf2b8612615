"""An nginx configuration for one LL-HLS cache tier (edge or shield), rendered from a dataclass —
pure: no files, no processes (docs/edge.md explains every directive; nginx doc quoted there).

What LL-HLS needs from a cache, and how this config does it:

* **One cache entry per answer, not per viewer.** The key is the path plus ``_HLS_msn``,
  ``_HLS_part`` and ``_HLS_skip`` only — CMCD and any other per-viewer argument would otherwise
  give every viewer its own entry (and its own origin request).
* **Miss collapsing through a blocking hold.** ``proxy_cache_lock`` lets one request per key
  reach the upstream; the others wait for it. The origin holds a blocking playlist request (or a
  preload-hinted part) up to 3 × target duration, so the lock timeout and the lock age must be
  longer than that: nginx's default 5 s would send every waiter to the origin, uncached, exactly
  when the origin is slow. The price, in stock nginx: waiters re-check the cache every 500 ms,
  so all but the first viewer of an object on an edge get it 0–500 ms late (docs/edge.md).
* **TTLs from the origin.** No ``proxy_cache_valid`` for 200: the origin's ``Cache-Control``
  decides (blocking playlists 6 × TD, plain playlists ½ TD, media immutable). Only 404 has a
  one-second fallback, for answers that come without a ``Cache-Control``.
* **Stale-while-revalidate and stale-if-error** for plain playlists:
  ``proxy_cache_use_stale … updating …``: while one request refreshes an expired playlist, the
  others get the previous one. The refresh is made by the request that found the entry expired
  (``proxy_cache_background_update off``): with a background update that request would be given
  the stale copy itself, however old — viewers joining an edge after 40 s without viewers were
  given a 46 s old playlist (measured). Media (parts, segments, init) is
  immutable and never revalidated, except a 404 for something not produced yet: that one must
  not be served stale while its refetch is held, so media has stale-if-error only.
* **Keep-alive and failover upstream**; an optional shield is just another tier as upstream.
* ``X-Cache-Status`` on every answer, the origin's ``Date`` kept (so a player can compute the
  age of what it got, RFC 9111 §4.2.3) and any upstream ``Age`` passed on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from livecast.access.keys import KeyRing
from livecast.access.tokens import DEFAULT_SKEW
from livecast.edge import metrics_lua, token_lua
from livecast.edge.accesslog import FORMAT_NAME, log_format
from livecast.packager.event import DEFAULT_STREAM

# The query arguments that change an answer: the LL-HLS directives and a recorded range (start-over
# and DVR playlists, origin.dvr); the rest (CMCD, cache busters) share one entry.
_KEY_FIELDS = ("$uri", "msn=$arg__HLS_msn", "part=$arg__HLS_part", "skip=$arg__HLS_skip")
CACHE_KEY = "|".join((*_KEY_FIELDS, "start=$arg_start", "end=$arg_end"))
STALE_CASES = "error timeout updating http_500 http_502 http_503 http_504"
# media: no http_503. An expired media entry can only be a negative one (parts, segments and init
# are immutable 200s, fresh for a day): with http_503 nginx answered a shedding origin's new 503
# with the *expired* 503 (STALE) and never stored the new one — every request then reached the
# origin. Without it the new 503 replaces the old for its max-age (docs/edge.md, "Load shedding")
MEDIA_STALE_CASES = "error timeout http_500 http_502 http_504"
MEDIA_PATHS = r"\.(m4s|mp4)$"
NEXT_UPSTREAM_CASES = "error timeout http_502 http_503 http_504"
NEGATIVE_TTL = "1s"  # 404s without Cache-Control (nginx reads whole seconds here; 0 = off)
EDGE_STATUS = "/edge/status"  # nginx stub_status: what the admin API's status reads
# media only: an upstream 5xx without Cache-Control is kept a second, so that viewers retrying a
# part through an origin outage reach it once a second per edge, not once per viewer (design brief
# §5). Not for playlists: a cached refusal would answer a viewer's playlist retries too, and with
# hls.js's two playlist retries a 0.5 s blip then ends most sessions (measured, docs/edge.md);
# their collapse already merges the retries that arrive together.
ERROR_TTL = "1s"
# ... and a media 404 is asked of the next origin too: origins fed by one encoder cut the same
# parts (epoch lock) but not at the same instant, so a part one origin listed can be a moment
# ahead of the other that the edge asks next (a 404 passed on ends as the viewer's 404; with one
# origin, proxy_next_upstream_tries 1: nothing changes)
MEDIA_NEXT_UPSTREAM_CASES = f"{NEXT_UPSTREAM_CASES} http_404"
MEDIA_VALID = (
    f"proxy_cache_valid 404 {NEGATIVE_TTL};",
    f"proxy_cache_valid 500 502 503 504 {ERROR_TTL};",
    f"proxy_next_upstream {MEDIA_NEXT_UPSTREAM_CASES};",
)


def _duration(seconds: float) -> str:
    """nginx time syntax, to the millisecond."""
    return f"{max(1, round(seconds * 1000))}ms"


def _seconds(seconds: float) -> str:
    """Whole seconds, for the parameters nginx reads in seconds (inactive=, fail_timeout=)."""
    return f"{max(1, math.ceil(seconds))}s"


def _quoted(path: str) -> str:
    if any(c in path for c in '"\\\n;{}$'):
        raise ValueError(f"unusable path for nginx: {path!r}")
    return f'"{path}"'


@dataclass(frozen=True, slots=True)
class Upstream:
    """One server of the upstream group (an origin, or the shield)."""

    host: str
    port: int

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"upstream port {self.port} is not a TCP port")
        if not self.host or any(c.isspace() or c in ";{}$\"'" for c in self.host):
            raise ValueError(f"unusable upstream host {self.host!r}")

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class TierConfig:
    """Everything one nginx cache tier needs; derived timeouts are properties."""

    name: str  # "edge-0", "shield": logged with every request, shown in X-Edge
    prefix: str  # absolute directory: pid, logs, cache and temp files live under it
    port: int
    upstreams: tuple[Upstream, ...]
    target_duration: float = 2.0  # the stream's EXT-X-TARGETDURATION
    host: str = "127.0.0.1"
    workers: int = 1
    worker_connections: int = 8192
    cache_max_size_mb: int = 512
    keys_zone_mb: int = 16
    upstream_keepalive: int = 64  # idle connections kept per worker
    max_fails: int = 2
    fail_timeout: float = 2.0
    lock_margin: float = 2.0  # beyond the longest hold: network, origin sweep, lock polling
    lock_timeout: float | None = None  # default: hold + margin (None); only tests override
    access_log: str | None = None  # default: <prefix>/access.log
    user: str | None = None  # worker user when started as root (nginx default: nobody)
    # nginx modules to load for the wake-up collapse (ndk + lua; ``edge.nginx.find_lua_modules``);
    # empty: proxy_cache_lock alone, whose waiters re-check the cache every 500 ms
    lua_modules: tuple[str, ...] = ()
    plain_freshness_s: float | None = None  # default: a sixth of the target duration (≈ a part)
    # playback tokens checked at the edge (edge/token_lua.py; needs lua_modules): the key ring
    # (written to <prefix>/token_keys.lua by the tier), the clock skew tolerated, and the stream
    # the short /live/<rendition>/… URLs belong to
    token_ring: KeyRing | None = None
    token_skew: float = DEFAULT_SKEW
    default_stream: str = DEFAULT_STREAM
    # where the edge polls the revocations (the admin API; needs token_ring), None: not at all
    revocations: token_lua.RevocationSource | None = None
    # the tier's own counters at /edge/metrics (edge/metrics_lua.py; only with lua_modules —
    # without them /edge/metrics answers a 404 saying so)
    metrics: bool = True

    def __post_init__(self) -> None:
        if self.token_ring is not None and not self.lua_modules:
            raise ValueError("checking tokens at the edge needs lua (libnginx-mod-http-lua)")
        if self.revocations is not None and self.token_ring is None:
            raise ValueError("revocations are polled only where tokens are checked")
        if not self.upstreams:
            raise ValueError("a tier needs at least one upstream server")
        if not self.prefix.startswith("/"):
            raise ValueError(f"prefix must be absolute, got {self.prefix!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is not a TCP port")
        if self.target_duration <= 0 or self.workers < 1 or self.lock_margin < 0:
            raise ValueError("target_duration, workers and lock_margin must be positive")
        log_format(self.name)  # validates the name
        if self.user is not None and not self.user.replace("-", "").replace("_", "").isalnum():
            raise ValueError(f"unusable user name {self.user!r}")

    # ------------------------------------------------------------------ derived values
    @property
    def hold(self) -> float:
        """The longest the origin holds a blocking request (LL-HLS: 3 × target duration)."""
        return 3.0 * self.target_duration

    @property
    def lock_wait(self) -> float:
        """``proxy_cache_lock_timeout`` and ``proxy_cache_lock_age``: longer than a hold."""
        return self.lock_timeout if self.lock_timeout is not None else self.hold + self.lock_margin

    @property
    def read_timeout(self) -> float:
        """``proxy_read_timeout``: an upstream that holds is not a dead upstream."""
        return self.hold + self.lock_margin

    @property
    def plain_freshness(self) -> float:
        """With Lua: how old a plain playlist may be served from the cache before it is fetched
        again (a joining viewer starts from it)."""
        if self.plain_freshness_s is not None:
            return self.plain_freshness_s
        return self.target_duration / 6

    @property
    def lua_metrics(self) -> bool:
        """Whether the tier counts its requests (``metrics`` and the Lua modules loaded)."""
        return self.metrics and bool(self.lua_modules)

    @property
    def access_log_path(self) -> str:
        return self.access_log or f"{self.prefix}/access.log"

    @property
    def inactive(self) -> float:
        """Unused entries leave the cache after this long (parts are wanted for seconds)."""
        return max(60.0, 30 * self.target_duration)


# The wake-up collapse (lua-nginx-module, tables per worker). A request for a blocking playlist or
# a media object finds out whether the same object (the cache key's fields) is being fetched by
# another request of this worker: if so it waits on that fetch's semaphore and then goes on to
# proxy_cache, which answers it from the cache (HIT); if not it becomes the fetch and is handed
# to a fetch location (ngx.exec). Only the fetch location has the body filter that posts the
# semaphore once the body has passed the output filters (the cache file is committed before nginx
# sends the last buffer) — or the log phase, when the fetch ended otherwise. Not the locations
# the waiters are answered in: lua-nginx-module reads every answer of a location with a body
# filter into memory (filter_need_in_memory), no sendfile — each 100 KB part copied through
# nginx for each of ~500 viewers per edge (what that cost: docs/edge.md). An object fetched with
# 200 is remembered as done (two generations of up to DONE_PER_GENERATION keys): later requests for
# it go straight to the cache. Waiters are woken when the object arrives instead of polling every
# 500 ms as proxy_cache_lock waiters do; proxy_cache_lock stays on underneath (waits that timed
# out, an evicted object).
DONE_PER_GENERATION = 20000
# Several workers: each worker's fetch first claims the object in a shared dict (add: only one
# succeeds); a worker whose claim fails polls the dict every CROSS_WORKER_POLL seconds until the
# claiming worker's fetch marks it done (kept CROSS_WORKER_DONE_TTL seconds), then answers its own
# waiters from the cache. One poller per worker and object, not per viewer; one origin request per
# edge, not per worker; and no waiter left to the cache lock's 500 ms re-checks.
CROSS_WORKER_POLL = 0.005
CROSS_WORKER_DONE_TTL = 60
SHARED_DICT_MB = 4
LUA_INIT = """init_by_lua_block {
        livecast_semaphore = require "ngx.semaphore"
        livecast_shared = ngx.shared.livecast_fetches
        livecast_fetches = {}
        livecast_done, livecast_done_before, livecast_done_count = {}, {}, 0
        livecast_refreshed = {}
        function livecast_playlist_key()
            return ngx.var.uri .. "|" .. (ngx.var.arg__HLS_msn or "") .. "|"
                .. (ngx.var.arg__HLS_part or "") .. "|" .. (ngx.var.arg__HLS_skip or "")
        end
        function livecast_collapse(key, wait)
            if livecast_done[key] or livecast_done_before[key] then return false end
            local fetch = livecast_fetches[key]
            if fetch ~= nil then
                fetch.waiters = fetch.waiters + 1
                fetch.sema:wait(wait)
                return false
            end
            livecast_fetches[key] = {sema = livecast_semaphore.new(0), waiters = 0}
            if not livecast_shared:add(key, 0, wait) then
                local deadline = ngx.now() + wait
                while livecast_shared:get(key) == 0 and ngx.now() < deadline do
                    ngx.sleep({poll})
                end
            end
            return true
        end
        function livecast_release(key)
            if ngx.ctx.livecast_released then return end
            ngx.ctx.livecast_released = true
            livecast_shared:set(key, 1, {done_ttl})
            local fetch = livecast_fetches[key]
            livecast_fetches[key] = nil
            if ngx.status == 200 then
                livecast_done[key] = true
                livecast_done_count = livecast_done_count + 1
                if livecast_done_count >= {done_per_generation} then
                    livecast_done_before, livecast_done, livecast_done_count = livecast_done, {}, 0
                end
            end
            if fetch ~= nil and fetch.waiters > 0 then fetch.sema:post(fetch.waiters) end
        end
    }"""
LUA_INIT = (
    LUA_INIT.replace("{done_per_generation}", str(DONE_PER_GENERATION))
    .replace("{poll}", f"{CROSS_WORKER_POLL:.3f}")
    .replace("{done_ttl}", f"{CROSS_WORKER_DONE_TTL:g}")
)
# media: the path is the key (the cache key's _HLS_* arguments do not occur on media)
LUA_MEDIA_ACCESS = """access_by_lua_block {
                if livecast_collapse(ngx.var.uri, {wait}) then
                    return ngx.exec("@livecast_fetch_media")
                end
            }"""
# playlists: only blocking reloads wait for each other (a plain reload — live, or a start-over
# range — is refetched at most once per part, else served from the cache); the key is the cache
# key's fields
LUA_PLAYLIST_ACCESS = """access_by_lua_block {
                if ngx.var.arg__HLS_msn == nil then
                    local uri = ngx.var.uri .. "|" .. (ngx.var.arg_start or "") .. "|"
                        .. (ngx.var.arg_end or "")
                    local now = ngx.now()
                    local last = livecast_refreshed[uri]
                    if last == nil or now - last >= {fresh} then
                        livecast_refreshed[uri] = now
                        return ngx.exec("@livecast_refresh")
                    end
                    return
                end
                if livecast_collapse(livecast_playlist_key(), {wait}) then
                    return ngx.exec("@livecast_fetch_playlist")
                end
            }"""
LUA_RELEASE = """body_filter_by_lua_block { if ngx.arg[2] then livecast_release({key}) end }
            log_by_lua_block { livecast_release({key}){metrics} }"""


def _log_extra(conf: TierConfig) -> str:
    """What a location's own ``log_by_lua_block`` adds after its code: the metrics (a location
    handler replaces the http-level one it would inherit)."""
    return f"; {metrics_lua.LOG_CALL}" if conf.lua_metrics else ""


def _lua_http(conf: TierConfig) -> list[str]:
    if not conf.lua_modules:
        return []
    lines = [f"    lua_shared_dict livecast_fetches {SHARED_DICT_MB}m;"]
    init = LUA_INIT
    worker: list[str] = []
    if conf.token_ring is not None:  # one init_by_lua per http block: the token check joins it
        revocations = conf.revocations is not None
        lines.append(token_lua.shared_dict_line(revocations))
        keys_file = Path(conf.prefix) / token_lua.KEYS_FILE
        code = token_lua.token_init(
            keys_file,
            skew=conf.token_skew,
            default_stream=conf.default_stream,
            revocations=revocations,
        )
        init = init.removesuffix("}") + code.lstrip("\n") + "\n    }"
        if conf.revocations is not None:
            source_file = Path(conf.prefix) / token_lua.SOURCE_FILE
            worker = ["    " + token_lua.poller_init_worker(conf.revocations, source_file)]
    log = []
    if conf.lua_metrics:  # counted in every location's log phase (edge/metrics_lua.py)
        lines.append(metrics_lua.shared_dict_line())
        code = metrics_lua.metrics_init(conf.name)
        init = init.removesuffix("}") + code.lstrip("\n") + "\n    }"
        log = [metrics_lua.log_phase()]
    return [*lines, "    " + init, *worker, *log]


def _location(match: str, stale_cases: str | None, *body: str) -> list[str]:
    """``location match { … }`` proxying to the upstreams: ``proxy_cache_use_stale stale_cases``
    (unless None), then ``body`` — lines without their indentation."""
    lines = ["proxy_pass http://livecast_upstream;"]
    lines += [f"proxy_cache_use_stale {stale_cases};"] if stale_cases else []
    return [
        f"        location {match} {{",
        *("            " + x for x in [*lines, *body]),
        "        }",
    ]


NO_BACKGROUND_UPDATE = "proxy_cache_background_update off;"


def _lua_access(conf: TierConfig, media: bool) -> list[str]:
    if not conf.lua_modules:
        return []
    access = (LUA_MEDIA_ACCESS if media else LUA_PLAYLIST_ACCESS).replace(
        "{wait}", f"{conf.lock_wait:.3f}"
    )
    if conf.token_ring is not None:  # the token first: a refused viewer waits for nothing
        head, _, body = access.partition("\n")
        access = f"{head}\n                {token_lua.TOKEN_CHECK_CALL}\n{body}"
    return [access.replace("{fresh}", f"{conf.plain_freshness:.3f}")]


def _fetch_locations(conf: TierConfig) -> list[str]:
    """With Lua: where the one request per object that fetches it goes (see LUA_INIT)."""
    if not conf.lua_modules:
        return []
    media = LUA_RELEASE.replace("{key}", "ngx.var.uri").replace("{metrics}", _log_extra(conf))
    return [
        *_location("@livecast_fetch_media", MEDIA_STALE_CASES, *MEDIA_VALID, media),
        *_location(
            "@livecast_fetch_playlist",
            STALE_CASES,
            NO_BACKGROUND_UPDATE,
            *_playlist_filters(conf, release="livecast_playlist_key()"),
        ),
    ]


# RFC 9111 §5.1 Age for playlists answered from the cache: now minus the origin's Date, which the
# cached response keeps (proxy_pass_header Date) — replacing any Age the upstream sent (a
# shield's). Not on a fresh fetch (MISS, or a refresh's BYPASS). Playlists only: that is where a
# player reads it (hls.js's CDN tune-in); on media the header filter cost the 1,000-viewer burst
# about 20 ms at the median (docs/edge.md), for a header no player reads on immutable media.
LUA_AGE = """local status = ngx.var.upstream_cache_status
                if status == "MISS" or status == "BYPASS" then return end
                local date = ngx.header["Date"]
                local produced = date and ngx.parse_http_time(date)
                if produced then ngx.header["Age"] = math.max(0, ngx.time() - produced) end"""
FILTER_INDENT = "\n                "


def _block(directive: str, *statements: str) -> str:
    body = FILTER_INDENT.join(statements)
    return f"{directive} {{{FILTER_INDENT}{body}\n            }}"


def _playlist_filters(conf: TierConfig, release: str | None = None) -> list[str]:
    """With Lua, the filters of a location that answers playlists: ``Age`` from the cache; with
    tokens, the rewrite of the URIs for a request that had the token in its query (before the
    ``Age`` code, which returns early); in a fetch location, the release of its waiters
    (``release``: the key expression) once the body passed or the request ended."""
    if not conf.lua_modules:
        return []
    tokens = conf.token_ring is not None
    header = [token_lua.LUA_REWRITE_HEADER] if tokens else []
    lines = [_block("header_filter_by_lua_block", *header, LUA_AGE)]
    if tokens:  # every playlist answer of the location read into memory: a few KB each
        body = [token_lua.LUA_REWRITE_BODY]
        if release is not None:
            body.append(f"if ngx.arg[2] then livecast_release({release}) end")
        lines.append(_block("body_filter_by_lua_block", *body))
    elif release is not None:
        lines.append(LUA_RELEASE.replace("{key}", release).partition("\n")[0])
    if release is not None:
        extra = _log_extra(conf)
        lines.append(f"log_by_lua_block {{ livecast_release({release}){extra} }}")
    return lines


def _refresh_locations(conf: TierConfig) -> list[str]:
    """With Lua: a plain playlist is refetched (the cache updated) at most once per
    ``plain_freshness`` seconds per worker instead of living up to 2 s (nginx keeps ``max-age``
    in whole seconds) — a viewer joining reads it ≤ one part old. The refetch bypasses the cache;
    when the upstream fails it falls back to the cache, stale included (stale-if-error)."""
    if not conf.lua_modules:
        return []
    refresh = ["proxy_cache_bypass 1;", "error_page 502 504 = @livecast_stale;"]
    return [
        *_location("@livecast_refresh", None, *refresh, *_playlist_filters(conf)),
        *_location("@livecast_stale", STALE_CASES, *_playlist_filters(conf)),
    ]


def _upstream_block(conf: TierConfig) -> list[str]:
    lines = ["    upstream livecast_upstream {"]
    for server in conf.upstreams:
        lines.append(
            f"        server {server.address} max_fails={conf.max_fails} "
            f"fail_timeout={_seconds(conf.fail_timeout)};"
        )
    lines += [f"        keepalive {conf.upstream_keepalive};", "    }"]
    return lines


def render_nginx_conf(conf: TierConfig) -> str:
    """The complete nginx.conf text for ``conf`` (``nginx -p PREFIX -c FILE``)."""
    p = conf.prefix
    lock = _duration(conf.lock_wait)
    lines = [
        f"# livecast {conf.name}: rendered by livecast.edge.nginx_conf — see docs/edge.md",
        *([f"user {conf.user};"] if conf.user else []),
        f"worker_processes {conf.workers};",
        "daemon off;",
        f"pid {_quoted(p + '/nginx.pid')};",
        f"error_log {_quoted(p + '/error.log')} warn;",
        *(f"load_module {_quoted(module)};" for module in conf.lua_modules),
        f"worker_rlimit_nofile {2 * conf.worker_connections + 64};",
        f"events {{ worker_connections {conf.worker_connections}; }}",
        "http {",
        f"    log_format {FORMAT_NAME} '{log_format(conf.name)}';",
        # buffered: one write per 64 KB or per second instead of one per request (the rehearsal
        # follows the log once a second)
        f"    access_log {_quoted(conf.access_log_path)} {FORMAT_NAME} buffer=64k flush=1s;",
        # cached parts go from the cache file to the socket in the kernel (no copy through
        # nginx). No tcp_nopush: with it (TCP_CORK) the tail of every keep-alive response waited
        # for the client's delayed ACK — +40 ms on every part through an edge (measured)
        "    sendfile on;",
        "    tcp_nopush off;",
        f"    client_body_temp_path {_quoted(p + '/tmp/body')};",
        f"    proxy_temp_path {_quoted(p + '/tmp/proxy')};",
        f"    fastcgi_temp_path {_quoted(p + '/tmp/fastcgi')};",
        f"    uwsgi_temp_path {_quoted(p + '/tmp/uwsgi')};",
        f"    scgi_temp_path {_quoted(p + '/tmp/scgi')};",
        "    keepalive_timeout 60s;",
        "    keepalive_requests 100000;",
        "    server_tokens off;",
        f"    proxy_cache_path {_quoted(p + '/cache')} levels=1:2"
        f" keys_zone=livecast:{conf.keys_zone_mb}m max_size={conf.cache_max_size_mb}m"
        f" inactive={_seconds(conf.inactive)} use_temp_path=off;",
        *_lua_http(conf),
        *_upstream_block(conf),
        "    server {",
        f"        listen {Upstream(conf.host, conf.port).address} backlog=4096;",
        "        # inherited by the locations below",
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_connect_timeout 1s;",
        f"        proxy_read_timeout {_duration(conf.read_timeout)};",
        f"        proxy_send_timeout {_duration(conf.read_timeout)};",
        f"        proxy_next_upstream {NEXT_UPSTREAM_CASES};",
        f"        proxy_next_upstream_tries {len(conf.upstreams)};",
        f"        proxy_next_upstream_timeout {_duration(conf.read_timeout)};",
        # a cache's fetch serves every waiter, not just the viewer it came from: it goes on when
        # that viewer leaves (else the waiters would find no object and fetch it again)
        "        proxy_ignore_client_abort on;",
        *(["        " + token_lua.TOKEN_ARG_VARIABLE] if conf.token_ring is not None else []),
        "        proxy_cache livecast;",
        f'        proxy_cache_key "{CACHE_KEY}";',
        "        proxy_cache_lock on;",
        f"        proxy_cache_lock_timeout {lock};",
        f"        proxy_cache_lock_age {lock};",
        f"        proxy_cache_valid 404 {NEGATIVE_TTL};",
        "        proxy_pass_header Date;",
        "        proxy_hide_header X-Cache-Status;",
        "        proxy_hide_header X-Edge;",
        '        add_header X-Cache-Status "$upstream_cache_status" always;',
        f'        add_header X-Edge "{conf.name}" always;',
        f"        location = {EDGE_STATUS} {{",
        "            stub_status;",
        "            access_log off;",
        *(["            log_by_lua_block { }"] if conf.lua_metrics else []),
        "        }",
        *metrics_lua.metrics_location(conf.lua_metrics),
        "        # the stream leases (access.heartbeat): each answer is one viewer's — never",
        "        # cached nor collapsed (one URL for every viewer); the origin checks the token",
        "        location /session/ {",
        "            proxy_pass http://livecast_upstream;",
        "            proxy_cache off;",
        "        }",
        "        # media: immutable once produced; a 404 (not produced yet) is never served stale",
        *_location(
            f"~ {MEDIA_PATHS}", MEDIA_STALE_CASES, *MEDIA_VALID, *_lua_access(conf, media=True)
        ),
        "        # playlists (and the rest): stale while another request refreshes, or on errors",
        *_location(
            "/",
            STALE_CASES,
            NO_BACKGROUND_UPDATE,
            *_lua_access(conf, media=False),
            *_playlist_filters(conf),
        ),
        *_fetch_locations(conf),
        *_refresh_locations(conf),
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"
