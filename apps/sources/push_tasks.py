"""Push to deploy, the actors (issue 13): a push accepted by the webhook, and polling
(GitOps). The request side (apps.sources.webhooks) and the scheduler enqueue through here;
the run side is apps.sources.push. Imported by apps.sources.tasks, so that workers know
these actors."""

import dramatiq
from django.db import connection
from django.utils import timezone

from windflow.workers import send_on_commit

from .models import GitSource

# A fetch of a large repository: far above the engine's own git timeouts.
PUSH_TIME_LIMIT_MS = 15 * 60 * 1000


@dramatiq.actor(max_retries=0, time_limit=PUSH_TIME_LIMIT_MS)
def handle_push(delivery_id: int, message: str = "") -> None:
    """Fetch the pushed commit into a revision and apply the environment's Git policy."""
    from . import push  # the run side (git, the engine): loaded by workers only

    push.handle_push(delivery_id, message)


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
