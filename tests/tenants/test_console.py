"""The operator console across organisations (issue 12), as a platform operator uses it in
the public host's admin: failed and stuck deployments, offline servers, security events, the
largest organisations, and the organisation list's columns, filters and search. All read
the operator index: no query per row, whatever the number of organisations."""

from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse as reverse_on
from django.utils import timezone

from apps.accounts.choices import Role
from apps.accounts.models import Membership, User
from apps.tenants import index
from apps.tenants.models import (
    IndexedDeployment,
    OfflineServer,
    Organization,
    OrganizationUsage,
    SecurityEvent,
)
from tests.base import PASSWORD, client_for, support_client


def reverse(name, *args, **kwargs):
    """These pages are the platform admin's: on the public host only (an organisation's
    host has its own admin, with none of them)."""
    return reverse_on(name, *args, urlconf="windflow.urls_public", **kwargs)


PAGES = {
    "deployments": "admin:tenants_indexeddeployment_changelist",
    "servers": "admin:tenants_offlineserver_changelist",
    "security": "admin:tenants_securityevent_changelist",
    "largest": "admin:tenants_organizationusage_changelist",
    "organizations": "admin:tenants_organization_changelist",
}


def data_url(organization) -> str:
    return reverse("admin:tenants_organization_data", args=[organization.pk])


def fill_index(
    organization, *, failed="brokenshop", stuck="waitingapi", server="web-1", actor="x@y.test"
):
    """One row of each kind for `organization`, through the index's own writers' tables."""
    now = timezone.now()
    OrganizationUsage.objects.update_or_create(
        organization=organization,
        defaults={"servers": 2, "stacks": 3, "deployments": 40, "last_activity_at": now},
    )
    IndexedDeployment.objects.create(
        organization=organization,
        deployment_id=7,
        stack=failed,
        target=server,
        status="failed",
        created_at=now,
        finished_at=now,
        reason="health gate: app exited (code 1)",
    )
    IndexedDeployment.objects.create(
        organization=organization,
        deployment_id=8,
        stack=stuck,
        target=server,
        status="queued",
        created_at=now - index.STUCK_QUEUED - timezone.timedelta(minutes=1),
    )
    IndexedDeployment.objects.create(  # a fresh queued one: nobody's problem yet
        organization=organization,
        deployment_id=9,
        stack="fresh",
        status="queued",
        created_at=now,
    )
    OfflineServer.objects.create(
        organization=organization, server_id=1, name=server, since=now, failed_check="socket"
    )
    SecurityEvent.objects.create(
        organization=organization,
        kind="lockout",
        actor=actor,
        created_at=now,
        summary="sign-in locked after repeated failures, from 203.0.113.9",
    )


def test_it_shows_each_page_across_organisations_with_links_to_their_data(
    operator_of_platform, acme, globex
):
    fill_index(acme)
    fill_index(
        globex, failed="brokenblog", stuck="waitingqueue", server="db-1", actor="z@globex.test"
    )
    SecurityEvent.objects.create(
        kind="revocation", actor="ops@windflow.test", created_at=timezone.now(), summary="x"
    )
    client = client_for(operator_of_platform)
    for name, url_name in PAGES.items():
        response = client.get(reverse(url_name))
        assert response.status_code == 200, (name, response.status_code)
        page = response.content.decode()
        assert data_url(acme) in page and data_url(globex) in page, name

    page = client.get(reverse(PAGES["deployments"])).content.decode()
    for text in ("brokenshop", "brokenblog", "waitingapi", "waitingqueue", "exited (code 1)"):
        assert text in page
    assert "Stuck" in page and "fresh" not in page
    failed_only = client.get(reverse(PAGES["deployments"]), {"problem": "failed"}).content.decode()
    assert "brokenshop" in failed_only and "waitingapi" not in failed_only
    searched = client.get(reverse(PAGES["deployments"]), {"q": "globex"}).content.decode()
    assert "brokenblog" in searched and "brokenshop" not in searched

    servers = client.get(reverse(PAGES["servers"])).content.decode()
    assert "web-1" in servers and "db-1" in servers

    security = client.get(reverse(PAGES["security"]), {"kind": "lockout"}).content.decode()
    assert "x@y.test" in security and "z@globex.test" in security
    assert "ops@windflow.test" not in security.split("<tbody>")[1]
    platform = client.get(reverse(PAGES["security"]), {"kind": "revocation"}).content.decode()
    assert "platform" in platform

    largest = client.get(reverse(PAGES["largest"])).content.decode()
    assert largest.index(data_url(acme)) > 0


