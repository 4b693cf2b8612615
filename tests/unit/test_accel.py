"""The compiled viewer core is used only when it was built from exactly these sources."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from livecast import accel


@pytest.fixture(autouse=True)
def _fresh_state(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accel, "_state", None)
    monkeypatch.delenv("LIVECAST_ACCEL", raising=False)


def _manifest(directory: Path, **changes: object) -> None:
    modules = {
        name: {"sha256": accel.source_digest(name), "file": f"{name}.so"}
        for name in accel.COMPILED_MODULES
    }
    manifest = {"python": sys.implementation.cache_tag, "mypy": "x", "modules": modules}
    manifest.update(changes)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / accel.MANIFEST).write_text(json.dumps(manifest))


def test_no_build_runs_interpreted_and_says_how_to_build(tmp_path: Path) -> None:
    state = accel.enable(tmp_path / "nothing")
    assert not state.compiled
    assert "python -m livecast.accel build" in state.reason
    assert accel.state().startswith("interpreted: not built")


def test_a_source_changed_since_the_build_is_named(tmp_path: Path) -> None:
    _manifest(tmp_path)
    manifest = json.loads((tmp_path / accel.MANIFEST).read_text())
    manifest["modules"]["livecast.player.model"]["sha256"] = "0" * 64
    (tmp_path / accel.MANIFEST).write_text(json.dumps(manifest))
    state = accel.enable(tmp_path)
    assert not state.compiled
    assert state.reason == "model.py (livecast.player.model) changed since the build"
    assert not any(isinstance(f, accel._CompiledFinder) for f in sys.meta_path)


def test_another_interpreter_or_module_set_is_not_used(tmp_path: Path) -> None:
    _manifest(tmp_path / "a", python="cpython-399")
    assert accel.enable(tmp_path / "a").reason.startswith("built for cpython-399")
    _manifest(tmp_path / "b", modules={"livecast.player.model": {"sha256": "", "file": ""}})
    assert accel.enable(tmp_path / "b").reason == "built for another set of modules"


def test_fresh_build_is_refused_once_its_modules_are_imported(tmp_path: Path) -> None:
    import livecast.player.model  # noqa: F401  (imported interpreted: no mixing afterwards)

    _manifest(tmp_path)
    state = accel.enable(tmp_path)
    assert (state.compiled, state.reason) == (False, "modules already imported")


def test_switched_off_by_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _manifest(tmp_path)
    monkeypatch.setenv("LIVECAST_ACCEL", "0")
    assert accel.enable(tmp_path).reason == "LIVECAST_ACCEL=0"
    assert accel.state() == "interpreted: LIVECAST_ACCEL=0"


def test_library_use_is_interpreted() -> None:
    assert accel.state().startswith("interpreted: library use")
