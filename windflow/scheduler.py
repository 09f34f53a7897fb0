"""One active scheduler for the whole installation: every period it enqueues the periodic
jobs. It runs on a thread of each worker process (SchedulerMiddleware; or alone, with
`manage.py run_scheduler`, when WINDFLOW_SCHEDULER is `separate`). A Redis lock makes every
other scheduler (another worker, another machine, a restart overlap) idle.

It never dies of a dependency's blip: a Redis or PostgreSQL error (the lock, a job) is
logged and retried with backoff, and the loop goes on. The reaper of silent deployments runs
here, in the scheduler's thread, rather than through the queue: a deployment whose worker
died is reaped by the scheduler of another worker process, or of the restarted one once the
dead one's lock has expired.
"""

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dramatiq.middleware import Middleware

from windflow.resilience import Backoff, dependency_of, discard_connection

logger = logging.getLogger(__name__)

LOCK_KEY = "windflow:scheduler:lock"
# Hash: job name -> JSON {"at": unix time, "ok": bool, "error": exception type} of its last
# run (the admin's health page shows the reaper's and the server sweeps').
LAST_RUNS_KEY = "windflow:scheduler:last-runs"
RELEASE_SCRIPT = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
# A deployment silent for STALE_AFTER_SECONDS (apps.deployments.runner) is failed at the
# next pass: within STALE_AFTER_SECONDS + REAP_EVERY_SECONDS of its last sign of life.
REAP_EVERY_SECONDS = 5
# How often the scheduler looks for Git sources due for polling (each has its interval).
POLL_EVERY_SECONDS = 30
# A failed job is tried again after this long (or its own period, if shorter).
RETRY_FAILED_JOB_SECONDS = 5
# After PostgreSQL was away, running deployments get this long to beat again before the
# reaper trusts their heartbeats: a long outage silences the living too.
REAP_GRACE_AFTER_DATABASE_SECONDS = 10

_database_failed_at: float | None = None  # monotonic time of the last database error seen


@dataclass
class PeriodicJob:
    name: str
    every_seconds: int
    enqueue: Callable[[], None]
    next_run: float = 0.0


def periodic_jobs() -> list[PeriodicJob]:
    from django.conf import settings

    from apps.accounts.tasks import purge_expired_invitations
    from apps.deployments.tasks import requeue_forgotten_deployments
    from apps.sources.push_tasks import poll_sources
    from apps.targets.tasks import sweep_targets
    from apps.tenants.tasks import refill_spare_schemas
    from windflow.workers import TRACKED_OPTION

    return [
        PeriodicJob(
            "purge_expired_invitations",
            3600,
            lambda: purge_expired_invitations.send_with_options(**{TRACKED_OPTION: False}),
        ),
        PeriodicJob(
            "sweep_targets",
            settings.WINDFLOW_TARGET_SWEEP_SECONDS,
            lambda: enqueue_in_every_organization(sweep_targets),
        ),
        PeriodicJob("reap_stale_deployments", REAP_EVERY_SECONDS, reap_in_every_organization),
        PeriodicJob("clear_expired_sessions", 24 * 3600, clear_expired_sessions),
        PeriodicJob("prune_job_records", 3600, prune_job_records),
        PeriodicJob("prune_operator_index", 3600, prune_operator_index),
        PeriodicJob("record_expired_support_accesses", 60, record_expired_support_accesses),
        PeriodicJob(
            "requeue_forgotten_deployments",
            30,
            lambda: enqueue_in_every_organization(requeue_forgotten_deployments),
        ),
        # Git sources whose polling interval elapsed get a check (apps.sources.push).
        PeriodicJob(
            "poll_sources",
            POLL_EVERY_SECONDS,
            lambda: enqueue_in_every_organization(poll_sources),
        ),
        PeriodicJob(
            "refill_spare_schemas",
            settings.WINDFLOW_SPARE_REFILL_SECONDS,
            lambda: refill_spare_schemas.send_with_options(**{TRACKED_OPTION: False}),
        ),
    ]


def clear_expired_sessions() -> None:
    """Sessions live in PostgreSQL: remove the expired ones (Django's clearsessions)."""
    from importlib import import_module

    from django.conf import settings

    import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()


def record_expired_support_accesses() -> None:
    """Each support access that expired has its end in both audit trails."""
    from apps.accounts.services import record_expired_support_accesses as record

    record()


def prune_job_records() -> None:
    """The admin's task list keeps WINDFLOW_JOB_HISTORY_DAYS of jobs."""
    from django.conf import settings
    from django_dramatiq.models import Task

    Task.tasks.delete_old_tasks(settings.WINDFLOW_JOB_HISTORY_DAYS * 24 * 3600)


def prune_operator_index() -> None:
    """The operator console's index keeps what it shows (apps.tenants.index.prune)."""
    from apps.tenants.index import prune

    prune()


def reap_in_every_organization() -> None:
    """Fail the silent deployments of every organisation, here and now: no worker is needed
    for it. Not while PostgreSQL has just come back (the living have not beaten yet)."""
    from django.conf import settings
    from django.db import connection
    from django_tenants.utils import schema_context

    from apps.deployments.runner import reap_stale
    from apps.tenants.models import Organization

    schemas = Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME).values_list(
        "schema_name", flat=True
    )
    if (
        _database_failed_at is not None
        and time.monotonic() - _database_failed_at < REAP_GRACE_AFTER_DATABASE_SECONDS
    ):
        logger.info("scheduler: reaping waits for heartbeats to resume after PostgreSQL's return")
        return
    for schema in list(schemas):
        with schema_context(schema):
            reaped = reap_stale()
        connection.release_if_worn_out()  # a fresh connection every so many schemas
        if reaped:
            logger.warning("scheduler: %d silent deployment(s) failed in %s", reaped, schema)


