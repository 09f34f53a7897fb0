from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_tenants.models import DomainMixin, TenantMixin

from .links import organization_url
from .validators import validate_local_socket, validate_slug


class Organization(TenantMixin):
    """A customer organisation: one PostgreSQL schema and one subdomain."""

    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("address"), max_length=40, unique=True, validators=[validate_slug])
    created_at = models.DateTimeField(auto_now_add=True)

    # Schemas are created by apps.tenants.services, never as a side effect of save().
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]
        verbose_name = _("organisation")

    def __str__(self):
        return self.name

    @property
    def is_public(self) -> bool:
        return self.schema_name == settings.PUBLIC_SCHEMA_NAME

    @property
    def primary_domain(self) -> str:
        return f"{self.slug}.{settings.WINDFLOW_BASE_DOMAIN}"

    def url(self, path: str = "/") -> str:
        """Absolute URL of a page of this organisation, on its own subdomain."""
        return organization_url(self, path)


class Domain(DomainMixin):
    class Meta:
        verbose_name = _("domain")

    def __str__(self):
        return self.domain


class LocalEngine(models.Model):
    """A Docker engine on the platform's own machines (a unix socket from the operator's
    allow-list, WINDFLOW_LOCAL_SOCKETS), that platform staff hand out to organisations. An
    organisation makes a `local` server only from an engine assigned to it; an engine
    assigned to several organisations is shared (each sees only its own stacks there)."""

    name = models.CharField(_("name"), max_length=63, unique=True)
    socket_path = models.CharField(
        _("Docker socket"),
        max_length=200,
        unique=True,
        validators=[validate_local_socket],
        help_text=_(
            "One of the sockets listed in WINDFLOW_LOCAL_SOCKETS. One engine per socket: "
            "assign it to several organisations to share it."
        ),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    organizations = models.ManyToManyField(
        Organization,
        blank=True,
        related_name="local_engines",
        verbose_name=_("organisations"),
        help_text=_("The organisations that may deploy to this engine."),
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("local Docker engine")

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        import os.path

        # One spelling per socket, so that "unique" means one engine per socket.
        self.socket_path = os.path.normpath(self.socket_path) if self.socket_path else ""
        super().save(*args, **kwargs)
