"""A deployed stack at run time, on the real Docker engine: its services panel, stop / start /
restart / remove (the worker's side runs inline), who may act and when, an unreachable
server, and the pages."""

import docker
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection
from django.urls import reverse

from apps.accounts.models import Membership
from apps.audit.models import AuditEvent
from apps.deployments import runner
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.stacks import control as stack_control
from apps.stacks import runtime
from apps.stacks.models import Stack, StackRevision
from apps.targets.models import Target
from devtools import free_port
from tests.base import client_for, run_queued_jobs
from windflow.errors import Conflict, Forbidden, ServiceError


def deploy(membership, stack):
    deployment = deployments.request_deployment(membership, stack)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    stack.refresh_from_db()
    return deployment


def started_at(project: str) -> dict[str, str]:
    client = docker.from_env()
    try:
        found = client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        return {
            c.labels["com.docker.compose.service"]: c.attrs["State"]["StartedAt"] for c in found
        }
    finally:
        client.close()


def states(project: str) -> dict[str, str]:
    client = docker.from_env()
    try:
        found = client.containers.list(
            all=True, filters={"label": f"com.docker.compose.project={project}"}
        )
        return {c.labels["com.docker.compose.service"]: c.status for c in found}
    finally:
        client.close()


def control(membership, stack, action, service=None):
    """What a page does, then what the worker does."""
    requested = stack_control.request_control(membership, stack, action, service)
    event = runtime.run_control(requested.pk)
    stack.refresh_from_db()
    return event


def two_services(test_images, port):
    return f"""
services:
  web:
    image: {test_images["web:1"]}
    ports: ["127.0.0.1:{port}:8080"]
  worker:
    image: {test_images["busybox:1"]}
"""


@pytest.fixture
def deployed(membership, make_stack, test_images):
    port = free_port()
    stack = make_stack(two_services(test_images, port), name="rt-shop", grace_period=0)
    deploy(membership, stack)
    return stack, port


def test_it_shows_services_with_health_ports_and_image(deployed, test_images):
    stack, port = deployed
    rows = {row["service"]: row for row in runtime.runtime_status(stack)}
    assert set(rows) == {"web", "worker"}
    web = rows["web"]
    assert (web["state"], web["health"]) == ("running", "healthy")
    assert web["ports"] == [f"127.0.0.1:{port}->8080/tcp"]
    assert web["image"] == test_images["web:1"]
    container = web["containers"][0]
    assert container["name"] == "rt-shop-web-1"
    assert len(container["short_id"]) == 12
    assert container["started"] is not None
    assert container["exit_code"] is None
    assert (rows["worker"]["state"], rows["worker"]["health"]) == ("running", None)


def test_it_restarts_one_service_only_through_the_queue(
    deployed, membership, django_capture_on_commit_callbacks
):
    stack, _port = deployed
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(runtime.stack_group(stack.pk), channel)
    before = started_at(stack.project)
    with django_capture_on_commit_callbacks(execute=True):
        stack_control.request_control(membership, stack, "restart", "worker")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_queued_jobs() == ["control_stack"]
    after = started_at(stack.project)
    assert after["worker"] != before["worker"]
    assert after["web"] == before["web"]
    event = async_to_sync(layer.receive)(channel)
    assert (event["type"], event["ok"], event["service"]) == ("stack.control", True, "worker")
    audit = AuditEvent.objects.filter(action="stack.restart").get()
    assert audit.changes["service"] == "worker"


def test_it_stops_then_starts_the_stack(deployed, membership):
    stack, _port = deployed
    assert control(membership, stack, "stop")["ok"]
    assert set(states(stack.project).values()) == {"exited"}
    rows = runtime.runtime_status(stack)
    assert {row["state"] for row in rows} == {"exited"}
    assert all(c["exit_code"] is not None for row in rows for c in row["containers"])
    # Docker keeps the last health check of a stopped container: not shown as "unhealthy".
    assert [row["health"] for row in rows] == [None, None]
    assert all(c["health"] is None for row in rows for c in row["containers"])
    assert control(membership, stack, "start")["ok"]
    assert set(states(stack.project).values()) == {"running"}
    assert stack.current_revision is not None


