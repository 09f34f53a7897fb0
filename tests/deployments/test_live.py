"""Deployments with committed data, the runner in its own thread as in a worker: cancel
during a long health wait, and the same stack through an SSH target."""

import threading
import time

from django.db import connection
from django_tenants.utils import schema_context

from apps.accounts.models import Membership
from apps.deployments import runner, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.environments.models import Environment
from apps.stacks.models import Stack, StackRevision
from apps.targets import services as targets
from devtools import remove_compose_project
from tests.live import live_organization


def run_in_worker_thread(schema: str, deployment_id: int) -> threading.Thread:
    def work():
        try:
            with schema_context(schema):
                runner.run(deployment_id)
        finally:
            connection.close()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def wait_for(predicate, timeout=30.0, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return False


def live_stack(world, compose: str, *, name: str, target=None, **settings) -> Stack:
    membership = Membership.objects.get(user=world.owner, organization=world.organization)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = target or targets.create_target(membership, name="web-1", kind="local")
    stack = Stack.objects.create(name=name, environment=environment, target=target, **settings)
    StackRevision.objects.create(stack=stack, number=1, compose=compose)
    return stack


def test_it_cancels_during_a_long_health_wait_and_leaves_no_container(live_db, test_images):
    project = "wf-cancel"
    remove_compose_project(project)
    compose = f"""
services:
  slow:
    image: {test_images["busybox:1"]}
    healthcheck: {{test: ["CMD", "sh", "-c", "exit 1"], interval: 1s, retries: 10000}}
"""
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            stack = live_stack(world, compose, name=project, health_timeout=600)
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            deployment = services.request_deployment(membership, stack)
            worker = run_in_worker_thread(world.organization.schema_name, deployment.pk)
            assert wait_for(
                lambda: (
                    deployment.services.filter(phase__in=["start", "create"]).exists()
                    or deployment.lines.filter(message__icontains="health").exists()
                )
            )
            time.sleep(1.0)  # well inside the health wait
            asked = time.monotonic()
            services.cancel_deployment(membership, deployment)
            worker.join(timeout=20)
            took = time.monotonic() - asked
            assert not worker.is_alive()
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.CANCELLED
            assert took < 6, f"the cancel took {took:.1f} s"
            from .test_runner import project_containers

            assert project_containers(project) == []
        finally:
            remove_compose_project(project)


def test_it_deploys_the_same_stack_through_an_ssh_target(live_db, test_images, sshd, root_key):
    from tests.targets.test_services import add_ssh_target

    project = "wf-over-ssh"
    remove_compose_project(project)
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
            from .test_runner import project_containers

            assert {
                c.labels["com.docker.compose.service"] for c in project_containers(project)
            } == {
                "db",
                "web",
            }
        finally:
            remove_compose_project(project)
