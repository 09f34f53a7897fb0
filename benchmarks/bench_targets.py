"""Targets: connectivity test of a healthy SSH target, and a sweep of 200 targets.

Targets (issue: targets):
  - connectivity test of a healthy SSH target: at most 1.5 s;
  - sweep of 200 targets (many rows may point at the same sshd): at most 30 s, with the
    worker's memory flat.

    .venv/bin/python benchmarks/bench_targets.py   (as root: it starts dockerd and sshd)

Starts a private sshd on 127.0.0.1 in front of the real Docker engine, registers targets
through `apps.targets.services.create_target` (pinning the host key as an admin would),
times `check_target` 20 times (each opens a fresh SSH connection: the worst case), then runs
the real `sweep_targets` actor body over 200 targets twice, measuring its duration and the
process's resident memory after each sweep. Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

from support import harness
from support.harness import say

NAME = "bench_targets"
CHECK_RUNS = 20
SWEEP_TARGETS = 200
CHECK_TARGET_S = 1.5
SWEEP_TARGET_S = 30.0


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(services: harness.Services) -> int:
    harness.setup_django(services)
    from django.db import connection

    from apps.accounts.models import Membership, User
    from apps.targets import services as targets
    from apps.targets.connect import check_target
    from apps.targets.models import Target
    from apps.targets.tasks import sweep_targets
    from apps.tenants.services import create_organization
    from devtools import ensure_docker_engine, start_sshd
    from windflow.engine import ssh

    ensure_docker_engine()
    sshd_dir = Path(tempfile.mkdtemp(prefix="windflow-bench-sshd-"))
    sshd = start_sshd(sshd_dir)
    try:
        private_key, public_line = ssh.generate_ed25519_keypair()
        sshd.authorize("root", public_line)
        suffix = secrets.token_hex(3)
        owner = User.objects.create_user(f"bench-{suffix}@bench.test", "bench-password-1")
        organization = create_organization(
            name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=owner
        )
        connection.set_tenant(organization)
        membership = Membership.objects.get(user=owner)

        def add(name):
            target = targets.create_target(
                membership,
                name=name,
                kind="ssh",
                host=sshd.host,
                port=sshd.port,
                user="root",
                private_key=private_key,
            )
            return targets.confirm_host_key(membership, target, target.pending_host_key_fingerprint)

        first = add("web-0")
        harness.wait_for_quiet()
        ssh.pool.close_all()
        timings = []
        for _ in range(CHECK_RUNS):
            ssh.pool.close_all()  # no reuse: each test pays the whole handshake
            started = time.perf_counter()
            check = check_target(first)
            timings.append(time.perf_counter() - started)
            assert check.status == "online", check.results

        say(f"registering {SWEEP_TARGETS - 1} more targets...")
        for n in range(1, SWEEP_TARGETS):
            add(f"web-{n}")
        ssh.pool.close_all()
        sweeps = []
        memory = [rss_mib()]
        for _ in range(2):
            started = time.perf_counter()
            sweep_targets.fn()
            sweeps.append(time.perf_counter() - started)
            memory.append(rss_mib())
        online = Target.objects.filter(status="online").count()
    finally:
        sshd.stop()
        shutil.rmtree(sshd_dir, ignore_errors=True)

    p = harness.percentile
    check_verdict = harness.verdict(
        "p95 connectivity test of a healthy SSH target", p(timings, 95), CHECK_TARGET_S, "s", 3
    )
    sweep_verdict = harness.verdict(
        f"sweep of {SWEEP_TARGETS} targets", max(sweeps), SWEEP_TARGET_S, "s", 1
    )
    growth = memory[-1] - memory[1]
    flat = growth < 20
    print("=" * 78)
    print(f"check_target, fresh SSH connection each time, {CHECK_RUNS} runs:")
    print(f"  p50 {p(timings, 50):.3f} s   p95 {p(timings, 95):.3f} s   max {max(timings):.3f} s")
    print(
        f"sweep of {SWEEP_TARGETS} targets (same sshd), {len(sweeps)} runs: "
        + ", ".join(f"{s:.1f} s" for s in sweeps)
        + f"; {online} online"
    )
    print(
        f"  resident memory MiB: before {memory[0]:.0f}, after each sweep "
        + ", ".join(f"{m:.0f}" for m in memory[1:])
        + f" (second sweep grew {growth:+.1f} MiB: {'flat' if flat else 'GROWING'})"
    )
    print(check_verdict.line)
    print(sweep_verdict.line)
    print("=" * 78)
    passed = check_verdict.passed and sweep_verdict.passed and flat and online == SWEEP_TARGETS
    harness.save_result(
        NAME,
        {
            "passed": passed,
            "check_s": {"p50": p(timings, 50), "p95": p(timings, 95), "max": max(timings)},
            "sweep_s": sweeps,
            "online": online,
            "rss_mib": memory,
        },
    )
    return 0 if passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
