from django.db import models
from django.utils.translation import gettext_lazy as _


class EnvironmentKind(models.TextChoices):
    DEV = "dev", _("Development")
    STAGING = "staging", _("Staging")
    PROD = "prod", _("Production")


class GitPolicy(models.TextChoices):
    """What a push (webhook) or a new commit found by polling does to the stacks of an
    environment whose source is a Git repository."""

    DEFAULT = "", _("By kind (production or protected: approval; others: automatic)")
    AUTO = "auto", _("Deploy automatically")
    APPROVAL = "approval", _("Deploy after an approval")
    OFF = "off", _("Ignore pushes")


class PollMode(models.TextChoices):
    """What polling (GitOps) does with a new commit of the source's branch."""

    DEPLOY = "deploy", _("Deploy it (as the Git policy says)")
    REPORT = "report", _("Only report the drift")
