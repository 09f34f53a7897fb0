from django.contrib import admin

from .models import AuditAnchor, AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only (the database refuses changes anyway)."""

    list_display = ["timestamp", "actor_label", "action", "object_type", "object_label", "ip"]
    list_filter = ["action", "actor_type", "object_type"]
    search_fields = ["actor_label", "action", "object_label", "request_id"]
    date_hierarchy = "timestamp"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditAnchor)
class AuditAnchorAdmin(AuditEventAdmin):
    list_display = ["archived_at", "archived_through_id", "archived_count", "archive_file"]
    list_filter = []
    search_fields = ["archive_file"]
    date_hierarchy = None
