from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .choices import EnvironmentKind
from .validators import validate_variables


class Environment(models.Model):
    """Where stacks are deployed (dev, staging, prod). Protected environments only take
    deployments from operators or from members granted access on them."""

    name = models.CharField(_("name"), max_length=60, unique=True)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    kind = models.CharField(
        _("kind"), max_length=16, choices=EnvironmentKind.choices, default=EnvironmentKind.DEV
    )
    protected = models.BooleanField(
        _("protected"),
        default=False,
        help_text=_("Only operators, or members granted access, may deploy here."),
    )
    description = models.TextField(_("description"), blank=True, max_length=2000)
    variables = models.JSONField(
        _("variables"), default=dict, blank=True, validators=[validate_variables]
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("deploy_environment", "Can deploy to this environment")]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("environments:environment_detail", args=[self.slug])
