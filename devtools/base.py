"""What every private server of devtools shares: the error, ports, logs, processes, and one
start/stop base class (``Service``) with a stack that stops what it started when a later
start fails (``ServiceStack``).

Pure Python, no Django import, standard library only.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

HOST = "127.0.0.1"
LOG_TAIL_LINES = 30
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class DevServiceError(RuntimeError):
    """A private development or test server could not be found, started or stopped.

    (The product's own ``ServiceError`` is ``windflow.errors.ServiceError``: a refused
    request. This one never reaches a user of WindFlow.)"""


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """True when a server could listen on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers set SO_REUSEADDR too: TIME_WAIT leftovers do not count as busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def previous_port(port: int | None) -> int:
    """The port a data directory used last time when it is still free, else a free one."""
    return port if port and port_is_free(port) else free_port()


def require_free_port(port: int, what: str) -> None:
    if not port_is_free(port):
        raise DevServiceError(
            f"cannot start {what}: port {port} on {HOST} is already in use by another "
            f"process; pick another port or stop that process (ss -ltnp 'sport = :{port}')"
        )


# ----------------------------------------------------------------- small helpers


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def fail(message: str, log: Path | None = None) -> DevServiceError:
    """A DevServiceError saying `message`, followed by the last lines of `log`."""
    if log is not None:
        message = f"{message}\n--- last lines of {log} ---\n{tail(log)}"
    return DevServiceError(message)


def run(cmd: list[str], *, log: Path, timeout: float, what: str) -> None:
    """Run a command with output appended to `log` (never to a pipe: a server
    forked by pg_ctl or redis-server would keep a pipe open and hang us)."""
    with log.open("ab") as out:
        try:
            result = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise fail(f"{what} did not finish within {timeout:.0f} s", log) from None
        except OSError as exc:
            raise fail(f"{what} could not run {cmd[0]}: {exc}", log) from None
    if result.returncode != 0:
        raise fail(f"{what} failed (exit code {result.returncode})", log)


def pid_alive(pid: int, name: str) -> bool:
    """True when `pid` is a live (not zombie) process whose command mentions `name`."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    proc = Path(f"/proc/{pid}")
    if not proc.exists():
        return True  # no procfs (macOS): trust the signal probe
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and name in cmdline


def wait_pid_gone(pid: int, name: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid, name):
            return True
        time.sleep(0.05)
    return not pid_alive(pid, name)


def read_int(path: Path, line: int = 0) -> int | None:
    try:
        return int(path.read_text().splitlines()[line].strip())
    except (OSError, IndexError, ValueError):
        return None


def is_root() -> bool:
    return os.geteuid() == 0


def system_program(name: str) -> str | None:
    """Absolute path of an admin program (runuser, useradd, dockerd): sbin dirs may be off
    PATH. None when it is nowhere."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def grant_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let `user` reach `path`: add o+x (search only) to ancestors that lack it."""
    for parent in reversed(path.resolve().parents):
        info = parent.stat()
        if info.st_uid == user.pw_uid or info.st_mode & stat.S_IXOTH:
            continue
        os.chmod(parent, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


def daemon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Our environment with the sbin directories on PATH (dockerd runs iptables, runc...)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*SBIN, "/usr/local/sbin", "/usr/local/bin", env.get("PATH", "")])
    env.update(extra or {})
    return env


