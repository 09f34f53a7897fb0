"""Push to deploy, the run side (issue 13): what the worker does with an accepted push and
with a polling round. It turns a commit into a revision (apps.sources.sync, package B2),
then applies the environment's Git policy (apps.environments: git_policy, poll_mode):

- ``auto``: a deployment is requested by WindFlow itself (audited as the system, labelled
  "webhook" or "polling"; no member's role is borrowed: the compose policy checks host-level
  features at deploy time with no role, so a stack that needs one waits for an approval);
- ``approval``: a deployment that awaits an approval (apps.deployments.services), the
  members who may approve are notified; an older one still waiting is superseded;
- ``off``: nothing; polling in ``report`` mode records the revision and the drift only.

A commit that is already deployed (or waiting) is not deployed twice: the check and the
request happen under the stack's row lock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext as _

from apps.audit import services as audit
from apps.deployments import services as deployments
from apps.deployments.choices import DeploymentStatus
from apps.deployments.journal import lock_stack
from apps.deployments.models import Deployment
from apps.environments.choices import GitPolicy, PollMode
from apps.stacks.models import Stack, StackRevision
from windflow.context import ActorContext, acting
from windflow.engine.sources.errors import SourceError
from windflow.errors import ServiceError
from windflow.hotcache import redis_client
from windflow.redaction import redact

from . import sync
from .models import GitSource, WebhookDelivery
from .models_webhooks import DeliveryVerdict as Verdict

logger = logging.getLogger(__name__)

# A check of one source never runs twice at once (two schedulers, a slow fetch overlapping
# the next round): a Redis lock per source, released at the end, expiring after this.
CHECK_LOCK_SECONDS = 15 * 60
# The shortest interval honoured, whatever a source asks.
MIN_POLL_SECONDS = 30


# Pushes that were (or are being) acted on: a newer one of these supersedes an older one.
LIVE_VERDICTS = (
    Verdict.ACCEPTED,
    Verdict.DEPLOYED,
    Verdict.AWAITING_APPROVAL,
    Verdict.UNCHANGED,
)


@dataclass
class Outcome:
    verdict: str
    deployment: Deployment | None = None
    revision: StackRevision | None = None
    detail: str = ""


def apply_policy(
    stack: Stack, revision: StackRevision, *, why: str, mode: str = PollMode.DEPLOY
) -> Outcome:
    """Deploy `revision` as the environment's Git policy says (module docstring)."""
    environment = stack.environment
    policy = environment.effective_git_policy
    if policy == GitPolicy.OFF:
        return Outcome(Verdict.IGNORED_POLICY, revision=revision)
    if mode == PollMode.REPORT:
        audit.record(
            "stack.drift",
            obj=stack,
            changes={"revision": revision.number, "commit": revision.commit_sha, "why": why},
            actor=None,
        )
        return Outcome(Verdict.RECORDED, revision=revision, detail=_("Drift reported only."))
    with transaction.atomic():
        lock_stack(stack.pk)
        if _already_there(stack, revision):
            return Outcome(Verdict.UNCHANGED, revision=revision)
        _supersede(stack, revision)
        deployment = deployments.request_deployment(
            None, stack, revision, approval=policy == GitPolicy.APPROVAL, why=why
        )
    verdict = Verdict.AWAITING_APPROVAL if deployment.awaits_approval else Verdict.DEPLOYED
    return Outcome(verdict, deployment=deployment, revision=revision)


def _already_there(stack: Stack, revision: StackRevision) -> bool:
    """The revision (or its commit) runs, or a deployment of it is queued, running or
    waiting for an approval."""
    stack.refresh_from_db(fields=["current_revision"])
    current = stack.current_revision
    if current is not None and (
        current.pk == revision.pk
        or (revision.commit_sha and current.commit_sha == revision.commit_sha)
    ):
        return True
    pending = (
        DeploymentStatus.AWAITING_APPROVAL,
        DeploymentStatus.QUEUED,
        DeploymentStatus.RUNNING,
    )
    return Deployment.objects.filter(stack=stack, revision=revision, status__in=pending).exists()


def _supersede(stack: Stack, revision: StackRevision) -> None:
    """An older push still waiting for an approval is replaced by this one."""
    waiting = Deployment.objects.filter(
        stack=stack, status=DeploymentStatus.AWAITING_APPROVAL
    ).exclude(revision=revision)
    for older in waiting:
        reason = _("Superseded by a newer commit (revision %(n)d).") % {"n": revision.number}
        deployments.reject_deployment(None, older, reason)


# --- A push ------------------------------------------------------------------------------------


