"""The live log of a deployment over websockets, through the real ASGI stack (tenant from the
Host header, session auth) and the real Redis channel layer: backfill, then live events; and
isolation between two real organisations."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from apps.deployments import journal, services
from apps.deployments.choices import DeploymentStatus, ServicePhase
from tests.deploying import make_world
from tests.live import live_organization, session_cookie_for

pytestmark = pytest.mark.live


def communicator(host, cookie, deployment_id, after=None):
    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    path = f"/ws/deployments/{deployment_id}/"
    if after is not None:
        path += f"?after={after}"
    return WebsocketCommunicator(application, path, headers=headers)


def in_tenant(organization, work, *args, **kwargs):
    """Run `work` with the organisation active, in an executor thread (like a worker would),
    leaving no database session open."""
    connection.set_tenant(organization)
    try:
        return work(*args, **kwargs)
    finally:
        connection.close()


@pytest.fixture
def two_orgs(live_db):
    with live_organization() as mine, live_organization() as other:
        yield mine, other


@pytest.fixture
def running(two_orgs):
    """A deployment of `mine` with a service bar and four lines."""
    mine, _other = two_orgs
    world = make_world(mine.organization, mine.owner)
    deployment = services.request_deployment(world.membership, world.stack)
    journal.set_service(deployment, "web", phase=ServicePhase.PULL, progress=30, message="pull")
    for n in range(1, 5):
        journal.append_log(deployment, f"line {n}", service="web")
    connection.set_schema_to_public()
    return deployment


async def receive_until(ws, kind):
    while True:
        message = await ws.receive_json_from(timeout=5)
        if message["type"] == kind:
            return message


def test_it_backfills_after_the_last_line_then_follows_live(two_orgs, running):
    mine, _other = two_orgs
    cookie = session_cookie_for(mine.owner)
    host = mine.organization.primary_domain

    def live_progress():
        journal.append_log(running, "line 5", service="web")
        journal.set_service(running, "web", phase=ServicePhase.START, progress=80, message="")
        journal.finish(running, DeploymentStatus.SUCCEEDED)

    async def scenario():
        ws = communicator(host, cookie, running.pk, after=2)
        assert (await ws.connect())[0]
        backfill = await ws.receive_json_from(timeout=5)
        bars = await ws.receive_json_from(timeout=5)
        status = await ws.receive_json_from(timeout=5)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, in_tenant, mine.organization, live_progress)
        live = [await ws.receive_json_from(timeout=5) for _ in range(3)]
        await ws.disconnect()
        return backfill, bars, status, live

    backfill, bars, status, live = asyncio.run(scenario())
    assert backfill["type"] == "log"
    assert [line["seq"] for line in backfill["lines"]] == [3, 4]
    assert backfill["lines"][0]["message"] == "line 3"
    assert bars == {
        "type": "services",
        "services": [{"service": "web", "phase": "pull", "progress": 30, "message": "pull"}],
    }
    assert status["type"] == "status" and status["status"] == "queued"
    assert status["finished"] is False
    line, service, final = live
    assert line == {"type": "log", "lines": [line["lines"][0]]}
    assert (line["lines"][0]["seq"], line["lines"][0]["message"]) == (5, "line 5")
    assert service["type"] == "service" and service["service"]["progress"] == 80
    assert final["type"] == "status" and final["status"] == "succeeded" and final["finished"]


def test_it_backfills_everything_in_batches_for_a_new_page(two_orgs, running):
    mine, _other = two_orgs
    connection.set_tenant(mine.organization)
    for n in range(5, 601):
        journal.append_log(running, f"line {n}")
    connection.set_schema_to_public()
    cookie = session_cookie_for(mine.owner)

    async def scenario():
        ws = communicator(mine.organization.primary_domain, cookie, running.pk)
        assert (await ws.connect())[0]
        first = await ws.receive_json_from(timeout=5)
        second = await ws.receive_json_from(timeout=5)
        status = await receive_until(ws, "status")
        await ws.disconnect()
        return first, second, status

    first, second, status = asyncio.run(scenario())
    assert [len(first["lines"]), len(second["lines"])] == [500, 100]
    assert second["lines"][-1]["seq"] == 600
    assert status["status"] == "queued"


def test_it_refuses_other_organisations_and_anonymous_sockets(two_orgs, running):
    mine, other = two_orgs
    outsider_cookie = session_cookie_for(other.owner)

    async def close_code(host, cookie, deployment_id):
        ws = communicator(host, cookie, deployment_id)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    my_host, other_host = mine.organization.primary_domain, other.organization.primary_domain
    # Anonymous, and a member of another organisation on this organisation's host.
    assert asyncio.run(close_code(my_host, None, running.pk)) == (False, 4401)
    assert asyncio.run(close_code(my_host, outsider_cookie, running.pk)) == (False, 4403)
    # On its own host, the other organisation cannot reach this deployment by its id.
    assert asyncio.run(close_code(other_host, outsider_cookie, running.pk)) == (False, 4404)
    # Nor a deployment that does not exist here.
    member_cookie = session_cookie_for(mine.owner)
    assert asyncio.run(close_code(my_host, member_cookie, running.pk + 1000)) == (False, 4404)
