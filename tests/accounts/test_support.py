"""Support access (issue 12): platform staff reach an organisation's host (its pages, its
API, its admin) only through a time-limited access with a reason, read-only unless chosen
otherwise, behind a banner, recorded in both audit trails; one staff sign-in on the public
host covers every organisation through a single-use handoff POSTed to its host."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context, tenant_context

from apps.accounts import services
from apps.accounts.models import Membership, SupportAccess, User
from apps.audit.models import AuditEvent
from tests.base import PASSWORD, client_for, member, support_client

TOKEN = re.compile(r'name="token" value="([^"]+)"')


@pytest.fixture
def helpdesk(db):
    """Staff who may ask for support access, not for read-write."""
    user = User.objects.create_user("helpdesk@windflow.test", PASSWORD, is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="add_supportaccess"))
    return User.objects.get(pk=user.pk)


def _events(organization, action):
    schema = organization.schema_name if organization else "public"
    with schema_context(schema):
        return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _request(client, organization, **data):
    url = f"/admin/accounts/supportaccess/request/{organization.pk}/"
    return client.post(url, {"duration": 60, **data})


def test_it_refuses_a_support_request_without_a_reason(operator_of_platform, acme):
    client = client_for(operator_of_platform)
    page = client.get(f"/admin/tenants/organization/{acme.pk}/change/").content.decode()
    assert f"/admin/accounts/supportaccess/request/{acme.pk}/" in page
    for reason in ("", "   "):
        response = _request(client, acme, reason=reason)
        assert response.status_code == 200
        assert response.context["form"].errors["reason"], response.context["form"].errors
    assert not SupportAccess.objects.exists()
    assert not _events(None, "support.start") and not _events(acme, "support.start")
    with pytest.raises(services.ServiceError) as refused:
        services.start_support_access(operator_of_platform, acme, reason=" ")
    assert refused.value.field == "reason"


def test_it_opens_read_only_support_access_from_the_admin_with_a_banner(operator_of_platform, acme):
    client = client_for(operator_of_platform)
    response = _request(client, acme, reason="Ticket 7: deploys fail")
    grant = SupportAccess.objects.get()
    assert response.status_code == 302 and f"/{grant.pk}/open/" in response["Location"]
    assert not grant.read_write and grant.expires_at - grant.started_at == timedelta(hours=1)
    page = client.get(response["Location"]).content.decode()
    assert 'action="http://acme.localhost:8000/accounts/handoff/"' in page
    token = TOKEN.search(page)[1]
    at_acme = client_for(None, acme)
    handed = at_acme.post("/accounts/handoff/", {"token": token})
    assert handed.status_code == 302 and handed["Location"] == "/admin/"
    for path in ("/admin/", "/admin/stacks/stack/", "/", "/environments/"):
        response = at_acme.get(path)
        assert response.status_code == 200, path
        banner = response.content.decode()
        assert 'id="support-banner"' in banner, path
        assert "ops@windflow.test" in banner and "Ticket 7: deploys fail" in banner
        assert "Read-only" in banner
    # In both trails, with who, why, until when and how.
    for organization in (acme, None):
        (event,) = _events(organization, "support.start")
        assert event.actor_label == "ops@windflow.test"
        assert event.changes["reason"] == "Ticket 7: deploys fail"
        assert event.changes["mode"] == "read-only"


def test_it_refuses_every_write_under_read_only_support_access(operator_of_platform, acme):
    client = support_client(operator_of_platform, acme)
    response = client.post("/environments/add/", {"name": "qa", "kind": "dev"})
    assert response.status_code == 403
    assert "Read-only support access" in response.content.decode()
    api = client.post("/api/v1/environments/", {"name": "qa"}, content_type="application/json")
    assert api.status_code == 403 and api.json()["error"]["code"] == "support_read_only"
    assert client.post("/admin/environments/environment/").status_code == 403
    with tenant_context(acme):
        from apps.environments.models import Environment

        assert not Environment.objects.filter(name="qa").exists()
    # Reading goes on; signing out is not a change.
    assert client.get("/api/v1/environments/").status_code == 200
    assert client.post("/admin/logout/").status_code in (200, 302)


def test_it_lets_read_write_support_access_change_through_the_services(operator_of_platform, acme):
    client = support_client(operator_of_platform, acme, read_write=True)
    response = client.post("/api/v1/environments/", {"name": "qa"}, content_type="application/json")
    assert response.status_code == 201, response.content
    with tenant_context(acme):
        event = AuditEvent.objects.get(action="environment.create")
    assert event.actor_label == "ops@windflow.test"


def test_it_needs_a_permission_for_read_write(helpdesk, acme):
    client = client_for(helpdesk)
    response = _request(client, acme, reason="Ticket 8", read_write="on")
    assert response.status_code == 200
    assert response.context["form"].errors["read_write"]
    assert not SupportAccess.objects.exists()
    assert _request(client, acme, reason="Ticket 8").status_code == 302
    assert not SupportAccess.objects.get().read_write


def test_it_bounds_the_duration(operator_of_platform, acme):
    with pytest.raises(services.ServiceError):
        services.start_support_access(
            operator_of_platform, acme, reason="x", duration=timedelta(hours=5)
        )
    response = _request(client_for(operator_of_platform), acme, reason="x", duration=999)
    assert response.status_code == 200 and response.context["form"].errors["duration"]
    assert not SupportAccess.objects.exists()


def test_it_stops_an_expired_access_at_once_and_records_its_end(operator_of_platform, acme):
    client = support_client(operator_of_platform, acme)
    assert client.get("/admin/").status_code == 200
    SupportAccess.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    for path in ("/admin/", "/", "/api/v1/environments/"):
        response = client.get(path)
        assert response.status_code in (302, 403), (path, response.status_code)
        assert 'id="support-banner"' not in response.content.decode()
    for organization in (acme, None):
        (event,) = _events(organization, "support.expire")
        assert event.changes["staff"] == "ops@windflow.test"
    assert services.record_expired_support_accesses() == 0  # recorded once


def test_it_ends_an_access_early_from_the_admin(operator_of_platform, acme):
    client = support_client(operator_of_platform, acme)
    public = client_for(operator_of_platform)
    response = public.post(
        "/admin/accounts/supportaccess/",
        {"action": "end_now", "_selected_action": [client.grant.pk]},
    )
    assert response.status_code == 302
    assert SupportAccess.objects.get().ended_at is not None
    assert client.get("/admin/").status_code == 403
    for organization in (acme, None):
        assert len(_events(organization, "support.end")) == 1


def test_it_refuses_staff_without_a_grant_at_an_organisation_host(operator_of_platform, acme):
    client = client_for(operator_of_platform, acme)  # signed in there, no support access
    response = client.get("/admin/")
    assert response.status_code == 302
    refused = client.get(response["Location"])
    assert refused.status_code == 403
    assert "only through support access" in refused.content.decode()
    assert client.get("/admin/stacks/stack/").status_code == 302
    assert client.get("/").status_code == 403  # not a member
    assert client.get("/api/v1/environments/").status_code == 403
    # A grant to another organisation opens nothing here.
    services.start_support_access(operator_of_platform, acme, reason="x")
    assert client.get("/admin/").status_code == 302


def test_it_makes_the_handoff_single_use_expiring_and_never_an_address(
    operator_of_platform, acme, globex
):
    grant = services.start_support_access(operator_of_platform, acme, reason="x")
    _action, token = services.support_handoff(grant)
    at_acme = client_for(None, acme)
    # In an address (a GET, which logs keep), a support token opens nothing.
    assert at_acme.get("/accounts/handoff/", {"token": token}).status_code == 400
    _action, token = services.support_handoff(grant)
    assert client_for(None, globex).post("/accounts/handoff/", {"token": token}).status_code == 400
    _action, token = services.support_handoff(grant)
    assert at_acme.post("/accounts/handoff/", {"token": token}).status_code == 302
    again = client_for(None, acme).post("/accounts/handoff/", {"token": token})
    assert again.status_code == 400 and "already been used" in again.content.decode()
    _action, token = services.support_handoff(grant)
    with override_settings(WINDFLOW_HANDOFF_SECONDS=-1):
        late = client_for(None, acme).post("/accounts/handoff/", {"token": token})
    assert late.status_code == 400 and "expired" in late.content.decode()
    # A token of an access that ended opens nothing.
    _action, token = services.support_handoff(grant)
    services.end_support_access(grant, actor=operator_of_platform)
    assert client_for(None, acme).post("/accounts/handoff/", {"token": token}).status_code == 400


def test_it_opens_an_organisation_admin_to_its_owners_and_admins_only(acme, owner, admin, operator):
    for user in (owner, admin):
        page = client_for(user, acme).get("/admin/")
        assert page.status_code == 200
        assert 'href="/admin/targets/target/"' in page.content.decode()
    client = client_for(operator, acme)
    refused = client.get(client.get("/admin/")["Location"])
    assert refused.status_code == 403 and "owners and admins" in refused.content.decode()


def test_it_shows_no_shared_table_in_an_organisation_admin(acme, owner, operator_of_platform):
    for client in (client_for(owner, acme), support_client(operator_of_platform, acme)):
        index = client.get("/admin/").content.decode()
        for shared in (
            "tenants/organization",
            "tenants/domain",
            "tenants/localengine",
            "accounts/user",
            "accounts/membership",
            "accounts/apitoken",
            "accounts/tokenfamily",
            "accounts/supportaccess",
            "django_dramatiq/task",
            "auth/group",
            "account/emailaddress",
            "sessions/session",
        ):
            assert f"/admin/{shared}/" not in index, shared
            assert client.get(f"/admin/{shared}/").status_code == 404, shared
        assert "/admin/deployments/deployment/" in index


def test_it_records_membership_changes_made_in_the_platform_admin(
    operator_of_platform, acme, viewer
):
    membership = member(viewer, acme)
    services.staff_change_role(operator_of_platform, membership, "developer")
    services.staff_remove_member(operator_of_platform, membership)
    services.staff_add_member(operator_of_platform, acme, viewer, "viewer")
    for organization in (acme, None):
        actions = [e.action for e in _events(organization, "member.role_change")] + [
            e.action for e in _events(organization, "member.remove")
        ]
        assert actions == ["member.role_change", "member.remove"]
        (added,) = _events(organization, "member.add")
        assert added.actor_label == "ops@windflow.test" and added.changes == {"role": "viewer"}
    assert Membership.objects.get(user=viewer, organization=acme).role == "viewer"


def test_it_adds_a_member_from_the_organisation_page_through_the_services(
    operator_of_platform, acme, outsider
):
    client = client_for(operator_of_platform)
    url = f"/admin/tenants/organization/{acme.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in ("name", "slug")}
    data.update({key: value for key, value in _management(page).items()})
    prefix = "memberships"
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = str(total + 1)
    data[f"{prefix}-{total}-user"] = outsider.pk
    data[f"{prefix}-{total}-role"] = "viewer"
    response = client.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert Membership.objects.get(user=outsider, organization=acme).role == "viewer"
    for organization in (acme, None):
        (added,) = _events(organization, "member.add")
        assert added.actor_label == "ops@windflow.test"


def _management(page) -> dict:
    """Every inline formset's current data, as the change form would post it back."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        for name, field in formset.management_form.fields.items():
            value = formset.management_form.initial.get(name, field.initial)
            data[f"{formset.prefix}-{name}"] = value if value is not None else ""
        for form in formset.forms:
            for name in form.fields:
                value = form.initial.get(name, form.fields[name].initial)
                if value is not None:
                    data[form.add_prefix(name)] = getattr(value, "pk", value)
    return data


