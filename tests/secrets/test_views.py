from apps.secrets.models import SecretRef
from tests.base import APIViewTestMixin, api_client, client_for, error_of


class TestSecretAPI(APIViewTestMixin):
    list_url = "/api/v1/secrets/"
    create_payload = {"name": "API_KEY", "value": "some-secret-value"}
    minimum_write_role = "admin"

    def create_payload_for(self, persona_key):
        return {"name": f"KEY_{persona_key.upper()}", "value": "some-secret-value"}


def test_it_never_returns_a_value_through_the_api(owner, viewer, acme):
    client = api_client(owner, acme)
    created = client.post(
        "/api/v1/secrets/", {"name": "DB_PASSWORD", "value": "pw-in-clear-1"}, format="json"
    )
    assert created.status_code == 201 and "value" not in created.json()
    secret_id = created.json()["id"]
    for reader in (client, api_client(viewer, acme, scope="read")):
        for url in (
            "/api/v1/secrets/",
            f"/api/v1/secrets/{secret_id}/",
            f"/api/v1/secrets/{secret_id}/versions/",
        ):
            response = reader.get(url)
            assert response.status_code == 200
            assert "pw-in-clear-1" not in response.content.decode()
    rotated = client.post(
        f"/api/v1/secrets/{secret_id}/rotate/", {"value": "pw-in-clear-2"}, format="json"
    )
    assert rotated.json()["version"] == 2 and "pw-in-clear-2" not in rotated.content.decode()


def test_it_answers_bad_secrets_with_clear_errors(owner, acme):
    client = api_client(owner, acme)
    bad_name = client.post(
        "/api/v1/secrets/", {"name": "lower", "value": "long-enough"}, format="json"
    )
    assert bad_name.status_code == 400 and "name" in error_of(bad_name)["fields"]
    too_big = client.post("/api/v1/secrets/", {"name": "BIG", "value": "x" * 70000}, format="json")
    assert too_big.status_code == 400 and "64 KiB" in str(error_of(too_big))
    client.post("/api/v1/secrets/", {"name": "DUP", "value": "long-enough"}, format="json")
    duplicate = client.post(
        "/api/v1/secrets/", {"name": "DUP", "value": "long-enough"}, format="json"
    )
    assert duplicate.status_code == 400 and "already exists" in str(error_of(duplicate))


def test_it_refuses_a_viewer_writing_or_rotating(owner, viewer, acme):
    created = (
        api_client(owner, acme)
        .post("/api/v1/secrets/", {"name": "DB_PASSWORD", "value": "pw-in-clear-1"}, format="json")
        .json()
    )
    reader = api_client(viewer, acme, scope="read")
    assert (
        reader.post(
            f"/api/v1/secrets/{created['id']}/rotate/", {"value": "x" * 8}, format="json"
        ).status_code
        == 403
    )


def test_it_creates_rotates_and_deletes_from_the_pages(owner, acme, in_acme):
    client = client_for(owner, acme)
    response = client.post(
        "/secrets/add/",
        {"name": "REGISTRY_TOKEN", "value": "tok-abcdef", "description": "for the registry"},
    )
    secret = SecretRef.objects.get(name="REGISTRY_TOKEN")
    assert response.status_code == 302
    page = client.get(f"/secrets/{secret.pk}/").content.decode()
    assert "REGISTRY_TOKEN" in page and "tok-abcdef" not in page
    client.post(f"/secrets/{secret.pk}/", {"value": "tok-rotated"})
    secret.refresh_from_db()
    assert secret.version == 2
    client.post(f"/secrets/{secret.pk}/delete/")
    assert not SecretRef.objects.exists()


def test_it_never_echoes_a_value_back_after_a_form_error(owner, acme, in_acme):
    response = client_for(owner, acme).post(
        "/secrets/add/", {"name": "bad name", "value": "do-not-echo-me"}
    )
    body = response.content.decode()
    assert "upper-case identifier" in body and "do-not-echo-me" not in body


def test_it_shows_names_only_to_viewers(owner, viewer, acme, in_acme):
    client_for(owner, acme).post("/secrets/add/", {"name": "DB_PASSWORD", "value": "pw-1234"})
    client = client_for(viewer, acme)
    assert "DB_PASSWORD" in client.get("/secrets/").content.decode()
    assert client.get("/secrets/add/").status_code == 403
    secret = SecretRef.objects.get()
    assert client.post(f"/secrets/{secret.pk}/", {"value": "stolen-value"}).status_code == 403
