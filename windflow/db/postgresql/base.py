"""django-tenants' PostgreSQL backend, whose connection pool checks a connection before
handing it out without a round trip to the server when it can, and retires a connection that
has visited many schemas.

Django's CONN_HEALTH_CHECKS makes psycopg_pool run an empty query at every checkout: one
round trip per request, about 2 ms of the API's time per request. Yet a pooled connection
the server has closed (a restart, an idle timeout, pg_terminate_backend) says so on its
socket: PostgreSQL sends its last message and closes, and the idle socket turns readable.
So: a socket with nothing to read is alive; a readable one (the server hung up, or left a
notice) gets the full check, which replaces it if it is dead.
"""

import select

from django.conf import settings
from django_tenants.postgresql_backend.base import DatabaseWrapper as TenantDatabaseWrapper
from psycopg_pool import ConnectionPool


def check_pooled_connection(conn) -> None:
    """Raise (as ConnectionPool.check_connection does) if `conn` is dead; quietly return
    if it is alive."""
    if conn.closed or conn.broken:
        ConnectionPool.check_connection(conn)  # raises OperationalError
        return
    readable, _, _ = select.select([conn.fileno()], [], [], 0)
    if readable:
        ConnectionPool.check_connection(conn)


def schemas_visited(conn) -> set[str]:
    """The schemas `conn` (a psycopg connection) has had on its search_path."""
    visited = getattr(conn, "_windflow_schemas", None)
    if visited is None:
        visited = conn._windflow_schemas = set()
    return visited


def expire(conn) -> None:
    """Have the pool close `conn` when it comes back (and open a fresh one in its place),
    as it does with a connection past its max_lifetime; a connection outside any pool is
    closed now."""
    if getattr(conn, "_pool", None) is not None and hasattr(conn, "_expire_at"):
        conn._expire_at = 0.0
    else:
        conn.close()


class DatabaseWrapper(TenantDatabaseWrapper):
    """A PostgreSQL backend keeps what it learns about each schema's tables (catalog and
    plan caches) for the life of the connection: one that visits thousands of schemas grows
    to gigabytes. So a connection that has had WINDFLOW_DB_SCHEMAS_PER_CONNECTION distinct
    schemas on its search_path is closed instead of going back to the pool (at the end of
    the request, job or scheduler tick that used it), and the pool opens a fresh one. The
    pool's max_lifetime (DATABASE_POOL_MAX_LIFETIME) bounds the rest."""

    def _handle_search_path(self, cursor=None):
        before = self.search_path_set_schemas
        super()._handle_search_path(cursor)
        issued = self.search_path_set_schemas
        if issued is not None and issued is not before and self.connection is not None:
            schemas_visited(self.connection).add(self.schema_name)

    def retire_on_close(self) -> None:
        """Close this connection (instead of pooling it) when it is next closed: e.g. after
        a job that created many tables."""
        if self.connection is not None:
            self.connection._windflow_retire = True

    def worn_out(self) -> bool:
        conn = self.connection
        if conn is None:
            return False
        limit = settings.WINDFLOW_DB_SCHEMAS_PER_CONNECTION
        return getattr(conn, "_windflow_retire", False) or (
            limit > 0 and len(schemas_visited(conn)) > limit
        )

    def release_if_worn_out(self) -> None:
        """For a job that visits schema after schema on one connection (outside a
        transaction): once worn out, the connection is closed here and the next query takes
        a fresh one, rather than at the end of the job."""
        if self.worn_out() and not self.in_atomic_block:
            self.close()

    def close(self):
        if self.worn_out() and not self.in_atomic_block:
            expire(self.connection)
        super().close()

    def close_if_unusable_or_obsolete(self):
        if self.worn_out() and not self.in_atomic_block:  # persistent connections too
            self.close()
            return
        super().close_if_unusable_or_obsolete()

    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with check=ConnectionPool.check_connection when
        # CONN_HEALTH_CHECKS is on: swap in the cheap check (psycopg_pool keeps it in _check).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_pooled_connection
        return pool