def test_it_shows_the_banner_to_the_members_too_and_to_nobody_else(
    operator_of_platform, acme, owner, viewer, outsider
):
    staff = support_client(operator_of_platform, acme, reason="Ticket 9: slow pages")
    for user in (owner, viewer):
        for path in ("/", "/stacks/"):
            page = client_for(user, acme).get(path).content.decode()
            assert 'id="support-banner"' in page, (user, path)
            assert "ops@windflow.test" in page and "Ticket 9: slow pages" in page
            assert "(read-only)" in page
            assert "Read-only: nothing can be changed." not in page  # that is the staff's
    assert "Read-only: nothing can be changed." in staff.get("/").content.decode()
    # Not a member: nothing about it.
    refused = client_for(outsider, acme).get("/").content.decode()
    assert "Ticket 9" not in refused and 'id="support-banner"' not in refused
    services.end_support_access(staff.grant, actor=operator_of_platform)
    assert "Ticket 9" not in client_for(owner, acme).get("/").content.decode()


def test_it_opens_a_newer_access_over_an_older_one_in_the_same_session(operator_of_platform, acme):
    client = support_client(operator_of_platform, acme)  # read-only
    grant = services.start_support_access(
        operator_of_platform, acme, reason="Ticket 10: fix the server", read_write=True
    )
    assert SupportAccess.objects.get(pk=client.grant.pk).ended_at is not None
    _action, token = services.support_handoff(grant)
    assert client.post("/accounts/handoff/", {"token": token}).status_code == 302
    page = client.get("/").content.decode()
    assert "Read-write: changes are allowed and audited." in page
    response = client.post("/api/v1/environments/", {"name": "qa"}, content_type="application/json")
    assert response.status_code == 201, response.content
