from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.translation import gettext_lazy as _

from windflow.admin import TenantOnlyAdminMixin

from .models import Deployment, DeploymentService

# The fields of windflow.engine.diagnose.Diagnosis, shown each in its place (``text`` is the
# summary's template and arguments, for a translation); any other key (e.g. the containers
# a lost worker left) is listed after them.
DIAGNOSIS_FIELDS = ("code", "summary", "service", "hint", "detail", "text")


def render_diagnosis(deployment) -> str:
    """Why `deployment` failed, as HTML for people (its reason and diagnosis), not JSON."""
    diagnosis = deployment.diagnosis if isinstance(deployment.diagnosis, dict) else {}
    other = [
        (key.replace("_", " "), _plain(value))
        for key, value in diagnosis.items()
        if key not in DIAGNOSIS_FIELDS and value not in (None, "", [], {})
    ]
    context = {"diagnosis": diagnosis, "reason": deployment.reason, "other": other}
    return render_to_string("admin/deployments/diagnosis.html", context)


def _plain(value) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_plain(item) for item in value)
    if isinstance(value, dict):
        return ", ".join(f"{key}: {_plain(item)}" for key, item in value.items())
    return str(value)


class DeploymentServiceInline(TenantOnlyAdminMixin, admin.TabularInline):
    rbac_resource = "deployment"
    model = DeploymentService
    fields = ["service", "phase", "progress", "message", "updated_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Deployment)
class DeploymentAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """The record of what happened: read-only (deployments are asked for, cancelled and
    pruned from the app); no bulk delete."""

    rbac_resource = "deployment"

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
    exclude = ["diagnosis"]  # shown for people by diagnosis_display, not as JSON

    def get_readonly_fields(self, request, obj=None):
        fields = [field.name for field in self.model._meta.fields if field.name != "diagnosis"]
        return [*fields, "diagnosis_display"]

    @admin.display(description=_("why it failed"))
    def diagnosis_display(self, obj):
        return render_diagnosis(obj)

    @admin.display(description=_("duration"))
    def duration_display(self, obj):
        duration = obj.duration
        if duration is None:
            return "—"
        seconds = int(duration.total_seconds())
        return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
