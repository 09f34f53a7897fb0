"""The compose policy: defaults, the page and the API, per-environment overrides, bad input,
and the audit trail of every edit."""

import pytest
from django.db import connection

from apps.audit.models import AuditEvent
from apps.environments import policy
from apps.environments.models import ComposePolicy, Environment
from tests.base import api_client, client_for, error_of
from windflow.engine.compose.hostaccess import FEATURES

URL = "/api/v1/compose-policy/"


@pytest.fixture
def staging(in_acme):
    return Environment.objects.create(name="staging", slug="staging")


def test_it_lets_only_owners_and_admins_deploy_host_features_by_default(in_acme):
    assert not ComposePolicy.objects.exists()
    assert policy.organisation_rules() == {feature: "admin" for feature in FEATURES}
    assert ComposePolicy.objects.count() == 1
    assert policy.get_policy().allowed_paths == []


def test_it_shows_the_policy_to_every_member_and_changes_it_for_admins(
    acme, in_acme, viewer, operator, admin
):
    body = api_client(viewer, acme).get(URL).json()
    assert body["rules"] == {feature: "admin" for feature in FEATURES}
    assert body["levels"] == ["developer", "operator", "admin", "owner", "nobody"]
    assert set(body["features"]) == set(FEATURES)
    refused = api_client(operator, acme).patch(
        URL, {"rules": {"privileged": "operator"}}, format="json"
    )
    assert refused.status_code == 403 and error_of(refused)["code"] == "permission_denied"
    response = api_client(admin, acme).patch(
        URL,
        {
            "rules": {"privileged": "nobody", "cap_add": "developer"},
            "allowed_paths": ["/srv/apps/"],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rules"]["privileged"] == "nobody" and body["rules"]["cap_add"] == "developer"
    assert body["rules"]["devices"] == "admin"
    assert body["allowed_paths"] == ["/srv/apps"]
    event = AuditEvent.objects.get(action="compose_policy.update")
    assert event.actor_label.startswith("admin@acme.test")
    assert event.changes == {
        "rules.privileged": ["admin", "nobody"],
        "rules.cap_add": ["admin", "developer"],
        "allowed_paths": [[], ["/srv/apps"]],
    }
    # The same again changes nothing and records nothing.
    api_client(admin, acme).put(URL, {"rules": {"privileged": "nobody"}}, format="json")
    assert AuditEvent.objects.filter(action="compose_policy.update").count() == 1


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        ({"rules": {"root": "admin"}}, "rules", "not a host-level feature"),
        ({"rules": {"privileged": "superuser"}}, "rules", "not a level"),
        ({"rules": {"privileged": "viewer"}}, "rules", "not a level"),
        ({"rules": "admin"}, "rules", ""),
        ({"allowed_paths": ["srv/apps"]}, "allowed_paths", "not an absolute path"),
        ({"allowed_paths": ["./data"]}, "allowed_paths", "not an absolute path"),
        ({"allowed_paths": ["/srv/../etc"]}, "allowed_paths", "'..'"),
        ({"allowed_paths": ["/"]}, "allowed_paths", "sensitive"),
        ({"allowed_paths": ["/var/run"]}, "allowed_paths", "sensitive"),
        ({"allowed_paths": ["/etc/"]}, "allowed_paths", "sensitive"),
        ({"allowed_paths": "/srv"}, "allowed_paths", ""),
        ({"allowed_paths": ["/srv/" + "a" * 600]}, "allowed_paths", ""),
    ],
)
def test_it_refuses_bad_policy_input_with_a_400_naming_the_rule(
    acme, in_acme, owner, payload, field, words
):
    response = api_client(owner, acme).patch(URL, payload, format="json")
    assert response.status_code == 400, response.content
    error = error_of(response)
    assert field in error["fields"]
    assert words in str(error["fields"][field])
    assert policy.organisation_rules() == {feature: "admin" for feature in FEATURES}
    assert policy.get_policy().allowed_paths == []
    assert not AuditEvent.objects.filter(action="compose_policy.update").exists()


