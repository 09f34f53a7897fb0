"""Helpers for tests that deploy on the real Docker engine: run a deployment here or in a
worker thread, make revisions and live stacks, look at what the engine runs. Shared by
tests/deployments, tests/stacks and tests/secrets (test modules never import each other)."""

from __future__ import annotations

import threading
import time
import urllib.request

from django.db import connection


def deploy(membership, stack, revision=None):
    """Ask for a deployment and run it here, in the test's thread and transaction."""
    from apps.deployments import runner, services

    deployment = services.request_deployment(membership, stack, revision)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    return deployment


def add_revision(stack, compose: str, **fields):
    from apps.stacks.models import StackRevision

    number = stack.revisions.count() + 1
    return StackRevision.objects.create(stack=stack, number=number, compose=compose, **fields)


def project_containers(project: str) -> list:
    """The containers of compose project `project` on the test engine."""
    import docker

    client = docker.from_env()
    try:
        return client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
    finally:
        client.close()


def page(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
        return response.read().decode()


def web_stack(image: str, port: int, *, extra: str = "") -> str:
    """One `web` service of `image` published on 127.0.0.1:`port`; `extra` lines go under it."""
    return f"""
services:
  web:
    image: {image}
    ports: ["127.0.0.1:{port}:8080"]
{extra}"""


FAILING_HEALTHCHECK = (
    '    healthcheck: {test: ["CMD", "sh", "-c", "echo db unreachable; exit 1"], '
    "interval: 1s, retries: 1}\n"
)
# Never healthy, and retried for hours: a deployment of it waits in its health gate.
NEVER_HEALTHY = (
    '    healthcheck: {test: ["CMD", "sh", "-c", "exit 1"], interval: 1s, retries: 10000}\n'
)


def log_text(deployment) -> str:
    return "\n".join(deployment.lines.order_by("seq").values_list("message", flat=True))


def run_in_worker_thread(schema: str, deployment_id: int) -> threading.Thread:
    """runner.run in its own thread and connection, as a worker does (committed data only)."""
    from django_tenants.utils import schema_context

    from apps.deployments import runner

    def work():
        try:
            with schema_context(schema):
                runner.run(deployment_id)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def wait_for(predicate, timeout=30.0, step=0.1) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False): a bound on a
    wait for an event, never a measure of speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def live_stack(world, compose: str, *, name: str, target=None, **settings):
    """A committed stack (revision 1) in a tests.live organisation, on a new `staging`
    environment and a `local` server unless `target` is given."""
    from apps.accounts.models import Membership
    from apps.environments.models import Environment
    from apps.stacks.models import Stack, StackRevision
    from apps.targets import services as targets

    membership = Membership.objects.get(user=world.owner, organization=world.organization)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = target or targets.create_target(membership, name="web-1", kind="local")
    stack = Stack.objects.create(name=name, environment=environment, target=target, **settings)
    StackRevision.objects.create(stack=stack, number=1, compose=compose)
    return stack


BUSYBOX_COMPOSE = "services:\n  web:\n    image: busybox\n"


def make_world(organization, owner, *, protected=False, name="shop"):
    """A local target, an environment and a stack with two revisions, in `organization`
    (made through the ORM: nothing is deployed), with its schema active. ->
    .membership .target .environment .stack"""
    from types import SimpleNamespace

    from apps.accounts.models import Membership
    from apps.environments.models import Environment
    from apps.stacks.models import Stack, StackRevision
    from apps.targets.models import Target

    connection.set_tenant(organization)
    membership = Membership.objects.get(user=owner, organization=organization)
    target = Target.objects.create(name="web-1", slug="web-1", kind="local")
    environment = Environment.objects.create(
        name="production" if protected else "staging",
        slug="production" if protected else "staging",
        protected=protected,
    )
    stack = Stack.objects.create(name=name, environment=environment, target=target)
    StackRevision.objects.create(stack=stack, number=1, compose=BUSYBOX_COMPOSE)
    StackRevision.objects.create(stack=stack, number=2, compose=BUSYBOX_COMPOSE)
    return SimpleNamespace(
        membership=membership, target=target, environment=environment, stack=stack
    )


def progress(deployment, lines=3):
    """What the runner would have written: a service bar and numbered lines."""
    from apps.deployments import journal
    from apps.deployments.choices import ServicePhase

    journal.set_service(deployment, "web", phase=ServicePhase.PULL, progress=40, message="pull")
    for n in range(1, lines + 1):
        journal.append_log(deployment, f"line {n}", service="web")
