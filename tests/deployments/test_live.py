"""Deployments with committed data, the runner in its own thread as in a worker: cancel
during a long health wait (heard at once, and nothing new starts after it), and the same stack
through an SSH target."""

import secrets
import time
from contextlib import contextmanager

import docker
from django.db import connection

from apps.accounts.models import Membership
from apps.deployments import journal, runner, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from devtools import remove_compose_project
from tests.base import add_ssh_target
from tests.deploying import live_stack, log_text, project_containers, run_in_worker_thread, wait_for
from tests.live import live_organization


def never_healthy(test_images) -> str:
    """A service that never passes its healthcheck: its deployment waits until cancelled."""
    return f"""
services:
  slow:
    image: {test_images["busybox:1"]}
    healthcheck: {{test: ["CMD", "sh", "-c", "exit 1"], interval: 1s, retries: 10000}}
"""


@contextmanager
def deploying_in_a_worker_thread(world, project: str, compose: str):
    """The owner's deployment of `project`, run by the runner in a thread as in a worker:
    yields (membership, deployment, thread); the project is removed after."""
    connection.set_tenant(world.organization)
    try:
        stack = live_stack(world, compose, name=project, health_timeout=600)
        membership = Membership.objects.get(user=world.owner, organization=world.organization)
        deployment = services.request_deployment(membership, stack)
        worker = run_in_worker_thread(world.organization.schema_name, deployment.pk)
        yield membership, deployment, worker
    finally:
        remove_compose_project(project)


def test_it_cancels_during_a_long_health_wait_and_leaves_no_container(live_db, test_images):
    project = f"wf-cancel-{secrets.token_hex(3)}"
    with (
        live_organization() as world,
        deploying_in_a_worker_thread(world, project, never_healthy(test_images)) as running,
    ):
        membership, deployment, worker = running
        assert wait_for(
            lambda: (
                deployment.services.filter(phase__in=["start", "create"]).exists()
                or deployment.lines.filter(message__icontains="health").exists()
            )
        )
        services.cancel_deployment(membership, deployment)
        # Uncancelled, it would wait 600 s for health: the worker ends long before.
        worker.join(timeout=120)
        assert not worker.is_alive()
        deployment.refresh_from_db()
        assert deployment.status == DeploymentStatus.CANCELLED
        assert "Cancelled." in log_text(deployment)
        assert project_containers(project) == []


def test_it_hears_of_a_cancel_at_once_without_waiting_for_the_heartbeat(
    live_db, test_images, monkeypatch
):
    """The request is announced to the worker that runs the deployment: with a heartbeat
    that would read the database only in an hour, the cancel still ends the health wait."""
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 3600.0)
    project = f"wf-cancel-now-{secrets.token_hex(3)}"
    with (
        live_organization() as world,
        deploying_in_a_worker_thread(world, project, never_healthy(test_images)) as running,
    ):
        membership, deployment, worker = running
        assert wait_for(
            lambda: deployment.lines.filter(message__startswith="started ").exists(), 120
        ), log_text(deployment)
        services.cancel_deployment(membership, deployment)
        worker.join(timeout=60)  # a bound on the wait, the heartbeat would take an hour
        assert not worker.is_alive()
        deployment.refresh_from_db()
        assert deployment.status == DeploymentStatus.CANCELLED
        assert project_containers(project) == []


def test_it_starts_nothing_once_a_cancel_is_on_record(live_db, test_images):
    """Cancelled after the worker took the deployment and before it reached the server: no
    container is created, started or removed, and nothing is restored (nothing changed)."""
    project = f"wf-cancel-first-{secrets.token_hex(3)}"
    image = test_images["busybox:1"]
    client = docker.from_env()
    client.images.pull(image)  # present: the create would come at once
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            stack = live_stack(world, f"services:\n  web:\n    image: {image}\n", name=project)
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            deployment = services.request_deployment(membership, stack)
            running = journal.claim(deployment.pk)  # what the worker does first
            services.cancel_deployment(membership, running)
            since = int(time.time()) - 1
            runner.DeploymentRun(running).execute()
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.CANCELLED
            text = log_text(deployment)
            assert "Nothing had changed on the server yet" in text
            assert "created" not in text and "started" not in text, text
            seen = client.api.events(
                since=since,
                until=int(time.time()) + 1,
                filters={"label": f"com.docker.compose.project={project}"},
                decode=True,
            )
            assert list(seen) == []
        finally:
            client.close()
            remove_compose_project(project)


def test_it_deploys_the_same_stack_through_an_ssh_target(live_db, test_images, sshd, root_key):
    project = f"wf-over-ssh-{secrets.token_hex(3)}"
    compose = f"""
services:
  db:
    image: {test_images["web:1"]}
  web:
    image: {test_images["web:2"]}
    depends_on: {{db: {{condition: service_healthy}}}}
"""
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            target = add_ssh_target(membership, sshd, root_key, name="ssh-1")
            stack = live_stack(world, compose, name=project, target=target)
            deployment = services.request_deployment(membership, stack)
            run_in_worker_thread(world.organization.schema_name, deployment.pk).join(timeout=120)
            deployment = Deployment.objects.get(pk=deployment.pk)
            assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
            assert {
                c.labels["com.docker.compose.service"] for c in project_containers(project)
            } == {
                "db",
                "web",
            }
        finally:
            remove_compose_project(project)
