from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class DeploymentStatus(models.TextChoices):
    # Asked for by a push to an environment whose Git policy wants an approval: it does not
    # run until someone who may deploy there approves it (then queued), or rejects it
    # (then cancelled).
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
    ROLLED_BACK = "rolled_back", _("Rolled back")
    CANCELLED = "cancelled", _("Cancelled")


ACTIVE_STATUSES = (DeploymentStatus.QUEUED, DeploymentStatus.RUNNING)
FINISHED_STATUSES = (
    DeploymentStatus.SUCCEEDED,
    DeploymentStatus.FAILED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.CANCELLED,
)


class DeploymentKind(models.TextChoices):
    DEPLOY = "deploy", _("Deploy")
    ROLLBACK = "rollback", _("Rollback")
    RESUME = "resume", pgettext_lazy("kind of deployment", "Resume")


class ServicePhase(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    BUILD = "build", _("Building")
    PULL = "pull", _("Pulling")
    CREATE = "create", _("Creating")
    START = "start", _("Starting")
    HEALTHY = "healthy", _("Healthy")
    RUNNING = "running", _("Running")
    UNCHANGED = "unchanged", _("Unchanged")
    STOP = "stop", _("Stopping")
    REMOVE = "remove", _("Removing")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class LogLevel(models.TextChoices):
    INFO = "info", _("Info")
    WARNING = "warning", _("Warning")
    ERROR = "error", _("Error")
