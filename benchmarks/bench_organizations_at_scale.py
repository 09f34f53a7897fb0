"""Organisations at scale: 1,000 organisations created one after another on a private
PostgreSQL, and what their number does to provisioning, migrations, the API and PostgreSQL's
memory.

Targets (issue 12): provisioning p95 <= 0.5 s at 1,000 organisations and no worse than at
10; a no-op `migrate_all` <= 60 s at 1,000; a one-column migration across all of them
<= 10 min; `GET /api/v1/environments/` p95 at 1,000 no worse than at 10; no PostgreSQL backend
above 200 MB resident after visiting the 1,000 schemas.

    .venv/bin/python benchmarks/bench_organizations_at_scale.py [--organizations 1000]

Set-up: its own throwaway PostgreSQL and Redis (benchmarks/support/harness.py), settings
`benchmarks.support.scale_settings` (the developer settings plus a benchmark-only tenant
app, benchmarks/support/scale_app, whose second migration adds one column), the Procfile's
web process (gunicorn, 2 uvicorn workers) for the API figures.

1. Provisioning. The first organisation is the API's (bench_api_environments' fixture: 50
   environments, a read token). Then organisations are created one after another through
   `apps.tenants.services.create_organization`, each timed from the call to its return
   (schema, domain, owner, audit events committed). Between two sign-ups, untimed, the
   spare pool is refilled by the real job: the `refill_spare_schemas` actor's body, called
   in this process as a worker runs it (it clones until WINDFLOW_SPARE_SCHEMAS spares exist,
   then retires its connection). So every sign-up finds a spare, as it does in production
   while sign-ups come slower than a clone (~0.1 s); a sign-up that finds none clones and
   the figure shows it. After each sign-up the connection is released as at the end of a
   request. Figures: p50 / p95 over the 20 sign-ups up to 10, 100, 500 and 1,000
   organisations (fewer at 10). At the same points, untimed for the verdict: one fallback
   clone (apps.tenants.cloning, the path of an empty pool) and one django-tenants
   clone_schema (what provisioning ran before), each on a fresh connection.
2. API. With 10 and with all organisations present: bench_api_environments' closed loop
   (20 keep-alive clients as fast as they go, 10 s; p95 from each send) on the first one.
   A closed loop, not its open loop at 100 req/s: on a machine shared with other work the
   server may not reach 100 req/s, and an open loop's queue then says only that.
3. Memory. The largest resident set (VmRSS) of any PostgreSQL client backend: after
   provisioning, and after every schema has been visited: the scheduler's reaper job
   (`reap_in_every_organization`, one query per organisation on one connection, in this
   process) and one API request per organisation's host on the web process.
4. Migrations. `manage.py migrate_all` as a subprocess (whatever main has): once with
   nothing to do, then with WINDFLOW_BENCH_SCALE_COLUMN=1 (one column added in every
   schema; checked afterwards).

Prints the figures and a PASS/FAIL line per target, writes
benchmarks/results/bench_organizations_at_scale-*.json. Exit code: 0 all pass, 1 a target
missed, 2 error. `--organizations 50` for a quick run (the checkpoints above N are skipped).
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("WINDFLOW_BENCH_SETTINGS", "benchmarks.support.scale_settings")

import bench_api_environments as api
from support import harness
from support.harness import percentile, say

NAME = "bench_organizations_at_scale"
CHECKPOINTS = (10, 100, 500, 1000)
WINDOW = 20  # sign-ups per provisioning figure
PROVISION_P95_S = 0.5
NOOP_MIGRATE_S = 60.0
COLUMN_MIGRATE_S = 600.0
BACKEND_RSS_MB = 200.0
API_SECONDS = 10.0  # closed loop per API figure


# ---------------------------------------------------------------------------- measuring


class CountWarnings(logging.Handler):
    """Counts the WARNING records of one logger (a sign-up that found no spare says so)."""

    def __init__(self, name: str) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        logging.getLogger(name).addHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def backend_rss_mb() -> dict[int, tuple[float, float]]:
    """pid -> (resident MB, of which private MB: RssAnon, not shared buffers) of every client
    backend of our PostgreSQL (pg_stat_activity)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND datname = current_database()"
        )
        pids = [row[0] for row in cursor.fetchall()]
    sizes = {}
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        fields = {line.split(":")[0]: line.split()[1] for line in lines if line.startswith("Rss")}
        fields.update({line.split(":")[0]: line.split()[1] for line in lines if "VmRSS" in line})
        sizes[pid] = (int(fields["VmRSS"]) / 1024, int(fields.get("RssAnon", 0)) / 1024)
    return sizes


