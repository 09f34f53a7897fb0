"""Memory of the control plane after an hour-equivalent of ordinary use.

Target (issue: groundwork): web, worker and scheduler together hold at most 300 MB once idle,
after a scripted hour-equivalent of use.

    .venv/bin/python benchmarks/bench_memory.py   (as root: it may start the machine's dockerd)

The processes are the Procfile's own lines (every one but `release`), started as production
starts them, with WEB_CONCURRENCY and the rest left to their defaults, against private
PostgreSQL and Redis and the machine's Docker engine.

The hour of use, as one busy team gives it (scaled down in time, not in work):
- 24 deployments through the API (4 rounds over 6 stacks of 2 services each, images from a
  local registry), each one followed to its end by polling, and 6 of them over the
  deployment log websocket;
- 1,800 API requests over nine read endpoints, with a personal access token;
- 360 page views by a signed-in owner over fourteen pages, stack pages with their live
  runtime panels (containers, logs) included;
- the scheduler's periodic jobs (server sweeps, reaper, re-queue) running all along.

Then 20 s idle, and the memory of each process tree is read from /proc/<pid>/smaps_rollup:
- PSS (proportional set size): the pages a process alone holds plus its share of pages it
  shares with others. Summed over processes it is the RAM they hold together, each shared
  page counted once. This is the figure held to the target.
- RSS, for information: it counts a page shared by N processes N times.

Prints the figures per process and the verdict; writes benchmarks/results/bench_memory-*.json.
Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sys
import time
from pathlib import Path

from support import harness
from support.harness import HOST, say

NAME = "bench_memory"
TARGET_MB = 300.0
STACKS = 6
DEPLOY_ROUNDS = 4
WEBSOCKET_FOLLOWS = 6
API_REQUESTS = 1800
PAGE_VIEWS = 360
IDLE_S = 20.0
DEPLOY_DEADLINE_S = 180.0
START_DEADLINE_S = 90.0
FINAL = {"succeeded", "failed", "cancelled", "rolled_back"}


# ----------------------------------------------------------------------------- processes


def procfile_lines() -> dict[str, str]:
    from devtools.supervisor import read_procfile

    lines = read_procfile(harness.ROOT / "Procfile")
    return {name: line for name, line in lines.items() if name != "release"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def start_control_plane(services: harness.Services, port: int) -> dict[str, harness.Process]:
    env = {
        **services.env(),
        "PORT": str(port),
        "HOST": HOST,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    processes = {}
    for name, line in procfile_lines().items():
        log = services.log_dir() / f"{name}.log"
        processes[name] = harness.Process(name, ["sh", "-c", line], env, log)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        for process in processes.values():
            if not process.alive():
                raise RuntimeError(f"{process.name} exited during start-up:\n{process.tail()}")
        try:
            status, _ = harness.http_get(port, "localhost", "/healthz", timeout=2)
            if status == 200:  # web answers, database and Redis reached, a worker beats
                return processes
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the control plane did not answer /healthz with 200 in time")


def memory_of(pid: int) -> dict[str, int]:
    """kB of Rss / Pss / Private (USS) of one process, from smaps_rollup."""
    figures = {"rss": 0, "pss": 0, "uss": 0}
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return figures
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        value = int(rest.split()[0]) if rest.strip() else 0
        if key == "Rss":
            figures["rss"] = value
        elif key == "Pss":
            figures["pss"] = value
        elif key in ("Private_Clean", "Private_Dirty"):
            figures["uss"] += value
    return figures


def command_of(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:90]


def measure(processes: dict[str, harness.Process]) -> dict:
    roles = {}
    for name, process in processes.items():
        rows = []
        for pid in harness.process_tree(process.pid):
            figures = memory_of(pid)
            command = command_of(pid)
            # The shell that runs the Procfile line is the process manager's, not ours.
            if figures["rss"] and not command.startswith("sh -c"):
                rows.append({"pid": pid, "command": command, **figures})
        roles[name] = {
            "processes": rows,
            "rss_mb": sum(row["rss"] for row in rows) / 1024,
            "pss_mb": sum(row["pss"] for row in rows) / 1024,
        }
    return roles


# ------------------------------------------------------------------------------ the usage


def compose_file(images: dict[str, str]) -> str:
    # web:1 is healthy once its httpd answers (HEALTHCHECK in the image); busybox:1 sleeps.
    return (
        "services:\n"
        f"  web:\n    image: {images['web:1']}\n"
        f"  side:\n    image: {images['busybox:1']}\n"
        "    depends_on:\n      web:\n        condition: service_healthy\n"
    )


class Client:
    """HTTP/1.1 requests on one keep-alive connection to the organisation's host."""

    def __init__(self, port: int, host: str, headers: dict[str, str]) -> None:
        import http.client

        self.port = port
        self.host = host
        self.headers = headers
        self.connection = http.client.HTTPConnection(HOST, port, timeout=30)

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
        headers = {"Host": f"{self.host}:{self.port}", **self.headers}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                self.connection.request(method, path, body=payload, headers=headers)
                response = self.connection.getresponse()
                return response.status, response.read()
            except (ConnectionError, OSError):
                self.connection.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str, expect: tuple[int, ...] = (200,)) -> bytes:
        status, body = self.request("GET", path)
        if status not in expect:
            raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
        return body

    def close(self) -> None:
        self.connection.close()


