from datetime import timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.tenants.models import Organization
from windflow.admin import ReadOnlyAdminMixin
from windflow.errors import Forbidden, ServiceError

from . import services
from .models import ApiToken, Invitation, Membership, SupportAccess, TokenFamily, User

# Organisations that have rows here only: never the platform's own `public` tenant.
BY_ORGANIZATION = ("organization", admin.RelatedOnlyFieldListFilter)


class StaffMembershipFormSet(BaseInlineFormSet):
    """Memberships changed by platform staff in the admin go through the membership services
    (apps.accounts.services.staff_*): the last owner is kept, and each change is a membership
    event in the organisation's audit trail and the platform's. `staff` is set per request."""

    staff = None

    def clean(self):
        super().clean()
        for form in self.forms:
            membership = form.instance
            if not hasattr(form, "cleaned_data") or membership.pk is None:
                continue
            try:
                if self._should_delete_form(form):
                    services.check_staff_member_change(self._stored(membership))
                elif "role" in form.changed_data:
                    role = form.cleaned_data.get("role")
                    services.check_staff_member_change(self._stored(membership), role=role)
            except ServiceError as exc:
                form.add_error("role" if "role" in form.fields else None, exc.message)
            if {"user", "organization"} & set(form.changed_data):
                form.add_error(None, _("Remove this membership and add a new one instead."))

    @staticmethod
    def _stored(membership):
        return Membership.objects.select_related("user", "organization").get(pk=membership.pk)

    def save_new(self, form, commit=True):
        membership = form.instance
        setattr(membership, self.fk.name, self.instance)
        return services.staff_add_member(
            self.staff, membership.organization, membership.user, membership.role
        )

    def save_existing(self, form, obj, commit=True):
        if "role" in form.changed_data:
            return services.staff_change_role(self.staff, self._stored(obj), obj.role)
        return obj

    def delete_existing(self, obj, commit=True):
        services.staff_remove_member(self.staff, self._stored(obj))


class StaffMembershipInlineMixin:
    formset = StaffMembershipFormSet
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.staff = request.user
        return formset


class MembershipInline(StaffMembershipInlineMixin, admin.TabularInline):
    """A person's memberships, on their page."""

    model = Membership
    autocomplete_fields = ["organization"]


