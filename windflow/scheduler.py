"""One scheduler process for the whole installation: every period it enqueues the periodic
jobs. A Redis lock makes a second scheduler (another machine, a restart overlap) idle."""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

LOCK_KEY = "windflow:scheduler:lock"


@dataclass
class PeriodicJob:
    name: str
    every_seconds: int
    enqueue: Callable[[], None]
    next_run: float = 0.0


def periodic_jobs() -> list[PeriodicJob]:
    from django.conf import settings

    from apps.accounts.tasks import purge_expired_invitations
    from apps.deployments.tasks import reap_stale_deployments
    from apps.targets.tasks import sweep_targets

    return [
        PeriodicJob("purge_expired_invitations", 3600, purge_expired_invitations.send),
        PeriodicJob(
            "sweep_targets",
            settings.WINDFLOW_TARGET_SWEEP_SECONDS,
            lambda: enqueue_in_every_organization(sweep_targets),
        ),
        PeriodicJob(
            "reap_stale_deployments",
            30,
            lambda: enqueue_in_every_organization(reap_stale_deployments),
        ),
    ]


def enqueue_in_every_organization(actor) -> None:
    """One job per organisation, each running in its own schema."""
    from django.conf import settings

    from apps.tenants.models import Organization
    from windflow.workers import TENANT_OPTION

    schemas = Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list(
        "schema_name", flat=True
    )
    for schema in schemas:
        actor.send_with_options(**{TENANT_OPTION: schema})


def run(redis, identity: str, *, tick: float = 1.0, lock_ttl: int = 15, max_ticks=None) -> None:
    jobs = periodic_jobs()
    ticks = 0
    while max_ticks is None or ticks < max_ticks:
        ticks += 1
        if _hold_lock(redis, identity, lock_ttl):
            now = time.monotonic()
            for job in jobs:
                if now >= job.next_run:
                    logger.info("scheduler: enqueue %s", job.name)
                    job.enqueue()
                    job.next_run = now + job.every_seconds
        time.sleep(tick)


def _hold_lock(redis, identity: str, ttl: int) -> bool:
    """Take the lock if free, or extend it if it is ours."""
    if redis.set(LOCK_KEY, identity, nx=True, ex=ttl):
        return True
    if (redis.get(LOCK_KEY) or b"").decode() == identity:
        redis.expire(LOCK_KEY, ttl)
        return True
    return False
