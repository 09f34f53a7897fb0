from django.contrib import admin
from django_tenants.admin import TenantAdminMixin

from apps.accounts.models import Membership

from .models import Domain, Organization


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
