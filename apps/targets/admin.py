from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import PrepareRun, Target, TargetCheck


@admin.register(Target)
class TargetAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "kind", "host", "status", "last_seen"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "host"]
    readonly_fields = [
        # Where a local target connects is the platform operator's: the allow-list and the
        # engines of WINDFLOW_LOCAL_TARGETS, not an edit here.
        "socket_path",
        "engine",
        "credential",
        "public_key",
        "host_key_fingerprint",
        "pending_host_key_fingerprint",
        "facts",
        "last_seen",
        "status",
    ]


@admin.register(TargetCheck)
class TargetCheckAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["target", "status", "started_at", "duration_ms"]
    list_filter = ["status"]


@admin.register(PrepareRun)
class PrepareRunAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["target", "status", "exit_code", "created_at", "finished_at"]
    list_filter = ["status"]