def why_push(delivery: WebhookDelivery) -> str:
    ref = delivery.ref.removeprefix("refs/heads/").removeprefix("refs/tags/")
    if delivery.forced:
        return _("force-push %(sha)s to %(ref)s") % {"sha": delivery.sha[:10], "ref": ref}
    return _("push %(sha)s to %(ref)s") % {"sha": delivery.sha[:10], "ref": ref}


def handle_push(delivery_id: int, message: str = "") -> Outcome | None:
    """Turn an accepted push into a revision and apply the policy; the delivery keeps the
    outcome (deployment queued, awaiting approval, unchanged, failed and why)."""
    delivery = (
        WebhookDelivery.objects.select_related("stack", "stack__environment")
        .filter(pk=delivery_id, verdict=Verdict.ACCEPTED)
        .first()
    )
    if delivery is None:
        return None  # handled already (a redelivered message), or pruned
    stack, why = delivery.stack, why_push(delivery)
    with acting(ActorContext(system_label="webhook")):
        try:
            outcome = _superseded(delivery)
            if outcome is None:
                text = message or why
                if delivery.forced:
                    text = _("%(message)s (force-pushed)") % {"message": text}
                revision = sync.revision_from_commit(None, stack, delivery.sha, message=text[:200])
                # A newer push of the same ref may have been handled while this one fetched.
                outcome = _superseded(delivery) or apply_policy(stack, revision, why=why)
        except (ServiceError, SourceError) as exc:  # unreachable, no such commit, refused
            outcome = Outcome(Verdict.FAILED, detail=redact(exc.message))
        _record_outcome(delivery, outcome)
    return outcome


def _superseded(delivery: WebhookDelivery) -> Outcome | None:
    """Pushes handled out of order (two worker threads, a slow fetch) never leave an older
    commit deployed after a newer one: a push of the same ref received later wins."""
    newer = WebhookDelivery.objects.filter(
        stack_id=delivery.stack_id,
        ref=delivery.ref,
        verified=True,
        id__gt=delivery.id,
        verdict__in=LIVE_VERDICTS,
    ).exists()
    if not newer:
        return None
    return Outcome(Verdict.UNCHANGED, detail=_("A newer push of this ref came after it."))


def _record_outcome(delivery: WebhookDelivery, outcome: Outcome) -> None:
    detail = outcome.detail
    if outcome.revision is not None and not detail:
        detail = _("Revision %(n)d.") % {"n": outcome.revision.number}
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        verdict=outcome.verdict, deployment=outcome.deployment, detail=detail[:300]
    )
    audit.record(
        "webhook.outcome",
        obj=delivery.stack,
        changes={
            "delivery": delivery.delivery_id or delivery.pk,
            "verdict": outcome.verdict,
            **({"deployment": outcome.deployment.pk} if outcome.deployment else {}),
            **({"detail": detail} if outcome.verdict == Verdict.FAILED else {}),
        },
        actor=None,
    )


# --- Polling -----------------------------------------------------------------------------------


def due_sources(now) -> list[int]:
    """Ids of the active organisation's sources whose polling interval has elapsed."""
    found = []
    sources = GitSource.objects.filter(poll_interval__gt=0).values_list(
        "pk", "poll_interval", "last_checked_at"
    )
    for pk, interval, checked in sources:
        interval = max(interval, MIN_POLL_SECONDS)
        if checked is None or (now - checked).total_seconds() >= interval:
            found.append(pk)
    return found


def claim_round(schema: str, source_id: int, interval: int) -> bool:
    """One enqueue per source and interval across every scheduler (Redis SET NX)."""
    key = f"windflow:poll:due:{schema}:{source_id}"
    return bool(redis_client("default").set(key, "1", nx=True, ex=max(interval, MIN_POLL_SECONDS)))


def check_source(schema: str, source_id: int) -> Outcome | None:
    """One polling round of one source, under its lock: fetch the ref (sync.sync_source,
    which records the source's status), and when that made a new revision, apply the
    policy with the environment's poll mode."""
    redis = redis_client("default")
    lock = f"windflow:poll:run:{schema}:{source_id}"
    if not redis.set(lock, "1", nx=True, ex=CHECK_LOCK_SECONDS):
        return None  # another worker checks it right now
    try:
        return _check(source_id)
    finally:
        redis.delete(lock)


def _check(source_id: int) -> Outcome | None:
    source = GitSource.objects.select_related("stack", "stack__environment").filter(pk=source_id)
    source = source.first()
    if source is None:
        return None
    stack = source.stack
    before = stack.latest_revision
    with acting(ActorContext(system_label="polling")):
        revision = sync.sync_source(source.pk)
        if revision is None or (before is not None and revision.pk == before.pk):
            return None
        why = _("new commit %(sha)s on %(ref)s (polling)") % {
            "sha": revision.commit_sha[:10],
            "ref": source.ref,
        }
        return apply_policy(stack, revision, why=why, mode=stack.environment.poll_mode)
