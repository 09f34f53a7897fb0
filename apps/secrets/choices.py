from django.db import models
from django.utils.translation import gettext_lazy as _


class SecretScope(models.TextChoices):
    ORGANIZATION = "organization", _("Organisation-wide")
    ENVIRONMENT = "environment", _("One environment")


class BackendName(models.TextChoices):
    LOCAL = "local", _("Encrypted in WindFlow's database")
    VAULT = "vault", _("HashiCorp Vault")


class SecretPurpose(models.TextChoices):
    """Stack secrets are what stacks reference; server credentials (SSH keys, TLS client
    material of targets) are WindFlow's own: no stack can reference them, nobody reads them
    back, and they live in a backend location of their own."""

    STACK = "stack", _("Stack secret")
    SERVER = "server", _("Server credential")
