from django.shortcuts import render
from django_tenants.middleware.main import TenantMainMiddleware


class OrganizationMiddleware(TenantMainMiddleware):
    """Activate the organisation named by the request host; an unknown host gets a friendly
    404 page rather than Django's bare error."""

    def no_tenant_found(self, request, hostname):
        return render(request, "tenants/unknown_host.html", {"hostname": hostname}, status=404)
