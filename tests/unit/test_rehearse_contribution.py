"""A contribution-fed rehearsal: the ``[target]`` keys, the origin's input switches read from
its /metrics, the report's section, and the encoder processes as fault targets (with stand-in
commands for FFmpeg: every one reaped)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from livecast.errors import ConfigError, LivecastError
from livecast.ingest.keys import key_problem
from livecast.ingest.settings import BACKUP_KEY_ENV, KEY_ENV
from livecast.rehearse.faults.processes import Processes, check_targets
from livecast.rehearse.publishers import (
    Publisher,
    Publishers,
    ingest_config,
    key_env,
    publisher_argv,
    stream_keys,
)
from livecast.results.report_ingest import (
    IngestLog,
    accepted_publishes,
    ingest_section,
    on_air_input,
)
from livecast.results.stats import RunStats, ViewerOutcome
from livecast.scenario.file import StackSpec, load_scenario, parse_scenario

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rehearse-failover.toml"
RTMP = {"stack": True, "source": "rtmp"}


def kill_publisher(target: str = "publisher") -> list[dict[str, Any]]:
    return [{"at": 5, "duration": 5, "kind": "stop_process", "target": target, "mode": "kill"}]


# ------------------------------------------------------------------ the scenario


def test_the_failover_example_parses() -> None:
    scenario = load_scenario(EXAMPLE)
    assert scenario.stack is not None and scenario.stack.contribution
    assert scenario.stack.publishers == 2 and scenario.stack.switch_back_after == 10.0
    assert scenario.audience.viewers == 200 and scenario.duration == 40.0
    (fault,) = scenario.faults.faults
    assert (fault.target, fault.at, fault.duration) == ("publisher", 12.0, 10.0)


def test_rtmp_defaults_to_one_publisher_and_other_sources_to_none() -> None:
    spec = parse_scenario({"target": RTMP}).stack
    assert spec is not None and (spec.publishers, spec.switch_back_after) == (1, 10.0)
    loop = parse_scenario({"target": {"stack": True}}).stack
    assert loop is not None and not loop.contribution and loop.publishers == 0
    two = parse_scenario(
        {"target": {**RTMP, "publishers": 2, "switch_back_after": 4}},
    ).stack
    assert two is not None and (two.publishers, two.switch_back_after) == (2, 4.0)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"target": {**RTMP, "publishers": 3}}, "target.publishers"),
        ({"target": {**RTMP, "publishers": 0}}, "target.publishers"),
        ({"target": {**RTMP, "publishers": "two"}}, "target.publishers"),
        ({"target": {**RTMP, "publishers": 1.5}}, "target.publishers"),
        ({"target": {"stack": True, "publishers": 2}}, "target.publishers"),
        ({"target": {"stack": True, "source": "test", "switch_back_after": 5}},
         "target.switch_back_after"),
        ({"target": {**RTMP, "switch_back_after": 0}}, "target.switch_back_after"),
        ({"target": {**RTMP, "switch_back_after": "soon"}}, "target.switch_back_after"),
        ({"target": {"stack": True, "source": "srt"}}, "target.source"),
        ({"target": {**RTMP, "publisher": 2}}, "target.publisher"),
        ({"target": RTMP, "faults": kill_publisher("backup_publisher")}, "faults[0].target"),
        ({"target": {"stack": True}, "faults": kill_publisher()}, "faults[0].target"),
        ({"target": {"urls": ["http://x/live/main.m3u8"]}, "faults": kill_publisher()},
         "faults[0].target"),
    ],
)  # fmt: skip
def test_bad_contribution_targets_name_the_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_scenario(data)
    assert info.value.key == key


def test_publisher_faults_are_accepted_with_their_publishers() -> None:
    target = {**RTMP, "publishers": 2}
    scenario = parse_scenario({"target": target, "faults": kill_publisher("backup_publisher")})
    assert scenario.faults.faults[0].target == "backup_publisher"


# ------------------------------------------------------------------ the stack's inputs


def test_keys_are_random_valid_and_reach_the_stack_by_environment() -> None:
    keys = stream_keys(2)
    assert len(set(keys)) == 2 and all(key_problem(key) is None for key in keys)
    assert stream_keys(2) != keys
    assert key_env(keys) == {KEY_ENV: keys[0], BACKUP_KEY_ENV: keys[1]}
    assert key_env(keys[:1]) == {KEY_ENV: keys[0]}
    spec = StackSpec(source="rtmp", publishers=2, switch_back_after=4.0)
    table = ingest_config(spec)
    assert table[0] == "[ingest]" and "rtmp_port = 0" in table
    assert "switch_back_after = 4.0" in table and not any(k in "".join(table) for k in keys)
    assert ingest_config(StackSpec()) == []


def test_the_backup_encoder_looks_and_sounds_different() -> None:
    primary = publisher_argv("ffmpeg", "rtmp://127.0.0.1:1/live/k1", 0)
    backup = publisher_argv("ffmpeg", "rtmp://127.0.0.1:1/live/k2", 1)
    assert primary[-1].endswith("/k1") and backup[-1].endswith("/k2")
    assert primary[primary.index("-g") + 1] == "60"  # 2 s at 30 fps
    sources = [arg for arg in primary + backup if arg.startswith(("testsrc", "sine"))]
    assert len(set(sources)) == 4 and not any("duration" in arg for arg in sources)  # endless


# ------------------------------------------------------------------ the origin's /metrics


def metrics(on_air: str, switches: dict[tuple[str, str], int], gap: float | None) -> str:
    lines = [
        "# TYPE livecast_ingest_on_air gauge",
        *(
            f'livecast_ingest_on_air{{input="{name}",stream="main"}} {int(name == on_air)}'
            for name in ("primary", "backup", "slate")
        ),
        'livecast_ingest_on_air{input="primary",stream="stage-2"} 1',
        'livecast_ingest_publishes_total{result="accepted"} 3',
        'livecast_ingest_publishes_total{result="wrong_key"} 1',
        'livecast_ingest_switches_total{from="none",to="primary",stream="main"} 1',
        'livecast_ingest_switches_total{from="backup",to="primary",stream="stage-2"} 7',
    ]
    lines += [
        f'livecast_ingest_switches_total{{from="{a}",to="{b}",stream="main"}} {n}'
        for (a, b), n in switches.items()
    ]
    if gap is not None:
        lines.append(f'livecast_ingest_switch_gap_seconds{{stream="main"}} {gap}')
    return "\n".join(lines) + "\n"


def test_the_log_dates_each_on_air_change_with_its_switch_time() -> None:
    log = IngestLog(publishers=2)
    assert log.observe(1.0, metrics("primary", {}, None)) is None
    change = log.observe(2.0, metrics("backup", {("primary", "backup"): 1}, 0.31))
    assert change is not None and (change.before, change.after, change.gap_s) == (
        "primary", "backup", 0.31,
    )  # fmt: skip
    assert "primary → backup (switch time 0.31 s)" in change.describe()
    assert log.observe(3.0, metrics("backup", {("primary", "backup"): 1}, 0.31)) is None
    both = {("primary", "backup"): 1, ("backup", "slate"): 1}
    to_slate = log.observe(4.0, metrics("slate", both, 0.31))
    assert to_slate is not None and to_slate.gap_s is None  # the slate has no switch time
    document = log.to_dict()
    assert document["switches"] == {"backup→slate": 1, "primary→backup": 1}  # "none" is no switch
    assert document["last_switch_gap_s"] == 0.31 and document["on_air_at_end"] == "slate"
    assert document["publishes_accepted"] == 3 and document["publishers"] == 2
    assert [c["t_s"] for c in document["on_air_changes"]] == [2.0, 4.0]
    assert accepted_publishes(metrics("primary", {}, None)) == 3
    assert on_air_input(metrics("backup", {}, None)) == "backup"
    assert on_air_input(metrics("backup", {}, None), "stage-2") == "primary"
    assert on_air_input("") is None
    json.dumps(document)


def test_the_report_section_shows_switches_gaps_and_stall_time() -> None:
    stats = RunStats()
    stats.record_viewer(ViewerOutcome(startup_s=0.5, stalls=1, stalled_s=0.8, played_s=30.0))
    stats.record_viewer(ViewerOutcome(startup_s=0.6, played_s=30.0))
    log = IngestLog(publishers=2)
    log.observe(1.0, metrics("primary", {}, None))
    log.observe(2.0, metrics("backup", {("primary", "backup"): 1}, 0.42))
    html = ingest_section(stats, {"contribution": log.to_dict()})
    assert "primary→backup" in html and "0.42" in html and "viewers_stalled_s_total" in html
    assert "0.8" in html  # the stalled viewer's time
    assert ingest_section(stats, {"scenario": "loop"}) == ""


# ------------------------------------------------------------------ encoder processes


def state(pid: int) -> str:
    """The process state letter from /proc (R, S, T stopped, Z zombie), or "gone"."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


