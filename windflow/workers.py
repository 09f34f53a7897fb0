"""Dramatiq plumbing: the organisation travels in each message and is activated around it;
the worker publishes a heartbeat that /healthz reads; each job is recorded for the admin's
task list."""

import logging
import os
import socket
import threading
import time

import dramatiq
from dramatiq.middleware import Middleware, SkipMessage

logger = logging.getLogger(__name__)

TENANT_OPTION = "tenant_schema"
# send_with_options(tracked=False): a job the task list does not show (the scheduler's
# housekeeping, sent every few seconds for every organisation).
TRACKED_OPTION = "tracked"
HEARTBEAT_KEY = "windflow:worker:heartbeat"
# One more key per worker process (`<key>:<host>:<pid>` = the time of its last beat), for the
# admin's health page; /healthz reads HEARTBEAT_KEY (any worker alive).
WORKER_HEARTBEAT_PREFIX = f"{HEARTBEAT_KEY}:"


class TenantMiddleware(Middleware):
    """Records the active schema when a message is enqueued; activates it before the message
    is processed and goes back to the public schema after it, also when it fails."""

    @property
    def actor_options(self):
        return {TENANT_OPTION}

    def before_enqueue(self, broker, message, delay):
        if TENANT_OPTION not in message.options:
            from django.db import connection

            message.options[TENANT_OPTION] = connection.schema_name

    def before_process_message(self, broker, message):
        from django.conf import settings
        from django.db import connection

        from apps.tenants.models import Organization

        schema = message.options.get(TENANT_OPTION) or settings.PUBLIC_SCHEMA_NAME
        connection.set_schema_to_public()
        if schema == settings.PUBLIC_SCHEMA_NAME:
            return
        from windflow.resilience import retry

        # PostgreSQL briefly away must not drop the message (most actors do not retry).
        organization = retry(
            lambda: Organization.objects.filter(schema_name=schema).first(),
            what=f"organisation of {message.actor_name}",
            budget=60.0,
        )
        if organization is None:
            logger.warning("skipping %s: organisation %s no longer exists", message, schema)
            raise SkipMessage()
        if organization.is_suspended:  # no job runs for it (apps.tenants.suspension)
            wait_while_suspended(broker, message)
            raise SkipMessage()
        connection.set_tenant(organization)
        from apps.tenants.middleware import apply_search_path

        retry(apply_search_path, what="search path", budget=60.0)

    def _reset(self, *args, **kwargs):
        from django.db import connection

        connection.set_schema_to_public()

    after_process_message = _reset
    after_skip_message = _reset


SUSPENDED_RETRY_SECONDS = 60


def wait_while_suspended(broker, message) -> None:
    """A job of a suspended organisation does not run now: it is sent again, delayed, and so
    runs once the organisation is reactivated (the same message id: its task-list row
    follows it). A deleted organisation's is dropped when it comes back."""
    logger.warning(
        "%s waits: organisation %s is suspended", message, message.options.get(TENANT_OPTION)
    )
    broker.enqueue(message.copy(), delay=SUSPENDED_RETRY_SECONDS * 1000)


class JobTrackingMiddleware(Middleware):
    """The admin's task list (django_dramatiq's Task rows, in the public schema): each job
    when it is queued, starts and ends, with its organisation, in one statement each.

    Only what names a job is stored: its actor, queue, organisation, status, and the
    arguments that are numbers (ids); any other argument shows as its type, since one may
    be a capability (an invitation's link) or carry a value that must not rest in the
    database. A failure is stored as its exception's type, never its message or traceback
    (the job's own record, e.g. a deployment's diagnosis, says why, redacted). Recording
    never fails or delays a job beyond that statement: an error is logged."""

    KEPT_OPTIONS = (TENANT_OPTION, "eta", "retries")

    @property
    def actor_options(self):
        return {TRACKED_OPTION}

    def after_enqueue(self, broker, message, delay):
        if message.options.get("retries"):
            # Dramatiq's Retries sends a failed job again: it is waiting to be retried (and
            # its row says how many times), no longer failed.
            self._record(message, "retrying")
        else:
            self._record(message, "delayed" if delay else "enqueued")

    def before_process_message(self, broker, message):
        self._record(message, "running")

    def after_process_message(self, broker, message, *, result=None, exception=None):
        if exception is None:
            self._record(message, "done")
        else:
            self._record(message, "failed", error=type(exception).__name__)

    def after_skip_message(self, broker, message):
        self._record(message, "skipped")

    def _record(self, message, status: str, error: str = "") -> None:
        if message.options.get(TRACKED_OPTION) is False:
            return
        try:
            record_job(message, status, error, self.KEPT_OPTIONS)
        except Exception:
            logger.warning("job %s (%s) not recorded", message.message_id, status, exc_info=True)