def largest_backend(label: str) -> dict:
    sizes = backend_rss_mb()
    largest = max((rss for rss, _private in sizes.values()), default=0.0)
    private = max((private for _rss, private in sizes.values()), default=0.0)
    say(
        f"{label}: largest PostgreSQL backend {largest:.0f} MB resident, largest private "
        f"{private:.0f} MB ({len(sizes)} backends)"
    )
    return {
        "when": label,
        "largest_mb": round(largest, 1),
        "largest_private_mb": round(private, 1),
        "backends": len(sizes),
    }


def timed_clones(count: int) -> dict:
    """One fallback clone (ours) and one django-tenants clone_schema, each on a fresh
    connection, dropped afterwards."""
    from django.db import connection, transaction
    from django_tenants.clone import CloneSchema

    from apps.tenants.cloning import clone_template

    figures = {}
    for label, clone in (
        ("fallback_clone_s", clone_template),
        ("django_tenants_clone_schema_s", CloneSchema().clone_schema),
    ):
        connection.close()
        name = f"bench_probe_{secrets.token_hex(3)}"
        with transaction.atomic():
            started = time.perf_counter()
            if clone is clone_template:
                clone(name)
            else:
                clone(harness_template(), name)
            figures[label] = round(time.perf_counter() - started, 3)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{name}" CASCADE')
        connection.close()
    say(
        f"at {count} organisations: fallback clone {figures['fallback_clone_s']:.3f} s, "
        f"django-tenants clone_schema {figures['django_tenants_clone_schema_s']:.3f} s"
    )
    return figures


def harness_template() -> str:
    from django.conf import settings

    return settings.TENANT_BASE_SCHEMA


def provisioning_window(times: list[float], upto: int) -> dict:
    window = times[max(0, upto - WINDOW) : upto]
    return {
        "organizations": upto,
        "sign_ups": len(window),
        "p50_s": round(percentile(window, 50), 4),
        "p95_s": round(percentile(window, 95), 4),
        "max_s": round(max(window), 4),
    }


