"""``livecast rehearse`` of a stack that checks who watches (``[access]``): every virtual viewer
carries its own signed token through two nginx edges to the origin, joins its stream's lease in
Redis (Debian's redis-server, started by the rehearsal on loopback) and heartbeats it; one
account too many streams is refused and the verdict says so; Redis counts one round trip per
join or heartbeat and none per media request."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.integration.rehearsing import has_nginx, run_rehearsal
from tests.requirements import skip_unless

pytestmark = pytest.mark.integration

# 50 viewers on 12 accounts of 4 streams: accounts 0 and 1 have a fifth viewer each (viewers 48
# and 49, the last to arrive), refused too_many_streams; the other 48 hold their leases
SCENARIO = """
name = "access"
duration = 12.0
seed = 5
[target]
stack = true
source = "loop"
loop_seconds = 4
cache_dir = "{cache}"
edges = 2
[access]
accounts = 12
max_streams = 4
lease_store = "redis"
lease_ttl = 6.0
[audience]
kind = "ramp"
viewers = 50
within = 3.0
[players]
low_latency_share = 1.0
[slo]
defaults = true
"""


@skip_unless(has_nginx(), "nginx")
@skip_unless(shutil.which("redis-server") is not None, "redis")
def test_each_viewer_holds_a_lease_and_the_account_over_its_limit_is_refused(
    tmp_path: Path, loop_cache: Path
) -> None:
    run, document, _ = run_rehearsal(SCENARIO.format(cache=loop_cache), tmp_path)
    assert run.returncode == 1, run.stderr[-3000:]  # NO-GO: two viewers could not start
    viewers = document["stats"]["viewers"]
    assert viewers["counters"]["viewers"] == 50
    assert viewers["counters"]["started"] == 48
    assert viewers["counters"]["start_failures"] == 2
    assert viewers["fatal_errors_by_type"] == {"session refused: too_many_streams": 2}
    requests = {k: v["status_counts"] for k, v in document["stats"]["requests"].items()}
    assert set(requests["part"]) == {"200"}  # every media request passed both token checks
    access = document["meta"]["access"]
    answers = access["session_answers"]
    assert answers["403"] == 2
    # the joins, then a heartbeat every 2 s ± 20 % for ≈ 10 s: about 5 per viewer
    assert 48 * 4 <= answers["200"] - 48 <= 48 * 7
    # one Redis round trip per join or heartbeat — answered, or in flight at the run's end —
    # and none for the ≈ 4,000 media requests
    answered = sum(answers.values())
    scripts = access["redis_commands"].get("evalsha", 0) + access["redis_commands"].get("eval", 0)
    assert answered <= scripts <= answered + 50
    assert access["redis_round_trips"] <= answered + 50 + 10  # + the script loads
    per_minute = access["redis_round_trips_per_viewer_minute"]
    assert 20 <= per_minute <= 45  # 60 s / 2 s heartbeats ≈ 30, + the joins
