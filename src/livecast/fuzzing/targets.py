"""Every fuzz target of the campaign, and the selection by name or family prefix."""

from __future__ import annotations

from collections.abc import Sequence

from livecast.fuzzing import cmcd, directives, http, media, playlists, tokens
from livecast.fuzzing.core import Target


def all_targets() -> list[Target]:
    """Every target, in campaign order (the HTTP target last: it starts a server)."""
    return [
        *media.TARGETS,
        *playlists.TARGETS,
        *directives.TARGETS,
        *cmcd.TARGETS,
        *tokens.TARGETS,
        *http.TARGETS,
    ]


def select(names: Sequence[str]) -> list[Target]:
    """The targets named (exactly, or by a family prefix such as ``playlists``), in campaign
    order; every target when ``names`` is empty. ValueError names an unknown one."""
    targets = all_targets()
    if not names:
        return targets
    chosen: list[Target] = []
    for name in names:
        matches = [t for t in targets if t.name == name or t.name.startswith(name + ".")]
        if not matches:
            known = ", ".join(t.name for t in targets)
            raise ValueError(f"no fuzz target {name!r} (known: {known})")
        chosen.extend(t for t in matches if t not in chosen)
    return [t for t in targets if t in chosen]