async def wait_state(pid: int, wanted: str, timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if state(pid) in wanted:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"process {pid} is {state(pid)!r}, not {wanted!r}")


def stand_in(tmp_path: Path, name: str = "publisher") -> Publisher:
    """An encoder stand-in: a Python child that sleeps until signalled."""
    argv = [sys.executable, "-c", "import time; time.sleep(60)"]
    return Publisher(name, argv, tmp_path / f"{name}.log")


async def test_kill_stops_the_encoder_and_the_faults_end_starts_a_new_one(tmp_path: Path) -> None:
    publisher = stand_in(tmp_path)
    publishers = Publishers("unused", "rtmp://127.0.0.1:1/live", ["k"], tmp_path)
    publishers.items = [publisher]
    processes = Processes()
    publishers.register(processes)
    check_targets(parse_scenario({"target": RTMP, "faults": kill_publisher()}).faults,
                  processes.names())  # fmt: skip
    pids: list[int] = []
    try:
        await publisher.start()
        first = publisher.pid()
        assert first is not None
        pids.append(first)
        processes.stop("publisher", "pause")
        await wait_state(first, "T")  # SIGSTOP: a stalled link
        processes.start("publisher")
        await wait_state(first, "RS")
        processes.stop("publisher", "kill")
        processes.start("publisher")  # the fault's end: a restart, asynchronously
        await asyncio.gather(*processes.pending)
        second = publisher.pid()
        assert second is not None and second != first and state(first) == "gone"
        pids.append(second)
        assert publishers.restarts() == {"publisher": 1}
    finally:
        await publishers.close()
    assert all(state(pid) == "gone" for pid in pids) and publisher.pid() is None


