"""Open websockets end when a revocation ends their access, through the real ASGI stack
(tenant from the Host header, session auth) and the real Redis channel layer."""

import asyncio

import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from tests.live import live_organization, session_cookie_for

pytestmark = pytest.mark.live


def communicator(host: str, cookie: str) -> WebsocketCommunicator:
    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


@pytest.fixture
def world(live_db):
    with live_organization(members=[("dev", "developer"), ("other", "developer")]) as world:
        yield world


def in_thread(change):
    """Run a database change as another request would, committed, and leave no connection
    open in the executor thread."""

    def run():
        try:
            change()
        finally:
            connection.close()

    return asyncio.get_running_loop().run_in_executor(None, run)


def closed_and_untouched(world, change):
    """Open sockets for dev and other, make `change`, and return (dev's close code or None,
    whether other's socket stayed open)."""
    dev, other = world.others
    host = world.organization.primary_domain
    cookies = session_cookie_for(dev), session_cookie_for(other)

    async def scenario():
        mine = communicator(host, cookies[0])
        theirs = communicator(host, cookies[1])
        assert (await mine.connect())[0] and (await theirs.connect())[0]
        await in_thread(change)
        output = await mine.receive_output(timeout=5)
        untouched = await theirs.receive_nothing(timeout=0.5)
        await theirs.disconnect()
        await mine.disconnect()
        return output, untouched

    output, untouched = asyncio.run(scenario())
    assert output["type"] == "websocket.close", output
    return output.get("code"), untouched


def test_it_closes_the_sockets_of_a_member_removed_anywhere(world):
    from apps.accounts.models import Membership

    dev = world.others[0]
    code, untouched = closed_and_untouched(
        world,
        lambda: Membership.objects.filter(user=dev, organization=world.organization).delete(),
    )
    assert code == 4403 and untouched


def test_it_closes_the_sockets_of_a_deactivated_person(world):
    def deactivate():
        dev = type(world.others[0]).objects.get(pk=world.others[0].pk)
        dev.is_active = False
        dev.save()

    code, untouched = closed_and_untouched(world, deactivate)
    assert code == 4401 and untouched


def test_it_closes_the_sockets_of_sessions_a_new_password_ended(world):
    def new_password():
        dev = type(world.others[0]).objects.get(pk=world.others[0].pk)
        dev.set_password("a-New-pass-2026")
        dev.save()

    code, untouched = closed_and_untouched(world, new_password)
    assert code == 4401 and untouched


def test_it_opens_sockets_to_support_access_and_closes_them_when_it_ends(live_db):
    """Platform staff's sockets follow their support access: open while it lasts (the live
    pages work), closed (4403) when it is ended or expires."""
    from apps.accounts import services
    from tests.base import host_of, support_client

    with live_organization() as world:
        staff = live_db.create_user("ops-ws@windflow.test", "pw-live-123456", is_staff=True)
        client = support_client(staff, world.organization)
        cookie = f"sessionid={client.cookies['sessionid'].value}"
        host = host_of(world.organization)

        async def scenario():
            socket = communicator(host, cookie)
            connected, _code = await socket.connect()
            assert connected
            await in_thread(lambda: services.end_support_access(client.grant, actor=staff))
            output = await socket.receive_output(timeout=5)
            await socket.disconnect()
            # Once over, a new socket is refused.
            again = communicator(host, cookie)
            refused = await again.connect()
            await again.disconnect()
            return output, refused

        output, refused = asyncio.run(scenario())
        assert output["type"] == "websocket.close" and output.get("code") == 4403, output
        assert refused[0] is False
