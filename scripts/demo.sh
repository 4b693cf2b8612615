#!/usr/bin/env bash
# Set up (idempotently) and run the live demo. Extra arguments go to `livecast demo`,
# e.g. ./scripts/demo.sh --host 0.0.0.0 --port 8080
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec .venv/bin/livecast demo "$@"