class OrganizationMembershipInline(StaffMembershipInlineMixin, admin.TabularInline):
    """An organisation's members, on its page (apps.tenants.admin)."""

    model = Membership
    autocomplete_fields = ["user"]


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

    def has_delete_permission(self, request, obj=None):
        # Deactivating is the removal flow (every sign-in ends, the audit trails keep the
        # person): a deletion would drop memberships past the last-owner rule, unrecorded.
        return False

    @admin.action(description=_("Deactivate the selected people (ends every sign-in now)"))
    def deactivate_users(self, request, queryset):
        count = 0
        for user in queryset:
            if user.pk != request.user.pk:
                services.deactivate_user(request.user, user)
                count += 1
        self.message_user(request, _("%(count)d people deactivated.") % {"count": count})


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ["user", "organization", "role"]

    def clean(self):
        cleaned = super().clean()
        membership = self.instance
        if membership.pk is None or self.errors:
            return cleaned
        if {"user", "organization"} & set(self.changed_data):
            raise forms.ValidationError(_("Remove this membership and add a new one instead."))
        if "role" in self.changed_data:
            stored = StaffMembershipFormSet._stored(membership)
            try:
                services.check_staff_member_change(stored, role=cleaned.get("role"))
            except ServiceError as exc:
                self.add_error("role", exc.message)
        return cleaned


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    """Every membership. Added, changed and removed through the membership services (the
    last owner is kept; each change is in the organisation's audit trail and the
    platform's)."""

    form = MembershipAdminForm
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", BY_ORGANIZATION]
    search_fields = ["user__email", "organization__name", "organization__slug"]
    autocomplete_fields = ["user", "organization"]

    def has_delete_permission(self, request, obj=None):
        if obj is not None:
            try:
                services.check_staff_member_change(obj)
            except ServiceError:
                return False  # the last owner
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            stored = StaffMembershipFormSet._stored(obj)
            saved = services.staff_change_role(request.user, stored, obj.role)
        else:
            saved = services.staff_add_member(request.user, obj.organization, obj.user, obj.role)
        obj.pk = saved.pk

    def get_deleted_objects(self, objs, request):
        # The member's tokens and sign-ins go with the membership (staff_remove_member): the
        # read-only admins of those rows do not make removing a member need their delete
        # permission.
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected

    def delete_model(self, request, obj):
        services.staff_remove_member(request.user, obj)

    def delete_queryset(self, request, queryset):
        for membership in queryset.select_related("user", "organization"):
            try:
                services.staff_remove_member(request.user, membership)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.ERROR)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Made and revoked by an organisation's owners and admins, on its own pages."""

    list_display = ["email", "organization", "role", "status", "created_at", "expires_at"]
    list_filter = ["role", BY_ORGANIZATION]
    search_fields = ["email", "organization__name"]
    exclude = ["token_hash"]


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only; staff revoke tokens with the action (audited in both trails)."""

    list_display = ["name", "prefix", "user", "organization", "scope", "last_used_at", "revoked_at"]
    list_filter = ["scope", BY_ORGANIZATION]
    search_fields = ["name", "prefix", "user__email"]
    exclude = ["token_hash"]
    actions = ["revoke"]

    @admin.action(description=_("Revoke the selected tokens"), permissions=["view"])
    def revoke(self, request, queryset):
        tokens = queryset.select_related("user", "organization")
        revoked = sum(services.staff_revoke_api_token(request.user, token) for token in tokens)
        self.message_user(request, _("%(count)d token(s) revoked.") % {"count": revoked})


@admin.register(TokenFamily)
class TokenFamilyAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """JWT sign-ins (the CLI's). Read-only; staff end one with the action, at once (audited
    in both trails)."""

    list_display = ["pk", "membership", "created_at", "refreshed_at", "revoked_at"]
    list_filter = ["revoked_reason"]
    search_fields = ["membership__user__email", "membership__organization__slug"]
    exclude = ["current_jti"]
    actions = ["end_sign_ins"]

    @admin.action(description=_("End the selected sign-ins"), permissions=["view"])
    def end_sign_ins(self, request, queryset):
        ended = sum(services.staff_end_sign_in(request.user, family) for family in queryset)
        self.message_user(request, _("%(count)d sign-in(s) ended.") % {"count": ended})


# --- Support access: platform staff into an organisation, for a while, with a reason ----------


class SupportAccessForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("The organisation reads it in its audit log and on a banner of every page."),
    )
    duration = forms.TypedChoiceField(
        label=_("For"),
        coerce=int,
        choices=[
            (15, _("15 minutes")),
            (60, _("1 hour")),
            (120, _("2 hours")),
            (240, _("4 hours")),
        ],
        initial=60,
    )
    read_write = forms.BooleanField(
        label=_("Read-write (changes allowed, each one audited)"),
        required=False,
        help_text=_("Read-only unless you tick this; it needs its own permission."),
    )


@admin.register(SupportAccess)
class SupportAccessAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Every support access, past and present. Asked for on an organisation's page (a reason
    is required), opened from here, ended early by the "End now" action; none is added,
    changed or deleted by hand."""

    list_display = ["staff", "organization", "mode", "started_at", "expires_at", "state", "open"]
    list_filter = ["read_write", BY_ORGANIZATION]
    search_fields = ["staff__email", "organization__name", "organization__slug", "reason"]
    fields = ["staff", "organization", "reason", "mode", "started_at", "expires_at", "ended_at"]
    readonly_fields = fields
    list_select_related = ["staff", "organization"]
    actions = ["end_now"]

    @admin.display(description=_("mode"), ordering="read_write")
    def mode(self, grant):
        return grant.mode_label

    @admin.display(description=_("state"))
    def state(self, grant):
        if grant.is_active:
            return _("active")
        return _("ended early") if grant.ended_at else _("expired")

    @admin.display(description=_("open"))
    def open(self, grant):
        if not grant.is_active:
            return "—"
        url = reverse("admin:accounts_supportaccess_open", args=[grant.pk])
        label = _("Open %(org)s") % {"org": grant.organization}
        return format_html('<a href="{}">{}</a>', url, label)

    @admin.action(description=_("End the selected support accesses now"))
    def end_now(self, request, queryset):
        count = 0
        for grant in queryset.active():
            if grant.staff_id == request.user.pk or request.user.is_superuser:
                services.end_support_access(grant, actor=request.user)
                count += 1
        self.message_user(request, _("%(count)d support accesses ended.") % {"count": count})

    def get_urls(self):
        def view(function):
            wrapped = self.admin_site.admin_view(function)
            wrapped.model_admin = self
            return wrapped

        return [
            path(
                "request/<int:organization_id>/",
                view(self.request_view),
                name="accounts_supportaccess_request",
            ),
            path("<int:pk>/open/", view(self.open_view), name="accounts_supportaccess_open"),
            *super().get_urls(),
        ]

    def _context(self, request, title, **extra):
        return {
            **self.admin_site.each_context(request),
            "title": title,
            "subtitle": None,
            "opts": self.opts,
            **extra,
        }

    def request_view(self, request, organization_id):
        """Ask for support access to one organisation: a reason, a duration, read-only unless
        read-write is chosen (and allowed)."""
        if not request.user.has_perm("accounts.add_supportaccess"):
            raise PermissionDenied
        organization = (
            Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
            .filter(pk=organization_id)
            .first()
        )
        if organization is None:
            raise Http404
        form = SupportAccessForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                grant = services.start_support_access(
                    request.user,
                    organization,
                    reason=data["reason"],
                    read_write=data["read_write"],
                    duration=timedelta(minutes=data["duration"]),
                )
            except (Forbidden, ServiceError) as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                return HttpResponseRedirect(
                    reverse("admin:accounts_supportaccess_open", args=[grant.pk])
                )
        title = _("Support access to %(org)s") % {"org": organization.name}
        context = self._context(request, title, form=form, organization=organization)
        return TemplateResponse(request, "admin/accounts/supportaccess/request.html", context)

    def open_view(self, request, pk):
        """The button that opens the organisation's host with one's own active support
        access: a single-use token POSTed there (never in an address)."""
        grant = (
            SupportAccess.objects.active()
            .select_related("staff", "organization")
            .filter(pk=pk, staff=request.user)
            .first()
        )
        if grant is None:
            self.message_user(
                request, _("This support access is not yours or has ended."), messages.ERROR
            )
            return HttpResponseRedirect(reverse("admin:accounts_supportaccess_changelist"))
        action, token = services.support_handoff(grant)
        title = _("Support access to %(org)s") % {"org": grant.organization.name}
        context = self._context(request, title, grant=grant, action=action, token=token)
        return TemplateResponse(request, "admin/accounts/supportaccess/open.html", context)
