"""Plumbing shared by the benchmark scripts: private PostgreSQL/Redis, Django set-up,
a uvicorn (and optionally a Dramatiq worker) subprocess, a tiny HTTP/1.1 client, statistics
and the JSON result file.

Everything listens on and talks to 127.0.0.1 only. Every wait has a deadline. Everything a
benchmark starts is stopped in `finally` blocks, by process id (we start our servers in their
own session so the whole group we created can be ended).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "benchmarks" / "results"
HOST = "127.0.0.1"
# Above this share of all cores used by other processes, a run is flagged as noisy.
NOISY_SHARE = 0.15

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Settings every benchmark process (this one and the servers it starts) runs with: the
# developer settings module, but DEBUG off (no query log, no debug pages) and throttling so
# high it never distorts a load test.
# WINDFLOW_BENCH_SETTINGS picks another settings module (e.g. to try a configuration change).
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": os.environ.get("WINDFLOW_BENCH_SETTINGS", "windflow.settings.dev"),
    "DEBUG": "false",
    "WINDFLOW_API_THROTTLE_USER": "1000000/minute",
    "WINDFLOW_API_THROTTLE_ANON": "1000000/minute",
    "LOG_LEVEL": "WARNING",
    "EMAIL_URL": "locmem://",
    "PYTHONUNBUFFERED": "1",
    # The benchmark's organisation deploys to the machine's own engine, as on a
    # single-organisation install (the default, staff, wants an engine assigned in the admin).
    "WINDFLOW_LOCAL_TARGETS": "all",
}


def say(message: str) -> None:
    print(f"[bench] {message}", flush=True)


# ------------------------------------------------------------------------------- services


class Services:
    """DATABASE_URL / REDIS_URL from the environment, or throwaway private servers in a
    temporary directory (durable=False) that `close()` stops and deletes."""

    def __init__(self) -> None:
        self.tmp: Path | None = None
        self.started: list = []
        self.database_url = os.environ.get("DATABASE_URL") or ""
        self.redis_url = os.environ.get("REDIS_URL") or ""
        self.external_database = bool(self.database_url)

    def start(self) -> Services:
        from devtools import start_postgres, start_redis

        if not (self.database_url and self.redis_url):
            self.tmp = Path(tempfile.mkdtemp(prefix="windflow-bench-"))
        try:
            if not self.database_url:
                pg = start_postgres(self.tmp / "postgres", durable=False, database="windflow_bench")
                self.started.append(pg)
                self.database_url = pg.url
                say(f"private PostgreSQL: {pg.url}")
            if not self.redis_url:
                rd = start_redis(self.tmp / "redis", durable=False)
                self.started.append(rd)
                self.redis_url = rd.url
                say(f"private Redis: {rd.url}")
        except BaseException:
            self.close()  # a failed start stops what it had started
            raise
        return self

    def close(self) -> None:
        for server in reversed(self.started):
            try:
                server.stop()
            except Exception as exc:  # keep stopping the others
                say(f"could not stop {type(server).__name__}: {exc}")
        self.started.clear()
        if self.tmp is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url, **BENCH_ENV}

    def pids(self) -> list[int]:
        """Process ids of the servers this run started (PostgreSQL with its backends, Redis)."""
        pids: list[int] = []
        for server in self.started:
            if hasattr(server, "pid"):  # Redis
                pid = server.pid()
            else:  # PostgreSQL: the postmaster pid heads postmaster.pid
                try:
                    pid = int((server.data_dir / "postmaster.pid").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pid = None
            if pid:
                pids.append(pid)
        return pids

    def log_dir(self) -> Path:
        if self.tmp is None:
            self.tmp = Path(tempfile.mkdtemp(prefix="windflow-bench-"))
        return self.tmp


def setup_django(services: Services, migrate: bool = True) -> None:
    """Configure Django in this process against `services`, then `migrate_all`."""
    os.environ.update(services.env())
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        started = time.perf_counter()
        call_command("migrate_all", verbosity=0, stdout=io.StringIO())
        say(f"migrate_all done in {time.perf_counter() - started:.1f} s")


# ------------------------------------------------------------------------ benchmark data


@dataclass
class BenchPlace:
    """A fresh organisation (active on this connection), its owner's membership, and an
    environment and the local Docker engine as a server, for stacks to deploy to."""

    organization: object
    owner: object
    membership: object
    environment: object
    target: object


def bench_place() -> BenchPlace:
    import secrets

    from django.db import connection

    from apps.accounts.models import Membership, User
    from apps.environments.models import Environment
    from apps.targets import services as targets
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = User.objects.create_user(f"bench-{suffix}@bench.test", "bench-password-1")
    organization = create_organization(name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=owner)
    connection.set_tenant(organization)
    membership = Membership.objects.get(user=owner, organization=organization)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = targets.create_target(membership, name="local", kind="local")
    return BenchPlace(organization, owner, membership, environment, target)


@contextlib.contextmanager
def test_images(name: str):
    """The machine's Docker engine (started as root when missing), a private registry holding
    the test images (devtools.build_test_images): yields name -> reference; stops the
    registry and deletes its data after."""
    from devtools import build_test_images, ensure_docker_engine, start_registry

    ensure_docker_engine()
    work = Path(tempfile.mkdtemp(prefix=f"windflow-{name}-"))
    registry = start_registry(work / "registry")
    try:
        yield build_test_images(registry)
    finally:
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)


def create_stacks(place: BenchPlace, names: list[str], compose: str) -> list:
    """One stack per name on the place's environment and server, at revision 1 `compose`."""
    from apps.stacks.models import Stack, StackRevision

    stacks = []
    for name in names:
        stack = Stack.objects.create(name=name, environment=place.environment, target=place.target)
        StackRevision.objects.create(stack=stack, number=1, compose=compose)
        stacks.append(stack)
    return stacks


