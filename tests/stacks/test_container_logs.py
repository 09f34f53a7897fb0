"""A container's live log over websockets, through the real ASGI stack and the real Docker
engine, with committed data: the tail then new lines, refusals, and the Docker stream closed
with the socket."""

import asyncio
import threading
import time
import uuid

import docker
import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from apps.accounts.models import Membership
from apps.deployments import runner
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.environments.models import Environment
from apps.stacks import runtime
from apps.stacks.models import Stack, StackRevision
from apps.targets import services as targets
from devtools import remove_compose_project
from tests.live import live_organization, session_cookie_for
from windflow.engine.drivers import CancelToken

pytestmark = pytest.mark.live

PROJECT = "wf-logs"


def communicator(host, cookie, name, container, tail=200):
    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    path = f"/ws/stacks/{name}/containers/{container}/logs/?tail={tail}"
    return WebsocketCommunicator(application, path, headers=headers)


def compose(image: str) -> str:
    # Two lines at start, then one line each time /tmp/go appears (a `docker exec` away).
    script = (
        "echo first line; echo second line; "
        "while true; do if [ -f /tmp/go ]; then echo line after connect; rm /tmp/go; fi; "
        "sleep 0.05; done"
    )
    return f"""
services:
  app:
    image: {image}
    command: ["sh", "-c", "{script}"]
"""


def deployed_stack(world, image: str) -> tuple[Stack, str]:
    membership = Membership.objects.get(user=world.owner, organization=world.organization)
    environment = Environment.objects.create(name="staging", slug="staging")
    target = targets.create_target(membership, name="web-1", kind="local")
    stack = Stack.objects.create(
        name=PROJECT, environment=environment, target=target, grace_period=0
    )
    StackRevision.objects.create(stack=stack, number=1, compose=compose(image))
    deployment = deployments.request_deployment(membership, stack)
    runner.run(deployment.pk)
    deployment.refresh_from_db()
    assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
    rows = runtime.runtime_status(stack)
    return stack, rows[0]["containers"][0]["id"]


def lines_until(member, predicate, timeout=10.0):
    async def collect():
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await member.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
            assert message["type"] == "lines", message
            seen.extend(line.partition(" ")[2] for line in message["lines"])
            if predicate(seen):
                return seen
        return seen

    return collect()


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "container-logs" and t.is_alive()]


def test_it_streams_the_tail_then_new_lines_and_refuses_others(live_db, test_images):
    remove_compose_project(PROJECT)
    stranger = None
    engine = docker.from_env()
    with live_organization(members=[("viewer", "viewer")]) as mine, live_organization() as other:
        connection.set_tenant(mine.organization)
        try:
            _stack, container_id = deployed_stack(mine, test_images["busybox:1"])
            # Same compose project name, but not started by this stack.
            stranger = engine.containers.run(
                test_images["busybox:1"],
                ["sleep", "600"],
                detach=True,
                labels={
                    "com.docker.compose.project": PROJECT,
                    "io.windflow.stack": str(uuid.uuid4()),
                },
            )
            connection.set_schema_to_public()
            host = mine.organization.primary_domain
            viewer_cookie = session_cookie_for(mine.others[0])
            outsider_cookie = session_cookie_for(other.owner)

            async def scenario():
                member = communicator(host, viewer_cookie, PROJECT, container_id[:12])
                assert (await member.connect(timeout=10))[0]
                tail = await lines_until(member, lambda seen: "second line" in seen)
                await asyncio.to_thread(
                    engine.containers.get(container_id).exec_run,
                    ["touch", "/tmp/go"],  # noqa: S108 - in the container
                )
                live = await lines_until(member, lambda seen: "line after connect" in seen)
                threads_while_open = len(reader_threads())
                await member.disconnect()
                refusals = []
                for cookie, container in (
                    (outsider_cookie, container_id),
                    (viewer_cookie, stranger.id),
                    (viewer_cookie, "no-such-container"),
                    (None, container_id),
                ):
                    socket = communicator(host, cookie, PROJECT, container)
                    refusals.append(await socket.connect(timeout=10))
                missing = communicator(host, viewer_cookie, "no-such-stack", container_id)
                refusals.append(await missing.connect(timeout=10))
                return tail, live, threads_while_open, refusals

            tail, live, threads_while_open, refusals = asyncio.run(scenario())
            assert tail[:2] == ["first line", "second line"]
            assert live == ["line after connect"]
            assert threads_while_open == 1
            assert refusals == [
                (False, 4403),
                (False, 4404),
                (False, 4404),
                (False, 4401),
                (False, 4404),
            ]
            # The socket closed: the reader thread and its Docker stream end with it.
            deadline = time.monotonic() + 5
            while reader_threads() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert reader_threads() == []
        finally:
            connection.set_schema_to_public()
            if stranger is not None:
                stranger.remove(force=True)
            engine.close()
            remove_compose_project(PROJECT)


