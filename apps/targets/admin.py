from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied

from apps.accounts.middleware import membership_of
from windflow.admin import TenantOnlyAdminMixin
from windflow.errors import Forbidden, ServiceError

from . import services
from .models import PrepareRun, Target, TargetCheck

ADDRESS_FIELDS = ("host", "port", "user")


class TargetAdminForm(forms.ModelForm):
    """What the admin may change on a server, checked by the services as on its pages: its
    name, labels and environments, and where it is reached (host, port, SSH user; for SSH the
    host key there is read now and waits for an admin's confirmation)."""

    class Meta:
        model = Target
        fields = ["name", "host", "port", "user", "labels", "environments"]

    host_key = None  # read by clean() when the address changes, for save_model()

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        target = self.instance
        try:
            if "name" in self.changed_data:
                services.validate_target_name(cleaned.get("name") or "")
            if any(field in self.changed_data for field in ADDRESS_FIELDS):
                self.host_key = services.check_target_address(
                    target,
                    host=cleaned.get("host") or "",
                    port=cleaned.get("port") or 0,
                    user=cleaned.get("user") or "",
                )
        except ServiceError as exc:
            self.add_error(exc.field if exc.field in self.fields else None, exc.message)
        return cleaned


@admin.register(Target)
class TargetAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    """Servers: added, tested, prepared and deleted on their pages. A change here goes
    through the same services (validation, host-key re-scan, RBAC, audit)."""

    rbac_resource = "target"
    changes_through_services = True
    form = TargetAdminForm
    list_display = ["name", "kind", "host", "status", "last_seen"]
    list_filter = ["kind", "status"]
    search_fields = ["name", "host"]
    readonly_fields = [
        "kind",
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

    def save_model(self, request, obj, form, change):
        """Through the services, from the stored row (`obj` already holds the form's values)."""
        membership = membership_of(request)
        target = Target.objects.get(pk=obj.pk)
        data = form.cleaned_data
        try:
            if any(field in form.changed_data for field in ADDRESS_FIELDS):
                services.change_target_address(
                    membership,
                    target,
                    host=data["host"],
                    port=data["port"],
                    user=data["user"],
                    host_key=form.host_key,
                )
            services.update_target(
                membership,
                target,
                name=data["name"],
                labels=data["labels"],
                environments=data["environments"],
            )
        except (Forbidden, ServiceError) as exc:
            # Checked by the form already; a refusal now (a race) is a 403 with its reason.
            raise PermissionDenied(exc.message) from exc
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        pass  # the environments were saved by update_target


@admin.register(TargetCheck)
class TargetCheckAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    rbac_resource = "target"
    list_display = ["target", "status", "started_at", "duration_ms"]
    list_filter = ["status"]


@admin.register(PrepareRun)
class PrepareRunAdmin(TenantOnlyAdminMixin, admin.ModelAdmin):
    rbac_resource = "target"
    list_display = ["target", "status", "exit_code", "created_at", "finished_at"]
    list_filter = ["status"]
