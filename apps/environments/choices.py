from django.db import models
from django.utils.translation import gettext_lazy as _


class EnvironmentKind(models.TextChoices):
    DEV = "dev", _("Development")
    STAGING = "staging", _("Staging")
    PROD = "prod", _("Production")
