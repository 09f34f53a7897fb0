from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import SecretRef, SecretVersion


class SecretVersionInline(TenantOnlyAdminMixin, admin.TabularInline):
    rbac_resource = "secret"
    model = SecretVersion
    fields = ["version", "created_at", "created_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(SecretRef)
class SecretRefAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Names and history only, read-only: values are never shown; secrets are created,
    rotated and deleted on their pages and the API."""

    rbac_resource = "secret"

    list_display = ["name", "scope", "environment", "backend", "version", "rotated_at"]
    list_filter = ["scope", "backend"]
    search_fields = ["name", "description"]
    readonly_fields = [
        "name",
        "scope",
        "environment",
        "backend",
        "version",
        "created_by",
        "created_at",
        "rotated_at",
    ]
    inlines = [SecretVersionInline]
