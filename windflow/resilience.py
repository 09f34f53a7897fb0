"""Surviving a dependency's blip: which errors mean "PostgreSQL or Redis is away for a moment",
and retrying with backoff around them.

A PostgreSQL restart breaks every open (and pooled) connection; a Redis restart breaks every
client's socket. Both come back within seconds. Code that must not lose its work (a
deployment's record, the scheduler, the worker's bookkeeping) retries; a web request that
cannot wait answers 503 naming the dependency (windflow.middleware).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE = "database"
REDIS = "redis"

# Backoff between attempts: 0.2 s, doubled each time, at most MAX_DELAY.
FIRST_DELAY = 0.2
MAX_DELAY = 5.0


def dependency_of(exc: BaseException | None) -> str | None:
    """`database` or `redis` when `exc` (or what caused it) says that dependency is away,
    else None."""
    from django.db import InterfaceError, OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, (OperationalError, InterfaceError)):
            return DATABASE
        if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
            return REDIS
        module = type(exc).__module__ or ""
        if module.startswith(("psycopg", "psycopg_pool")) and type(exc).__name__ in (
            "OperationalError",
            "InterfaceError",
            "PoolTimeout",
        ):
            return DATABASE
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def discard_connection() -> None:
    """Drop this thread's database connection (it may be dead) so that the next query takes
    a fresh one from the pool; kept inside a transaction (the caller's to roll back)."""
    from django.db import connection

    if connection.in_atomic_block:
        return
    try:
        connection.close()
    except Exception:  # closing a broken connection may fail too; it is gone either way
        logger.debug("closing a broken connection failed", exc_info=True)
        connection.connection = None


def retry(
    fn: Callable[[], T],
    *,
    what: str,
    budget: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call `fn` until it returns, retrying a dependency error with backoff for at most
    `budget` seconds (then the last error is raised). Any other error is raised at once, as
    is a database error inside a transaction (the transaction is lost: its owner retries)."""
    from django.db import connection

    deadline = time.monotonic() + budget
    delay = FIRST_DELAY
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            dependency = dependency_of(exc)
            if dependency is None:
                raise
            if dependency == DATABASE and connection.in_atomic_block:
                raise
            if time.monotonic() + delay > deadline:
                logger.error("%s: %s still unavailable, giving up", what, dependency)
                raise
            logger.warning(
                "%s: %s unavailable (%s), retry %d in %.1f s",
                what,
                dependency,
                type(exc).__name__,
                attempt,
                delay,
            )
            if dependency == DATABASE:
                discard_connection()
            sleep(delay)
            delay = min(delay * 2, MAX_DELAY)


class Backoff:
    """For loops that must go on (the scheduler): `failed()` sleeps longer each time, up to
    `ceiling`; `succeeded()` starts over."""

    def __init__(self, first: float = FIRST_DELAY * 5, ceiling: float = 10.0):
        self.first, self.ceiling = first, ceiling
        self.delay = first

    def failed(self, sleep: Callable[[float], None] = time.sleep) -> float:
        waited = self.delay
        sleep(waited)
        self.delay = min(self.delay * 2, self.ceiling)
        return waited

    def succeeded(self) -> None:
        self.delay = self.first
