import re

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from windflow.models import public_user_reference

from .choices import BackendName, SecretPurpose, SecretScope

SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,127}$")


def validate_secret_name(value: str) -> None:
    if not SECRET_NAME.match(value or ""):
        raise ValidationError(
            _(
                "Use an upper-case identifier: letters A to Z, digits and _, starting with a "
                "letter (for example DB_PASSWORD)."
            ),
            code="invalid_name",
        )


class StackSecretManager(models.Manager):
    """Stack secrets only: every page, API, lookup and check that goes through
    `SecretRef.objects` never sees a server credential."""

    def get_queryset(self):
        return super().get_queryset().filter(purpose=SecretPurpose.STACK)


class ServerCredentialManager(models.Manager):
    def get_queryset(self):
        return super().get_queryset().filter(purpose=SecretPurpose.SERVER)


class AllPurposesManager(models.Manager):
    """Stack secrets and server credentials alike (WindFlow's own use: targets, clean-ups)."""


class SecretRef(models.Model):
    """A named secret of the organisation (or of one environment). Its value lives in the
    backend; this row holds only what may be shown: name, scope, version, dates.

    `purpose` keeps server credentials (the keys WindFlow uses to reach targets) apart from
    the secrets stacks use: `objects` lists stack secrets only, `server_credentials` the
    others, `all_purposes` both (the base manager, so a target's `credential` still loads)."""

    audit_type = "secret"

    name = models.CharField(_("name"), max_length=128, validators=[validate_secret_name])
    scope = models.CharField(
        max_length=16, choices=SecretScope.choices, default=SecretScope.ORGANIZATION
    )
    environment = models.ForeignKey(
        "environments.Environment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="secrets",
    )
    purpose = models.CharField(
        max_length=8,
        choices=SecretPurpose.choices,
        default=SecretPurpose.STACK,
        editable=False,
        db_index=True,
    )
    backend = models.CharField(max_length=8, choices=BackendName.choices)
    version = models.PositiveIntegerField(default=1)
    description = models.CharField(_("description"), max_length=300, blank=True)
    created_by = public_user_reference(null=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    objects = StackSecretManager()
    server_credentials = ServerCredentialManager()
    all_purposes = AllPurposesManager()

    class Meta:
        ordering = ["name", "environment__name"]
        base_manager_name = "all_purposes"
        constraints = [
            models.UniqueConstraint(
                fields=["name", "purpose"],
                condition=Q(environment__isnull=True),
                name="unique_organization_secret",
            ),
            models.UniqueConstraint(
                fields=["name", "environment"],
                condition=Q(environment__isnull=False),
                name="unique_environment_secret",
            ),
            models.CheckConstraint(
                condition=Q(scope="organization", environment__isnull=True)
                | Q(scope="environment", environment__isnull=False),
                name="secret_scope_matches_environment",
            ),
        ]

    def __str__(self):
        return f"{self.name} ({self.environment.name})" if self.environment_id else self.name

    def get_absolute_url(self):
        return reverse("secrets:secret_detail", args=[self.pk])

    @property
    def location(self) -> str:
        """Where the value lives inside the organisation's space in the backend."""
        if self.purpose == SecretPurpose.SERVER:
            return f"server/{self.name}"
        return (
            f"env/{self.environment.slug}/{self.name}"
            if self.environment_id
            else f"org/{self.name}"
        )


class SecretVersion(models.Model):
    """One value of a secret. For the local backend the encrypted value is here; for Vault
    only the history (the value is in Vault's own versions)."""

    secret = models.ForeignKey(SecretRef, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    ciphertext = models.BinaryField(null=True, editable=False)
    created_by = public_user_reference(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["secret", "version"], name="unique_secret_version")
        ]

    def __str__(self):
        return f"{self.secret} v{self.version}"


class DataKey(models.Model):
    """The organisation's data key for the local backend, wrapped by the master key."""

    wrapped_key = models.BinaryField(editable=False)
    master_key_id = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)
    rewrapped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"data key (master {self.master_key_id})"