def test_it_removes_the_stack_from_its_server(deployed, membership):
    stack, _port = deployed
    assert stack.current_revision is not None
    event = control(membership, stack, "remove")
    assert event["ok"], event
    assert states(stack.project) == {}
    client = docker.from_env()
    try:
        label = f"com.docker.compose.project={stack.project}"
        assert client.networks.list(filters={"label": label}) == []
    finally:
        client.close()
    assert stack.current_revision is None
    assert runtime.runtime_status(stack) == []


def test_it_refuses_a_viewer_an_unknown_action_or_service(membership, make_stack, acme):
    stack = make_stack("services:\n  web:\n    image: busybox\n", name="rt-refuse")
    viewer = Membership.objects.get(user__email="viewer@acme.test", organization=acme)
    with pytest.raises(Forbidden):
        stack_control.request_control(viewer, stack, "restart")
    with pytest.raises(ServiceError, match="Unknown action"):
        stack_control.request_control(membership, stack, "explode")
    with pytest.raises(ServiceError, match="no service named db"):
        stack_control.request_control(membership, stack, "restart", "db")
    with pytest.raises(ServiceError):
        stack_control.request_control(membership, stack, "remove", "web")
    assert not AuditEvent.objects.filter(action__startswith="stack.r").exists()


def test_it_refuses_control_while_a_deployment_is_queued_or_running(membership, make_stack):
    stack = make_stack("services:\n  web:\n    image: busybox\n", name="rt-busy")
    deployment = deployments.request_deployment(membership, stack)  # queued, no worker
    with pytest.raises(Conflict):
        stack_control.request_control(membership, stack, "restart")
    deployment.status = DeploymentStatus.RUNNING
    deployment.save(update_fields=["status"])
    with pytest.raises(Conflict):
        stack_control.request_control(membership, stack, "stop", "web")


def test_it_publishes_a_failure_when_the_project_is_not_the_stacks(
    membership, make_stack, test_images
):
    port = free_port()
    ours = make_stack(two_services(test_images, port), name="rt-owned", grace_period=0)
    deploy(membership, ours)
    # Same project name, another stack's uid: neither shown nor touched.
    ours.uid = __import__("uuid").uuid4()
    Stack.objects.filter(pk=ours.pk).update(uid=ours.uid)
    with pytest.raises(ServiceError, match="not this stack's"):
        runtime.runtime_status(ours)
    event = runtime.run_control(stack_control.request_control(membership, ours, "stop").pk)
    assert not event["ok"] and "not this stack's" in event["message"]
    assert set(states(ours.project).values()) == {"running"}


@pytest.fixture
def unreachable(membership, staging):
    target = Target.objects.create(
        name="gone", slug="gone", kind="local", socket_path="/nonexistent/docker.sock"
    )
    stack = Stack.objects.create(name="rt-gone", environment=staging, target=target)
    StackRevision.objects.create(stack=stack, number=1, compose="services:\n  web:\n    image: x\n")
    return stack


def test_it_says_why_when_the_server_does_not_answer(unreachable, membership):
    with pytest.raises(ServiceError) as caught:
        runtime.runtime_status(unreachable)
    assert caught.value.message
    with pytest.raises(ServiceError):
        runtime.container_log_tail(unreachable, "abc")
    requested = stack_control.request_control(membership, unreachable, "restart")
    event = runtime.run_control(requested.pk)
    assert event["ok"] is False and event["message"]


