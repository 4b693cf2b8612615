"""Tests that need an outside dependency skip — with a reason that names it — when it is missing.

Every such skip goes through :func:`missing` (``"needs <dependency>: <how to get it>"``), so a
skip always says what was missing. Locally a missing dependency skips (``pytest -rs`` lists why).
In CI, ``.ci/run`` sets ``LIVECAST_REQUIRED_DEPS`` (comma-separated names, or ``all``) and the
hook in tests/conftest.py turns the skips of those dependencies — and any skip that names no
dependency — into failures: nothing the suite is meant to check is silently left out.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from typing import NoReturn

import pytest

DEPENDENCIES = {
    "ffmpeg": "scripts/install.sh installs it (imageio-ffmpeg, or apt-get install ffmpeg)",
    "ffprobe": "apt-get install ffmpeg (scripts/install.sh --test)",
    "nginx": "apt-get install nginx-light (scripts/install.sh --test)",
    "lua": "apt-get install libnginx-mod-http-lua (scripts/install.sh --test)",
    "chromium": "apt-get install chromium (scripts/install.sh --test)",
    "playwright": "pip install playwright (the test extra)",
    "hlsjs": "npm ci",
    "locust": "pip install locust (the test extra)",
    "uvloop": "pip install uvloop (the test extra)",
    "proc": "a Linux /proc file system",
    "tmpfs": "root, allowed to mount a small tmpfs (a disk to fill up: the recording's disk tests)",
    "accel": "the compiled viewer core, built from these sources (scripts/install.sh --test)",
    "redis": "apt-get install redis-server (scripts/install.sh --test) and pip install redis",
    "prometheus": "apt-get install prometheus (scripts/install.sh --test)",
}
REQUIRED_ENV = "LIVECAST_REQUIRED_DEPS"
_NEEDS = re.compile(r"needs ([a-z0-9_-]+):")


def missing(dependency: str, detail: str = "") -> str:
    """The skip reason for a missing ``dependency`` (one of :data:`DEPENDENCIES`)."""
    if dependency not in DEPENDENCIES:
        raise ValueError(f"unknown test dependency {dependency!r}")
    how = DEPENDENCIES[dependency]
    return f"needs {dependency}: {detail + ' — ' if detail else ''}{how}"


def skip_missing(dependency: str, detail: str = "") -> NoReturn:
    pytest.skip(missing(dependency, detail))


def need(tool: str) -> str:
    """The path of an executable the test needs (ffmpeg, ffprobe …), or a skip naming it."""
    path = shutil.which(tool)
    if path is None:
        skip_missing(tool, f"{tool} is not on PATH")
    return path


def need_module(module: str, dependency: str) -> None:
    if importlib.util.find_spec(module) is None:
        skip_missing(dependency, f"no Python module {module}")


def skip_unless(condition: bool, dependency: str, detail: str = "") -> pytest.MarkDecorator:
    """``@skip_unless(found, "nginx")``: the skipif marker with a reason that names it."""
    return pytest.mark.skipif(not condition, reason=missing(dependency, detail))


def required() -> set[str]:
    """The dependencies whose absence must fail the run (from ``LIVECAST_REQUIRED_DEPS``)."""
    names = {n.strip() for n in os.environ.get(REQUIRED_ENV, "").split(",") if n.strip()}
    if "all" in names:
        return set(DEPENDENCIES)
    unknown = names - set(DEPENDENCIES)
    if unknown:
        raise pytest.UsageError(f"{REQUIRED_ENV}: unknown dependencies {sorted(unknown)}")
    return names


def failing_skip(reason: str, required_deps: set[str]) -> str | None:
    """Why a skip with ``reason`` must fail the run, or None when it may stay a skip."""
    if not required_deps:
        return None
    match = _NEEDS.search(reason)
    if match is None:
        return f"a skip that names no dependency is not allowed here ({REQUIRED_ENV} is set)"
    if match.group(1) in required_deps:
        return f"required dependency {match.group(1)!r} is missing ({REQUIRED_ENV})"
    return None
