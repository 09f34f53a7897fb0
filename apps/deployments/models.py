from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from windflow.models import public_user_reference

from .choices import (
    ACTIVE_STATUSES,
    FINISHED_STATUSES,
    DeploymentKind,
    DeploymentStatus,
    LogLevel,
    ServicePhase,
)


class Deployment(models.Model):
    """One attempt to run a stack revision on a target. Its steps and log live in
    PostgreSQL first (so a page opened later sees everything), then go out live."""

    stack = models.ForeignKey("stacks.Stack", on_delete=models.CASCADE, related_name="deployments")
    # Pages, URLs, notifications and the audit trail name a deployment by its id ("shop #9"
    # is /deployments/9/); `number` counts the stack's deployments (the API keeps it).
    number = models.PositiveIntegerField(help_text=_("Sequence number within the stack."))
    revision = models.ForeignKey(
        "stacks.StackRevision", on_delete=models.CASCADE, related_name="deployments"
    )
    target = models.ForeignKey(
        "targets.Target", on_delete=models.SET_NULL, null=True, related_name="deployments"
    )
    environment = models.ForeignKey(
        "environments.Environment",
        on_delete=models.SET_NULL,
        null=True,
        related_name="deployments",
    )
    kind = models.CharField(
        max_length=10, choices=DeploymentKind.choices, default=DeploymentKind.DEPLOY
    )
    status = models.CharField(
        max_length=20,
        choices=DeploymentStatus.choices,
        default=DeploymentStatus.QUEUED,
        db_index=True,
    )
    resumed_from = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    rolled_back_to = models.ForeignKey(
        "stacks.StackRevision",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("The revision restored after this deployment failed."),
    )
    triggered_by = public_user_reference(null=True, blank=True)
    # Who approved or rejected a deployment that awaited an approval, and when.
    decided_by = public_user_reference(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(
        _("reason"),
        max_length=500,
        blank=True,
        help_text=_("Why it failed or was cancelled, in one line."),
    )
    diagnosis = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveIntegerField(default=0)

    audit_type = "deployment"

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["stack", "number"], name="deployment_number"),
            # One deployment at a time per stack and target; the others wait, queued.
            models.UniqueConstraint(
                fields=["stack", "target"],
                condition=Q(status=DeploymentStatus.RUNNING),
                name="one_running_deployment_per_stack_target",
            ),
        ]
        indexes = [models.Index(fields=["stack", "status"])]

    def __str__(self):
        return f"{self.stack.name} #{self.pk}"

    def get_absolute_url(self):
        return reverse("deployments:deployment_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def awaits_approval(self) -> bool:
        return self.status == DeploymentStatus.AWAITING_APPROVAL

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def duration(self):
        if self.started_at is None:
            return None
        end = self.finished_at
        if end is None:
            from django.utils import timezone

            end = timezone.now()
        return end - self.started_at


class DeploymentService(models.Model):
    """Where one service of a deployment stands: the progress bar of the live page."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="services")
    service = models.CharField(max_length=63)
    phase = models.CharField(
        max_length=10, choices=ServicePhase.choices, default=ServicePhase.WAITING
    )
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["deployment", "service"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "service"], name="deployment_service")
        ]

    def __str__(self):
        return f"{self.deployment} {self.service}: {self.phase}"

    def as_dict(self) -> dict:
        return {
            "service": self.service,
            "phase": self.phase,
            "progress": self.progress,
            "message": self.message,
        }


class DeploymentLogLine(models.Model):
    """One line of a deployment's log, numbered from 1 so a reader resumes after the last
    line it has."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="lines")
    seq = models.PositiveIntegerField()
    created_at = models.DateTimeField()
    level = models.CharField(max_length=8, choices=LogLevel.choices, default=LogLevel.INFO)
    service = models.CharField(max_length=63, blank=True)
    message = models.TextField()

    class Meta:
        ordering = ["deployment", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["deployment", "seq"], name="deployment_log_seq")
        ]

    def __str__(self):
        return f"{self.deployment} {self.seq}: {self.message[:60]}"

    def as_dict(self) -> dict:
        return {
            "seq": self.seq,
            "time": self.created_at.isoformat(),
            "level": self.level,
            "service": self.service,
            "message": self.message,
        }
