from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import Environment


@admin.register(Environment)
class EnvironmentAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: environments, their protection, deploy grants and compose policy are
    changed on their pages and the API, which check the roles and audit every edit."""

    rbac_resource = "environment"
    list_display = ["name", "slug", "kind", "protected", "updated_at"]
    list_filter = ["kind", "protected"]
    search_fields = ["name", "slug", "description"]
