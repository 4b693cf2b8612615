"""A static HTTP server for HLS written to disk by someone else (FFmpeg's HLS muxer), plus the
player page and hls.js — the classic-HLS peer that tests and benchmarks compare livecast with.
Playlists are sent ``no-cache``; everything else as the standard library's handler does. The peer
keeps no recording: the page's ``recording.json`` question is answered so (a 404 would be a console
error in the browser).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from livecast.web.assets import player_page_html

NO_RECORDING = b'{"recorded": false, "ended": false}\n'


class PeerRequestHandler(SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012 - class attribute of the stdlib handler
        **SimpleHTTPRequestHandler.extensions_map,
        ".m3u8": "application/vnd.apple.mpegurl",
        ".m4s": "video/iso.segment",
        ".mp4": "video/mp4",
        ".js": "text/javascript",
    }

    def __init__(self, *args: Any, hlsjs: bytes, **kwargs: Any) -> None:
        self._hlsjs = hlsjs
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/", "/player.html"):
            self._send(player_page_html(), "text/html; charset=utf-8")
        elif path == "/hls.min.js":
            self._send(self._hlsjs, "text/javascript")
        elif path.endswith("/recording.json"):
            self._send(NO_RECORDING, "application/json")
        else:
            super().do_GET()

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def end_headers(self) -> None:
        if self.path.split("?", 1)[0].endswith(".m3u8"):
            self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path, hlsjs: bytes) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port); yields ``http://127.0.0.1:<port>``."""
    handler = partial(PeerRequestHandler, directory=str(directory), hlsjs=hlsjs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="peer-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
