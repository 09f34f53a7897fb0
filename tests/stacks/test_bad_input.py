"""Bad input to the stack pages and API: a clear 4xx or a form error, never a 500."""

import pytest

from tests.base import COMPOSE, api_client, client_for, error_of

ODD_BODIES = [
    [],
    "text",
    None,
    42,
    {"name": None},
    {"name": ["a"]},
    {"name": "x" * 10_000},
    {"name": "\x00bad"},
    {"name": "ok", "environment": None, "target": 5, "compose": COMPOSE},
    {"name": "ok", "environment": "staging", "target": "web-1", "compose": None},
    {"name": "ok", "environment": "staging", "target": "web-1", "compose": ["a"]},
    {"name": "ok", "environment": "staging", "target": "web-1", "compose": "\x00"},
    {
        "name": "ok",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "variables": [],
    },
    {
        "name": "ok",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "variables": {"A": {"d": 1}},
    },
    {
        "name": "ok",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "secrets": [None],
    },
    {
        "name": "ok",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "secrets": ["\x00"],
    },
    {
        "name": "ok",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "health_timeout": "soon",
    },
    {"name": "ok", "environment": "staging", "target": "web-1", "compose": "a: *nope"},
    {"compose": 12, "variables": "A=1", "secrets": {"x": 1}},
    {"grace_period": -1, "environment": "nowhere", "target": ""},
]


@pytest.fixture
def shop(make_stack):
    return make_stack()


def test_it_answers_odd_bodies_with_a_clear_4xx(owner, acme, shop):
    client = api_client(owner, acme)
    for method, url in (
        ("post", "/api/v1/stacks/"),
        ("post", "/api/v1/stacks/shop/revisions/"),
        ("post", "/api/v1/stacks/shop/validate/"),
        ("patch", "/api/v1/stacks/shop/"),
    ):
        for body in ODD_BODIES:
            response = getattr(client, method)(url, body, format="json")
            assert response.status_code < 500, (url, body, response.content[:300])
            if response.status_code >= 400:
                assert error_of(response)["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/stacks/?page=abc",
        "/api/v1/stacks/?environment=%00",
        "/api/v1/stacks/?search=%00&target=nope",
        "/api/v1/stacks/?ordering=nope",
        "/api/v1/stacks/shop/diff/?from=-1&to=99999999999999999999",
        "/api/v1/stacks/shop/diff/?from=%00",
        "/api/v1/stacks/sh%00op/",
        "/api/v1/stacks/shop/revisions/99999999999999999999/",
    ],
)
def test_it_answers_odd_api_queries_without_a_500(owner, acme, shop, url):
    response = api_client(owner, acme).get(url)
    assert response.status_code in (200, 400, 404), response.content[:300]


@pytest.mark.parametrize(
    "url",
    [
        "/stacks/?page=abc&environment=%00&target=x",
        "/stacks/?q=%00",
        "/stacks/sh%00op/",
        "/stacks/shop/revisions/99999999999999999999/",
        "/stacks/shop/revisions/1/diff/?from=%00&to=99999999999999999999",
    ],
)
def test_it_answers_odd_page_queries_without_a_500(owner, acme, shop, url):
    assert client_for(owner, acme).get(url).status_code in (200, 400, 404)


def test_it_answers_odd_form_posts_with_form_errors(owner, acme, shop):
    client = client_for(owner, acme)
    for data in (
        {},
        {"name": "\x00", "environment": "x", "target": "99999999999999999999", "compose": "\x00"},
        {"name": "ok", "environment": "-1", "health_timeout": "x", "compose": COMPOSE},
    ):
        assert client.post("/stacks/add/", data).status_code == 200
        assert client.post("/stacks/shop/edit/", data).status_code == 200
        assert client.post("/stacks/shop/settings/", data).status_code == 200
    for data in (
        {},
        {"compose": "\x00", "environment": "99999999999999999999", "name": "\x00"},
        {"compose": COMPOSE, "variables": "\x00=1", "secrets": ["\x00", ""]},
    ):
        assert client.post("/stacks/validate/", data).status_code == 200
    # A NUL in the address is refused before any view (windflow.middleware.RefuseNulMiddleware).
    assert client.post("/stacks/validate/?stack=%00", {"compose": COMPOSE}).status_code == 400
    assert client.post("/stacks/shop/revisions/99999999999999999999/rollback/").status_code == 404
