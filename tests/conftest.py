"""Fixtures that run the real live stack (FFmpeg → packager → origin) on 127.0.0.1."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.pipeline import LivePipeline


@pytest_asyncio.fixture
async def pipeline() -> AsyncIterator[LivePipeline]:
    async with LivePipeline(load_config(None, env={}, overrides={"port": 0})).running() as live:
        yield live


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (scripts/install.sh --test installs it)")
    return path
