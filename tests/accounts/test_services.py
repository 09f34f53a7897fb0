from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.accounts import services
from apps.accounts.models import ApiToken, Invitation, Membership, User
from tests.base import run_queued_jobs
from windflow import hotcache
from windflow.errors import Conflict, Forbidden, ServiceError


def member(user, organization):
    return Membership.objects.get(user=user, organization=organization)


# --- Roles and the last owner -----------------------------------------------------------------


def test_it_refuses_to_demote_the_last_owner(owner, acme):
    with pytest.raises(Conflict, match="last owner"):
        services.change_role(member(owner, acme), member(owner, acme), "admin")
    assert member(owner, acme).role == "owner"


def test_it_refuses_to_let_the_last_owner_leave(owner, acme):
    with pytest.raises(Conflict, match="last owner"):
        services.remove_member(member(owner, acme), member(owner, acme))
    assert Membership.objects.filter(user=owner, organization=acme).exists()


def test_it_lets_an_owner_step_down_once_another_owner_exists(owner, admin, acme):
    services.change_role(member(owner, acme), member(admin, acme), "owner")
    services.change_role(member(owner, acme), member(owner, acme), "admin")
    assert member(owner, acme).role == "admin"
    assert member(admin, acme).role == "owner"


def test_it_keeps_admins_from_touching_owners(admin, owner, acme):
    with pytest.raises(Forbidden):
        services.change_role(member(admin, acme), member(owner, acme), "viewer")
    with pytest.raises(Forbidden):
        services.remove_member(member(admin, acme), member(owner, acme))


def test_it_keeps_admins_from_making_owners(admin, viewer, acme):
    with pytest.raises(Forbidden):
        services.change_role(member(admin, acme), member(viewer, acme), "owner")


def test_it_keeps_operators_from_managing_members(operator, viewer, acme):
    with pytest.raises(Forbidden):
        services.change_role(member(operator, acme), member(viewer, acme), "developer")


def test_it_deletes_tokens_of_a_removed_member(owner, developer, acme):
    token, _secret = services.create_api_token(member(developer, acme), name="ci")
    services.remove_member(member(owner, acme), member(developer, acme))
    assert not ApiToken.objects.filter(pk=token.pk).exists()


# --- Invitations ------------------------------------------------------------------------------


def test_it_invites_by_email_with_a_single_use_link(
    owner, acme, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invitation, url = services.invite(
            member(owner, acme), email="Sam@Example.com", role="developer"
        )
    assert invitation.email == "sam@example.com"
    assert run_queued_jobs() == ["send_invitation_email"]
    assert len(mail.outbox) == 1
    assert url in mail.outbox[0].body
    assert "Acme" in mail.outbox[0].subject
    # Only a hash is stored.
    token = url.rstrip("/").rsplit("/", 1)[1]
    assert token not in Invitation.objects.values_list("token_hash", flat=True)


def test_it_accepts_an_invitation_once(owner, acme):
    _invitation, url = services.invite(
        member(owner, acme), email="sam@example.com", role="developer"
    )
    token = url.rstrip("/").rsplit("/", 1)[1]
    sam = User.objects.create_user("sam@example.com", "pw-long-enough-1")
    membership = services.accept_invitation(token, acme, sam)
    assert membership.role == "developer"
    with pytest.raises(ServiceError, match="already been used"):
        services.accept_invitation(token, acme, sam)


def test_it_refuses_an_expired_invitation(owner, acme):
    invitation, url = services.invite(member(owner, acme), email="sam@example.com", role="viewer")
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(1))
    sam = User.objects.create_user("sam@example.com", "pw-long-enough-1")
    with pytest.raises(ServiceError, match="expired"):
        services.accept_invitation(url.rstrip("/").rsplit("/", 1)[1], acme, sam)
    assert not Membership.objects.filter(user=sam).exists()


def test_it_refuses_an_invitation_for_someone_else(owner, viewer, acme):
    _invitation, url = services.invite(member(owner, acme), email="sam@example.com", role="admin")
    with pytest.raises(Forbidden, match=r"sam@example\.com"):
        services.accept_invitation(url.rstrip("/").rsplit("/", 1)[1], acme, viewer)


