from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django_tenants.admin import TenantAdminMixin

from apps.accounts.models import Membership

from . import services
from .models import Domain, LocalEngine, Organization


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(TenantAdminMixin, admin.ModelAdmin):
    list_display = ["name", "slug", "schema_name", "created_at"]
    search_fields = ["name", "slug"]
    list_filter = ["created_at"]
    readonly_fields = ["schema_name", "created_at"]
    inlines = [DomainInline, MembershipInline]

    def has_add_permission(self, request):
        # Organisations are provisioned by apps.tenants.services (schema + domain + owner).
        return False


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["domain", "tenant", "is_primary"]
    search_fields = ["domain", "tenant__name"]
    list_filter = ["is_primary"]


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
