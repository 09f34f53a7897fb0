"""Cross-organisation matrix: every URL pattern (organisation host and public host), every
OpenAPI operation and every websocket route, enumerated from the code, is tried by another
organisation's owner with each of their credentials (session, personal API token, JWT), on
the victim's host and on their own host naming the victim's objects. Path parameters are
filled with real objects of the victim (tests/security/world.py).

Every answer must be a refusal (sign-in redirect, 401, 403, 404; 405 for a method nobody
may use), and no answer may contain any of the victim's markers. The exceptions are named
below: pages anyone may open (sign-in, the OpenAPI document...), and, on the attacker's own
host, routes that name nothing of the victim's, an object of the attacker's that has the
same id (ids are per-schema sequences), or a body refused (400) before any lookup."""

from __future__ import annotations

import asyncio
import json

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django_tenants.utils import tenant_context

from tests.base import host_of
from tests.security.routes import (
    fill,
    fill_openapi,
    openapi_operations,
    url_routes,
    websocket_routes,
)

# A support session is platform staff's, opened for the attacker's organisation; its cookie
# is sent to every host (as one cookie for the parent domain would be).
CREDENTIALS = ["session", "token", "jwt", "support"]
SIGN_IN_PATHS = ("/accounts/login/", "/admin/login/")

# Routes that anyone may open whatever their organisation (sign-in, sign-up, password
# reset, the OpenAPI document, health): they may answer 200, but never with victim data.
OPEN_ROUTE_PREFIXES = (
    "accounts/",
    "oidc/",
    "admin/login/",
    "admin/logout/",
    "healthz",  # 503 while no worker beats: its designed answer
    "favicon.ico",
    "api/schema/",
    "api/docs/",
)
OPEN_ROUTE_NAMES = {"token_obtain", "token_refresh", "home", "organization_create"}
# An invitation link is a capability: a wrong one gets a 4xx page saying so.
CAPABILITY_ROUTES = {"invitation_accept"}
# The organisation switcher sends a non-member home ("/") with a message.
SENDS_HOME = {"organization_go"}

# Path parameters that name no organisation's object: values of the platform itself.
PLATFORM_FILLS = {
    "key": "x",  # allauth e-mail confirmation / password reset keys
    "uidb36": "1",
    "url": "x",  # the admin's catch-all
    "group_id": "1",  # auth groups are platform-wide
}
# Parameters that name no object at all, whoever the organisation.
PLATFORM_PARAMETERS = {*PLATFORM_FILLS, "fmt", "verb", "app_label", "content_type_id"}


def admin_values(route, victim) -> dict:
    from apps.stacks.models import Stack

    by_model = victim.objects_by_model()
    model = route.admin_model
    obj = by_model.get(model) if model is not None else None
    app_labels = sorted({m._meta.app_label for m in by_model})
    return {
        # a model the victim fixture has no object of (platform-only rows): any id
        "object_id": obj.pk if obj is not None else "1",
        "pk": obj.pk if obj is not None else "1",
        "id": victim.owner.pk,
        "user_id": victim.owner.pk,
        # support access to the victim organisation, asked for from the platform admin
        "organization_id": victim.organization.pk,
        "object_pk": victim.environment.pk,
        "content_type_id": ContentType.objects.get_for_model(Stack).pk,
        "app_label": model._meta.app_label if model is not None else app_labels[0],
    }


def values_for(pattern: str, victim, route=None) -> dict:
    values = {**PLATFORM_FILLS, **victim.fills()}
    values["rest"] = f"v1/stacks/{victim.stack.name}/"
    obj = victim.object_for(pattern)
    if obj is not None:
        values["pk"] = values["id"] = obj.pk
        if hasattr(obj, "slug"):
            values["slug"] = obj.slug
    if route is not None and route.is_admin:
        values.update(admin_values(route, victim))
    return values


def client_with(kind: str, credentials: dict, host: str) -> Client:
    client = Client(HTTP_HOST=host)
    if kind == "session":
        client.force_login(credentials["session"]["user"])
    elif kind == "support":
        open_support_session(client, credentials["support"]["grant"])
    else:
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {credentials[kind]['bearer']}"
    return client


