"""The operators' admin on the public host (issue 11): one title per section, no
organisation section where it has no table, the `public` tenant out of reach, and each
organisation's data readable there (read-only, audited) without signing in at its host."""

import re

from django.contrib import admin
from django.db import connection
from django.urls import reverse
from django_tenants.utils import schema_context, tenant_context

from apps.accounts.models import User
from apps.audit.models import AuditEvent
from apps.tenants.models import Organization
from tests.base import PASSWORD, client_for, support_client
from windflow.admin import is_tenant_only

SECTION = re.compile(r'<a href="(/admin/[\w]+/)" class="section"[^>]*>([^<]+)</a>')


def test_it_gives_each_admin_section_its_own_title(operator_of_platform, acme):
    public, at_acme = client_for(operator_of_platform), support_client(operator_of_platform, acme)
    for client in (public, at_acme):
        page = client.get("/admin/").content.decode()
        titles = [title for _url, title in SECTION.findall(page)]
        assert len(titles) >= 5, page
        assert len(titles) == len(set(titles)), titles
        # People are shared: the platform's admin only, never an organisation's.
        assert ("People and access" in titles) is (client is public)


def test_it_hides_the_organisation_sections_on_the_public_host(operator_of_platform, acme):
    public = client_for(operator_of_platform)
    index = public.get("/admin/").content.decode()
    assert "Not available" not in index
    assert 'data-testid="organization-data-help"' in index
    tenant_only = [model for model in admin.site._registry if is_tenant_only(model)]
    assert len(tenant_only) >= 6
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        url = reverse(name, urlconf="windflow.urls_public")
        if model in tenant_only:
            assert f'href="{url}"' not in index, url
            assert public.get(url).status_code == 403, url  # refused, not a missing table
        else:
            assert f'href="{url}"' in index, url
    # At an organisation's host (through a support access), its sections are there.
    at_acme = support_client(operator_of_platform, acme).get("/admin/").content.decode()
    assert 'href="/admin/deployments/deployment/"' in at_acme


def test_it_hides_the_public_organisation_and_refuses_its_deletion(operator_of_platform, acme):
    public_org = Organization.objects.get(schema_name="public")
    client = client_for(operator_of_platform)
    listing = client.get("/admin/tenants/organization/").content.decode()
    assert f"/admin/tenants/organization/{acme.pk}/change/" in listing
    assert f"/admin/tenants/organization/{public_org.pk}/" not in listing
    client.post(f"/admin/tenants/organization/{public_org.pk}/delete/", {"post": "yes"})
    client.post(
        "/admin/tenants/organization/",
        {"action": "delete_selected", "_selected_action": [public_org.pk], "post": "yes"},
    )
    assert Organization.objects.filter(schema_name="public").exists()
    model_admin = admin.site._registry[Organization]
    request = type("Request", (), {"user": operator_of_platform})()
    assert model_admin.has_delete_permission(request, public_org) is False
    # Nor is it an organisation to filter people by.
    members = client.get("/admin/accounts/membership/").content.decode()
    assert f"organization__id__exact={acme.pk}" in members
    assert f"organization__id__exact={public_org.pk}" not in members
    # Nor is the public host's domain an organisation's to delete.
    domains = client.get("/admin/tenants/domain/").content.decode()
    assert ">acme.localhost<" in domains
    assert ">localhost<" not in domains


def test_it_shows_an_organisation_s_data_to_staff_from_the_public_host(
    operator_of_platform, acme, globex, owner, failed_deployment
):
    client = client_for(operator_of_platform)
    listing = client.get("/admin/tenants/organization/").content.decode()
    data_url = f"/admin/tenants/organization/{acme.pk}/data/"
    assert data_url in listing
    response = client.get(data_url)
    assert response.status_code == 200
    page = response.content.decode()
    label = f"shop #{failed_deployment.pk}"  # deployments are numbered by id
    for text in ("staging", "web-1", "shop", label, owner.email, "Owner"):
        assert text in page, text
    # The failure reads as text, not JSON.
    assert "<strong>web exited with code 3</strong>" in page
    assert "Read the container&#x27;s log: it stopped by itself." in page
    assert "Containers: shop-web-1" in page
    assert '<pre class="wf-diagnosis-detail">line one\nline two</pre>' in page
    assert "&quot;summary&quot;" not in page and '"summary"' not in page
    # The request's schema is the public one again, and each look is in both trails.
    assert connection.schema_name == "public"
    with tenant_context(acme):
        event = AuditEvent.objects.get(action="organization.inspect")
        assert event.actor_label == operator_of_platform.email
    with schema_context("public"):
        assert AuditEvent.objects.filter(action="organization.inspect").count() == 1
    # Another organisation's page shows only its own data.
    other = client.get(f"/admin/tenants/organization/{globex.pk}/data/").content.decode()
    assert "outsider@globex.test" in other
    assert label not in other and owner.email not in other


def test_it_shows_organisation_data_to_platform_staff_only(acme, owner, failed_deployment):
    data_url = f"/admin/tenants/organization/{acme.pk}/data/"
    # A member of the organisation, even its owner, is not platform staff; the
    # organisation's own admin has no organisation table.
    response = client_for(owner).get(data_url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert client_for(owner, acme).get(data_url).status_code == 404
    # Staff without the right to view organisations: no page, nothing recorded.
    staff = User.objects.create_user("helpdesk@windflow.test", PASSWORD, is_staff=True)
    assert client_for(staff).get(data_url).status_code == 404
    superuser = User.objects.create_superuser("ops@windflow.test", PASSWORD)
    client = client_for(superuser)
    assert client.post(data_url).status_code == 405
    public_org = Organization.objects.get(schema_name="public")
    assert client.get(f"/admin/tenants/organization/{public_org.pk}/data/").status_code == 404
    assert client.get("/admin/tenants/organization/nope/data/").status_code == 404
    with tenant_context(acme):
        assert not AuditEvent.objects.filter(action="organization.inspect").exists()
