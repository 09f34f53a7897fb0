"""Docker engines for development and tests.

    engine = start_dockerd(Path("var/docker"))   # private engine, root only
    engine.socket_path  -> "/.../var/docker/docker.sock"
    engine.stop()

    sock = ensure_docker_engine()                # what tests and benchmarks use

A private engine has everything of its own: socket, data root (images, containers,
volumes), exec root, pidfile and log, all under its directory (the exec root under /run
when that path would be too long for a unix socket). It never sees the containers of the
machine's own engine (/var/run/docker.sock), so a test that removes "every container of
project X" cannot remove a developer's.

``isolated=True`` (the default, for when another engine may run on this machine): a default
bridge of its own (``wfd<hash>``, a /24 of 10.197.0.0/16, made with `ip` and removed with
the engine), no iptables rules of its own (dockerd would flush the other engine's chains
when it sets up its own), no NAT; its networks come from an address pool of its own
(10.199.0.0/16), and one FORWARD rule per range, added once and kept, lets containers of
those ranges talk to each other. Containers reach the host (the registry on 127.0.0.1 is
pulled by the engine itself) but not the internet: tests need nothing more.
``isolated=False`` (``make run`` on a machine without an engine) gives normal networking.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .base import (
    DevServiceError,
    Service,
    fail,
    is_root,
    pid_alive,
    read_int,
    spawn_daemon,
    system_program,
)

SYSTEM_SOCKET = "/var/run/docker.sock"
SYSTEM_DOCKERD_LOG = Path("/var/log/windflow-dockerd.log")
SYSTEM_DOCKERD_PIDFILE = Path("/var/run/docker.pid")  # written by dockerd itself
SYSTEM_DOCKERD_LOCK = Path("/var/run/windflow-dockerd.lock")
DOCKERD_TIMEOUT = 60
PRIVATE_POOL = "10.199.0.0/16"
BRIDGE_RANGE = "10.197.0.0/16"  # default bridges of isolated engines, one /24 each
FORWARD_COMMENT = "windflow-private-docker-engines"
MAX_SOCKET_PATH = 100  # sockaddr_un.sun_path is 108 bytes

# The test run's engine (set by devtools.pytest_plugin): a directory for a private engine,
# or the socket of an engine the developer dedicates to tests.
TEST_DOCKER_DIR = "WINDFLOW_TEST_DOCKER_DIR"
TEST_DOCKER_SOCKET = "WINDFLOW_TEST_DOCKER_SOCKET"


def docker_ping(socket_path: str = SYSTEM_SOCKET, timeout: float = 2.0) -> bool:
    """True when a Docker engine answers ``GET /_ping`` on the unix socket.

    Raises PermissionError when the socket exists but this user may not open it
    (not root and not in its group): starting another engine would not help."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(socket_path)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except PermissionError:
        raise
    except OSError:
        return False
    return answer.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")) and answer.endswith(b"OK")


def _ping_or_explain(socket_path: str) -> bool:
    try:
        return docker_ping(socket_path)
    except PermissionError:
        raise DevServiceError(
            f"the Docker engine socket {socket_path} refuses this user (uid {os.geteuid()}): "
            "run as root or add the user to the `docker` group (then log in again)"
        ) from None


def find_dockerd() -> str | None:
    return system_program("dockerd")


def _dockerd_or_explain() -> str:
    dockerd = find_dockerd()
    if dockerd is None:
        raise DevServiceError(
            "`dockerd` was not found: install it with `apt-get install -y docker.io` "
            "(Debian/Ubuntu; `make test` and `make run` do it when they run as root)"
        )
    return dockerd