def test_it_overrides_features_per_environment(acme, in_acme, staging, admin, developer):
    url = f"/api/v1/environments/{staging.slug}/compose-policy/"
    assert api_client(developer, acme).get(url).json()["overrides"] == {}
    refused = api_client(developer, acme).patch(
        url, {"overrides": {"cap_add": "developer"}}, format="json"
    )
    assert refused.status_code == 403
    client = api_client(admin, acme)
    body = client.patch(
        url, {"overrides": {"cap_add": "developer", "privileged": "nobody"}}, format="json"
    ).json()
    assert body["overrides"] == {"privileged": "nobody", "cap_add": "developer"}
    assert body["effective"]["cap_add"] == {"level": "developer", "from": "environment"}
    assert body["effective"]["devices"] == {"level": "admin", "from": "organisation"}
    body = client.patch(url, {"overrides": {"privileged": None}}, format="json").json()
    assert body["overrides"] == {"cap_add": "developer"}
    body = client.put(url, {"overrides": {"sysctls": "operator"}}, format="json").json()
    assert body["overrides"] == {"sysctls": "operator"}
    bad = client.patch(url, {"overrides": {"pid": "admin"}}, format="json")
    assert bad.status_code == 400 and "overrides" in error_of(bad)["fields"]
    bad = client.patch(url, {"overrides": {"sysctls": "root"}}, format="json")
    assert bad.status_code == 400
    staging.refresh_from_db()
    assert staging.compose_overrides == {"sysctls": "operator"}
    events = AuditEvent.objects.filter(action="environment.compose_policy").order_by("id")
    assert [e.changes for e in events] == [
        {"overrides.privileged": [None, "nobody"], "overrides.cap_add": [None, "developer"]},
        {"overrides.privileged": ["nobody", None]},
        {"overrides.cap_add": ["developer", None], "overrides.sysctls": [None, "operator"]},
    ]
    assert all(e.object_label == "staging" for e in events)


def test_it_keeps_overrides_out_of_the_environment_edit(acme, in_acme, staging, operator):
    response = api_client(operator, acme).patch(
        f"/api/v1/environments/{staging.slug}/",
        {"description": "x", "compose_overrides": {"privileged": "developer"}},
        format="json",
    )
    assert response.status_code == 200
    staging.refresh_from_db()
    assert staging.compose_overrides == {}


def test_it_edits_the_policy_on_its_page(acme, in_acme, owner, developer):
    page = client_for(developer, acme).get("/environments/compose-policy/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Privileged containers" in body and "disabled" in body
    assert client_for(developer, acme).post("/environments/compose-policy/", {}).status_code == 403
    data = {feature: "admin" for feature in FEATURES}
    client = client_for(owner, acme)
    bad = client.post(
        "/environments/compose-policy/",
        {**data, "allowed_paths": "/srv/apps\nrelative/path"},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 422
    assert "relative/path cannot be allowed: it is not an absolute path" in bad.content.decode()
    unknown = client.post("/environments/compose-policy/", {**data, "privileged": "root"})
    assert "Select a valid choice" in unknown.content.decode()
    assert policy.get_policy().allowed_paths == []
    saved = client.post(
        "/environments/compose-policy/",
        {**data, "host_path": "operator", "allowed_paths": "# apps\n/srv/apps\n/data/"},
        HTTP_HX_REQUEST="true",
    )
    assert saved.status_code == 200 and saved["HX-Redirect"] == "/environments/compose-policy/"
    assert policy.organisation_rules()["host_path"] == "operator"
    assert policy.get_policy().allowed_paths == ["/srv/apps", "/data"]
    event = AuditEvent.objects.get(action="compose_policy.update")
    assert event.changes["rules.host_path"] == ["admin", "operator"]


def test_it_edits_an_environment_override_on_its_page(acme, in_acme, staging, admin, operator):
    url = f"/environments/{staging.slug}/compose-policy/"
    assert client_for(operator, acme).post(url, {"privileged": "developer"}).status_code == 403
    page = client_for(operator, acme).get(url).content.decode()
    assert "As the organisation: Admins and owners" in page
    data = {feature: "" for feature in FEATURES}
    saved = client_for(admin, acme).post(url, {**data, "devices": "nobody"})
    assert saved.status_code == 302
    staging.refresh_from_db()
    assert staging.compose_overrides == {"devices": "nobody"}
    assert AuditEvent.objects.filter(action="environment.compose_policy").count() == 1
    bad = client_for(admin, acme).post(url, {**data, "devices": "everyone"})
    assert "Select a valid choice" in bad.content.decode()
    detail = client_for(operator, acme).get(f"/environments/{staging.slug}/").content.decode()
    assert url in detail


def test_it_reserves_the_policy_page_slug(acme, in_acme, owner):
    response = api_client(owner, acme).post(
        "/api/v1/environments/", {"name": "compose policy"}, format="json"
    )
    assert response.status_code == 400
    assert "reserved" in str(error_of(response)["fields"])
    assert not Environment.objects.exists()
    connection.set_schema_to_public()
