"""The bases that pages and API viewsets share (windflow.views.ObjectView,
windflow.api.viewsets.OrganizationViewSet) and the access helpers they ask
(`get_<model>_for`): a missing object and another organisation's are a 404; a role below
the request's action is a 403 that names the role."""

import pytest
from django.test import RequestFactory
from django_tenants.utils import tenant_context

from apps.accounts import services as accounts
from apps.environments import services as environments
from apps.environments.models import Environment
from apps.stacks import services as stacks
from tests.base import api_client, client_for, error_of, host_of, member
from windflow.errors import Forbidden, NotFound
from windflow.views import ObjectView


@pytest.fixture
def staging_env(in_acme):
    return Environment.objects.create(name="Staging", slug="staging")


@pytest.fixture
def globex_env(globex, in_acme):
    """An environment that only globex has (its slug is nowhere in acme)."""
    with tenant_context(globex):
        return Environment.objects.create(name="Globex prod", slug="globex-prod")


class EnvironmentProbe(ObjectView):
    """A page as an app writes one: reads for viewers, deletes for admins."""

    action = "environment.view"
    method_actions = {"post": "environment.delete"}
    get_object_for = staticmethod(environments.get_environment_for)
    lookup_url_kwarg = "slug"


def probe(method: str, membership, slug: str) -> EnvironmentProbe:
    request = getattr(RequestFactory(), method)("/", HTTP_HOST=host_of(membership.organization))
    view = EnvironmentProbe()
    view.setup(request, slug=slug)
    view.membership = membership
    return view


# --- Pages -------------------------------------------------------------------------------


def test_it_gives_the_page_the_object_its_url_names(owner, viewer, acme, staging_env):
    assert probe("get", member(viewer, acme), "staging").get_object() == staging_env
    assert probe("post", member(owner, acme), "staging").get_object() == staging_env
    response = client_for(viewer, acme).get("/environments/staging/")
    assert response.status_code == 200
    assert response.context["object"] == staging_env


def test_it_answers_404_for_a_missing_object(owner, acme, staging_env):
    with pytest.raises(NotFound):
        probe("get", member(owner, acme), "nowhere").get_object()
    client = client_for(owner, acme)
    assert client.get("/environments/nowhere/").status_code == 404
    assert client.post("/environments/nowhere/delete/").status_code == 404
    assert client.get("/stacks/Not_A_Name/").status_code == 404
    assert client.get("/deployments/999999/").status_code == 404


def test_it_answers_404_for_another_organisations_object(owner, outsider, acme, globex, globex_env):
    with pytest.raises(NotFound):
        probe("get", member(owner, acme), globex_env.slug).get_object()
    client = client_for(owner, acme)
    assert client.get(f"/environments/{globex_env.slug}/").status_code == 404
    assert client.post(f"/environments/{globex_env.slug}/delete/").status_code == 404
    # Members live in the shared schema: the helper keeps to the organisation of the host.
    theirs = member(outsider, globex)
    response = client.post(f"/settings/members/{theirs.pk}/role/", {"role": "viewer"})
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.role == "owner"
    assert client.post(f"/settings/members/{theirs.pk}/remove/").status_code == 404
    with tenant_context(globex):
        assert Environment.objects.filter(slug=globex_env.slug).exists()


def test_it_refuses_a_role_below_the_action_with_its_message(viewer, acme, staging_env):
    with pytest.raises(Forbidden) as refused:
        probe("post", member(viewer, acme), "staging").get_object()
    assert "does not allow you to delete environments" in refused.value.message
    response = client_for(viewer, acme).post("/environments/staging/delete/")
    assert response.status_code == 403
    assert "does not allow you to delete environments" in response.content.decode()
    assert Environment.objects.filter(slug="staging").exists()


# --- API ---------------------------------------------------------------------------------


def test_it_answers_404_through_the_api_for_missing_and_foreign_objects(
    owner, outsider, acme, globex, globex_env
):
    client = api_client(owner, acme)
    for url in (
        "/api/v1/environments/nowhere/",
        f"/api/v1/environments/{globex_env.slug}/",
        f"/api/v1/members/{member(outsider, globex).pk}/",
        "/api/v1/deployments/not-a-number/",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert error_of(response)["code"] == "not_found"
    token, _secret = accounts.create_api_token(member(outsider, globex), name="theirs")
    assert client.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_it_refuses_a_role_below_the_action_through_the_api(developer, acme, staging_env):
    client = api_client(developer, acme)
    assert client.get("/api/v1/environments/staging/").status_code == 200
    response = client.delete("/api/v1/environments/staging/")
    assert response.status_code == 403
    assert "does not allow you to delete environments" in error_of(response)["message"]
    assert Environment.objects.filter(slug="staging").exists()


# --- Access helpers ----------------------------------------------------------------------


def test_it_finds_objects_through_one_helper_per_model(owner, viewer, acme, staging_env):
    assert environments.get_environment_for(member(viewer, acme), "staging") == staging_env
    with pytest.raises(Forbidden):
        environments.get_environment_for(member(viewer, acme), "staging", "environment.delete")
    with pytest.raises(NotFound):
        environments.get_environment_for(None, "staging")
    for name in ("", "Shop", "../x", None, 3):
        with pytest.raises(NotFound):
            stacks.get_stack_for(member(owner, acme), name)
