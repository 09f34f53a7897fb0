from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_tenants.admin import TenantAdminMixin

from apps.accounts.admin import OrganizationMembershipInline
from apps.deployments.admin import render_diagnosis
from windflow.admin import ReadOnlyAdminMixin
from windflow.errors import UserError

from . import services
from .console import OrganizationColumns
from .forms import DELETE, REACTIVATE, SUSPEND, LifecycleForm
from .models import Domain, LocalEngine, Organization
from .overview import inspect_organization


class DomainInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Provisioning gives each organisation its domain; the schema's host depends on it."""

    model = Domain
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(OrganizationColumns, TenantAdminMixin, admin.ModelAdmin):
    """The organisations, not the platform's own `public` tenant (hidden, never deleted).
    Each has a read-only "Data" page: its environments, servers, stacks and deployments,
    read from the public host without signing in at its own. The usage columns come from
    the operator index (apps.tenants.console). Suspending, reactivating and deleting go
    through apps.tenants.services, each on a page where the operator types the
    organisation's address (Django's own delete page and bulk delete are replaced)."""

    list_display = [
        "name",
        "slug",
        "status",
        *OrganizationColumns.usage_columns,
        "created_at",
        "data_link",
    ]
    search_fields = ["name", "slug", *OrganizationColumns.usage_search_fields]
    list_filter = ["status", *OrganizationColumns.usage_filters, "created_at"]
    # The schema and the domain are named after the slug; the status changes through the
    # lifecycle services only (suspend, reactivate, delete: the actions below).
    readonly_fields = [
        "slug",
        "schema_name",
        "created_at",
        "data_link",
        "status",
        "suspended_reason",
        "suspended_at",
        "suspended_by",
        "lifecycle_links",
        "support_link",
    ]
    inlines = [DomainInline, OrganizationMembershipInline]
    actions = ["suspend_selected", "reactivate_selected", "delete_through_service"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)

    def has_add_permission(self, request):
        # Organisations are provisioned by apps.tenants.services (schema + domain + owner).
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_public:
            return False  # the platform's own schema: the public host and every shared table
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deleting goes through delete_organization
        return actions

    def delete_model(self, request, obj):
        services.delete_organization(obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        for organization in queryset.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME):
            self.delete_model(request, organization)

    def get_urls(self):
        view = self.admin_site.admin_view(self.data_view)
        view.model_admin = self  # as Django marks its own views of this admin
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        lifecycle = []
        for action in (SUSPEND, REACTIVATE):
            action_view = self.admin_site.admin_view(self._lifecycle_view_for(action))
            action_view.model_admin = self
            lifecycle.append(
                path(f"<path:object_id>/{action}/", action_view, name=f"{name}_{action}")
            )
        return [
            path("<path:object_id>/data/", view, name=f"{name}_data"),
            *lifecycle,
            *super().get_urls(),
        ]

    def _lifecycle_view_for(self, action):
        def view(request, object_id):
            return self.lifecycle_view(request, object_id, action)

        return view

    def delete_view(self, request, object_id, extra_context=None):
        """Django's delete page, replaced by the service's flow (typed confirmation)."""
        return self.lifecycle_view(request, object_id, DELETE)

    @admin.display(description=_("lifecycle"))
    def lifecycle_links(self, organization):
        if organization.pk is None:
            return "—"
        action = REACTIVATE if organization.is_suspended else SUSPEND
        labels = {SUSPEND: _("Suspend"), REACTIVATE: _("Reactivate")}
        return format_html(
            '<a href="{}" data-testid="lifecycle-{}">{}</a> · <a href="{}">{}</a>',
            reverse(f"admin:tenants_organization_{action}", args=[organization.pk]),
            action,
            labels[action],
            reverse("admin:tenants_organization_delete", args=[organization.pk]),
            _("Delete"),
        )

    def _one_at_a_time(self, request, queryset, action):
        if queryset.count() != 1:
            self.message_user(
                request,
                _("Choose one organisation at a time: its confirmation names it."),
                messages.ERROR,
            )
            return None
        url_name = "delete" if action == DELETE else action
        return HttpResponseRedirect(
            reverse(f"admin:tenants_organization_{url_name}", args=[queryset.get().pk])
        )

    @admin.action(description=_("Suspend the selected organisation…"), permissions=["change"])
    def suspend_selected(self, request, queryset):
        return self._one_at_a_time(request, queryset, SUSPEND)

    @admin.action(description=_("Reactivate the selected organisation…"), permissions=["change"])
    def reactivate_selected(self, request, queryset):
        return self._one_at_a_time(request, queryset, REACTIVATE)

    @admin.action(description=_("Delete the selected organisation…"), permissions=["delete"])
    def delete_through_service(self, request, queryset):
        return self._one_at_a_time(request, queryset, DELETE)

    def lifecycle_view(self, request, object_id, action):
        """An intermediate page: what `action` does, the organisation's address to type (and
        the reason of a suspension); on POST, the service does it and says how it went."""
        organization = self.get_object(request, unquote(object_id))
        if organization is None:
            raise Http404
        allowed = (
            self.has_delete_permission(request, organization)
            if action == DELETE
            else self.has_change_permission(request, organization)
        )
        if not allowed:
            raise PermissionDenied
        form = LifecycleForm(
            request.POST if request.method == "POST" else None,
            organization=organization,
            action=action,
        )
        if form.is_valid():
            return self._carry_out(request, organization, action, form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": LIFECYCLE_TITLES[action] % {"name": organization.name},
            "subtitle": None,
            "opts": self.opts,
            "original": organization,
            "action": action,
            "form": form,
        }
        return TemplateResponse(request, "admin/tenants/organization/lifecycle.html", context)

    def _carry_out(self, request, organization, action, data):
        change_url = reverse("admin:tenants_organization_change", args=[organization.pk])
        try:
            if action == SUSPEND:
                services.suspend_organization(
                    organization, reason=data["reason"], actor=request.user
                )
            elif action == REACTIVATE:
                services.reactivate_organization(organization, actor=request.user)
            else:
                services.delete_organization(organization, actor=request.user)
        except UserError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(change_url)
        self.message_user(
            request, LIFECYCLE_DONE[action] % {"name": organization.name}, messages.SUCCESS
        )
        if action == DELETE:
            return HttpResponseRedirect(reverse("admin:tenants_organization_changelist"))
        return HttpResponseRedirect(change_url)

    @admin.display(description=_("data"))
    def data_link(self, organization):
        if organization.pk is None:
            return "—"
        url = reverse("admin:tenants_organization_data", args=[organization.pk])
        return format_html('<a href="{}">{}</a>', url, _("Data"))

    @admin.display(description=_("support access"))
    def support_link(self, organization):
        """Staff reach the organisation's host only through a support access."""
        if organization.pk is None:
            return "—"
        url = reverse("admin:accounts_supportaccess_request", args=[organization.pk])
        return format_html('<a href="{}">{}</a>', url, _("Request support access"))

    def data_view(self, request, object_id):
        """Read-only: the organisation's data, for staff who may view organisations."""
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        organization = self.get_object(request, unquote(object_id))
        if organization is None or not self.has_view_permission(request, organization):
            raise Http404
        overview = inspect_organization(organization, actor=request.user)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Data of %(name)s") % {"name": organization.name},
            "subtitle": None,
            "opts": self.opts,
            "original": organization,
            "overview": overview,
            "deployments": [(d, render_diagnosis(d)) for d in overview.deployments],
        }
        return TemplateResponse(request, "admin/tenants/organization/data.html", context)


