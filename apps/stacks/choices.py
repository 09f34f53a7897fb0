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
