from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from windflow.models import public_user_reference

from .choices import RunStatus, TargetKind, TargetStatus


class Target(models.Model):
    """A Docker host WindFlow deploys to: the local socket, or a server reached over SSH.
    Its SSH private key is a secret (apps.secrets), never a column here."""

    name = models.CharField(_("name"), max_length=63, unique=True)
    slug = models.SlugField(max_length=63, unique=True)
    kind = models.CharField(_("kind"), max_length=8, choices=TargetKind.choices)
    host = models.CharField(_("host"), max_length=253, blank=True)
    port = models.PositiveIntegerField(_("port"), default=22)
    user = models.CharField(_("SSH user"), max_length=64, blank=True)
    socket_path = models.CharField(
        _("Docker socket"), max_length=200, blank=True, default="/var/run/docker.sock"
    )
    # A local target made from an engine that platform staff assigned to this organisation
    # (public schema: no database constraint and no cascade, as for users).
    engine = models.ForeignKey(
        "tenants.LocalEngine",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("local engine"),
    )
    credential = models.ForeignKey(
        "secrets.SecretRef", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    public_key = models.TextField(_("public key"), blank=True)
    host_key_fingerprint = models.CharField(_("pinned host key"), max_length=100, blank=True)
    host_key_type = models.CharField(max_length=40, blank=True)
    pending_host_key_fingerprint = models.CharField(max_length=100, blank=True)
    labels = models.JSONField(_("labels"), default=dict, blank=True)
    environments = models.ManyToManyField(
        "environments.Environment", blank=True, related_name="targets"
    )
    status = models.CharField(
        max_length=10, choices=TargetStatus.choices, default=TargetStatus.UNKNOWN
    )
    last_seen = models.DateTimeField(null=True, blank=True)
    facts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("targets:target_detail", args=[self.slug])

    @property
    def address(self) -> str:
        if self.kind == TargetKind.LOCAL:
            return f"unix://{self.socket_path}"
        if self.kind == TargetKind.TCP_TLS:
            return f"tcp://{self.host}:{self.port}"
        return f"ssh://{self.user}@{self.host}:{self.port}"

    @property
    def needs_host_key_confirmation(self) -> bool:
        return self.kind == TargetKind.SSH and bool(self.pending_host_key_fingerprint)


class TargetCheck(models.Model):
    """One connectivity test: each check's outcome, with a hint when it failed."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="checks")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    duration_ms = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=TargetStatus.choices)
    results = models.JSONField(default=list)
    triggered_by = public_user_reference(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self):
        return f"{self.target} {self.status} at {self.started_at:%Y-%m-%d %H:%M}"


class PrepareRun(models.Model):
    """A run of the "prepare server" script, its output stored line by line."""

    target = models.ForeignKey(Target, on_delete=models.CASCADE, related_name="prepare_runs")
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    output = models.TextField(blank=True)
    requested_by = public_user_reference(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"prepare {self.target} ({self.status})"
