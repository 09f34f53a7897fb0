from django.contrib import admin

from windflow.admin import TenantOnlyAdminMixin

from .models import GitSource, SourceArchive


@admin.register(GitSource)
class GitSourceAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Read-only: a source is connected, changed and fetched on the stack's pages and the API
    (URL checks, RBAC, audit). No secret value is here: the token is the name of a secret,
    the deploy key's private half a server credential (its name only)."""

    rbac_resource = "stack"
    list_display = ["stack", "url", "ref", "auth", "status", "last_sha", "last_checked_at"]
    list_filter = ["auth", "status"]
    search_fields = ["stack__name", "url", "ref"]
    list_select_related = ["stack"]
    fields = [
        "stack",
        *GitSource.CHOSEN_FIELDS,
        "deploy_key",
        "public_key",
        "host_key",
        "status",
        "last_sha",
        "error_code",
        "error_message",
        "error_hint",
        "warning",
        "last_checked_at",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields


@admin.register(SourceArchive)
class SourceArchiveAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Uploaded project archives, once per content: shown, never changed (their content is
    not shown here; the revision pages show what they hold)."""

    rbac_resource = "stack"
    list_display = ["digest", "filename", "size", "created_at"]
    search_fields = ["digest", "filename"]
    fields = ["digest", "filename", "size", "created_at"]
    readonly_fields = fields
