from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django_tenants.admin import TenantAdminMixin

from apps.accounts.models import Membership
from apps.deployments.admin import render_diagnosis

from . import services
from .console import OrganizationColumns
from .models import Domain, LocalEngine, Organization
from .overview import inspect_organization


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(OrganizationColumns, TenantAdminMixin, admin.ModelAdmin):
    """The organisations, not the platform's own `public` tenant (hidden, never deleted).
    Each has a read-only "Data" page: its environments, servers, stacks and deployments,
    read from the public host without signing in at its own. The usage columns come from
    the operator index (apps.tenants.console)."""

    list_display = ["name", "slug", *OrganizationColumns.usage_columns, "created_at", "data_link"]
    search_fields = ["name", "slug", *OrganizationColumns.usage_search_fields]
    list_filter = [*OrganizationColumns.usage_filters, "created_at"]
    readonly_fields = ["schema_name", "created_at", "data_link"]
    inlines = [DomainInline, MembershipInline]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)

    def has_add_permission(self, request):
        # Organisations are provisioned by apps.tenants.services (schema + domain + owner).
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_public:
            return False  # the platform's own schema: the public host and every shared table
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, queryset.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME))

    def get_urls(self):
        view = self.admin_site.admin_view(self.data_view)
        view.model_admin = self  # as Django marks its own views of this admin
        name = f"{self.opts.app_label}_{self.opts.model_name}_data"
        return [path("<path:object_id>/data/", view, name=name), *super().get_urls()]

    @admin.display(description=_("data"))
    def data_link(self, organization):
        if organization.pk is None:
            return "—"
        url = reverse("admin:tenants_organization_data", args=[organization.pk])
        return format_html('<a href="{}">{}</a>', url, _("Data"))

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


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    search_fields = ["domain", "tenant__name"]
    list_filter = ["is_primary"]

    def get_queryset(self, request):
        # The base domain is the public host's: not an organisation's to edit or delete.
        public = settings.PUBLIC_SCHEMA_NAME
        return super().get_queryset(request).exclude(tenant__schema_name=public)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tenant":
            kwargs["queryset"] = Organization.objects.exclude(
                schema_name=settings.PUBLIC_SCHEMA_NAME
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


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
