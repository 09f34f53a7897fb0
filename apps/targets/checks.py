"""Testing a target's connection: what a check (a page's request or the sweep's job) runs and
records. Imports neither the services nor the tasks of the app."""

from __future__ import annotations

import time

from django.utils import timezone
from django.utils.translation import gettext as _

from windflow.engine import checks as engine_checks
from windflow.engine import ssh
from windflow.errors import ServiceError

from .choices import TargetKind, TargetStatus
from .connection import endpoint_for, local_socket_for
from .models import Target, TargetCheck


def run_checks(target: Target) -> tuple[list, object]:
    if target.kind == TargetKind.LOCAL:
        return engine_checks.check_local_socket(local_socket_for(target))
    if target.kind == TargetKind.TCP_TLS:
        from windflow.engine.tlsdocker import check_tls_target

        with endpoint_for(target) as endpoint:
            return check_tls_target(endpoint)
    with endpoint_for(target) as endpoint:
        # A healthy session goes back to the pool: the next job on this server reuses it.
        return engine_checks.check_ssh_target(endpoint, pool=ssh.pool)


def check_target(target: Target, *, triggered_by=None) -> TargetCheck:
    """Run the connectivity test, store it, update status, facts and last_seen."""
    started = time.perf_counter()
    try:
        results, facts = run_checks(target)
    except ServiceError as exc:
        local = target.kind == TargetKind.LOCAL
        results = [
            engine_checks.Check(
                name="socket" if local else "credential",
                ok=False,
                detail=exc.message,
                hint=_("Ask the platform operator.")
                if local
                else _("Edit the target and give it a key."),
            )
        ]
        facts = None
    status = _status_of(results)
    check = TargetCheck.objects.create(
        target=target,
        status=status,
        triggered_by=triggered_by,
        duration_ms=int((time.perf_counter() - started) * 1000),
        results=[_check_dict(result) for result in results],
    )
    target.status = status
    fields = ["status"]
    if status != TargetStatus.OFFLINE:
        target.last_seen = timezone.now()
        fields.append("last_seen")
    if facts is not None:
        target.facts = _facts_dict(facts)
        fields.append("facts")
    target.save(update_fields=fields)
    return check


def _status_of(results) -> str:
    if results and all(result.ok for result in results):
        return TargetStatus.ONLINE
    blocking = {
        "ssh reachable",
        "host key",
        "authenticated",
        "credential",
        "socket",
        "tcp reachable",
        "tls",
    }
    if any(not result.ok and result.name in blocking for result in results) or not results:
        return TargetStatus.OFFLINE
    return TargetStatus.DEGRADED


def _check_dict(result) -> dict:
    return {
        "name": result.name,
        "ok": result.ok,
        "detail": result.detail,
        "hint": result.hint,
        "duration_ms": round(result.duration_ms, 1),
    }


def _facts_dict(facts) -> dict:
    from dataclasses import asdict, is_dataclass

    return asdict(facts) if is_dataclass(facts) else dict(facts)
