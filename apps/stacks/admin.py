from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import Stack, StackRevision


class StackRevisionInline(admin.TabularInline):
    """Revisions are immutable: shown, never added, changed or deleted here."""

    model = StackRevision
    extra = 0
    can_delete = False
    fields = ["number", "message", "author", "created_at", "secrets", "compose"]
    readonly_fields = fields
    ordering = ["-number"]
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Stack)
class StackAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["name", "environment", "target", "current_revision", "updated_at"]
    list_filter = ["environment", "target", "auto_rollback"]
    search_fields = ["name", "description"]
    readonly_fields = ["uid", "current_revision", "created_by", "created_at", "updated_at"]
    list_select_related = ["environment", "target", "current_revision"]
    inlines = [StackRevisionInline]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and obj.current_revision_id:
            fields += ["target"]  # remove it from its server before moving it
        return fields
