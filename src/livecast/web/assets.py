"""Static assets of the browser player: the page itself and the hls.js bundle.

The page ships inside the package (``player.html``, read with :mod:`importlib.resources`). hls.js
does not: it is an npm dependency pinned in the repository's ``package.json`` and installed with
``npm ci`` into ``node_modules/``; :func:`find_hlsjs` locates the built ``hls.min.js`` so the origin
can serve it at ``/hls.min.js`` (same origin, no CDN).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from livecast.errors import ConfigError

HLSJS_ENV = "LIVECAST_HLSJS"
HLSJS_RELPATH = Path("node_modules", "hls.js", "dist", "hls.min.js")
PLAYER_PAGE = "player.html"


def _search_upward(start: Path) -> Path | None:
    """``node_modules/hls.js/dist/hls.min.js`` in ``start`` or the nearest ancestor holding it."""
    for directory in (start, *start.parents):
        candidate = directory / HLSJS_RELPATH
        if candidate.is_file():
            return candidate
    return None


def find_hlsjs() -> Path:
    """Path of ``hls.min.js``.

    Looked up in order: the file named by ``$LIVECAST_HLSJS``; ``node_modules/hls.js/dist/
    hls.min.js`` in the current directory or any parent; the same searched upward from this
    package (an editable install of the src layout finds the checkout's ``node_modules``, three
    levels up). Raises :class:`ConfigError` (key ``"hlsjs"``) when none exists.
    """
    env = os.environ.get(HLSJS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise ConfigError("hlsjs", f"${HLSJS_ENV}={env!r} is not a file")
        return path.resolve()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        found = _search_upward(start)
        if found is not None:
            return found.resolve()
    raise ConfigError(
        "hlsjs",
        f"{HLSJS_RELPATH.as_posix()} not found: run `npm ci` in the livecast checkout, "
        f"or set ${HLSJS_ENV} to the path of hls.min.js",
    )


def player_page_html() -> bytes:
    """The player page (``player.html``) as served at ``/player.html``."""
    return resources.files("livecast.web").joinpath(PLAYER_PAGE).read_bytes()