def remove_projects(names: list[str]) -> None:
    from devtools import remove_compose_project

    for name in names:
        remove_compose_project(name)


# ------------------------------------------------------------------------------ processes


class Process:
    """A subprocess in its own session, its output in a log file; `stop()` ends it by id
    (SIGTERM to it, then SIGKILL to the process group it leads, after a deadline)."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._out = log.open("ab")
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout)
        # Whatever is left of the group this process leads (e.g. uvicorn's worker children).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5)
        self._out.close()


def start_web(
    services: Services,
    port: int,
    workers: int = 2,
    config: str = "python:windflow.gunicorn",
    extra_env: dict[str, str] | None = None,
    name: str = "web",
) -> Process:
    """The Procfile's web process (gunicorn forking `workers` uvicorn workers, see
    windflow/gunicorn.py), without its access log. `config` and `extra_env` start another
    project under the same server (the floor project of bench_api_environments.py)."""
    cmd = [str(Path(sys.executable).parent / "gunicorn"), "-c", config]
    if config == "python:windflow.gunicorn" and os.environ.get("WINDFLOW_BENCH_ASGI_APP"):
        cmd.append(os.environ["WINDFLOW_BENCH_ASGI_APP"])  # another application, to try a change
    env = {
        **services.env(),
        "HOST": HOST,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(workers),
        "WINDFLOW_ACCESS_LOG": "",
        "MALLOC_ARENA_MAX": "2",
        **(extra_env or {}),
    }
    server = Process(name, cmd, env, services.log_dir() / f"{name}.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"the {name} process exited during start-up:\n{server.tail()}")
        try:
            status, _body = http_get(port, "localhost", "/healthz", timeout=2)
            if status in (200, 503):  # 503: up, but no worker heartbeat
                # Touch every worker process: several fresh connections spread over them.
                for _ in range(8 * workers):
                    http_get(port, "localhost", "/healthz", timeout=5)
                return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"the {name} process did not answer on {HOST}:{port} in 60 s:\n{server.tail()}"
    )


def start_worker(services: Services, threads: int = 1) -> Process:
    """A real Dramatiq worker (as in the Procfile): /healthz answers 200 only while a worker
    heartbeat is in Redis."""
    from windflow.workers import last_heartbeat

    cmd = [
        sys.executable,
        "manage.py",
        "run_worker",
        "--threads",
        str(threads),
    ]
    worker = Process("worker", cmd, services.env(), services.log_dir() / "worker.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not worker.alive():
            raise RuntimeError(f"the worker exited during start-up:\n{worker.tail()}")
        if last_heartbeat():
            return worker
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError(f"no worker heartbeat within 60 s:\n{worker.tail()}")


# ------------------------------------------------------------------------ a tiny HTTP client


def http_get(
    port: int, host: str, path: str, headers: dict[str, str] | None = None, timeout: float = 5
) -> tuple[int, bytes]:
    """One GET on a fresh connection to 127.0.0.1:port with `Host: host:port`."""
    import http.client

    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": f"{host}:{port}", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# ----------------------------------------------------------------------------- statistics


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation): the value below which pct % fall."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    return info


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def worktree_changes() -> list[str]:
    """Uncommitted changes outside benchmarks/ (the code measured is not exactly `commit`)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    paths = [line[3:] for line in out.stdout.splitlines() if len(line) > 3]
    return [path for path in paths if not path.startswith("benchmarks/")]


