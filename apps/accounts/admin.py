from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import ApiToken, Invitation, Membership, TokenFamily, User

# Organisations that have rows here only: never the platform's own `public` tenant.
BY_ORGANIZATION = ("organization", admin.RelatedOnlyFieldListFilter)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["organization"]


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "memberships__role"]
    search_fields = ["email", "full_name"]
    inlines = [MembershipInline]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Profile"), {"fields": ("full_name",)}),
        (_("Access"), {"fields": ("is_active", "is_staff", "is_superuser")}),
        (_("Dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = []
    actions = ["deactivate_users"]

    @admin.action(description=_("Deactivate the selected people (ends every sign-in now)"))
    def deactivate_users(self, request, queryset):
        from . import services

        count = 0
        for user in queryset:
            if user.pk != request.user.pk:
                services.deactivate_user(request.user, user)
                count += 1
        self.message_user(request, _("%(count)d people deactivated.") % {"count": count})


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", BY_ORGANIZATION]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organization", "role", "status", "created_at", "expires_at"]
    list_filter = ["role", BY_ORGANIZATION]
    search_fields = ["email", "organization__name"]
    readonly_fields = ["token_hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "user", "organization", "scope", "last_used_at", "revoked_at"]
    list_filter = ["scope", BY_ORGANIZATION]
    search_fields = ["name", "prefix", "user__email"]
    readonly_fields = ["prefix", "token_hash", "last_used_at"]


@admin.register(TokenFamily)
class TokenFamilyAdmin(admin.ModelAdmin):
    """JWT sign-ins (the CLI's). Deleting one, or setting its revoked time, ends it at once."""

    list_display = ["pk", "membership", "created_at", "refreshed_at", "revoked_at"]
    list_filter = ["revoked_reason"]
    search_fields = ["membership__user__email", "membership__organization__slug"]
    readonly_fields = ["membership", "current_jti", "created_at", "refreshed_at"]
