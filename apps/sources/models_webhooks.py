"""Push to deploy (issue 13): the webhook of a stack (its secret, sealed) and every delivery
that reached it, with the verdict. Imported by apps.sources.models."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class DeliveryVerdict(models.TextChoices):
    # Verified and taken: the worker fetches the commit and applies the environment's policy.
    ACCEPTED = "accepted", _("Accepted")
    DEPLOYED = "deployed", _("Deployment queued")
    AWAITING_APPROVAL = "awaiting_approval", _("Awaiting approval")
    RECORDED = "recorded", _("Revision recorded, not deployed")
    UNCHANGED = "unchanged", _("Already deployed")
    FAILED = "failed", _("Failed")
    # Answered at once.
    PING = "ping", _("Ping")
    DUPLICATE = "duplicate", _("Duplicate delivery")
    IGNORED_EVENT = "ignored_event", _("Ignored: not a push")
    IGNORED_REF = "ignored_ref", _("Ignored: another branch or tag")
    IGNORED_DELETE = "ignored_delete", _("Ignored: branch deleted")
    IGNORED_POLICY = "ignored_policy", _("Ignored: pushes are off here")
    WRONG_REPOSITORY = "wrong_repository", _("Refused: another repository")
    BAD_SIGNATURE = "bad_signature", _("Refused: bad signature")
    BAD_PAYLOAD = "bad_payload", _("Refused: unreadable payload")
    UNKNOWN_PROVIDER = "unknown_provider", _("Refused: unknown sender")


class WebhookEndpoint(models.Model):
    """A stack's webhook: the secret that providers sign deliveries with, sealed with the
    organisation's data key (AES-GCM, apps.secrets.crypto). Shown once, when made or
    rotated; never again."""

    stack = models.OneToOneField(
        "stacks.Stack", on_delete=models.CASCADE, related_name="webhook_endpoint"
    )
    sealed_secret = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(auto_now=True)

    audit_type = "webhook"

    class Meta:
        verbose_name = _("webhook")

    def __str__(self):
        return f"{self.stack.name} webhook"


class WebhookDelivery(models.Model):
    """One delivery to a stack's webhook: who sent it, what it said, what WindFlow made of
    it. No body and no header values are kept (the signature is not a secret, but the body
    may carry commit messages with anything in them)."""

    stack = models.ForeignKey(
        "stacks.Stack", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    provider = models.CharField(_("provider"), max_length=16)
    # The provider's id for the delivery (X-GitHub-Delivery...): unique per stack once
    # verified, so a replay is told apart. Unverified deliveries never claim an id.
    delivery_id = models.CharField(_("delivery id"), max_length=100, blank=True)
    verified = models.BooleanField(default=False)
    event = models.CharField(_("event"), max_length=60, blank=True)
    ref = models.CharField(_("ref"), max_length=255, blank=True)
    sha = models.CharField(_("commit"), max_length=40, blank=True)
    forced = models.BooleanField(_("force-pushed"), default=False)
    verdict = models.CharField(
        _("verdict"), max_length=20, choices=DeliveryVerdict.choices, db_index=True
    )
    status_code = models.PositiveSmallIntegerField(_("answer"))
    detail = models.CharField(_("detail"), max_length=300, blank=True)
    deployment = models.ForeignKey(
        "deployments.Deployment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True, db_index=True)

    audit_type = "webhook_delivery"

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["stack", "provider", "delivery_id"],
                condition=Q(verified=True) & ~Q(delivery_id="") & ~Q(verdict="duplicate"),
                name="webhook_delivery_once",
            )
        ]

    def __str__(self):
        return f"{self.stack.name} {self.provider} {self.delivery_id or self.pk}: {self.verdict}"

    @property
    def short_sha(self) -> str:
        return self.sha[:10]
