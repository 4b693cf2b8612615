"""Debian's nginx as a child process: find it, validate a config, start one tier, stop it.

The adapter around ``edge.nginx_conf``. A tier runs as ``nginx -p PREFIX -c PREFIX/nginx.conf``
(``daemon off`` is in the rendered config, so the master stays our child), in a session of its
own so that nothing it forks can outlive :meth:`NginxTier.stop`, and with a parent-death signal so
that it does not outlive livecast either (even a SIGKILLed one). nginx doc (control): "TERM, INT
— fast shutdown; QUIT — graceful shutdown" — a graceful shutdown would wait for every held
LL-HLS request, so the stop is fast: SIGTERM, then SIGKILL of the process group if it lingers.

When nginx runs as root its workers switch to an unprivileged user (``nobody``); the prefix is
made world-readable (0755) so that they can still reach the cache and temp directories (which the
master creates and hands over to them). If a directory above the prefix is closed to others
(pytest's and ``mkdtemp``'s are 0700), the workers could not reach it: then they keep running as
root (``user root;``) — these tiers listen on loopback for tests and rehearsals.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import replace
from pathlib import Path

from livecast.edge.nginx_conf import TierConfig, render_nginx_conf
from livecast.edge.token_lua import write_keys_file, write_source_file
from livecast.errors import ConfigError, LivecastError

log = logging.getLogger(__name__)

DEBIAN_NGINX = "/usr/sbin/nginx"
ENV_NGINX = "LIVECAST_NGINX"
INSTALL_HINT = "install nginx-light (apt-get install nginx-light)"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def find_nginx(explicit: str | None = None) -> str:
    """``explicit``, else ``$LIVECAST_NGINX``, else Debian's /usr/sbin/nginx, else ``PATH``."""
    wanted = explicit or os.environ.get(ENV_NGINX)
    if wanted:
        found = shutil.which(wanted)
        if found is None:
            raise ConfigError("nginx", f"{wanted!r} is not an executable nginx; {INSTALL_HINT}")
        return found
    if os.access(DEBIAN_NGINX, os.X_OK):
        return DEBIAN_NGINX
    found = shutil.which("nginx")
    if found is None:
        raise ConfigError("nginx", f"nginx was not found; {INSTALL_HINT}")
    return found


MODULES_DIR = "/usr/lib/nginx/modules"  # Debian's
LUA_MODULES = ("ndk_http_module.so", "ngx_http_lua_module.so")  # libnginx-mod-http-lua
ENV_LUA = "LIVECAST_NGINX_LUA"  # "0": never load the Lua modules
LUA_HINT = "install libnginx-mod-http-lua (apt-get install libnginx-mod-http-lua)"


def find_lua_modules(modules_dir: str = MODULES_DIR) -> tuple[str, ...]:
    """The module files for the wake-up collapse (``edge.nginx_conf.LUA_INIT``): Debian's ndk
    and lua modules when both are installed (and ``$LIVECAST_NGINX_LUA`` is not "0"), else ()."""
    if os.environ.get(ENV_LUA, "") == "0":
        return ()
    paths = tuple(os.path.join(modules_dir, name) for name in LUA_MODULES)
    return paths if all(os.path.isfile(path) for path in paths) else ()


def _reachable_by_others(directory: Path) -> bool:
    """Whether every directory above ``directory`` lets other users through (o+x)."""
    return all(os.stat(parent).st_mode & 0o001 for parent in directory.resolve().parents)


def worker_user(conf: TierConfig) -> TierConfig:
    """``conf`` with ``user root`` when nginx would run as root and ``nobody`` could not reach
    the prefix; unchanged otherwise."""
    if conf.user is not None or os.geteuid() != 0 or _reachable_by_others(Path(conf.prefix)):
        return conf
    return replace(conf, user="root")


def prepare_prefix(conf: TierConfig) -> Path:
    """Create the tier's directories and write its nginx.conf; return the config file."""
    prefix = Path(conf.prefix)
    for directory in (prefix, prefix / "tmp", prefix / "cache"):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
    if conf.token_ring is not None:  # read by the master (as root) in init_by_lua, mode 0600
        write_keys_file(conf.token_ring, prefix)
    if conf.revocations is not None:  # the admin API's address and a secret that reads it
        write_source_file(conf.revocations, prefix)
    path = prefix / "nginx.conf"
    path.write_text(render_nginx_conf(conf))
    return path


def check_config(conf_file: Path, prefix: Path, nginx: str | None = None) -> str:
    """``nginx -t`` on a config; returns nginx's report, raises LivecastError when it fails."""
    binary = find_nginx(nginx)
    result = subprocess.run(
        [binary, "-t", "-q", "-p", str(prefix), "-c", str(conf_file), "-e", str(prefix / "t.log")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    report = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise LivecastError(f"nginx rejects {conf_file}: {report}")
    return report


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when livecast dies, even by SIGKILL (Linux
    ``PR_SET_PDEATHSIG``), so that no nginx (nor spawned origin) outlives it; a no-op
    elsewhere."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def _check_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LivecastError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc


async def _wait_listening(
    host: str, port: int, proc: asyncio.subprocess.Process, timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.returncode is None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
        except (TimeoutError, OSError):
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return
    raise LivecastError(f"nginx did not start listening on {host}:{port}")


class NginxTier:
    """One running nginx (edge or shield) for a :class:`TierConfig`."""

    def __init__(self, conf: TierConfig, nginx: str | None = None) -> None:
        self.conf = worker_user(conf)
        self.binary = find_nginx(nginx)
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def prefix(self) -> Path:
        return Path(self.conf.prefix)

    @property
    def base_url(self) -> str:
        host = f"[{self.conf.host}]" if ":" in self.conf.host else self.conf.host
        return f"http://{host}:{self.conf.port}"

    @property
    def access_log(self) -> Path:
        return Path(self.conf.access_log_path)

    @property
    def error_log(self) -> Path:
        return self.prefix / "error.log"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    async def start(self, timeout: float = 10.0) -> None:
        _check_free(self.conf.host, self.conf.port)  # else we would wait on someone else's port
        conf_file = prepare_prefix(self.conf)
        check_config(conf_file, self.prefix, self.binary)
        self.proc = await asyncio.create_subprocess_exec(
            self.binary,
            "-p",
            str(self.prefix),
            "-c",
            str(conf_file),
            "-e",
            str(self.error_log),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        try:
            await _wait_listening(self.conf.host, self.conf.port, self.proc, timeout)
        except LivecastError as exc:
            await self.stop()
            tail = self._error_tail()
            raise LivecastError(f"{self.conf.name}: {exc}: {tail}") from None
        log.info("%s: nginx %d listening on %s", self.conf.name, self.proc.pid, self.base_url)

    def _error_tail(self) -> str:
        try:
            return " | ".join(self.error_log.read_text().strip().splitlines()[-3:])
        except OSError:
            return "(no error log)"

    async def stop(self, timeout: float = 5.0) -> None:
        """Fast shutdown (SIGTERM), then SIGKILL to the whole process group; idempotent."""
        proc = self.proc
        if proc is None:
            return
        await stop_session(proc, timeout, f"{self.conf.name}: nginx")
        self.proc = None


async def stop_session(proc: asyncio.subprocess.Process, timeout: float, what: str) -> None:
    """Stop a child started with ``start_new_session=True``: SIGTERM, then (after ``timeout``
    seconds, or at once when it is gone) SIGKILL to its whole process group, so that nothing it
    forked survives it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            log.warning("%s ignored SIGTERM; killing it", what)
    # Its children are in its session/process group: none may survive it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.returncode is None:
        await proc.wait()
