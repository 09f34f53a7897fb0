"""Pytest plugin (loaded with `-p devtools.pytest_plugin`, before pytest-django reads the
settings): the test run's own servers, in one temporary directory that is removed at the end.

- PostgreSQL and Redis, started now (unless DATABASE_URL and REDIS_URL are set);
- a private Docker engine (root), started by the first test that needs one
  (``ensure_docker_engine``) with its socket, data root and containers in that directory,
  so that the tests never see, and never remove, what runs on the machine's own engine.
  DOCKER_HOST points at it for the whole run (docker SDK and CLI), and the test settings
  allow only that socket. ``WINDFLOW_TEST_DOCKER_SOCKET=/path/to.sock`` gives the tests an
  engine of your choosing instead (for a run without root).

A failed start stops what was already started before the error reaches pytest.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def _start_services() -> None:
    from devtools.base import ServiceStack
    from devtools.dockerd import TEST_DOCKER_DIR, TEST_DOCKER_SOCKET, Dockerd, remove_private_engine

    root = Path(tempfile.mkdtemp(prefix="windflow-test-"))
    os.chmod(root, 0o711)  # noqa: S103 - search only: the sshd's users reach the engine socket
    stack = ServiceStack()
    try:
        with stack.starting():
            if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
                from devtools.postgres import start_postgres
                from devtools.redis_server import start_redis

                postgres = stack.start(start_postgres, root / "postgres", durable=False)
                redis = stack.start(start_redis, root / "redis", durable=False)
                os.environ["DATABASE_URL"] = postgres.url
                os.environ["REDIS_URL"] = redis.url
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

    engine = None
    if os.environ.get(TEST_DOCKER_SOCKET):
        os.environ["DOCKER_HOST"] = f"unix://{os.environ[TEST_DOCKER_SOCKET]}"
    else:
        engine = Dockerd(root / "docker")
        os.environ[TEST_DOCKER_DIR] = str(engine.data_dir)
        os.environ["DOCKER_HOST"] = engine.url

    def stop() -> None:
        if engine is not None:
            remove_private_engine(engine)  # a no-op when no test needed it
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(stop)


_start_services()
