"""The ``livecast`` command as a user runs it: URLs on their own lines, clean stop on SIGINT and
SIGTERM with no FFmpeg left behind, clear errors for bad configuration."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

import pytest

from livecast.store import control

from .processes import children, livecast, none_left

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_demo_prints_urls_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    """SIGTERM ends the event (its recording gets the end mark: VOD from now on); SIGINT only
    stops the server (the recording continues at the next start)."""
    proc = livecast("demo", "--port", "0", env={"LIVECAST_RECORD_DIR": str(tmp_path)})
    try:
        assert proc.stdout is not None
        playlist = proc.stdout.readline().strip()
        player = proc.stdout.readline().strip()
        assert playlist.startswith("http://127.0.0.1:") and playlist.endswith(".m3u8")
        assert player.endswith("/player.html")
        with urllib.request.urlopen(playlist, timeout=10) as response:
            assert response.read().startswith(b"#EXTM3U")
        with urllib.request.urlopen(player, timeout=10) as response:
            assert b"hls" in response.read()
        encoders = children(proc.pid)
        assert encoders, "no FFmpeg child found"
        proc.send_signal(sig)
        assert proc.wait(timeout=20) == 0
        assert none_left(encoders), "FFmpeg outlived livecast"
        assert control.ended(tmp_path, "main") == (sig == signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_with_a_bad_key_exits_2_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "event.toml"
    config.write_text("port = 8080\nsegment_lenght = 2\n")
    proc = livecast("serve", "--config", str(config))
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "'segment_lenght'" in err and "unknown key" in err


def test_port_in_use_is_a_clear_error() -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = livecast("demo", "--port", str(port))
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err
