"""The role matrix (issue 9): every state-changing page and API route, tried by every role.

Nothing here is listed by hand. The routes come from the URL resolver (pages) and from the
OpenAPI document (API operations); what each one needs comes from the view itself, through
the method the code enforces (`required_action()` of windflow.views.OrganizationView and of
the API views, read by windflow.api.permissions.IsOrganizationMember); whether a role has it
comes from the permission table (apps.accounts.permissions.ACTIONS, through `can()`).

- A route that changes state and declares no action fails the test: declare one (or
  permissions.NO_ROLE for routes that need no role here, such as accepting an invitation).
- A role below the declared action must get a 403; a role at or above it must not (and
  never a 5xx): the view's own answer, whatever it is (400 for the empty body, 404, 409...).

Each request runs in a savepoint rolled back afterwards, so every role meets the same
objects (the victim organisation of tests/security/world.py, in acme)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.test import Client
from django.urls import resolve
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient

from apps.accounts import permissions
from tests.base import PERSONAS, host_of
from tests.security.routes import fill, fill_openapi, openapi_operations, url_routes

ROLES = ("owner", "admin", "operator", "developer", "viewer")
WRITE_METHODS = ("post", "put", "patch", "delete")
# Other people's code under its own rules: the admin (platform staff), allauth's sign-in and
# the OIDC callbacks (no organisation role before signing in).
THIRD_PARTY_MODULES = ("django.contrib.admin", "allauth.", "mozilla_django_oidc.")


class _Rollback(Exception):
    pass


class _Request:
    """What `required_action()` reads of a request."""

    def __init__(self, method: str, path: str = "/"):
        self.method = method.upper()
        self.path = path


def page_action(view_class, method: str, kwargs: dict) -> str | None:
    """The action a page declares for `method` (OrganizationView.required_action), or its
    `action` attribute for views outside an organisation (NO_ROLE)."""
    from windflow.views import OrganizationView

    if issubclass(view_class, OrganizationView):
        view = view_class()
        view.kwargs, view.args = kwargs, ()
        return view.required_action(_Request(method))
    return getattr(view_class, "action", None)


def api_action(callback, method: str, kwargs: dict) -> str | None:
    """The action an API view declares for `method`: what IsOrganizationMember asks of it."""
    from windflow.api.permissions import IsOrganizationMember

    view_class = callback.cls
    view = view_class(**getattr(callback, "initkwargs", {}))
    view.kwargs, view.args = kwargs, ()
    actions = getattr(callback, "actions", None)
    if actions is not None:
        view.action_map = actions
        view.action = actions.get(method.lower())
    classes = view.get_permissions()
    if any(isinstance(check, AllowAny) for check in classes) and len(classes) == 1:
        return permissions.NO_ROLE  # declared open: the view does its own checks
    if not any(isinstance(check, IsOrganizationMember) for check in classes):
        return None
    return view.required_action(_Request(method))


def expected_allowed(role: str, action: str, membership) -> bool:
    if action == permissions.NO_ROLE:
        return True
    assert action in permissions.ACTIONS, f"{action} is not in the permission table"
    return permissions.can(membership, action)


@pytest.fixture
def world(acme, owner, in_acme):
    from apps.accounts.models import Membership
    from apps.accounts.services import create_api_token
    from tests.security.world import build_victim

    victim = build_victim(acme, owner)
    people = {}
    for role in ROLES:
        membership = Membership.objects.select_related("user").get(
            user__email=PERSONAS[role][0], organization=acme
        )
        token, _secret = create_api_token(membership, name=f"matrix-{role}")
        people[role] = (membership, token)
    return victim, people


def _fills(victim, membership, token, path: str) -> dict:
    """Path parameters: the victim's objects; members and tokens are the acting person's
    own (every member may leave, and revoke their own tokens)."""
    values = dict(victim.fills())
    own = {
        ("settings/members/", "api/v1/members/"): membership.pk,
        ("settings/tokens/", "api/v1/tokens/"): token.pk,
    }
    stripped = path.lstrip("/").replace("^", "")
    for prefixes, pk in own.items():
        if stripped.startswith(prefixes):
            values["pk"] = values["id"] = pk
            break
    else:
        values["pk"] = values["id"] = values["slug"] = victim.pk_for(path)
    return {k: v for k, v in values.items() if v is not None}


def _signed_in(clients: dict, kind, role: str, host, user):
    """One signed-in client per role, kind and host (signing in for each request is slow)."""
    key = (kind, role, host)
    if key not in clients:
        clients[key] = kind(HTTP_HOST=host_of(host))
        clients[key].force_login(user)
    return clients[key]


def _run(client, method: str, path: str, **extra):
    try:
        with transaction.atomic():
            response = getattr(client, method)(path, **extra)
            raise _Rollback
    except _Rollback:
        pass
    return response


def _page_cases(victim):
    """(host, urlconf, route, view class, method) of every page method that may change state."""
    cases = []
    for host, urlconf in ((victim.organization, "windflow.urls"), (None, "windflow.urls_public")):
        for route in url_routes(urlconf):
            view_class = getattr(route.callback, "view_class", None)
            module = (view_class or route.callback).__module__
            if route.is_api or route.is_admin or module.startswith(THIRD_PARTY_MODULES):
                continue
            methods = (
                [m for m in WRITE_METHODS if hasattr(view_class, m)]
                if view_class is not None
                else list(WRITE_METHODS)  # a function view: asked below whether it answers
            )
            for method in methods:
                cases.append((host, urlconf, route, view_class, method))
    return cases


def test_it_holds_every_state_changing_page_to_its_declared_action(world):
    victim, people = world
    undeclared, wrong, clients = [], [], {}
    checked = 0
    for host, urlconf, route, view_class, method in _page_cases(victim):
        for role in ROLES:
            membership, token = people[role]
            path = fill(route.pattern, _fills(victim, membership, token, route.pattern))
            match = resolve(path, urlconf=urlconf)
            client = _signed_in(clients, Client, role, host, membership.user)
            if view_class is None:
                response = _run(client, method, path)
                if response.status_code == 405:
                    break  # the function view does not take this method: it changes nothing
                action = getattr(route.callback, "action", None)
            else:
                action = page_action(view_class, method, match.kwargs)
                response = _run(client, method, path)
            label = f"{method.upper()} /{route.pattern} ({route.name})"
            if action is None:
                undeclared.append(label)
                break
            checked += 1
            allowed = expected_allowed(role, action, membership)
            status = response.status_code
            if status >= 500 or (allowed and status == 403) or (not allowed and status != 403):
                wrong.append(f"{label} as {role}: {status}, expected {allowed=} for {action}")
    assert not undeclared, (
        "These state-changing pages declare no action (set `action`, `method_actions` or "
        f"`required_action()`; permissions.NO_ROLE when no role is needed): {undeclared}"
    )
    assert not wrong, "\n".join(wrong)
    assert checked >= 5 * 30, checked  # the enumeration found the pages


def test_it_holds_every_state_changing_api_operation_to_its_declared_action(world):
    victim, people = world
    undeclared, wrong, clients = [], [], {}
    covered = set()
    host = victim.organization
    for method, template, operation_id in openapi_operations():
        method = method.lower()
        if method not in WRITE_METHODS:
            continue
        for role in ROLES:
            membership, token = people[role]
            path = fill_openapi(template, _fills(victim, membership, token, template))
            match = resolve(path, urlconf="windflow.urls")
            covered.add((match.url_name, method))
            action = api_action(match.func, method, match.kwargs)
            label = f"{method.upper()} {template} ({operation_id})"
            if action is None:
                undeclared.append(label)
                break
            client = _signed_in(clients, APIClient, role, host, membership.user)
            response = _run(client, method, path, data={}, format="json")
            allowed = expected_allowed(role, action, membership)
            status = response.status_code
            if status >= 500 or (allowed and status == 403) or (not allowed and status != 403):
                wrong.append(
                    f"{label} as {role}: {status} {response.content[:200]!r}, "
                    f"expected {allowed=} for {action}"
                )
    assert not undeclared, (
        "These state-changing API operations declare no action (action_verbs or "
        f"required_action()): {undeclared}"
    )
    assert not wrong, "\n".join(wrong)
    # Every API URL pattern that takes a write is in the OpenAPI document, so it was tried.
    missing = []
    for route in url_routes("windflow.urls"):
        actions = getattr(route.callback, "actions", None)
        view_class = getattr(route.callback, "cls", None)
        if not route.is_api or view_class is None:
            continue
        methods = (
            [m for m in actions if m in WRITE_METHODS]
            if actions is not None
            else [m for m in WRITE_METHODS if hasattr(view_class, m)]
        )
        methods = [m for m in methods if m in view_class.http_method_names]
        missing += [
            f"{m.upper()} /{route.pattern}" for m in methods if (route.name, m) not in covered
        ]
    assert not missing, f"API routes that take writes but are not in the OpenAPI schema: {missing}"


def test_it_fails_a_state_changing_route_that_declares_nothing():
    """The declaration the matrix reads is the one the code enforces: a page without an
    action answers None, and so does an API action missing from `action_verbs`."""
    from windflow.api.viewsets import OrganizationViewSet
    from windflow.views import OrganizationView

    class Undeclared(OrganizationView):
        def post(self, request):
            raise AssertionError

    class Declared(OrganizationView):
        action = "stack.view"
        method_actions = {"post": "stack.change"}

    assert page_action(Undeclared, "post", {}) is None
    assert page_action(Declared, "post", {}) == "stack.change"
    assert page_action(Declared, "get", {}) == "stack.view"

    class Things(OrganizationViewSet):
        resource = "stack"
        action_verbs = {"create": "change", "revisions": {"get": "view", "post": "change"}}

    view = Things()
    for action, method, expected in (
        ("create", "POST", "stack.change"),
        ("revisions", "POST", "stack.change"),
        ("revisions", "GET", "stack.view"),
        ("frobnicate", "POST", None),
    ):
        view.action = action
        assert view.required_action(_Request(method)) == expected


def test_it_opens_every_page_of_the_organisation_admin_to_owners_and_admins_only(world):
    """The organisation's admin (issue 12), enumerated from its URL patterns: owners and
    admins get each list; the other roles are sent to the sign-in, which refuses them (403),
    never a page; no role gets a 5xx. (Platform staff: tests/accounts/test_support.py.)"""
    victim, people = world
    pages = [
        route
        for route in url_routes("windflow.urls")
        if route.is_admin and route.name and route.name.endswith("_changelist")
    ]
    assert len(pages) >= 8, [route.name for route in pages]
    clients, wrong = {}, []
    for route in pages:
        path = fill(route.pattern, {})
        for role in ROLES:
            membership, _token = people[role]
            client = _signed_in(clients, Client, role, victim.organization, membership.user)
            response = _run(client, "get", path)
            allowed = permissions.can_use_admin(membership)
            status = response.status_code
            if status >= 500 or (allowed and status != 200) or (not allowed and status != 302):
                wrong.append(f"GET {path} as {role}: {status}")
            elif not allowed and client.get(response["Location"]).status_code != 403:
                wrong.append(f"GET {path} as {role}: its sign-in let them in")
    assert not wrong, "\n".join(wrong)
