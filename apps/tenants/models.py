from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from .links import organization_url
from .validators import validate_local_socket, validate_slug


class OrganizationStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    SUSPENDED = "suspended", _("suspended")


class Organization(TenantMixin):
    """A customer organisation: one PostgreSQL schema and one subdomain.

    Suspended (apps.tenants.services.suspend_organization): its members read, nothing
    changes (apps.tenants.suspension says where that is enforced). The row travels in the
    host cache (windflow.hotcache), so every check reads `is_suspended` from memory."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("address"), max_length=40, unique=True, validators=[validate_slug])
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=OrganizationStatus.choices,
        default=OrganizationStatus.ACTIVE,
        db_index=True,
    )
    suspended_reason = models.TextField(_("reason for suspension"), blank=True)
    suspended_at = models.DateTimeField(_("suspended at"), null=True, blank=True)
    suspended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("suspended by"),
    )

    # Schemas are created by apps.tenants.services, never as a side effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")

    def __str__(self):
        return self.name

    @property
    def is_suspended(self) -> bool:
        return self.status == OrganizationStatus.SUSPENDED

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME

    @property
    def primary_domain(self) -> str:
        return f"{self.slug}.{settings.WINDFLOW_BASE_DOMAIN}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of a page of this organisation, on its own subdomain."""
        return organization_url(self, path)


class Domain(DomainMixin):
    class Meta:
        verbose_name = _("domain")

    def __str__(self):
        return self.domain


class LocalEngine(models.Model):
    """A Docker engine on the platform's own machines (a unix socket from the operator's
    allow-list, WINDFLOW_LOCAL_SOCKETS), that platform staff hand out to organisations. An
    organisation makes a `local` server only from an engine assigned to it; an engine
    assigned to several organisations is shared (each sees only its own stacks there)."""

    name = models.CharField(_("name"), max_length=63, unique=True)
    socket_path = models.CharField(
        _("Docker socket"),
        max_length=200,
        unique=True,
        validators=[validate_local_socket],
        help_text=_(
            "One of the sockets listed in WINDFLOW_LOCAL_SOCKETS. One engine per socket: "
            "assign it to several organisations to share it."
        ),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    organizations = models.ManyToManyField(
        Organization,
        blank=True,
        related_name="local_engines",
        verbose_name=_("organisations"),
        help_text=_("The organisations that may deploy to this engine."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("local Docker engine")

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        import os.path

        # One spelling per socket, so that "unique" means one engine per socket.
        self.socket_path = os.path.normpath(self.socket_path) if self.socket_path else ""
        super().save(*args, **kwargs)


# --- The operator index (apps.tenants.index): what the operator console reads across every
# organisation, kept in the public schema by the services that change it, so that a page reads
# one table instead of every schema. Rows name their organisation by schema (the one thing a
# worker knows without a query); deleting an organisation deletes its rows (CASCADE).


class OrganizationUsage(models.Model):
    """One row per organisation: its counters and last activity (organisation list, usage)."""

    organization = models.OneToOneField(
        Organization,
        to_field="schema_name",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="usage",
        verbose_name=_("organisation"),
    )
    servers = models.PositiveIntegerField(_("servers"), default=0)
    stacks = models.PositiveIntegerField(_("stacks"), default=0)
    deployments = models.PositiveIntegerField(_("deployments"), default=0)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True)

    class Meta:
        verbose_name = _("organisation usage")
        verbose_name_plural = _("largest organisations")
        indexes = [models.Index(fields=["-deployments"], name="usage_deployments")]

    def __str__(self):
        return str(self.organization_id)


def indexed_organization(**options) -> models.ForeignKey:
    """The organisation of an operator index row, by schema name (what the services know
    while an organisation's schema is active); the row goes with the organisation."""
    return models.ForeignKey(
        Organization,
        to_field="schema_name",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("organisation"),
        **options,
    )


class IndexedDeployment(models.Model):
    """A deployment an operator may have to look at: active (stuck when it lasts), or failed
    and not yet followed by a success of its stack on that server (`resolved_at` then; kept a
    day for the failure counts)."""

    organization = indexed_organization()
    deployment_id = models.PositiveIntegerField(_("deployment"))
    stack = models.CharField(_("stack"), max_length=100)
    target = models.CharField(_("server"), max_length=100, blank=True)
    status = models.CharField(_("status"), max_length=12)
    created_at = models.DateTimeField(_("requested"))
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)

    class Meta:
        verbose_name = _("failed or stuck deployment")
        verbose_name_plural = _("failed and stuck deployments")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "deployment_id"], name="indexed_deployment_unique"
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="indexed_deployment_status"),
            models.Index(fields=["organization", "finished_at"], name="indexed_deployment_org"),
        ]

    def __str__(self):
        return f"{self.organization_id} {self.stack} #{self.deployment_id}"


class OfflineServer(models.Model):
    """A server whose last check found it offline, since the first check that did."""

    organization = indexed_organization()
    server_id = models.PositiveIntegerField(_("server"))
    name = models.CharField(_("name"), max_length=100)
    since = models.DateTimeField(_("offline since"))
    failed_check = models.CharField(_("failed check"), max_length=60, blank=True)

    class Meta:
        verbose_name = _("offline server")
        verbose_name_plural = _("offline servers")
        ordering = ["since"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "server_id"], name="offline_server_unique"
            )
        ]

    def __str__(self):
        return f"{self.organization_id} {self.name}"


class SecurityEventKind(models.TextChoices):
    LOCKOUT = "lockout", _("Sign-in lockout")
    POLICY_REFUSAL = "policy_refusal", _("Compose policy refusal")
    REVOCATION = "revocation", _("Revocation")


class SecurityEvent(models.Model):
    """A lockout, a compose policy refusal or a revocation, in an organisation or on the
    platform (no organisation). Kept SECURITY_EVENT_DAYS (apps.tenants.index.prune)."""

    organization = indexed_organization(null=True, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=SecurityEventKind.choices)
    actor = models.CharField(_("who"), max_length=254, blank=True)
    created_at = models.DateTimeField(_("time"), db_index=True)
    summary = models.CharField(_("summary"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("security event")
        verbose_name_plural = _("security events")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["kind", "-created_at"], name="security_event_kind")]

    def __str__(self):
        return f"{self.kind} {self.actor} {self.created_at:%Y-%m-%d %H:%M}"


class SpareSchema(models.Model):
    """A schema cloned from the template ahead of time (apps.tenants.spares): signing up
    renames one instead of cloning while the person waits. `template_state` is the template's
    migration state it was cloned at: only spares at the current state are handed out."""

    schema_name = models.CharField(max_length=63, unique=True)
    template_state = models.CharField(max_length=32, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self):
        return self.schema_name
