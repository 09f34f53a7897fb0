"""API latency: `GET /api/v1/environments/` with a personal access token.

Targets (on this 2-core machine, load generator included): p95 at or under 50 ms at a steady
100 requests per second from 20 concurrent clients (open loop); and a saturation throughput
of at least 60 % of the floor's: a bare DRF view (benchmarks/support/floor: no middleware,
authentication or tenancy) returning the same 25 rows under the same server, measured side
by side in the same run.

    .venv/bin/python benchmarks/bench_api_environments.py

Set-up through the real services: an organisation, its owner, 50 environments and a
read-only API token; the web process (gunicorn, 2 uvicorn workers, DEBUG off, throttling
out of the way) and the floor project as subprocesses; throwaway PostgreSQL and Redis unless
DATABASE_URL / REDIS_URL are set.

Load generator: one asyncio loop, 20 persistent HTTP/1.1 keep-alive connections over raw
asyncio streams (cheap: its own CPU use is measured and reported).

1. Open loop, 100 req/s: request i is due at t0 + i * 10 ms whatever happens to earlier
   requests; it goes to whichever of the 20 connections is free (it waits in a queue when
   all are busy), and its latency runs from its *due* time to the last byte of the response,
   so queueing counts (no coordinated omission). 3 s warm-up, then 20 s measured.
2. Saturation, closed loop: 20 connections, each sends its next request as soon as the
   previous one is answered; 3 rounds of 10 s on each server (the floor and WindFlow),
   alternating; throughput, p95 (from send) and CPU per request of each, and the ratio.

Every response must be 200 with 25 results (count 50); the body is checked in full once and
by length afterwards. Prints the figures (with the CPU used by the server, PostgreSQL+Redis,
the generator and any other process on the machine) and a PASS/FAIL line, writes
benchmarks/results/bench_api_environments-*.json. Exit code: 0 PASS, 1 FAIL, 2 error.

    .venv/bin/python benchmarks/bench_api_environments.py --profile

runs the same request in-process through Django's test Client instead, and prints its SQL
and a cProfile of where the CPU goes (no server, no load).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import sys
import time
from dataclasses import dataclass

from support import harness
from support.harness import HOST, percentile, say

NAME = "bench_api_environments"
PATH = "/api/v1/environments/"
ENVIRONMENTS = 50
PAGE_SIZE = 25
CLIENTS = 20
RATE = 100.0  # requests per second, open loop
WARMUP_S = 3.0
MEASURE_S = 20.0
SATURATION_S = 10.0  # per round and endpoint
SATURATION_ROUNDS = 3  # alternating: floor, API / API, floor / floor, API
TARGET_RATIO = 0.60  # the API's saturation throughput / the floor's
SATURATION_MAX_REQUESTS = 200_000
CONNECT_SPACING = 0.025  # seconds between opening two client connections
REQUEST_TIMEOUT = 5.0  # seconds for one response
DRAIN_TIMEOUT = 15.0  # seconds to wait for the last open-loop responses
TARGET_P95_MS = 50.0
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exhausted|Timeout)\b.*:")

try:  # the server uses uvloop too; it makes the generator cheaper
    import uvloop
except ImportError:  # pragma: no cover
    uvloop = None


# --------------------------------------------------------------------------- HTTP client


class HttpError(Exception):
    pass


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port sending one fixed GET."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port = port
        self.request = request
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reconnects = 0

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def get(self) -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
            self.reconnects += 1
        try:
            return await asyncio.wait_for(self._exchange(), REQUEST_TIMEOUT)
        except BaseException:
            self.close()  # the stream state is unknown: start afresh next time
            raise

    async def _exchange(self) -> tuple[int, bytes]:
        reader, writer = self.reader, self.writer
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HttpError(f"bad status line {lines[0]!r}")
        status = int(parts[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _sep, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")  # no trailers expected
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            raise HttpError("response without length")
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, body


# What one exchange may raise (a timeout, a reset, a truncated or malformed response).
CLIENT_ERRORS = (
    TimeoutError,
    OSError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    HttpError,
    ValueError,
)


def build_request(port: int, host: str, token: str) -> bytes:
    return (
        f"GET {PATH} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Accept: application/json\r\n"
        "User-Agent: windflow-bench\r\n"
        "\r\n"
    ).encode()


def verify_body(body: bytes) -> None:
    data = json.loads(body)
    if data.get("count") != ENVIRONMENTS or len(data.get("results", [])) != PAGE_SIZE:
        raise AssertionError(
            f"expected count={ENVIRONMENTS} and {PAGE_SIZE} results, got "
            f"count={data.get('count')} and {len(data.get('results', []))} results"
        )


class Checker:
    """Every response: 200 and the reference body length (the full JSON is parsed when the
    length differs, so a legitimately different but valid page still counts as good)."""

    def __init__(self, reference_length: int) -> None:
        self.reference_length = reference_length

    def problem(self, status: int, body: bytes) -> str | None:
        """None for a good response, else what is wrong with it."""
        if status != 200:
            return f"status {status}"
        if len(body) != self.reference_length:
            try:
                verify_body(body)
            except Exception as exc:
                return f"body: {exc}"[:120]
        return None


def count_kinds(kinds) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        if kind:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


# ----------------------------------------------------------------------------- load runs


def spread_over(pids: list[int], port: int) -> list[int]:
    """How many of our connections each server process holds, busiest first."""
    counts = harness.connections_per_process(pids, port)
    return sorted((count for count in counts.values() if count), reverse=True)


async def open_connections(port: int, request: bytes) -> list[Connection]:
    """Open the CLIENTS connections one at a time, CONNECT_SPACING apart, as independent
    clients would: opened in one burst, they all land on the uvicorn worker that happens to
    wake first (it accepts the whole backlog), and the other worker idles."""
    connections = []
    for _ in range(CLIENTS):
        conn = Connection(port, request)
        await conn._open()
        connections.append(conn)
        await asyncio.sleep(CONNECT_SPACING)
    return connections


async def open_loop(port: int, request: bytes, checker: Checker, server_pids: list[int]) -> dict:
    """RATE req/s for WARMUP_S + MEASURE_S, latency from each request's due time."""
    clock = time.perf_counter  # uvloop's loop.time() has millisecond resolution only
    interval = 1.0 / RATE
    warmup_n = round(WARMUP_S * RATE)
    total_n = warmup_n + round(MEASURE_S * RATE)
    queue: asyncio.Queue = asyncio.Queue()
    latencies: list[float | None] = [None] * total_n
    send_lag: list[float | None] = [None] * total_n
    failed: list[str | None] = [None] * total_n
    connections = await open_connections(port, request)
    spread = spread_over(server_pids, port)
    t0 = clock() + 0.1

    async def dispatcher() -> None:
        for i in range(total_n):
            due = t0 + i * interval
            delay = due - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((i, due))
        for _ in connections:
            queue.put_nowait(None)

    async def client(conn: Connection) -> None:
        while True:
            item = await queue.get()
            if item is None:
                return
            i, due = item
            send_lag[i] = clock() - due
            try:
                status, body = await conn.get()
                failed[i] = checker.problem(status, body)
            except CLIENT_ERRORS as exc:
                failed[i] = type(exc).__name__
            latencies[i] = clock() - due

    workers = [asyncio.create_task(client(conn)) for conn in connections]
    schedule = asyncio.create_task(dispatcher())
    run_deadline = WARMUP_S + MEASURE_S + DRAIN_TIMEOUT + 1
    _done, pending = await asyncio.wait([schedule, *workers], timeout=run_deadline)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for conn in connections:
        conn.close()

    measured = range(warmup_n, total_n)
    unanswered = sum(1 for i in measured if latencies[i] is None)
    errors = sum(1 for i in measured if failed[i]) + unanswered
    good = [latencies[i] * 1000 for i in measured if latencies[i] is not None and not failed[i]]
    lags = [send_lag[i] * 1000 for i in measured if send_lag[i] is not None]
    return {
        "rate_rps": RATE,
        "warmup_s": WARMUP_S,
        "measure_s": MEASURE_S,
        "requests": len(measured),
        "ok": len(good),
        "errors": errors,
        "unanswered": unanswered,
        "error_kinds": count_kinds(failed[i] for i in measured),
        "latency_ms": summary(good),
        "dispatch_wait_ms": summary(lags),  # due time -> handed to a free connection
        "connections_per_server_process": spread,
        "reconnects": sum(c.reconnects for c in connections),
        "cancelled_tasks": len(pending),
    }


