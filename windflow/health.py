"""The platform's health, as the operators' admin page shows it: worker heartbeats, queue
depth per queue, failed and retried jobs, the scheduler's lock holder and the last run of
its jobs (the stale-deployment reaper, the server sweeps...).

Each part is read on its own: PostgreSQL or Redis away makes that part say so (`error`),
never the page fail."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _

from windflow.resilience import dependency_of

# Jobs whose last run the page names first (the others follow).
WATCHED_JOBS = ("reap_stale_deployments", "sweep_targets")
JOB_WINDOW = timedelta(hours=24)
RECENT_FAILURES = 10
RETRIES_SCANNED = 2000  # newest job rows read for their retry count


@dataclass
class Part:
    """One part of the page: its rows, or why it could not be read."""

    rows: list = field(default_factory=list)
    error: str = ""  # the dependency that is away: database or redis
    summary: dict = field(default_factory=dict)

    @property
    def unavailable(self) -> str:
        if not self.error:
            return ""
        what = {"database": _("The database (PostgreSQL)"), "redis": _("Redis")}[self.error]
        return _("%(what)s is unavailable: this part cannot be read now.") % {"what": what}


@dataclass
class Health:
    workers: Part
    queues: Part
    jobs: Part
    scheduler: Part
    runs: Part


def read(what: Callable[[], Part]) -> Part:
    try:
        return what()
    except Exception as exc:
        dependency = dependency_of(exc)
        if dependency is None:
            raise
        return Part(error=dependency)


def _redis():
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def workers() -> Part:
    """Each worker process that beat within its heartbeat's lifetime, newest first."""
    from windflow.workers import WORKER_HEARTBEAT_PREFIX

    redis = _redis()
    keys = sorted(redis.scan_iter(match=f"{WORKER_HEARTBEAT_PREFIX}*", count=500))
    values = redis.mget(keys) if keys else []
    now = time.time()
    rows = []
    for key, value in zip(keys, values, strict=True):
        if value is None:
            continue  # expired between the scan and the read
        rows.append(
            {
                "identity": key.decode().removeprefix(WORKER_HEARTBEAT_PREFIX),
                "seconds_ago": max(0, round(now - float(value))),
            }
        )
    return Part(rows=sorted(rows, key=lambda row: row["seconds_ago"]))


def queues() -> Part:
    """Per Dramatiq queue: messages ready, delayed (retries, later sends) and dead."""
    import dramatiq
    from dramatiq.common import dq_name, xq_name

    broker = dramatiq.get_broker()
    client, namespace = broker.client, broker.namespace
    names = sorted(q for q in broker.get_declared_queues() if not q.endswith((".DQ", ".XQ")))
    pipeline = client.pipeline(transaction=False)
    for name in names:
        pipeline.llen(f"{namespace}:{name}")
        pipeline.llen(f"{namespace}:{dq_name(name)}")
        pipeline.zcard(f"{namespace}:{xq_name(name)}")
    counts = pipeline.execute()
    rows = [
        {"queue": name, "ready": ready, "delayed": delayed, "dead": dead}
        for name, ready, delayed, dead in zip(
            names, counts[0::3], counts[1::3], counts[2::3], strict=True
        )
    ]
    return Part(rows=rows)


def jobs() -> Part:
    """Jobs of the last 24 h (the admin's task list): how many failed, how many were retried,
    and the latest failures."""
    from django_dramatiq.models import Task

    since = timezone.now() - JOB_WINDOW
    recent = Task.tasks.filter(updated_at__gte=since)
    failed = recent.filter(status="failed").order_by("-updated_at")
    retried = 0
    for task in recent.order_by("-updated_at")[:RETRIES_SCANNED]:
        retried += bool(task.message.options.get("retries"))
    rows = [
        {
            "actor": task.actor_name,
            "queue": task.queue_name,
            "error": task.message.options.get("error", ""),
            "at": task.updated_at,
            "pk": task.pk,
        }
        for task in failed[:RECENT_FAILURES]
    ]
    return Part(rows=rows, summary={"failed": failed.count(), "retried": retried})


def scheduler() -> Part:
    """Who holds the scheduler's lock, and for how much longer (none: no scheduler runs)."""
    from windflow.scheduler import LOCK_KEY

    redis = _redis()
    holder, ttl = redis.get(LOCK_KEY), redis.ttl(LOCK_KEY)
    if holder is None:
        return Part()
    return Part(rows=[{"holder": holder.decode(), "expires_in": max(ttl, 0)}])


def runs() -> Part:
    """The last run of each scheduled job: when, and whether it went through."""
    from windflow.scheduler import LAST_RUNS_KEY

    now = time.time()
    rows = []
    for name, value in _redis().hgetall(LAST_RUNS_KEY).items():
        outcome = json.loads(value)
        rows.append(
            {
                "job": name.decode(),
                "seconds_ago": max(0, round(now - outcome["at"])),
                "ok": outcome["ok"],
                "error": outcome.get("error", ""),
            }
        )
    order = {name: index for index, name in enumerate(WATCHED_JOBS)}
    rows.sort(key=lambda row: (order.get(row["job"], len(order)), row["job"]))
    return Part(rows=rows)


def platform_health() -> Health:
    return Health(
        workers=read(workers),
        queues=read(queues),
        jobs=read(jobs),
        scheduler=read(scheduler),
        runs=read(runs),
    )
