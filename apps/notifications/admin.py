from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import Notification


@admin.register(Notification)
class NotificationAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: notifications are written by the product and read by their recipients."""

    rbac_resource = "notification"
    list_display = ["text", "recipient", "verb", "created_at", "read_at"]
    list_filter = ["verb"]
    search_fields = ["text"]
