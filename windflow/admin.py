"""Shared bases of the Django admin, and its task list.

Two sites share the ModelAdmins that the apps register on `admin.site`:

- the platform's admin, `admin.site`, on the public host, for platform staff: the shared
  tables (organisations, people, tokens...). An organisation's own models have tables only in
  organisations' schemas: their sections are hidden there and their pages refused
  (`TenantOnlyAdminMixin`); staff read an organisation's data on its "Data" page
  (apps.tenants.admin), or through a support access at its host.
- an organisation's admin, `organization_site`, at `<slug>.<base>/admin/`: that organisation's
  own data only, none of the shared tables, for its owners and admins (RBAC); platform staff,
  superusers included, only through an active support access (apps.accounts.services)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.db import connection
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django_dramatiq import admin as dramatiq_admin
from django_dramatiq.models import Task

from apps.accounts import permissions
from apps.accounts.middleware import membership_of
from windflow.workers import TENANT_OPTION


def is_tenant_only(model) -> bool:
    """Whether `model`'s table exists only in organisations' schemas."""
    name = model._meta.app_config.name
    return name in settings.TENANT_APPS and name not in settings.SHARED_APPS


def on_public_host(request) -> bool:
    tenant = getattr(request, "tenant", None)
    schema = tenant.schema_name if tenant is not None else connection.schema_name
    return schema == settings.PUBLIC_SCHEMA_NAME


def is_organization_data(model) -> bool:
    """Whether `model`'s rows are an organisation's own (WindFlow's apps whose tables are in
    organisations' schemas, the audit trail included), not shared tables."""
    name = model._meta.app_config.name
    return name.startswith("apps.") and name in settings.TENANT_APPS


def is_read_only_support(request) -> bool:
    grant = getattr(request, "support_access", None)
    return grant is not None and not grant.read_write


class ReadOnlyAdminMixin:
    """A record that the admin shows and never edits: written by the services (a trail, a
    job, an index, an access), it has no add, change or delete page."""

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class TenantOnlyAdminMixin:
    """For the ModelAdmin (or inline) of an organisation's own model.

    - On the public host: no section in the index and a refusal (403) for its pages, instead
      of a query on a table that is not there.
    - On the organisation's host, its roles decide (apps.accounts.permissions), not Django's
      model permissions: viewing needs `<rbac_resource>.view`. A change is possible only where
      the ModelAdmin saves through the services (`changes_through_services`) and the role
      allows `<rbac_resource>.change`, never under a read-only support access. Adding and
      deleting are the product's own flows (pages, API), not the admin's."""

    rbac_resource = ""  # e.g. "target": the actions "target.view", "target.change"
    changes_through_services = False

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        if on_public_host(request):
            return False
        return permissions.can(membership_of(request), f"{self.rbac_resource}.view")

    def has_add_permission(self, request, *args, **kwargs):
        return False

    def has_change_permission(self, request, obj=None):
        if on_public_host(request) or not self.changes_through_services:
            return False
        if is_read_only_support(request):
            return False
        return permissions.can(membership_of(request), f"{self.rbac_resource}.change")

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}  # no bulk delete, no bulk anything: the product's flows do it


class OrganizationAdminSite(admin.AdminSite):
    """The admin at an organisation's host: the organisation's own models registered on
    `source` (the platform's site), nothing shared. Open to the organisation's owners and
    admins, and to platform staff through an active support access only."""

    site_header = _("WindFlow organisation admin")
    site_title = _("WindFlow organisation admin")

    def __init__(self, source: admin.AdminSite):
        super().__init__(name="admin")
        self.source = source
        self.disable_action("delete_selected")

    def copy_registrations(self) -> None:
        for model, model_admin in self.source._registry.items():
            if is_organization_data(model) and not self.is_registered(model):
                self.register(model, type(model_admin))

    def get_urls(self):
        self.copy_registrations()
        return super().get_urls()

    def has_permission(self, request):
        user = request.user
        return user.is_active and permissions.can_use_admin(membership_of(request))

    def login(self, request, extra_context=None):
        """Sign in with the product's own sign-in; a person signed in without access is told
        why, rather than asked for a staff account."""
        if not request.user.is_authenticated:
            return redirect_to_login(request.GET.get("next") or reverse("admin:index"))
        if self.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index"))
        if request.user.is_staff:
            message = gettext(
                "Platform staff reach an organisation only through support access: ask for it "
                "on the organisation's page in the platform admin, with a reason."
            )
        else:
            message = gettext("Only the organisation's owners and admins can use its admin.")
        return render(request, "403.html", {"message": message}, status=403)


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
class JobAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every job the workers were given (the scheduler's housekeeping excepted): what,
    for which organisation, and how it ended. Read-only; kept WINDFLOW_JOB_HISTORY_DAYS."""

    list_display = ["job", "organization", "status", "created_at", "updated_at", "error"]
    list_filter = ["status", "actor_name", "queue_name", "created_at"]
    search_fields = ["actor_name"]
    date_hierarchy = "created_at"
    fields = ["job", "organization", "status", "error", "queue_name", "created_at", "updated_at"]
    readonly_fields = fields

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


# The admin of organisations' hosts (windflow.urls).
organization_site = OrganizationAdminSite(admin.site)
