"""The compiled viewer core: the rehearsal's hot modules built with mypyc and loaded in their place.

A rehearsal spends its CPU in pure Python — the player model, the harness, the statistics, the
driver's HTTP client: ≈ 225 Python calls per request, none of them above 2 % of the time. The
same modules compiled with mypyc (they are ``mypy --strict`` clean already) cost ≈ 0.75× per
request (docs/benchmarks.md, "Rehearsal capacity"). Nothing else changes: the ``.py`` files stay
the source of truth, and the compiled copy is used only while it was built from exactly them.

  * ``python -m livecast.accel build`` (run by ``scripts/install.sh``) compiles
    :data:`COMPILED_MODULES` from a copy of the package into the build directory (the
    checkout's ``.build/accel``, or ``$LIVECAST_ACCEL_DIR``) with a manifest: each module's
    sha256, the interpreter's cache tag and the mypy version;
  * :func:`enable` (called first thing by the ``livecast`` command) puts a finder in front of the
    import system that loads those modules from their compiled files — only if every module's
    source still has the sha256 it was built from, none of them is imported yet, and
    ``LIVECAST_ACCEL`` is not ``0``. Otherwise everything runs interpreted, and
    :func:`enable` says why (``livecast rehearse`` prints it).

The library itself (``import livecast…`` in a test or a script) is never switched: only the
command line, whose viewers are where the CPU goes.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

PACKAGE_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
# The viewers' hot path, compiled as one group (calls between them are native). Not here:
# hls/playlist.py and hls/tags.py (their dataclasses' class-level TAG constants do not compile).
COMPILED_MODULES = (
    "livecast.hls.attributes",
    "livecast.hls.directives",
    "livecast.httpsink",
    "livecast.player.abr",
    "livecast.player.buffer",
    "livecast.player.cmcd",
    "livecast.player.config",
    "livecast.player.harness",
    "livecast.player.lanes",
    "livecast.player.model",
    "livecast.player.parsed",
    "livecast.player.qoe",
    "livecast.player.requests",
    "livecast.player.retry",
    "livecast.player.track",
    "livecast.player.tunein",
    "livecast.rehearse.client",
    "livecast.rehearse.driver",
    "livecast.results.histogram",
    "livecast.results.indicators",
    "livecast.results.stats",
)


@dataclass(frozen=True, slots=True)
class AccelState:
    """What :func:`enable` did: ``compiled`` modules in use, or the reason they are not."""

    compiled: bool
    reason: str  # "" when compiled
    build_dir: Path


def build_dir() -> Path:
    """``$LIVECAST_ACCEL_DIR``, else ``.build/accel`` of the checkout livecast runs from (an
    editable install), else the user's cache."""
    configured = os.environ.get("LIVECAST_ACCEL_DIR")
    if configured:
        return Path(configured)
    checkout = PACKAGE_DIR.parent.parent
    if (checkout / "pyproject.toml").is_file():
        return checkout / ".build" / "accel"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "livecast" / "accel"


def source_path(module: str) -> Path:
    return PACKAGE_DIR.parent.joinpath(*module.split(".")).with_suffix(".py")


def source_digest(module: str) -> str:
    return hashlib.sha256(source_path(module).read_bytes()).hexdigest()


def _build_identity() -> dict[str, str]:
    from mypy.version import __version__ as mypy_version

    return {"python": sys.implementation.cache_tag, "mypy": mypy_version}


def _stale_reason(manifest: dict[str, object]) -> str:
    """Why a build does not fit the sources and interpreter here ("" if it does)."""
    if manifest.get("python") != sys.implementation.cache_tag:
        return f"built for {manifest.get('python')}, this is {sys.implementation.cache_tag}"
    modules = manifest.get("modules")
    if not isinstance(modules, dict) or set(modules) != set(COMPILED_MODULES):
        return "built for another set of modules"
    for module in COMPILED_MODULES:
        entry = modules[module]
        if not isinstance(entry, dict) or entry.get("sha256") != source_digest(module):
            return f"{source_path(module).name} ({module}) changed since the build"
    return ""


class _CompiledFinder(importlib.abc.MetaPathFinder):
    """Finds the compiled modules in the build directory, before the source files."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        file = self.files.get(fullname)
        if file is None:
            return None
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(file))
        return importlib.util.spec_from_file_location(fullname, file, loader=loader)


_state: AccelState | None = None  # what enable() did in this process


def state() -> str:
    """What this process runs: "compiled", or "interpreted: <why>" — for a run's results
    (``meta.viewer_core``)."""
    if _state is None:
        return "interpreted: library use (only the livecast command switches)"
    return "compiled" if _state.compiled else f"interpreted: {_state.reason}"


def enable(directory: Path | None = None) -> AccelState:
    """Load :data:`COMPILED_MODULES` from their build from now on, if it fits (see the module)."""
    global _state
    _state = _enable(directory or build_dir())
    return _state


def _enable(directory: Path) -> AccelState:
    if os.environ.get("LIVECAST_ACCEL", "1") == "0":
        return AccelState(False, "LIVECAST_ACCEL=0", directory)
    if any(isinstance(f, _CompiledFinder) for f in sys.meta_path):
        return AccelState(True, "", directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return AccelState(False, "not built (python -m livecast.accel build)", directory)
    reason = _stale_reason(manifest)
    if not reason and any(module in sys.modules for module in COMPILED_MODULES):
        reason = "modules already imported"
    if reason:
        return AccelState(False, reason, directory)
    files = {name: directory / entry["file"] for name, entry in manifest["modules"].items()}
    sys.path.append(str(directory))  # the group's shared library is a top-level module
    sys.meta_path.insert(0, _CompiledFinder(files))
    return AccelState(True, "", directory)


def build(directory: Path | None = None) -> Path:
    """Compile :data:`COMPILED_MODULES` with mypyc into ``directory`` (replaced); its path."""
    directory = directory or build_dir()
    with tempfile.TemporaryDirectory(prefix="livecast-accel-") as name:
        tree = Path(name)
        shutil.copytree(PACKAGE_DIR, tree / "livecast", ignore=shutil.ignore_patterns("*.so"))
        files = [str(Path(*m.split(".")).with_suffix(".py")) for m in COMPILED_MODULES]
        command = [sys.executable, "-m", "mypyc", *files]
        done = subprocess.run(command, cwd=tree, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mypyc failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
        staging = directory.with_name(directory.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        modules: dict[str, dict[str, str]] = {}
        for module in COMPILED_MODULES:
            parts = module.split(".")
            found = sorted((tree / Path(*parts[:-1])).glob(f"{parts[-1]}.*.so"))
            if not found:
                raise RuntimeError(f"mypyc built no extension for {module}")
            target = staging / f"{module}{found[0].name[len(parts[-1]) :]}"
            shutil.copy2(found[0], target)
            modules[module] = {"sha256": source_digest(module), "file": target.name}
        for shared in tree.glob("*__mypyc.*.so"):
            shutil.copy2(shared, staging / shared.name)
        manifest = {**_build_identity(), "modules": modules}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)
    return directory


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["build"]:
        print(f"compiled viewer core: {build()}")
        return 0
    if args == ["status"]:
        state = enable()
        print("compiled" if state.compiled else f"interpreted: {state.reason}", state.build_dir)
        return 0
    print("usage: python -m livecast.accel build|status", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
