"""Provisioning from the pool of spare schemas (apps.tenants.spares) and the clone of the
template they are made with (apps.tenants.cloning)."""

import logging
import threading

import pytest
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django_tenants.utils import schema_exists

from apps.tenants import services, spares
from apps.tenants.cloning import clone_template, template_state
from apps.tenants.models import Domain, Organization, SpareSchema
from apps.tenants.tasks import refill_spare_schemas

TEMPLATE = settings.TENANT_BASE_SCHEMA


def structure(schema: str) -> dict:
    """Everything a migration may rely on in `schema`, with the schema's name taken out:
    columns, constraints, indexes and triggers under their names, and row counts."""

    def rows(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, [schema])
            return sorted(
                tuple(str(v).replace(f"{schema}.", "<schema>.") for v in row)
                for row in cursor.fetchall()
            )

    tables = rows(
        "SELECT relname FROM pg_class WHERE relnamespace = %s::regnamespace AND relkind = 'r'"
    )
    counts = {}
    with connection.cursor() as cursor:
        for (table,) in tables:
            cursor.execute(f'SELECT count(*) FROM "{schema}"."{table}"')  # noqa: S608
            counts[table] = cursor.fetchone()[0]
    return {
        "columns": rows(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,"
            " a.attidentity, pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE c.relnamespace = %s::regnamespace AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        "constraints": rows(
            "SELECT r.relname, con.conname, pg_get_constraintdef(con.oid)"
            " FROM pg_constraint con JOIN pg_class r ON r.oid = con.conrelid"
            " WHERE r.relnamespace = %s::regnamespace"
        ),
        "indexes": rows("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s::text"),
        "triggers": rows(
            "SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t"
            " JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = %s::regnamespace AND NOT t.tgisinternal"
        ),
        "sequences": rows(
            "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s::text"
        ),
        "rows": counts,
    }


@pytest.fixture
def pool(settings, db):
    settings.WINDFLOW_SPARE_SCHEMAS = 2
    return settings


def spare_names() -> list[str]:
    return list(SpareSchema.objects.values_list("schema_name", flat=True))


def test_it_clones_the_template_exactly(db):
    clone_template("clone_probe")
    template = structure(TEMPLATE)
    assert template["rows"]["django_migrations"] > 0
    assert template["triggers"], "the template has the audit trail's triggers"
    assert structure("clone_probe") == template
    connection.set_schema_to_public()


def test_it_signs_up_with_a_spare_schema_renamed(pool, owner):
    assert spares.refill() == 2
    first, second = spare_names()
    organization = services.create_organization(name="Initech", slug="initech", owner=owner)
    assert not schema_exists(first), "the oldest spare became the organisation's schema"
    assert schema_exists(organization.schema_name)
    assert spare_names() == [second]
    assert structure(organization.schema_name)["columns"] == structure(TEMPLATE)["columns"]
    assert spares.refill() == 1  # the job refills the pool
    assert len(spare_names()) == 2


def test_it_falls_back_to_cloning_and_says_so_when_the_pool_is_empty(pool, owner, caplog):
    with caplog.at_level(logging.WARNING, logger="apps.tenants.services"):
        organization = services.create_organization(name="Initech", slug="initech", owner=owner)
    assert schema_exists(organization.schema_name)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("WINDFLOW_SPARE_SCHEMAS=2" in message for message in warnings), warnings


def test_it_clones_quietly_when_the_pool_is_off(settings, owner, caplog):
    settings.WINDFLOW_SPARE_SCHEMAS = 0
    with caplog.at_level(logging.INFO, logger="apps.tenants"):
        services.create_organization(name="Initech", slug="initech", owner=owner)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert spares.refill() == 0
    assert spare_names() == []


def test_it_never_hands_out_a_spare_cloned_before_a_template_migration(pool, owner, caplog):
    spares.refill()
    stale = spare_names()
    with connection.cursor() as cursor:  # the template gains a migration (as migrate_all does)
        cursor.execute(
            f'INSERT INTO "{TEMPLATE}".django_migrations (app, name, applied)'  # noqa: S608
            " VALUES ('stacks', '9999_new_column', now())"
        )
    organization = services.create_organization(name="Initech", slug="initech", owner=owner)
    assert all(schema_exists(name) for name in stale), "no stale spare was renamed"
    assert "WINDFLOW_SPARE_SCHEMAS" in caplog.text  # it cloned from the migrated template
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT count(*) FROM "{organization.schema_name}".django_migrations'  # noqa: S608
            " WHERE name = '9999_new_column'"
        )
        assert cursor.fetchone()[0] == 1

    assert spares.refill() == 2  # the stale ones dropped, fresh ones cloned
    assert not any(schema_exists(name) for name in stale)
    assert set(SpareSchema.objects.values_list("template_state", flat=True)) == {template_state()}


