from django.db import models
from django.utils.translation import gettext_lazy as _


class TargetKind(models.TextChoices):
    LOCAL = "local", _("Docker on a local socket")
    SSH = "ssh", _("Docker over SSH")
    TCP_TLS = "tcp_tls", _("Docker over TCP+TLS")


class TargetStatus(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    ONLINE = "online", _("Online")
    DEGRADED = "degraded", _("Degraded")
    OFFLINE = "offline", _("Offline")


class RunStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
