"""Deployments: asking for one, cancelling, rolling back, resuming, and the record of what
happened (steps and log lines in PostgreSQL first, then published live).

Running a deployment (the worker side) is in :mod:`apps.deployments.runner`.

The record survives a dependency's blip: a write that meets a dead connection or a
restarting PostgreSQL is retried with backoff (outside a caller's transaction), and
publishing is best-effort (the database holds the truth; the page catches up from it).
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from apps.environments.policy import CODE as POLICY_REFUSED
from apps.stacks.models import Stack, StackRevision
from apps.stacks.services import check_compose
from windflow.errors import Conflict, ServiceError
from windflow.realtime import current_schema, group_name, publish
from windflow.resilience import retry

from .choices import ACTIVE_STATUSES, DeploymentKind, DeploymentStatus, LogLevel
from .models import Deployment, DeploymentLogLine, DeploymentService

LOG_PAGE_SIZE = 500
# How long a deployment's writes are retried while PostgreSQL is away.
WRITE_RETRY_SECONDS = 45.0
# How long finishing a deployment waits for the broker to wake the next one (in a worker);
# a request (cancelling a queued deployment) waits less. requeue_forgotten covers the rest.
SEND_RETRY_SECONDS = 30.0

logger = logging.getLogger(__name__)


# --- Access -------------------------------------------------------------------------------


def require_deploy(actor: Membership, stack: Stack, deployment: Deployment | None = None) -> None:
    """Deploying, rolling back, cancelling and controlling a stack all need the right to
    deploy to its environment (protected ones: operator, or a developer with a grant); acting
    on an earlier deployment also needs that right in the environment it went to."""
    permissions.require_deploy_to(actor, stack.environment)
    if deployment is not None and deployment.environment_id != stack.environment_id:
        permissions.require_deploy_to(actor, deployment.environment)


def lock_stack(stack_id: int) -> None:
    """Lock order, everywhere: the stack row first, then deployment rows, then the audit
    chain (audit.record). A transaction that records audit events about a stack's
    deployments takes the stack row before anything else; otherwise a request holding the
    stack and waiting for the audit lock deadlocks with one holding the audit lock and
    waiting for the stack (a foreign-key check on a row it updated twice)."""
    Stack.objects.select_for_update().filter(pk=stack_id).first()


def visible_deployments(actor: Membership):
    return permissions.visible(
        actor,
        Deployment.objects.select_related("stack", "revision", "target", "environment"),
        "deployment.view",
    )


# --- Requests -----------------------------------------------------------------------------


def require_policy_allows(actor: Membership, stack: Stack, revision: StackRevision) -> None:
    """Refuse at once what the worker would refuse at the start: a host-level feature that the
    compose policy does not let `actor` deploy there (the worker checks again, as the policy
    or the role may change while the deployment waits)."""
    analysis = check_compose(
        revision.compose,
        variables=revision.variables,
        secrets=revision.secrets,
        environment=stack.environment,
        project=stack.project,
        actor=actor,
        target=stack.target,
    )
    refused = [problem for problem in analysis.errors if problem.code == POLICY_REFUSED]
    if refused:
        first = refused[0]
        where = _("Line %(line)d: ") % {"line": first.line} if first.line else ""
        raise ServiceError(f"{where}{first.message}", code="policy_refused")


def request_deployment(
    actor: Membership | None,
    stack: Stack,
    revision: StackRevision | None = None,
    *,
    kind: str = DeploymentKind.DEPLOY,
    resumed_from: Deployment | None = None,
) -> Deployment:
    """Queue a deployment of `revision` (default: the latest) of `stack` to its target and
    environment. It runs when no other deployment of the stack runs on that target."""
    if actor is not None:
        require_deploy(actor, stack)
    revision = revision or stack.latest_revision
    if revision is None:
        raise ServiceError(_("This stack has no revision to deploy yet."), code="no_revision")
    if revision.stack_id != stack.pk:
        raise ServiceError(_("This revision belongs to another stack."), field="revision")
    if actor is not None:
        require_policy_allows(actor, stack, revision)
    from .tasks import run_deployment  # tasks imports this module

    with transaction.atomic():
        # The stack row serialises numbering between concurrent requests.
        lock_stack(stack.pk)
        number = (stack.deployments.aggregate(n=Max("number"))["n"] or 0) + 1
        deployment = Deployment.objects.create(
            stack=stack,
            number=number,
            revision=revision,
            target_id=stack.target_id,
            environment_id=stack.environment_id,
            kind=kind,
            resumed_from=resumed_from,
            triggered_by=actor.user if actor else None,
        )
        audit.record(
            "deployment.request",
            obj=deployment,
            changes={
                "stack": stack.name,
                "revision": revision.number,
                "kind": kind,
                "target": stack.target.name,
                "environment": stack.environment.name,
            },
            actor=actor.user if actor else None,
        )
        waiting = _active_before(deployment)
        if waiting:
            append_log(
                deployment,
                _("Queued behind %(n)d other deployment(s) of this stack.") % {"n": waiting},
            )
        from windflow.workers import send_on_commit

        # Redis away: the deployment stays queued and requeue_forgotten sends it later.
        send_on_commit(run_deployment, deployment.pk, required=False)
    return deployment


def _active_before(deployment: Deployment) -> int:
    return (
        Deployment.objects.filter(
            stack_id=deployment.stack_id,
            target_id=deployment.target_id,
            status__in=ACTIVE_STATUSES,
        )
        .exclude(pk=deployment.pk)
        .count()
    )


def rollback_to(actor: Membership, stack: Stack, revision: StackRevision) -> Deployment:
    """Deploy an earlier revision again; only one that once succeeded is a rollback target."""
    if not revision.deployments.filter(status=DeploymentStatus.SUCCEEDED).exists():
        raise ServiceError(
            _("Revision %(n)d never deployed successfully: pick a revision that did.")
            % {"n": revision.number},
            field="revision",
            code="not_a_good_revision",
        )
    return request_deployment(actor, stack, revision, kind=DeploymentKind.ROLLBACK)


def resume_deployment(actor: Membership, deployment: Deployment) -> Deployment:
    """Run a failed or cancelled deployment's revision again (deploys converge: what is
    already in place is kept)."""
    if actor is not None:
        require_deploy(actor, deployment.stack, deployment)
    if deployment.is_active:
        raise Conflict(_("This deployment has not finished."), code="deployment_active")
    return request_deployment(
        actor,
        deployment.stack,
        deployment.revision,
        kind=DeploymentKind.RESUME,
        resumed_from=deployment,
    )


def cancel_deployment(actor: Membership | None, deployment: Deployment) -> Deployment:
    """A queued deployment is cancelled at once; a running one stops at its next step
    (within about a second) and cleans up after itself."""
    if actor is not None:
        require_deploy(actor, deployment.stack, deployment)
    with transaction.atomic():
        lock_stack(deployment.stack_id)
        deployment = Deployment.objects.select_for_update().get(pk=deployment.pk)
        if deployment.is_finished:
            raise Conflict(
                _("This deployment has already finished (%(status)s).")
                % {"status": deployment.get_status_display()},
                code="deployment_finished",
            )
        if deployment.cancel_requested_at is None:
            deployment.cancel_requested_at = timezone.now()
            deployment.save(update_fields=["cancel_requested_at"])
            audit.record("deployment.cancel", obj=deployment, actor=actor.user if actor else None)
        if deployment.status == DeploymentStatus.QUEUED:
            finish(deployment, DeploymentStatus.CANCELLED, _("Cancelled before it started."))
        else:
            append_log(deployment, _("Cancellation requested."), level=LogLevel.WARNING)
    return deployment


# --- The record ---------------------------------------------------------------------------


def deployment_group(deployment: Deployment) -> str:
    return group_name(current_schema(), "deployment", deployment.pk)


def _redact(deployment: Deployment, text: str) -> str:
    """Every text stored or published about a deployment goes through here: the secrets in
    scope for its stack are masked (apps.secrets.redaction.redact_for_stack)."""
    from apps.secrets.redaction import redact_for_stack

    return redact_for_stack(deployment.stack, text)


def append_log(
    deployment: Deployment, message: str, *, level: str = LogLevel.INFO, service: str = ""
) -> DeploymentLogLine:
    """Store one log line (numbered after the last), then publish it; secret values masked.
    Retried while PostgreSQL is away (a line is never lost to a blip)."""
    message = _redact(deployment, message)
    return retry(
        lambda: _append_log(deployment, message, level, service),
        what=f"log line of deployment {deployment.pk}",
        budget=WRITE_RETRY_SECONDS,
    )


def _append_log(deployment: Deployment, message: str, level: str, service: str):
    with transaction.atomic():
        seq = (
            Deployment.objects.filter(pk=deployment.pk)
            .select_for_update()
            .values_list("last_seq", flat=True)
            .get()
            + 1
        )
        Deployment.objects.filter(pk=deployment.pk).update(last_seq=seq)
        line = DeploymentLogLine.objects.create(
            deployment=deployment,
            seq=seq,
            created_at=timezone.now(),
            level=level,
            service=service,
            message=message,
        )
        deployment.last_seq = seq
        publish(deployment_group(deployment), {"type": "deploy.log", "line": line.as_dict()})
    return line


def set_service(
    deployment: Deployment, service: str, *, phase: str, progress: int | None, message: str
) -> DeploymentService:
    """Where one service stands (the page's progress bar); secret values masked."""
    message = _redact(deployment, message or "")

    def write():
        row, _created = DeploymentService.objects.get_or_create(
            deployment=deployment, service=service
        )
        row.phase = phase
        if progress is not None:
            row.progress = max(0, min(100, progress))
        row.message = message[:500]
        row.save(update_fields=["phase", "progress", "message", "updated_at"])
        return row

    row = retry(write, what=f"service of deployment {deployment.pk}", budget=WRITE_RETRY_SECONDS)
    publish(deployment_group(deployment), {"type": "deploy.service", "service": row.as_dict()})
    return row


def status_event(deployment: Deployment) -> dict:
    return {
        "status": deployment.status,
        "status_display": deployment.get_status_display(),
        "reason": deployment.reason,
        "diagnosis": deployment.diagnosis,
        "finished": deployment.is_finished,
        "started_at": deployment.started_at.isoformat() if deployment.started_at else None,
        "finished_at": deployment.finished_at.isoformat() if deployment.finished_at else None,
        "rolled_back_to": (
            deployment.rolled_back_to.number if deployment.rolled_back_to_id else None
        ),
    }


def publish_status(deployment: Deployment) -> None:
    publish(
        deployment_group(deployment),
        {"type": "deploy.status", **status_event(deployment)},
        important=deployment.is_finished,
    )


def finish(
    deployment: Deployment,
    status: str,
    reason: str = "",
    diagnosis: dict | None = None,
    *,
    send_budget: float = 2.0,
) -> bool:
    """Record the outcome, with its audit event, and start the next queued deployment. The
    reason and every field of the diagnosis are stored with secret values masked.

    Always completes: the outcome is written (retried while PostgreSQL is away) only if the
    deployment is still active (the reaper may have failed it meanwhile: False, nothing
    changes); the live update, the notification and waking the next deployment are each
    best-effort and cannot undo it or keep the others from running."""
    from apps.secrets.redaction import redact_data_for_stack

    reason = _redact(deployment, reason or "")[:500]
    diagnosis = redact_data_for_stack(deployment.stack, diagnosis or {})
    finished_at = timezone.now()

    def write() -> bool:
        with transaction.atomic():
            lock_stack(deployment.stack_id)  # the lock order: stack, deployment, audit
            changed = Deployment.objects.filter(
                pk=deployment.pk, status__in=ACTIVE_STATUSES
            ).update(status=status, reason=reason, diagnosis=diagnosis, finished_at=finished_at)
            if changed:
                deployment.status, deployment.reason = status, reason
                deployment.diagnosis, deployment.finished_at = diagnosis, finished_at
                audit.record(
                    f"deployment.{status}",
                    obj=deployment,
                    changes={"reason": reason} if reason else None,
                    actor=None,
                )
        return bool(changed)

    if not retry(write, what=f"outcome of deployment {deployment.pk}", budget=WRITE_RETRY_SECONDS):
        deployment.refresh_from_db()
        logger.warning(
            "deployment %s already finished (%s): outcome %s not recorded",
            deployment.pk,
            deployment.status,
            status,
        )
        return False
    publish_status(deployment)
    try:
        notify_outcome(deployment)
    except Exception:  # the bell is a courtesy: the outcome is recorded
        logger.exception("deployment %s: the outcome notification failed", deployment.pk)
    stack_id, target_id = deployment.stack_id, deployment.target_id
    transaction.on_commit(lambda: start_next(stack_id, target_id, budget=send_budget), robust=True)
    return True


def notify_outcome(deployment: Deployment) -> None:
    """Tell the member who asked for the deployment how it ended (the bell, live)."""
    from apps.notifications.services import notify

    if deployment.triggered_by_id is None:
        return
    text = _("%(stack)s #%(n)d: %(status)s") % {
        "stack": deployment.stack.name,
        "n": deployment.number,
        "status": deployment.get_status_display().lower(),
    }
    if deployment.reason:
        text += f" ({deployment.reason})"
    notify(
        [deployment.triggered_by],
        verb=f"deployment.{deployment.status}",
        text=text,
        url=deployment.get_absolute_url(),
        stack=deployment.stack,
    )


def start_next(stack_id: int, target_id: int | None, *, budget: float = 2.0) -> None:
    """Wake the oldest queued deployment of the stack on that target (its message may have
    been handled while another one ran, and found the place taken). The message is sent
    again while the broker is away, for `budget` seconds; after that the scheduler's
    `requeue_forgotten` sends it."""
    from .tasks import run_deployment

    following = retry(
        lambda: (
            Deployment.objects.filter(
                stack_id=stack_id, target_id=target_id, status=DeploymentStatus.QUEUED
            )
            .order_by("created_at", "pk")
            .first()
        ),
        what="the next queued deployment",
        budget=WRITE_RETRY_SECONDS,
    )
    if following is not None:
        from windflow.workers import send_on_commit

        send_on_commit(run_deployment, following.pk, retry_for=budget, required=False)


def log_page(deployment: Deployment, *, after: int = 0, limit: int = LOG_PAGE_SIZE) -> list:
    """Log lines after sequence number `after`, oldest first."""
    limit = max(1, min(limit, 5000))
    return list(deployment.lines.filter(seq__gt=after).order_by("seq")[:limit])


def claim(deployment_id: int) -> Deployment | None:
    """Move a queued deployment to running, unless another one of the same stack runs on
    that target (then it stays queued: `start_next` wakes it later). None when there is
    nothing to do: already taken, finished, or not first in line."""
    with transaction.atomic():
        deployment = (
            Deployment.objects.select_for_update(of=("self",))
            .select_related("stack", "revision", "target", "environment")
            .filter(pk=deployment_id)
            .first()
        )
        if deployment is None or deployment.status != DeploymentStatus.QUEUED:
            return None
        earlier = Deployment.objects.filter(
            stack_id=deployment.stack_id,
            target_id=deployment.target_id,
            status=DeploymentStatus.QUEUED,
            created_at__lt=deployment.created_at,
        ).exists()
        if earlier:
            return None
        deployment.status = DeploymentStatus.RUNNING
        deployment.started_at = deployment.heartbeat_at = timezone.now()
        try:
            with transaction.atomic():
                deployment.save(update_fields=["status", "started_at", "heartbeat_at"])
        except IntegrityError:
            return None  # another deployment of this stack runs there: wait for it
        publish_status(deployment)
    return deployment
