"""Deployments' actors and their queueing: running a deployment, waking the next queued one
when one finishes (`start_next`, on `journal.finished`), re-sending lost messages, reaping
deployments whose worker died. The request side (apps.deployments.services) enqueues through
here; the worker side is apps.deployments.runner, which writes through apps.deployments.journal.
"""

import dramatiq
from django.dispatch import receiver
from django.utils import timezone

from apps.targets.connect import server_answered
from windflow.resilience import retry

from . import journal, runner
from .choices import DeploymentStatus
from .models import Deployment

# Long enough for a slow pull and the longest health gate; the runner's own timeouts end
# a deployment well before this.
DEPLOYMENT_TIME_LIMIT_MS = 3 * 60 * 60 * 1000


@dramatiq.actor(queue_name="deployments", max_retries=0, time_limit=DEPLOYMENT_TIME_LIMIT_MS)
def run_deployment(deployment_id: int) -> None:
    """Idempotent: a redelivered message finds the deployment taken or finished."""
    runner.run(deployment_id)


@dramatiq.actor(max_retries=0)
def reap_stale_deployments() -> None:
    """Running deployments whose worker died become failed and resumable (the scheduler
    does this itself every few seconds; this actor is for a manual sweep)."""
    runner.reap_stale()
    requeue_forgotten()


@dramatiq.actor(max_retries=0)
def requeue_forgotten_deployments() -> None:
    """Queued deployments whose message was lost (Redis restarted) get it again."""
    requeue_forgotten()


def start_next(stack_id: int, target_id: int | None, *, budget: float = 2.0) -> None:
    """Wake the oldest queued deployment of the stack on that target (its message may have
    been handled while another one ran, and found the place taken). The message is sent
    again while the broker is away, for `budget` seconds; after that the scheduler's
    `requeue_forgotten` sends it."""
    following = retry(
        lambda: (
            Deployment.objects.filter(
                stack_id=stack_id, target_id=target_id, status=DeploymentStatus.QUEUED
            )
            .order_by("created_at", "pk")
            .first()
        ),
        what="the next queued deployment",
        budget=journal.WRITE_RETRY_SECONDS,
    )
    if following is not None:
        from windflow.workers import send_on_commit

        send_on_commit(run_deployment, following.pk, retry_for=budget, required=False)


@receiver(journal.finished, dispatch_uid="deployments.start_next")
def _start_next_after(sender, *, stack_id, target_id, budget, **kwargs) -> None:
    start_next(stack_id, target_id, budget=budget)


def requeue_forgotten(older_than_seconds: int = 60) -> None:
    """A queued deployment whose message was lost (the broker restarted, the worker failed
    before claiming it) and that nothing runs ahead of gets its message again."""
    limit = timezone.now() - timezone.timedelta(seconds=older_than_seconds)
    waiting = (
        Deployment.objects.filter(status=DeploymentStatus.QUEUED, created_at__lt=limit)
        .values_list("stack_id", "target_id")
        .distinct()
    )
    for stack_id, target_id in waiting:
        running = Deployment.objects.filter(
            stack_id=stack_id, target_id=target_id, status=DeploymentStatus.RUNNING
        ).exists()
        if not running:
            start_next(stack_id, target_id)


@receiver(server_answered, dispatch_uid="deployments.clean_leftovers")
def clean_leftovers(sender, target, **kwargs) -> None:
    """A server that a deployment lost answers again: remove what that deployment left."""
    runner.clean_leftovers(target)
