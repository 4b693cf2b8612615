"""The rendered nginx config, one issue-4 requirement per test, asserted on the text itself
(that nginx accepts it is tests/integration/test_edge_up.py; that it behaves is the other
tests/integration/test_edge_*.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from livecast.edge.metrics_lua import kind_of, metrics_init
from livecast.edge.nginx_conf import (
    DONE_PER_GENERATION,
    MEDIA_PATHS,
    TierConfig,
    Upstream,
    render_nginx_conf,
)
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import ConfigError

ORIGIN = Upstream("127.0.0.1", 8080)


def conf(**changes: object) -> TierConfig:
    values: dict[str, object] = {
        "name": "edge-0",
        "prefix": "/srv/livecast/edge-0",
        "port": 8081,
        "upstreams": (ORIGIN,),
    }
    values.update(changes)
    return TierConfig(**values)  # type: ignore[arg-type]


def directives(text: str, name: str) -> list[str]:
    """The arguments of every ``name …;`` line."""
    return [m[1].strip() for m in re.finditer(rf"^\s*{name}\s+(.*?);\s*$", text, re.M)]


def one(text: str, name: str) -> str:
    (value,) = directives(text, name)
    return value


def location(text: str, pattern: str) -> str:
    """The body of ``location <pattern> { … }``."""
    match = re.search(rf"location {re.escape(pattern)} \{{(.*?)\}}", text, re.S)
    assert match is not None, pattern
    return match[1]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s)", value)
    assert match, value
    return int(match[1]) / (1000 if match[2] == "ms" else 1)


def test_cache_key_is_the_path_the_ll_hls_directives_and_the_recorded_range_only() -> None:
    key = one(render_nginx_conf(conf()), "proxy_cache_key")
    for part in ("$uri", "$arg__HLS_msn", "$arg__HLS_part", "$arg__HLS_skip", "$arg_start"):
        assert part in key
    for per_viewer in ("$args", "$request_uri", "$query_string", "$is_args", "CMCD", "$arg_CMCD"):
        assert per_viewer not in key
    assert set(re.findall(r"\$\w+", key)) == {
        "$uri", "$arg__HLS_msn", "$arg__HLS_part", "$arg__HLS_skip", "$arg_start", "$arg_end",
    }  # fmt: skip


@pytest.mark.parametrize("target_duration", [1.0, 2.0, 4.0, 6.0])
def test_lock_timeout_and_age_outlast_the_longest_blocking_hold(target_duration: float) -> None:
    text = render_nginx_conf(conf(target_duration=target_duration))
    assert one(text, "proxy_cache_lock") == "on"
    hold = 3 * target_duration
    for name in ("proxy_cache_lock_timeout", "proxy_cache_lock_age", "proxy_read_timeout"):
        value = seconds(one(text, name))
        assert value >= hold + 2.0, (name, value)  # never nginx's default 5 s for TD 2
    assert seconds(one(text, "proxy_next_upstream_timeout")) > hold
    # the fetch serves every waiter: it goes on when the viewer it came from leaves
    assert one(text, "proxy_ignore_client_abort") == "on"


def test_plain_playlists_are_served_stale_while_revalidating_and_on_errors() -> None:
    playlists = location(render_nginx_conf(conf()), "/")
    stale = set(one(playlists, "proxy_cache_use_stale").split())
    assert stale >= {"error", "timeout", "updating", "http_500", "http_502", "http_503", "http_504"}
    # the request that finds the playlist expired refreshes it itself and gets the fresh one
    assert one(playlists, "proxy_cache_background_update") == "off"


def test_media_is_never_served_stale_while_revalidating() -> None:
    """A part 404'd before it was produced must not be served stale while the refetch is held."""
    text = render_nginx_conf(conf())
    media = location(text, f"~ {MEDIA_PATHS}")
    stale = set(one(media, "proxy_cache_use_stale").split())
    assert "updating" not in stale and {"error", "timeout", "http_502"} <= stale
    assert not directives(media, "proxy_cache_background_update")
    for path in ("/live/720p/part-1.2.m4s", "/live/720p/seg-1.m4s", "/live/720p/init-0.mp4"):
        assert re.search(MEDIA_PATHS, path)
    assert not re.search(MEDIA_PATHS, "/live/720p/index.m3u8")


