from apps.environments import services
from apps.environments.models import Environment
from tests.base import client_for


def test_it_lists_with_search_and_serves_the_htmx_partial(owner, acme, in_acme):
    Environment.objects.create(name="staging", slug="staging")
    Environment.objects.create(name="production", slug="production", kind="prod")
    client = client_for(owner, acme)
    page = client.get("/environments/")
    assert page.status_code == 200
    assert "<html" in page.content.decode()
    partial = client.get("/environments/?q=prod", HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body
    assert "production" in body and "staging" not in body


def test_it_paginates_the_list(owner, acme, in_acme):
    Environment.objects.bulk_create(
        [Environment(name=f"env-{i:02d}", slug=f"env-{i:02d}") for i in range(30)]
    )
    body = client_for(owner, acme).get("/environments/?page=2").content.decode()
    assert "env-29" in body and "env-00" not in body
    assert "Page 2 of 2" in body


def test_it_creates_an_environment_from_the_form(owner, acme, in_acme):
    response = client_for(owner, acme).post(
        "/environments/add/",
        {
            "name": "production",
            "kind": "prod",
            "protected": "on",
            "description": "live",
            "variables_text": "REGION=eu-west\n# comment\nREPLICAS=3",
        },
    )
    assert response.status_code == 302
    environment = Environment.objects.get(slug="production")
    assert environment.protected
    assert environment.variables == {"REGION": "eu-west", "REPLICAS": "3"}


def test_it_answers_htmx_posts_with_a_client_redirect(owner, acme, in_acme):
    response = client_for(owner, acme).post(
        "/environments/add/", {"name": "qa", "kind": "dev"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/environments/qa/"


def test_it_shows_form_errors_inline(owner, acme, in_acme):
    Environment.objects.create(name="staging", slug="staging")
    client = client_for(owner, acme)
    duplicate = client.post("/environments/add/", {"name": "staging", "kind": "dev"})
    assert "already exists" in duplicate.content.decode()
    bad_vars = client.post(
        "/environments/add/", {"name": "qa", "kind": "dev", "variables_text": "no equals sign"}
    )
    assert "Line 1: expected NAME=value." in bad_vars.content.decode()
    assert Environment.objects.count() == 1


def test_it_refuses_viewers_everything_but_reading(viewer, acme, in_acme):
    Environment.objects.create(name="staging", slug="staging")
    client = client_for(viewer, acme)
    assert client.get("/environments/").status_code == 200
    assert client.get("/environments/add/").status_code == 403
    assert client.post("/environments/add/", {"name": "x", "kind": "dev"}).status_code == 403
    assert client.post("/environments/staging/delete/").status_code == 403
    assert Environment.objects.count() == 1


def test_it_keeps_operators_from_protecting(operator, acme, in_acme):
    response = client_for(operator, acme).post(
        "/environments/add/", {"name": "prod", "kind": "prod", "protected": "on"}
    )
    # The checkbox is disabled for operators: the value is ignored, not silently applied.
    assert response.status_code == 302
    assert Environment.objects.get(slug="prod").protected is False


def test_it_deletes_after_confirmation(admin, acme, in_acme):
    Environment.objects.create(name="old", slug="old")
    client = client_for(admin, acme)
    confirm = client.get("/environments/old/delete/")
    assert "This cannot be undone" in confirm.content.decode()
    assert client.post("/environments/old/delete/").status_code == 302
    assert not Environment.objects.filter(slug="old").exists()


def test_it_grants_a_developer_deploy_on_a_protected_environment(owner, developer, acme, in_acme):
    from apps.accounts.models import Membership
    from apps.accounts.permissions import can_deploy_to

    production = Environment.objects.create(name="production", slug="production", protected=True)
    staging = Environment.objects.create(name="staging", slug="staging")
    dev_membership = Membership.objects.get(user=developer, organization=acme)
    assert can_deploy_to(dev_membership, staging)
    assert not can_deploy_to(dev_membership, production)
    client_for(owner, acme).post("/environments/production/grants/", {"email": developer.email})
    assert can_deploy_to(dev_membership, production)
    assert developer in services.deploy_grantees(production)
    client_for(owner, acme).post(
        "/environments/production/grants/", {"email": developer.email, "revoke": "1"}
    )
    assert not can_deploy_to(dev_membership, production)


def test_it_does_not_let_a_viewer_grant_themselves(viewer, acme, in_acme):
    from apps.accounts.models import Membership
    from apps.accounts.permissions import can_deploy_to

    production = Environment.objects.create(name="production", slug="production", protected=True)
    response = client_for(viewer, acme).post(
        "/environments/production/grants/", {"email": viewer.email}
    )
    assert response.status_code == 403
    assert not can_deploy_to(Membership.objects.get(user=viewer, organization=acme), production)


def test_it_isolates_environment_pages_between_organisations(owner, outsider, acme, globex):
    from django.db import connection

    connection.set_tenant(acme)
    Environment.objects.create(name="secret-acme", slug="secret-acme")
    connection.set_schema_to_public()
    response = client_for(outsider, globex).get("/environments/secret-acme/")
    assert response.status_code == 404
    assert "secret-acme" not in client_for(outsider, globex).get("/environments/").content.decode()
