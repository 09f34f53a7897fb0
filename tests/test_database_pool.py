"""Pooled PostgreSQL connections: one the server closed is never handed out, and the check
that finds it out costs no query while the connection is quiet (windflow.db.postgresql)."""

import time

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from windflow.db.postgresql.base import check_pooled_connection, schemas_visited


def raw_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(autocommit=True, **params)


def terminate(pid: int) -> None:
    with raw_connection() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def wait_until_readable(conn, timeout: float = 10) -> None:
    import select

    deadline = time.monotonic() + timeout
    while not select.select([conn.fileno()], [], [], 0.1)[0]:
        assert time.monotonic() < deadline, "the server never hung up"


def last_query_of(pid: int) -> str:
    with raw_connection() as admin:
        row = admin.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
    return row[0]


def test_it_passes_a_live_connection_without_a_query(db):
    with raw_connection() as conn:
        conn.execute("SELECT 'the last query'")
        pid = conn.info.backend_pid
        check_pooled_connection(conn)
        check_pooled_connection(conn)
        assert last_query_of(pid) == "SELECT 'the last query'"
        # The control: psycopg_pool's own check sends a query, which the server records.
        ConnectionPool.check_connection(conn)
        assert last_query_of(pid) == ""


def test_it_refuses_a_connection_the_server_closed(db):
    conn = raw_connection()
    try:
        terminate(conn.info.backend_pid)
        wait_until_readable(conn)
        with pytest.raises(psycopg.OperationalError):
            check_pooled_connection(conn)
    finally:
        conn.close()


def test_it_refuses_a_connection_already_known_closed(db):
    conn = raw_connection()
    conn.close()
    with pytest.raises(psycopg.OperationalError):
        check_pooled_connection(conn)


def test_it_hands_out_a_new_connection_when_the_pooled_one_was_terminated(live_db):
    assert connection.pool is not None, "the settings pool connections"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        first = cursor.fetchone()[0]
    pooled = connection.connection
    connection.close()  # back into the pool, still open
    assert not pooled.closed
    terminate(first)
    wait_until_readable(pooled)

    with connection.cursor() as cursor:  # no OperationalError: the dead one was replaced
        cursor.execute("SELECT pg_backend_pid()")
        second = cursor.fetchone()[0]
    assert second != first
    connection.close()


def backend_alive(pid: int, timeout: float = 10) -> bool:
    """Whether PostgreSQL still has backend `pid`, waiting (up to `timeout`) for one whose
    client has hung up to exit."""
    deadline = time.monotonic() + timeout
    while True:
        with raw_connection() as admin:
            alive = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()
        if not alive or time.monotonic() > deadline:
            return bool(alive)
        time.sleep(0.05)


def visit(organizations) -> int:
    """One query in each organisation's schema on this thread's connection: its backend pid."""
    for organization in organizations:
        connection.set_tenant(organization)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM environments_environment")
    connection.set_schema_to_public()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def two_organizations():
    from apps.tenants.models import Organization

    return list(Organization.objects.filter(slug__in=["acme", "globex"]))


def test_it_replaces_a_connection_that_visited_more_schemas_than_allowed(live_db, settings):
    settings.WINDFLOW_DB_SCHEMAS_PER_CONNECTION = 2
    organizations = two_organizations()
    connection.close()
    pid = visit(organizations)  # acme, globex and public: 3 schemas
    connection.close()  # the end of a request or job
    assert not backend_alive(pid, timeout=10), "the pool closed the worn-out connection"
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != pid
    connection.close()


def test_it_keeps_a_connection_that_visited_few_schemas(live_db, settings):
    organizations = two_organizations()
    connection.close()
    connection.ensure_connection()  # a pooled connection may have visited schemas already
    already = len(schemas_visited(connection.connection))
    settings.WINDFLOW_DB_SCHEMAS_PER_CONNECTION = already + 3
    pid = visit(organizations)
    pooled = connection.connection
    connection.close()
    assert backend_alive(pid, timeout=0)
    assert not pooled.closed
    assert pooled in connection.pool._pool  # back in the pool, to be handed out again


def test_it_closes_a_connection_retired_by_a_job(live_db):
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    connection.retire_on_close()
    connection.close()
    assert not backend_alive(pid, timeout=10)


def test_it_replaces_the_connection_of_a_job_visiting_every_organisation(live_db, settings):
    """The scheduler's reaper visits every schema on one connection: it takes a fresh one
    as soon as the limit is passed, not only at the end of its pass."""
    from windflow.scheduler import reap_in_every_organization

    settings.WINDFLOW_DB_SCHEMAS_PER_CONNECTION = 1
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        first = cursor.fetchone()[0]
    reap_in_every_organization()
    assert not backend_alive(first, timeout=10)
    connection.close()
