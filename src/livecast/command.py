"""The ``livecast`` command's entry point: the compiled viewer core switched on
(:func:`livecast.accel.enable`) before anything imports the modules it replaces, then the CLI."""

from __future__ import annotations

from livecast import accel


def main() -> int:
    accel.enable()
    from livecast.cli import main as cli_main

    return cli_main()