QUEUED_STATUSES = ("enqueued", "delayed")


def _shown(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    return f"<{type(value).__name__}>"


def record_job(message, status: str, error: str, kept_options) -> None:
    """Insert or update the Task row of `message` (one statement)."""
    from django_dramatiq.models import DATABASE_LABEL, Task

    options = {key: message.options[key] for key in kept_options if key in message.options}
    if error:
        options["error"] = error
    # A new Message: a worker hands middleware a MessageProxy, the sender a Message.
    stored = dramatiq.Message(
        queue_name=message.queue_name,
        actor_name=message.actor_name,
        args=tuple(_shown(value) for value in message.args),
        kwargs={key: _shown(value) for key, value in message.kwargs.items()},
        options=options,
        message_id=message.message_id,
        message_timestamp=message.message_timestamp,
    )
    task = Task(
        id=message.message_id,
        status=status,
        message_data=stored.encode(),
        actor_name=message.actor_name,
        queue_name=message.queue_name,
    )
    tasks = Task.tasks.using(DATABASE_LABEL)
    if status == "retrying":  # stored as django_dramatiq's "delayed", with its retries
        task.status = "delayed"
        tasks.bulk_create(
            [task],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["status", "message_data", "updated_at"],
        )
    elif status in QUEUED_STATUSES:
        # A worker quick to start the job may have recorded it already: never undo that.
        tasks.bulk_create([task], ignore_conflicts=True)
    else:
        tasks.bulk_create(
            [task],
            update_conflicts=True,
            unique_fields=["id"],
            update_fields=["status", "message_data", "updated_at"],
        )


class HeartbeatMiddleware(Middleware):
    """Each worker process writes a short-lived key in Redis while it is alive."""

    def after_worker_boot(self, broker, worker):
        threading.Thread(target=self._beat, name="windflow-heartbeat", daemon=True).start()

    def _beat(self):
        from django.conf import settings

        interval = settings.WINDFLOW_WORKER_HEARTBEAT_SECONDS
        identity = f"{socket.gethostname()}:{os.getpid()}"
        while True:
            write_heartbeat(identity, ttl=interval * 3)
            threading.Event().wait(interval)


def write_heartbeat(identity: str, ttl: int) -> None:
    from django_redis import get_redis_connection

    try:
        redis = get_redis_connection("default")
        redis.set(HEARTBEAT_KEY, identity, ex=ttl)
        redis.set(f"{WORKER_HEARTBEAT_PREFIX}{identity}", f"{time.time():.3f}", ex=ttl)
    except Exception:  # Redis briefly away: the next beat retries.
        logger.warning("worker heartbeat could not be written", exc_info=True)


def last_heartbeat() -> str | None:
    from django_redis import get_redis_connection

    value = get_redis_connection("default").get(HEARTBEAT_KEY)
    return value.decode() if value else None


def send_on_commit(
    actor: dramatiq.Actor,
    *args,
    organization=None,
    retry_for: float = 2.0,
    required: bool = True,
    **kwargs,
) -> None:
    """Enqueue once the surrounding transaction commits (the worker must see the rows). The
    job runs in `organization` (default: the active one, captured now, not at commit).

    While Redis is away the send is tried again for `retry_for` seconds; then the error is
    raised (a request answers 503 naming Redis: see windflow.middleware), unless the job is
    not `required` now because something sends it again later (a queued deployment:
    the scheduler's requeue_forgotten): then it is logged."""
    from django.db import connection, transaction

    from windflow.resilience import dependency_of, retry

    schema = organization.schema_name if organization else connection.schema_name

    def send():
        try:
            retry(
                lambda: actor.send_with_options(
                    args=args, kwargs=kwargs, **{TENANT_OPTION: schema}
                ),
                what=f"enqueue {actor.actor_name}",
                budget=retry_for,
            )
        except Exception as exc:
            if required or dependency_of(exc) is None:
                raise
            logger.warning("%s%s not queued now (Redis away): sent again later", actor, args)

    transaction.on_commit(send)
