"""Suspending, reactivating and deleting an organisation through apps.tenants.services."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists, tenant_context

from apps.accounts.models import ApiToken, Membership, TokenFamily, User
from apps.audit.models import AuditEvent
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.tenants import services
from apps.tenants.models import Domain, Organization
from tests.base import PASSWORD, api_client, client_for
from windflow import hotcache
from windflow.errors import Conflict, ServiceError


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("ops@windflow.test", PASSWORD)


def events(organization, action):
    schema = organization.schema_name if organization else "public"
    with schema_context(schema):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def test_it_suspends_with_a_reason_and_records_it_in_both_trails(acme, staff):
    services.suspend_organization(acme, reason="Unpaid invoice 42", actor=staff)

    acme.refresh_from_db()
    assert acme.is_suspended
    assert acme.suspended_reason == "Unpaid invoice 42"
    assert acme.suspended_by == staff and acme.suspended_at is not None
    for chain in (acme, None):
        (event,) = events(chain, "organization.suspend")
        assert event.changes == {"reason": "Unpaid invoice 42"}
        assert event.actor_label == staff.email
        assert event.object_label == "Acme"


def test_it_refuses_a_suspension_without_a_reason(acme, staff):
    with pytest.raises(ServiceError) as refused:
        services.suspend_organization(acme, reason="   ", actor=staff)
    assert refused.value.field == "reason"
    acme.refresh_from_db()
    assert not acme.is_suspended
    assert not events(None, "organization.suspend")


def test_it_says_an_organisation_is_already_suspended_and_changes_nothing(acme, staff):
    services.suspend_organization(acme, reason="first", actor=staff)
    with pytest.raises(Conflict) as refused:
        services.suspend_organization(acme, reason="second", actor=staff)
    assert refused.value.code == "already_suspended"
    assert "Acme is already suspended (first)" in refused.value.message
    acme.refresh_from_db()
    assert acme.suspended_reason == "first"
    assert len(events(acme, "organization.suspend")) == 1
    assert len(events(None, "organization.suspend")) == 1


def test_it_reactivates_and_records_it_in_both_trails(acme, staff):
    services.suspend_organization(acme, reason="abuse report", actor=staff)
    services.reactivate_organization(acme, actor=staff)

    acme.refresh_from_db()
    assert not acme.is_suspended
    assert (acme.suspended_reason, acme.suspended_at, acme.suspended_by) == ("", None, None)
    for chain in (acme, None):
        (event,) = events(chain, "organization.reactivate")
        assert event.changes == {"suspended_reason": "abuse report"}


def test_it_says_an_active_organisation_is_not_suspended(acme, staff):
    with pytest.raises(Conflict) as refused:
        services.reactivate_organization(acme, actor=staff)
    assert refused.value.code == "not_suspended"
    assert not events(None, "organization.reactivate")


def test_it_refuses_to_suspend_or_delete_the_platform_itself(staff):
    public = Organization.objects.get(schema_name="public")
    with pytest.raises(ServiceError):
        services.suspend_organization(public, reason="no", actor=staff)
    with pytest.raises(ServiceError):
        services.delete_organization(public, actor=staff)
    assert schema_exists("public")


def test_it_takes_a_suspension_into_account_at_once_despite_the_host_cache(acme, staff, owner):
    client = client_for(owner, acme)
    assert client.get("/").status_code == 200  # the host entry is cached now
    assert hotcache.remember(hotcache.host_key("acme.localhost"), lambda: None) is not None

    services.suspend_organization(acme, reason="Unpaid invoice 42", actor=staff)

    page = client.get("/").content.decode()
    assert 'data-testid="suspension-banner"' in page


@pytest.fixture
def running_deployment(membership, make_stack):
    deployment = deployments.request_deployment(membership, make_stack())
    Deployment.objects.filter(pk=deployment.pk).update(status=DeploymentStatus.RUNNING)
    connection.set_schema_to_public()
    return deployment


def test_it_refuses_to_delete_while_a_deployment_runs(acme, staff, running_deployment):
    with pytest.raises(Conflict) as refused:
        services.delete_organization(acme, actor=staff)
    assert refused.value.code == "deployments_running"
    assert f"1 deployment(s) running (#{running_deployment.pk})" in refused.value.message
    assert schema_exists(acme.schema_name)
    assert Organization.objects.filter(pk=acme.pk).exists()
    assert Domain.objects.filter(tenant=acme).exists()
    assert not events(None, "organization.delete")


def test_it_deletes_with_queued_deployments_which_changed_nothing_yet(
    acme, staff, membership, make_stack
):
    deployments.request_deployment(membership, make_stack())
    connection.set_schema_to_public()

    services.delete_organization(acme, actor=staff)

    assert not schema_exists(acme.schema_name)
    (event,) = events(None, "organization.delete")
    assert event.changes["queued_deployments_dropped"] == 1


def test_it_drops_the_schema_and_revokes_every_credential(acme, staff, owner, developer):
    token_client = api_client(developer, acme)
    assert token_client.get("/api/v1/environments/").status_code == 200  # token cached
    with tenant_context(acme):
        assert Deployment.objects.count() >= 0  # the schema's tables exist
    members = Membership.objects.filter(organization=acme).count()

    services.delete_organization(acme, actor=staff)

    assert not schema_exists("acme")
    assert not Organization.objects.filter(slug="acme").exists()
    assert not Domain.objects.filter(domain="acme.localhost").exists()
    assert not Membership.objects.filter(organization_id=acme.pk).exists()
    assert not ApiToken.objects.filter(organization_id=acme.pk).exists()
    assert not TokenFamily.objects.filter(membership__organization_id=acme.pk).exists()
    (event,) = events(None, "organization.delete")
    assert event.changes["slug"] == "acme" and event.changes["members"] == members
    assert event.actor_label == staff.email
    # The token is refused at once (its host is gone: the API answers 404 there).
    assert token_client.get("/api/v1/environments/").status_code == 404


def test_it_stops_serving_a_deleted_host_at_once(acme, staff, owner):
    signed_in, visitor = client_for(owner, acme), client_for(None, acme)
    assert signed_in.get("/").status_code == 200
    assert visitor.get("/accounts/login/").status_code == 200  # host entry cached

    services.delete_organization(acme, actor=staff)

    for client, path in ((signed_in, "/"), (visitor, "/accounts/login/")):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "acme.localhost" in response.content.decode()


def test_it_deletes_an_organisation_whose_schema_is_missing(acme, staff):
    with connection.cursor() as cursor:
        cursor.execute('DROP SCHEMA "acme" CASCADE')

    services.delete_organization(acme, actor=staff)

    assert not Organization.objects.filter(slug="acme").exists()
    (event,) = events(None, "organization.delete")
    assert event.changes["queued_deployments_dropped"] == 0
