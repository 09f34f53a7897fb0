"""windflow.resilience on real errors: a refused Redis connection, a refused PostgreSQL
connection, and an error that is not a dependency's."""

import pytest
import redis
from django.db import transaction

from windflow.resilience import DATABASE, REDIS, Backoff, dependency_of, retry


def dead_port() -> int:
    from devtools import free_port

    return free_port()


def refused_redis() -> redis.exceptions.ConnectionError:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    client = redis.Redis(port=dead_port(), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    with pytest.raises(redis.exceptions.ConnectionError) as caught:
        client.ping()
    return caught.value


def refused_postgres() -> Exception:
    """What Django raises when PostgreSQL refuses (its OperationalError, from psycopg's)."""
    import psycopg
    from django.db import OperationalError

    try:
        psycopg.connect(host="127.0.0.1", port=dead_port(), connect_timeout=2)
    except psycopg.OperationalError as exc:
        try:
            raise OperationalError(str(exc)) from exc
        except OperationalError as wrapped:
            return wrapped
    pytest.fail("nothing should listen on that port")


def test_it_names_the_dependency_behind_an_error(db):
    assert dependency_of(refused_redis()) == REDIS
    assert dependency_of(refused_postgres()) == DATABASE
    assert dependency_of(ValueError("a bug")) is None
    wrapped = RuntimeError("while publishing")
    wrapped.__cause__ = refused_redis()
    assert dependency_of(wrapped) == REDIS


def test_it_retries_a_dependency_error_with_backoff_until_it_works():
    error = refused_redis()
    attempts, waits = [], []

    def flaky():
        attempts.append(1)
        if len(attempts) < 4:
            raise error
        return "done"

    assert retry(flaky, what="test", budget=60, sleep=waits.append) == "done"
    assert waits == [0.2, 0.4, 0.8]


def test_it_gives_up_after_its_budget_and_raises_the_last_error():
    error = refused_redis()
    waits = []

    def always():
        raise error

    with pytest.raises(redis.exceptions.ConnectionError):
        retry(always, what="test", budget=0.5, sleep=waits.append)
    assert waits == [0.2, 0.4]  # the next wait (0.8 s) would pass the budget


def test_it_raises_any_other_error_at_once():
    waits = []

    def bug():
        raise ValueError("a bug")

    with pytest.raises(ValueError):
        retry(bug, what="test", budget=60, sleep=waits.append)
    assert waits == []


def test_it_leaves_a_database_error_inside_a_transaction_to_its_owner(db):
    error = refused_postgres()
    waits = []

    def in_transaction():
        raise error

    with transaction.atomic(), pytest.raises(type(error)):
        retry(in_transaction, what="test", budget=60, sleep=waits.append)
    assert waits == []


def test_it_backs_off_longer_each_time_up_to_a_ceiling():
    waits = []
    backoff = Backoff(first=1, ceiling=5)
    for _ in range(5):
        backoff.failed(sleep=waits.append)
    backoff.succeeded()
    backoff.failed(sleep=waits.append)
    assert waits == [1, 2, 4, 5, 5, 1]
