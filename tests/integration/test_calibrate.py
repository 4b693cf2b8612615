"""``livecast calibrate --quick`` with the real components (a loop-source origin, an nginx edge in
front of it, the rehearsal driver): the profile it writes loads back with every figure positive
and plausible for this kind of machine, each beside a note of how it was measured; without nginx
it exits 2 and says how to install it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livecast.edge.nginx import find_nginx
from livecast.errors import LivecastError
from livecast.simulate.profile import NIC_10G, OBJECT_KINDS, load_profile
from tests.requirements import skip_missing

from .processes import SRC

pytestmark = [pytest.mark.integration, pytest.mark.nginx]


def calibrate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run(
        [sys.executable, "-m", "livecast.simulate.calibrate", *args],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        timeout=240,  # a first run pre-encodes the loop source (≈ 30 s of FFmpeg) before measuring
        check=False,
    )


def test_quick_calibration_writes_a_plausible_profile(tmp_path: Path) -> None:
    try:
        find_nginx()
    except LivecastError as exc:
        skip_missing("nginx", str(exc))
    out = tmp_path / "profile.toml"
    started = time.monotonic()
    result = calibrate("--out", str(out), "--quick")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    for phase in ("origin part", "edge hits", "edge collapse", "driver", "wrote"):
        assert f"calibrate: {phase}" in result.stderr, result.stderr[-3000:]

    profile = load_profile(out)  # validates: every figure present and above 0
    origin, edge, shield, driver = profile.origin, profile.edge, profile.shield, profile.driver
    for kind in OBJECT_KINDS:
        assert 1_000 <= origin.requests_per_s[kind] <= 1_000_000, (kind, origin.requests_per_s)
    assert 0 < origin.latency_s < 0.1
    assert 1_000 <= edge.requests_per_s <= 1_000_000
    assert edge.cpu_s_per_request == pytest.approx(1 / edge.requests_per_s, rel=0.01)
    assert 0 < edge.latency_s < 0.1
    assert 1.0 <= edge.upstream_per_object <= 3.0  # collapsed: about one origin request
    assert shield == edge  # the same kind of node: the edge's figures
    assert 1e-6 <= driver.cpu_s_per_request <= 0.01
    assert 5 <= driver.requests_per_viewer_per_s <= 30  # LL-HLS: ≈ 12 (video + audio, ⅓ s parts)
    assert origin.bytes_per_s == edge.bytes_per_s == NIC_10G  # not measurable on loopback
    assert profile.measured[:4].isdigit() and profile.measured[4] == "-"
    assert "core" in profile.machine

    text = out.read_text()
    for key in (*OBJECT_KINDS, "latency_s", "cpu_s_per_request", "upstream_per_object"):
        lines = [line for line in text.splitlines() if line.startswith(f"{key} = ")]
        assert lines and all("  # " in line for line in lines), (key, lines)
    assert "req over" in text and "CPU-s" in text
    assert text.count("not measured: NIC") == 3  # origin, edge, shield
    print(f"quick calibration: {elapsed:.1f} s")


def test_without_nginx_it_exits_2_and_says_how_to_install_it(tmp_path: Path) -> None:
    out = tmp_path / "profile.toml"
    result = calibrate("--out", str(out), env={"LIVECAST_NGINX": "/nonexistent/nginx"})
    assert result.returncode == 2
    assert "apt-get install nginx-light" in result.stderr
    assert not out.exists()
