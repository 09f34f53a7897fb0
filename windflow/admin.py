"""Shared bases of the Django admin (platform staff's, on every host).

An organisation's own models (environments, servers, stacks, deployments...) have tables only
in organisations' schemas. On the public host their sections are hidden and their pages
refused (`TenantOnlyAdminMixin`): platform staff read an organisation's data there on its
"Data" page (apps.tenants.admin), without signing in at its host."""

from django.conf import settings
from django.db import connection


def is_tenant_only(model) -> bool:
    """Whether `model`'s table exists only in organisations' schemas."""
    name = model._meta.app_config.name
    return name in settings.TENANT_APPS and name not in settings.SHARED_APPS


def on_public_host(request) -> bool:
    tenant = getattr(request, "tenant", None)
    schema = tenant.schema_name if tenant is not None else connection.schema_name
    return schema == settings.PUBLIC_SCHEMA_NAME


class TenantOnlyAdminMixin:
    """For the ModelAdmin of a tenant-only model: on the public host, no section in the
    index and a refusal (403) for its pages, instead of a query on a table that is not
    there."""

    def has_module_permission(self, request):
        return not on_public_host(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return not on_public_host(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args, **kwargs):
        return not on_public_host(request) and super().has_add_permission(request, *args, **kwargs)

    def has_change_permission(self, request, obj=None):
        return not on_public_host(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not on_public_host(request) and super().has_delete_permission(request, obj)
