"""The recording as an operator lives it: ``livecast serve`` killed (SIGKILL) mid-event and started
again serves every segment it ever served, byte-identical, and continues the live playlist with the
same MSNs; ``livecast event stop`` turns the same URLs into the VOD of the whole event, which a
restart keeps serving without an encoder."""

from __future__ import annotations

import hashlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from livecast.hls.playlist import MediaPlaylist, parse_media_playlist
from tests.requirements import need

from .processes import children, livecast, none_left
from .test_contribution import fetch as get

pytestmark = pytest.mark.integration

RENDITIONS = ("720p", "audio")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def playlist(base: str, rendition: str) -> MediaPlaylist:
    status, body, _ = get(f"{base}/live/{rendition}/index.m3u8")
    assert status == 200, body
    return parse_media_playlist(body.decode())


def fetch_listed(base: str, served: dict[str, str]) -> None:
    """Fetch (and hash) every segment the live playlists list that was not fetched yet."""
    for rendition in RENDITIONS:
        for entry in playlist(base, rendition).segments:
            key = f"{rendition}/{entry.uri}"
            if entry.uri is not None and key not in served:
                status, body, _ = get(f"{base}/live/{key}")
                assert status == 200
                served[key] = hashlib.sha256(body).hexdigest()


def start(config: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    proc = livecast("serve", "--config", str(config), "--port", str(port))
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    assert url.endswith("/live/main.m3u8"), proc.stderr.read() if proc.stderr else ""
    return proc, url.rsplit("/live/", 1)[0]


def test_killed_origin_recovers_and_the_end_makes_the_same_urls_vod(tmp_path: Path) -> None:
    record = tmp_path / "recording"
    config = tmp_path / "event.toml"
    config.write_text(f'window = 12.0\n\n[record]\ndir = "{record}"\nfsync = "off"\n')
    port = free_port()
    served: dict[str, str] = {}
    proc, base = start(config, port)
    try:
        deadline = time.monotonic() + 5.0  # a few segments served live before the kill
        while time.monotonic() < deadline:
            fetch_listed(base, served)
            time.sleep(0.5)
        assert served, "no segment served before the kill"
        before = playlist(base, "720p")
        encoders = children(proc.pid)
        killed_at = time.time()
        proc.kill()
        proc.wait()
        assert none_left(encoders), "FFmpeg outlived a SIGKILLed livecast"

        proc, base = start(config, port)
        recovered = playlist(base, "720p")  # at once: the window from disk, before any media
        assert recovered.media_sequence <= before.media_sequence + len(before.segments)
        for key, digest in served.items():  # every segment it ever served, byte-identical
            status, body, _ = get(f"{base}/live/{key}")
            assert status == 200, key
            assert hashlib.sha256(body).hexdigest() == digest, key
        last_before = before.media_sequence + len(before.segments) - 1
        after = playlist(base, "720p")
        while after.media_sequence + len(after.segments) < last_before + 4:
            time.sleep(0.5)
            after = playlist(base, "720p")
        uris = [e.uri for e in after.segments if e.uri]
        msns = [int(u.split("-")[1].split(".")[0]) for u in uris if u]
        assert msns == list(range(msns[0], msns[0] + len(msns)))  # contiguous, none reused
        assert sum(e.discontinuity for e in after.segments) == 1  # where the media paused

        stopped = livecast("event", "stop", "main", "--record-dir", str(record))
        _, err = stopped.communicate(timeout=20)
        ended_at = time.time()
        assert stopped.returncode == 0, err
        status, body, headers = get(f"{base}/live/720p/index.m3u8?_HLS_msn=99999999999")
        vod = parse_media_playlist(body.decode())  # directives ignored once ENDLIST is there
        assert status == 200 and vod.endlist and vod.playlist_type == "VOD"
        assert "immutable" in headers["Cache-Control"]
        runs = [i for i, e in enumerate(vod.segments) if e.discontinuity] + [len(vod.segments)]
        first, resumed = vod.segments[0].pdt, vod.segments[runs[0]].pdt
        assert first is not None and resumed is not None
        live_seconds = (killed_at - first) + (ended_at - resumed)
        assert sum(e.duration for e in vod.segments) == pytest.approx(live_seconds, abs=2.0)
        exported = tmp_path / "show.mp4"  # the recording as one MP4, through the CLI
        export = livecast("export", "main", str(exported), "--record-dir", str(record))
        _, err = export.communicate(timeout=60)
        assert export.returncode == 0, err
        duration_of = ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0"]
        probed = subprocess.run(
            [need("ffprobe"), *duration_of, str(exported)],
            capture_output=True,
            text=True,
            check=True,
        )
        vod_seconds = sum(e.duration for e in vod.segments)
        assert float(probed.stdout) == pytest.approx(vod_seconds, abs=2.0)  # one segment
        listed = {e.uri for e in vod.segments}
        for key in served:  # the VOD lists every segment served live
            assert not key.startswith("720p/") or key.split("/")[1] in listed

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        proc, base = start(config, port)  # after a restart: the VOD, and no encoder
        status, again, _ = get(f"{base}/live/720p/index.m3u8")
        assert status == 200 and again == body
        assert children(proc.pid) == []
        status, metrics, _ = get(f"{base}/metrics")
        assert b'livecast_record_ended{stream="main"} 1' in metrics
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
