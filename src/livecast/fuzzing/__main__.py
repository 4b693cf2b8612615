"""``python -m livecast.fuzzing --budget SECONDS [--target NAME …] [--out DIR]``: run the
campaign, print a table per target and the total; exit status 1 on any crash (each crash's
minimal input and traceback written to ``--out``), 2 on bad arguments."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from livecast.fuzzing.runner import all_targets, render_table, run_campaign, select


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m livecast.fuzzing", description=__doc__)
    parser.add_argument("--budget", type=float, default=60.0, help="total seconds (default 60)")
    parser.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME",
        help="a target or family prefix (repeatable; default: all)",
    )
    parser.add_argument("--out", type=Path, help="directory for crashes and the example database")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    args = parser.parse_args(argv)
    if args.list:
        for target in all_targets():
            print(f"{target.name:<28} {target.description}")
        return 0
    if args.budget <= 0:
        parser.error("--budget must be > 0 seconds")
    try:
        targets = select(args.target)
    except ValueError as error:
        parser.error(str(error))

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    results = run_campaign(targets, args.budget, out=args.out, progress=progress)
    print(render_table(results))
    crashes = sum(len(r.crashes) for r in results)
    if crashes and args.out is not None:
        print(f"{crashes} crash(es): inputs and tracebacks in {args.out}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
