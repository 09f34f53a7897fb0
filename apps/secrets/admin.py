from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import SecretRef, SecretVersion


class SecretVersionInline(admin.TabularInline):
    model = SecretVersion
    fields = ["version", "created_at", "created_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SecretRef)
class SecretRefAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Names and history only: values are never shown, and are written through the app."""

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

    def has_add_permission(self, request):
        return False
