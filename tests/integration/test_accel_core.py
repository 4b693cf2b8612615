"""The compiled viewer core passes the player model's and the statistics' own tests: same
fidelity as the interpreted ``.py`` (the build of scripts/install.sh --test, from these sources)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.requirements import skip_missing

TESTS = Path(__file__).resolve().parents[1] / "unit"
MODULE_TESTS = (
    *sorted(TESTS.glob("test_player_*.py")),
    TESTS / "test_results_histogram.py",
    TESTS / "test_results_stats.py",
)
RUN = """
import sys
from livecast import accel
state = accel.enable()
assert state.compiled, state.reason
import livecast.player.model, livecast.rehearse.driver
assert livecast.player.model.__file__.endswith(".so"), livecast.player.model.__file__
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", *sys.argv[1:]]))
"""


def test_player_and_statistics_tests_pass_compiled() -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "livecast.accel", "status"], capture_output=True, text=True
    )
    if not probe.stdout.startswith("compiled"):
        skip_missing("accel", probe.stdout.strip())
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", RUN, *map(str, MODULE_TESTS)],
        cwd=root, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout
