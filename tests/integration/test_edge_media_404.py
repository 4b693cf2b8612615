"""An edge in front of two origins asks the other origin for a part the first answers 404 (one
origin a moment behind the other that listed it — docs/edge.md); a playlist's 404 is not retried
elsewhere, and with a single origin nothing changes. Real nginx, scripted origins on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from livecast.edge.nginx import find_lua_modules, find_nginx
from livecast.edge.nginx_conf import Upstream
from livecast.edge.topology import TopologySpec, tier_configs
from livecast.errors import LivecastError
from tests.integration.fake_upstream import FakeUpstream, Scripted, running_tier
from tests.integration.test_edge_shed_503 import get
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

PART = Scripted(200, (("Cache-Control", "public, max-age=86400, immutable"),), b"\x01" * 500)
NOT_YET = Scripted(404, (("Cache-Control", "max-age=1"),), b"no such part\n")  # as the origin


@pytest.mark.parametrize("mode", ["lock", "wakeup"])
def test_a_part_one_origin_has_not_cut_yet_comes_from_the_other(tmp_path: Path, mode: str) -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    modules = find_lua_modules() if mode == "wakeup" else ()
    if mode == "wakeup" and not modules:
        skip_missing("lua")
    tmp_path.chmod(0o755)
    part = "/live/main/720p/part-41.2.m4s"
    playlist = "/live/main/720p/index.m3u8"
    with FakeUpstream() as behind, FakeUpstream() as ahead:
        for origin, answer in ((behind, NOT_YET), (ahead, PART)):
            origin.script(part, answer)
            origin.script(playlist, NOT_YET)
        upstreams = [Upstream("127.0.0.1", behind.port), Upstream("127.0.0.1", ahead.port)]
        conf = tier_configs(TopologySpec(edges=1), upstreams, 2.0, tmp_path, modules)[0]
        with running_tier(conf) as port:
            for _ in range(4):  # round robin: whichever origin the edge asks first
                assert get(port, part)[0] == 200
            assert ahead.counts[part] == 1  # then cached
            assert get(port, playlist)[0] == 404
            assert behind.counts[playlist] + ahead.counts[playlist] == 1  # no second origin
