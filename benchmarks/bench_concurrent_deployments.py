"""One worker process runs 20 deployments at once without starving any.

Target (issue: stacks and deployments): 20 deployments requested together all run at the
same time in one worker process (as the Procfile starts it: one process, 24 threads): each
starts within 2 s of its request (none waits for another to finish), all succeed, and none
is starved while the others run: the slowest takes at most 1.5 times the batch's median.

The slowdown against the same deployment alone is printed too, for information: 20 stacks
start 40 containers at once, and on a small machine the Docker engine itself (not the
worker) sets that figure.

    .venv/bin/python benchmarks/bench_concurrent_deployments.py   (as root: it starts dockerd)

20 stacks of 2 services each (a healthchecked web server, and a second one that waits for it
to be healthy), on the local engine, images already present. The deployments are requested
through `request_deployment` (committed, enqueued on Redis), and a real
`manage.py run_worker --threads 24` runs them.
"""

from __future__ import annotations

import secrets
import statistics
import subprocess
import sys
import time

from support import harness
from support.harness import say

NAME = "bench_concurrent_deployments"
STACKS = 20
WORKER_THREADS = 24
MAX_START_DELAY_S = 2.0
MAX_SPREAD = 1.5
DEADLINE_S = 600


def compose_file(images: dict[str, str]) -> str:
    return f"""
services:
  db:
    image: {images["web:1"]}
  app:
    image: {images["web:2"]}
    depends_on:
      db: {{condition: service_healthy}}
"""


def wait_finished(deployments, deadline: float) -> None:
    from apps.deployments.models import Deployment

    ids = [d.pk for d in deployments]
    while time.monotonic() < deadline:
        active = Deployment.objects.filter(pk__in=ids, status__in=["queued", "running"]).count()
        if not active:
            return
        time.sleep(0.5)
    raise RuntimeError("the deployments did not finish in time")


def run(services: harness.Services) -> int:
    harness.setup_django(services)

    from apps.deployments import services as deployments
    from apps.deployments.models import Deployment

    names = [f"wfc{secrets.token_hex(2)}-{n:02d}" for n in range(STACKS + 1)]
    worker = None
    with harness.test_images("bench-concurrent") as images:
        try:
            for ref in {images["web:1"], images["web:2"]}:
                subprocess.run(["docker", "pull", "-q", ref], check=True, capture_output=True)
            place = harness.bench_place()
            membership = place.membership
            stacks = harness.create_stacks(place, names, compose_file(images))
            worker = harness.start_worker(services, threads=WORKER_THREADS)
            harness.wait_for_quiet()

            say("one deployment alone...")
            solo = deployments.request_deployment(membership, stacks[0])
            wait_finished([solo], time.monotonic() + DEADLINE_S)
            solo.refresh_from_db()
            if solo.status != "succeeded":
                raise RuntimeError(f"the solo deployment failed: {solo.reason}")
            solo_s = (solo.finished_at - solo.started_at).total_seconds()

            say(f"{STACKS} deployments at once...")
            batch = [deployments.request_deployment(membership, stack) for stack in stacks[1:]]
            wait_finished(batch, time.monotonic() + DEADLINE_S)
            rows = list(Deployment.objects.filter(pk__in=[d.pk for d in batch]))
        finally:
            if worker is not None:
                worker.stop()
            harness.remove_projects(names)

    succeeded = sum(row.status == "succeeded" for row in rows)
    delays = [(row.started_at - row.created_at).total_seconds() for row in rows if row.started_at]
    durations = [
        (row.finished_at - row.started_at).total_seconds()
        for row in rows
        if row.started_at and row.finished_at
    ]
    overlap = min(row.finished_at for row in rows) > max(row.started_at for row in rows)
    slowdown = max(durations) / solo_s
    spread = max(durations) / statistics.median(durations)
    delay_check = harness.verdict(
        "slowest start after request", max(delays), MAX_START_DELAY_S, "s", 2
    )
    slow_check = harness.verdict("slowest / median of the batch", spread, MAX_SPREAD, "x", 2)
    print("=" * 78)
    print(f"{STACKS} deployments (2 services each) in one worker process, {WORKER_THREADS} threads")
    print(f"  alone: {solo_s:.2f} s")
    print(
        f"  together: {succeeded}/{len(rows)} succeeded; durations median "
        f"{statistics.median(durations):.2f} s, max {max(durations):.2f} s "
        f"({slowdown:.1f} x alone)"
    )
    print(
        f"  start delay after request: median {statistics.median(delays):.2f} s, "
        f"max {max(delays):.2f} s; all running at the same moment: {overlap}"
    )
    print(delay_check.line)
    print(slow_check.line)
    print("=" * 78)
    passed = delay_check.passed and slow_check.passed and succeeded == STACKS and overlap
    harness.save_result(
        NAME,
        {
            "passed": passed,
            "solo_s": solo_s,
            "durations_s": durations,
            "start_delays_s": delays,
            "succeeded": succeeded,
            "spread": spread,
            "slowdown_vs_alone": slowdown,
            "all_overlapping": overlap,
        },
    )
    return 0 if passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