def follow_websocket(port: int, host: str, cookie: str, deployment_id: int) -> int:
    """Follow a deployment's log over its websocket until the socket closes; frames read."""
    import websockets

    async def follow() -> int:
        frames = 0
        url = f"ws://{HOST}:{port}/ws/deployments/{deployment_id}/"
        headers = {"Host": f"{host}:{port}", "Cookie": cookie}
        async with websockets.connect(
            url, additional_headers=headers, origin=f"http://{host}:{port}", open_timeout=10
        ) as ws:
            try:
                while True:
                    message = await asyncio.wait_for(ws.recv(), timeout=30)
                    frames += 1
                    event = json.loads(message)
                    if event.get("type") == "status" and event.get("status") in FINAL:
                        break
            except (websockets.ConnectionClosed, TimeoutError):
                pass
        return frames

    return asyncio.run(follow())


def deploy_round(api: Client, names: list[str], follow: list[str], port, host, cookie) -> int:
    started = {}
    for name in names:
        status, body = api.request("POST", "/api/v1/deployments/", {"stack": name})
        if status != 201:
            raise RuntimeError(f"deploying {name} answered {status}: {body[:300]!r}")
        started[name] = json.loads(body)["id"]
    frames = 0
    for name in follow:
        frames += follow_websocket(port, host, cookie, started[name])
    deadline = time.monotonic() + DEPLOY_DEADLINE_S
    pending = set(started.values())
    while pending and time.monotonic() < deadline:
        for deployment_id in list(pending):
            row = json.loads(api.get(f"/api/v1/deployments/{deployment_id}/"))
            if row["status"] in FINAL:
                if row["status"] != "succeeded":
                    raise RuntimeError(f"deployment {deployment_id} ended {row['status']}: {row}")
                pending.discard(deployment_id)
        time.sleep(0.5)
    if pending:
        raise RuntimeError(f"deployments {sorted(pending)} not final in {DEPLOY_DEADLINE_S} s")
    return frames


def api_reads(api: Client, names: list[str], deployment_ids: list[int]) -> None:
    paths = [
        "/api/v1/environments/",
        "/api/v1/stacks/",
        "/api/v1/deployments/",
        "/api/v1/targets/",
        "/api/v1/secrets/",
        "/api/v1/members/",
        "/api/v1/me/",
    ]
    paths += [f"/api/v1/stacks/{name}/" for name in names]
    paths += [f"/api/v1/deployments/{pk}/" for pk in deployment_ids[-6:]]
    for n in range(API_REQUESTS):
        api.get(paths[n % len(paths)])


def page_views(pages: Client, names: list[str], deployment_ids: list[int], target: str) -> None:
    paths = [
        "/",
        "/stacks/",
        "/deployments/",
        "/environments/",
        "/environments/staging/",
        "/servers/",
        f"/servers/{target}/",
        "/secrets/",
        "/audit/",
        "/settings/members/",
        "/settings/tokens/",
        "/notifications/",
    ]
    paths += [f"/stacks/{name}/" for name in names[:2]]
    paths += [f"/deployments/{pk}/" for pk in deployment_ids[-2:]]
    for n in range(PAGE_VIEWS):
        pages.get(paths[n % len(paths)])


