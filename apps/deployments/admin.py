from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .models import Deployment, DeploymentService


class DeploymentServiceInline(admin.TabularInline):
    model = DeploymentService
    fields = ["service", "phase", "progress", "message", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin):
    """The record of what happened: read-only (deployments are asked for from the app)."""

    list_display = [
        "__str__",
        "stack",
        "number",
        "status",
        "kind",
        "created_at",
        "duration_display",
    ]
    list_filter = ["status", "kind", "environment", "target"]
    search_fields = ["stack__name", "reason"]
    list_select_related = ["stack", "revision", "target", "environment"]
    date_hierarchy = "created_at"
    inlines = [DeploymentServiceInline]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("duration"))
    def duration_display(self, obj):
        duration = obj.duration
        if duration is None:
            return "—"
        seconds = int(duration.total_seconds())
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
