"""Migrations at scale: `manage.py migrate_all` with many organisations.

Targets (issue 12): a no-op run at 1,000 organisations in at most 60 s (checked as is: a no-op
costs mostly Django's start-up and the public schema's check); a one-column migration across
1,000 in at most 10 minutes on a 2-core machine (prorated to the count measured here, since
that work grows with the number of schemas behind).

    .venv/bin/python benchmarks/bench_migrate_all.py [ORGANISATIONS] [--no-op-only]  # default 200

Starts its own throwaway PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set),
`migrate_all`, then creates ORGANISATIONS organisations fast: Organization rows in bulk and
each schema cloned from the template (apps.tenants.cloning, a fresh connection every 25
clones). Then, each `manage.py migrate_all` run as a subprocess (as the Procfile's
release step runs it, Django's start-up included):

1. a no-op run (every schema up to date);
2. a one-column migration across every schema: targets.0003_local_engine (one AddField) is
   undone by SQL in every organisation's schema and the template (its column dropped, its
   record removed), then `migrate_all` applies it again everywhere.

Afterwards it checks that every schema has the column and none is behind. Prints each time,
PASS/FAIL lines, writes benchmarks/results/bench_migrate_all-*.json. Exit code: 0 PASS,
1 FAIL, 2 error.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from support import harness
from support.harness import ROOT, say

NAME = "bench_migrate_all"
DEFAULT_ORGANISATIONS = 200
NOOP_SECONDS_AT_1000 = 60.0
ONE_COLUMN_SECONDS_AT_1000 = 600.0
CLONES_PER_CONNECTION = 25
APP, MIGRATION, TABLE, COLUMN = "targets", "0003_local_engine", "targets_target", "engine_id"


def create_organisations(count: int) -> list[str]:
    from django.db import connection

    from apps.tenants.cloning import clone_template
    from apps.tenants.models import Organization

    rows = [
        Organization(name=f"Bench {i}", slug=f"bench-{i:05d}", schema_name=f"bench_{i:05d}")
        for i in range(count)
    ]
    Organization.objects.bulk_create(rows)  # no save(): the schemas are cloned below
    started = time.perf_counter()
    for index, row in enumerate(rows):
        if index % CLONES_PER_CONNECTION == 0:
            connection.close()  # a long-lived connection grows with each clone
        clone_template(row.schema_name)
        if (index + 1) % 50 == 0:
            say(f"{index + 1}/{count} schemas cloned ({time.perf_counter() - started:.0f} s)")
    connection.close()
    return [row.schema_name for row in rows]


def undo_one_column_migration(schemas: list[str]) -> None:
    """The schemas as they were before targets.0003: column and record gone."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for schema in schemas:
            cursor.execute(f'ALTER TABLE "{schema}".{TABLE} DROP COLUMN {COLUMN}')
            cursor.execute(
                f'DELETE FROM "{schema}".django_migrations WHERE app = %s AND name = %s',  # noqa: S608
                [APP, MIGRATION],
            )


def columns_present(schemas: list[str]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = ANY(%s) AND table_name = %s AND column_name = %s",
            [schemas, TABLE, COLUMN],
        )
        return cursor.fetchone()[0]


def timed_migrate_all(services: harness.Services) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate_all", "--progress-every=30"],
        cwd=ROOT,
        env={**os.environ, **services.env()},
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise RuntimeError(f"migrate_all exited {result.returncode}:\n{output}")
    return seconds, output


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("organisations", type=int, nargs="?", default=DEFAULT_ORGANISATIONS)
    parser.add_argument("--no-op-only", action="store_true", help="skip the one-column part")
    return parser.parse_args()


def run(services: harness.Services) -> int:
    options = arguments()
    count = options.organisations
    harness.setup_django(services)
    from django.conf import settings

    from apps.tenants.migrating import default_processes, schemas_behind

    say(f"creating {count} organisations (cloned schemas)")
    started = time.perf_counter()
    schemas = create_organisations(count)
    say(f"{count} organisations in {time.perf_counter() - started:.0f} s")
    processes = default_processes()
    harness.wait_for_quiet(max_wait=60)

    behind, _missing = schemas_behind(schemas)
    if behind:  # e.g. migrations added to the code since this run's first migrate_all
        raise RuntimeError(f"not a no-op: {len(behind)} schemas behind before the no-op run")
    noop_seconds, noop_output = timed_migrate_all(services)
    say(f"no-op migrate_all: {noop_seconds:.1f} s")
    print(noop_output.strip())
    if options.no_op_only:
        print(
            harness.verdict(
                f"no-op migrate_all at {count} organisations", noop_seconds, 60, "s"
            ).line
        )
        return 0

    every_schema = [*schemas, settings.TENANT_BASE_SCHEMA]
    undo_one_column_migration(every_schema)
    behind, _missing = schemas_behind(schemas)
    assert len(behind) == count, f"{len(behind)} of {count} behind after the undo"
    column_seconds, column_output = timed_migrate_all(services)
    say(f"one-column migrate_all: {column_seconds:.1f} s ({processes} processes)")
    print(column_output.strip())
    present = columns_present(every_schema)
    behind, missing = schemas_behind(schemas)
    assert present == len(every_schema) and not behind and not missing, (present, behind)

    share = count / 1000
    verdicts = [
        harness.verdict(
            f"no-op migrate_all at {count} organisations",
            noop_seconds,
            NOOP_SECONDS_AT_1000,  # mostly fixed costs (start-up, public, template): not prorated
            "s",
        ),
        harness.verdict(
            f"one-column migrate_all across {count} organisations",
            column_seconds,
            ONE_COLUMN_SECONDS_AT_1000 * share,
            "s",
        ),
    ]
    per_schema = column_seconds / count
    say(
        f"one-column: {per_schema * 1000:.0f} ms per schema,"
        f" {per_schema * 1000:.0f} s projected at 1,000 organisations"
    )
    harness.save_result(
        NAME,
        {
            "organisations": count,
            "processes": processes,
            "noop_seconds": round(noop_seconds, 2),
            "one_column_seconds": round(column_seconds, 2),
            "one_column_seconds_per_schema": round(per_schema, 4),
            "verdicts": [v.line for v in verdicts],
        },
    )
    for v in verdicts:
        print(v.line)
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(harness.main(NAME, run))