def api_p95(port: int, host: str, token: str, server, label: str) -> dict:
    status, body = harness.http_get(
        port, host, api.PATH, {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    if status != 200:
        raise RuntimeError(f"GET {api.PATH} answered {status}: {body[:300]!r}")
    api.verify_body(body)
    background = harness.wait_for_quiet()
    server_pids = [pid for pid in harness.process_tree(server.pid) if pid != server.pid]
    request = api.build_request(port, host, token)
    checker = api.Checker(len(body))
    loop = api.run_async(api.closed_loop(port, request, checker, server_pids, API_SECONDS))
    lat = api.summary(loop["ms"])
    throughput = len(loop["ms"]) / loop["duration_s"]
    errors = len(loop["problems"])
    say(
        f"API with {label} organisations: {throughput:.0f} req/s, "
        f"p50 {lat.get('p50', 0):.1f} ms, p95 {lat.get('p95', 0):.1f} ms, errors "
        f"{errors} (other processes used {background * 100:.0f}% of the machine before)"
    )
    return {
        "organizations": label,
        "throughput_rps": round(throughput, 1),
        "p50_ms": lat.get("p50"),
        "p95_ms": lat.get("p95"),
        "p99_ms": lat.get("p99"),
        "errors": errors,
        "requests": len(loop["ms"]) + errors,
        "background_load_share": round(background, 3),
    }


def migrate_all(services: harness.Services, **env: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "manage.py", "migrate_all", "--verbosity", "0"],
        cwd=harness.ROOT,
        env={**os.environ, **services.env(), **env},
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"migrate_all failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def schemas_with_the_new_column() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " WHERE c.relname = 'scale_app_probe' AND a.attname = 'note' AND NOT a.attisdropped"
        )
        return cursor.fetchone()[0]


def visit_every_host(port: int, hosts: list[str]) -> dict:
    """One unauthenticated API request per organisation's host on the web process: each
    worker's connection sets that organisation's search_path to look the token up."""
    statuses: dict[int, int] = {}
    for host in hosts:
        status, _body = harness.http_get(port, host, api.PATH, {"Accept": "application/json"})
        statuses[status] = statuses.get(status, 0) + 1
    return statuses


# --------------------------------------------------------------------------------- run


def run(services: harness.Services, organizations: int) -> int:
    harness.setup_django(services)

    from django.conf import settings
    from django.db import close_old_connections, connection

    from apps.accounts.models import User
    from apps.tenants.services import create_organization
    from apps.tenants.tasks import refill_spare_schemas
    from devtools import free_port
    from windflow.scheduler import reap_in_every_organization

    if services.external_database:
        raise RuntimeError("this benchmark creates 1,000 organisations: a private database only")
    checkpoints = sorted({c for c in CHECKPOINTS if c <= organizations} | {organizations})
    say(
        f"settings {settings.SETTINGS_MODULE}; spare pool {settings.WINDFLOW_SPARE_SCHEMAS}; "
        f"a connection is retired after {settings.WINDFLOW_DB_SCHEMAS_PER_CONNECTION} schemas"
    )
    run_id = secrets.token_hex(3)
    refill_spare_schemas()
    _owner, first, token = api.create_fixture(run_id)
    connection.set_schema_to_public()
    owner = User.objects.create_user(f"bench-scale-{run_id}@example.com", None)
    hosts = [first.primary_domain]
    port = free_port()
    server = harness.start_web(services, port, workers=2)
    result: dict = {"organizations": organizations, "provisioning": [], "clones": []}
    try:
        times: list[float] = []
        fallbacks = CountWarnings("apps.tenants.services")
        api_runs = []
        memory = []
        count = 1
        while count < organizations:
            refill_spare_schemas()  # the real job, untimed
            count += 1
            slug = f"scale-{count:05d}"
            started = time.perf_counter()
            organization = create_organization(name=f"Scale {count}", slug=slug, owner=owner)
            times.append(time.perf_counter() - started)
            hosts.append(organization.primary_domain)
            close_old_connections()  # the end of the request
            if count in checkpoints:
                window = provisioning_window(times, len(times))
                window["organizations"] = count
                result["provisioning"].append(window)
                say(
                    f"{count} organisations: sign-up p50 {window['p50_s'] * 1000:.1f} ms, "
                    f"p95 {window['p95_s'] * 1000:.1f} ms (last {window['sign_ups']})"
                )
                result["clones"].append({"organizations": count, **timed_clones(count)})
                memory.append(largest_backend(f"after {count} organisations"))
                if count == min(10, organizations) or count == organizations:
                    api_runs.append(api_p95(port, first.primary_domain, token, server, count))
        result["sign_ups_that_cloned"] = fallbacks.count
        say(f"sign-ups that found no spare and cloned: {fallbacks.count}")

        connection.close()
        reap_in_every_organization()  # the scheduler's job: every schema on one connection
        memory.append(largest_backend("scheduler's reaper visited every schema (not released)"))
        close_old_connections()
        statuses = visit_every_host(port, hosts)
        say(f"one API request per organisation's host: {statuses}")
        memory.append(largest_backend("web visited every organisation's host"))
    finally:
        server.stop()
    result["api"] = api_runs
    result["memory"] = memory

    connection.close()
    noop = migrate_all(services)
    say(f"migrate_all, nothing to do: {noop:.1f} s")
    column = migrate_all(services, WINDFLOW_BENCH_SCALE_COLUMN="1")
    migrated = schemas_with_the_new_column()
    say(f"migrate_all, one column in every schema: {column:.1f} s ({migrated} tables have it)")
    result["migrate_all"] = {
        "noop_s": round(noop, 2),
        "one_column_s": round(column, 2),
        "tables_with_column": migrated,
    }
    return report(result, organizations)


def report(result: dict, organizations: int) -> int:
    provisioning = result["provisioning"]
    first, last = provisioning[0], provisioning[-1]
    api_first, api_last = result["api"][0], result["api"][-1]
    largest = max(m["largest_mb"] for m in result["memory"])
    migrate = result["migrate_all"]
    # The schemas: the template, each organisation's; every one must have the column.
    column_everywhere = migrate["tables_with_column"] >= organizations + 1
    verdicts = [
        harness.verdict(
            f"provisioning p95 at {last['organizations']} organisations",
            last["p95_s"],
            PROVISION_P95_S,
            "s",
            digits=3,
        ),
        harness.verdict(
            f"provisioning p95 at {last['organizations']} over p95 at {first['organizations']}",
            last["p95_s"] / first["p95_s"],
            1.0,
            "x",
            digits=2,
        ),
        harness.verdict(
            f"no-op migrate_all at {organizations}", migrate["noop_s"], NOOP_MIGRATE_S, "s"
        ),
        harness.verdict(
            f"one-column migrate_all at {organizations}",
            migrate["one_column_s"],
            COLUMN_MIGRATE_S,
            "s",
        ),
        harness.verdict(
            f"API p95 at {api_last['organizations']} over p95 at {api_first['organizations']}",
            api_last["p95_ms"] / api_first["p95_ms"],
            1.0,
            "x",
            digits=2,
        ),
        harness.verdict("largest PostgreSQL backend", largest, BACKEND_RSS_MB, "MB", digits=0),
    ]
    print()
    print("=" * 78)
    print(f"{organizations} organisations created one after another, spare pool refilled between")
    print("Provisioning (create_organization, from the call to its return):")
    for window in provisioning:
        print(
            f"  at {window['organizations']:>5}: p50 {window['p50_s'] * 1000:7.1f} ms   "
            f"p95 {window['p95_s'] * 1000:7.1f} ms   (last {window['sign_ups']} sign-ups)"
        )
    print("Clone of the template on a fresh connection (empty pool: the fallback):")
    for clone in result["clones"]:
        print(
            f"  at {clone['organizations']:>5}: ours {clone['fallback_clone_s']:.3f} s   "
            f"django-tenants clone_schema {clone['django_tenants_clone_schema_s']:.3f} s"
        )
    print(f"GET {api.PATH} on one organisation ({api.CLIENTS} clients, closed loop):")
    for run in result["api"]:
        print(
            f"  with {run['organizations']:>5} organisations: {run['throughput_rps']:.0f} req/s"
            f"   p50 {run['p50_ms']:.1f} ms   p95 {run['p95_ms']:.1f} ms   "
            f"errors {run['errors']}"
        )
    noisy = [run for run in result["api"] if run["background_load_share"] > harness.NOISY_SHARE]
    if noisy:
        print(
            "WARNING: other processes used the machine before an API run "
            f"({', '.join(str(round(r['background_load_share'] * 100)) + '%' for r in noisy)}): "
            "its figures are pessimistic"
        )
    print("migrate_all (subprocess):")
    print(f"  nothing to do: {migrate['noop_s']:.1f} s")
    print(
        f"  one column in every schema: {migrate['one_column_s']:.1f} s "
        f"({migrate['tables_with_column']} tables have it)"
    )
    print("Largest PostgreSQL backend: resident (VmRSS, shared buffers included) / private:")
    for entry in result["memory"]:
        print(
            f"  {entry['largest_mb']:5.0f} MB / {entry['largest_private_mb']:4.0f} MB  "
            f"{entry['when']}"
        )
    if not column_everywhere:
        print(f"FAIL: only {migrate['tables_with_column']} schemas have the new column")
    for line in verdicts:
        print(line.line)
    print("=" * 78)
    passed = all(v.passed for v in verdicts) and column_everywhere
    path = harness.save_result(
        NAME,
        {
            "targets": [v.line for v in verdicts],
            "passed": passed,
            **result,
        },
    )
    say(f"result saved to {path.relative_to(harness.ROOT)}")
    return 0 if passed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organizations", type=int, default=1000)
    args = parser.parse_args()
    return harness.main(NAME, lambda services: run(services, args.organizations))


if __name__ == "__main__":
    sys.exit(main())