def test_it_follows_only_the_stacks_containers_and_stops_on_cancel(live_db, test_images):
    remove_compose_project(PROJECT)
    with live_organization() as world:
        connection.set_tenant(world.organization)
        try:
            stack, container_id = deployed_stack(world, test_images["busybox:1"])
            with pytest.raises(runtime.ServiceError, match="not a container of this stack"):
                next(runtime.follow_container_logs(stack, "nope", cancel=CancelToken()))
            cancel = CancelToken()
            got, done = [], threading.Event()

            def read():
                # As the websocket's reader thread: the organisation active (its engine).
                from django_tenants.utils import tenant_context

                with tenant_context(world.organization):
                    for line in runtime.follow_container_logs(stack, container_id, cancel=cancel):
                        got.append(line)
                done.set()

            threading.Thread(target=read, daemon=True).start()
            deadline = time.monotonic() + 10
            while len(got) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert [line.partition(" ")[2] for line in got] == ["first line", "second line"]
            assert got[0][:2] == "20" and "T" in got[0].partition(" ")[0]
            cancel.cancel()
            assert done.wait(5), "the Docker stream did not end on cancel"
        finally:
            connection.set_schema_to_public()
            remove_compose_project(PROJECT)


def test_it_masks_the_stacks_secrets_on_every_path_of_a_containers_log(live_db, test_images):
    """A container prints a secret in clear and as base64: the page, its polling tail, the
    API and the websocket show the mask, never the value (issue 9)."""
    import base64

    from django.urls import reverse

    from apps.secrets import services as secrets
    from tests.base import api_client, client_for
    from windflow.redaction import MASK

    value = f"canary{uuid.uuid4().hex}"
    encoded = base64.b64encode(value.encode()).decode()
    printer = f"""
services:
  app:
    image: {test_images["busybox:1"]}
    environment:
      TOKEN: ${{API_TOKEN}}
    command: ["sh", "-c", "echo token=$$TOKEN; echo b64=$$(printf %s $$TOKEN | base64); sleep 600"]
"""
    remove_compose_project(PROJECT)
    with live_organization(members=[("viewer", "viewer")]) as world:
        connection.set_tenant(world.organization)
        try:
            membership = Membership.objects.get(user=world.owner, organization=world.organization)
            secrets.create_secret(membership, name="API_TOKEN", value=value)
            environment = Environment.objects.create(name="staging", slug="staging")
            target = targets.create_target(membership, name="web-1", kind="local")
            stack = Stack.objects.create(
                name=PROJECT, environment=environment, target=target, grace_period=0
            )
            StackRevision.objects.create(
                stack=stack, number=1, compose=printer, secrets=["API_TOKEN"]
            )
            deployment = deployments.request_deployment(membership, stack)
            runner.run(deployment.pk)
            deployment.refresh_from_db()
            assert deployment.status == DeploymentStatus.SUCCEEDED, deployment.reason
            container_id = runtime.runtime_status(stack)[0]["containers"][0]["id"]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                printed = docker.from_env().containers.get(container_id).logs().decode()
                if "b64=" in printed:
                    break
                time.sleep(0.1)
            assert value in printed and encoded in printed  # the container did print it

            viewer = world.others[0]
            shown = {}
            page = client_for(viewer, world.organization).get(
                reverse("stacks:container_logs", args=[PROJECT, container_id[:12]])
            )
            assert page.status_code == 200
            shown["page"] = page.content.decode()
            tail = client_for(viewer, world.organization).get(
                reverse("stacks:container_log_tail", args=[PROJECT, container_id[:12]])
            )
            shown["tail"] = "\n".join(tail.json()["lines"])
            api = api_client(viewer, world.organization).get(
                f"/api/v1/stacks/{PROJECT}/logs/", {"container": container_id[:12]}
            )
            assert api.status_code == 200, api.content
            shown["api"] = "\n".join(api.json()["lines"])
            connection.set_schema_to_public()
            cookie = session_cookie_for(viewer)

            async def follow():
                socket = communicator(
                    world.organization.primary_domain, cookie, PROJECT, container_id[:12]
                )
                assert (await socket.connect(timeout=10))[0]
                seen = await lines_until(socket, lambda lines: any("b64=" in x for x in lines))
                await socket.disconnect()
                return "\n".join(seen)

            shown["websocket"] = asyncio.run(follow())
            for path, text in shown.items():
                assert value not in text, path
                assert encoded not in text, path
                assert f"token={MASK}" in text, path
                assert f"b64={MASK}" in text, path
        finally:
            connection.set_schema_to_public()
            remove_compose_project(PROJECT)
