"""Deployments through the real queue and a real worker process (`manage.py run_worker`,
as in the Procfile): the happy path, and a worker killed outright mid-deployment, whose
deployment ends failed and resumable, never stuck "running"."""

import os
import secrets
import signal
import time
from pathlib import Path

from django.db import connection

from apps.accounts.models import Membership
from apps.deployments import runner, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from devtools import remove_compose_project
from tests.deploying import live_stack, run_in_worker_thread, wait_for
from tests.live import live_organization, worker_process

ROOT = Path(__file__).resolve().parents[2]


def slow_to_become_healthy(test_images) -> str:
    """Healthy about 8 s after it starts: long enough to kill a worker in the middle."""
    return f"""
services:
  app:
    image: {test_images["busybox:1"]}
    command: ["sh", "-c", "sleep 8; touch /tmp/ready; sleep 3600"]
    healthcheck: {{test: ["CMD", "test", "-f", "/tmp/ready"], interval: 1s, retries: 60}}
"""


def test_it_runs_a_deployment_on_a_worker_process(live_db, test_images):
    project = f"wf-queued-{secrets.token_hex(3)}"
    compose = f"services:\n  web:\n    image: {test_images['web:1']}\n"
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            stack = live_stack(world, compose, name=project)
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            with worker_process():
                deployment = services.request_deployment(membership, stack)
                assert wait_for(
                    lambda: Deployment.objects.get(pk=deployment.pk).is_finished, timeout=90
                )
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
        finally:
            remove_compose_project(project)


def test_it_marks_the_deployment_of_a_killed_worker_failed_then_resumes_it(live_db, test_images):
    project = f"wf-killed-{secrets.token_hex(3)}"
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            stack = live_stack(world, slow_to_become_healthy(test_images), name=project)
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            with worker_process() as worker:
                deployment = services.request_deployment(membership, stack)
                assert wait_for(
                    lambda: deployment.lines.filter(message__icontains="started").exists(),
                    timeout=60,
                )
                os.killpg(worker.pid, signal.SIGKILL)  # no goodbye, no cleanup
                worker.wait(10)
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.RUNNING  # what it left behind
            time.sleep(2.5)
            assert runner.reap_stale(stale_after=2) == 1
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.FAILED
            assert deployment.diagnosis["code"] == "worker_lost"
            assert deployment.finished_at is not None

            resumed = services.resume_deployment(membership, deployment)
            run_in_worker_thread(world.organization.schema_name, resumed.pk).join(timeout=90)
            resumed.refresh_from_db()
            assert resumed.status == DeploymentStatus.SUCCEEDED, resumed.reason
            assert resumed.lines.filter(message__icontains="unchanged").exists()
        finally:
            remove_compose_project(project)
