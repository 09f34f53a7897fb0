"""The live output of "prepare server" over websockets, through the real ASGI stack."""

import asyncio

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connection

from apps.targets.models import Target
from tests.live import live_organization, session_cookie_for
from windflow.realtime import prepare_group

pytestmark = pytest.mark.live


def communicator(host, cookie, target_id):
    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, f"/ws/targets/{target_id}/prepare/", headers=headers)


def test_it_streams_prepare_output_to_members_only(live_db):
    with live_organization() as mine, live_organization() as other:
        connection.set_tenant(mine.organization)
        target = Target.objects.create(name="web-1", slug="web-1", kind="local")
        connection.set_schema_to_public()
        group = prepare_group(mine.organization.schema_name, target.pk)
        member_cookie, outsider_cookie = (
            session_cookie_for(mine.owner),
            session_cookie_for(other.owner),
        )

        async def scenario():
            member = communicator(mine.organization.primary_domain, member_cookie, target.pk)
            assert (await member.connect())[0]
            outsider = communicator(mine.organization.primary_domain, outsider_cookie, target.pk)
            refused = await outsider.connect()
            await get_channel_layer().group_send(
                group, {"type": "target.prepare_line", "run": 1, "line": "==> Docker is ready"}
            )
            line = await member.receive_json_from(timeout=5)
            await member.disconnect()
            return line, refused

        line, refused = asyncio.run(scenario())
        assert line == {"type": "line", "line": "==> Docker is ready"}
        assert refused == (False, 4403)