async def closed_loop(
    port: int, request: bytes, checker: Checker, server_pids: list[int], seconds: float
) -> dict:
    """CLIENTS connections, each as fast as it can, for `seconds`. The result keeps the raw
    latencies (`ms`) so that alternating rounds can be pooled."""
    clock = time.perf_counter
    connections = await open_connections(port, request)
    spread = spread_over(server_pids, port)
    latencies: list[float] = []
    problems: list[str] = []
    start = clock()
    end = start + seconds

    async def client(conn: Connection) -> None:
        while clock() < end and len(latencies) + len(problems) < SATURATION_MAX_REQUESTS:
            sent = clock()
            try:
                status, body = await conn.get()
                problem = checker.problem(status, body)
            except CLIENT_ERRORS as exc:
                problem = type(exc).__name__
            if problem is None:
                latencies.append(clock() - sent)
            else:
                problems.append(problem)

    tasks = [asyncio.create_task(client(conn)) for conn in connections]
    _done, pending = await asyncio.wait(tasks, timeout=seconds + REQUEST_TIMEOUT + 2)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = clock() - start
    for conn in connections:
        conn.close()
    return {
        "connections_per_server_process": spread,
        "duration_s": elapsed,
        "ms": [value * 1000 for value in latencies],
        "problems": problems,
    }


