"""Where a stack's project comes from when it is not a pasted compose text (issue 13): a Git
repository (GitSource, one per stack) or an uploaded archive (SourceArchive, stored in
PostgreSQL by digest: web and worker keep no state on disk)."""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from .choices import GitAuth, SourceStatus


class GitSource(models.Model):
    """The Git repository a stack follows: what to fetch (url, ref, subfolder, compose
    files), how to authenticate (a token kept as a WindFlow secret, or a deploy key that
    WindFlow generated, its private half a server credential), and how the last fetch went."""

    stack = models.OneToOneField(
        "stacks.Stack", on_delete=models.CASCADE, related_name="git_source"
    )
    url = models.CharField(_("repository URL"), max_length=500)
    ref = models.CharField(
        _("branch, tag or commit"),
        max_length=255,
        default="main",
        help_text=_("What to deploy: a branch name, a tag or a full commit SHA."),
    )
    subfolder = models.CharField(
        _("subfolder"),
        max_length=255,
        blank=True,
        help_text=_("The project's folder inside the repository (empty: its root)."),
    )
    compose_files = models.JSONField(
        _("compose files"),
        default=list,
        blank=True,
        help_text=_("In order, like docker compose -f a -f b (empty: compose.yaml)."),
    )
    auth = models.CharField(
        _("authentication"), max_length=10, choices=GitAuth.choices, default=GitAuth.NONE
    )
    # The name of a stack secret (apps.secrets) holding an HTTPS access token.
    token_secret = models.CharField(_("token secret"), max_length=128, blank=True)
    # The private half of the generated deploy key: a server credential (never a value here).
    deploy_key = models.ForeignKey(
        "secrets.SecretRef",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    public_key = models.TextField(_("deploy key (public)"), blank=True)
    # The SSH server's host key, pinned at the first fetch ("ssh-ed25519 AAAA...").
    host_key = models.TextField(_("host key"), blank=True)
    poll_interval = models.PositiveIntegerField(
        _("polling interval (s)"),
        default=0,
        help_text=_("How often to look for a new commit (0: never; webhooks or by hand)."),
    )
    last_sha = models.CharField(_("last commit"), max_length=40, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=SourceStatus.choices, default=SourceStatus.IDLE
    )
    error_code = models.CharField(_("error code"), max_length=64, blank=True)
    error_message = models.TextField(_("error"), blank=True)
    error_hint = models.TextField(_("hint"), blank=True)
    # The last notice that is not an error (a force-pushed branch).
    warning = models.TextField(_("last warning"), blank=True)
    last_checked_at = models.DateTimeField(_("last checked"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    audit_type = "git_source"
    # What the user chooses (the form, the API, update_source), in the order pages show it.
    CHOSEN_FIELDS = (
        "url",
        "ref",
        "subfolder",
        "compose_files",
        "auth",
        "token_secret",
        "poll_interval",
    )

    class Meta:
        verbose_name = _("Git source")
        ordering = ["stack__name"]

    def __str__(self):
        return f"{self.stack.name}: {self.url}@{self.ref}"

    def get_absolute_url(self):
        return reverse("stacks:stack_detail", args=[self.stack.name])

    @property
    def short_sha(self) -> str:
        return self.last_sha[:10]


class SourceArchive(models.Model):
    """An uploaded project archive (.tar.gz or .zip) as it was received, once per content:
    revisions name it by `archive_digest`, and the worker unpacks it into its cache."""

    digest = models.CharField(_("digest"), max_length=64, unique=True)
    content = models.BinaryField(_("content"))
    size = models.PositiveBigIntegerField(_("size (bytes)"))
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    audit_type = "source_archive"

    class Meta:
        verbose_name = _("uploaded archive")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.filename or 'archive'} ({self.digest[:12]})"


# Push to deploy (package D): a stack's webhook and its deliveries.
from .models_webhooks import WebhookDelivery, WebhookEndpoint  # noqa: E402, F401
