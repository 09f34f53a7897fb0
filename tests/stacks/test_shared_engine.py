"""Shared engines show only your own (issue 9): two organisations deploy to one local Docker
engine that platform staff assigned to both; each lists, reads and controls only the
containers of its own stacks, on the server page, the stack pages, the API and the runtime
services. Real containers with names scoped to this run, removed afterwards."""

import uuid

import docker
import pytest
from django.db import connection

from apps.accounts.models import Membership
from apps.deployments import runner
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.environments.models import Environment
from apps.stacks import control, runtime
from apps.stacks.models import Stack, StackRevision
from apps.targets import services as targets
from apps.tenants.models import LocalEngine
from apps.tenants.services import set_local_engine_organizations
from devtools import remove_compose_project
from tests.base import TEST_ENGINE, api_client, client_for
from windflow.errors import ServiceError


def compose(image: str) -> str:
    return f"""
services:
  app:
    image: {image}
    command: ["sh", "-c", "echo started; sleep 600"]
"""


def deploy_in(organization, user, *, name: str, image: str) -> tuple[Stack, str]:
    """A stack `name` of `organization` on its local server (the shared engine), deployed:
    (the stack, its container's id)."""
    connection.set_tenant(organization)
    membership = Membership.objects.get(user=user, organization=organization)
    environment = Environment.objects.create(name="staging", slug="staging")
    server = targets.create_target(membership, name="local", kind="local")
    stack = Stack.objects.create(name=name, environment=environment, target=server, grace_period=0)
    StackRevision.objects.create(stack=stack, number=1, compose=compose(image))
    deployment = deployments.request_deployment(membership, stack)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    container = runtime.runtime_status(stack)[0]["containers"][0]
    return stack, container["id"]


@pytest.fixture
def projects():
    """Compose project names scoped to this run; whatever they put on the engine is removed."""
    names = [f"shared-{uuid.uuid4().hex[:8]}", f"shared-{uuid.uuid4().hex[:8]}"]
    yield names
    for name in names:
        remove_compose_project(name)


def test_it_shows_and_controls_only_your_own_containers_on_a_shared_engine(
    acme, globex, owner, outsider, test_images, projects
):
    engine = LocalEngine.objects.get(name=TEST_ENGINE)
    set_local_engine_organizations(engine, [acme, globex])
    ours_name, theirs_name = projects
    ours, our_container = deploy_in(acme, owner, name=ours_name, image=test_images["busybox:1"])
    theirs, their_container = deploy_in(
        globex, outsider, name=theirs_name, image=test_images["busybox:1"]
    )
    assert targets.is_shared_engine(theirs.target)

    # The runtime services, in each organisation.
    listed = {c["name"]: c["stack"] for c in targets.list_containers(theirs.target)}
    assert all(stack == theirs_name for stack in listed.values()) and listed
    assert not any(ours_name in name for name in listed)
    with pytest.raises(ServiceError) as caught:
        runtime.container_log_tail(theirs, our_container)
    assert caught.value.code == "not_found"
    connection.set_tenant(acme)
    listed = {c["name"]: c["stack"] for c in targets.list_containers(ours.target)}
    assert set(listed.values()) == {ours_name}
    assert not any(theirs_name in name for name in listed)

    # Pages and API of globex: its own container, never acme's (404 for it).
    connection.set_schema_to_public()
    page = client_for(outsider, globex)
    server = page.get("/servers/local/containers/", HTTP_HX_REQUEST="true").content.decode()
    assert theirs_name in server and ours_name not in server
    assert our_container[:12] not in server
    assert (
        page.get(f"/stacks/{theirs_name}/runtime/containers/{their_container}/logs/").status_code
        == 200
    )
    for container in (our_container, our_container[:12]):
        logs = page.get(f"/stacks/{theirs_name}/runtime/containers/{container}/logs/")
        assert logs.status_code == 404
        tail = page.get(f"/stacks/{theirs_name}/runtime/containers/{container}/logs/tail/")
        assert tail.status_code == 404 and tail.json()["lines"] == []
    api = api_client(outsider, globex, scope="read")
    assert (
        api.get(f"/api/v1/stacks/{theirs_name}/logs/?container={their_container}").status_code
        == 200
    )
    refused = api.get(f"/api/v1/stacks/{theirs_name}/logs/?container={our_container}")
    assert refused.status_code == 404 and "started" not in refused.content.decode()
    runtime_body = api.get(f"/api/v1/stacks/{theirs_name}/runtime/").json()
    ids = [c["id"] for s in runtime_body["services"] for c in s["containers"]]
    assert ids == [their_container]
    # Acme's stack does not exist for globex at all.
    assert page.get(f"/stacks/{ours_name}/runtime/").status_code == 404

    # A stack of globex named like acme's project: neither shown nor stopped.
    connection.set_tenant(globex)
    environment = Environment.objects.get(slug="staging")
    lookalike = Stack.objects.create(
        name=ours_name, environment=environment, target=theirs.target, grace_period=0
    )
    StackRevision.objects.create(stack=lookalike, number=1, compose=compose("busybox"))
    with pytest.raises(ServiceError, match="not this stack's"):
        runtime.runtime_status(lookalike)
    event = runtime.run_control(control.request_control(None, lookalike, "stop").pk)
    assert event["ok"] is False and "not this stack's" in event["message"]
    engine_client = docker.from_env()
    try:
        assert engine_client.containers.get(our_container).status == "running"
    finally:
        engine_client.close()
    connection.set_schema_to_public()


def test_it_lists_only_the_organisations_stacks_on_a_local_engine_it_alone_uses(
    acme, owner, test_images, projects
):
    """Not shared, still the platform's engine: its other containers (the platform's own, or
    anyone's started by hand) are not the organisation's to see."""
    name, stranger_name = projects
    stack, _container = deploy_in(acme, owner, name=name, image=test_images["busybox:1"])
    assert not targets.is_shared_engine(stack.target)
    engine_client = docker.from_env()
    try:
        stranger = engine_client.containers.run(
            test_images["busybox:1"],
            ["sleep", "600"],
            name=stranger_name,
            detach=True,
            labels={"com.docker.compose.project": stranger_name},
        )
        try:
            listed = targets.list_containers(stack.target)
        finally:
            stranger.remove(force=True)
    finally:
        engine_client.close()
    assert [c["stack"] for c in listed] == [name]
    assert stranger_name not in [c["name"] for c in listed]
    connection.set_schema_to_public()
