import logging
import time
from concurrent.futures import ThreadPoolExecutor

import dramatiq
from django.db import close_old_connections, connection
from django.utils import timezone

from windflow.engine import bootstrap
from windflow.engine.errors import EngineError
from windflow.errors import ServiceError
from windflow.realtime import current_schema, prepare_group, publish

from .choices import RunStatus
from .connect import check_target as run_check
from .connect import transport_for
from .models import PrepareRun, Target

logger = logging.getLogger(__name__)
SWEEP_CONCURRENCY = 8  # measured: 8 parallel SSH logins beat 32 or 200 on 2 cores
FLUSH_SECONDS = 0.5


class _OutputWriter:
    """Stores the script's output (batched) and pushes each line to the page."""

    def __init__(self, run: PrepareRun):
        self.run = run
        self.group = prepare_group(current_schema(), run.target_id)
        self.pending: list[str] = []
        self.flushed_at = time.monotonic()

    def __call__(self, line: str) -> None:
        self.pending.append(line)
        publish(self.group, {"type": "target.prepare_line", "run": self.run.pk, "line": line})
        if time.monotonic() - self.flushed_at > FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.run.output += "".join(f"{line}\n" for line in self.pending)
            PrepareRun.objects.filter(pk=self.run.pk).update(output=self.run.output)
            self.pending = []
        self.flushed_at = time.monotonic()


@dramatiq.actor(max_retries=0, time_limit=45 * 60_000)
def prepare_target(run_id: int) -> None:
    run = PrepareRun.objects.select_related("target").filter(pk=run_id).first()
    if run is None or run.status != RunStatus.QUEUED:
        return  # redelivered: it ran already
    PrepareRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    write = _OutputWriter(run)
    exit_code = 1
    try:
        with transport_for(run.target).session() as session:
            exit_code = bootstrap.run_prepare(session, write)
    except (EngineError, ServiceError) as exc:
        write(f"error: {exc}")
    finally:
        write.flush()
        status = RunStatus.SUCCEEDED if exit_code == 0 else RunStatus.FAILED
        PrepareRun.objects.filter(pk=run.pk).update(
            status=status, exit_code=exit_code, finished_at=timezone.now()
        )
        publish(
            write.group,
            {
                "type": "target.prepare_done",
                "run": run.pk,
                "status": status,
                "exit_code": exit_code,
            },
        )


@dramatiq.actor(max_retries=0, time_limit=30_000)
def check_target(target_id: int) -> None:
    target = Target.objects.filter(pk=target_id).first()
    if target is not None:
        run_check(target)


@dramatiq.actor(max_retries=0, time_limit=10 * 60_000)
def sweep_targets() -> None:
    """Test every target of this organisation, a bounded number at a time."""
    tenant = connection.tenant

    def check(target_id):
        from django_tenants.utils import tenant_context

        try:
            with tenant_context(tenant):
                check_target.fn(target_id)
        except Exception:  # one bad target must not stop the sweep
            logger.exception("sweep: check of target %s failed", target_id)
        finally:
            close_old_connections()
            connection.close()

    ids = list(Target.objects.values_list("pk", flat=True))
    with ThreadPoolExecutor(max_workers=SWEEP_CONCURRENCY) as executor:
        list(executor.map(check, ids))
