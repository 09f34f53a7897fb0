"""Helpers for tests that need committed data (a real worker, websockets, a live server):
they create their own organisation and people, and remove them afterwards."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from django.db import connection

from devtools import free_port


@dataclass
class LiveWorld:
    organization: object
    owner: object
    others: list = field(default_factory=list)


@contextmanager
def live_organization(*, members=()):
    """A committed organisation `live-<random>` with an owner and extra members
    ((key, role) pairs), deleted with its schema on exit. Use with the `live_db` fixture."""
    from apps.accounts.models import Membership, User
    from apps.tenants.services import create_organization, delete_organization

    suffix = secrets.token_hex(3)
    owner = User.objects.create_user(f"owner-{suffix}@live.test", "pw-live-123456")
    organization = create_organization(name=f"Live {suffix}", slug=f"live-{suffix}", owner=owner)
    assign_test_engine(organization)
    others = []
    for key, role in members:
        user = User.objects.create_user(f"{key}-{suffix}@live.test", "pw-live-123456")
        Membership.objects.create(user=user, organization=organization, role=role)
        others.append(user)
    try:
        yield LiveWorld(organization, owner, others)
    finally:
        connection.set_schema_to_public()
        delete_organization(organization)
        User.objects.filter(email__endswith=f"-{suffix}@live.test").delete()


def assign_test_engine(organization) -> None:
    """Platform staff give `organisation` the test Docker engine (tests.base.TEST_ENGINE), so
    that its `local` servers connect. The assignment goes with the organisation."""
    from apps.tenants.models import LocalEngine
    from tests.base import TEST_ENGINE

    LocalEngine.objects.get(name=TEST_ENGINE).organizations.add(organization)


def session_cookie_for(user) -> str:
    """A real signed-in session (in Redis) for `user`, as a Cookie header value."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def database_url_for_tests() -> str:
    """The DATABASE_URL of this run, pointing at pytest-django's test database (for the
    servers and workers a test starts as processes)."""
    import os
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path=f"/{connection.settings_dict['NAME']}"))


@contextmanager
def worker_process(threads: int = 4, scheduler: bool = False):
    """A real worker process (`manage.py run_worker`, as in the Procfile) on the test
    database and Redis, with the scheduler's thread if `scheduler` (as in production); killed
    (the whole process group) on exit. Yields the Popen."""
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="windflow.settings.test",
        DATABASE_URL=database_url_for_tests(),
        WINDFLOW_SCHEDULER="worker" if scheduler else "separate",
    )
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "--threads", str(threads)],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@dataclass
class LiveData:
    """Committed-data access for a test, and the list of what to delete after it."""

    organization_slugs: list[str] = field(default_factory=list)
    user_emails: list[str] = field(default_factory=list)

    def track_organization(self, slug: str) -> None:
        """Delete this organisation (and its schema) after the test, if it exists then."""
        self.organization_slugs.append(slug)

    def track_user(self, email: str) -> None:
        """Delete this user after the test, if it exists then."""
        self.user_emails.append(email)

    def create_user(self, email: str, password: str, **extra):
        from apps.accounts.models import User

        self.track_user(email)
        return User.objects.create_user(email, password, **extra)

    def cleanup(self) -> None:
        from django.db import connection

        from apps.accounts.models import User
        from apps.tenants.models import Organization
        from apps.tenants.services import delete_organization

        connection.set_schema_to_public()
        for organization in Organization.objects.filter(slug__in=self.organization_slugs):
            delete_organization(organization)
        User.objects.filter(email__in=self.user_emails).delete()


def close_connections() -> None:
    """While Playwright's loop runs, Django keeps this thread's connections per asyncio
    context rather than per thread: close them, or they outlive the test run and PostgreSQL
    refuses to drop the test database."""
    from django.db import connections

    connections.close_all()


# --- A live ASGI server ------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
STARTUP_SECONDS = 30


@dataclass
class LiveServer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        """The public host's URL (browsers resolve *.localhost by themselves)."""
        return f"http://localhost:{self.port}"

    @property
    def loopback_url(self) -> str:
        """Where to connect from Python clients; name the organisation with a Host header."""
        return f"http://127.0.0.1:{self.port}"

    def org_url(self, slug: str, path: str = "/") -> str:
        return f"http://{slug}.localhost:{self.port}{path}"

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
        f"{server.loopback_url}/healthz", headers={"Host": server.host()}
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
    raise RuntimeError(f"no answer in {STARTUP_SECONDS}s:\n{server.log_tail()}")


@contextmanager
def live_server(log_dir: Path):
    """The Procfile's web process (gunicorn with one uvicorn worker, windflow.gunicorn) on
    the test database and Redis: it sees committed data only (use `live_db` and
    `live_organization`)."""
    port = free_port()
    log_path = log_dir / "web.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "windflow.settings.test",
        "DATABASE_URL": database_url_for_tests(),
        "REDIS_URL": os.environ["REDIS_URL"],
        "WINDFLOW_PUBLIC_URL": f"http://localhost:{port}",
        "PYTHONUNBUFFERED": "1",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:windflow.gunicorn"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the master and its worker end together
        )
    server = LiveServer(port, process, log_path)
    try:
        _wait_until_up(server)
        yield server
    finally:
        _end_group(process)


def _end_group(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # a worker still closing websockets
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