@dataclass
class Endpoint:
    """One server under test: WindFlow's web process, or the floor project."""

    label: str
    server: harness.Process
    port: int
    request: bytes
    checker: Checker

    def worker_pids(self) -> list[int]:
        return [pid for pid in harness.process_tree(self.server.pid) if pid != self.server.pid]


def saturation_rounds(endpoints: list[Endpoint], service_pids: list[int]) -> dict[str, dict]:
    """SATURATION_ROUNDS closed-loop rounds of SATURATION_S per endpoint, alternating (A B,
    B A, A B...) so that drift in the machine's load falls on both alike. Pooled per
    endpoint: throughput (all good responses / all measured time), latency percentiles
    (from send), errors, CPU per request."""
    pooled = {
        e.label: {"ms": [], "problems": [], "duration_s": 0.0, "rounds_rps": [], "cpu": []}
        for e in endpoints
    }
    for round_index in range(SATURATION_ROUNDS):
        order = endpoints if round_index % 2 == 0 else list(reversed(endpoints))
        for endpoint in order:
            say(
                f"saturation round {round_index + 1}/{SATURATION_ROUNDS}: {endpoint.label}, "
                f"closed loop, {CLIENTS} connections, {SATURATION_S:g} s"
            )
            with harness.CpuMeter(endpoint.server.pid, service_pids) as cpu:
                result = run_async(
                    closed_loop(
                        endpoint.port,
                        endpoint.request,
                        endpoint.checker,
                        endpoint.worker_pids(),
                        SATURATION_S,
                    )
                )
            into = pooled[endpoint.label]
            into["ms"] += result["ms"]
            into["problems"] += result["problems"]
            into["duration_s"] += result["duration_s"]
            into["rounds_rps"].append(round(len(result["ms"]) / result["duration_s"], 1))
            into["cpu"].append(cpu)
            into["connections_per_server_process"] = result["connections_per_server_process"]
    return {label: pooled_summary(data) for label, data in pooled.items()}


