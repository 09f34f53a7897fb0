"""Push to deploy, the request side (issue 13): a stack's webhook (its URL and secret) and
what happens to a delivery when it arrives.

A delivery is checked the way its provider signs it (apps.sources.providers), recorded
(WebhookDelivery, with its verdict) and audited, and answered at once: 401 for a bad
signature, 200 "duplicate" for a replayed delivery id, 202 "ignored" for an event that is
not a push or a push to another branch, 202 "accepted" for a push to the source's branch.
An accepted push is handed to the worker (apps.sources.push_tasks.handle_push), which
fetches the commit into a revision and applies the environment's Git policy.

Branch filter: a source that follows a branch takes the pushes to that branch only; a
source whose ref is a tag pattern (``v*``, ``release-[0-9]*``: fnmatch) takes the tags that
match it, and one whose ref is an exact tag takes that tag when it is (re)pushed; a source
pinned to a commit SHA takes no push.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import secrets as random
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.environments.choices import GitPolicy
from apps.secrets import backends, crypto
from apps.stacks.models import Stack
from apps.stacks.services import require_change_in
from apps.tenants.links import organization_url

from . import push_tasks
from .models import WebhookDelivery, WebhookEndpoint
from .models_webhooks import DeliveryVerdict as Verdict
from .providers import (
    PING,
    PUSH,
    BadPayload,
    Delivery,
    ProviderError,
    registry,
    repository_of,
)

logger = logging.getLogger(__name__)

# Asked in order: the most specific provider first (providers.registry).
PROVIDERS = tuple(module.WEBHOOK for module in registry.MODULES)
# Deliveries kept per stack (the oldest go first).
KEEP_DELIVERIES = 500
# Deliveries per client address and stack per minute (a signed provider sends far fewer).
RATE = "120/minute"
SECRET_BYTES = 32
AUDIT_ACTION = "webhook.delivery"
REFUSED_ACTION = "webhook.refused"  # a security event: a bad signature, an unknown sender


# --- The webhook of a stack --------------------------------------------------------------------


def _context(stack: Stack) -> bytes:
    return f"windflow:webhook:{connection.schema_name}:{stack.uid}".encode()


def webhook_url(stack: Stack) -> str:
    """The URL to paste into the provider: on the organisation's host, named by the stack's
    uid (which says nothing of its name)."""
    return organization_url(connection.tenant, reverse("hooks:git", args=[stack.uid]))


def require_webhook_change(actor: Membership, stack: Stack) -> None:
    """Who may see a new secret: whoever may change the stack (stack.change, and the right
    to deploy to a protected environment)."""
    permissions.require(actor, "stack.change", stack)
    require_change_in(actor, stack.environment)


def rotate_secret(actor: Membership, stack: Stack) -> str:
    """Make (or replace) the stack's webhook secret and return it, the only time it is shown
    in clear: it is stored sealed with the organisation's data key."""
    require_webhook_change(actor, stack)
    secret = random.token_urlsafe(SECRET_BYTES)
    sealed = crypto.seal(backends.organization_data_key(), secret.encode(), _context(stack))
    with transaction.atomic():
        _endpoint, created = WebhookEndpoint.objects.update_or_create(
            stack=stack, defaults={"sealed_secret": sealed}
        )
        audit.record(
            "webhook.create" if created else "webhook.rotate",
            obj=stack,
            changes={"url": webhook_url(stack)},
            actor=actor,
        )
    return secret


def secret_of(endpoint: WebhookEndpoint) -> str:
    sealed = bytes(endpoint.sealed_secret)
    return crypto.open_sealed(
        backends.organization_data_key(), sealed, _context(endpoint.stack)
    ).decode()


def deliveries_of(stack: Stack, limit: int = 50):
    return stack.webhook_deliveries.select_related("deployment")[:limit]


# --- Receiving a delivery ----------------------------------------------------------------------


@dataclass
class Answer:
    """What the endpoint answers: a status and a small JSON body (never anything of the
    stack's beyond the verdict)."""

    status: int
    verdict: str
    detail: str = ""
    delivery: WebhookDelivery | None = None

    def body(self) -> dict:
        body = {"verdict": self.verdict}
        if self.detail:
            body["detail"] = self.detail
        if self.delivery is not None and self.delivery.pk:
            body["delivery"] = self.delivery.pk
        return body


