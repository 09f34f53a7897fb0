"""A real ASGI server (uvicorn on windflow.asgi:application, as in the Procfile) on the test
database and Redis, for tests that talk HTTP to WindFlow from outside (schemathesis).

It sees committed data only: use it with `live_db` and tests.live.live_organization."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devtools import free_port
from tests.live import database_url_for_tests

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        """Base URL (connect here; name the organisation with a Host header)."""
        return f"http://127.0.0.1:{self.port}"

    def host(self, organization=None) -> str:
        """The Host header of an organisation's host (the public host when None)."""
        from tests.base import host_of

        return f"{host_of(organization)}:{self.port}"

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _wait_until_up(server: LiveServer) -> None:
    """/healthz answers 200, or 503 without a worker heartbeat: both mean serving."""
    deadline = time.monotonic() + STARTUP_SECONDS
    request = urllib.request.Request(  # noqa: S310 (http to loopback)
        f"{server.url}/healthz", headers={"Host": server.host()}
    )
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310 (loopback)
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"uvicorn did not answer in {STARTUP_SECONDS}s:\n{server.log_tail()}")


@contextmanager
def live_server(log_dir: Path):
    port = free_port()
    log_path = log_dir / "uvicorn.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "windflow.settings.test",
        "DATABASE_URL": database_url_for_tests(),
        "WINDFLOW_PUBLIC_URL": f"http://localhost:{port}",
        "PYTHONUNBUFFERED": "1",
    }
    uvicorn = Path(sys.executable).with_name("uvicorn")
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                *(str(uvicorn), "windflow.asgi:application", "--host", "127.0.0.1"),
                *("--port", str(port), "--log-level", "warning"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = LiveServer(port, process, log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
