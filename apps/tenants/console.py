"""The operator console's pages across every organisation, in the Django admin of the public
host (platform staff with the view permission): failed and stuck deployments, offline
servers, security events, the largest organisations, and the organisation list's columns.
Each reads the operator index (apps.tenants.index) in one query per page, never an
organisation's schema; each row links to its organisation's Data page."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Count, F, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.accounts.choices import Role
from apps.accounts.models import Membership
from windflow.admin import ReadOnlyAdminMixin, on_public_host

from . import index
from .models import IndexedDeployment, OfflineServer, OrganizationUsage, SecurityEvent


def _count_of(queryset, outer: str):
    """A correlated count of `queryset`'s rows of the outer row's organisation (0 when
    none); `outer` names the outer column that holds the key `queryset` is filtered on."""
    key = "organization_id"
    counted = queryset.filter(**{key: OuterRef(outer)}).order_by().values(key)
    counted = counted.annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted[:1], output_field=IntegerField()), Value(0))


def with_usage(queryset):
    """Organisations annotated with the console's columns: owner, members, counters,
    failures of the last 24 h, offline servers and last activity, read from the index in
    the same query."""
    owner = Membership.objects.filter(organization_id=OuterRef("pk"), role=Role.OWNER)
    return queryset.annotate(
        owner_email=Subquery(owner.order_by("pk").values("user__email")[:1]),
        member_total=_count_of(Membership.objects.all(), "pk"),
        server_total=Coalesce(F("usage__servers"), Value(0)),
        stack_total=Coalesce(F("usage__stacks"), Value(0)),
        deployment_total=Coalesce(F("usage__deployments"), Value(0)),
        last_activity=F("usage__last_activity_at"),
        failures_24h=_count_of(index.recent_failures(), "schema_name"),
        offline_total=_count_of(OfflineServer.objects.all(), "schema_name"),
    )


def organization_link(organization):
    """The organisation's name, linking to its Data page (the platform's: a dash)."""
    if organization is None:
        return _("platform")
    url = reverse("admin:tenants_organization_data", args=[organization.pk])
    return format_html('<a href="{}" data-testid="organization-link">{}</a>', url, organization)


class YesNoFilter(admin.SimpleListFilter):
    """A filter on an annotation being above zero."""

    annotation = ""

    def lookups(self, request, model_admin):
        return [("yes", _("Yes")), ("no", _("No"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(**{f"{self.annotation}__gt": 0})
        if self.value() == "no":
            return queryset.filter(**{self.annotation: 0})
        return queryset


class FailuresFilter(YesNoFilter):
    title = _("failures in the last 24 h")
    parameter_name = "failures"
    annotation = "failures_24h"


class OfflineFilter(YesNoFilter):
    title = _("offline servers")
    parameter_name = "offline"
    annotation = "offline_total"


class ActivityFilter(admin.SimpleListFilter):
    title = _("last activity")
    parameter_name = "active"

    def lookups(self, request, model_admin):
        return [
            ("day", _("In the last 24 h")),
            ("month", _("In the last 30 days")),
            ("dormant", _("None for 30 days")),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        since = {"day": now - timezone.timedelta(days=1), "month": now - timezone.timedelta(30)}
        if self.value() in since:
            return queryset.filter(last_activity__gte=since[self.value()])
        if self.value() == "dormant":
            return queryset.exclude(last_activity__gte=since["month"])
        return queryset


class OrganizationColumns:
    """The organisation list's columns and filters, from the index (mixed into
    apps.tenants.admin.OrganizationAdmin): no query per row."""

    usage_columns = [
        "owner",
        "members",
        "servers",
        "stacks",
        "deployments",
        "failures",
        "last_activity_at",
    ]
    usage_filters = [FailuresFilter, OfflineFilter, ActivityFilter]
    usage_search_fields = ["memberships__user__email"]

    def get_queryset(self, request):
        return with_usage(super().get_queryset(request))

    @admin.display(description=_("owner"), ordering="owner_email")
    def owner(self, organization):
        return organization.owner_email or "—"

    @admin.display(description=_("members"), ordering="member_total")
    def members(self, organization):
        return organization.member_total

    @admin.display(description=_("servers"), ordering="server_total")
    def servers(self, organization):
        return organization.server_total

    @admin.display(description=_("stacks"), ordering="stack_total")
    def stacks(self, organization):
        return organization.stack_total

    @admin.display(description=_("deployments"), ordering="deployment_total")
    def deployments(self, organization):
        return organization.deployment_total

    @admin.display(description=_("failures (24 h)"), ordering="failures_24h")
    def failures(self, organization):
        return organization.failures_24h

    @admin.display(description=_("last activity"), ordering="last_activity")
    def last_activity_at(self, organization):
        return organization.last_activity or "—"


# --- The pages across organisations ------------------------------------------------------------


class ConsoleAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A read-only page of the index, on the public host only (an organisation's own admin
    never lists other organisations' rows). Rows link to their organisation's Data page."""

    list_display_links = None
    list_per_page = 50
    list_select_related = ["organization"]

    def has_module_permission(self, request):
        return on_public_host(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return on_public_host(request) and super().has_view_permission(request, obj)

    @admin.display(description=_("organisation"), ordering="organization__name")
    def organization_link(self, row):
        return organization_link(row.organization)


class ProblemFilter(admin.SimpleListFilter):
    title = _("problem")
    parameter_name = "problem"

    def lookups(self, request, model_admin):
        return [("failed", _("Failed")), ("stuck", _("Stuck"))]

    def queryset(self, request, queryset):
        if self.value() == "failed":
            return queryset.filter(pk__in=index.failed_deployments().values("pk"))
        if self.value() == "stuck":
            return queryset.filter(pk__in=index.stuck_deployments().values("pk"))
        return queryset


@admin.register(IndexedDeployment)
class DeploymentProblemAdmin(ConsoleAdmin):
    """Failed deployments not followed by a success of their stack, and stuck ones (queued
    or running for too long), across every organisation."""

    list_display = [
        "organization_link",
        "stack",
        "deployment_id",
        "target",
        "status",
        "problem",
        "created_at",
        "finished_at",
        "reason",
    ]
    list_filter = [ProblemFilter, "status", "created_at"]
    search_fields = ["organization__name", "organization__slug", "stack", "target", "reason"]

    def get_queryset(self, request):
        problems = index.failed_deployments() | index.stuck_deployments()
        return super().get_queryset(request).filter(pk__in=problems.values("pk"))

    @admin.display(description=_("problem"))
    def problem(self, row):
        return _("Failed") if row.status in index.FAILED else _("Stuck")


@admin.register(OfflineServer)
class OfflineServerAdmin(ConsoleAdmin):
    """Servers whose last check found them offline, across every organisation."""

    list_display = ["organization_link", "name", "since", "failed_check"]
    list_filter = ["since"]
    search_fields = ["organization__name", "organization__slug", "name"]


@admin.register(SecurityEvent)
class SecurityEventAdmin(ConsoleAdmin):
    """Lockouts, compose policy refusals and revocations, in every organisation and on the
    platform, for SECURITY_EVENT_DAYS."""

    list_display = ["created_at", "kind", "organization_link", "actor", "summary"]
    list_filter = ["kind", "created_at"]
    search_fields = ["organization__name", "organization__slug", "actor", "summary"]
    date_hierarchy = "created_at"


@admin.register(OrganizationUsage)
class LargestOrganizationsAdmin(ConsoleAdmin):
    """The organisations by usage: deployments, then stacks and servers, sortable."""

    list_display = [
        "organization_link",
        "deployments",
        "stacks",
        "servers",
        "members",
        "failures",
        "last_activity_at",
    ]
    ordering = ["-deployments", "-stacks", "-servers"]
    search_fields = ["organization__name", "organization__slug"]
    list_filter = [FailuresFilter, ActivityFilter]

    def get_queryset(self, request):
        members = Membership.objects.filter(organization__schema_name=OuterRef("pk"))
        members = members.order_by().values("organization_id").annotate(n=Count("pk"))
        return (
            super()
            .get_queryset(request)
            .annotate(
                member_total=Coalesce(
                    Subquery(members.values("n")[:1], output_field=IntegerField()), Value(0)
                ),
                failures_24h=_count_of(index.recent_failures(), "pk"),
                last_activity=F("last_activity_at"),
            )
        )

    @admin.display(description=_("members"), ordering="member_total")
    def members(self, row):
        return row.member_total

    @admin.display(description=_("failures (24 h)"), ordering="failures_24h")
    def failures(self, row):
        return row.failures_24h