@contextlib.contextmanager
def _file_lock(path: Path):
    """One starter at a time across processes (parallel test runs, two `make run`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _short_run_root(data_dir: Path) -> Path:
    """/run/windflow-docker-<hash of data_dir>: for paths too long under `data_dir`."""
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    return Path("/run") / f"windflow-docker-{digest}"


# --------------------------------------------------------------------- private engine


@dataclass
class Dockerd(Service):
    """A private Docker engine whose files all live in `data_dir`."""

    name = "dockerd"
    process_name = "dockerd"
    log_name = "dockerd.log"
    pid_name = "docker.pid"
    stop_timeout = 30  # it stops its containers first

    data_dir: Path
    started: bool = True  # False when an engine already running there was reused

    @property
    def socket_path(self) -> str:
        path = self.data_dir / "docker.sock"
        if len(str(path)) > MAX_SOCKET_PATH:
            path = _short_run_root(self.data_dir) / "docker.sock"
        return str(path)

    @property
    def url(self) -> str:
        """``unix:///...``: the value of DOCKER_HOST for this engine."""
        return f"unix://{self.socket_path}"

    @property
    def exec_root(self) -> Path:
        # containerd puts sockets under the exec root: keep it short.
        path = self.data_dir / "exec"
        if len(str(path)) > 60:
            path = _short_run_root(self.data_dir) / "exec"
        return path

    def ping(self) -> bool:
        return _ping_or_explain(self.socket_path)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the engine (it stops its containers first), then remove its own bridge."""
        super().stop(timeout)
        remove_own_bridge(self)

    def _signal(self, pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        if signum == signal.SIGKILL:  # its containerd too (same session)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def _allow_forwarding_within(pool: str) -> None:
    """With br_netfilter, another engine's ``FORWARD`` policy DROP also drops the traffic
    between containers of our (iptables-less) networks: accept what stays inside `pool`.
    Added once and kept (other runs may use it); nothing else is touched."""
    iptables = system_program("iptables")
    if iptables is None:
        return
    rule = ["FORWARD", "-s", pool, "-d", pool, "-m", "comment", "--comment", FORWARD_COMMENT]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        check = subprocess.run(
            [iptables, "-w", "-C", *rule, "-j", "ACCEPT"], capture_output=True, timeout=30
        )
        if check.returncode != 0:
            subprocess.run(
                [iptables, "-w", "-I", *rule, "-j", "ACCEPT"], capture_output=True, timeout=30
            )


def _bridge_name(data_dir: Path) -> str:
    return "wfd" + hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]  # 15 chars at most


def _ip(*args: str) -> subprocess.CompletedProcess:
    ip = system_program("ip")
    if ip is None:
        raise DevServiceError("`ip` was not found: install it with `apt-get install -y iproute2`")
    return subprocess.run([ip, *args], capture_output=True, text=True, timeout=30, check=False)


def _own_bridge(engine: Dockerd) -> str:
    """The engine's default bridge, made here (``wfd<hash>``, a free /24 of 10.197.0.0/16):
    the machine's docker0 and its addresses stay the other engine's."""
    name = _bridge_name(engine.data_dir)
    if _ip("link", "show", name).returncode == 0:
        return name
    with _file_lock(Path("/run/windflow-docker-bridges.lock")):
        used = _ip("-o", "-4", "addr", "show").stdout
        for third in range(256):
            prefix = f"10.197.{third}."
            if prefix not in used:
                break
        else:
            raise DevServiceError("no free /24 left in 10.197.0.0/16 for a private engine")
        for args in (
            ("link", "add", "name", name, "type", "bridge"),
            ("addr", "add", f"{prefix}1/24", "dev", name),
            ("link", "set", name, "up"),
        ):
            result = _ip(*args)
            if result.returncode != 0:
                _ip("link", "delete", name)
                raise DevServiceError(f"ip {' '.join(args)} failed: {result.stderr.strip()}")
    return name


def remove_own_bridge(engine: Dockerd) -> None:
    name = _bridge_name(engine.data_dir)
    with contextlib.suppress(DevServiceError):
        if _ip("link", "show", name).returncode == 0:
            _ip("link", "delete", name)


def start_dockerd(
    data_dir: Path,
    *,
    isolated: bool = True,
    address_pool: str = PRIVATE_POOL,
    timeout: float = DOCKERD_TIMEOUT,
) -> Dockerd:
    """Start (or reuse) a private Docker engine with its files in `data_dir` (root only).

    Returns once it answers ``/_ping`` on its socket; a failure raises DevServiceError with
    the tail of ``dockerd.log`` and leaves nothing running."""
    if not is_root():
        raise DevServiceError(
            f"starting a private Docker engine (in {data_dir}) needs root: run as root, or "
            f"point {TEST_DOCKER_SOCKET} at the socket of an engine you give to the tests"
        )
    dockerd = _dockerd_or_explain()
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o711)  # noqa: S103 - search only: docker-group users reach the socket
    with _file_lock(data_dir / "start.lock"):
        engine = Dockerd(data_dir, started=False)
        if engine.is_running() and _wait_ping(engine, None, timeout):
            return engine
        engine = Dockerd(data_dir, started=True)
        Path(engine.socket_path).parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(engine.socket_path)
        cmd = [
            dockerd,
            f"--host=unix://{engine.socket_path}",
            f"--data-root={data_dir / 'data'}",
            f"--exec-root={engine.exec_root}",
            f"--pidfile={engine.pidfile}",
            "--containerd-namespace=windflow",
            "--containerd-plugins-namespace=windflow-plugins",
            f"--default-address-pool=base={address_pool},size=24",
        ]
        if isolated:
            bridge = _own_bridge(engine)
            cmd += [
                f"--bridge={bridge}",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ]
            _allow_forwarding_within(address_pool)
            _allow_forwarding_within(BRIDGE_RANGE)
        process = spawn_daemon(cmd, engine.log_file)
        try:
            if not _wait_ping(engine, process, timeout):
                raise fail(
                    f"the private Docker engine did not answer on {engine.socket_path} "
                    f"within {timeout:.0f} s",
                    engine.log_file,
                )
        except BaseException:
            _stop_process(process)
            raise
    return engine


def _wait_ping(engine: Dockerd, process: subprocess.Popen | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if engine.ping():
            return True
        if process is not None and process.poll() is not None:
            raise fail(
                f"dockerd exited during start-up (exit code {process.returncode})",
                engine.log_file,
            )
        if process is None and not engine.is_running():
            return False
        time.sleep(0.05)
    return False


def _stop_process(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def remove_private_engine(engine: Dockerd) -> None:
    """Stop the engine and delete its directory (a test run's engine, at the end)."""
    engine.stop()
    for path in (engine.data_dir, _short_run_root(engine.data_dir)):
        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------- the tests' engine


def tests_engine_socket() -> str | None:
    """The socket the test run uses, as devtools.pytest_plugin set it up (None outside)."""
    if os.environ.get(TEST_DOCKER_SOCKET):
        return os.environ[TEST_DOCKER_SOCKET]
    if os.environ.get(TEST_DOCKER_DIR):
        return Dockerd(Path(os.environ[TEST_DOCKER_DIR])).socket_path
    return None


def ensure_docker_engine(timeout: float = DOCKERD_TIMEOUT) -> str:
    """The socket path of a Docker engine that answers ``/_ping``:

    - in a test run (``WINDFLOW_TEST_DOCKER_DIR``, set by devtools.pytest_plugin): the run's
      private engine, started on first use (root); never the machine's own;
    - ``WINDFLOW_TEST_DOCKER_SOCKET``: an engine the developer gives to the tests;
    - otherwise (benchmarks): the machine's engine on /var/run/docker.sock, started as root
      when missing (log in /var/log/windflow-dockerd.log)."""
    if os.environ.get(TEST_DOCKER_SOCKET):
        socket_path = os.environ[TEST_DOCKER_SOCKET]
        if not _ping_or_explain(socket_path):
            raise DevServiceError(f"no Docker engine answers on {TEST_DOCKER_SOCKET}={socket_path}")
        return socket_path
    if os.environ.get(TEST_DOCKER_DIR):
        return start_dockerd(Path(os.environ[TEST_DOCKER_DIR]), timeout=timeout).socket_path
    return _ensure_system_engine(timeout)


def _ensure_system_engine(timeout: float) -> str:
    if _ping_or_explain(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    if not is_root():
        raise DevServiceError(
            f"no Docker engine answers on {SYSTEM_SOCKET} and only root may start one: "
            "start it as root (`dockerd > /var/log/windflow-dockerd.log 2>&1 &`)"
        )
    dockerd = _dockerd_or_explain()
    with _file_lock(SYSTEM_DOCKERD_LOCK):
        if _ping_or_explain(SYSTEM_SOCKET):
            return SYSTEM_SOCKET
        running = read_int(SYSTEM_DOCKERD_PIDFILE)
        process = None
        if running is None or not pid_alive(running, "dockerd"):
            process = spawn_daemon([dockerd], SYSTEM_DOCKERD_LOG)
        deadline = time.monotonic() + timeout
        while not _ping_or_explain(SYSTEM_SOCKET):
            if process is not None and process.poll() is not None:
                raise fail(
                    f"dockerd exited during start-up (exit code {process.returncode})",
                    SYSTEM_DOCKERD_LOG,
                )
            if time.monotonic() > deadline:
                raise fail(
                    f"dockerd did not answer on {SYSTEM_SOCKET} within {timeout:.0f} s; "
                    "it is left running",
                    SYSTEM_DOCKERD_LOG,
                )
            time.sleep(0.05)
    return SYSTEM_SOCKET
