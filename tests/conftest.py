"""Fixtures that run the real live stack (FFmpeg → packager → origin) on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
import pytest_asyncio

from livecast.config import load_config
from livecast.pipeline import LivePipeline
from tests.requirements import failing_skip, need, required

__all__ = ["need"]


@pytest_asyncio.fixture
async def pipeline() -> AsyncIterator[LivePipeline]:
    async with LivePipeline(load_config(None, env={}, overrides={"port": 0})).running() as live:
        yield live


@pytest.fixture(scope="session")
def loop_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One loop-source cache (``[target] cache_dir``) for every rehearsal of the session: the
    pre-encode is keyed by ladder, loop length and version (``sources.loop_source.cache_key``),
    so the 4 s loop the rehearsal tests share is encoded once, not once per test or module."""
    return tmp_path_factory.mktemp("loop-cache")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_REQUIRED] = required()


_REQUIRED = pytest.StashKey[set[str]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """In CI (tests/requirements.py): a skip of a required dependency is a failure."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2])
        why = failing_skip(reason, item.config.stash[_REQUIRED])
        if why is not None and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"{why}: {reason}"
    return report
