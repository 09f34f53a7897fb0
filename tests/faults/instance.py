"""A whole WindFlow instance for fault tests: its own PostgreSQL and Redis (started through
devtools, restartable at will), and the Procfile processes (web, and the worker with its
scheduler thread) as real processes on them. Nothing here is shared with the rest of the test
run: the test run's own PostgreSQL and Redis are never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

ROOT = Path(__file__).resolve().parents[2]
PROCESS_COMMANDS = {
    "web": lambda port: [sys.executable, "-m", "gunicorn", "-c", "python:windflow.gunicorn"],
    "worker": lambda port: [
        sys.executable,
        "manage.py",
        "run_worker",
        "--threads",
        "4",
    ],
}


def wait_for(predicate, timeout: float, step: float = 0.2):
    """The first true value `predicate()` returns within `timeout` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(step)


@dataclass
class Instance:
    root: Path
    postgres: object
    redis: object
    port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    world: dict = field(default_factory=dict)

    # --- environment and processes -------------------------------------------------------

    @property
    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            DJANGO_SETTINGS_MODULE="windflow.settings.test",
            DATABASE_URL=self.postgres.url,
            REDIS_URL=self.redis.url,
            PYTHONUNBUFFERED="1",
            HOST="127.0.0.1",
            PORT=str(self.port),
            WEB_CONCURRENCY="1",
            WINDFLOW_SCHEDULER="worker",  # as the Procfile runs it: on a thread of the worker
        )

    def log_of(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self, name: str) -> subprocess.Popen:
        log = open(self.log_of(name), "ab")  # noqa: SIM115 - the child keeps it
        process = subprocess.Popen(
            PROCESS_COMMANDS[name](self.port),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = process
        return process

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group: no goodbye, no clean-up."""
        process = self.processes[name]
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def alive(self) -> dict[str, bool]:
        return {name: process.poll() is None for name, process in self.processes.items()}

    def tail(self, lines: int = 40) -> str:
        out = []
        for name in self.processes:
            text = self.log_of(name).read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.kill(name)

    # --- dependencies --------------------------------------------------------------------

    def restart_redis(self, down_seconds: float) -> None:
        from devtools import start_redis

        port = self.redis.port
        self.redis.stop()
        time.sleep(down_seconds)
        self.redis = start_redis(self.root / "redis", port=port, durable=False)

    def restart_postgres(self, down_seconds: float) -> None:
        from devtools import start_postgres

        port = self.postgres.port
        self.postgres.stop()
        time.sleep(down_seconds)
        self.postgres = start_postgres(self.root / "postgres", port=port, durable=False)

    # --- the world and its records -------------------------------------------------------

    def build_world(self, prefix: str, stacks: dict[str, str], socket_path: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "tests.faults.world"],
            cwd=ROOT,
            env=self.env,
            input=json.dumps({"prefix": prefix, "stacks": stacks, "socket": socket_path}),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-4000:]
        self.world = json.loads(result.stdout.strip().splitlines()[-1])
        return self.world

    def sql(self, query: str, params=()) -> list[tuple]:
        """Read the organisation's tables (its schema first on the search path)."""
        with psycopg.connect(self.postgres.url, connect_timeout=5, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.world["schema"]}", public')
            return conn.execute(query, params).fetchall()

    def deployment(self, pk: int) -> dict:
        row = self.sql(
            "SELECT status, reason, diagnosis, last_seq, started_at, finished_at"
            " FROM deployments_deployment WHERE id = %s",
            [pk],
        )[0]
        keys = ("status", "reason", "diagnosis", "last_seq", "started_at", "finished_at")
        return dict(zip(keys, row, strict=True))

    def lines(self, pk: int) -> list[tuple[int, str, str]]:
        return self.sql(
            "SELECT seq, service, message FROM deployments_deploymentlogline"
            " WHERE deployment_id = %s ORDER BY seq",
            [pk],
        )

    def services(self, pk: int) -> dict[str, str]:
        return dict(
            self.sql(
                "SELECT service, phase FROM deployments_deploymentservice WHERE deployment_id = %s",
                [pk],
            )
        )

    # --- HTTP --------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {
            "Host": self.world["host"],
            "Authorization": f"Bearer {self.world['token']}",
        }
        return requests.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def deploy(self, stack: str) -> int:
        response = self.api("POST", "/api/v1/deployments/", json={"stack": stack})
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def serving(self) -> bool:
        try:
            return requests.get(self.url("/healthz"), timeout=5).status_code in (200, 503)
        except requests.RequestException:
            return False


class Prober(threading.Thread):
    """Asks the instance, all along, what a load balancer, an API client and a visitor ask:
    /healthz, the deployments API and the sign-in page. Records every answer."""

    def __init__(self, instance: Instance):
        super().__init__(name="fault-prober", daemon=True)
        self.instance = instance
        self.answers: list[tuple[float, str, int, str]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        probes = [
            ("healthz", lambda: requests.get(self.instance.url("/healthz"), timeout=15)),
            ("api", lambda: self.instance.api("GET", "/api/v1/deployments/")),
            (
                "signin",
                lambda: requests.get(
                    self.instance.url("/accounts/login/"),
                    headers={"Host": self.instance.world["host"]},
                    timeout=15,
                ),
            ),
        ]
        # One loop per probe: a request that waits on a dependency (the API while the
        # database is away) must not keep /healthz from being asked meanwhile.
        loops = [
            threading.Thread(target=self.ask, args=(name, probe), name=f"probe-{name}", daemon=True)
            for name, probe in probes
        ]
        for loop in loops:
            loop.start()
        for loop in loops:
            loop.join()

    def ask(self, name: str, probe) -> None:
        while not self.stopped.is_set():
            try:
                response = probe()
            except requests.RequestException:
                pass  # not answering at all is not a 500 (the web process restarts)
            else:
                self.answers.append((time.monotonic(), name, response.status_code, response.text))
            self.stopped.wait(0.25)

    def stop(self) -> None:
        self.stopped.set()
        self.join(20)

    def errors(self) -> list[tuple[str, int, str]]:
        return [
            (name, code, text[:300])
            for _t, name, code, text in self.answers
            if code >= 500 and code != 503
        ]

    def serving_again_after(self, back: float) -> float | None:
        """Seconds from `back` (the dependency returned) to the first API answer 200."""
        for when, name, code, _text in self.answers:
            if name == "api" and code == 200 and when >= back:
                return when - back
        return None

    def healthz_between(self, start: float, end: float) -> list[dict]:
        out = []
        for when, name, code, text in self.answers:
            if name == "healthz" and start <= when <= end:
                try:
                    out.append({"code": code, **json.loads(text)})
                except ValueError:
                    out.append({"code": code})
        return out
