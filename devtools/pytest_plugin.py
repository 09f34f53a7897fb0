"""Pytest plugin (loaded with `-p windflow.pytest_plugin`, before pytest-django reads the
settings): starts a throwaway PostgreSQL and Redis for the test run, unless DATABASE_URL and
REDIS_URL are already set."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def _start_services() -> None:
    if os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL"):
        return
    from windflow.localservices import start_postgres, start_redis

    root = Path(tempfile.mkdtemp(prefix="windflow-test-"))
    postgres = start_postgres(root / "postgres", durable=False)
    redis = start_redis(root / "redis", durable=False)

    def stop():
        redis.stop()
        postgres.stop()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)
    os.environ["DATABASE_URL"] = postgres.url
    os.environ["REDIS_URL"] = redis.url


_start_services()
