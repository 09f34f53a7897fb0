import pytest

from apps.stacks.models import Stack
from tests.base import COMPOSE, APIViewTestMixin, api_client, error_of


def payload(**fields):
    body = {
        "name": "shop",
        "environment": "staging",
        "target": "web-1",
        "compose": COMPOSE,
        "variables": {"EXTRA": "1"},
        "message": "first",
        "health_timeout": 60,
    }
    body.update(fields)
    return body


class TestStackAPI(APIViewTestMixin):
    list_url = "/api/v1/stacks/"
    create_payload = payload()
    minimum_write_role = "developer"

    @pytest.fixture(autouse=True)
    def _place(self, staging, local_target):
        """The environment and server every payload names."""


def test_it_creates_lists_and_reads_stacks(owner, acme, staging, local_target):
    client = api_client(owner, acme)
    response = client.post("/api/v1/stacks/", payload(target="web-1"), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "shop" and body["latest_revision"] == 1
    assert body["environment"] == "staging" and body["target"] == "web-1"
    assert body["health_timeout"] == 60 and body["current_revision"] is None
    listed = client.get("/api/v1/stacks/?search=sho").json()
    assert [s["name"] for s in listed["results"]] == ["shop"]
    assert client.get("/api/v1/stacks/?environment=staging").json()["count"] == 1
    assert client.get("/api/v1/stacks/shop/").json()["uid"] == body["uid"]


def test_it_creates_and_reads_revisions(owner, acme, staging, local_target):
    client = api_client(owner, acme)
    client.post("/api/v1/stacks/", payload(), format="json")
    same = client.post(
        "/api/v1/stacks/shop/revisions/",
        {"compose": COMPOSE, "variables": {"EXTRA": "1"}},
        format="json",
    )
    assert same.status_code == 409 and error_of(same)["code"] == "no_changes"
    created = client.post(
        "/api/v1/stacks/shop/revisions/",
        {"compose": COMPOSE.replace("1.27", "1.28"), "message": "bump"},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["number"] == 2
    listed = client.get("/api/v1/stacks/shop/revisions/").json()
    assert [r["number"] for r in listed["results"]] == [2, 1]
    assert "compose" not in listed["results"][0]
    detail = client.get("/api/v1/stacks/shop/revisions/1/").json()
    assert detail["compose"] == COMPOSE and detail["variables"] == {"EXTRA": "1"}
    assert client.get("/api/v1/stacks/shop/revisions/9/").status_code == 404
    diff = client.get("/api/v1/stacks/shop/diff/").json()
    assert diff["from"] == 1 and diff["to"] == 2
    assert {"kind": "add", "text": "+    image: nginx:1.28", "old": None, "new": 3} in diff["lines"]
    bad = client.get("/api/v1/stacks/shop/diff/?from=7")
    assert bad.status_code == 400 and "no revision 7" in str(error_of(bad))
    assert client.get("/api/v1/stacks/shop/").json()["latest_revision"] == 2


def test_it_validates_without_storing(owner, acme, staging, local_target):
    client = api_client(owner, acme)
    client.post("/api/v1/stacks/", payload(), format="json")
    response = client.post(
        "/api/v1/stacks/shop/validate/",
        {"compose": "services:\n  web:\n    build: .\n", "secrets": ["NOPE"]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["services"] == []
    rules = {p["rule"]: p for p in body["problems"]}
    assert (
        rules["compose-unsupported"]["line"] == 3 and rules["secret-missing"]["severity"] == "error"
    )
    good = client.post("/api/v1/stacks/shop/validate/", {"compose": COMPOSE}, format="json")
    assert good.json()["ok"] is True and good.json()["services"] == ["web"]
    assert Stack.objects.get().revisions.count() == 1


def test_it_answers_bad_input_with_400_json_bodies(owner, acme, staging, local_target):
    client = api_client(owner, acme)
    malformed = client.post("/api/v1/stacks/", payload(compose="services: [\n"), format="json")
    assert malformed.status_code == 400
    assert "Invalid YAML" in error_of(malformed)["fields"]["compose"][0]
    schema = client.post(
        "/api/v1/stacks/",
        payload(compose="services:\n  web:\n    image: nginx:1\n    ports: 12\n"),
        format="json",
    )
    assert schema.status_code == 400
    assert "Line 4" in error_of(schema)["fields"]["compose"][0]
    unknown = client.post("/api/v1/stacks/", payload(environment="nowhere"), format="json")
    assert unknown.status_code == 400 and "environment" in error_of(unknown)["fields"]
    no_server = client.post("/api/v1/stacks/", payload(target="nowhere"), format="json")
    assert "No server is called" in error_of(no_server)["fields"]["target"][0]
    bad_vars = client.post("/api/v1/stacks/", payload(variables={"1X": "a"}), format="json")
    assert bad_vars.status_code == 400 and "variables" in error_of(bad_vars)["fields"]
    bad_secrets = client.post("/api/v1/stacks/", payload(secrets="DB"), format="json")
    assert bad_secrets.status_code == 400
    bad_name = client.post("/api/v1/stacks/", payload(name="Not Valid"), format="json")
    assert bad_name.status_code == 400 and "name" in error_of(bad_name)["fields"]
    assert not Stack.objects.exists()


def test_it_changes_settings_and_deletes(owner, acme, staging, local_target):
    client = api_client(owner, acme)
    client.post("/api/v1/stacks/", payload(), format="json")
    changed = client.patch("/api/v1/stacks/shop/", {"grace_period": 30}, format="json")
    assert changed.status_code == 200 and changed.json()["grace_period"] == 30
    content = client.patch("/api/v1/stacks/shop/", {"compose": "x"}, format="json")
    assert content.status_code == 400 and "compose" in error_of(content)["fields"]
    stack = Stack.objects.get()
    stack.current_revision = stack.latest_revision
    stack.save()
    refused = client.delete("/api/v1/stacks/shop/")
    assert (
        refused.status_code == 409 and "Remove it from the server" in error_of(refused)["message"]
    )
    stack.current_revision = None
    stack.save()
    assert client.delete("/api/v1/stacks/shop/").status_code == 204


def test_it_lets_viewers_read_only(owner, viewer, acme, staging, local_target):
    api_client(owner, acme).post("/api/v1/stacks/", payload(), format="json")
    client = api_client(viewer, acme, scope="read")
    assert client.get("/api/v1/stacks/shop/revisions/1/").status_code == 200
    for response in (
        client.post("/api/v1/stacks/shop/revisions/", {"compose": COMPOSE}, format="json"),
        client.patch("/api/v1/stacks/shop/", {"grace_period": 1}, format="json"),
        client.delete("/api/v1/stacks/shop/"),
        client.post("/api/v1/stacks/shop/validate/", {"compose": COMPOSE}, format="json"),
    ):
        assert response.status_code == 403, response.content


def test_it_keeps_stacks_from_other_organisations(
    owner, outsider, acme, globex, staging, local_target
):
    api_client(owner, acme).post("/api/v1/stacks/", payload(), format="json")
    other = api_client(outsider, globex)
    assert other.get("/api/v1/stacks/").json()["count"] == 0
    assert other.get("/api/v1/stacks/shop/").status_code == 404
    assert other.get("/api/v1/stacks/shop/revisions/1/").status_code == 404
    token = other._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert api_client(None, acme, token=token).get("/api/v1/stacks/shop/").status_code == 401


def test_it_validates_before_the_stack_exists(owner, acme, staging):
    client = api_client(owner, acme)
    response = client.post(
        "/api/v1/stacks/validate/",
        {"compose": COMPOSE, "environment": "staging", "name": "shop"},
        format="json",
    )
    assert response.status_code == 200 and response.json()["ok"] is True
    alone = client.post("/api/v1/stacks/validate/", {"compose": COMPOSE}, format="json").json()
    assert alone["ok"] is False
    assert [p["rule"] for p in alone["problems"] if p["severity"] == "error"] == [
        "variable-missing"
    ]
    unknown = client.post(
        "/api/v1/stacks/validate/", {"compose": COMPOSE, "environment": "nope"}, format="json"
    )
    assert unknown.status_code == 400 and "environment" in error_of(unknown)["fields"]


FIVE_MISSING = (
    "services:\n  web:\n    image: nginx:1.27\n    environment:\n"
    "      A: ${ONE}\n      B: ${TWO}\n      C: ${THREE}\n      D: ${FOUR}\n      E: ${FIVE}\n"
)


def test_it_lists_every_missing_variable_when_it_refuses_a_stack(
    owner, acme, staging, local_target
):
    client = api_client(owner, acme)
    checked = client.post(
        "/api/v1/stacks/validate/",
        {"compose": FIVE_MISSING, "environment": "staging"},
        format="json",
    ).json()
    assert [p["rule"] for p in checked["problems"] if p["severity"] == "error"] == [
        "variable-missing"
    ] * 5
    refused = client.post("/api/v1/stacks/", payload(compose=FIVE_MISSING), format="json")
    assert refused.status_code == 400
    messages = error_of(refused)["fields"]["compose"]
    assert len(messages) == 5
    for line, name in enumerate(("ONE", "TWO", "THREE", "FOUR", "FIVE"), start=5):
        (message,) = [m for m in messages if f'"{name}"' in m]
        assert message.startswith(f'variable "{name}" is not set') and f"(line {line})" in message
        assert f"Add {name}=value to the stack's variables" in message
    assert not Stack.objects.exists()


def test_it_reports_every_kind_of_problem_in_one_validation(owner, acme, staging):
    compose = (
        "services:\n  web:\n    build: .\n    image: shop/web:${TAG}\n    secrets: [db]\n"
        "    volumes: [cache:/cache]\n"
    )
    body = (
        api_client(owner, acme)
        .post(
            "/api/v1/stacks/validate/",
            {"compose": compose, "environment": "staging"},
            format="json",
        )
        .json()
    )
    errors = [
        (p["rule"], p["path"], p["line"]) for p in body["problems"] if p["severity"] == "error"
    ]
    assert errors == [
        ("compose-unsupported", "services.web.build", 3),
        ("variable-missing", "services.web.image", 4),
        ("compose-undeclared-secret", "services.web.secrets[0]", 5),
        ("compose-undeclared-volume", "services.web.volumes[0]", 6),
    ]
