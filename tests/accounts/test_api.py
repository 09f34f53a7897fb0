from apps.accounts.models import Membership
from tests.base import (
    PASSWORD,
    APIViewTestMixin,
    ReadOnlyAPITestMixin,
    api_client,
    client_for,
    error_of,
)


class TestMemberAPI(ReadOnlyAPITestMixin):
    """Members join by invitation; their roles change with PATCH."""

    list_url = "/api/v1/members/"


class TestInvitationAPI(APIViewTestMixin):
    list_url = "/api/v1/invitations/"
    minimum_read_role = "admin"
    minimum_write_role = "admin"
    create_payload = {"email": "new@example.com", "role": "viewer"}

    def create_payload_for(self, persona_key):
        return {"email": f"new-{persona_key}@example.com", "role": "viewer"}


class TestTokenAPI(APIViewTestMixin):
    """Every member uses tokens; a read-only token (a viewer's, here) cannot make one."""

    list_url = "/api/v1/tokens/"
    minimum_write_role = "developer"
    create_payload = {"name": "ci", "scope": "read"}

    def test_it_refuses_writes_below_the_minimum_role(self, acme):
        """Members make their own tokens: every persona's write token may (the viewer's test
        token is read-only, so refused as such)."""
        from apps.accounts.models import User
        from tests.base import PERSONAS, ROLES

        for key in ROLES:
            user = User.objects.get(email=PERSONAS[key][0])
            response = api_client(user, acme).post(
                self.list_url, self.create_payload_for(key), format="json"
            )
            if key == "viewer":
                assert response.status_code == 403, response.content
                assert "read-only" in error_of(response)["message"]
            else:
                assert response.status_code == 201, (key, response.content)
                assert response.json()["token"]


def test_it_obtains_a_jwt_pair_bound_to_the_organisation(owner, acme, globex):
    response = api_client(None, acme).post(
        "/api/v1/auth/token/", {"email": owner.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    access = response.json()["access"]
    me = api_client(None, acme, token=access).get("/api/v1/me/")
    assert me.status_code == 200 and me.json()["role"] == "owner"
    # The same JWT does not open another organisation.
    foreign = api_client(None, globex, token=access).get("/api/v1/environments/")
    assert foreign.status_code == 401
    refreshed = api_client(None, acme).post(
        "/api/v1/auth/token/refresh/", {"refresh": response.json()["refresh"]}, format="json"
    )
    assert refreshed.status_code == 200 and refreshed.json()["access"]


def test_it_refuses_a_jwt_for_a_wrong_password(owner, acme):
    response = api_client(None, acme).post(
        "/api/v1/auth/token/", {"email": owner.email, "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert "Wrong email or password" in str(error_of(response))


def test_it_refuses_a_garbage_bearer(acme):
    response = api_client(None, acme, token="not-a-token").get("/api/v1/environments/")
    assert response.status_code == 401
    assert error_of(response)["code"] == "authentication_failed"


def test_it_creates_a_token_and_shows_the_secret_once(developer, acme):
    client = api_client(developer, acme)
    response = client.post("/api/v1/tokens/", {"name": "cli", "scope": "read"}, format="json")
    assert response.status_code == 201
    secret = response.json()["token"]
    listed = client.get("/api/v1/tokens/").json()["results"]
    assert secret not in str(listed)
    assert api_client(None, acme, token=secret).get("/api/v1/me/").status_code == 200


def test_it_refuses_a_viewer_write_with_a_json_403(viewer, acme):
    response = api_client(viewer, acme, scope="read").post(
        "/api/v1/environments/", {"name": "x"}, format="json"
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "permission_denied"


def test_it_refuses_to_demote_the_last_owner_through_the_api(owner, acme):
    membership = Membership.objects.get(user=owner, organization=acme)
    response = api_client(owner, acme).patch(
        f"/api/v1/members/{membership.pk}/", {"role": "viewer"}, format="json"
    )
    assert response.status_code == 409
    assert error_of(response)["code"] == "last_owner"


def test_it_invites_through_the_api(admin, acme):
    response = api_client(admin, acme).post(
        "/api/v1/invitations/", {"email": "api@example.com", "role": "developer"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["status"] == "pending"
    bad = api_client(admin, acme).post(
        "/api/v1/invitations/", {"email": "x@example.com", "role": "owner"}, format="json"
    )
    assert bad.status_code == 403


def test_it_answers_unknown_api_paths_with_json(acme, owner):
    response = api_client(owner, acme).get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_it_serves_the_openapi_schema_and_docs_offline(acme):
    client = client_for(None, acme)
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/environments/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content and b"cdn" not in docs.content.lower()


def test_it_points_api_calls_on_the_public_host_to_the_organisation_host(db):
    response = client_for(None, None).get("/api/v1/environments/")
    assert response.status_code == 404
    assert error_of(response)["code"] == "organization_host_required"