def test_it_shows_the_error_in_the_panel_not_a_500(unreachable, acme, owner):
    connection.set_tenant(acme)
    url = reverse("stacks:stack_runtime", args=[unreachable.name])
    response = client_for(owner, acme).get(url, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert b'data-testid="runtime-error"' in response.content
    assert b"nonexistent" in response.content or b"Docker" in response.content


def test_it_renders_the_panel_with_controls_for_deployers_only(deployed, acme, owner, viewer):
    stack, port = deployed
    url = reverse("stacks:stack_runtime", args=[stack.name])
    page = client_for(owner, acme).get(url).content.decode()
    assert "rt-shop-web-1" in page
    assert f"127.0.0.1:{port}-&gt;8080/tcp" in page
    assert 'data-health="healthy"' in page
    assert 'data-testid="restart-web"' in page and 'data-testid="stack-remove"' in page
    assert 'hx-confirm="Stop rt-shop on' in page  # Stop asks first, as Remove does
    # Each container's log is one link away, at every screen size (no d-none column).
    assert 'href="/stacks/rt-shop/runtime/containers/rt-shop-web-1/logs/"' in page
    assert "d-sm-table-cell" not in page
    assert 'hx-trigger="every 5s"' in page
    seen = client_for(viewer, acme).get(url).content.decode()
    assert "rt-shop-web-1" in seen
    assert "stack-remove" not in seen and "restart-web" not in seen


def test_it_queues_a_control_from_the_page_and_redirects(deployed, acme, owner, viewer):
    stack, _port = deployed
    url = reverse("stacks:stack_control", args=[stack.name])
    response = client_for(owner, acme).post(
        url, {"action": "restart", "service": "web"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == stack.get_absolute_url()
    assert AuditEvent.objects.filter(action="stack.restart").exists()
    refused = client_for(viewer, acme).post(url, {"action": "stop"})
    assert refused.status_code == 403
    bad = client_for(owner, acme).post(url, {"action": "restart", "service": "nope"})
    assert bad.status_code == 302 and bad["Location"] == stack.get_absolute_url()


def test_it_shows_a_containers_log_and_its_tail(deployed, acme, owner, outsider):
    stack, _port = deployed
    web = next(r for r in runtime.runtime_status(stack) if r["service"] == "web")
    short_id = web["containers"][0]["short_id"]
    url = reverse("stacks:container_logs", args=[stack.name, short_id])
    response = client_for(owner, acme).get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-ws="/ws/stacks/{stack.name}/containers/{short_id}/logs/?tail=200"' in page
    assert "container-logs.js" in page
    tail = client_for(owner, acme).get(
        reverse("stacks:container_log_tail", args=[stack.name, short_id])
    )
    assert tail.status_code == 200 and tail.json()["error"] == ""
    # Any other container, even a real one, is not readable through this stack.
    other = client_for(owner, acme).get(
        reverse("stacks:container_logs", args=[stack.name, "registry"])
    )
    assert other.status_code == 404
    assert client_for(outsider, acme).get(url).status_code == 403  # not a member


def test_it_serves_the_runtime_and_takes_control_requests_over_the_api(
    deployed, owner, viewer, acme, django_capture_on_commit_callbacks
):
    from tests.base import api_client, error_of

    stack, port = deployed
    url = f"/api/v1/stacks/{stack.name}/"
    response = api_client(viewer, acme).get(url + "runtime/")
    assert response.status_code == 200
    services = {row["service"]: row for row in response.json()["services"]}
    assert services["web"]["ports"] == [f"127.0.0.1:{port}->8080/tcp"]

    refused = api_client(viewer, acme).post(url + "control/", {"action": "stop"}, format="json")
    assert refused.status_code == 403
    bad = api_client(owner, acme).post(url + "control/", {"action": "explode"}, format="json")
    assert bad.status_code == 400
    assert "action" in error_of(bad)["fields"]
    before = started_at(stack.project)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = api_client(owner, acme).post(
            url + "control/", {"action": "restart", "service": "worker"}, format="json"
        )
    assert accepted.status_code == 202
    run_queued_jobs()
    assert started_at(stack.project)["worker"] != before["worker"]


def test_it_answers_503_with_a_reason_when_the_server_is_gone(unreachable, owner, acme):
    from tests.base import api_client, error_of

    response = api_client(owner, acme).get(f"/api/v1/stacks/{unreachable.name}/runtime/")
    assert response.status_code == 503
    assert error_of(response)["message"]
