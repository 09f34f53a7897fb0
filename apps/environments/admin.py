from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from windflow.admin import TenantOnlyAdminMixin

from .models import Environment


@admin.register(Environment)
class EnvironmentAdmin(TenantOnlyAdminMixin, GuardedModelAdmin):
    list_display = ["name", "slug", "kind", "protected", "updated_at"]
    list_filter = ["kind", "protected"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    # Changed only through the compose policy page or API, which audit every edit.
    readonly_fields = ["compose_overrides"]
