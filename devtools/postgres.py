"""A private PostgreSQL server for development and tests.

    pg = start_postgres(Path("var/postgres"))      # dev: durable defaults
    pg.url   -> "postgres://postgres@127.0.0.1:54329/windflow"
    pg.stop()

It listens on 127.0.0.1 only. A data directory that already holds a running server is
reused (``.started`` is then False); a stopped one is restarted with its data. Every step
has a timeout, and every failure raises ``DevServiceError`` saying what failed with the
tail of the log.

Running as root: PostgreSQL refuses root, so initdb/pg_ctl run through
``runuser -u postgres --``; the ``postgres`` system user is created when missing, the
data directory is chowned to it, and a parent directory that it could not traverse gets
the search bit for others (``o+x``, never read).
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .base import (
    HOST,
    DevServiceError,
    Service,
    fail,
    grant_traverse,
    is_root,
    pid_alive,
    previous_port,
    read_int,
    require_free_port,
    run,
    system_program,
)

PG_USER = "postgres"
PG_TIMEOUT = 60  # seconds for initdb, start and stop
# sockaddr_un.sun_path is 108 bytes; leave room for "/.s.PGSQL.NNNNN".
MAX_SOCKET_DIR = 90


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
        raise DevServiceError(
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
        (system_program("useradd") or "useradd"),
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
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DevServiceError(
            f"PostgreSQL refuses to run as root and creating the `{PG_USER}` system user "
            f"failed: {exc}"
        ) from None
    return pwd.getpwnam(PG_USER)


def _chown_tree(path: Path, user: pwd.struct_passwd) -> None:
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, user.pw_uid, user.pw_gid)


def _hand_to_pg_user(data_dir: Path) -> None:
    """As root: make `data_dir` reachable by and owned by the `postgres` user
    (the whole tree only when the directory itself is not theirs yet)."""
    user = _ensure_pg_system_user()
    grant_traverse(data_dir, user)
    if data_dir.stat().st_uid != user.pw_uid:
        _chown_tree(data_dir, user)
    for name in ("windflow.conf", "pg_hba.conf", "postgresql.conf", "postgres.log"):
        with contextlib.suppress(FileNotFoundError):
            os.lchown(data_dir / name, user.pw_uid, user.pw_gid)


def _pg_command(bindir: Path, program: str, *args: str) -> list[str]:
    cmd = [str(bindir / program), *args]
    if is_root():
        cmd = [(system_program("runuser") or "runuser"), "-u", PG_USER, "--", *cmd]
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
    run(
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
            "\n# WindFlow: rewritten at every start by devtools\n"
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
                raise fail(
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
class Postgres(Service):
    """A private PostgreSQL cluster on 127.0.0.1 (superuser `postgres`, trust)."""

    name = "PostgreSQL"
    process_name = "postgres"
    log_name = "postgres.log"
    pid_name = "postmaster.pid"
    stop_timeout = PG_TIMEOUT

    data_dir: Path
    port: int
    bindir: Path
    database: str = "windflow"
    started: bool = True  # False when an already running server was reused

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@{HOST}:{self.port}/{self.database}"

    def stop(self, timeout: float | None = None) -> None:
        """Stop the server (pg_ctl fast shutdown); a no-op when it is not running."""
        if not self.is_running():
            return
        timeout = self.stop_timeout if timeout is None else timeout
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
        run(
            cmd,
            log=self.log_file,
            timeout=timeout + 10,
            what=f"stopping PostgreSQL in {self.data_dir}",
        )


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

    port = port or previous_port(_read_conf_port(data_dir / "windflow.conf"))
    require_free_port(port, f"PostgreSQL in {data_dir}")
    _prepare_pg_dir(data_dir, bindir, log, durable)
    _write_pg_settings(data_dir, port, durable)
    if is_root():
        _hand_to_pg_user(data_dir)

    cmd = _pg_command(
        bindir, "pg_ctl", "-D", str(data_dir), "-l", str(log), "-w", "-t", str(PG_TIMEOUT), "start"
    )
    run(
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
        raise DevServiceError(
            f"{data_dir} is not empty and holds no PostgreSQL cluster (no PG_VERSION): "
            "refusing to initialise over it; empty it or pick another directory"
        )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    if is_root():
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