def test_ttls_come_from_the_origin_with_only_a_short_negative_fallback() -> None:
    text = render_nginx_conf(conf())
    server = text.split("        location ", 1)[0]
    # nothing for 200: the origin's Cache-Control decides
    assert directives(server, "proxy_cache_valid") == ["404 1s"]
    # media: an upstream error without one is kept a second, so that an outage's retries of a part
    # reach the origin once a second per edge; playlists (the viewers' lifeline) never cache one
    media = location(text, f"~ {MEDIA_PATHS}")
    assert directives(media, "proxy_cache_valid") == ["404 1s", "500 502 503 504 1s"]
    assert not directives(location(text, "/"), "proxy_cache_valid")
    assert not directives(text, "proxy_ignore_headers")  # Cache-Control is honoured
    assert not directives(text, "expires")


def test_keepalive_to_the_upstreams() -> None:
    text = render_nginx_conf(conf())
    upstream = re.search(r"upstream livecast_upstream \{(.*?)\}", text, re.S)
    assert upstream is not None
    assert re.search(r"^\s*keepalive \d+;", upstream[1], re.M)
    assert one(text, "proxy_http_version") == "1.1"
    assert one(text, "proxy_set_header") == 'Connection ""'
    assert set(directives(text, "proxy_pass")) == {"http://livecast_upstream"}


def test_failover_between_several_origins() -> None:
    origins = (ORIGIN, Upstream("127.0.0.1", 8090), Upstream("::1", 8091))
    text = render_nginx_conf(conf(upstreams=origins))
    servers = directives(text, "server")
    assert [s.split()[0] for s in servers] == ["127.0.0.1:8080", "127.0.0.1:8090", "[::1]:8091"]
    assert all("max_fails=" in s and "fail_timeout=" in s for s in servers)
    server, media = directives(text, "proxy_next_upstream")  # the server's, then media's
    assert set(server.split()) == {"error", "timeout", "http_502", "http_503", "http_504"}
    assert set(media.split()) == set(server.split()) | {"http_404"}  # a part not cut yet there
    assert "proxy_next_upstream " in location(text, "~ \\.(m4s|mp4)$")
    assert one(text, "proxy_next_upstream_tries") == "3"


def test_cache_status_is_exposed_and_logged_with_timings() -> None:
    text = render_nginx_conf(conf(name="edge-3"))
    headers = directives(text, "add_header")
    assert 'X-Cache-Status "$upstream_cache_status" always' in headers
    assert 'X-Edge "edge-3" always' in headers
    (log_format,) = directives(text, "log_format")
    for variable in ("$upstream_cache_status", "$request_time", "$upstream_response_time"):
        assert variable in log_format
    assert "edge-3" in log_format
    logs = directives(text, "access_log")
    assert logs == [  # buffered, flushed every second; off: /edge/status, /edge/metrics
        '"/srv/livecast/edge-0/access.log" livecast_edge buffer=64k flush=1s',
        "off",
        "off",
    ]


def test_age_is_computable_from_the_origins_date() -> None:
    text = render_nginx_conf(conf())
    assert one(text, "proxy_pass_header") == "Date"
    assert "Age" not in " ".join(directives(text, "proxy_hide_header"))


def test_everything_nginx_writes_stays_under_the_prefix() -> None:
    text = render_nginx_conf(conf(prefix="/tmp/x/e0", port=9000, host="127.0.0.2", workers=2))
    for name in (
        "pid", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
        "uwsgi_temp_path", "scgi_temp_path",
    ):  # fmt: skip
        assert one(text, name).startswith('"/tmp/x/e0/'), name
    assert one(text, "error_log").startswith('"/tmp/x/e0/error.log"')
    assert one(text, "proxy_cache_path").startswith('"/tmp/x/e0/cache" ')
    assert one(text, "listen").startswith("127.0.0.2:9000")
    assert one(text, "worker_processes") == "2"
    assert one(text, "daemon") == "off"