async def test_close_wins_over_a_pending_restart_and_reaps_a_paused_encoder(
    tmp_path: Path,
) -> None:
    publisher = stand_in(tmp_path)
    await publisher.start()
    pid = publisher.pid()
    assert pid is not None
    processes = Processes()
    processes.register_pid("publisher", publisher.pid, restart=publisher.start)
    processes.stop("publisher", "pause")
    await wait_state(pid, "T")
    await publisher.close()  # SIGCONT + SIGTERM: a stopped process is reaped too
    assert state(pid) == "gone"
    await publisher.start()  # a restart that comes after the end starts nothing
    assert publisher.pid() is None and publisher.starts == 1


async def test_an_encoder_that_exits_fails_the_wait_without_showing_its_key(
    tmp_path: Path,
) -> None:
    (key,) = stream_keys(1)
    publishers = Publishers("unused", "rtmp://127.0.0.1:1/live", [key], tmp_path)
    crash = f"import sys; sys.stderr.write('rtmp://127.0.0.1:1/live/{key}: refused'); sys.exit(1)"
    publishers.items[0].argv = [sys.executable, "-c", crash]
    stack_log = tmp_path / "stack.log"
    stack_log.write_text(f"publish refused (key {key})\n")
    try:
        with pytest.raises(LivecastError) as info:
            await publishers.go_on_air("http://127.0.0.1:1", stack_log, timeout=20)
    finally:
        await publishers.close()
    message = str(info.value)
    assert "'publisher' exited" in message and "refused" in message
    assert key not in message and "<key>" in message


async def test_no_media_in_time_is_a_clear_error(tmp_path: Path) -> None:
    publisher = stand_in(tmp_path)
    publishers = Publishers("unused", "rtmp://127.0.0.1:1/live", ["k"], tmp_path)
    publishers.items = [publisher]
    try:
        with pytest.raises(LivecastError, match=r"no primary on air .* 0\.1 s after start"):
            await publishers.go_on_air("http://127.0.0.1:1", tmp_path / "none", timeout=0.1)
    finally:
        await publishers.close()
    assert publisher.pid() is None
