"""Deployments end to end on the real Docker engine, with images pulled from a private
registry: health gate, automatic rollback, diagnosis, queueing, crash safety."""

import socket

import docker
import pytest
from django.utils import timezone

from apps.deployments import runner, services
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.secrets import services as secrets
from apps.stacks.models import Stack
from devtools import free_port
from tests.deploying import (
    FAILING_HEALTHCHECK,
    add_revision,
    deploy,
    log_text,
    page,
    project_containers,
    web_stack,
)


def test_it_deploys_services_in_dependency_order_and_gates_on_health(
    membership, make_stack, test_images
):
    port = free_port()
    stack = make_stack(
        f"""
services:
  db:
    image: {test_images["web:1"]}
  api:
    image: {test_images["web:2"]}
    depends_on:
      db: {{condition: service_healthy}}
  web:
    image: {test_images["web:1"]}
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: [api]
"""
    )
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    bars = {row.service: (row.phase, row.progress) for row in deployment.services.all()}
    assert bars == {name: ("healthy", 100) for name in ("db", "api", "web")}
    stack.refresh_from_db()
    assert stack.current_revision.number == 1
    assert page(port) == "windflow test web 1\n"
    started = {
        c.labels["com.docker.compose.service"]: c.attrs["State"]["StartedAt"]
        for c in project_containers("shop")
    }
    assert started["db"] < started["api"]  # api waited for db to be healthy
    numbers = list(deployment.lines.order_by("seq").values_list("seq", flat=True))
    assert numbers == list(range(1, len(numbers) + 1))


def test_it_rolls_a_failing_healthcheck_back_to_the_last_good_revision(
    membership, make_stack, test_images
):
    port = free_port()
    stack = make_stack(web_stack(test_images["web:1"], port), health_timeout=20)
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    bad = add_revision(
        stack,
        web_stack(test_images["web:2"], port, extra=FAILING_HEALTHCHECK),
    )
    deployment = deploy(membership, stack, bad)
    assert deployment.status == DeploymentStatus.ROLLED_BACK
    assert deployment.rolled_back_to.number == 1
    assert deployment.diagnosis["code"] == "healthcheck_failing"
    assert "db unreachable" in deployment.reason
    assert "Rolling back to revision 1" in log_text(deployment)
    from apps.notifications.models import Notification

    told = Notification.objects.filter(recipient=membership.user).order_by("-pk").first()
    assert told.verb == "deployment.rolled_back"
    assert "db unreachable" in told.text
    assert told.url == deployment.get_absolute_url()
    stack.refresh_from_db()
    assert stack.current_revision.number == 1
    assert page(port) == "windflow test web 1\n"


def test_it_diagnoses_a_port_already_allocated_and_leaves_nothing_behind(
    membership, make_stack, test_images
):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        stack = make_stack(web_stack(test_images["web:1"], port))
        deployment = deploy(membership, stack)
    finally:
        holder.close()
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "port_allocated"
    assert f"port {port}" in deployment.reason
    assert project_containers("shop") == []


def test_it_says_when_an_image_does_not_exist(membership, make_stack, image_registry):
    missing = f"{image_registry.url}/windflow-test/nope:1"
    stack = make_stack(f"services:\n  web:\n    image: {missing}\n")
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "image_not_found"
    assert missing in deployment.reason
    assert project_containers("shop") == []


def test_it_fails_clearly_when_a_secret_is_missing(membership, make_stack, test_images):
    stack = make_stack(f"services:\n  web:\n    image: {test_images['busybox:1']}\n")
    # A revision that uses a secret the organisation no longer has (deleted since).
    revision = add_revision(
        stack,
        stack.latest_revision.compose + "    environment:\n      TOKEN: ${API_TOKEN}\n",
        secrets=["API_TOKEN"],
        message="use the token",
    )
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.FAILED
    assert "API_TOKEN" in deployment.reason
    assert project_containers("shop") == []