def spawn_daemon(
    cmd: list[str], log: Path, *, env: dict[str, str] | None = None, cwd: str | Path = "/"
) -> subprocess.Popen:
    """Start a long-running daemon detached: own session (a Ctrl-C in the terminal does
    not reach it), output appended to `log` (never a pipe), stdin from /dev/null."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd=cwd,
                env=env or daemon_env(),
                start_new_session=True,
            )
        except OSError as exc:
            raise fail(f"could not run {cmd[0]}: {exc}", log) from None


# ------------------------------------------------------------------ the base class


class Service:
    """A private server with its files in ``data_dir``: the one start/stop shape of devtools.

    A subclass is a dataclass with ``data_dir`` and ``started`` (False when a server found
    running was reused) and says what it is called (``name``), what its command line
    mentions (``process_name``), and where its log and pidfile live. ``stop()`` sends
    SIGTERM, waits ``stop_timeout`` seconds, then SIGKILL; servers that stop another way
    (PostgreSQL: pg_ctl) override it. Usable as a context manager."""

    name: ClassVar[str] = "server"
    process_name: ClassVar[str] = ""
    log_name: ClassVar[str] = "server.log"
    pid_name: ClassVar[str] = "server.pid"
    stop_timeout: ClassVar[float] = 10

    data_dir: Path
    started: bool

    @property
    def log_file(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def pidfile(self) -> Path:
        return self.data_dir / self.pid_name

    def pid(self) -> int | None:
        pid = read_int(self.pidfile)
        return pid if pid is not None and pid_alive(pid, self.process_name) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def _signal(self, pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        return wait_pid_gone(pid, self.process_name, timeout)

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, then SIGKILL after `timeout` seconds; a no-op when it is not running."""
        pid = self.pid()
        if pid is None:
            return
        self._signal(pid, signal.SIGTERM)
        if not self._wait_gone(pid, self.stop_timeout if timeout is None else timeout):
            self._signal(pid, signal.SIGKILL)
            if not self._wait_gone(pid, 5):
                raise fail(
                    f"{self.name} (pid {pid}) in {self.data_dir} did not stop", self.log_file
                )
        if read_int(self.pidfile) == pid:
            with contextlib.suppress(OSError):
                self.pidfile.unlink()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@dataclass
class DetachedServer(Service):
    """A helper server started with ``spawn_daemon`` in its own session (socat, the image
    registry): stopping it signals the whole session, forked children included."""

    data_dir: Path
    port: int
    process: subprocess.Popen = field(repr=False)
    host: str = HOST
    started: bool = True

    def pid(self) -> int | None:
        return self.process.pid if self.process.poll() is None else None

    def _signal(self, pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signum)

    def _wait_gone(self, pid: int, timeout: float) -> bool:
        try:
            self.process.wait(timeout)  # reaps: no zombie left behind
        except subprocess.TimeoutExpired:
            return False
        return True

    def wait_ready(self, ready: Callable[[], bool], what: str, timeout: float) -> None:
        """Poll `ready()` until true; a server that exits or stays silent is an error with
        the tail of its log (and is stopped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise fail(
                    f"{self.name} exited during start-up (exit code {self.process.returncode})",
                    self.log_file,
                )
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise fail(f"{self.name} did not {what} within {timeout:.0f} s", self.log_file)


class ServiceStack:
    """Servers started together, stopped together in reverse order. Used as a context
    manager around the starts, a failure stops those already started before it propagates
    (a Redis that does not start does not leave PostgreSQL running)::

        stack = ServiceStack()
        with stack.starting():
            pg = stack.start(start_postgres, root / "postgres", durable=False)
            rd = stack.start(start_redis, root / "redis", durable=False)
        ...
        stack.stop()
    """

    def __init__(self, say: Callable[[str], None] | None = None) -> None:
        self.services: list[Service] = []
        self.say = say

    def start(self, starter: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `starter`; remember the server when it really started it (not a reused one)."""
        service = starter(*args, **kwargs)
        if getattr(service, "started", True):
            self.services.append(service)
        return service

    def add(self, service: Service) -> Service:
        self.services.append(service)
        return service

    @contextlib.contextmanager
    def starting(self):
        try:
            yield self
        except BaseException:
            self.stop()
            raise

    def stop(self) -> list[str]:
        """Stop every server, the last started first; returns the errors (each is tried)."""
        errors = []
        while self.services:
            service = self.services.pop()
            if self.say:
                self.say(f"stopping {service.name} ({service.data_dir})")
            try:
                service.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(str(exc))
                if self.say:
                    self.say(str(exc))
        return errors
