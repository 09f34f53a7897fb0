"""Push to deploy, the actors (issue 13): a push accepted by the webhook, and polling
(GitOps). The request side (apps.sources.webhooks) and the scheduler enqueue through here;
the run side is apps.sources.push. Imported by apps.sources.tasks, so that workers know
these actors."""

import dramatiq
from django.db import connection
from django.dispatch import receiver
from django.utils import timezone

from apps.deployments import journal
from windflow.workers import send_on_commit

from .models import GitSource, WebhookDelivery

# A fetch of a large repository: far above the engine's own git timeouts.
PUSH_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(max_retries=0, time_limit=PUSH_TIME_LIMIT_MS)
def handle_push(delivery_id: int, message: str = "") -> None:
    """Fetch the pushed commit into a revision and apply the environment's Git policy."""
    from . import push  # the run side (git, the engine): loaded by workers only

    outcome = push.handle_push(delivery_id, message)
    if outcome is not None and outcome.deployment is not None and outcome.deployment.is_active:
        enqueue_status(outcome.deployment.pk)  # "pending" on the commit


@dramatiq.actor(max_retries=0, time_limit=PUSH_TIME_LIMIT_MS)
def check_source(source_id: int) -> None:
    """One polling round of one source (never two at once: push.check_source's lock)."""
    from . import push

    push.check_source(connection.schema_name, source_id)


@dramatiq.actor(max_retries=0)
def poll_sources() -> None:
    """Enqueue a check of each source of the organisation whose interval has elapsed (the
    scheduler sends this to every organisation); at most one per source and interval,
    whatever the number of schedulers."""
    from . import push

    now = timezone.now()
    intervals = dict(GitSource.objects.values_list("pk", "poll_interval"))
    for source_id in push.due_sources(now):
        if push.claim_round(connection.schema_name, source_id, intervals[source_id]):
            check_source.send(source_id)


def enqueue_push(delivery, message: str = "") -> None:
    """Hand an accepted delivery to a worker once it is committed."""
    send_on_commit(handle_push, delivery.pk, message[:200])


@dramatiq.actor(max_retries=3, min_backoff=5000)
def report_commit_status(deployment_id: int) -> None:
    """Tell the provider how a deployment that a push asked for stands (apps.sources.statuses)."""
    from . import statuses

    statuses.report(deployment_id)


def enqueue_status(deployment_id: int) -> None:
    send_on_commit(report_commit_status, deployment_id, required=False)


@receiver(journal.finished, dispatch_uid="sources.report_commit_status")
def _report_outcome(sender, *, deployment_id=None, **kwargs) -> None:
    """A deployment that a push asked for has ended: its commit status says how."""
    if deployment_id and WebhookDelivery.objects.filter(deployment_id=deployment_id).exists():
        report_commit_status.send(deployment_id)
