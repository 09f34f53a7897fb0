from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import Stack, StackRevision


class StackRevisionInline(TenantOnlyAdminMixin, admin.TabularInline):
    """Revisions are immutable: shown, never added, changed or deleted here."""

    rbac_resource = "stack"

    model = StackRevision
    extra = 0
    can_delete = False
    fields = ["number", "message", "author", "created_at", "secrets", "compose"]
    readonly_fields = fields
    ordering = ["-number"]
    show_change_link = False


@admin.register(Stack)
class StackAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: stacks are created, edited (a new revision), moved and deleted on their
    pages and the API (compose checks, policy, RBAC, audit)."""

    rbac_resource = "stack"
    list_display = ["name", "environment", "target", "current_revision", "updated_at"]
    list_filter = ["environment", "target", "auto_rollback"]
    search_fields = ["name", "description"]
    readonly_fields = ["uid", "current_revision", "created_by", "created_at", "updated_at"]
    list_select_related = ["environment", "target", "current_revision"]
    inlines = [StackRevisionInline]
