from django.db import models
from django.utils.translation import gettext_lazy as _


class ControlAction(models.TextChoices):
    STOP = "stop", _("Stop")
    START = "start", _("Start")
    RESTART = "restart", _("Restart")
    REMOVE = "remove", _("Removal")


class ControlStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")


class SourceKind(models.TextChoices):
    """Where a revision's content came from."""

    INLINE = "inline", _("Compose text")
    GIT = "git", _("Git repository")
    ARCHIVE = "archive", _("Uploaded archive")