def find_stack(uid) -> Stack | None:
    """The active organisation's stack with this uid, with its webhook and source (another
    organisation's uid is simply not here)."""
    return (
        Stack.objects.select_related("environment", "webhook_endpoint", "git_source")
        .filter(uid=uid)
        .first()
    )


def detect(headers):
    """The provider's Webhook whose event header the delivery carries, or None."""
    return next((provider for provider in PROVIDERS if provider.detects(headers)), None)


def receive(stack: Stack, headers, body: bytes) -> Answer:
    """Check, record, audit and answer one delivery to `stack`'s webhook."""
    provider = detect(headers)
    if provider is None:
        return _refuse(
            stack,
            "unknown",
            Verdict.UNKNOWN_PROVIDER,
            401,
            _("No provider event header (X-GitHub-Event, X-Gitlab-Event, X-Event-Key, ...)."),
        )
    endpoint = getattr(stack, "webhook_endpoint", None)
    try:
        secret = secret_of(endpoint) if endpoint is not None else ""
    except (crypto.CryptoError, backends.SecretBackendError):
        logger.exception("webhook of %s: its secret cannot be read", stack.name)
        return Answer(503, "unavailable", _("The webhook secret cannot be read: rotate it."))
    if not secret or not provider.verify(headers, body, secret):
        return _refuse(
            stack,
            provider.name,
            Verdict.BAD_SIGNATURE,
            401,
            _("The signature does not match this stack's webhook secret."),
        )
    try:
        payload = json.loads(body) if body.strip() else {}
        delivery = provider.parse(headers, payload)
    # A signed body of another shape than the provider's (a field of the wrong type):
    # refused with the reason, never a 500.
    except (ValueError, BadPayload, AttributeError, TypeError, KeyError, IndexError) as exc:
        parsed = Delivery(provider.name, "", "other", provider.event(headers)[:60])
        return _record(
            stack,
            parsed,
            Verdict.BAD_PAYLOAD,
            400,
            _("Unreadable payload: %(e)s") % {"e": str(exc)[:200]},
        )
    return _decide(stack, delivery)


def _decide(stack: Stack, delivery: Delivery) -> Answer:
    if _seen(stack, delivery):
        return _record(stack, delivery, Verdict.DUPLICATE, 200, _("Already received."))
    if delivery.event == PING:
        return _record(stack, delivery, Verdict.PING, 200)
    if delivery.event != PUSH:
        return _record(
            stack,
            delivery,
            Verdict.IGNORED_EVENT,
            202,
            _("Only pushes deploy; “%(event)s” is ignored.") % {"event": delivery.raw_event},
        )
    source = getattr(stack, "git_source", None)
    if source is None:
        return _record(
            stack, delivery, Verdict.IGNORED_EVENT, 202, _("This stack has no Git source.")
        )
    if stack.environment.effective_git_policy == GitPolicy.OFF:
        return _record(
            stack,
            delivery,
            Verdict.IGNORED_POLICY,
            202,
            _("Pushes are off in %(environment)s.") % {"environment": stack.environment.name},
        )
    if delivery.repository_urls and not same_repository(source.url, delivery.repository_urls):
        return _record(
            stack,
            delivery,
            Verdict.WRONG_REPOSITORY,
            400,
            _("This push is for another repository than the stack's source."),
        )
    if not ref_matches(source.ref, delivery):
        return _record(
            stack,
            delivery,
            Verdict.IGNORED_REF,
            202,
            _("%(ref)s is not what the stack follows (%(source)s).")
            % {"ref": delivery.ref, "source": source.ref},
        )
    if delivery.deleted:
        return _record(stack, delivery, Verdict.IGNORED_DELETE, 202, _("The ref was deleted."))
    if not delivery.after:
        return _record(stack, delivery, Verdict.BAD_PAYLOAD, 400, _("The push names no commit."))
    answer = _record(stack, delivery, Verdict.ACCEPTED, 202)
    if answer.verdict == Verdict.ACCEPTED:
        push_tasks.enqueue_push(answer.delivery, delivery.message)
    return answer


