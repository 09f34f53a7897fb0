"""Push to deploy: from a GitHub push delivery posted to a stack's webhook to the deployment
of the pushed commit queued.

Target (issue 13): at most 1 s p95.

    .venv/bin/python benchmarks/bench_webhook.py

A stack of a fresh organisation follows `main` of a repository on a loopback git server
(devtools.gitserver, git://), in an environment whose Git policy deploys automatically. The
Procfile's web process (gunicorn, 2 uvicorn workers) and a real Dramatiq worker run beside
this process. Each round commits a change to the repository, then posts GitHub's push
delivery for that commit, signed with the stack's webhook secret (X-Hub-Signature-256), to
`/hooks/git/<stack uid>/` on the organisation's host, and times it until a deployment of
the pushed commit exists (the worker has fetched the commit, checked the project, made the
revision and applied the policy: a deployment queued). The clock stops at the first poll of
the database (every 5 ms) that finds it. The next round waits for that deployment to end:
the stack's server is a local engine socket with no engine behind it, so each deployment
fails fast, after the timed part.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from support import harness
from support.compose import keep_state_in
from support.harness import say

NAME = "bench_webhook"
ROUNDS = 20
TARGET_P95_S = 1.0
STACK = "wf-bench-push"
POLL_S = 0.005
WAIT_S = 60.0


def compose(round_number: int) -> str:
    return (
        "services:\n"
        "  web:\n"
        "    image: busybox:1.36\n"
        "    environment:\n"
        f'      ROUND: "{round_number}"\n'
    )


def push_body(repo_url: str, before: str, after: str, message: str) -> bytes:
    """GitHub's push payload (the fields WindFlow reads, in GitHub's shape)."""
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "created": False,
            "deleted": False,
            "forced": False,
            "compare": f"{repo_url}/compare/{before[:12]}...{after[:12]}",
            "commits": [{"id": after, "message": message, "distinct": True}],
            "head_commit": {"id": after, "message": message},
            "repository": {"name": "shop", "full_name": "acme/shop", "clone_url": repo_url},
            "pusher": {"name": "bench", "email": "bench@bench.test"},
        }
    ).encode()


def post(port: int, host: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection(harness.HOST, port, timeout=10)
    try:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Host": f"{host}:{port}",
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                **headers,
            },
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(POLL_S)
    raise RuntimeError(f"{what} did not happen within {WAIT_S:.0f} s")


def run(services: harness.Services) -> int:
    work = Path(tempfile.mkdtemp(prefix="windflow-bench-webhook-"))
    keep_state_in(work)  # the worker's source cache (it inherits this environment)
    # The stack's server: a local engine socket with nothing behind it (deployments fail
    # fast, after the part timed, and never reach an engine of the machine).
    os.environ["WINDFLOW_LOCAL_SOCKETS"] = str(work / "no-engine.sock")
    harness.setup_django(services)
    from devtools import free_port
    from devtools.gitserver import start_git_server

    git_server = start_git_server(work / "git")
    web = worker = None
    try:
        repo = git_server.repo("shop")
        repo.commit({"compose.yaml": compose(0)}, message="first")
        port = free_port()
        web = harness.start_web(services, port)
        worker = harness.start_worker(services, threads=2)
        return race(repo, port)
    finally:
        for process in (web, worker):
            if process is not None:
                process.stop()
        git_server.stop()
        shutil.rmtree(work, ignore_errors=True)


def race(repo, port: int) -> int:
    from apps.deployments.choices import FINISHED_STATUSES
    from apps.deployments.models import Deployment
    from apps.environments.choices import GitPolicy
    from apps.sources import services as sources
    from apps.sources import webhooks
    from apps.sources.choices import SourceStatus
    from apps.sources.models import GitSource
    from apps.sources.providers import github

    place = harness.bench_place()
    place.environment.git_policy = GitPolicy.AUTO
    place.environment.save()
    stack = sources.create_git_stack(
        place.membership,
        name=STACK,
        environment=place.environment,
        target=place.target,
        url=repo.git_url,
        ref="main",
    )
    wait_for(
        lambda: GitSource.objects.filter(stack=stack, status=SourceStatus.OK).exists(),
        "the first fetch of the repository",
    )
    secret = webhooks.rotate_secret(place.membership, stack)
    host = f"{place.organization.slug}.localhost"
    path = f"/hooks/git/{stack.uid}/"

    def settled() -> bool:
        return (
            not Deployment.objects.filter(stack=stack)
            .exclude(status__in=FINISHED_STATUSES)
            .exists()
        )

    wait_for(settled, "the first deployment's end")
    harness.wait_for_quiet()
    timings, answers = [], []
    before = repo.head()
    for n in range(1, ROUNDS + 1):
        after = repo.commit({"compose.yaml": compose(n)}, message=f"round {n}")
        body = push_body(repo.git_url, before, after, f"round {n}")
        headers = {
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "User-Agent": "GitHub-Hookshot/bench",
            **github.WEBHOOK.sign(body, secret),
        }
        started = time.perf_counter()
        status = post(port, host, path, body, headers)
        answers.append(time.perf_counter() - started)
        if status != 202:
            raise RuntimeError(f"the webhook answered {status} to round {n}")
        wait_for(
            lambda sha=after: Deployment.objects.filter(
                stack=stack, revision__commit_sha=sha
            ).exists(),
            f"a deployment of round {n}'s commit",
        )
        took = time.perf_counter() - started
        timings.append(took)
        say(f"round {n}/{ROUNDS}: deployment queued {took * 1000:.0f} ms after the push")
        wait_for(settled, f"round {n}'s deployment's end")
        before = after

    p95 = harness.percentile(timings, 95)
    check = harness.verdict("push to deployment queued, p95", p95, TARGET_P95_S, " s", 3)
    print("=" * 78)
    print(f"{ROUNDS} GitHub push deliveries, each a new commit on main (git:// on loopback):")
    print(f"  median {statistics.median(timings) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, ", end="")
    print(f"max {max(timings) * 1000:.0f} ms")
    answer_p95 = harness.percentile(answers, 95) * 1000
    print(
        f"  of which the webhook's 202 answer: median {statistics.median(answers) * 1000:.0f} ms, ",
        end="",
    )
    print(f"p95 {answer_p95:.0f} ms (the rest: queue, fetch, check, revision, policy)")
    print(check.line)
    print("=" * 78)
    harness.save_result(
        NAME,
        {"passed": check.passed, "p95_s": p95, "timings_s": timings, "answers_s": answers},
    )
    return 0 if check.passed else 1


def main() -> int:
    return harness.main(NAME, run)


if __name__ == "__main__":
    sys.exit(main())