def an_hour_of_use(port, host, secret, cookie, names, place) -> tuple[int, float]:
    """Websocket frames received and seconds taken."""
    api = Client(port, host, {"Authorization": f"Bearer {secret}"})
    pages = Client(port, host, {"Cookie": cookie})
    say("an hour of use...")
    began = time.monotonic()
    frames = 0
    for round_number in range(DEPLOY_ROUNDS):
        followed = WEBSOCKET_FOLLOWS // DEPLOY_ROUNDS + (
            round_number < WEBSOCKET_FOLLOWS % DEPLOY_ROUNDS
        )
        frames += deploy_round(api, names, names[:followed], port, host, cookie)
        ids = [row["id"] for row in json.loads(api.get("/api/v1/deployments/"))["results"]]
        api_reads(api, names, ids)
        page_views(pages, names, ids, place.target.slug)
        say(f"  round {round_number + 1}/{DEPLOY_ROUNDS} done")
    api.close()
    pages.close()
    return frames, time.monotonic() - began


# ---------------------------------------------------------------------------------- run


def signed_in_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client as DjangoClient

    client = DjangoClient()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def run(services: harness.Services) -> int:
    harness.setup_django(services)

    from apps.accounts import services as accounts

    names = [f"wfm{secrets.token_hex(2)}-{n}" for n in range(STACKS)]
    processes: dict[str, harness.Process] = {}
    with harness.test_images("bench-memory") as images:
        try:
            place = harness.bench_place()
            harness.create_stacks(place, names, compose_file(images))
            _token, secret = accounts.create_api_token(
                place.membership, name="bench", scope="write"
            )
            cookie = signed_in_cookie(place.owner)
            host = place.organization.domains.first().domain

            port = free_port()
            say(f"starting {', '.join(procfile_lines())} from the Procfile on port {port}...")
            processes = start_control_plane(services, port)
            started = measure(processes)
            frames, used_s = an_hour_of_use(port, host, secret, cookie, names, place)
            for process in processes.values():
                if not process.alive():
                    raise RuntimeError(f"{process.name} died during the hour:\n{process.tail()}")
            say(f"idle for {IDLE_S:.0f} s...")
            time.sleep(IDLE_S)
            idle = measure(processes)
        except Exception:
            for process in processes.values():
                say(f"--- {process.name} log:\n{process.tail(60)}")
            raise
        finally:
            for process in processes.values():
                process.stop()
            harness.remove_projects(names)

    total_pss = sum(role["pss_mb"] for role in idle.values())
    total_rss = sum(role["rss_mb"] for role in idle.values())
    print()
    print(
        f"usage: {STACKS * DEPLOY_ROUNDS} deployments ({frames} websocket frames), "
        f"{API_REQUESTS * DEPLOY_ROUNDS} API requests, {PAGE_VIEWS * DEPLOY_ROUNDS} page views "
        f"in {used_s:.0f} s"
    )
    print(f"{'process':<60} {'RSS MB':>8} {'PSS MB':>8} {'USS MB':>8}")
    for name, role in idle.items():
        for row in role["processes"]:
            print(
                f"{name + ': ' + row['command']:<60} {row['rss'] / 1024:8.1f} "
                f"{row['pss'] / 1024:8.1f} {row['uss'] / 1024:8.1f}"
            )
    for name, role in idle.items():
        print(
            f"{name:<12} at start PSS {started[name]['pss_mb']:6.1f} MB, "
            f"idle after use PSS {role['pss_mb']:6.1f} MB (RSS {role['rss_mb']:6.1f} MB)"
        )
    print(f"total RSS (shared pages counted in each process): {total_rss:.1f} MB")
    check = harness.verdict(
        "idle memory of web + worker + scheduler (PSS)", total_pss, TARGET_MB, "MB"
    )
    print(check.line)
    harness.save_result(
        NAME,
        {
            "target_mb": TARGET_MB,
            "total_pss_mb": round(total_pss, 1),
            "total_rss_mb": round(total_rss, 1),
            "at_start": started,
            "idle_after_use": idle,
            "usage_seconds": round(used_s, 1),
            "websocket_frames": frames,
            "passed": check.passed,
        },
    )
    return 0 if check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