def pooled_summary(data: dict) -> dict:
    ok = len(data["ms"])
    meters = data["cpu"]
    wall = sum(m.wall_s for m in meters) or 1.0
    server_cpu = sum(m.server_cpu_s for m in meters)
    services_cpu = sum(m.services_cpu_s for m in meters)
    generator_cpu = sum(m.generator_cpu_s for m in meters)
    machine = sum(m.machine_cores * m.wall_s for m in meters)
    result = {
        "clients": CLIENTS,
        "rounds": len(meters),
        "connections_per_server_process": data.get("connections_per_server_process", []),
        "duration_s": round(data["duration_s"], 3),
        "requests": ok + len(data["problems"]),
        "ok": ok,
        "errors": len(data["problems"]),
        "error_kinds": count_kinds(data["problems"]),
        "throughput_rps": ok / data["duration_s"] if data["duration_s"] else 0.0,
        "rounds_rps": data["rounds_rps"],
        "latency_ms": summary(data["ms"]),
        "cpu_cores": {
            "wall_s": round(wall, 3),
            "generator_cores": round(generator_cpu / wall, 3),
            "server_cores": round(server_cpu / wall, 3),
            "postgres_redis_cores": round(services_cpu / wall, 3),
            "machine_cores": round(machine / wall, 3),
            "other_cores": round(
                max(0.0, (machine - server_cpu - services_cpu - generator_cpu) / wall), 3
            ),
            "machine_busy_share": round(machine / wall / (os.cpu_count() or 1), 3),
        },
    }
    if ok:
        result["cpu_ms_per_request"] = {
            "server": round(server_cpu / ok * 1e3, 2),
            "postgres_redis": round(services_cpu / ok * 1e3, 2),
            "generator": round(generator_cpu / ok * 1e3, 3),
        }
    return result


def summary(ms: list[float]) -> dict:
    if not ms:
        return {"count": 0}
    return {
        "count": len(ms),
        "mean": round(sum(ms) / len(ms), 2),
        "p50": round(percentile(ms, 50), 2),
        "p90": round(percentile(ms, 90), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "max": round(max(ms), 2),
    }


def run_async(coro):
    if uvloop is not None:
        return uvloop.run(coro)
    return asyncio.run(coro)


# -------------------------------------------------------------------------------- set-up


def create_fixture(run_id: str):
    """Organisation, owner, 50 environments and a read token, through the services."""
    from django_tenants.utils import tenant_context

    from apps.accounts.models import Membership, User
    from apps.accounts.services import create_api_token
    from apps.environments.choices import EnvironmentKind
    from apps.environments.services import create_environment
    from apps.tenants.services import create_organization

    owner = User.objects.create_user(f"bench-api-{run_id}@example.com", None)
    slug = f"bench-api-{run_id}"
    organization = create_organization(name=f"Bench API {run_id}", slug=slug, owner=owner)
    membership = Membership.objects.get(user=owner, organization=organization)
    kinds = [EnvironmentKind.DEV, EnvironmentKind.STAGING, EnvironmentKind.PROD]
    with tenant_context(organization):
        for index in range(ENVIRONMENTS):
            create_environment(
                membership,
                name=f"Environment {index:02d}",
                kind=kinds[index % 3],
                description=f"Benchmark environment number {index}.",
                variables={"LOG_LEVEL": "info", "REGION": "eu-west", "REPLICAS": str(index % 4)},
            )
    _token, secret = create_api_token(membership, name="bench", scope="read")
    return owner, organization, secret


def server_errors(server: harness.Process) -> dict[str, int]:
    """Distinct exception lines in the server log (what the 5xx were), with counts."""
    counts: dict[str, int] = {}
    try:
        text = server.log.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        if EXCEPTION_LINE.match(line):
            key = line.strip()[:200]
            counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1])[:10])


def cpu_line(cpu: dict) -> str:
    return (
        f"server {cpu['server_cores']:.2f}, PostgreSQL+Redis {cpu['postgres_redis_cores']:.2f}, "
        f"generator {cpu['generator_cores']:.2f}, other processes {cpu['other_cores']:.2f} "
        f"(machine {cpu['machine_busy_share'] * 100:.0f}% busy)"
    )