def test_it_passes_secrets_to_containers_without_logging_them(membership, make_stack, test_images):
    secrets.create_secret(membership, name="API_TOKEN", value="s3cr3t-value-42")
    stack = make_stack()
    revision = add_revision(
        stack,
        f"services:\n  web:\n    image: {test_images['busybox:1']}\n"
        "    environment:\n      TOKEN: ${API_TOKEN}\n",
        secrets=["API_TOKEN"],
    )
    deployment = deploy(membership, stack, revision)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    (container,) = project_containers("shop")
    assert "TOKEN=s3cr3t-value-42" in container.attrs["Config"]["Env"]
    assert "s3cr3t-value-42" not in log_text(deployment)


def test_it_recreates_only_the_service_that_changed(membership, make_stack, test_images):
    compose = f"""
services:
  a:
    image: {test_images["busybox:1"]}
  b:
    image: {test_images["busybox:1"]}
"""
    stack = make_stack(compose, grace_period=0)
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    before = {c.labels["com.docker.compose.service"]: c.id for c in project_containers("shop")}
    changed = add_revision(stack, compose.replace("  b:\n", "  b:\n    environment: {X: '1'}\n"))
    deployment = deploy(membership, stack, changed)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    after = {c.labels["com.docker.compose.service"]: c.id for c in project_containers("shop")}
    assert after["a"] == before["a"]
    assert after["b"] != before["b"]
    assert deployment.lines.filter(service="a", message__icontains="unchanged").exists()


def test_it_removes_a_failed_first_deployment(membership, make_stack, test_images):
    stack = make_stack(f"services:\n  app:\n    image: {test_images['crash:1']}\n", grace_period=2)
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "exited"
    assert "code 1" in deployment.reason
    assert project_containers("shop") == []
    stack.refresh_from_db()
    assert stack.current_revision is None


def test_it_says_what_it_left_when_the_rollback_fails_too(membership, make_stack, test_images):
    """Revision 1's image can no longer be had (its only name pointed at a registry that is
    gone): the rollback fails, and the log lists the stack's containers left on the server."""
    gone = f"127.0.0.1:{free_port()}/windflow-test/gone:1"  # nothing listens there
    client = docker.from_env()
    try:
        client.images.pull(test_images["web:1"]).tag(gone)
        port = free_port()
        stack = make_stack(web_stack(gone, port), health_timeout=20)
        assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
        client.images.remove(gone)  # the running container keeps the image, not the name
        bad = add_revision(stack, web_stack(test_images["web:2"], port, extra=FAILING_HEALTHCHECK))
        deployment = deploy(membership, stack, bad)
    finally:
        client.close()
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.rolled_back_to is None
    assert deployment.diagnosis["code"] == "healthcheck_failing"  # the deployment's own failure
    text = log_text(deployment)
    assert "The rollback to revision 1 failed too" in text
    assert "Containers of this stack on web-1 now: shop-web-1 (running, unhealthy)" in text, text


def test_it_queues_a_second_deployment_while_one_runs(membership, make_stack, test_images):
    stack = make_stack(f"services:\n  app:\n    image: {test_images['busybox:1']}\n")
    first = services.request_deployment(membership, stack)
    second = services.request_deployment(membership, stack)
    Deployment.objects.filter(pk=first.pk).update(
        status=DeploymentStatus.RUNNING, heartbeat_at=timezone.now()
    )
    runner.run(second.pk)  # its message arrives while the first one runs
    second.refresh_from_db()
    assert second.status == DeploymentStatus.QUEUED
    assert "Queued behind 1" in log_text(second)


def test_it_ignores_a_redelivered_message(membership, make_stack, test_images):
    stack = make_stack(
        f"services:\n  app:\n    image: {test_images['busybox:1']}\n", grace_period=0
    )
    deployment = deploy(membership, stack)
    lines = deployment.lines.count()
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.SUCCEEDED
    assert deployment.lines.count() == lines