def open_support_session(client: Client, grant) -> None:
    from apps.accounts.services import support_handoff

    tenant = connection.tenant
    _action, token = support_handoff(grant)
    host = host_of(grant.organization)
    response = client.post("/accounts/handoff/", {"token": token}, HTTP_HOST=host)
    assert response.status_code == 302, response.content
    connection.set_tenant(tenant)


def send(client: Client, method: str, path: str, *, api: bool):
    """The response, its body read (a streamed one too) while the request's organisation is
    still active, as a server would stream it."""
    tenant = connection.tenant
    try:
        if method == "GET":
            response = client.get(path)
        elif method == "HX-GET":  # the HTMX partial of the same URL
            response = client.get(path, headers={"HX-Request": "true"})
        elif api:
            response = client.generic(method, path, data="{}", content_type="application/json")
        else:
            response = client.generic(method, path)
        if getattr(response, "streaming", False):
            response.body = b"".join(response.streaming_content)
        else:
            response.body = response.content
        return response
    finally:
        connection.set_tenant(tenant)  # the request activated its host's organisation


def body_of(response) -> str:
    return response.body.decode(errors="replace")


def leaked(response, victim, requested: str) -> list[str]:
    """Victim markers in the answer, except those the attacker wrote in the request itself
    (a 404 page may echo the path)."""
    text = body_of(response) + " " + " ".join(f"{k}: {v}" for k, v in response.items())
    return [m for m in victim.markers if m not in requested and m in text]


def is_refusal(response) -> bool:
    """Sign-in redirect, 401, 403, 404; or 405 (the method is refused whoever asks)."""
    if response.status_code in (401, 403, 404, 405):
        return True
    if response.status_code in (301, 302, 303, 307):
        return response["Location"].split("?")[0].endswith(SIGN_IN_PATHS)
    return False


def attacker_owns(obj, attacker_org) -> bool:
    """Whether the attacker's organisation has its own object under the same identifier
    (ids of tenant tables are per-schema sequences, so they collide)."""
    if obj is None:
        return False
    model = type(obj)
    with tenant_context(attacker_org):
        queryset = model.objects.filter(pk=obj.pk)
        if any(f.name == "organization" for f in model._meta.fields):
            queryset = queryset.filter(organization=attacker_org)
        return queryset.exists()


def judge(
    response, *, victim, where, pattern, path, open_route, names_victim, attacker_org, name=None
):
    """The problem with one answer, or None."""
    requested = path
    problems = []
    if name in CAPABILITY_ROUTES and 400 <= response.status_code < 500:
        open_route = True
    if name in SENDS_HOME and response.get("Location") == "/":
        open_route = True
    if response.status_code >= 500 and pattern != "healthz":
        problems.append(f"answered {response.status_code}")
    if found := leaked(response, victim, requested):
        problems.append(f"shows the victim's {found}")
    if not is_refusal(response) and not open_route:
        on_own_host = where != "victim host"
        # At home, a body refused before the lookup (400) says nothing of the victim's object.
        if not on_own_host or (
            names_victim
            and response.status_code != 400
            and not attacker_owns(victim.object_for(pattern), attacker_org)
        ):
            location = response.get("Location", "")
            problems.append(f"not refused ({response.status_code} {location})".strip())
    return "; ".join(problems) or None


def is_open(route) -> bool:
    return route.pattern.startswith(OPEN_ROUTE_PREFIXES) or route.name in OPEN_ROUTE_NAMES


class Session:
    """One client per credential and host; a session signed out by a route (sign-out pages)
    is signed in again before the next request."""

    def __init__(self, kind: str, credentials: dict):
        self.kind, self.credentials, self.clients = kind, credentials, {}

    def client(self, host: str) -> Client:
        client = self.clients.get(host)
        if client is None:
            client = self.clients[host] = client_with(self.kind, self.credentials, host)
        elif self.kind in ("session", "support"):
            cookie = client.cookies.get("sessionid")
            if cookie is None or not cookie.value:
                if self.kind == "support":
                    open_support_session(client, self.credentials["support"]["grant"])
                else:
                    client.force_login(self.credentials["session"]["user"])
        return client