def test_it_leaves_no_schema_or_row_when_a_sign_up_with_a_spare_fails(pool, owner, acme):
    spares.refill()
    before = spare_names()
    Domain.objects.create(domain="initech.localhost", tenant=acme)  # the sign-up will collide
    with pytest.raises(IntegrityError):
        services.create_organization(name="Initech", slug="initech", owner=owner)
    assert not Organization.objects.filter(slug="initech").exists()
    assert not schema_exists("initech")
    assert spare_names() == before, "the spare taken is a spare again"
    assert all(schema_exists(name) for name in before)


def test_it_leaves_no_schema_or_row_when_a_cloning_sign_up_fails(pool, owner, acme):
    Domain.objects.create(domain="initech.localhost", tenant=acme)
    with pytest.raises(IntegrityError):
        services.create_organization(name="Initech", slug="initech", owner=owner)
    assert not Organization.objects.filter(slug="initech").exists()
    assert not schema_exists("initech")


def test_it_refuses_a_schema_left_behind_with_a_clear_error(pool, owner):
    with connection.cursor() as cursor:
        cursor.execute('CREATE SCHEMA "initech"')
    with pytest.raises(Exception, match="A schema named initech exists already"):
        services.create_organization(name="Initech", slug="initech", owner=owner)
    assert not Organization.objects.filter(slug="initech").exists()


def test_it_drops_the_spares_beyond_the_pool_size(pool):
    spares.refill()
    extra = spare_names()
    assert spares.refill(size=0) == 0
    assert spare_names() == []
    assert not any(schema_exists(name) for name in extra)


# ------------------------------------------------------------------ committed, threads


@pytest.fixture
def live_pool(settings, live_db):
    settings.WINDFLOW_SPARE_SCHEMAS = 2
    yield live_db
    connection.set_schema_to_public()
    spares.refill(size=0)


def test_it_refills_the_pool_with_the_scheduled_job(live_pool):
    user = live_pool.create_user("spare-job@live.test", "pw-live-123456")
    live_pool.track_organization("spare-job")
    refill_spare_schemas()  # the actor's body, as a worker runs it
    assert len(spare_names()) == 2
    taken = spare_names()[0]
    services.create_organization(name="Spare job", slug="spare-job", owner=user)
    assert not schema_exists(taken)
    assert len(spare_names()) == 1
    refill_spare_schemas()
    assert len(spare_names()) == 2


def test_it_gives_two_sign_ups_at_once_different_spares(live_pool):
    """The first sign-up holds its spare's row locked until it commits; the second one,
    meanwhile, skips that row and takes the other spare (it neither waits nor clones)."""
    spares.refill()
    assert len(spare_names()) == 2
    first_took = threading.Event()
    second_done = threading.Event()
    taken = {}

    def sign_up(key, before=None, after=None):
        try:
            if before is not None:
                before.wait(30)
            with transaction.atomic():
                taken[key] = spares.take_spare(f"concurrent_{key}")
                if after is not None:
                    after.set()
                    second_done.wait(30)  # still holding the row lock
        finally:
            connection.close()

    first = threading.Thread(target=sign_up, args=("a",), kwargs={"after": first_took})
    second = threading.Thread(target=sign_up, args=("b",), kwargs={"before": first_took})
    first.start()
    second.start()
    second.join(60)
    second_done.set()
    first.join(60)
    try:
        assert taken["a"] and taken["b"], taken
        assert taken["a"] != taken["b"]
        assert spare_names() == []
        assert schema_exists("concurrent_a") and schema_exists("concurrent_b")
    finally:
        with connection.cursor() as cursor:
            cursor.execute('DROP SCHEMA IF EXISTS "concurrent_a", "concurrent_b" CASCADE')
