"""Shared rows in the platform admin (issue 12): tokens, sign-ins, invitations and domains are
shown, never edited there; staff revoke a token or end a sign-in through the services, each
recorded in the organisation's trail and the platform's."""

from django.urls import reverse
from django_tenants.utils import schema_context, tenant_context

from apps.accounts import services
from apps.accounts.models import ApiToken, TokenFamily
from apps.audit.models import AuditEvent
from apps.tenants.models import Domain
from tests.base import api_client, client_for, member


def events(organization, action):
    with tenant_context(organization) if organization else schema_context("public"):
        return list(AuditEvent.objects.filter(action=action).values_list("actor_label", flat=True))


def admin_url(name: str, *args) -> str:
    """A page of the platform admin (public host), whatever host a test last requested."""
    return reverse(f"admin:{name}", args=args, urlconf="windflow.urls_public")


def run_action(client, model: str, action: str, pks):
    url = admin_url(f"accounts_{model}_changelist")
    return client.post(url, {"action": action, "_selected_action": [str(pk) for pk in pks]})


def test_it_lets_staff_revoke_a_token_through_the_service(operator_of_platform, owner, acme):
    client = api_client(owner, acme)
    assert client.get("/api/v1/environments/").status_code == 200
    token = ApiToken.objects.get(user=owner, organization=acme)
    admin = client_for(operator_of_platform)

    response = run_action(admin, "apitoken", "revoke", [token.pk])
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert client.get("/api/v1/environments/").status_code == 401
    assert events(acme, "token.revoke") == [operator_of_platform.email]
    assert events(None, "token.revoke") == [operator_of_platform.email]
    # A second revocation changes nothing and records nothing.
    run_action(admin, "apitoken", "revoke", [token.pk])
    assert len(events(acme, "token.revoke")) == 1


def test_it_lets_staff_end_a_sign_in_through_the_service(operator_of_platform, owner, acme):
    with tenant_context(acme):
        family = TokenFamily.objects.create(membership=member(owner, acme), current_jti="jti-1")
    response = run_action(
        client_for(operator_of_platform), "tokenfamily", "end_sign_ins", [family.pk]
    )
    assert response.status_code == 302
    family.refresh_from_db()
    assert family.revoked_at is not None and family.revoked_reason == "staff"
    assert services.token_family(family.pk).revoked_at is not None
    assert events(acme, "token.jwt_revoke") == [operator_of_platform.email]
    assert events(None, "token.jwt_revoke") == [operator_of_platform.email]


def test_it_keeps_shared_rows_read_only_in_the_platform_admin(operator_of_platform, owner, acme):
    api_client(owner, acme)
    token = ApiToken.objects.get(user=owner, organization=acme)
    domain = Domain.objects.get(tenant=acme)
    admin = client_for(operator_of_platform)
    for name, pk in (("accounts_apitoken", token.pk), ("tenants_domain", domain.pk)):
        change = admin_url(f"{name}_change", pk)
        page = admin.get(change)
        assert page.status_code == 200  # shown...
        assert 'name="_save"' not in page.content.decode()
        assert admin.post(change, {"domain": "evil.localhost"}).status_code == 403  # ...not edited
        assert admin.get(admin_url(f"{name}_delete", pk)).status_code == 403
        assert admin.get(admin_url(f"{name}_add")).status_code == 403
    # The token's hash is not shown, and the domain is unchanged.
    assert (
        token.token_hash
        not in admin.get(admin_url("accounts_apitoken_change", token.pk)).content.decode()
    )
    domain.refresh_from_db()
    assert domain.domain == "acme.localhost"
    # The organisation's page shows its domain without a field to change it.
    page = admin.get(admin_url("tenants_organization_change", acme.pk)).content.decode()
    assert "acme.localhost" in page
    assert 'name="domains-0-domain"' not in page


def test_it_deactivates_people_rather_than_deleting_them(operator_of_platform, owner, acme):
    admin = client_for(operator_of_platform)
    assert admin.get(admin_url("accounts_user_delete", owner.pk)).status_code == 403
    response = admin.post(
        admin_url("accounts_user_changelist"),
        {"action": "deactivate_users", "_selected_action": [str(owner.pk)]},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.is_active is False
    assert member(owner, acme).role == "owner"  # the organisation keeps its owner on record
