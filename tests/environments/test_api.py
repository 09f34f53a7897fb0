from apps.environments.models import Environment
from tests.base import APIViewTestMixin, api_client, error_of


class TestEnvironmentAPI(APIViewTestMixin):
    list_url = "/api/v1/environments/"
    create_payload = {"name": "qa", "kind": "dev"}
    minimum_write_role = "operator"


def test_it_creates_and_lists_environments(acme, owner):
    client = api_client(owner, acme)
    response = client.post(
        "/api/v1/environments/",
        {"name": "production", "kind": "prod", "protected": True, "variables": {"REGION": "eu"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "production"
    assert body["protected"] is True
    listed = client.get("/api/v1/environments/?search=prod").json()
    assert [e["slug"] for e in listed["results"]] == ["production"]


def test_it_does_not_leak_environments_across_organisations(acme, globex, owner, outsider):
    api_client(owner, acme).post("/api/v1/environments/", {"name": "acme-only"}, format="json")
    listed = api_client(outsider, globex).get("/api/v1/environments/").json()
    assert listed["count"] == 0
    response = api_client(outsider, globex).get("/api/v1/environments/acme-only/")
    assert response.status_code == 404


def test_it_refuses_a_duplicate_name(acme, owner):
    client = api_client(owner, acme)
    client.post("/api/v1/environments/", {"name": "staging"}, format="json")
    response = client.post("/api/v1/environments/", {"name": "Staging"}, format="json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "duplicate"
    assert "already exists" in str(error_of(response)["fields"]["name"])
    assert "already exists" in str(error_of(response))


def test_it_refuses_bad_variables(acme, owner):
    response = api_client(owner, acme).post(
        "/api/v1/environments/", {"name": "qa", "variables": {"1BAD": "x"}}, format="json"
    )
    assert response.status_code == 400
    assert "variables" in error_of(response)["fields"]


def test_it_lets_only_admins_protect(acme, operator, in_acme):
    response = api_client(operator, acme).post(
        "/api/v1/environments/", {"name": "prod", "protected": True}, format="json"
    )
    assert response.status_code == 403
    assert not Environment.objects.filter(slug="prod").exists()


def test_it_paginates_by_25(acme, owner, in_acme):
    Environment.objects.bulk_create(
        [Environment(name=f"env-{i:02d}", slug=f"env-{i:02d}") for i in range(30)]
    )
    body = api_client(owner, acme).get("/api/v1/environments/").json()
    assert body["count"] == 30
    assert len(body["results"]) == 25
    assert body["next"]
