"""devtools starts real, private PostgreSQL and Redis servers.

No Django database here: these tests start their own servers in tmp dirs.
"""

import socket
import time

import psycopg
import pytest
import redis

from devtools import (
    DevServiceError,
    ServiceStack,
    free_port,
    port_is_free,
    redis_ping,
    start_postgres,
    start_redis,
)


@pytest.fixture
def busy_port():
    """A port on 127.0.0.1 held by a listening socket that never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_it_finds_a_free_port():
    port = free_port()

    assert 1024 < port < 65536
    assert port_is_free(port)


def test_it_starts_postgres_and_keeps_the_data_across_restarts(tmp_path):
    data_dir = tmp_path / "pg"
    pg = start_postgres(data_dir, durable=False)
    try:
        assert pg.started
        assert pg.url == f"postgres://postgres@127.0.0.1:{pg.port}/windflow"
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")

        again = start_postgres(data_dir, durable=False)
        assert (again.started, again.port) == (False, pg.port)  # running: reused

        pg.stop()
        assert not pg.is_running()
        assert port_is_free(pg.port)

        pg = start_postgres(data_dir, durable=False)
        assert pg.started
        with psycopg.connect(pg.url) as conn:
            rows = conn.execute("SELECT value FROM kept").fetchall()
        assert rows == [("still here",)]
    finally:
        pg.stop()


def test_it_starts_redis_that_answers_and_stops(tmp_path):
    server = start_redis(tmp_path / "redis", durable=False)
    try:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url, socket_timeout=2)
        assert client.ping()
        client.set("greeting", "hello")
        assert client.get("greeting") == b"hello"
        assert client.config_get("save") == {"save": ""}

        assert start_redis(tmp_path / "redis", durable=False).started is False
        client.close()
    finally:
        server.stop()

    assert not server.is_running()
    assert not redis_ping(server.port)
    assert port_is_free(server.port)


def test_it_refuses_a_busy_port_quickly_for_postgres(tmp_path, busy_port):
    began = time.monotonic()

    with pytest.raises(DevServiceError, match=f"port {busy_port} .* already in use"):
        start_postgres(tmp_path / "pg", port=busy_port, durable=False)

    assert time.monotonic() - began < 2
    assert not (tmp_path / "pg").exists()  # failed before initdb


def test_it_refuses_a_busy_port_quickly_for_redis(tmp_path, busy_port):
    began = time.monotonic()

    with pytest.raises(DevServiceError, match=f"port {busy_port} .* already in use"):
        start_redis(tmp_path / "redis", port=busy_port, durable=False)

    assert time.monotonic() - began < 2


def test_it_refuses_to_initialise_postgres_over_foreign_files(tmp_path):
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "notes.txt").write_text("mine")

    with pytest.raises(DevServiceError, match="not empty and holds no PostgreSQL cluster"):
        start_postgres(tmp_path / "pg", durable=False)


def test_it_stops_postgres_when_redis_then_fails_to_start(tmp_path, busy_port):
    """A failed start stops what it had started: no PostgreSQL left behind by a Redis that
    could not start (what `make test` and `make run` do through ServiceStack)."""
    stack = ServiceStack()
    with pytest.raises(DevServiceError, match="already in use"), stack.starting():
        pg = stack.start(start_postgres, tmp_path / "pg", durable=False)
        assert pg.is_running()
        stack.start(start_redis, tmp_path / "redis", port=busy_port, durable=False)

    assert not pg.is_running()
    assert port_is_free(pg.port)
    assert stack.services == []


def test_it_leaves_alone_a_server_it_found_running(tmp_path):
    """A server that was already running (reused, not started) is not stopped with the stack."""
    rd = start_redis(tmp_path / "redis", durable=False)
    try:
        stack = ServiceStack()
        with stack.starting():
            again = stack.start(start_redis, tmp_path / "redis", durable=False)
        assert again.started is False
        stack.stop()
        assert redis_ping(rd.port)
    finally:
        rd.stop()
