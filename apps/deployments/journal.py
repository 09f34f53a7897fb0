"""What a deployment writes while it runs: log lines, service steps, statuses, and its
outcome (in PostgreSQL first, then published live). Used by the runner (the worker side) and
by the requests of apps.deployments.services (cancelling a queued deployment); imports
neither, nor the tasks.

The record survives a dependency's blip: a write that meets a dead connection or a
restarting PostgreSQL is retried with backoff (outside a caller's transaction), and
publishing is best-effort (the database holds the truth; the page catches up from it).

Finishing sends `finished` on commit; apps.deployments.tasks wakes the next queued
deployment of the stack on that target when it receives it.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, connection, transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.audit import services as audit
from apps.stacks.models import Stack
from apps.tenants import index as operator_index
from windflow.i18n import translated_reason
from windflow.realtime import deployment_group, publish
from windflow.resilience import discard_connection, retry

from .choices import ACTIVE_STATUSES, DeploymentStatus, LogLevel
from .models import Deployment, DeploymentLogLine, DeploymentService

# How long a deployment's writes are retried while PostgreSQL is away.
WRITE_RETRY_SECONDS = 45.0
# How long finishing a deployment waits for the broker to wake the next one (in a worker);
# a request (cancelling a queued deployment) waits less. requeue_forgotten covers the rest.
SEND_RETRY_SECONDS = 30.0

logger = logging.getLogger(__name__)

# Sent on commit once a deployment's outcome is recorded: stack_id, target_id, budget (how
# long waking the next deployment may wait for the broker), deployment_id.
finished = Signal()
# Cancel requests go out on this Redis channel as "<schema>:<deployment id>", so that the
# worker running the deployment hears of them at once (apps.deployments.runner).
CANCEL_CHANNEL = "windflow:deployments:cancel"


def lock_stack(stack_id: int) -> None:
    """Lock order, everywhere: the stack row first, then deployment rows, then the audit
    chain (audit.record). A transaction that records audit events about a stack's
    deployments takes the stack row before anything else; otherwise a request holding the
    stack and waiting for the audit lock deadlocks with one holding the audit lock and
    waiting for the stack (a foreign-key check on a row it updated twice)."""
    Stack.objects.select_for_update().filter(pk=stack_id).first()


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
        publish(deployment_group(deployment.pk), {"type": "deploy.log", "line": line.as_dict()})
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
    publish(deployment_group(deployment.pk), {"type": "deploy.service", "service": row.as_dict()})
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
        deployment_group(deployment.pk),
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
    operator_index.deployment_changed(deployment)
    publish_status(deployment)
    try:
        notify_outcome(deployment)
    except Exception:  # the bell is a courtesy: the outcome is recorded
        logger.exception("deployment %s: the outcome notification failed", deployment.pk)
    stack_id, target_id, deployment_id = deployment.stack_id, deployment.target_id, deployment.pk
    transaction.on_commit(
        lambda: finished.send(
            sender=Deployment,
            stack_id=stack_id,
            target_id=target_id,
            budget=send_budget,
            deployment_id=deployment_id,
        ),
        robust=True,
    )
    return True


def notify_outcome(deployment: Deployment) -> None:
    """Tell the member who asked for the deployment how it ended (the bell, live)."""
    from apps.notifications.services import notify

    if deployment.triggered_by_id is None:
        return

    def text() -> str:  # in the recipient's language
        written = _("%(stack)s #%(n)d: %(status)s") % {
            "stack": deployment.stack.name,
            "n": deployment.pk,
            "status": deployment.get_status_display().lower(),
        }
        if deployment.reason:
            written += f" ({translated_reason(deployment.reason, deployment.diagnosis)})"
        return written

    notify(
        [deployment.triggered_by],
        verb=f"deployment.{deployment.status}",
        text=text,
        url=deployment.get_absolute_url(),
        stack=deployment.stack,
    )


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
        operator_index.deployment_changed(deployment)
        publish_status(deployment)
    return deployment


# --- Cancel requests ----------------------------------------------------------------------------


def cancel_key(schema: str, deployment_id: int) -> str:
    return f"{schema}:{deployment_id}"


def announce_cancel(deployment: Deployment) -> None:
    """Once the cancel request commits, tell the worker that runs `deployment` (Redis
    publish, best-effort: the worker also reads the request from the database every second,
    and before each step that changes the server)."""
    key = cancel_key(connection.schema_name, deployment.pk)

    def send() -> None:
        from django_redis import get_redis_connection

        try:
            get_redis_connection("default").publish(CANCEL_CHANNEL, key)
        except Exception as exc:  # Redis away: the database holds the request
            logger.warning("cancel of deployment %s not announced: %s", key, exc)

    transaction.on_commit(send, robust=True)


def cancel_requested(schema: str, deployment_id: int) -> bool:
    """Whether a cancel of the deployment is on record. Safe from any thread (a driver's
    worker threads ask before each step that changes the server); its connection goes back
    to the pool at once. A database that does not answer counts as "not asked"."""
    from django_tenants.utils import schema_context

    try:
        with schema_context(schema):
            return Deployment.objects.filter(
                pk=deployment_id, cancel_requested_at__isnull=False
            ).exists()
    except Exception as exc:  # the heartbeat and the Redis announcement still carry it
        logger.warning("cancel of deployment %s not checked: %s", deployment_id, exc)
        return False
    finally:
        discard_connection()
