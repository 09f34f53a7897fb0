from django.db import models
from django.utils.translation import gettext_lazy as _


class SecretScope(models.TextChoices):
    ORGANIZATION = "organization", _("Organisation-wide")
    ENVIRONMENT = "environment", _("One environment")


class BackendName(models.TextChoices):
    LOCAL = "local", _("Encrypted in WindFlow's database")
    VAULT = "vault", _("HashiCorp Vault")
