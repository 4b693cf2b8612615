"""Fixtures shared by the integration tests."""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from livecast.access.redis_server import RedisServer
from tests.requirements import skip_missing


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A throw-away redis-server on loopback (Debian's), stopped after the test."""
    binary = shutil.which("redis-server")
    if binary is None:
        skip_missing("redis", "redis-server is not on PATH")
    if importlib.util.find_spec("redis") is None:
        skip_missing("redis", "no Python module redis")
    with RedisServer(tmp_path / "redis", binary=binary) as server:
        yield server