def test_it_refuses_the_pages_to_non_staff_staff_without_the_permission_and_other_hosts(
    operator_of_platform, owner, acme
):
    fill_index(acme)
    staff = User.objects.create_user("staff@windflow.test", PASSWORD, is_staff=True)
    for url_name in PAGES.values():
        url = reverse(url_name)
        refused = client_for(owner).get(url)  # a member, not staff
        assert refused.status_code == 302 and "/admin/login/" in refused["Location"]
        assert client_for(staff).get(url).status_code == 403
    # Staff given the view permission of a page see that page.
    staff.user_permissions.add(Permission.objects.get(codename="view_securityevent"))
    assert client_for(staff).get(reverse(PAGES["security"])).status_code == 200
    # No organisation's own admin lists other organisations' rows (not even these pages).
    at_acme = support_client(operator_of_platform, acme)
    for name in ("deployments", "servers", "security", "largest"):
        assert at_acme.get(reverse(PAGES[name])).status_code == 404, name
    # Read-only: nothing to add, change or delete.
    row = IndexedDeployment.objects.filter(organization=acme).first()
    client = client_for(operator_of_platform)
    assert client.get(reverse("admin:tenants_indexeddeployment_add")).status_code == 403
    delete = reverse("admin:tenants_indexeddeployment_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert IndexedDeployment.objects.filter(pk=row.pk).exists()


def test_it_lists_organisations_with_their_usage_filters_and_search(
    operator_of_platform, acme, globex, owner
):
    fill_index(acme)
    long_ago = timezone.now() - timezone.timedelta(days=60)
    OrganizationUsage.objects.update_or_create(
        organization=globex, defaults={"deployments": 1, "last_activity_at": long_ago}
    )
    IndexedDeployment.objects.filter(organization=acme, status="failed").update(
        resolved_at=timezone.now()  # resolved, still a failure of the last 24 h
    )
    client = client_for(operator_of_platform)
    url = reverse(PAGES["organizations"])
    page = client.get(url).content.decode()
    for column in ("owner", "members", "servers", "stacks", "deployments", "failures (24 h)"):
        assert f">{column.capitalize()}<" in page or column in page.lower(), column
    acme_row = _row_of(page, data_url(acme))
    members = Membership.objects.filter(organization=acme).count()
    for value in (owner.email, f">{members}<", ">2<", ">3<", ">40<", ">1<"):
        assert value in acme_row, (value, acme_row)

    failing = client.get(url, {"failures": "yes"}).content.decode()
    assert data_url(acme) in failing and data_url(globex) not in failing
    offline = client.get(url, {"offline": "no"}).content.decode()
    assert data_url(acme) not in offline and data_url(globex) in offline
    dormant = client.get(url, {"active": "dormant"}).content.decode()
    assert data_url(acme) not in dormant and data_url(globex) in dormant
    by_owner = client.get(url, {"q": owner.email}).content.decode()
    assert data_url(acme) in by_owner and data_url(globex) not in by_owner
    by_usage = client.get(url, {"o": "-6"}).content.decode()  # deployments, most first
    assert by_usage.index(data_url(acme)) < by_usage.index(data_url(globex))


def _row_of(page: str, marker: str) -> str:
    at = page.index(marker)
    return page[page.rindex("<tr", 0, at) : page.index("</tr>", at)]


def _organization(n: int) -> Organization:
    """An organisation row with its index rows and an owner (no schema: the list never
    opens one)."""
    organization = Organization.objects.create(
        name=f"Many {n}", slug=f"many-{n}", schema_name=f"many_{n}"
    )
    user = User.objects.create_user(f"owner{n}@many.test", PASSWORD)
    Membership.objects.create(user=user, organization=organization, role=Role.OWNER)
    fill_index(organization)
    return organization


def test_it_reads_each_page_in_the_same_queries_whatever_the_number_of_organisations(
    operator_of_platform, acme
):
    client = client_for(operator_of_platform)
    client.get("/admin/")  # the session and the user, once

    def queries(url_name) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(reverse(url_name)).status_code == 200
        return len(captured)

    _organization(0)
    few = {name: queries(url_name) for name, url_name in PAGES.items()}
    for n in range(1, 8):
        _organization(n)
    many = {name: queries(url_name) for name, url_name in PAGES.items()}
    assert many == few
    assert max(few.values()) <= 12, few
