#!/usr/bin/env bash
# Set up (idempotently) and run lint, type checks and the whole test suite.
# Extra arguments go to pytest, e.g. ./scripts/test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh --test
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/mypy --strict
# what tests keep for people to look at (the dashboard's screenshot): test-artifacts/
export LIVECAST_TEST_ARTIFACTS="${LIVECAST_TEST_ARTIFACTS:-$PWD/test-artifacts}"
mkdir -p "$LIVECAST_TEST_ARTIFACTS"
exec .venv/bin/python -m pytest "$@"
