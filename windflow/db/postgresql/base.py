"""django-tenants' PostgreSQL backend, whose connection pool checks a connection before
handing it out without a round trip to the server when it can.

Django's CONN_HEALTH_CHECKS makes psycopg_pool run an empty query at every checkout: one
round trip per request, about 2 ms of the API's time per request. Yet a pooled connection
the server has closed (a restart, an idle timeout, pg_terminate_backend) says so on its
socket: PostgreSQL sends its last message and closes, and the idle socket turns readable.
So: a socket with nothing to read is alive; a readable one (the server hung up, or left a
notice) gets the full check, which replaces it if it is dead.
"""

import select

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


class DatabaseWrapper(TenantDatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        # Django builds the pool with check=ConnectionPool.check_connection when
        # CONN_HEALTH_CHECKS is on: swap in the cheap check (psycopg_pool keeps it in _check).
        if pool is not None and pool._check is ConnectionPool.check_connection:
            pool._check = check_pooled_connection
        return pool