def url_plan(kind: str, victim, attacker_org) -> list[tuple]:
    """(where, host, route, path, methods) for every URL pattern of both URL confs.

    - API patterns are tried through their OpenAPI operations (right methods and bodies);
      one missing from the OpenAPI document is tried here, so it is still covered.
    - Pages read no bearer credential: a token or JWT tries them with GET only; a session
      also asks for their HTMX partial.
    - The admin is one site behind one staff check: every pattern, GET and POST with the
      session on the victim's host, GET otherwise."""
    documented = {
        fill_openapi(template, values_for(template, victim))
        for _method, template, _id in openapi_operations()
    }
    hosts = [
        ("victim host", host_of(victim.organization), "windflow.urls"),
        ("attacker host", host_of(attacker_org), "windflow.urls"),
        ("public host", host_of(None), "windflow.urls_public"),
    ]
    plan = []
    for where, host, urlconf in hosts:
        for route in url_routes(urlconf):
            path = fill(route.pattern, values_for(route.pattern, victim, route))
            if route.is_api and path in documented:
                continue
            both = ("GET", "POST")
            session = kind in ("session", "support")
            if route.is_admin:
                methods = both if session and where == "victim host" else ("GET",)
            elif not session and not route.is_api:
                methods = ("GET",)
            else:
                methods = both
            if session and not (route.is_admin or route.is_api):
                methods = (*methods, "HX-GET")
            plan.append((where, host, route, path, methods))
    return plan


def matrix_problems(kind, credentials, victim, attacker_org) -> tuple[list[str], int]:
    session = Session(kind, credentials)
    problems, tried = [], 0
    for where, host, route, path, methods in url_plan(kind, victim, attacker_org):
        for method in methods:
            response = send(session.client(host), method, path, api=route.is_api)
            tried += 1
            problem = judge(
                response,
                victim=victim,
                where=where,
                pattern=route.pattern,
                path=path,
                open_route=is_open(route),
                names_victim=bool(set(route.parameters) - set(PLATFORM_PARAMETERS)),
                attacker_org=attacker_org,
                name=route.name,
            )
            if problem:
                problems.append(f"{kind} {where} {method} {path}: {problem}")
    hosts = (
        ("victim host", host_of(victim.organization)),
        ("attacker host", host_of(attacker_org)),
    )
    for method, template, operation_id in openapi_operations():
        path = fill_openapi(template, values_for(template, victim))
        open_route = template.startswith("/api/v1/auth/")
        for where, host in hosts:
            response = send(session.client(host), method, path, api=True)
            tried += 1
            problem = judge(
                response,
                victim=victim,
                where=where,
                pattern=template,
                path=path,
                open_route=open_route,
                names_victim="{" in template,
                attacker_org=attacker_org,
            )
            if problem:
                problems.append(f"{kind} {where} {method} {path} ({operation_id}): {problem}")
    return problems, tried


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_it_refuses_every_route_and_operation_to_another_organisation(
    kind, victim, attacker_credentials, globex, outsider
):
    problems, tried = matrix_problems(kind, attacker_credentials, victim, globex)
    assert tried > 300
    assert not problems, f"{len(problems)} of {tried} answers:\n" + "\n".join(problems[:80])
    # The refusals were not the attacker's credential failing: it still works at home.
    me = send(client_with(kind, attacker_credentials, host_of(globex)), "GET", "/api/v1/me/", api=1)
    assert me.status_code == 200, me.content
    assert me.json()["organization"] == "globex"


def test_it_fills_every_parameter_with_an_object_the_victim_can_open(victim, owner):
    """The control: the victim's own owner opens every parametrised page and API operation
    (GET) with the same values, so the attacker's refusals are about real objects."""
    client = Client(HTTP_HOST=host_of(victim.organization))
    client.force_login(owner)
    token_client = client_with("token", {"token": {"bearer": victim.token_secret}}, "")
    token_client.defaults["HTTP_HOST"] = host_of(victim.organization)
    missing = []
    for route in url_routes("windflow.urls"):
        if not route.parameters or route.is_admin or route.is_api or is_open(route):
            continue
        if route.name in {"invitation_accept", "container_logs", "container_log_tail"}:
            continue  # a leaked hash is no accept link; no container runs in this test
        path = fill(route.pattern, values_for(route.pattern, victim, route))
        response = send(client, "GET", path, api=False)
        if response.status_code == 404 or response.status_code >= 500:
            missing.append(f"GET {path}: {response.status_code}")
    for method, template, operation_id in openapi_operations():
        if method != "GET" or "{" not in template:
            continue
        if operation_id == "v1_stacks_logs_retrieve":
            continue  # names a container too: none runs in this test
        path = fill_openapi(template, values_for(template, victim))
        response = send(token_client, "GET", path, api=True)
        if response.status_code == 404 or response.status_code >= 500:
            missing.append(f"GET {path} ({operation_id}): {response.status_code}")
    assert not missing, "\n".join(missing)


