"""The organisation lifecycle in the public host's admin, as an operator uses it: the list's
status, then suspend, reactivate and delete, each confirmed by typing the address and carried
out by apps.tenants.services."""

import pytest
from django.db import connection
from django_tenants.utils import schema_context, schema_exists

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.tenants import services
from apps.tenants.models import Organization
from tests.base import PASSWORD, client_for

LIST = "/admin/tenants/organization/"


@pytest.fixture
def staff(db):
    return User.objects.create_superuser("ops@windflow.test", PASSWORD)


def page(response) -> str:
    return response.content.decode()


def public_events(action):
    with schema_context("public"):
        return list(AuditEvent.objects.filter(action=action))


def test_it_lists_and_filters_organisations_by_status(staff, acme, globex):
    services.suspend_organization(acme, reason="abuse", actor=staff)
    client = client_for(staff)
    listing = page(client.get(LIST))
    assert "status__exact=suspended" in listing
    suspended = page(client.get(LIST, {"status__exact": "suspended"}))
    assert f"{LIST}{acme.pk}/change/" in suspended
    assert f"{LIST}{globex.pk}/change/" not in suspended


def test_it_keeps_the_slug_read_only(staff, acme):
    client = client_for(staff)
    form = page(client.get(f"{LIST}{acme.pk}/change/"))
    assert 'name="slug"' not in form
    assert 'name="status"' not in form
    client.post(
        f"{LIST}{acme.pk}/change/",
        {"name": "Acme", "slug": "renamed", "status": "suspended", "_save": "1"},
    )
    acme.refresh_from_db()
    assert (acme.slug, acme.status) == ("acme", "active")


def test_it_offers_no_bulk_delete_and_one_organisation_per_action(staff, acme, globex):
    client = client_for(staff)
    listing = page(client.get(LIST))
    assert 'value="delete_selected"' not in listing
    for action in ("suspend_selected", "reactivate_selected", "delete_through_service"):
        assert f'value="{action}"' in listing
    response = client.post(
        LIST,
        {"action": "suspend_selected", "_selected_action": [acme.pk, globex.pk]},
        follow=True,
    )
    assert "Choose one organisation at a time" in page(response)
    assert not Organization.objects.filter(status="suspended").exists()


def test_it_suspends_after_a_reason_and_the_typed_address(staff, acme):
    client = client_for(staff)
    response = client.post(LIST, {"action": "suspend_selected", "_selected_action": [acme.pk]})
    url = f"{LIST}{acme.pk}/suspend/"
    assert response.status_code == 302 and response["Location"] == url
    assert 'name="reason"' in page(client.get(url))

    no_reason = client.post(url, {"reason": "", "confirm": "acme"})
    assert no_reason.status_code == 200 and "This field is required" in page(no_reason)
    mistyped = client.post(url, {"reason": "Unpaid", "confirm": "acm"})
    assert "Type acme exactly: nothing was done." in page(mistyped)
    acme.refresh_from_db()
    assert not acme.is_suspended

    done = client.post(url, {"reason": "Unpaid invoice 42", "confirm": "acme"}, follow=True)
    assert "Acme is suspended" in page(done)
    acme.refresh_from_db()
    assert acme.is_suspended and acme.suspended_reason == "Unpaid invoice 42"
    assert acme.suspended_by == staff
    (event,) = public_events("organization.suspend")
    assert event.actor_label == staff.email


def test_it_says_an_organisation_is_already_suspended_and_changes_nothing(staff, acme):
    services.suspend_organization(acme, reason="first", actor=staff)
    client = client_for(staff)
    again = client.post(
        f"{LIST}{acme.pk}/suspend/", {"reason": "second", "confirm": "acme"}, follow=True
    )
    assert "Acme is already suspended (first): nothing was changed." in page(again)
    acme.refresh_from_db()
    assert acme.suspended_reason == "first"
    assert len(public_events("organization.suspend")) == 1


def test_it_reactivates_after_the_typed_address(staff, acme):
    services.suspend_organization(acme, reason="abuse", actor=staff)
    client = client_for(staff)
    change = page(client.get(f"{LIST}{acme.pk}/change/"))
    assert f"{LIST}{acme.pk}/reactivate/" in change
    url = f"{LIST}{acme.pk}/reactivate/"
    assert 'name="reason"' not in page(client.get(url))
    done = client.post(url, {"confirm": "acme"}, follow=True)
    assert "Acme is active again." in page(done)
    acme.refresh_from_db()
    assert not acme.is_suspended
    assert len(public_events("organization.reactivate")) == 1
    active = client.post(url, {"confirm": "acme"}, follow=True)
    assert "Acme is active, not suspended: nothing was changed." in page(active)


def test_it_deletes_through_the_service_from_django_s_delete_page(staff, acme, owner):
    member = client_for(owner, acme)
    assert member.get("/").status_code == 200
    client = client_for(staff)
    url = f"{LIST}{acme.pk}/delete/"
    form = page(client.get(url))
    assert 'name="confirm"' in form and "drops its schema" in form
    mistyped = client.post(url, {"confirm": "ACME", "post": "yes"})
    assert "Type acme exactly" in page(mistyped)
    assert schema_exists("acme")

    done = client.post(url, {"confirm": "acme"}, follow=True)
    assert "Acme is deleted" in page(done)
    assert not Organization.objects.filter(slug="acme").exists()
    assert not schema_exists("acme")
    assert len(public_events("organization.delete")) == 1
    assert member.get("/").status_code == 404  # the host is gone at once


def test_it_refuses_to_delete_while_a_deployment_runs(staff, acme, membership, make_stack):
    deployment = deployments.request_deployment(membership, make_stack())
    Deployment.objects.filter(pk=deployment.pk).update(status=DeploymentStatus.RUNNING)
    connection.set_schema_to_public()
    client = client_for(staff)
    response = client.post(
        LIST, {"action": "delete_through_service", "_selected_action": [acme.pk]}
    )
    assert response["Location"] == f"{LIST}{acme.pk}/delete/"
    refused = client.post(response["Location"], {"confirm": "acme"}, follow=True)
    assert f"1 deployment(s) running (#{deployment.pk})" in page(refused)
    assert schema_exists("acme") and Organization.objects.filter(slug="acme").exists()


def test_it_lets_only_staff_with_the_permission_act(acme, owner):
    clerk = User.objects.create_user("clerk@windflow.test", PASSWORD, is_staff=True)
    for user in (owner, clerk):
        client = client_for(user)
        for action in ("suspend", "reactivate", "delete"):
            response = client.post(f"{LIST}{acme.pk}/{action}/", {"reason": "x", "confirm": "acme"})
            assert response.status_code in (302, 403), (user, action)
    acme.refresh_from_db()
    assert not acme.is_suspended and schema_exists("acme")


def test_it_puts_the_lifecycle_pages_in_the_security_matrices():
    """tests/security enumerates the admin's routes from the URL confs: the new pages are
    there, so the cross-organisation matrix tries them with every credential."""
    from tests.security.routes import url_routes

    # The platform admin's only: an organisation's own admin has no organisation table.
    names = {route.name for route in url_routes("windflow.urls_public") if route.is_admin}
    elsewhere = {route.name for route in url_routes("windflow.urls") if route.is_admin}
    for action in ("suspend", "reactivate", "delete"):
        assert f"tenants_organization_{action}" in names, action
        assert f"tenants_organization_{action}" not in elsewhere, action
