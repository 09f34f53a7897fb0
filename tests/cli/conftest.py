"""The `windflow` command as a user runs it: the console script of this checkout, in a
subprocess with its own config folder, against a live WindFlow (web process + worker)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import live_server

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(sys.executable).with_name("windflow")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self):
        return json.loads(self.stdout)


class Running:
    """A `windflow` command still running: read its output as it comes."""

    def __init__(self, process: subprocess.Popen):
        self.process = process
        self.seen = ""

    def wait_for(self, text: str, timeout: float = 60) -> None:
        """Read stderr (messages) line by line until `text` shows (no sleep)."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"never printed {text!r}: {self.seen!r}")
            self.seen += self.process.stderr.readline()

    def finish(self, timeout: float = 60) -> Run:
        stdout, stderr = self.process.communicate(timeout=timeout)
        return Run(self.process.returncode, stdout, self.seen + stderr)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.communicate()


@pytest.fixture
def windflow(tmp_path):
    """windflow(*args, env={...}) -> Run. The config folder is the test's own; the script
    imports this checkout's code (PYTHONPATH)."""
    home = tmp_path / "home"
    home.mkdir()

    def environment(env):
        full_env = {
            key: value for key, value in os.environ.items() if not key.startswith("WINDFLOW_")
        }
        full_env.update(
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            PYTHONPATH=str(ROOT),
            COLUMNS="200",
            **(env or {}),
        )
        return full_env

    def run(*args, env=None, input=None, timeout=180):
        done = subprocess.run(
            [str(SCRIPT), *args],
            cwd=tmp_path,
            env=environment(env),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Run(done.returncode, done.stdout, done.stderr)

    def start(*args, env=None):
        process = subprocess.Popen(
            [str(SCRIPT), *args],
            cwd=tmp_path,
            env={**environment(env), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Running(process)

    run.config_file = home / ".config" / "windflow" / "config.json"
    run.start = start
    return run


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):
    """The web process on the test database (committed data only)."""
    with live_server(tmp_path_factory.mktemp("cli-web")) as server:
        yield server


@dataclass
class Org:
    organization: object
    membership: object
    token: str
    url: str  # the server's URL, without the organisation
    slug: str

    @property
    def env(self) -> dict:
        return {"WINDFLOW_URL": self.url, "WINDFLOW_ORG": self.slug, "WINDFLOW_TOKEN": self.token}


@pytest.fixture
def org(live_db, web):
    """A committed organisation (removed after the test) with the test engine, a write API
    token of its owner, environment `staging` and `local` server web-1."""
    from django.db import connection

    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token
    from apps.environments.models import Environment
    from apps.targets import services as targets
    from apps.tenants.services import create_organization
    from tests.live import assign_test_engine

    suffix = secrets.token_hex(3)
    owner = live_db.create_user(f"owner-{suffix}@cli.test", "pw-live-123456")
    live_db.track_organization(f"cli-{suffix}")
    organization = create_organization(name=f"Cli {suffix}", slug=f"cli-{suffix}", owner=owner)
    assign_test_engine(organization)
    connection.set_tenant(organization)
    try:
        membership = Membership.objects.get(user=owner, organization=organization)
        _token, secret = create_api_token(membership, name="cli", scope="write")
        Environment.objects.create(name="staging", slug="staging")
        targets.create_target(membership, name="web-1", kind="local")
    finally:
        connection.set_schema_to_public()
    return Org(organization, membership, secret, web.url, organization.slug)
