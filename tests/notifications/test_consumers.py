"""Live notifications over websockets, through the real ASGI stack (tenant from the Host
header, session auth), a real Redis channel layer and a real Dramatiq worker."""

import asyncio

import dramatiq
import pytest
from channels.testing import WebsocketCommunicator
from django.db import connection

from tests.live import live_organization, session_cookie_for

pytestmark = pytest.mark.live


def communicator(host: str, cookie: str | None) -> WebsocketCommunicator:
    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


def notify_in(organization, user, text):
    from apps.notifications.services import notify

    connection.set_tenant(organization)
    try:
        notify([user], verb="test", text=text)
    finally:
        connection.close()  # this runs in an executor thread: leave no session open


@pytest.fixture
def two_orgs(live_db):
    with live_organization() as a, live_organization() as b:
        yield a, b


def test_it_pushes_a_notification_to_the_recipient_in_its_organisation_only(two_orgs):
    a, b = two_orgs
    cookie_a = session_cookie_for(a.owner)
    cookie_b = session_cookie_for(b.owner)

    async def scenario():
        ws_a = communicator(a.organization.primary_domain, cookie_a)
        ws_b = communicator(b.organization.primary_domain, cookie_b)
        assert (await ws_a.connect())[0] and (await ws_b.connect())[0]
        await asyncio.get_running_loop().run_in_executor(
            None, notify_in, a.organization, a.owner, "deployment finished"
        )
        event = await ws_a.receive_json_from(timeout=5)
        silent = await ws_b.receive_nothing(timeout=0.5)
        await ws_a.disconnect()
        await ws_b.disconnect()
        return event, silent

    event, silent = asyncio.run(scenario())
    assert event["text"] == "deployment finished"
    assert event["type"] == "notification.new"
    assert silent, "another organisation's socket must receive nothing"


def test_it_refuses_anonymous_outsider_and_unknown_host_sockets(two_orgs):
    a, b = two_orgs
    outsider_cookie = session_cookie_for(b.owner)

    async def close_code(host, cookie):
        ws = communicator(host, cookie)
        connected, code = await ws.connect()
        await ws.disconnect()
        return connected, code

    host = a.organization.primary_domain
    assert asyncio.run(close_code(host, None)) == (False, 4401)
    assert asyncio.run(close_code(host, outsider_cookie)) == (False, 4403)
    assert asyncio.run(close_code("nowhere.localhost", outsider_cookie))[0] is False


def test_it_delivers_a_worker_event_live(live_db):
    """Invitation accepted -> job on Redis -> real Dramatiq worker (tenant from the message)
    -> notification stored -> pushed to the inviter's open page."""
    from apps.accounts import services
    from apps.accounts.models import Membership, User

    with live_organization() as world:
        cookie = session_cookie_for(world.owner)
        owner_membership = Membership.objects.get(user=world.owner)
        email = f"joiner-{world.organization.slug}@live.test"
        _inv, url = services.invite(owner_membership, email=email, role="viewer")
        joiner = User.objects.create_user(email, "pw-live-123456")

        broker = dramatiq.get_broker()
        worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
        worker.start()

        async def scenario():
            ws = communicator(world.organization.primary_domain, cookie)
            assert (await ws.connect())[0]

            def accept():
                token = url.rstrip("/").rsplit("/", 1)[1]
                try:
                    services.accept_invitation(token, world.organization, joiner)
                finally:
                    connection.close()

            await asyncio.get_running_loop().run_in_executor(None, accept)
            event = await ws.receive_json_from(timeout=10)
            await ws.disconnect()
            return event

        try:
            event = asyncio.run(scenario())
        finally:
            worker.stop()
            joiner.delete()
        assert "joined as Viewer" in event["text"]
