"""Bad input gets a clear 4xx, never a 500, on every API endpoint and the main pages."""

import json

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


# --- Issue 9: seven inputs that answered 500 ------------------------------------------------


def _nested(depth: int, leaf="x") -> str:
    return "[" * depth + json.dumps(leaf) + "]" * depth


def test_it_refuses_a_nul_byte_in_a_url_lookup_with_a_400(owner, acme):
    response = api_client(owner, acme).get("/api/v1/environments/a%00b/")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert error["code"] == "nul_character"
    assert "NUL" in error["message"]
    page = client_for(owner, acme).get("/environments/a%00b/")
    assert page.status_code == 400
    query = api_client(owner, acme).get("/api/v1/deployments/?stack=a%00b")
    assert query.status_code == 400
    assert error_of(query)["code"] == "nul_character"


def test_it_refuses_a_nul_byte_anywhere_in_a_json_body(owner, acme, in_acme):
    from apps.targets.models import Target

    client = api_client(owner, acme)
    for body in (
        {"name": "web-9", "kind": "ssh", "host": "10.0.0.9", "labels": {"role": "a\x00b"}},
        {"name": "web-9", "kind": "ssh", "host": "10.0.0.9", "labels": {"a\x00b": "x"}},
    ):
        response = client.post("/api/v1/targets/", body, format="json")
        assert response.status_code == 400, response.content
        error = error_of(response)
        assert error["code"] == "nul_character"
        assert "NUL" in error["message"]
    assert not Target.objects.filter(name="web-9").exists()
    # A form-encoded body too.
    response = client.post("/api/v1/environments/", {"name": "q\x00a", "kind": "dev"})
    assert response.status_code == 400
    assert error_of(response)["code"] == "nul_character"


def test_it_refuses_a_nul_byte_in_a_target_label_on_the_form(owner, acme, in_acme):
    from apps.targets.models import Target

    target = Target.objects.create(name="web-9", slug="web-9", kind="ssh", host="10.0.0.9")
    response = client_for(owner, acme).post("/servers/web-9/edit/", {"labels": "role=a\x00b"})
    assert response.status_code in (200, 422)
    assert "Null characters are not allowed" in response.content.decode()
    target.refresh_from_db()
    assert target.labels == {}


def test_it_refuses_json_nested_too_deep_with_a_400_naming_the_rule(owner, acme, in_acme):
    from apps.environments.models import Environment

    client = api_client(owner, acme)
    before = Environment.objects.count()
    response = client.post(
        "/api/v1/environments/", _nested(50_000), content_type="application/json"
    )
    assert response.status_code == 400, response.content[:300]
    error = error_of(response)
    assert error["code"] == "too_deep"
    assert "64" in error["message"]
    variables = '{"GREETING": ' + "{" * 5000 + "}" * 5000 + "}"
    body = '{"compose": "services: {}", "variables": ' + variables + "}"
    response = client.post("/api/v1/stacks/validate/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert error_of(response)["code"] == "too_deep"
    assert Environment.objects.count() == before
    # Brackets inside strings are text, not nesting; a sane depth still parses.
    fine = {"name": "deep-ok", "kind": "dev", "description": "[" * 500}
    assert client.post("/api/v1/environments/", fine, format="json").status_code == 201
    response = client.post("/api/v1/environments/", _nested(60), content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] != "too_deep"


def test_it_answers_an_unknown_audit_export_format_with_a_404(owner, acme):
    response = client_for(owner, acme).get("/audit/export.xml")
    assert response.status_code == 404
    assert client_for(owner, acme).get("/audit/export.csv").status_code == 200


def test_it_refuses_deleting_an_environment_a_stack_uses(owner, acme, in_acme):
    from apps.environments.models import Environment
    from apps.stacks.models import Stack
    from apps.targets.models import Target

    environment = Environment.objects.create(name="qa", slug="qa")
    target = Target.objects.create(name="web-9", slug="web-9", kind="ssh", host="10.0.0.9")
    Stack.objects.create(name="shop", environment=environment, target=target, created_by=owner)
    response = api_client(owner, acme).delete("/api/v1/environments/qa/")
    assert response.status_code == 409, response.content
    error = error_of(response)
    assert error["code"] == "in_use"
    assert "shop" in error["message"]
    page = client_for(owner, acme).post("/environments/qa/delete/", follow=True)
    assert page.status_code == 200
    assert any("shop" in str(message) for message in page.context["messages"])
    assert Environment.objects.filter(slug="qa").exists()
    assert Stack.objects.filter(name="shop").exists()


def test_it_resumes_under_concurrent_requests_without_a_deadlock(live_db):
    """Real threads, each with its own database connection, resume and cancel at once."""
    import threading

    from django.db import connection

    from apps.accounts.models import Membership
    from apps.deployments.choices import DeploymentStatus
    from apps.deployments.models import Deployment
    from apps.environments.models import Environment
    from apps.stacks.models import Stack, StackRevision
    from apps.targets.models import Target
    from tests.live import live_organization

    with live_organization() as world:
        organization = world.organization
        connection.set_tenant(organization)
        environment = Environment.objects.create(name="qa", slug="qa")
        target = Target.objects.create(name="web-9", slug="web-9", kind="ssh", host="10.0.0.9")
        stack = Stack.objects.create(
            name="shop", environment=environment, target=target, created_by=world.owner
        )
        revision = StackRevision.objects.create(
            stack=stack, number=1, compose="services: {}", author=world.owner
        )
        failed = Deployment.objects.create(
            stack=stack,
            number=1,
            revision=revision,
            target=target,
            environment=environment,
            status=DeploymentStatus.FAILED,
        )
        connection.set_schema_to_public()
        membership = Membership.objects.get(user=world.owner, organization=organization)
        from apps.accounts.services import create_api_token

        _token, token = create_api_token(membership, name="race", scope="write")
        results, barrier = [], threading.Barrier(6, timeout=60)

        def resume():
            try:
                client = api_client(None, organization, token=token)
                barrier.wait()
                for _ in range(3):
                    response = client.post(f"/api/v1/deployments/{failed.pk}/resume/")
                    results.append(response.status_code)
                    if response.status_code == 201:
                        created = response.json()["id"]
                        cancelled = client.post(f"/api/v1/deployments/{created}/cancel/")
                        results.append(cancelled.status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=resume) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        connection.set_tenant(organization)
        numbers = sorted(stack.deployments.values_list("number", flat=True))
        connection.set_schema_to_public()
    assert results and all(code in (200, 201, 409) for code in results), results
    assert results.count(201) == 18
    assert numbers == list(range(1, 20))


def test_it_refuses_a_compose_file_upload_holding_a_nul_byte(owner, acme, in_acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from apps.environments.models import Environment
    from apps.stacks.models import Stack
    from apps.targets.models import Target

    environment = Environment.objects.create(name="qa", slug="qa")
    target = Target.objects.create(name="web-9", slug="web-9", kind="ssh", host="10.0.0.9")
    upload = SimpleUploadedFile("compose.yaml", b"services:\n  web:\n    image: busybox\x00\n")
    response = client_for(owner, acme).post(
        "/stacks/add/",
        {
            "name": "shop",
            "environment": environment.pk,
            "target": target.pk,
            "compose_file": upload,
            "health_timeout": 120,
            "grace_period": 10,
        },
    )
    assert response.status_code == 200
    assert "NUL" in response.content.decode()
    assert not Stack.objects.filter(name="shop").exists()
