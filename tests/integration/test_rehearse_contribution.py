"""``livecast rehearse`` of a contribution-fed show: the rehearsal starts the stack with
``source = "rtmp"``, two real FFmpeg encoders (primary and backup) publishing with random keys,
and 20 viewers; the primary encoder is killed 4 s into the show and a new one publishes 4 s
later. The backup must go on air within 1.5 s of the primary's last media, no viewer may end on a
fatal error, and nothing the rehearsal started (stack, ladder, encoders, drivers) may outlive it."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from livecast.errors import TranscodeError
from livecast.transcode.ffmpeg import find_ffmpeg
from tests.integration.processes import descendants, livecast, none_left
from tests.requirements import skip_missing

pytestmark = pytest.mark.integration

SCENARIO = """
name = "encoder-crash"
duration = 12.0
seed = 11
[target]
stack = true
source = "rtmp"
publishers = 2
cache_dir = "{cache}"
[audience]
kind = "flash"
viewers = 20
within = 2.0
[players]
low_latency_share = 1.0
[[faults]]
at = 4.0
duration = 4.0
kind = "stop_process"
target = "publisher"
mode = "kill"
"""


def test_the_backup_takes_over_a_killed_primary_encoder(tmp_path: Path, loop_cache: Path) -> None:
    try:
        find_ffmpeg(None)
    except TranscodeError as exc:
        skip_missing("ffmpeg", str(exc))
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO.format(cache=loop_cache))
    started = time.monotonic()
    run = livecast("rehearse", str(scenario), "--out", str(tmp_path / "out"))
    assert run.stderr is not None
    seen: set[int] = set()  # everything the rehearsal started, sampled while it runs
    lines = []
    try:
        for line in run.stderr:
            lines.append(line)
            if line.startswith(("on air", "t=")):
                seen |= descendants(run.pid)
        run.wait(timeout=30)
    finally:
        run.kill()
        run.wait()
    output = "".join(lines)
    assert run.returncode in (0, 1), output[-3000:]  # 2: it could not run
    assert none_left(seen, timeout=10.0), "a process the rehearsal started outlived it"
    assert time.monotonic() - started < 60

    document = json.loads((tmp_path / "out" / "results.json").read_text())
    assert document["stats"]["viewers"]["counters"]["fatal_errors"] == 0, output[-3000:]
    contribution = document["meta"]["contribution"]
    assert contribution["publishers"] == 2
    why = (contribution, document["meta"]["fault_events"], output[-2000:])
    assert contribution["switches"].get("primary→backup") == 1, why
    (change,) = [c for c in contribution["on_air_changes"] if c["from"] == "primary"]
    assert change["to"] == "backup" and 4.0 <= change["t_s"] <= 7.0, why
    assert 0 < change["gap_s"] <= 1.5, why
    assert contribution["encoder_restarts"] == {"publisher": 1, "backup_publisher": 0}
    assert contribution["publishes_accepted"] == 3  # primary, backup, the new primary
    assert "primary → backup (switch time" in output
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Contribution: input switches" in html and "primary→backup" in html
    assert re.search(r"rtmp://\S+/live/\S", output + html) is None  # no stream key shown
