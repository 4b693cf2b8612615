#!/usr/bin/env bash
# Idempotent set-up of a livecast checkout on Debian: a virtualenv with livecast installed
# (FFmpeg comes from the imageio-ffmpeg wheel), hls.js from the npm lock file, and with --test
# what the tests need (Debian's chromium, nginx, redis-server, prometheus and ffmpeg/ffprobe;
# root needed for those).
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  echo "install.sh: need root for: $*" >&2; return 1; fi; }

apt_missing=()
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || apt_missing+=("$1"); }

if command -v dpkg >/dev/null 2>&1; then
  command -v npm >/dev/null 2>&1 || { need_pkg nodejs; need_pkg npm; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || need_pkg python3-venv
  # A TrueType font for the burned-in clock of the test pattern (optional: no overlay without).
  ls /usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf >/dev/null 2>&1 || need_pkg fonts-dejavu-core
  if [ "$want_test" -eq 1 ]; then
    need_pkg chromium; need_pkg nginx-light; need_pkg libnginx-mod-http-lua; need_pkg ffmpeg
    need_pkg redis-server  # the shared stream-lease store (tests start their own on loopback)
    need_pkg prometheus  # scrapes a running `livecast up` (tests start their own on a free port)
    need_pkg python3-dev; need_pkg gcc  # mypyc's build of the compiled viewer core
  fi
  if [ ${#apt_missing[@]} -gt 0 ]; then
    echo "install.sh: installing Debian packages: ${apt_missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${apt_missing[@]}" >/dev/null
  fi
  # Debian's prometheus package enables a system service on :9090 that nothing here needs (the
  # tests and docs/operations.md start their own): keep it stopped (systemd, or its init script).
  if [ "$want_test" -eq 1 ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    as_root systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ "$want_test" -eq 1 ] && [ -x /etc/init.d/prometheus ]; then
    as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
fi

python3 - <<'PY' || { echo "install.sh: livecast needs Python >= 3.11" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info >= (3, 11) else 1)
PY

[ -x .venv/bin/python ] || python3 -m venv .venv
extra=""
[ "$want_test" -eq 1 ] && extra="[test]"
stamp=".venv/.installed${extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".${extra}"
  touch "$stamp"
fi

# The compiled viewer core (src/livecast/accel.py: mypyc, from the test extra), rebuilt whenever
# a compiled module's source changed; the livecast command uses it only while it fits the sources.
if [ "$want_test" -eq 1 ] && ! .venv/bin/python -m livecast.accel status | grep -q '^compiled'; then
  .venv/bin/python -m livecast.accel build >&2
fi

if [ ! -f node_modules/hls.js/dist/hls.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2  # stdout is for the demo's URLs
fi