# --- websockets -------------------------------------------------------------------------


def communicator(host: str, cookie: str | None, path: str):
    from channels.testing import WebsocketCommunicator

    from windflow.asgi import application

    headers = [(b"host", host.encode()), (b"origin", f"http://{host}".encode())]
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


def _victim_activity(victim):
    """What the victim's sockets would carry: a log line and a notification (executor
    thread: leaves no connection open)."""
    from apps.deployments import journal
    from apps.notifications import services as notifications

    connection.set_tenant(victim.organization)
    try:
        journal.append_log(victim.deployment, f"{victim.markers[0]}-live-log")
        notifications.notify([victim.owner], verb="victim", text=victim.markers[0])
    finally:
        connection.close()


@pytest.mark.live
def test_it_refuses_every_websocket_route_to_another_organisation(live_db):
    from tests.live import live_organization, session_cookie_for
    from tests.security.world import build_victim

    with (
        live_organization(members=(("developer", "developer"),)) as mine,
        live_organization() as other,
    ):
        connection.set_tenant(mine.organization)
        victim = build_victim(mine.organization, mine.owner)
        connection.set_schema_to_public()
        cookie = session_cookie_for(other.owner)
        routes = websocket_routes()
        assert len(routes) >= 4
        hosts = {
            "victim host": host_of(mine.organization),
            "attacker host": host_of(other.organization),
            "public host": host_of(None),
        }

        async def attempt(where, host, route):
            path = fill(route.pattern, values_for(route.pattern, victim))
            ws = communicator(host, cookie, path)
            connected, code = await ws.connect(timeout=5)
            messages = []
            if connected:
                await asyncio.get_running_loop().run_in_executor(None, _victim_activity, victim)
                while not await ws.receive_nothing(timeout=0.5):
                    messages.append(await ws.receive_from())
            await ws.disconnect()
            text = " ".join(messages)
            found = [m for m in victim.markers if m not in path and m in text]
            problems = []
            if found:
                problems.append(f"carries the victim's {found}")
            if connected and (where != "attacker host" or route.parameters):
                problems.append("accepted")
            return [f"{where} {path}: {p}" for p in problems], connected, code

        async def scenario():
            results = []
            for route in routes:
                for where, host in hosts.items():
                    results.append(await attempt(where, host, route))
            return results

        results = asyncio.run(scenario())
        problems = [p for found, _c, _code in results for p in found]
        assert not problems, "\n".join(problems)
        # The victim's own owner is let in on the same sockets (the ids are real).
        own = session_cookie_for(mine.owner)

        async def control():
            accepted = []
            for route in routes:
                if "container" in route.parameters:
                    continue  # nothing runs on an engine in this test
                path = fill(route.pattern, values_for(route.pattern, victim))
                ws = communicator(hosts["victim host"], own, path)
                connected, _code = await ws.connect(timeout=5)
                await ws.disconnect()
                accepted.append((path, connected))
            return accepted

        for path, connected in asyncio.run(control()):
            assert connected, f"the victim's owner was refused on {path}"


def test_it_enumerates_the_operations_that_the_schema_endpoint_serves(acme, owner):
    """The matrix takes its operations from drf-spectacular's generator: the same document
    as /api/schema/ on an organisation's host."""
    response = send(
        client_with("session", {"session": {"user": owner}}, host_of(acme)),
        "GET",
        "/api/schema/?format=json",
        api=True,
    )
    assert response.status_code == 200
    served = {
        (method.upper(), path)
        for path, item in json.loads(response.body)["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert served == {(method, path) for method, path, _id in openapi_operations()}