LIFECYCLE_TITLES = {
    SUSPEND: _("Suspend %(name)s"),
    REACTIVATE: _("Reactivate %(name)s"),
    DELETE: _("Delete %(name)s"),
}
LIFECYCLE_DONE = {
    SUSPEND: _("%(name)s is suspended: its members read, nothing changes."),
    REACTIVATE: _("%(name)s is active again."),
    DELETE: _("%(name)s is deleted: its schema, domain, members and tokens are gone."),
}


@admin.register(Domain)
class DomainAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: provisioning makes an organisation's domain and deleting it removes it."""

    list_display = ["domain", "tenant", "is_primary"]
    search_fields = ["domain", "tenant__name"]
    list_filter = ["is_primary"]

    def get_queryset(self, request):
        # The base domain is the public host's: not an organisation's to edit or delete.
        public = settings.PUBLIC_SCHEMA_NAME
        return super().get_queryset(request).exclude(tenant__schema_name=public)


@admin.register(LocalEngine)
class LocalEngineAdmin(admin.ModelAdmin):
    """The platform's own Docker sockets (WINDFLOW_LOCAL_SOCKETS), handed out to organisations
    when WINDFLOW_LOCAL_TARGETS is staff (or all). One assigned to several is shared."""

    list_display = ["name", "socket_path", "organization_count", "created_at"]
    search_fields = ["name", "socket_path", "organizations__name", "organizations__slug"]
    filter_horizontal = ["organizations"]
    readonly_fields = ["created_at"]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(organization_total=Count("organizations"))

    @admin.display(description=_("organisations"), ordering="organization_total")
    def organization_count(self, engine):
        return engine.organization_total

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "organizations":
            # The public schema is the platform's, not an organisation.
            kwargs["queryset"] = Organization.objects.exclude(
                schema_name=settings.PUBLIC_SCHEMA_NAME
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def delete_model(self, request, obj):
        # Each organisation that had it hears of it in its audit trail.
        services.set_local_engine_organizations(obj, [], actor=request.user)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for engine in queryset:
            self.delete_model(request, engine)

    def save_related(self, request, form, formsets, change):
        # The assignment goes through the service (audited in each organisation).
        organizations = form.cleaned_data.get("organizations") or []
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
        services.set_local_engine_organizations(form.instance, organizations, actor=request.user)