def test_it_marks_a_deployment_whose_worker_died_failed_and_resumable(
    membership, make_stack, test_images
):
    stack = make_stack(
        f"services:\n  app:\n    image: {test_images['busybox:1']}\n", grace_period=0
    )
    lost = services.request_deployment(membership, stack)
    Deployment.objects.filter(pk=lost.pk).update(
        status=DeploymentStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now() - timezone.timedelta(minutes=5),
    )
    runner.run(lost.pk)  # the redelivered message of the dead worker
    lost.refresh_from_db()
    assert lost.status == DeploymentStatus.FAILED
    assert lost.diagnosis["code"] == "worker_lost"
    resumed = services.resume_deployment(membership, lost)
    runner.run(resumed.pk)
    resumed.refresh_from_db()
    assert resumed.status == DeploymentStatus.SUCCEEDED, resumed.reason
    assert resumed.resumed_from == lost


def test_it_fails_clearly_when_the_server_is_unreachable(
    membership, make_stack, local_target, settings
):
    # A single-organisation install: a local server names its own (allowed) socket, and
    # nothing answers there.
    settings.WINDFLOW_LOCAL_TARGETS = "all"
    settings.WINDFLOW_LOCAL_SOCKETS = ["/run/windflow-no-such-docker.sock"]
    local_target.socket_path = "/run/windflow-no-such-docker.sock"
    local_target.engine = None
    local_target.save()
    stack = make_stack("services:\n  app:\n    image: busybox:1\n")
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "docker_unavailable"
    assert "There is no Docker socket at /run/windflow-no-such-docker.sock" in deployment.reason
    assert deployment.finished_at is not None


def test_it_refuses_a_project_of_the_same_name_owned_by_something_else(
    membership, make_stack, test_images
):
    stack = make_stack(
        f"services:\n  app:\n    image: {test_images['busybox:1']}\n", grace_period=0
    )
    assert deploy(membership, stack).status == DeploymentStatus.SUCCEEDED
    Stack.objects.filter(pk=stack.pk).update(uid="00000000-0000-0000-0000-000000000001")
    stack.refresh_from_db()
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.FAILED
    assert deployment.diagnosis["code"] == "project_taken"


@pytest.mark.parametrize("status", [DeploymentStatus.SUCCEEDED, DeploymentStatus.CANCELLED])
def test_it_refuses_to_cancel_a_finished_deployment(membership, make_stack, status):
    from windflow.errors import Conflict

    stack = make_stack("services:\n  app:\n    image: busybox:1\n")
    deployment = services.request_deployment(membership, stack)
    Deployment.objects.filter(pk=deployment.pk).update(status=status)
    deployment.refresh_from_db()
    with pytest.raises(Conflict):
        services.cancel_deployment(membership, deployment)


@pytest.fixture
def private_registry(image_registry, test_images, tmp_path):
    """The test images again, behind a registry that wants a login (same storage)."""
    from devtools import start_registry

    server = start_registry(
        tmp_path / "private",
        users={"deployer": "pull-pass-123"},
        storage=image_registry.data_dir / "storage",
    )
    yield server
    server.stop()


def test_it_pulls_from_a_private_registry_with_credentials_from_secrets(
    membership, make_stack, private_registry
):
    from apps.stacks import services as stacks

    image = f"{private_registry.url}/windflow-test/busybox:1"
    stack = make_stack(f"services:\n  app:\n    image: {image}\n", grace_period=0)
    refused = deploy(membership, stack)
    assert refused.status == DeploymentStatus.FAILED
    assert refused.diagnosis["code"] == "registry_auth"  # it exists, behind a login
    assert f"registry refused the credentials ({private_registry.url})" in refused.reason

    secrets.create_secret(membership, name="REGISTRY_PASSWORD", value="pull-pass-123")
    stacks.update_stack(
        membership,
        stack,
        registry_credentials=[
            {
                "registry": private_registry.url,
                "username": "deployer",
                "secret": "REGISTRY_PASSWORD",
            }
        ],
    )
    deployment = deploy(membership, stack)
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    assert "pull-pass-123" not in log_text(deployment)
    docker.from_env().images.remove(image, force=True)
