"""A catalogue of realistic misconfigurations, each harmless in unit tests, planted one at a time
on a throwaway copy of ``src/livecast`` (``bench_fidelity`` rehearses every copy).

Each plant is a list of exact text edits (every ``old`` must occur once in its file: a plant that
no longer applies is an error, not a silent clean run) and the indicator expected to catch it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


@dataclass(frozen=True)
class Edit:
    path: str  # relative to src/livecast
    old: str
    new: str


@dataclass(frozen=True)
class Plant:
    name: str
    area: str  # origin headers | edge config | packager | player policy
    what: str  # the misconfiguration, as a reviewer would describe it
    edits: tuple[Edit, ...]
    expect: str  # the SLO (name) expected to catch it


PLANTS: tuple[Plant, ...] = (
    Plant(
        "session-cookie",
        "origin headers",
        "every answer sets a session cookie (a framework default): nginx caches nothing with "
        "Set-Cookie",
        (
            Edit(
                "origin/wire.py",
                'COMMON_HEADERS = "',
                'COMMON_HEADERS = "Set-Cookie: sid=1; Path=/\\r\\n',
            ),
        ),
        "upstream_per_object",
    ),
    Plant(
        "parts-no-cache",
        "origin headers",
        "media answered with Cache-Control: no-cache (meant: revalidate) instead of immutable",
        (
            Edit(
                "origin/app.py",
                'IMMUTABLE = "public, max-age=86400, immutable"',
                'IMMUTABLE = "no-cache"',
            ),
        ),
        "upstream_per_object",
    ),
    Plant(
        "blocking-private",
        "origin headers",
        "blocking playlist answers marked private (per-viewer) instead of public, max-age=6×TD",
        (
            Edit(
                "origin/app.py",
                'self.blocking_cache = f"public, max-age={6 * td}"',
                'self.blocking_cache = f"private, max-age={6 * td}"',
            ),
        ),
        "upstream_per_object",
    ),
    Plant(
        "plain-playlist-immutable",
        "origin headers",
        "the origin's answer cache keeps plain playlists as if immutable (permanent) — the first "
        "version of each is served for the rest of the show",
        (
            Edit(
                "origin/app.py",
                '"playlist-blocking" if blocking else "playlist-plain",\n'
                "            reusable=True,",
                '"playlist-blocking" if blocking else "playlist-plain",\n'
                "            reusable=True,\n            permanent=not blocking,",
            ),
        ),
        "too_old_playlists",
    ),
    Plant(
        "cache-key-cmcd",
        "edge config",
        "the edge's cache key is the whole request URI, so every viewer's CMCD query makes its "
        "own cache entry",
        (
            Edit(
                "edge/nginx_conf.py",
                'CACHE_KEY = "$uri|msn=$arg__HLS_msn|part=$arg__HLS_part|skip=$arg__HLS_skip"',
                'CACHE_KEY = "$request_uri"',
            ),
        ),
        "upstream_per_object",
    ),
    Plant(
        "no-collapse",
        "edge config",
        "proxy_cache_lock off and no wake-up collapse: concurrent misses all go upstream",
        (
            Edit(
                "edge/nginx_conf.py",
                '"        proxy_cache_lock on;",',
                '"        proxy_cache_lock off;",',
            ),
            Edit("edge/topology.py", "    modules = find_lua_modules()\n", "    modules = ()\n"),
        ),
        "overlapping_fetches",
    ),
    Plant(
        "lock-timeout-short",
        "edge config",
        "the cache lock's timeout (and the wake-up wait) set to 0.1 s, shorter than a blocking "
        "reload is held: waiters give up and fetch the object themselves (design brief §5)",
        (
            Edit(
                "edge/nginx_conf.py",
                "lock_timeout: float | None = None",
                "lock_timeout: float | None = 0.1",
            ),
        ),
        "overlapping_fetches",
    ),
    Plant(
        "hint-off-by-one",
        "packager",
        "EXT-X-PRELOAD-HINT names the part after the next one (an off-by-one in the cutter's "
        "next-part index)",
        (
            Edit(
                "packager/live.py",
                'pl.preload_hints.append(PreloadHint("PART", part_name(*hint)))',
                'pl.preload_hints.append(PreloadHint("PART", part_name(hint[0], hint[1] + 1)))',
            ),
        ),
        "early_404_share",
    ),
    Plant(
        "retry-no-backoff",
        "player policy",
        "media retries without backoff (retryDelayMs 0) — a failed part is asked for again at once",
        (
            Edit(
                "player/config.py",
                "FRAGMENT_RETRY = RetryPolicy(max_retries=6)",
                "FRAGMENT_RETRY = RetryPolicy(max_retries=6, base_delay=0.0, max_delay=0.0)",
            ),
        ),
        "retries_per_failed_request",
    ),
    Plant(
        "fail-fast",
        "player policy",
        "one media retry only (maxNumRetry 1, 'fail fast') — a 3 s media outage ends the session",
        (
            Edit(
                "player/config.py",
                "FRAGMENT_RETRY = RetryPolicy(max_retries=6)",
                "FRAGMENT_RETRY = RetryPolicy(max_retries=1)",
            ),
        ),
        "fatal_error_rate",
    ),
)


class PlantError(RuntimeError):
    """A plant that no longer applies to the tree (its text moved)."""


def planted_tree(plant: Plant, workdir: Path) -> Path:
    """A copy of src/ with ``plant`` applied; put the returned directory first on PYTHONPATH."""
    root = workdir / f"src-{plant.name}"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(
        SRC / "livecast", root / "livecast", ignore=shutil.ignore_patterns("__pycache__")
    )
    for edit in plant.edits:
        path = root / "livecast" / edit.path
        text = path.read_text()
        if text.count(edit.old) != 1:
            raise PlantError(
                f"plant {plant.name}: {edit.path} has {text.count(edit.old)} × {edit.old!r}"
            )
        path.write_text(text.replace(edit.old, edit.new))
    return root
