import hashlib
import uuid

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from windflow.models import public_user_reference

from .choices import ControlAction, ControlStatus, SourceKind

# A compose project name: what `docker compose ls` shows on the server.
STACK_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class Stack(models.Model):
    """A compose application, deployed to one target in one environment. Its content lives in
    immutable revisions; the stack holds what is not versioned (where, and how to deploy)."""

    name = models.CharField(
        _("name"),
        max_length=63,
        unique=True,
        validators=[
            RegexValidator(
                STACK_NAME_PATTERN,
                _(
                    "Use lowercase letters, digits, '-' and '_', starting with a letter or a "
                    "digit (at most 63): it becomes the compose project name on the server."
                ),
            )
        ],
    )
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    description = models.TextField(_("description"), blank=True, max_length=2000)
    environment = models.ForeignKey(
        "environments.Environment",
        on_delete=models.PROTECT,
        related_name="stacks",
        verbose_name=_("environment"),
    )
    target = models.ForeignKey(
        "targets.Target", on_delete=models.PROTECT, related_name="stacks", verbose_name=_("server")
    )
    auto_rollback = models.BooleanField(
        _("roll back automatically"),
        default=True,
        help_text=_("When a deployment fails, restore the last revision that succeeded."),
    )
    health_timeout = models.PositiveIntegerField(
        _("health timeout (s)"),
        default=120,
        validators=[MinValueValidator(5), MaxValueValidator(3600)],
        help_text=_("How long every service has to become healthy."),
    )
    grace_period = models.PositiveIntegerField(
        _("grace period (s)"),
        default=10,
        validators=[MinValueValidator(0), MaxValueValidator(600)],
        help_text=_("How long a service without a healthcheck must stay up to count as healthy."),
    )
    registry_credentials = models.JSONField(
        _("registry credentials"),
        default=list,
        blank=True,
        help_text=_(
            "Logins for private image registries: registry, user name and the secret that "
            "holds the password or token."
        ),
    )
    current_revision = models.ForeignKey(
        "StackRevision",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The revision running on the server (the last one deployed with success)."),
    )
    created_by = public_user_reference(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_type = "stack"

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("stacks:stack_detail", args=[self.name])

    @property
    def project(self) -> str:
        """The compose project name on the server."""
        return self.name

    @property
    def latest_revision(self):
        return self.revisions.order_by("-number").first()


class StackRevision(models.Model):
    """One version of a stack's compose file, variables and secret references. Immutable:
    an edit makes a new revision, so any deployment can be reproduced and rolled back to."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    compose = models.TextField(_("compose file"))
    variables = models.JSONField(_("variables"), default=dict, blank=True)
    secrets = models.JSONField(
        _("secrets"),
        default=list,
        blank=True,
        help_text=_("Names of the secrets this revision may use as ${NAME}."),
    )
    message = models.CharField(_("message"), max_length=200, blank=True)
    author = public_user_reference(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Where the content came from (issue 13). `compose` is then the project's MERGED compose
    # text (files, include and extends resolved), and `manifest` maps every file of the
    # project folder the revision uses to its sha256, so two revisions compare file by file.
    source_kind = models.CharField(
        _("source"), max_length=8, choices=SourceKind.choices, default=SourceKind.INLINE
    )
    commit_sha = models.CharField(_("commit"), max_length=40, blank=True)
    archive_digest = models.CharField(_("archive digest"), max_length=64, blank=True)
    source_ref = models.CharField(_("branch or tag"), max_length=255, blank=True)
    subfolder = models.CharField(_("subfolder"), max_length=255, blank=True)
    compose_files = models.JSONField(_("compose files"), default=list, blank=True)
    manifest = models.JSONField(_("files"), default=dict, blank=True)

    audit_type = "stack_revision"

    class Meta:
        ordering = ["stack", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["stack", "number"], name="stack_revision_number")
        ]

    def __str__(self):
        return f"{self.stack.name} r{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError(_("A revision cannot be changed: save a new one."))
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse("stacks:revision_detail", args=[self.stack.name, self.number])

    def delete(self, *args, **kwargs):
        raise ValidationError(_("A revision cannot be deleted alone: delete its stack."))

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.compose.encode()).hexdigest()[:12]

    @property
    def short_sha(self) -> str:
        return self.commit_sha[:10]


class StackAction(models.Model):
    """A stop, start, restart or removal of a stack (or of one service) that a member asked
    for, and how it ended: queued when asked, then recorded by the worker (succeeded, or
    failed with the reason, its code and a hint). The stack's page and the API show it."""

    stack = models.ForeignKey(Stack, on_delete=models.CASCADE, related_name="actions")
    action = models.CharField(_("action"), max_length=10, choices=ControlAction.choices)
    service = models.CharField(_("service"), max_length=63, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ControlStatus.choices, default=ControlStatus.QUEUED
    )
    message = models.TextField(_("message"), blank=True)
    # Why it failed: a code of docs/targets.md (host_key_changed...) or of the action.
    code = models.CharField(_("code"), max_length=64, blank=True)
    hint = models.TextField(_("hint"), blank=True)
    requested_by = public_user_reference(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("stack action")

    def __str__(self):
        what = f"{self.stack.name}/{self.service}" if self.service else self.stack.name
        return f"{self.action} {what} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in (ControlStatus.SUCCEEDED, ControlStatus.FAILED)
