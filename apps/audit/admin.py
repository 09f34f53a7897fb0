from django.contrib import admin

from apps.accounts import permissions
from apps.accounts.middleware import membership_of
from windflow.admin import ReadOnlyAdminMixin, on_public_host

from .models import AuditAnchor, AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: the trail is append-only (the database refuses changes anyway). The
    platform's trail for staff on the public host; an organisation's own at its host, for
    those whose role may read it."""

    list_display = ["timestamp", "actor_label", "action", "object_type", "object_label", "ip"]
    list_filter = ["action", "actor_type", "object_type"]
    search_fields = ["actor_label", "action", "object_label", "request_id"]
    date_hierarchy = "timestamp"

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        if on_public_host(request):
            return super().has_view_permission(request, obj)
        return permissions.can(membership_of(request), "audit.view")


@admin.register(AuditAnchor)
class AuditAnchorAdmin(AuditEventAdmin):
    list_display = ["archived_at", "archived_through_id", "archived_count", "archive_file"]
    list_filter = []
    search_fields = ["archive_file"]
    date_hierarchy = None