def enqueue_in_every_organization(actor) -> None:
    """One job per active organisation, each running in its own schema (housekeeping: not in
    the admin's task list). A suspended organisation gets none (apps.tenants.suspension)."""
    from django.conf import settings

    from apps.tenants.models import Organization, OrganizationStatus
    from windflow.workers import TENANT_OPTION, TRACKED_OPTION

    schemas = (
        Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
        .filter(status=OrganizationStatus.ACTIVE)
        .values_list("schema_name", flat=True)
    )
    for schema in schemas:
        actor.send_with_options(**{TENANT_OPTION: schema, TRACKED_OPTION: False})


def run(
    redis,
    identity: str,
    *,
    tick: float = 1.0,
    lock_ttl: int = 15,
    max_ticks=None,
    backoff: Backoff | None = None,
    stopping: threading.Event | None = None,
) -> None:
    """Hold the lock and run the due jobs every `tick` until `stopping` is set (or for
    `max_ticks`). Stopped by `stopping` (a worker shutting down), it lets the lock go, so a
    successor need not wait for it to expire."""
    jobs = periodic_jobs()
    backoff = backoff or Backoff()
    stopping = stopping or threading.Event()
    _loop(redis, identity, jobs, tick, lock_ttl, max_ticks, backoff, stopping)
    if stopping.is_set():
        _release_lock(redis, identity)


def _loop(redis, identity, jobs, tick, lock_ttl, max_ticks, backoff, stopping) -> None:
    ticks = 0
    while (max_ticks is None or ticks < max_ticks) and not stopping.is_set():
        ticks += 1
        try:
            held = _hold_lock(redis, identity, lock_ttl)
        except Exception as exc:  # Redis away: wait longer each time, never die
            _log_failure("the scheduler lock", exc)
            backoff.failed()
            continue
        backoff.succeeded()
        if held:
            run_due(jobs, redis=redis)
        stopping.wait(tick)


def run_due(jobs: list[PeriodicJob], redis=None) -> None:
    """Run the jobs that are due. One that fails is logged and tried again soon; the others
    run regardless. Each run is noted in `redis` (LAST_RUNS_KEY) when given."""
    global _database_failed_at
    for job in jobs:
        now = time.monotonic()
        if now < job.next_run:
            continue
        logger.debug("scheduler: %s", job.name)
        try:
            job.enqueue()
        except Exception as exc:
            _note_run(redis, job.name, exc)
            _log_failure(job.name, exc)
            job.next_run = now + min(job.every_seconds, RETRY_FAILED_JOB_SECONDS)
            if dependency_of(exc) == "database":
                _database_failed_at = time.monotonic()
                discard_connection()  # perhaps dead: the next job takes a fresh one
        else:
            _note_run(redis, job.name, None)
            job.next_run = now + job.every_seconds
    discard_connection()  # back to the pool between ticks


def _note_run(redis, name: str, exc: Exception | None) -> None:
    if redis is None:
        return
    outcome = {"at": time.time(), "ok": exc is None, "error": type(exc).__name__ if exc else ""}
    try:
        redis.hset(LAST_RUNS_KEY, name, json.dumps(outcome))
    except Exception as error:  # Redis away: the lock fails next, and says so
        _log_failure("noting a job's run", error)


def _log_failure(what: str, exc: Exception) -> None:
    dependency = dependency_of(exc)
    if dependency:
        logger.warning("scheduler: %s failed, %s unavailable (%s)", what, dependency, exc)
    else:
        logger.exception("scheduler: %s failed", what)


def _release_lock(redis, identity: str) -> None:
    """Delete the lock if it is still ours (compare and delete in one step)."""
    try:
        redis.eval(RELEASE_SCRIPT, 1, LOCK_KEY, identity)
    except Exception as exc:  # Redis away: the lock expires by itself
        _log_failure("releasing the scheduler lock", exc)


def _hold_lock(redis, identity: str, ttl: int) -> bool:
    """Take the lock if free, or extend it if it is ours."""
    if redis.set(LOCK_KEY, identity, nx=True, ex=ttl):
        return True
    if (redis.get(LOCK_KEY) or b"").decode() == identity:
        redis.expire(LOCK_KEY, ttl)
        return True
    return False


class SchedulerMiddleware(Middleware):
    """Runs the periodic-job scheduler on a thread of each worker process (unless
    WINDFLOW_SCHEDULER is `separate`): a process of its own cost about 85 MB for a loop that
    sleeps. The scheduler's Redis lock keeps one active across processes and machines; when
    the process holding it dies, another (or the restarted one) takes over once the lock
    expires."""

    def __init__(self):
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def after_worker_boot(self, broker, worker):
        from django.conf import settings

        if settings.WINDFLOW_SCHEDULER != "worker":
            return
        self.thread = threading.Thread(target=self._run, name="windflow-scheduler", daemon=True)
        self.thread.start()

    def before_worker_shutdown(self, broker, worker):
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=10)  # it lets the lock go on its way out

    def _run(self):
        from django_redis import get_redis_connection

        identity = f"{socket.gethostname()}:{os.getpid()}:worker"
        logger.info("scheduler %s started in the worker", identity)
        run(get_redis_connection("default"), identity, stopping=self.stopping)
