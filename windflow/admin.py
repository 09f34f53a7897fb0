"""Shared bases of the Django admin (platform staff's, on every host), and its task list.

An organisation's own models (environments, servers, stacks, deployments...) have tables only
in organisations' schemas. On the public host their sections are hidden and their pages
refused (`TenantOnlyAdminMixin`): platform staff read an organisation's data there on its
"Data" page (apps.tenants.admin), without signing in at its host."""

from django.conf import settings
from django.contrib import admin
from django.db import connection
from django.utils.translation import gettext_lazy as _
from django_dramatiq import admin as dramatiq_admin
from django_dramatiq.models import Task

from windflow.workers import TENANT_OPTION


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


# --- The task list: django_dramatiq's Task rows, written by windflow.workers.JobTrackingMiddleware


def _argument(value) -> str:
    """An argument as stored: a number, or the type that stands for any other value."""
    return value if isinstance(value, str) else repr(value)


# Ours in place of django_dramatiq's (which shows the raw message and traceback).
if admin.site.is_registered(Task) and isinstance(
    admin.site._registry[Task], dramatiq_admin.TaskAdmin
):
    admin.site.unregister(Task)


@admin.register(Task)
class JobAdmin(admin.ModelAdmin):
    """Every job the workers were given (the scheduler's housekeeping excepted): what,
    for which organisation, and how it ended. Read-only; kept WINDFLOW_JOB_HISTORY_DAYS."""

    list_display = ["job", "organization", "status", "created_at", "updated_at", "error"]
    list_filter = ["status", "actor_name", "queue_name", "created_at"]
    search_fields = ["actor_name"]
    date_hierarchy = "created_at"
    fields = ["job", "organization", "status", "error", "queue_name", "created_at", "updated_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("job"), ordering="actor_name")
    def job(self, task):
        message = task.message
        arguments = [_argument(value) for value in message.args]
        arguments += [f"{key}={_argument(value)}" for key, value in message.kwargs.items()]
        return f"{message.actor_name}({', '.join(arguments)})"

    @admin.display(description=_("organisation"))
    def organization(self, task):
        schema = task.message.options.get(TENANT_OPTION) or settings.PUBLIC_SCHEMA_NAME
        return "—" if schema == settings.PUBLIC_SCHEMA_NAME else schema

    @admin.display(description=_("error"))
    def error(self, task):
        return task.message.options.get("error", "")
