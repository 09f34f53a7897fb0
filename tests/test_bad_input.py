"""Bad input gets a clear 4xx, never a 500, on every API endpoint and the main pages."""

import pytest

from tests.base import api_client, client_for, error_of

ODD_BODIES = [
    [],
    [1, 2],
    "text",
    None,
    42,
    {"name": None},
    {"name": ["a"]},
    {"name": {"nested": 1}},
    {"name": "x" * 10_000},
    {"name": "\x00bad"},
    {"name": "ok", "kind": "galaxy"},
    {"name": "ok", "protected": "maybe"},
    {"name": "ok", "variables": []},
    {"name": "ok", "variables": {"A": {"deep": 1}}},
    {"name": "ok", "variables": {"": "x"}},
    {"email": "not-an-email", "role": "king"},
    {"role": None},
    {"scope": "admin", "name": "t", "expires_in_days": -5},
    {"email": "a@b.c", "password": None},
    {"refresh": "garbage"},
]

WRITE_ENDPOINTS = [
    ("post", "/api/v1/environments/"),
    ("post", "/api/v1/invitations/"),
    ("post", "/api/v1/tokens/"),
    ("post", "/api/v1/auth/token/"),
    ("post", "/api/v1/auth/token/refresh/"),
]


@pytest.mark.parametrize(("method", "url"), WRITE_ENDPOINTS)
def test_it_answers_odd_json_bodies_with_a_clear_4xx(owner, acme, method, url):
    client = api_client(owner, acme)
    for body in ODD_BODIES:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code < 500, (url, body, response.content[:300])
        if response.status_code >= 400:
            assert error_of(response)["message"]


def test_it_answers_odd_updates_with_a_clear_4xx(owner, acme, in_acme):
    from apps.accounts.models import Membership
    from apps.environments.models import Environment

    Environment.objects.create(name="staging", slug="staging")
    member = Membership.objects.filter(organization=acme).exclude(user=owner).first()
    client = api_client(owner, acme)
    for body in ODD_BODIES:
        for url in ("/api/v1/environments/staging/", f"/api/v1/members/{member.pk}/"):
            response = client.patch(url, body, format="json")
            assert response.status_code < 500, (url, body, response.content[:300])


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=-1",
        "page=99999",
        "page_size=-3",
        "page_size=abc",
        "ordering=nope",
        "kind=galaxy",
        "protected=maybe",
        "search=%00",
    ],
)
def test_it_answers_odd_query_strings_without_a_500(owner, acme, query):
    response = api_client(owner, acme).get(f"/api/v1/environments/?{query}")
    assert response.status_code in (200, 400, 404), response.content[:300]
    page = client_for(owner, acme).get(f"/environments/?{query}")
    assert page.status_code in (200, 400, 404)


def test_it_answers_odd_forms_without_a_500(owner, acme, in_acme):
    from apps.environments.models import Environment

    Environment.objects.create(name="staging", slug="staging")
    client = client_for(owner, acme)
    odd_forms = [
        {},
        {"name": "", "kind": ""},
        {"name": "x" * 500, "kind": "dev"},
        {"name": "ok", "kind": "galaxy"},
        {"name": "ok", "kind": "dev", "variables_text": "=novalue\nA=1\nA=2"},
    ]
    for url in (
        "/environments/add/",
        "/environments/staging/edit/",
        "/settings/invitations/",
        "/settings/tokens/",
    ):
        for form in odd_forms:
            assert client.post(url, form).status_code < 500, (url, form)
    for url in (
        "/settings/members/999999/role/",
        "/settings/members/999999/remove/",
        "/settings/tokens/999999/revoke/",
        "/environments/missing/grants/",
    ):
        assert client.post(url, {"role": "king"}).status_code == 404
    public = client_for(owner)
    for form in ({}, {"name": "", "slug": ""}, {"name": "x", "slug": "Ünïcode"}):
        assert public.post("/organizations/new/", form).status_code == 200
