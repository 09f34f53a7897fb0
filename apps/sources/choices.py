from django.db import models
from django.utils.translation import gettext_lazy as _


class GitAuth(models.TextChoices):
    NONE = "none", _("None (public repository)")
    TOKEN = "token", _("HTTPS token (a secret)")
    DEPLOY_KEY = "deploy_key", _("SSH deploy key (generated)")


class SourceStatus(models.TextChoices):
    IDLE = "idle", _("Idle")
    FETCHING = "fetching", _("Fetching")
    OK = "ok", _("Up to date")
    ERROR = "error", _("Error")
