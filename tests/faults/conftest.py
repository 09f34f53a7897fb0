"""The fault instance: its own PostgreSQL and Redis (so that restarting them touches nothing else
of the test run), its world, and its web and worker processes (the scheduler runs on a thread of
the worker). Module scope: the scenarios of tests/faults/test_faults.py share it; everything it
made is removed after."""

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from .instance import Instance, wait_for

PREFIX = f"faults-{secrets.token_hex(3)}"


def two_services(test_images) -> str:
    """db healthy after about 3 s, then app (which waits for it) after about 6 s: long enough
    to break something in the middle, with log lines before and after."""
    busybox = test_images["busybox:1"]
    return f"""
services:
  db:
    image: {busybox}
    command: ["sh", "-c", "sleep 3; touch /tmp/ready; sleep 3600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ready"], interval: 1s, retries: 60}}
  app:
    image: {busybox}
    command: ["sh", "-c", "sleep 6; touch /tmp/ready; sleep 3600"]
    depends_on: {{db: {{condition: service_healthy}}}}
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ready"], interval: 1s, retries: 60}}
"""


SCENARIOS = ("worker", "redis", "redis-queued", "postgres")


def project(scenario: str) -> str:
    """A stack's name is its compose project: run-scoped, so that nothing else is touched."""
    return f"{PREFIX}-{scenario}"


@pytest.fixture(scope="module")
def fault_instance(test_images):
    from devtools import (
        free_port,
        remove_compose_project,
        start_postgres,
        start_redis,
        tests_engine_socket,
    )

    root = Path(tempfile.mkdtemp(prefix="windflow-faults-"))
    postgres = start_postgres(root / "postgres", durable=False)
    instance = None
    try:
        redis = start_redis(root / "redis", durable=False)
        instance = Instance(root=root, postgres=postgres, redis=redis, port=free_port())
        stacks = {project(name): two_services(test_images) for name in SCENARIOS}
        instance.build_world(PREFIX, stacks, tests_engine_socket())
        for name in ("web", "worker"):
            instance.start(name)
        assert wait_for(instance.serving, timeout=60), instance.tail()
        yield instance
    finally:
        if instance is not None:
            instance.stop_all()
            instance.redis.stop()
            instance.postgres.stop()
        else:
            postgres.stop()
        for name in SCENARIOS:
            remove_compose_project(project(name))
        shutil.rmtree(root, ignore_errors=True)
