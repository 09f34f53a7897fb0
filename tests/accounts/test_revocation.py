"""Immediate revocation: a new password, a deactivation, a membership removed from anywhere or
a role change ends, at the next request, what it should (JWTs, sessions, personal tokens),
whatever the request cache held."""

import pytest

from apps.accounts import services
from apps.accounts.models import ApiToken, Membership, TokenFamily, User
from tests.base import PASSWORD, api_client, client_for, error_of

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"


def member(user, organization):
    return Membership.objects.get(user=user, organization=organization)


def jwt_pair(user, organization) -> dict:
    response = api_client(None, organization).post(
        TOKEN_URL, {"email": user.email, "password": PASSWORD}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def refresh(organization, refresh_token):
    return api_client(None, organization).post(
        REFRESH_URL, {"refresh": refresh_token}, format="json"
    )


def personal_token(user, organization, scope="write") -> str:
    _token, secret = services.create_api_token(member(user, organization), name="ci", scope=scope)
    return secret


def me(organization, credential) -> int:
    return api_client(None, organization, token=credential).get("/api/v1/me/").status_code


class Credentials:
    """Every kind of credential of one member, each used once (so the request cache holds
    the token, the membership and the JWT family)."""

    def __init__(self, user, organization):
        self.organization = organization
        self.pat = personal_token(user, organization)
        pair = jwt_pair(user, organization)
        self.access, self.refresh = pair["access"], pair["refresh"]
        self.browser = client_for(user, organization)
        assert self.status() == {"pat": 200, "jwt": 200, "session": 200}

    def status(self) -> dict:
        return {
            "pat": me(self.organization, self.pat),
            "jwt": me(self.organization, self.access),
            "session": self.browser.get("/").status_code,
        }

    def refresh_status(self) -> int:
        return refresh(self.organization, self.refresh).status_code


# --- A new password ---------------------------------------------------------------------------


def test_it_ends_jwts_and_other_sessions_at_a_password_change(developer, acme):
    held = Credentials(developer, acme)
    changer = client_for(developer, None)
    response = changer.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": "a-New-pass-2026", "password2": "a-New-pass-2026"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    status = held.status()
    assert status["jwt"] == 401 and status["session"] == 302  # signed out: to the sign-in page
    assert held.refresh_status() == 401
    # The session that changed it stays signed in; personal tokens are credentials of their
    # own, listed and revoked one by one: they stay.
    assert changer.get("/").status_code == 200
    assert status["pat"] == 200


def test_it_ends_jwts_at_a_password_set_anywhere(developer, acme):
    held = Credentials(developer, acme)
    developer.set_password("a-New-pass-2026")
    developer.save()  # as the admin's password form, a reset link or a command do
    assert held.status()["jwt"] == 401
    assert held.refresh_status() == 401


def test_it_keeps_sign_ins_through_a_password_hash_upgrade(developer, acme):
    held = Credentials(developer, acme)
    developer.check_password(PASSWORD)  # may re-hash and save the password
    developer.save(update_fields=["full_name"])
    assert held.status() == {"pat": 200, "jwt": 200, "session": 200}


# --- A deactivation ---------------------------------------------------------------------------


def test_it_ends_every_credential_of_a_deactivated_person_at_once(developer, acme):
    held = Credentials(developer, acme)
    developer.is_active = False
    developer.save()  # as the admin's change form does
    assert held.status() == {"pat": 401, "jwt": 401, "session": 302}
    assert held.refresh_status() == 401


def test_it_does_not_revive_sign_ins_when_reactivated(developer, acme):
    held = Credentials(developer, acme)
    developer.is_active = False
    developer.save()
    developer.is_active = True
    developer.save()
    # Sign-ins stay ended; personal tokens were suspended and work again.
    assert held.status() == {"pat": 200, "jwt": 401, "session": 302}


def test_it_deactivates_through_the_admin_with_immediate_effect(developer, acme):
    held = Credentials(developer, acme)
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    admin = client_for(staff)
    response = admin.post(
        "/admin/accounts/user/",
        {"action": "deactivate_users", "_selected_action": [developer.pk]},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert held.status() == {"pat": 401, "jwt": 401, "session": 302}


# --- A membership removed, from anywhere ------------------------------------------------------


def assert_membership_gone(held, user, organization):
    assert held.status() == {"pat": 401, "jwt": 401, "session": 403}
    assert held.refresh_status() == 401
    assert not ApiToken.objects.filter(user=user, organization=organization).exists()
    assert not TokenFamily.objects.filter(membership__user=user).exists()


def test_it_ends_credentials_of_a_member_removed_on_the_members_page(owner, developer, acme):
    held = Credentials(developer, acme)
    pk = member(developer, acme).pk
    response = client_for(owner, acme).post(f"/settings/members/{pk}/remove/")
    assert response.status_code == 302
    assert_membership_gone(held, developer, acme)


def test_it_ends_credentials_of_a_member_removed_through_the_api(owner, developer, acme):
    held = Credentials(developer, acme)
    pk = member(developer, acme).pk
    assert api_client(owner, acme).delete(f"/api/v1/members/{pk}/").status_code == 204
    assert_membership_gone(held, developer, acme)


def test_it_ends_credentials_of_a_member_deleted_in_the_django_admin(developer, acme):
    held = Credentials(developer, acme)
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    pk = member(developer, acme).pk
    response = client_for(staff).post(f"/admin/accounts/membership/{pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert not Membership.objects.filter(pk=pk).exists()
    assert_membership_gone(held, developer, acme)


def test_it_ends_credentials_of_members_deleted_in_bulk_in_the_django_admin(developer, acme):
    held = Credentials(developer, acme)
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    pk = member(developer, acme).pk
    client_for(staff).post(
        "/admin/accounts/membership/",
        {"action": "delete_selected", "_selected_action": [pk], "post": "yes"},
    )
    assert not Membership.objects.filter(pk=pk).exists()
    assert_membership_gone(held, developer, acme)


def test_it_ends_credentials_of_a_membership_deleted_by_a_queryset(developer, acme):
    held = Credentials(developer, acme)
    Membership.objects.filter(user=developer, organization=acme).delete()
    assert_membership_gone(held, developer, acme)


def test_it_ends_credentials_when_the_person_is_deleted(developer, acme):
    held = Credentials(developer, acme)
    User.objects.filter(pk=developer.pk).delete()  # cascades to memberships and tokens
    assert held.status() == {"pat": 401, "jwt": 401, "session": 302}


def test_it_lets_a_rejoining_member_start_with_no_credentials(owner, developer, acme):
    held = Credentials(developer, acme)
    services.remove_member(member(owner, acme), member(developer, acme))
    Membership.objects.create(user=developer, organization=acme, role="developer")
    # Back in: the old personal token and JWTs stay dead, and none is listed.
    status = held.status()
    assert status["pat"] == 401 and status["jwt"] == 401
    assert held.refresh_status() == 401
    assert status["session"] == 200  # the person's own session: they are a member again
    listed = held.browser.get("/api/v1/tokens/").json()
    assert listed["results"] == []


# --- A role change ----------------------------------------------------------------------------


def test_it_lowers_what_credentials_may_do_at_a_demotion(owner, developer, acme):
    held = Credentials(developer, acme)
    services.change_role(member(owner, acme), member(developer, acme), "viewer")
    # A viewer may not hold a write token: it becomes read-only.
    assert ApiToken.objects.get(user=developer, organization=acme).scope == "read"
    refused = api_client(None, acme, token=held.pat).post(
        "/api/v1/tokens/", {"name": "more", "scope": "write"}, format="json"
    )
    assert refused.status_code == 403 and "read-only" in error_of(refused)["message"]
    for credential in (held.pat, held.access):
        body = api_client(None, acme, token=credential).get("/api/v1/me/").json()
        assert body["role"] == "viewer"
    create = api_client(None, acme, token=held.access).post(
        "/api/v1/environments/", {"name": "qa", "kind": "dev"}, format="json"
    )
    assert create.status_code == 403


def test_it_sees_a_role_changed_in_the_django_admin_at_once(developer, acme):
    held = Credentials(developer, acme)
    staff = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    membership = member(developer, acme)
    response = client_for(staff).post(
        f"/admin/accounts/membership/{membership.pk}/change/",
        {"user": developer.pk, "organization": acme.pk, "role": "viewer"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    assert api_client(None, acme, token=held.access).get("/api/v1/me/").json()["role"] == "viewer"
    assert ApiToken.objects.get(user=developer, organization=acme).scope == "read"


def test_it_sees_any_new_role_through_a_token_cached_with_the_membership(owner, developer, acme):
    """A token is cached together with its holder's membership: a role change, from the
    services or from a plain save (the Django admin's path), is seen at the token's next
    request, whatever the role (not only the demotion to viewer that rescopes tokens)."""
    token = personal_token(developer, acme, scope="read")

    def role() -> str:
        return api_client(None, acme, token=token).get("/api/v1/me/").json()["role"]

    assert role() == "developer"  # cached from here on
    services.change_role(member(owner, acme), member(developer, acme), "operator")
    assert role() == "operator"
    membership = member(developer, acme)
    membership.role = "admin"
    membership.save()
    assert role() == "admin"


# --- Personal tokens changed in the admin -----------------------------------------------------


def test_it_refuses_a_token_revoked_or_deleted_in_the_django_admin(developer, acme):
    first, second = personal_token(developer, acme), personal_token(developer, acme)
    assert me(acme, first) == me(acme, second) == 200  # both cached
    tokens = ApiToken.objects.filter(user=developer, organization=acme).order_by("pk")
    revoked = tokens[0]
    from django.utils import timezone

    revoked.revoked_at = timezone.now()
    revoked.save()  # as the admin's change form does
    tokens.filter(pk=tokens[1].pk).delete()
    assert me(acme, first) == me(acme, second) == 401


# --- Refresh rotation -------------------------------------------------------------------------


def test_it_rotates_refresh_tokens(developer, acme):
    pair = jwt_pair(developer, acme)
    first = refresh(acme, pair["refresh"])
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh"] != pair["refresh"]
    second = refresh(acme, rotated["refresh"])
    assert second.status_code == 200
    assert me(acme, second.json()["access"]) == 200


def test_it_revokes_the_family_when_a_refresh_token_is_used_twice(developer, acme):
    from apps.audit.models import AuditEvent

    pair = jwt_pair(developer, acme)
    other = jwt_pair(developer, acme)  # another sign-in, e.g. on another machine
    rotated = refresh(acme, pair["refresh"]).json()
    replay = refresh(acme, pair["refresh"])
    assert replay.status_code == 401
    assert error_of(replay)["code"] == "token_reused"
    # Everything of that sign-in is dead, the thief's copy and the owner's newer tokens alike.
    assert refresh(acme, rotated["refresh"]).status_code == 401
    assert me(acme, rotated["access"]) == 401
    assert me(acme, pair["access"]) == 401
    # The other sign-in is untouched.
    assert me(acme, other["access"]) == 200
    assert refresh(acme, other["refresh"]).status_code == 200
    from django_tenants.utils import tenant_context

    with tenant_context(acme):
        event = AuditEvent.objects.filter(action="token.jwt_revoke").latest("id")
    assert event.changes == {"reason": "reuse"}


def test_it_refuses_a_refresh_token_of_another_organisation(outsider, acme, globex):
    pair = jwt_pair(outsider, globex)
    response = refresh(acme, pair["refresh"])
    assert response.status_code == 401
    assert "organisation" in error_of(response)["message"]


@pytest.mark.parametrize("garbage", ["", "not-a-jwt", "a.b.c"])
def test_it_answers_a_bad_refresh_token_with_a_json_4xx(acme, garbage):
    response = refresh(acme, garbage)
    if garbage == "":
        assert (response.status_code, error_of(response)["code"]) == (400, "invalid")
    else:
        assert (response.status_code, error_of(response)["code"]) == (401, "authentication_failed")
    error_of(response)
