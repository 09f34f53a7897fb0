from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .choices import EnvironmentKind, GitPolicy, PollMode
from .validators import validate_not_reserved_slug, validate_variables


class Environment(models.Model):
    """Where stacks are deployed (dev, staging, prod). Protected environments only take
    deployments from operators or from members granted access on them."""

    name = models.CharField(_("name"), max_length=60, unique=True)
    slug = models.SlugField(
        _("slug"), max_length=60, unique=True, validators=[validate_not_reserved_slug]
    )
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
    compose_overrides = models.JSONField(
        _("compose policy overrides"),
        default=dict,
        blank=True,
        help_text=_(
            "Host-level compose feature -> least role that may deploy it here (or nobody), "
            "instead of the organisation's rule. Changed only through the compose policy."
        ),
    )
    git_policy = models.CharField(
        _("Git push policy"),
        max_length=10,
        choices=GitPolicy.choices,
        default=GitPolicy.DEFAULT,
        blank=True,
        help_text=_(
            "What a push to a stack's Git branch does here: deploy it, wait for an approval "
            "by someone who may deploy here, or nothing."
        ),
    )
    poll_mode = models.CharField(
        _("when polling finds a new commit"),
        max_length=10,
        choices=PollMode.choices,
        default=PollMode.DEPLOY,
        help_text=_(
            "Polling (GitOps) deploys a new commit as the Git policy says, or only reports "
            "the drift."
        ),
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

    @property
    def effective_git_policy(self) -> str:
        """The Git policy in force: the chosen one, else by kind (production and protected
        environments wait for an approval; the others deploy by themselves)."""
        if self.git_policy:
            return self.git_policy
        if self.kind == EnvironmentKind.PROD or self.protected:
            return GitPolicy.APPROVAL
        return GitPolicy.AUTO

    def get_effective_git_policy_display(self) -> str:
        return str(GitPolicy(self.effective_git_policy).label)


class ComposePolicy(models.Model):
    """The organisation's compose policy (one row per organisation schema): for each
    host-level compose feature (windflow.engine.compose.hostaccess.FEATURES), the least role
    that may deploy it, or nobody; and the host directories bind mounts may use without the
    host_path feature. Read and changed through apps.environments.policy only."""

    SINGLETON = 1

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON, editable=False)
    rules = models.JSONField(_("rules"), default=dict, blank=True)
    allowed_paths = models.JSONField(_("allowed host paths"), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_type = "compose_policy"

    class Meta:
        constraints = [models.CheckConstraint(condition=models.Q(id=1), name="one_compose_policy")]

    def __str__(self):
        return str(_("Compose policy"))
