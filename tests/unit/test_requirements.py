"""The suite's dependency rule: a missing dependency skips with its name locally, and fails the
run where ``LIVECAST_REQUIRED_DEPS`` says it is required (CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.requirements import DEPENDENCIES, failing_skip, missing

ROOT = Path(__file__).resolve().parents[2]

SAMPLE = """
import pytest
from tests.requirements import skip_missing, skip_unless

def test_runs() -> None:
    assert True

@skip_unless(False, "nginx")
def test_needs_nginx() -> None:
    pass

def test_needs_uvloop() -> None:
    skip_missing("uvloop", "no module")

def test_skips_for_no_named_reason() -> None:
    pytest.skip("not today")
"""


def run_sample(tmp_path: Path, required: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_configure, pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != "LIVECAST_REQUIRED_DEPS"}
    env["PYTHONPATH"] = str(ROOT)
    if required is not None:
        env["LIVECAST_REQUIRED_DEPS"] = required
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path,
    )  # fmt: skip


def test_reasons_name_the_dependency_and_how_to_get_it() -> None:
    assert missing("nginx") == "needs nginx: " + DEPENDENCIES["nginx"]
    assert missing("lua", "no module").startswith("needs lua: no module — apt-get")
    with pytest.raises(ValueError, match="unknown test dependency"):
        missing("emacs")


def test_which_skips_fail_a_run() -> None:
    assert failing_skip("needs nginx: x", set()) is None  # nothing required: a skip stays one
    assert failing_skip("needs nginx: x", {"uvloop"}) is None
    assert "'nginx' is missing" in (failing_skip("needs nginx: x", {"nginx"}) or "")
    assert "names no dependency" in (failing_skip("flaky", {"nginx"}) or "")


def test_locally_missing_dependencies_skip_with_their_names(tmp_path: Path) -> None:
    run = run_sample(tmp_path, required=None)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 3 skipped" in run.stdout
    assert "needs nginx: apt-get install nginx-light" in run.stdout


def test_in_ci_a_required_dependency_and_an_unnamed_skip_fail(tmp_path: Path) -> None:
    run = run_sample(tmp_path, required="nginx")
    assert run.returncode == 1, run.stdout
    # a skipif marker fails in setup (an error), a skip in the test body fails the test
    assert "1 failed, 1 passed, 1 skipped, 1 error" in run.stdout  # uvloop is not required
    assert "required dependency 'nginx' is missing" in run.stdout
    assert "a skip that names no dependency is not allowed" in run.stdout
    every = run_sample(tmp_path, required="all")
    assert "2 failed, 1 passed, 1 error" in every.stdout


def test_an_unknown_required_name_is_a_usage_error(tmp_path: Path) -> None:
    run = run_sample(tmp_path, required="nginx,emacs")
    assert run.returncode == 4 and "unknown dependencies ['emacs']" in run.stdout + run.stderr