def save_result(name: str, result: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    payload = {
        "benchmark": name,
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "uncommitted_changes": worktree_changes(),
        "machine": machine(),
        **result,
    }
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    text = json.dumps(payload, indent=2, sort_keys=False) + "\n"
    path.write_text(text)
    (RESULTS_DIR / f"{name}-latest.json").write_text(text)
    return path


@dataclass
class Verdict:
    passed: bool
    line: str


def verdict(label: str, value: float, limit: float, unit: str, digits: int = 1) -> Verdict:
    passed = value <= limit
    word = "PASS" if passed else "FAIL"
    return Verdict(
        passed, f"{word}: {label} = {value:.{digits}f} {unit} (target <= {limit:g} {unit})"
    )


# ------------------------------------------------------------------------------ CPU usage

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (Linux /proc; just [pid] elsewhere)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by these processes, user + system, including their children
    that have ended and been reaped (so PostgreSQL backends of closed connections count in
    their postmaster). Live children are separate entries of `pids`: nothing is counted
    twice. Linux /proc."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / _CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine since boot (Linux /proc/stat)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))


def connections_per_process(pids: list[int], port: int) -> dict[int, int]:
    """Established TCP connections on local `port` held by each process (Linux /proc): how the
    kernel spread keep-alive clients over the server's worker processes."""
    established = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] == "01":  # 01 = ESTABLISHED
                    established.add(fields[9])  # inode
    counts = {}
    for pid in pids:
        inodes = set()
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
        counts[pid] = len(inodes & established)
    return counts


def background_load(seconds: float = 2.0) -> float:
    """Busy share of all cores (0..1) over `seconds`, before the benchmark starts anything
    heavy: other people's test runs on a shared machine distort every figure."""
    busy0, total0 = machine_cpu()
    time.sleep(seconds)
    busy1, total1 = machine_cpu()
    return (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan


def wait_for_quiet(threshold: float = NOISY_SHARE, max_wait: float | None = None) -> float:
    """On a shared machine, wait (at most `max_wait` s, env WINDFLOW_BENCH_QUIET_WAIT, default
    90) until other processes use under `threshold` of all cores over a 2 s sample. Returns the
    last sample; the caller reports it (and warns when it is still high)."""
    if max_wait is None:
        max_wait = float(os.environ.get("WINDFLOW_BENCH_QUIET_WAIT", "90"))
    deadline = time.monotonic() + max_wait
    load = background_load()
    announced = False
    while load > threshold and time.monotonic() < deadline:
        if not announced:
            say(
                f"machine busy with other work ({load * 100:.0f}% of all cores); waiting up to "
                f"{max_wait:.0f} s for it to calm down"
            )
            announced = True
        load = background_load()
    return load


class CpuMeter:
    """CPU used during a block, in cores (CPU seconds per wall second): this process (the
    load generator), the app server's process tree, our PostgreSQL and Redis (with their
    backends, found again at the end since PostgreSQL forks one per connection), the whole
    machine, and the rest ("other": processes that are not ours)."""

    def __init__(self, server_pid: int | None = None, service_pids: list[int] | None = None):
        self.server_pid = server_pid
        self.service_pids = service_pids or []

    def _trees(self) -> tuple[list[int], list[int]]:
        server = process_tree(self.server_pid) if self.server_pid else []
        services = [pid for root in self.service_pids for pid in process_tree(root)]
        return server, services

    def __enter__(self) -> CpuMeter:
        server, services = self._trees()
        self._server0 = {pid: cpu_seconds([pid]) for pid in server}
        self._services0 = {pid: cpu_seconds([pid]) for pid in services}
        self._wall = time.perf_counter()
        self._self = time.process_time()
        self._machine = machine_cpu()
        return self

    @staticmethod
    def _delta(before: dict[int, float], pids: list[int]) -> float:
        # A process that started and ended inside the block counts through its parent.
        return sum(cpu_seconds([pid]) - before.get(pid, 0.0) for pid in pids)

    def __exit__(self, *exc_info: object) -> None:
        server, services = self._trees()
        self.wall_s = time.perf_counter() - self._wall
        self.generator_cpu_s = time.process_time() - self._self
        busy0, total0 = self._machine
        busy1, total1 = machine_cpu()
        self.server_cpu_s = self._delta(self._server0, server)
        self.services_cpu_s = self._delta(self._services0, services)
        share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else math.nan
        self.machine_cores = share * (os.cpu_count() or 1)
        self.machine_busy = share

    def summary(self) -> dict:
        wall = self.wall_s
        ours = self.generator_cpu_s + self.server_cpu_s + self.services_cpu_s
        return {
            "wall_s": round(wall, 3),
            "generator_cores": round(self.generator_cpu_s / wall, 3),
            "server_cores": round(self.server_cpu_s / wall, 3),
            "postgres_redis_cores": round(self.services_cpu_s / wall, 3),
            "machine_cores": round(self.machine_cores, 3),
            "other_cores": round(max(0.0, self.machine_cores - ours / wall), 3),
            "machine_busy_share": round(self.machine_busy, 3),
        }


def main(name: str, run) -> int:
    """Run one benchmark: start the services, call `run(services)` for its exit code (0 pass,
    1 fail), and always stop what was started. Errors exit 2 with the traceback."""
    import traceback

    services = Services()
    try:
        services.start()
        return run(services)
    except KeyboardInterrupt:
        return 130
    except Exception:
        traceback.print_exc()
        print(f"ERROR: {name} could not complete (see above)")
        return 2
    finally:
        services.close()
