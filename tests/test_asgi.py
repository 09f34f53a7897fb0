"""The web process's HTTP handler (windflow.handlers): Django's ASGI handler with the
middleware and the view run as one synchronous call, one thread crossing per request."""

import asyncio
import json
from inspect import iscoroutinefunction

import pytest
from django.db import connection


def asgi_request(path: str, host: str, *, method="GET", headers=(), body=b""):
    """A raw ASGI HTTP exchange with the real application, as uvicorn would make it:
    (status, response headers, body)."""
    from windflow.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host.encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    async def exchange():
        sent, done = [], asyncio.Event()
        requested = False

        async def receive():
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await asyncio.wait_for(application(scope, receive, send), timeout=20)
        start = next(m for m in sent if m["type"] == "http.response.start")
        content = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {name.lower(): value for name, value in start["headers"]}
        return start["status"], headers, content

    return asyncio.run(exchange())


def test_it_runs_the_middleware_chain_synchronously():
    """Built as under WSGI: no crossing back to the event loop inside the chain (Django's
    own ASGI handler builds an asynchronous chain and crosses at each sync middleware)."""
    from windflow.asgi import application
    from windflow.handlers import OneHopASGIHandler

    handler = application.application_mapping["http"]
    assert isinstance(handler, OneHopASGIHandler)
    assert not iscoroutinefunction(handler._middleware_chain)


@pytest.mark.live
def test_it_serves_the_api_and_its_errors_through_asgi(live_db):
    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token
    from tests.live import live_organization

    with live_organization() as mine:
        connection.set_schema_to_public()
        membership = Membership.objects.get(user=mine.owner, organization=mine.organization)
        _token, token = create_api_token(membership, name="asgi", scope="write")
        host = mine.organization.primary_domain
        bearer = [(b"authorization", f"Bearer {token}".encode())]

        created_body = json.dumps({"name": "Staging", "kind": "staging"}).encode()
        json_type = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(created_body)).encode()),
        ]
        status, _headers, body = asgi_request(
            "/api/v1/environments/",
            host,
            method="POST",
            headers=[*bearer, *json_type],
            body=created_body,
        )
        assert status == 201, body
        status, headers, body = asgi_request("/api/v1/environments/", host, headers=bearer)
        assert status == 200, body
        assert [row["name"] for row in json.loads(body)["results"]] == ["Staging"]
        assert headers[b"x-request-id"] and headers[b"content-security-policy"]
        status, _headers, body = asgi_request("/api/v1/environments/", host)
        assert status == 401 and json.loads(body)["error"]
        connection.close()