def start_floor(services: harness.Services, port: int, schema: str) -> harness.Process:
    """The floor project (benchmarks/support/floor) under the same server: gunicorn forking
    2 uvicorn workers (windflow.gunicorn.WebWorker), reading `schema`'s environments."""
    return harness.start_web(
        services,
        port,
        workers=2,
        config="python:support.floor.gunicorn",
        extra_env={
            "DJANGO_SETTINGS_MODULE": "support.floor.settings",
            "WINDFLOW_FLOOR_SCHEMA": schema,
            "PYTHONPATH": os.pathsep.join([str(harness.ROOT / "benchmarks"), str(harness.ROOT)]),
        },
        name="floor",
    )


def first_body(port: int, host: str, token: str, label: str) -> bytes:
    status, body = harness.http_get(
        port, host, PATH, {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    if status != 200:
        raise RuntimeError(f"{label}: GET {PATH} answered {status}: {body[:300]!r}")
    verify_body(body)
    return body


def same_page(body: bytes, floor_body: bytes) -> bool:
    """The floor's page is the API's, but for the port in its `url`s (another server)."""
    ours, theirs = json.loads(body), json.loads(floor_body)
    for row in ours["results"] + theirs["results"]:
        row["url"] = row["url"].split("/api/", 1)[1]
    return ours == theirs


def run(services: harness.Services) -> int:
    harness.setup_django(services)

    from django.conf import settings
    from django.db import connection

    from apps.tenants.services import delete_organization
    from devtools import free_port

    run_id = secrets.token_hex(3)
    owner, organization, token = create_fixture(run_id)
    host = organization.primary_domain
    say(f"organisation {host} with {ENVIRONMENTS} environments and a read token")
    database = settings.DATABASES["default"]
    config = {
        "settings_module": settings.SETTINGS_MODULE,
        "asgi_app": os.environ.get("WINDFLOW_BENCH_ASGI_APP", "windflow.asgi:application"),
        "conn_max_age": database.get("CONN_MAX_AGE"),
        "db_pool": bool(database.get("OPTIONS", {}).get("pool")),
        "tenant_limit_set_calls": getattr(settings, "TENANT_LIMIT_SET_CALLS", False),
        "debug": settings.DEBUG,
    }
    say(f"configuration: {config}")
    port, floor_port = free_port(), free_port()
    server = floor = None
    errors_in_log: dict[str, int] = {}
    try:
        server = harness.start_web(services, port, workers=2)
        say(f"web process (gunicorn, 2 uvicorn workers, DEBUG off) on {HOST}:{port}")
        floor = start_floor(services, floor_port, organization.schema_name)
        say(f"floor project (gunicorn, 2 uvicorn workers, bare DRF) on {HOST}:{floor_port}")
        background = harness.wait_for_quiet()
        say(f"background load before the runs: {background * 100:.0f}% of all cores")

        body = first_body(port, host, token, "API")
        floor_body = first_body(floor_port, host, token, "floor")
        say(
            f"bodies verified: 200, count {ENVIRONMENTS}, {PAGE_SIZE} results; API "
            f"{len(body)} bytes, floor {len(floor_body)} bytes"
            f"{' (the same but for the port in urls)' if same_page(body, floor_body) else ''}"
        )

        api = Endpoint("API", server, port, build_request(port, host, token), Checker(len(body)))
        bare = Endpoint(
            "floor",
            floor,
            floor_port,
            build_request(floor_port, host, token),
            Checker(len(floor_body)),
        )
        service_pids = services.pids()

        say(
            f"open loop: {RATE:g} req/s, {CLIENTS} connections, {WARMUP_S:g} s warm-up + "
            f"{MEASURE_S:g} s measured"
        )
        with harness.CpuMeter(server.pid, service_pids) as open_cpu:
            steady = run_async(open_loop(port, api.request, api.checker, api.worker_pids()))
        steady["cpu_cores"] = open_cpu.summary()

        pooled = saturation_rounds([bare, api], service_pids)
        saturation, floor_saturation = pooled["API"], pooled["floor"]
    finally:
        for process in (server, floor):
            if process is not None:
                process.stop()
                errors_in_log.update(server_errors(process))
        if services.external_database:
            connection.set_schema_to_public()
            delete_organization(organization)
            owner.delete()

    lat = steady["latency_ms"]
    p95 = lat.get("p95", float("inf"))
    check = harness.verdict(f"p95 at {RATE:g} req/s", p95, TARGET_P95_MS, "ms")
    latency_passed = check.passed and steady["errors"] == 0
    wait = steady["dispatch_wait_ms"]
    floor_rps = floor_saturation["throughput_rps"]
    ratio = saturation["throughput_rps"] / floor_rps if floor_rps else 0.0
    ratio_passed = (
        ratio >= TARGET_RATIO and saturation["errors"] == 0 and floor_saturation["errors"] == 0
    )
    passed = latency_passed and ratio_passed

    print()
    print("=" * 78)
    print(
        f"GET {PATH} (token auth, {ENVIRONMENTS} environments, page of {PAGE_SIZE}), "
        f"gunicorn + 2 uvicorn workers, {os.cpu_count()} cores"
    )
    print(
        f"Open loop {RATE:g} req/s, {CLIENTS} keep-alive clients, {MEASURE_S:g} s measured "
        f"(latency from scheduled send time):"
    )
    print(
        f"  requests {steady['requests']}, ok {steady['ok']}, errors {steady['errors']}"
        f"{' ' + str(steady['error_kinds']) if steady['error_kinds'] else ''}"
    )
    print(
        f"  p50 {lat.get('p50', 0):.1f} ms   p95 {lat.get('p95', 0):.1f} ms   "
        f"p99 {lat.get('p99', 0):.1f} ms   max {lat.get('max', 0):.1f} ms"
    )
    print(
        f"  queued for a free client: p95 {wait.get('p95', 0):.2f} ms, "
        f"max {wait.get('max', 0):.2f} ms"
    )
    print(f"  CPU cores: {cpu_line(steady['cpu_cores'])}")
    print(f"  client connections per uvicorn worker: {steady['connections_per_server_process']}")
    print(
        f"Saturation (closed loop, {CLIENTS} clients, {SATURATION_ROUNDS} alternating rounds of "
        f"{SATURATION_S:g} s each):"
    )
    for label, result in (("floor (bare DRF)", floor_saturation), ("API", saturation)):
        sat = result["latency_ms"]
        print(
            f"  {label}: throughput {result['throughput_rps']:.0f} req/s "
            f"(rounds {', '.join(f'{rps:.0f}' for rps in result['rounds_rps'])})   "
            f"p50 {sat.get('p50', 0):.1f} ms   p95 {sat.get('p95', 0):.1f} ms   "
            f"errors {result['errors']}"
        )
        print(f"    CPU cores: {cpu_line(result['cpu_cores'])}")
        per_request = result.get("cpu_ms_per_request")
        if per_request:
            print(
                f"    CPU per request: server {per_request['server']:.2f} ms, "
                f"PostgreSQL+Redis {per_request['postgres_redis']:.2f} ms, "
                f"generator {per_request['generator']:.3f} ms"
            )
    if errors_in_log:
        print("Server log exceptions (count):")
        for line, count in errors_in_log.items():
            print(f"  {count:6d}  {line}")
    noisy = max(background, steady["cpu_cores"]["other_cores"] / (os.cpu_count() or 1))
    if noisy > harness.NOISY_SHARE:
        print(
            f"WARNING: other processes used the machine during this run (background "
            f"{background * 100:.0f}% before start, {steady['cpu_cores']['other_cores']:.2f} "
            f"cores during the open loop): the figures are pessimistic; run again when idle."
        )
    line = check.line + (f"; {steady['errors']} error(s)" if steady["errors"] else "")
    if check.passed and not latency_passed:
        line = line.replace("PASS", "FAIL", 1)
    print(line)
    print(
        f"{'PASS' if ratio_passed else 'FAIL'}: API throughput / floor throughput = "
        f"{ratio:.2f} ({saturation['throughput_rps']:.0f} / {floor_rps:.0f} req/s; "
        f"target >= {TARGET_RATIO:.2f})"
    )
    print("=" * 78)

    path = harness.save_result(
        NAME,
        {
            "target": f"p95 <= {TARGET_P95_MS:g} ms at {RATE:g} req/s open loop, "
            f"{CLIENTS} clients, no errors; saturation throughput >= {TARGET_RATIO:.2f} x the "
            "bare-DRF floor's, side by side",
            "passed": passed,
            "p95_ms": p95,
            "saturation_rps": saturation["throughput_rps"],
            "saturation_p95_ms": saturation["latency_ms"].get("p95"),
            "floor_saturation_rps": floor_rps,
            "throughput_ratio": round(ratio, 3),
            "steady": steady,
            "saturation": saturation,
            "floor_saturation": floor_saturation,
            "server_log_exceptions": errors_in_log,
            "background_load_share": round(background, 3),
            "config": config,
            "setup": {
                "server": "gunicorn -c python:windflow.gunicorn (2 uvicorn workers)",
                "floor": "gunicorn -c python:support.floor.gunicorn (2 uvicorn workers)",
                "request": f"GET {PATH} Authorization: Bearer wf_... Accept: application/json",
                "environments": ENVIRONMENTS,
                "page_size": PAGE_SIZE,
                "database": "external" if services.external_database else "private, fsync off",
            },
        },
    )
    say(f"result saved to {path.relative_to(harness.ROOT)}")
    return 0 if passed else 1


# ------------------------------------------------------------------------------ profiling


def profile(services: harness.Services, requests: int = 300) -> int:
    """`--profile`: the same request in-process through Django's test Client (WSGI path, same
    middleware and view): its SQL, its Redis round trips, each middleware's own share and
    DRF's steps (support/layers.py), then where the CPU goes (cProfile). No server, no load."""
    import cProfile
    import io
    import pstats

    harness.setup_django(services)
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext
    from support import layers

    _owner, organization, token = create_fixture(secrets.token_hex(3))
    headers = {
        "HTTP_HOST": organization.primary_domain,
        "HTTP_AUTHORIZATION": f"Bearer {token}",
        "HTTP_ACCEPT": "application/json",
    }
    client = Client(**headers)
    for _ in range(30):  # warm caches, connections and the last_used_at update
        response = client.get(PATH)
        assert response.status_code == 200, response.content[:300]
    verify_body(response.content)
    with CaptureQueriesContext(connection) as queries:
        client.get(PATH)
    print(f"\n{len(queries.captured_queries)} SQL statements per request:")
    for query in queries.captured_queries:
        print(f"  {query['sql'][:150]}")
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    for _ in range(requests):
        client.get(PATH)
    wall = (time.perf_counter() - started_wall) / requests * 1000
    cpu = (time.process_time() - started_cpu) / requests * 1000
    print(f"\nin-process, one at a time: {wall:.2f} ms wall, {cpu:.2f} ms CPU per request")

    middleware = list(settings.MIDDLEWARE)
    breakdown = layers.Layers(middleware)
    steps = layers.StepTimers()
    with override_settings(MIDDLEWARE=layers.with_probes(middleware)), steps.installed():
        probed = Client(**headers)
        for _ in range(30):
            probed.get(PATH)
        layers._marks.clear()
        steps.totals.clear()
        steps.calls.clear()
        for _ in range(requests):
            started = time.thread_time()
            probed.get(PATH)
            breakdown.take_request(time.thread_time() - started)
    print(f"\nEach layer's own CPU time, mean of {requests} requests (ms per request):")
    shares = sorted(breakdown.per_request().items(), key=lambda item: -item[1])
    for name, ms in shares:
        print(f"  {ms:7.3f}  {name}")
    print(f"  {sum(ms for _name, ms in shares):7.3f}  in all")
    print("\nInside the view and around it (inclusive CPU time, ms per request; calls):")
    for name, total in sorted(steps.totals.items(), key=lambda item: -item[1]):
        print(f"  {total / requests:7.3f}  {name} ({steps.calls[name] / requests:g})")

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        client.get(PATH)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(r"/(apps|windflow)/", 30)  # our own code
    print(out.getvalue())
    return 0


def main() -> int:
    return harness.main(NAME, profile if "--profile" in sys.argv[1:] else run)


if __name__ == "__main__":
    sys.exit(main())
