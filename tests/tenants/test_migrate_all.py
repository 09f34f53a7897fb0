"""`manage.py migrate_all` (the release step) on real schemas, with committed data: the
organisations behind are migrated by processes of their own, a failing schema is reported by
name while the others finish, and a re-run resumes."""

import io
import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from apps.tenants import migrating
from tests.base import has_column
from tests.live import database_url_for_tests, live_organization

ROOT = Path(__file__).resolve().parents[2]


def _history(schema: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT app, name, applied FROM "{schema}".django_migrations ORDER BY id')  # noqa: S608
        return cursor.fetchall()


def _roll_back_stacks(schema: str) -> None:
    """Put `schema` behind: stacks back to 0001 (0002 adds a column, 0003 a table)."""
    call_command(
        "migrate_schemas", "stacks", "0001", schema_name=schema, interactive=False, verbosity=0
    )
    connection.set_schema_to_public()
    assert not has_column(schema, "stacks_stack", "registry_credentials")


def _migrate_all(*args) -> str:
    out = io.StringIO()
    try:
        call_command("migrate_all", *args, "--processes=2", "--progress-every=0", stdout=out)
    finally:
        connection.set_schema_to_public()
    return out.getvalue()


@pytest.fixture
def organizations(live_db):
    """Three committed organisations, deleted with their schemas after the test."""
    with ExitStack() as stack:
        worlds = [stack.enter_context(live_organization()) for _ in range(3)]
        yield [world.organization.schema_name for world in worlds]


def test_it_migrates_nothing_when_every_schema_is_up_to_date(organizations):
    before = {schema: _history(schema) for schema in organizations}

    output = _migrate_all()

    assert " 0 behind" in output
    assert "0 migrated by this run" in output
    assert output.strip().endswith("All schemas are up to date.")
    assert {schema: _history(schema) for schema in organizations} == before


def test_it_reads_which_schemas_are_behind_in_one_query_per_chunk(
    organizations, django_assert_max_num_queries
):
    late = organizations[1]
    _roll_back_stacks(late)
    schemas = migrating.tenant_schemas()
    with django_assert_max_num_queries(2):
        behind, missing = migrating.schemas_behind(schemas)
    assert behind == [late]
    assert missing == []


def _stack_action_permissions(schema: str) -> list[str]:
    """The permissions of stacks.0003's model (its content type's) in `schema`."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT p.codename FROM "{schema}".auth_permission p'  # noqa: S608
            f' JOIN "{schema}".django_content_type t ON t.id = p.content_type_id'
            " WHERE t.app_label = 'stacks' AND t.model = 'stackaction' ORDER BY p.codename"
        )
        return [row[0] for row in cursor.fetchall()]


def test_it_leaves_organisations_alone_when_only_a_shared_app_migrated(organizations):
    """A shared app's migration (accounts: public tables) changes nothing in organisations'
    schemas: its record missing there does not make them behind."""
    schema = organizations[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f'DELETE FROM "{schema}".django_migrations WHERE id ='  # noqa: S608
            f' (SELECT max(id) FROM "{schema}".django_migrations WHERE app = %s)',
            ["accounts"],
        )
        assert cursor.rowcount == 1

    assert migrating.schemas_behind(migrating.tenant_schemas()) == ([], [])


def test_it_migrates_a_schema_behind_and_leaves_the_others(organizations):
    late, *others = organizations
    _roll_back_stacks(late)
    with connection.cursor() as cursor:  # as if stacks 0003's model had never existed
        where = "WHERE app_label = 'stacks' AND model = 'stackaction'"
        cursor.execute(
            f'DELETE FROM "{late}".auth_permission WHERE content_type_id IN'  # noqa: S608
            f' (SELECT id FROM "{late}".django_content_type {where})'
        )
        cursor.execute(f'DELETE FROM "{late}".django_content_type {where}')  # noqa: S608
    assert _stack_action_permissions(late) == []
    before = {schema: _history(schema) for schema in others}

    output = _migrate_all()

    assert " 1 behind" in output
    assert "1/1 (100%)" in output
    assert has_column(late, "stacks_stack", "registry_credentials")
    # post_migrate ran in that schema for the app migrated: content type and permissions.
    assert _stack_action_permissions(late) == [
        "add_stackaction",
        "change_stackaction",
        "delete_stackaction",
        "view_stackaction",
    ]
    assert {schema: _history(schema) for schema in others} == before
    assert migrating.schemas_behind(migrating.tenant_schemas()) == ([], [])


def test_it_reports_a_failing_schema_by_name_while_the_others_finish_and_resumes(
    organizations,
):
    failing, late, _current = organizations
    _roll_back_stacks(failing)
    _roll_back_stacks(late)
    history = _history(failing)
    # The table stacks 0003 creates is there already: 0002 applies, then 0003 fails.
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE TABLE "{failing}".stacks_stackaction (id int)')

    with pytest.raises(CommandError) as refused:
        _migrate_all()

    message = str(refused.value)
    assert f"{failing}: ProgrammingError" in message
    assert "stacks_stackaction" in message
    assert "stacks.0003_stack_action" in message
    assert f"{late}:" not in message
    assert has_column(late, "stacks_stack", "registry_credentials")
    # All or nothing for the failing schema: 0002's column went with 0003's failure.
    assert not has_column(failing, "stacks_stack", "registry_credentials")
    assert _history(failing) == history

    with connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{failing}".stacks_stackaction')
    output = _migrate_all()

    assert " 1 behind" in output
    assert has_column(failing, "stacks_stack", "registry_credentials")
    assert migrating.schemas_behind(migrating.tenant_schemas()) == ([], [])


def test_it_leaves_each_schema_migrated_or_as_it_was_when_stopped_and_resumes(live_db):
    """SIGTERM in the middle of a run (a release job cancelled): the command says so, every
    schema is either up to date or untouched (never half-migrated), and a re-run does the
    rest."""
    with ExitStack() as stack:
        schemas = [
            stack.enter_context(live_organization()).organization.schema_name for _ in range(6)
        ]
        for schema in schemas:
            _roll_back_stacks(schema)
        behind_history = {schema: _history(schema) for schema in schemas}
        process = subprocess.Popen(
            [sys.executable, "manage.py", "migrate_all", "--processes=2", "--progress-every=0"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": database_url_for_tests(), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            lines = []
            while not any(line.startswith("  1/6") for line in lines):
                line = process.stdout.readline()
                assert line, "".join(lines)
                lines.append(line)
            process.send_signal(signal.SIGTERM)
            rest, _ = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        output = "".join(lines) + rest
        if process.returncode != 0:  # stopped before the last schema
            assert "Interrupted after " in output and "Run migrate_all again" in output
        behind, _missing = migrating.schemas_behind(schemas)
        for schema in schemas:
            if schema in behind:
                assert _history(schema) == behind_history[schema], schema
            else:
                assert has_column(schema, "stacks_stack", "registry_credentials"), schema

        output = _migrate_all()

        assert f" {len(behind)} behind" in output
        assert migrating.schemas_behind(schemas) == ([], [])


def test_it_names_an_organisation_whose_schema_is_missing(organizations):
    gone = organizations[0]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP SCHEMA "{gone}" CASCADE')

    with pytest.raises(CommandError) as refused:
        _migrate_all()

    assert f"{gone}: the schema does not exist" in str(refused.value)


def test_it_migrates_the_template_first(live_db):
    template = settings.TENANT_BASE_SCHEMA
    _roll_back_stacks(template)

    output = _migrate_all()

    assert f"template {template}: " in output
    assert "migration(s) applied" in output
    assert has_column(template, "stacks_stack", "registry_credentials")
