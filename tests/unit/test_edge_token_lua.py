"""The edge's token Lua as rendered (edge/token_lua.py, edge/nginx_conf.py): the URI rewrite in
every location that answers playlists, the token kept for it across ngx.exec, the revocation
poller only where a source is given, and its secret never in nginx.conf."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from livecast.access.keys import KeyRing
from livecast.edge.nginx import prepare_prefix
from livecast.edge.nginx_conf import TierConfig, Upstream, render_nginx_conf
from livecast.edge.token_lua import RevocationSource

RING = KeyRing({"k1": b"k" * 32}, "k1").validate()
LUA = ("/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so")
SECRET = "reader-secret-0123456789abcdef"


def conf(prefix: str = "/srv/edge", **changes: object) -> TierConfig:
    return TierConfig(
        name="edge-0",
        prefix=prefix,
        port=8081,
        upstreams=(Upstream("127.0.0.1", 8080),),
        lua_modules=LUA,
        token_ring=RING,
        **changes,  # type: ignore[arg-type]
    )


def test_playlists_are_rewritten_wherever_they_are_answered() -> None:
    text = render_nginx_conf(conf())
    assert text.count('set $livecast_token_arg "";') == 1  # server level: survives ngx.exec
    assert text.count("livecast_rewrite_playlist(table.concat(parts)") == 4
    assert text.count("body_filter_by_lua_block") == 5  # 4 playlist locations + the media fetch
    assert 'ngx.req.set_header("Cookie", "livecast_token=" .. token)' in text
    assert "init_worker_by_lua_block" not in text and "livecast_revoked " not in text
    assert "function livecast_revoked(verdict) return false end" in text


def test_the_revocation_poller_is_rendered_with_a_source_and_its_secret_stays_in_a_0600_file(
    tmp_path: Path,
) -> None:
    source = RevocationSource("127.0.0.1", 8090, SECRET, interval=0.5)
    tier = conf(str(tmp_path / "edge"), revocations=source)
    text = render_nginx_conf(tier)
    assert text.count("init_worker_by_lua_block") == 1
    assert "lua_shared_dict livecast_revoked 12m;" in text
    assert "ngx.timer.every(0.5, poll)" in text and "if ngx.worker.id() ~= 0" in text
    assert SECRET not in text
    prepare_prefix(tier)
    secret_file = tmp_path / "edge" / "revocations.lua"
    assert SECRET in secret_file.read_text()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    with pytest.raises(ValueError):
        TierConfig(
            name="edge-0",
            prefix="/srv/e",
            port=8081,
            upstreams=(Upstream("127.0.0.1", 8080),),
            lua_modules=LUA,
            revocations=source,
        )


@pytest.mark.parametrize(
    ("host", "secret", "interval"),
    [('127.0.0.1"; os.exit()', SECRET, 0.5), ("127.0.0.1", "short", 0.5),
     ("127.0.0.1", SECRET + '"', 0.5), ("127.0.0.1", SECRET, 0.0)],
)  # fmt: skip
def test_a_revocation_source_refuses_what_could_break_out_of_lua(
    host: str, secret: str, interval: float
) -> None:
    with pytest.raises(ValueError):
        RevocationSource(host, 8090, secret, interval=interval)
