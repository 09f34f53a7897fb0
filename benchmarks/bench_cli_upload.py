"""`windflow deploy --no-follow` of a 20 MB project folder, through to a queued deployment,
against the web process on loopback (issue 13: at most 5 s).

    .venv/bin/python benchmarks/bench_cli_upload.py [--runs 5]

Set-up through the real services: an organisation, its owner's write API token, environment
`staging` and a `local` server; the web process (gunicorn + uvicorn, as in the Procfile), no
worker (the deployment stays queued); throwaway PostgreSQL and Redis unless DATABASE_URL /
REDIS_URL are set. The folder (a run-scoped temporary directory) holds 15 MB of random,
incompressible bytes in 15 files, 5 MB of text in 50 files, a compose file and a .gitignore
that leaves out a further 10 MB (which must not travel). Each run is one CLI process, timed
from its start to its exit: local check, pack, upload (a new revision), deployment request.
Prints every run, the median and the maximum, and PASS/FAIL. Exit code: 0 PASS, 1 FAIL, 2 error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support import harness
from support.harness import say

NAME = "bench_cli_upload"
ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(sys.executable).with_name("windflow")
TARGET_SECONDS = 5.0
MB = 1024 * 1024
COMPOSE = "services:\n  web:\n    image: busybox:1\n    command: [sleep, '600']\n"
LINE = "deploy stack revision compose service health rollback archive upload folder\n"


def make_project(folder: Path) -> int:
    """The 20 MB folder; returns the bytes that should travel (before compression)."""
    (folder / "data").mkdir(parents=True)
    (folder / "docs").mkdir()
    (folder / "build").mkdir()
    for index in range(15):
        (folder / "data" / f"blob-{index:02d}.bin").write_bytes(os.urandom(MB))
    text = (LINE * (MB // len(LINE) // 10 + 1))[: MB // 10]
    for index in range(50):
        (folder / "docs" / f"page-{index:02d}.md").write_text(f"# Page {index}\n{text}")
    (folder / "build" / "output.bin").write_bytes(os.urandom(10 * MB))  # ignored
    (folder / ".gitignore").write_text("build/\n")
    (folder / "compose.yaml").write_text(COMPOSE)
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) - 10 * MB


def run(services: harness.Services, runs: int) -> int:
    harness.setup_django(services)
    from django.db import connection

    from apps.accounts.models import User
    from apps.accounts.services import create_api_token
    from apps.tenants.services import delete_organization
    from devtools import free_port

    place = harness.bench_place()
    _token, token = create_api_token(place.membership, name="bench", scope="write")
    connection.set_schema_to_public()
    work = Path(tempfile.mkdtemp(prefix="windflow-bench-cli-upload-"))
    server = None
    try:
        size = make_project(work / "project")
        say(f"project folder: {size / MB:.1f} MB to upload (+10 MB ignored)")
        port = free_port()
        server = harness.start_web(services, port, workers=2)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "WINDFLOW_URL": f"http://localhost:{port}",
            "WINDFLOW_ORG": place.organization.slug,
            "WINDFLOW_TOKEN": token,
            "XDG_CONFIG_HOME": str(work / "config"),
        }
        times = []
        for index in range(runs):
            command = [str(SCRIPT), "-o", "json", "deploy", str(work / "project")]
            command += ["--stack", "bench", "--env", "staging", "--server", "local"]
            command += ["--no-follow", "-m", f"run {index + 1}"]
            started = time.perf_counter()
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if done.returncode != 0:
                say(f"windflow exited {done.returncode}: {done.stderr.strip()}")
                say(f"web log (end):\n{server.tail(30)}")
                return 2
            deployment = json.loads(done.stdout)
            assert deployment["status"] == "queued", deployment
            times.append(elapsed)
            say(f"run {index + 1}: {elapsed:.2f} s (deployment #{deployment['number']} queued)")
        median, worst = statistics.median(times), max(times)
        verdict = "PASS" if worst <= TARGET_SECONDS else "FAIL"
        print(
            f"windflow deploy of {size / MB:.1f} MB to a queued deployment: median {median:.2f} s,"
            f" max {worst:.2f} s over {runs} runs (target <= {TARGET_SECONDS:.0f} s): {verdict}"
        )
        return 0 if verdict == "PASS" else 1
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(work, ignore_errors=True)
        connection.set_schema_to_public()
        delete_organization(place.organization)
        User.objects.filter(pk=place.owner.pk).delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    return harness.main(NAME, lambda services: run(services, runs))


if __name__ == "__main__":
    sys.exit(main())