def test_shield_is_the_edges_only_upstream_and_the_origins_are_the_shields(
    tmp_path: Path,
) -> None:
    origins = [ORIGIN, Upstream("127.0.0.1", 8090)]
    shield, *edges = tier_configs(
        TopologySpec(edges=3, shield=True, port=9100), origins, 2.0, tmp_path
    )
    assert shield.name == "shield" and shield.upstreams == tuple(origins)
    assert [e.name for e in edges] == ["edge-0", "edge-1", "edge-2"]
    assert [e.port for e in edges] == [9100, 9101, 9102]
    assert all(e.upstreams == (Upstream("127.0.0.1", shield.port),) for e in edges)
    assert len({c.prefix for c in (shield, *edges)}) == 4
    (direct,) = tier_configs(TopologySpec(edges=1), origins, 2.0, tmp_path)
    assert direct.upstreams == tuple(origins)


@pytest.mark.parametrize(
    "changes",
    [
        {"upstreams": ()},
        {"prefix": "relative/dir"},
        {"prefix": "/tmp/semi;colon"},
        {"name": "edge 0"},
        {"name": "edge\t0"},
        {"port": 0},
        {"target_duration": 0},
        {"upstreams": (Upstream("127.0.0.1", 1),), "user": "root; daemon on"},
    ],
)
def test_unusable_values_are_refused(changes: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        render_nginx_conf(conf(**changes))


def test_unusable_upstream_is_refused() -> None:
    with pytest.raises(ValueError):
        Upstream("evil;host", 80)
    with pytest.raises(ValueError):
        Upstream("127.0.0.1", 70000)


@pytest.mark.parametrize(
    "changes", [{"edges": 0}, {"edges": 65}, {"port": 65535, "edges": 2}, {"workers": 0}]
)
def test_unusable_topologies_are_refused(changes: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        TopologySpec(**changes)  # type: ignore[arg-type]


def whole_location(text: str, pattern: str) -> str:
    """The body of ``location <pattern> {`` up to its closing brace (Lua blocks inside)."""
    start = text.index(f"        location {pattern} {{\n")
    return text[start : text.index("\n        }\n", start)]


LUA = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")


def test_without_lua_modules_nothing_of_the_wakeup_collapse_is_rendered() -> None:
    text = render_nginx_conf(conf())
    assert "load_module" not in text and "lua" not in text and "Age" not in text


def test_wakeup_collapse_loads_the_modules_and_gates_blocking_requests_and_media() -> None:
    text = render_nginx_conf(conf(lua_modules=LUA, target_duration=2.0))
    assert directives(text, "load_module") == [f'"{module}"' for module in LUA]
    assert text.index("load_module") < text.index("events")  # main context, before use
    assert text.count("init_by_lua_block") == 1 and 'require "ngx.semaphore"' in text
    media = whole_location(text, f"~ {MEDIA_PATHS}")
    playlists = whole_location(text, "/")
    for block in (media, playlists):
        assert "access_by_lua_block" in block
        assert ", 8.000) then" in block  # waits as long as the cache lock: 3 × TD + margin
        # no body filter where the waiters are answered: lua-nginx-module would read every
        # answer into memory (no sendfile)
        assert "body_filter_by_lua" not in block and "log_by_lua" not in block
    assert "fetch.sema:wait(wait)" in text and "fetch.sema:post(fetch.waiters)" in text
    # media: the path is the key; playlists: only blocking reloads wait for each other (a plain
    # reload is refetched once per part, or served from the cache), keyed by the cache key's fields
    assert "if livecast_collapse(ngx.var.uri, 8.000) then" in media
    assert 'return ngx.exec("@livecast_fetch_media")' in media
    assert "if ngx.var.arg__HLS_msn == nil then" in playlists
    assert "if livecast_collapse(livecast_playlist_key(), 8.000) then" in playlists
    assert 'return ngx.exec("@livecast_fetch_playlist")' in playlists
    assert all(f"ngx.var.arg__HLS_{arg}" in text for arg in ("msn", "part", "skip"))
    # the one request per object that fetches it posts the waiters when its body has passed
    # (or when it ended otherwise), and only once
    for name, key in (("media", "ngx.var.uri"), ("playlist", "livecast_playlist_key()")):
        fetch = whole_location(text, f"@livecast_fetch_{name}")
        assert "access_by_lua" not in fetch  # it must not wait for itself
        assert f"body_filter_by_lua_block {{ if ngx.arg[2] then livecast_release({key}) end }}" in (
            fetch
        )
        # then the metrics (edge/metrics_lua.py): this handler replaces the http-level one
        assert f"log_by_lua_block {{ livecast_release({key}); livecast_metrics_log() }}" in fetch
    assert "if ngx.ctx.livecast_released then return end" in text
    # fetched with 200: later requests go straight to the cache (two bounded generations)
    assert "if ngx.status == 200 then" in text and "livecast_done[key] = true" in text
    assert f"livecast_done_count >= {DONE_PER_GENERATION} then" in text
    # several workers: one fetch per edge — the others poll the shared dict, not the cache lock
    assert directives(text, "lua_shared_dict")[0] == "livecast_fetches 4m"
    assert "if not livecast_shared:add(key, 0, wait) then" in text
    assert "while livecast_shared:get(key) == 0 and ngx.now() < deadline do" in text
    assert "ngx.sleep(0.005)" in text and "livecast_shared:set(key, 1, 60)" in text
    assert one(text, "proxy_cache_lock") == "on"  # still on underneath
    assert "proxy_cache_use_stale error timeout http_500" in whole_location(
        text, "@livecast_fetch_media"
    )  # media: never stale while revalidating, in the fetch location too
    assert "updating" in whole_location(text, "@livecast_fetch_playlist")


def test_with_lua_playlists_answered_from_the_cache_carry_their_age() -> None:
    """RFC 9111 Age from the origin's Date, on playlists (what hls.js's CDN tune-in reads) in
    every location that answers them; not on a fresh fetch; not on media (docs/edge.md)."""
    text = render_nginx_conf(conf(lua_modules=LUA, target_duration=2.0))
    age = 'ngx.header["Age"] = math.max(0, ngx.time() - produced)'
    for location in ("/", "@livecast_fetch_playlist", "@livecast_refresh", "@livecast_stale"):
        block = whole_location(text, location)
        assert "header_filter_by_lua_block" in block and age in block, location
        assert 'if status == "MISS" or status == "BYPASS" then return end' in block
    for location in (f"~ {MEDIA_PATHS}", "@livecast_fetch_media"):
        assert "header_filter_by_lua" not in whole_location(text, location)
    assert text.count("header_filter_by_lua_block") == 4  # not at server level either


def test_with_lua_plain_playlists_are_refetched_once_per_part_with_stale_if_error() -> None:
    text = render_nginx_conf(conf(lua_modules=LUA, target_duration=2.0))
    playlists = whole_location(text, "/")
    assert "now - last >= 0.333" in playlists  # TD / 6: about a part
    assert 'return ngx.exec("@livecast_refresh")' in playlists
    refresh = whole_location(text, "@livecast_refresh")
    assert "proxy_cache_bypass 1;" in refresh  # fetched anew, and stored
    assert "error_page 502 504 = @livecast_stale;" in refresh
    stale = whole_location(text, "@livecast_stale")
    assert "proxy_cache_use_stale error timeout updating" in stale
    assert "@livecast" not in render_nginx_conf(conf())  # without Lua: the max-age alone


def test_lua_modules_are_found_only_when_both_are_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from livecast.edge.nginx import find_lua_modules

    assert find_lua_modules(str(tmp_path)) == ()
    (tmp_path / "ngx_http_lua_module.so").write_bytes(b"")
    assert find_lua_modules(str(tmp_path)) == ()  # ndk missing
    (tmp_path / "ndk_http_module.so").write_bytes(b"")
    assert find_lua_modules(str(tmp_path)) == (
        str(tmp_path / "ndk_http_module.so"),
        str(tmp_path / "ngx_http_lua_module.so"),
    )
    monkeypatch.setenv("LIVECAST_NGINX_LUA", "0")
    assert find_lua_modules(str(tmp_path)) == ()


def test_tier_configs_carry_the_lua_modules_to_every_tier(tmp_path: Path) -> None:
    tiers = tier_configs(TopologySpec(edges=2, shield=True), [ORIGIN], 2.0, tmp_path, LUA)
    assert [t.lua_modules for t in tiers] == [LUA, LUA, LUA]


def test_sendfile_without_cork() -> None:
    """TCP_CORK (tcp_nopush) held the tail of each keep-alive response until the client's
    delayed ACK: 40 ms more per part through an edge."""
    text = render_nginx_conf(conf())
    assert one(text, "sendfile") == "on" and one(text, "tcp_nopush") == "off"


def _log_blocks(text: str) -> list[str]:
    return re.findall(r"log_by_lua_block \{(.*?)\}", text)


def test_edge_metrics_are_counted_in_every_log_phase_and_served_uncached_and_unlogged() -> None:
    text = render_nginx_conf(conf(lua_modules=LUA))
    assert "lua_shared_dict livecast_metrics 1m;" in text
    assert "function livecast_metrics_log()" in text and 'local metrics_tier = "edge-0"' in text
    # the http-level handler, inherited by the proxy locations; the fetch locations have their
    # own log handler (the release of their waiters), which calls it too; /edge/* count nothing
    blocks = [b.strip() for b in _log_blocks(text)]
    assert blocks[0] == "livecast_metrics_log()"
    releases = [b for b in blocks if "livecast_release" in b]
    assert len(releases) == 2 and all(b.endswith("; livecast_metrics_log()") for b in releases)
    assert blocks.count("") == 2
    status = text[text.index("location = /edge/status") :]
    assert "log_by_lua_block { }" in status[: status.index("\n        }")]
    metrics = text[text.index("location = /edge/metrics") :]
    metrics = metrics[: metrics.index("\n        }")]
    assert "access_log off;" in metrics and "log_by_lua_block { }" in metrics
    assert "proxy_pass" not in metrics and "livecast_metrics_render()" in metrics
    assert "version=0.0.4" in metrics and '"Cache-Control"] = "no-store"' in metrics


def test_edge_metrics_with_tokens_share_the_one_init_block() -> None:
    from livecast.access.keys import KeyRing

    ring = KeyRing({"k1": b"s" * 32}, "k1")
    text = render_nginx_conf(conf(lua_modules=LUA, token_ring=ring))
    assert text.count("init_by_lua_block") == 1
    assert "function livecast_token_check()" in text and "function livecast_metrics_log()" in text


def test_without_lua_or_with_metrics_off_edge_metrics_is_a_plain_404() -> None:
    for text in (
        render_nginx_conf(conf()),
        render_nginx_conf(conf(lua_modules=LUA, metrics=False)),
    ):
        assert "livecast_metrics" not in text
        metrics = text[text.index("location = /edge/metrics") :]
        metrics = metrics[: metrics.index("\n        }")]
        assert "return 404" in metrics and "need the nginx Lua modules" in metrics
    # the wake-up collapse without metrics: the fetch locations release only
    off = render_nginx_conf(conf(lua_modules=LUA, metrics=False))
    assert "log_by_lua_block { livecast_release(ngx.var.uri) }" in off


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/live/main.m3u8", "playlist"),
        ("/live/ev/720p/index.m3u8", "playlist"),
        ("/live/720p/part-41.2.m4s", "part"),
        ("/live/ev/720p/seg-41.m4s", "segment"),
        ("/live/ev/720p/init-3.mp4", "init"),
        ("/session/ev", "session"),
        ("/session/x.m3u8", "session"),
        ("/live/ev/recording.json", "other"),
        ("/", "other"),
        ("/live/720p/m4s", "other"),
    ],
)
def test_kind_of_a_path(path: str, kind: str) -> None:
    assert kind_of(path) == kind


def test_metrics_init_refuses_a_tier_name_that_would_break_the_lua_string() -> None:
    for name in ('a"b', "a b", "a\\b", ""):
        with pytest.raises(ValueError, match="tier name"):
            metrics_init(name)
    code = metrics_init("shield")
    assert (
        "@" not in code and '"0.001", "0.005"' in code and "livecast_edge_sent_bytes_total" in code
    )


def test_without_lua_modules_one_warning_names_the_missing_edge_metrics(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from livecast.edge.topology import wakeup_modules

    monkeypatch.setenv("LIVECAST_NGINX_LUA", "0")
    with caplog.at_level("WARNING", logger="livecast.edge.topology"):
        assert wakeup_modules(TopologySpec(edges=2, shield=True)) == ()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no /edge/metrics" in warnings[0]
