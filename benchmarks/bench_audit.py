"""Audit trail: what recording an event adds to a request, and how fast a chain verifies.

Targets (issue: secrets and audit):
  - recording an audit event adds at most 2 ms p95 to a request;
  - `manage.py audit_verify` over 100,000 events takes at most 10 s.

    .venv/bin/python benchmarks/bench_audit.py

1. `apps.audit.services.record()` in an organisation's schema, each in its own transaction
   (as in a request), 2,000 times after a warm-up: p50/p95/p99. The same with 4 threads
   writing to the same chain at once, to show the chain lock's cost under contention.
2. 100,000 events chained exactly as `record()` chains them, bulk-inserted, then the real
   `manage.py audit_verify --org <slug>` timed end to end (in-process call_command).

Starts its own throwaway PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set.
Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import io
import secrets
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

from support import harness
from support.harness import say

NAME = "bench_audit"
RECORDS = 2000
THREADS = 4
VERIFY_EVENTS = 100_000
RECORD_TARGET_MS = 2.0
VERIFY_TARGET_S = 10.0


def owner_and_organization():
    from apps.accounts.models import User
    from apps.tenants.services import create_organization

    suffix = secrets.token_hex(3)
    owner = User.objects.create_user(f"bench-{suffix}@bench.test", "bench-password-1")
    return owner, create_organization(name=f"Bench {suffix}", slug=f"bench-{suffix}", owner=owner)


def time_records(organization, count: int) -> list[float]:
    from django.db import connection
    from django_tenants.utils import tenant_context

    from apps.audit import services

    timings = []
    with tenant_context(organization):
        for n in range(count):
            started = time.perf_counter()
            services.record(
                "bench.event",
                object_type="bench",
                object_id=str(n),
                object_label=f"event {n}",
                changes={"n": [n - 1, n]},
            )
            timings.append((time.perf_counter() - started) * 1000)
    connection.close()
    return timings


def concurrent_records(organization, threads: int, each: int) -> list[float]:
    results: list[list[float]] = [[] for _ in range(threads)]

    def work(index):
        results[index] = time_records(organization, each)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [t for timings in results for t in timings]


def fill_chain(organization, count: int) -> float:
    """Insert `count` events forming a valid chain (computed like record() does)."""
    from django.db import connection
    from django_tenants.utils import tenant_context

    from apps.audit import chain
    from apps.audit.models import AuditEvent

    started = time.perf_counter()
    with tenant_context(organization):
        last = AuditEvent.objects.order_by("-id").first()
        prev_hash = last.hash if last else chain.GENESIS
        next_id = (last.id if last else 0) + 1
        moment = datetime.now(UTC) - timedelta(days=30)
        batch = []
        for n in range(count):
            event = AuditEvent(
                id=next_id + n,
                timestamp=moment + timedelta(seconds=n),
                organization=organization.slug,
                actor_type="user",
                actor_id="1",
                actor_label="bench@bench.test",
                action="environment.update",
                object_type="environment",
                object_id=str(n % 50),
                object_label=f"env-{n % 50}",
                changes={"description": [f"v{n}", f"v{n + 1}"]},
                ip="127.0.0.1",
                user_agent="bench",
                request_id=f"req-{n:08d}",
                prev_hash=prev_hash,
            )
            event.hash = chain.event_hash(prev_hash, _as_dict(event))
            prev_hash = event.hash
            batch.append(event)
            if len(batch) == 5000:
                AuditEvent.objects.bulk_create(batch)
                batch = []
        AuditEvent.objects.bulk_create(batch)
        with connection.cursor() as cursor:  # keep the sequence ahead of the explicit ids
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('audit_auditevent', 'id'), "
                "(SELECT max(id) FROM audit_auditevent))"
            )
    return time.perf_counter() - started


def _as_dict(event):
    from apps.audit.services import as_dict

    return as_dict(event)


def run(services: harness.Services) -> int:
    harness.setup_django(services)
    from django.core.management import call_command

    _owner, organization = owner_and_organization()
    harness.wait_for_quiet()

    time_records(organization, 200)  # warm-up
    single = time_records(organization, RECORDS)
    contended = concurrent_records(organization, THREADS, RECORDS // THREADS)

    say(f"filling a chain of {VERIFY_EVENTS:,} events...")
    fill_seconds = fill_chain(organization, VERIFY_EVENTS)
    out = io.StringIO()
    started = time.perf_counter()
    call_command("audit_verify", "--org", organization.slug, stdout=out)
    verify_seconds = time.perf_counter() - started
    report = out.getvalue().strip().splitlines()[0]

    p = harness.percentile
    record_check = harness.verdict(
        "p95 of recording one audit event", p(single, 95), RECORD_TARGET_MS, "ms", 2
    )
    verify_check = harness.verdict(
        f"audit_verify over {VERIFY_EVENTS:,}+ events", verify_seconds, VERIFY_TARGET_S, "s", 2
    )
    print("=" * 78)
    print(f"record(): one writer, {RECORDS} events, each in its own transaction")
    print(
        f"  p50 {p(single, 50):.2f} ms   p95 {p(single, 95):.2f} ms   "
        f"p99 {p(single, 99):.2f} ms   max {max(single):.2f} ms"
    )
    print(f"record(): {THREADS} writers on the same chain at once")
    print(
        f"  p50 {p(contended, 50):.2f} ms   p95 {p(contended, 95):.2f} ms   "
        f"p99 {p(contended, 99):.2f} ms"
    )
    print(f"audit_verify: {report}  (chain built in {fill_seconds:.1f} s)")
    print(record_check.line)
    print(verify_check.line)
    print("=" * 78)
    harness.save_result(
        NAME,
        {
            "passed": record_check.passed and verify_check.passed,
            "record_ms": {"p50": p(single, 50), "p95": p(single, 95), "p99": p(single, 99)},
            "record_contended_ms": {
                "threads": THREADS,
                "p50": p(contended, 50),
                "p95": p(contended, 95),
                "p99": p(contended, 99),
            },
            "verify_seconds": verify_seconds,
            "verify_report": report,
        },
    )
    return 0 if record_check.passed and verify_check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