def _seen(stack: Stack, delivery: Delivery) -> bool:
    if not delivery.delivery_id:
        return False
    return (
        WebhookDelivery.objects.filter(
            stack=stack,
            provider=delivery.provider,
            delivery_id=delivery.delivery_id[:100],
            verified=True,
        )
        .exclude(verdict=Verdict.DUPLICATE)
        .exists()
    )


def _record(stack, delivery: Delivery, verdict: str, status: int, detail: str = "") -> Answer:
    """Store the delivery and its verdict, and audit it, in one transaction. A concurrent
    copy of the same delivery (same id) loses the race and is answered as a duplicate."""
    row = WebhookDelivery(
        stack=stack,
        provider=delivery.provider,
        delivery_id=delivery.delivery_id[:100],
        verified=True,
        event=delivery.raw_event[:60],
        ref=delivery.ref[:255],
        sha=delivery.after,
        forced=delivery.forced,
        verdict=verdict,
        status_code=status,
        detail=str(detail)[:300],
    )
    try:
        with transaction.atomic():
            row.save()
            _audit(AUDIT_ACTION, stack, row)
    except IntegrityError:
        if verdict == Verdict.DUPLICATE:
            raise
        return _record(stack, delivery, Verdict.DUPLICATE, 200, _("Already received."))
    _prune(stack)
    return Answer(status, verdict, row.detail, row)


def _refuse(stack, provider: str, verdict: str, status: int, detail: str) -> Answer:
    """An unverified delivery: recorded without its id (it proves nothing), audited as a
    security event."""
    row = WebhookDelivery(
        stack=stack,
        provider=provider,
        verified=False,
        verdict=verdict,
        status_code=status,
        detail=detail[:300],
    )
    with transaction.atomic():
        row.save()
        _audit(REFUSED_ACTION, stack, row)
    _prune(stack)
    return Answer(status, verdict, detail, row)


def _audit(action: str, stack: Stack, row: WebhookDelivery) -> None:
    changes = {
        "provider": row.provider,
        "verdict": row.verdict,
        "status": row.status_code,
    }
    for field in ("delivery_id", "event", "ref", "sha"):
        if getattr(row, field):
            changes[field] = getattr(row, field)
    if row.forced:
        changes["forced"] = True
    audit.record(action, obj=stack, changes=changes)


def _prune(stack: Stack) -> None:
    """Keep the newest KEEP_DELIVERIES of the stack (checked every 50 deliveries)."""
    newest = stack.webhook_deliveries.order_by("-id").values_list("id", flat=True)
    last = newest.first()
    if last is None or last % 50:
        return
    cutoff = list(newest[KEEP_DELIVERIES : KEEP_DELIVERIES + 1])
    if cutoff:
        stack.webhook_deliveries.filter(id__lte=cutoff[0]).delete()


# --- Matching ----------------------------------------------------------------------------------

SHA = re.compile(r"^[0-9a-fA-F]{40}$")
PATTERN_CHARS = set("*?[")


def ref_matches(source_ref: str, delivery: Delivery) -> bool:
    """Whether a push to `delivery.ref` is one the source follows (module docstring)."""
    source_ref = (source_ref or "").strip()
    if not source_ref or SHA.match(source_ref):
        return False
    for prefix in ("refs/heads/", "refs/tags/"):
        if source_ref.startswith(prefix):
            return delivery.ref == source_ref or (
                prefix == "refs/tags/"
                and delivery.tag is not None
                and PATTERN_CHARS & set(source_ref)
                and fnmatch.fnmatchcase(delivery.tag, source_ref.removeprefix(prefix))
            )
    if delivery.branch is not None:
        return delivery.branch == source_ref
    if delivery.tag is not None:
        if PATTERN_CHARS & set(source_ref):
            return fnmatch.fnmatchcase(delivery.tag, source_ref)
        return delivery.tag == source_ref
    return False


def _normalised(url: str) -> str:
    try:
        repo = repository_of(url)
    except ProviderError:
        return url.strip().lower()
    return f"{repo.host.lower()}/{repo.path.lower()}"


def same_repository(source_url: str, urls) -> bool:
    """Whether one of the delivery's repository URLs names the source's repository (host
    and path, whatever the scheme, user or .git suffix)."""
    wanted = _normalised(source_url)
    return any(_normalised(url) == wanted for url in urls)
