from django.contrib import messages
from django.db import connection
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware

from windflow import hotcache
from windflow.api.errors import error_body

from . import suspension


def apply_search_path() -> None:
    """With TENANT_LIMIT_SET_CALLS the search path is set once per tenant change, at the next
    cursor. Open that cursor now, outside any transaction: a SET issued inside a transaction
    that later rolls back would be undone while the connection believes it still holds."""
    connection.cursor().close()


def _organization_for_host(domain_model, hostname):
    domains = domain_model.objects.select_related("tenant").filter(domain=hostname).order_by()
    domain = next(iter(domains[:1]), None)
    return domain.tenant if domain else None


class OrganizationMiddleware(TenantMainMiddleware):
    """Activate the organisation named by the request host; an unknown host gets a friendly
    404 page rather than Django's bare error."""

    def get_tenant(self, domain_model, hostname):
        organization = hotcache.remember(
            hotcache.host_key(hostname), lambda: _organization_for_host(domain_model, hostname)
        )
        if organization is None:
            raise domain_model.DoesNotExist(hostname)
        return organization

    def process_request(self, request):
        response = super().process_request(request)
        if response is None:
            apply_search_path()
        return response

    def no_tenant_found(self, request, hostname):
        return render(request, "tenants/unknown_host.html", {"hostname": hostname}, status=404)


class SuspensionMiddleware:
    """A suspended organisation's host reads but changes nothing (apps.tenants.suspension):
    a page that would change something answers 403 with the reason, the API 403 with the
    code `organization_suspended`. No query: `request.tenant` is loaded already."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        organization = getattr(request, "tenant", None)
        if suspension.refuses(organization, request.method, request.path):
            return refuse_suspended(request, organization)
        return self.get_response(request)


def refuse_suspended(request, organization):
    """403 with the reason: a JSON error for the API; for an HTMX form (which swaps no 4xx)
    the reason as a message and a reload of the page, where it shows; else the 403 page."""
    text = suspension.message(organization)
    if request.path.startswith("/api/"):
        return JsonResponse(error_body(403, suspension.CODE, text), status=403)
    if request.headers.get("HX-Request") == "true":
        messages.error(request, text)
        response = HttpResponse(text, status=403, content_type="text/plain; charset=utf-8")
        response["HX-Refresh"] = "true"
        return response
    return render(request, "403.html", {"message": text}, status=403)
