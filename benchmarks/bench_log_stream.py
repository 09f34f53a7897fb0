"""Container logs over a websocket: throughput, loss and latency of the live log.

Targets (issue: stack runtime and live logs):
  - a container printing 5,000 lines/s is carried with no line lost;
  - a line reaches the browser within 250 ms p95 of Docker receiving it.

    .venv/bin/python benchmarks/bench_log_stream.py   (as root: it starts dockerd)

Sets up a real organisation, a local-socket target and a stack (through the services and
the deployment runner), whose one container (the busybox test image from a private
registry) waits for a signal, then prints PRODUCER_LINES numbered lines (~55 bytes each)
at a steady PRODUCER_RATE lines/s: bursts of 100 lines paced on /proc/uptime, as a busy web
server's access log would. A websocket client (the `websockets` package, signed in with a
real session cookie) follows the container through `ContainerLogConsumer` on a live uvicorn
(2 workers, as in the Procfile), then the producer is started.

Measured: lines received vs sent (sequence numbers: none missing, none twice, in order),
the producer's actual rate (from Docker's own timestamps of the first and last lines), and
the latency of each line = time received by the client - Docker's timestamp of the line
(`timestamps=True`; the daemon runs on this machine, same clock): p50 / p95 / p99 / max.
Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import socket
import tempfile
import time
from calendar import timegm
from pathlib import Path

from support import harness
from support.harness import say

NAME = "bench_log_stream"
PRODUCER_RATE = 5000  # lines per second
PRODUCER_SECONDS = 10
PRODUCER_LINES = PRODUCER_RATE * PRODUCER_SECONDS
BURST = 100  # lines per burst; PRODUCER_RATE must be a multiple of BURST * 100 / 2
LATENCY_P95_MS = 250.0
MIN_RATE = 0.97 * PRODUCER_RATE  # the producer itself must keep up (it paces on 10 ms ticks)
PROJECT = "bench-logs"

# The producer: waits for /tmp/go, then bursts of BURST lines every (BURST / RATE) s,
# paced on /proc/uptime (centiseconds, no fork) so it does not drift.
_TICKS_PER_BURST = int(100 * BURST / PRODUCER_RATE)  # 2 centiseconds at 5,000 lines/s
PRODUCER = f"""
SEP=" GET /api/v1/environments/?page=2 200 4.1ms bench
"
while [ ! -f /tmp/go ]; do usleep 20000; done
read s x < /proc/uptime; s=${{s%.*}}${{s#*.}}
i=0
while [ $i -lt {PRODUCER_LINES // BURST} ]; do
  seq -s "$SEP" $((i*{BURST}+1)) $((i*{BURST}+{BURST}))
  i=$((i+1))
  while :; do read u x < /proc/uptime; u=${{u%.*}}${{u#*.}}; \
[ $u -ge $((s + i*{_TICKS_PER_BURST})) ] && break; usleep 1500; done
done
echo done
sleep 3600
"""

_SECOND_CACHE: dict[str, int] = {}


def docker_time(stamp: str) -> float:
    """Docker's RFC 3339 (UTC, up to nanoseconds, trailing zeros trimmed) -> epoch s."""
    whole = stamp[:19]
    seconds = _SECOND_CACHE.get(whole)
    if seconds is None:
        seconds = timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
        _SECOND_CACHE[whole] = seconds
    fraction = stamp[20:].rstrip("Z")
    return seconds + (float("0." + fraction) if fraction else 0.0)


def compose(image: str) -> str:
    command = ["sh", "-c", PRODUCER.replace("$", "$$")]  # $$: no compose interpolation
    return json.dumps({"services": {"producer": {"image": image, "command": command}}})


def set_up(services: harness.Services, image: str):
    """A committed organisation, its owner's session cookie, and a deployed stack."""
    from django.db import connection
    from django.test import Client

    from apps.deployments import runner
    from apps.deployments import services as deployments
    from apps.stacks import runtime
    from apps.stacks.models import Stack, StackRevision

    place = harness.bench_place()
    organization, owner, membership = place.organization, place.owner, place.membership
    environment, target = place.environment, place.target
    stack = Stack.objects.create(
        name=PROJECT, environment=environment, target=target, grace_period=0
    )
    StackRevision.objects.create(stack=stack, number=1, compose=compose(image))
    deployment = deployments.request_deployment(membership, stack)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    if deployment.status != "succeeded":
        raise RuntimeError(f"the producer stack did not deploy: {deployment.reason}")
    container = runtime.runtime_status(stack)[0]["containers"][0]["id"]
    connection.set_schema_to_public()
    client = Client(HTTP_HOST=organization.primary_domain)
    client.force_login(owner)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    return organization, owner, container, cookie


async def follow(port: int, host: str, cookie: str, container: str, start_producer) -> dict:
    """Connect, start the producer, receive until the last line (or a deadline)."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    # The producer prints nothing before it is started, so a tail holds exactly the lines
    # printed before the server's log stream attached (tail=0 would count them as lost).
    path = f"/ws/stacks/{PROJECT}/containers/{container}/logs/?tail=1000"
    sock = socket.create_connection((harness.HOST, port))
    received: list[tuple[float, str]] = []  # (receive time, raw line)
    batches = 0
    async with connect(
        f"ws://{host}:{port}{path}",
        sock=sock,
        origin=f"http://{host}:{port}",
        additional_headers={"Cookie": cookie},
        max_size=2**24,
        compression=None,
    ) as ws:
        await asyncio.to_thread(start_producer)
        deadline = time.monotonic() + PRODUCER_SECONDS * 3 + 15
        last = str(PRODUCER_LINES)
        while time.monotonic() < deadline:
            try:
                raw = await asyncio.wait_for(ws.recv(), timeout=deadline - time.monotonic())
            except TimeoutError:
                break
            except ConnectionClosed as exc:
                say(f"the socket closed after {len(received)} lines: {exc}")
                break
            now = time.time()
            message = json.loads(raw)
            if message["type"] != "lines":
                say(f"message: {message}")
                if message["type"] in ("end", "error"):
                    break
                continue
            batches += 1
            received.extend((now, line) for line in message["lines"])
            if any(line.partition(" ")[2].split(" ", 1)[0] == last for line in message["lines"]):
                break
    return {"received": received, "batches": batches}


def analyse(received: list[tuple[float, str]]) -> dict:
    seqs, latencies, stamps = [], [], []
    for when, line in received:
        stamp, _, text = line.partition(" ")
        token = text.split(" ", 1)[0]
        if not token.isdigit():
            continue  # "done"
        seqs.append(int(token))
        moment = docker_time(stamp)
        stamps.append(moment)
        latencies.append((when - moment) * 1000)
    expected = set(range(1, PRODUCER_LINES + 1))
    seen = set(seqs)
    duration = (max(stamps) - min(stamps)) if stamps else 0.0
    p = harness.percentile
    return {
        "lines_sent": PRODUCER_LINES,
        "lines_received": len(seqs),
        "lost": len(expected - seen),
        "duplicated": len(seqs) - len(seen),
        "out_of_order": sum(1 for a, b in itertools.pairwise(seqs) if b < a),
        "producer_seconds": round(duration, 3),
        "producer_rate": round((len(seen) - 1) / duration, 1) if duration else 0.0,
        "latency_ms": {
            "p50": round(p(latencies, 50), 1),
            "p95": round(p(latencies, 95), 1),
            "p99": round(p(latencies, 99), 1),
            "max": round(max(latencies), 1),
            "min": round(min(latencies), 1),
        }
        if latencies
        else {},
    }


def run(services: harness.Services) -> int:
    harness.setup_django(services)
    import docker
    from django.db import connection

    from apps.accounts.models import User
    from apps.tenants.services import delete_organization
    from devtools import (
        build_test_images,
        ensure_docker_engine,
        free_port,
        remove_compose_project,
        start_registry,
    )

    ensure_docker_engine()
    registry_dir = Path(tempfile.mkdtemp(prefix="windflow-bench-registry-"))
    registry = start_registry(registry_dir)
    engine = docker.from_env()
    organization = owner = server = None
    try:
        image = build_test_images(registry)["busybox:1"]
        remove_compose_project(PROJECT)
        organization, owner, container, cookie = set_up(services, image)
        port = free_port()
        server = harness.start_web(services, port, workers=2)
        background = harness.wait_for_quiet()

        def start_producer():
            engine.containers.get(container).exec_run(["touch", "/tmp/go"])  # noqa: S108

        host = organization.primary_domain
        say(f"following {PRODUCER_LINES} lines at {PRODUCER_RATE} lines/s through {host}...")
        with harness.CpuMeter(server.pid, services.pids()) as cpu:
            outcome = asyncio.run(follow(port, host, cookie, container, start_producer))
        figures = analyse(outcome["received"])
        if figures["lost"]:
            say(f"uvicorn log (end):\n{server.tail(40)}")
        figures["batches"] = outcome["batches"]
    finally:
        if server is not None:
            server.stop()
        remove_compose_project(PROJECT)
        engine.close()
        registry.stop()
        shutil.rmtree(registry_dir, ignore_errors=True)
        connection.set_schema_to_public()
        if organization is not None:
            delete_organization(organization)
        if owner is not None:
            User.objects.filter(pk=owner.pk).delete()

    latency = figures["latency_ms"]
    checks = [
        harness.verdict("p95 line latency", latency.get("p95", float("inf")), LATENCY_P95_MS, "ms"),
        harness.verdict("lines lost", figures["lost"] + figures["duplicated"], 0, "lines", 0),
        harness.verdict(
            "lines below the target rate",
            max(0.0, MIN_RATE - figures["producer_rate"]),
            0,
            "lines/s",
            0,
        ),
    ]
    print("=" * 78)
    print(
        f"producer: {figures['lines_received']}/{figures['lines_sent']} lines received in "
        f"{figures['producer_seconds']} s = {figures['producer_rate']} lines/s (Docker's clock)"
    )
    print(
        f"lost {figures['lost']}, duplicated {figures['duplicated']}, out of order "
        f"{figures['out_of_order']}; {figures['batches']} websocket messages "
        f"({figures['lines_received'] / max(1, figures['batches']):.0f} lines each on average)"
    )
    if latency:
        print(
            "latency (client receive - Docker timestamp): "
            f"p50 {latency['p50']} ms   p95 {latency['p95']} ms   p99 {latency['p99']} ms   "
            f"max {latency['max']} ms"
        )
    print(f"CPU: {cpu.summary()}")
    for check in checks:
        print(check.line)
    harness.save_result(
        NAME,
        {
            "targets": {
                "p95_latency_ms": LATENCY_P95_MS,
                "rate_lines_per_s": PRODUCER_RATE,
                "lost": 0,
            },
            "config": {
                "producer_lines": PRODUCER_LINES,
                "producer_rate": PRODUCER_RATE,
                "burst": BURST,
                "uvicorn_workers": 2,
                "background_cpu_share": background,
            },
            "figures": figures,
            "cpu": cpu.summary(),
            "passed": all(check.passed for check in checks),
        },
    )
    return 0 if all(check.passed for check in checks) else 1


if __name__ == "__main__":
    raise SystemExit(harness.main(NAME, run))