def test_it_refuses_an_invitation_link_of_another_organisation(owner, acme, globex):
    _invitation, url = services.invite(member(owner, acme), email="sam@example.com", role="admin")
    sam = User.objects.create_user("sam@example.com", "pw-long-enough-1")
    with pytest.raises(ServiceError, match="not valid"):
        services.accept_invitation(url.rstrip("/").rsplit("/", 1)[1], globex, sam)


def test_it_refuses_to_invite_an_existing_member_or_twice(owner, viewer, acme):
    with pytest.raises(Conflict, match="already a member"):
        services.invite(member(owner, acme), email=viewer.email, role="viewer")
    services.invite(member(owner, acme), email="new@example.com", role="viewer")
    with pytest.raises(Conflict, match="pending invitation"):
        services.invite(member(owner, acme), email="NEW@example.com", role="viewer")


def test_it_refuses_invitations_from_operators(operator, acme):
    with pytest.raises(Forbidden):
        services.invite(member(operator, acme), email="x@example.com", role="viewer")


# --- API tokens -------------------------------------------------------------------------------


def test_it_stores_only_a_hash_of_the_token(developer, acme):
    token, secret = services.create_api_token(member(developer, acme), name="ci", scope="write")
    assert secret.startswith("wf_") and len(secret) == 43
    assert token.prefix == secret[:10]
    assert secret not in str(ApiToken.objects.values_list(flat=True))
    assert services.resolve_api_token(secret, acme) == token


def test_it_refuses_write_tokens_to_viewers(viewer, acme):
    with pytest.raises(Forbidden):
        services.create_api_token(member(viewer, acme), name="x", scope="write")


def test_it_does_not_resolve_revoked_expired_or_foreign_tokens(owner, acme, globex):
    token, secret = services.create_api_token(member(owner, acme), name="t", expires_in_days=1)
    assert services.resolve_api_token(secret, globex) is None
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    # The row changed behind the services' back: drop the request-path cache as time would.
    hotcache.forget(hotcache.token_key(token.token_hash))
    assert services.resolve_api_token(secret, acme) is None
    token2, secret2 = services.create_api_token(member(owner, acme), name="t2")
    services.revoke_api_token(member(owner, acme), token2)
    assert services.resolve_api_token(secret2, acme) is None


def test_it_keeps_members_from_revoking_others_tokens(owner, developer, viewer, acme):
    token, _ = services.create_api_token(member(developer, acme), name="t")
    with pytest.raises(Forbidden):
        services.revoke_api_token(member(viewer, acme), token)
    services.revoke_api_token(member(owner, acme), token)  # admins and owners may
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_it_explains_a_refusal_in_words(viewer, acme):
    from apps.accounts import permissions

    with pytest.raises(Forbidden, match=r"Your role \(Viewer\) does not allow you to create"):
        permissions.require(member(viewer, acme), "environment.add")


def test_it_names_every_action_with_a_verb_of_the_vocabulary():
    from apps.accounts import permissions

    for name in permissions.ACTIONS:
        resource, _dot, verb = name.partition(".")
        assert resource and verb in permissions.VERBS, name


def test_it_labels_every_action():
    from apps.accounts import permissions
    from apps.accounts.choices import Role

    for name, action in permissions.ACTIONS.items():
        assert action.least_role in Role.values, name
        assert str(action.label).strip(), name


def test_it_stops_honouring_a_cached_token_once_revoked(owner, acme):
    token, secret = services.create_api_token(member(owner, acme), name="cached")
    assert services.resolve_api_token(secret, acme) == token  # now in the request-path cache
    services.revoke_api_token(member(owner, acme), token)
    assert services.resolve_api_token(secret, acme) is None


def test_it_sees_a_role_change_at_once_despite_the_cache(owner, viewer, acme):
    from apps.accounts.permissions import get_membership

    assert get_membership(viewer, acme).role == "viewer"  # cached
    services.change_role(member(owner, acme), member(viewer, acme), "operator")
    assert get_membership(viewer, acme).role == "operator"
    services.remove_member(member(owner, acme), member(viewer, acme))
    assert get_membership(viewer, acme) is None
