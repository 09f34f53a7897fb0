"""Secrets: resolving 50 secrets from the local backend for one deployment.

Target (issue: secrets and audit): at most 20 ms.

    .venv/bin/python benchmarks/bench_secrets.py

Creates 50 secrets (1 KiB values, half organisation-wide, half overriding them in one
environment) through `apps.secrets.services.create_secret`, then times
`services.resolved(names, environment=...)` (lookup, one data-key unwrap, 50 AES-GCM
decryptions, redaction scope) 300 times after a warm-up, each as the deploy worker does it.
Prints p50/p95/max. Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import secrets
import sys
import time

from support import harness
from support.harness import say

NAME = "bench_secrets"
SECRETS = 50
RUNS = 300
TARGET_MS = 20.0


def run(services: harness.Services) -> int:
    harness.setup_django(services)
    from django.db import connection

    from apps.accounts.models import Membership, User
    from apps.environments.models import Environment
    from apps.secrets import services as secret_services
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = User.objects.create_user(f"bench-{suffix}@bench.test", "bench-password-1")
    organization = create_organization(name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=owner)
    connection.set_tenant(organization)
    membership = Membership.objects.get(user=owner, organization=organization)
    staging = Environment.objects.create(name="staging", slug="staging")
    names = [f"SECRET_{n:02d}" for n in range(SECRETS)]
    for n, name in enumerate(names):
        secret_services.create_secret(membership, name=name, value=secrets.token_hex(512))
        if n % 2:
            secret_services.create_secret(
                membership, name=name, value=secrets.token_hex(512), environment=staging
            )
    say(f"{SECRETS} secrets stored ({SECRETS // 2} overridden in staging)")
    harness.wait_for_quiet()

    timings = []
    for run_number in range(RUNS + 20):
        started = time.perf_counter()
        with secret_services.resolved(names, environment=staging) as values:
            assert len(values) == SECRETS
        if run_number >= 20:  # warm-up
            timings.append((time.perf_counter() - started) * 1000)

    p = harness.percentile
    check = harness.verdict(
        f"p95 of resolving {SECRETS} secrets", p(timings, 95), TARGET_MS, "ms", 2
    )
    print("=" * 78)
    print(f"resolve {SECRETS} local secrets for one deployment, {RUNS} runs:")
    print(
        f"  p50 {p(timings, 50):.2f} ms   p95 {p(timings, 95):.2f} ms   max {max(timings):.2f} ms"
    )
    print(check.line)
    print("=" * 78)
    harness.save_result(
        NAME,
        {
            "passed": check.passed,
            "resolve_ms": {"p50": p(timings, 50), "p95": p(timings, 95), "max": max(timings)},
        },
    )
    return 0 if check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
