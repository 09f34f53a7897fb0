"""The operator index: a few small public tables (apps.tenants.models, from OrganizationUsage
on) that the operator console reads across every organisation, kept true by the services
that change what they mirror. One function per change, called by that service; each writes
after the service's transaction commits (and never undoes it: a failed write is logged, and
`manage.py rebuild_operator_index` repairs), so a page reads one table instead of opening
every schema.

- OrganizationUsage: servers, stacks and deployments counted, last activity.
- IndexedDeployment: active deployments (stuck when they last), failed ones until a later
  success of their stack resolves them (kept FAILURE_WINDOW more for the failure counts).
- OfflineServer: servers whose last check found them offline, since the first such check.
- SecurityEvent: lockouts, compose policy refusals, revocations, kept SECURITY_EVENT_DAYS.

Texts are short and pass through redaction (the secrets in scope are masked); a deployment's
reason is already redacted by apps.deployments.journal. Nothing here runs on a read: the API
and the pages pay nothing for the index. Imports only this app's models (every app calls in).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from windflow.redaction import redact

from .models import (
    IndexedDeployment,
    OfflineServer,
    Organization,
    OrganizationUsage,
    SecurityEvent,
    SecurityEventKind,
)

logger = logging.getLogger(__name__)

# A deployment queued (or running, heartbeat or not) longer than this is "stuck". A silent
# worker is failed by the reaper within seconds; these catch the rest (no worker takes the
# queue, a deploy that never ends).
STUCK_QUEUED = timedelta(minutes=10)
STUCK_RUNNING = timedelta(minutes=30)
# "Failures in the last 24 h"; resolved failures are kept this long, then pruned.
FAILURE_WINDOW = timedelta(hours=24)
# A failure never resolved (the stack was left as it is) leaves the list after this long.
FAILED_KEPT = timedelta(days=30)
SECURITY_EVENT_DAYS = 30
# The same person locked out again within this time is not a new event.
LOCKOUT_QUIET = timedelta(minutes=5)

ACTIVE = ("queued", "running")
FAILED = ("failed", "rolled_back")
SHORT = 200


# --- Where and when -------------------------------------------------------------------------


def current_schema() -> str | None:
    """The organisation the connection works for (its schema), None on the public schema."""
    schema = connection.schema_name
    return None if schema == settings.PUBLIC_SCHEMA_NAME else schema


def _short(text: str) -> str:
    return redact(str(text or "")).replace("\n", " ").strip()[:SHORT]


def _after_commit(write, *args, **kwargs) -> None:
    """Run `write(*args, **kwargs)` once the caller's transaction commits (at once outside one). An
    error there is logged: the service's change stands, the index is repaired by a rebuild."""

    def run():
        try:
            with transaction.atomic():
                write(*args, **kwargs)
        except IntegrityError:  # the organisation was deleted meanwhile
            logger.info("operator index: %s skipped (organisation gone)", write.__name__)
        except Exception:
            logger.exception("operator index: %s failed", write.__name__)

    transaction.on_commit(run)


# --- Counters ---------------------------------------------------------------------------------

_BUMP = """
INSERT INTO {table} (organization_id, servers, stacks, deployments, last_activity_at)
VALUES (%(schema)s, GREATEST(%(servers)s, 0), GREATEST(%(stacks)s, 0),
        GREATEST(%(deployments)s, 0), %(now)s)
ON CONFLICT (organization_id) DO UPDATE SET
    servers = GREATEST({table}.servers + %(servers)s, 0),
    stacks = GREATEST({table}.stacks + %(stacks)s, 0),
    deployments = GREATEST({table}.deployments + %(deployments)s, 0),
    last_activity_at = GREATEST({table}.last_activity_at, %(now)s)
"""


def _bump(schema: str, *, servers: int = 0, stacks: int = 0, deployments: int = 0) -> None:
    """Add to an organisation's counters and mark it active now, in one statement (concurrent
    services add up; the row is created on first use)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _BUMP.format(table=OrganizationUsage._meta.db_table),
            {
                "schema": schema,
                "servers": servers,
                "stacks": stacks,
                "deployments": deployments,
                "now": timezone.now(),
            },
        )


def stack_added() -> None:
    """apps.stacks.services.create_stack."""
    if schema := current_schema():
        _after_commit(_bump, schema, stacks=1)


def stack_removed() -> None:
    """apps.stacks.services.delete_stack."""
    if schema := current_schema():
        _after_commit(_bump, schema, stacks=-1)


# --- Deployments ------------------------------------------------------------------------------


def deployment_row(deployment) -> dict:
    target = deployment.target if deployment.target_id else None
    return {
        "stack": deployment.stack.name[:100],
        "target": target.name[:100] if target is not None else "",
        "status": str(deployment.status),
        "created_at": deployment.created_at,
        "started_at": deployment.started_at,
        "finished_at": deployment.finished_at,
        "reason": _short(deployment.reason),
    }


def deployment_changed(deployment, *, new: bool = False) -> None:
    """A deployment was requested (`new`), started or finished: mirror its status. Active and
    failed ones are indexed; a success removes it and resolves the failures of its stack; a
    cancellation removes it."""
    schema = current_schema()
    if schema is None:
        return
    row = deployment_row(deployment)
    _after_commit(_mirror_deployment, schema, deployment.pk, row, new)


def _mirror_deployment(schema: str, deployment_id: int, row: dict, new: bool) -> None:
    _bump(schema, deployments=1 if new else 0)
    mine = IndexedDeployment.objects.filter(organization_id=schema, deployment_id=deployment_id)
    if row["status"] in ACTIVE or row["status"] in FAILED:
        IndexedDeployment.objects.update_or_create(
            organization_id=schema, deployment_id=deployment_id, defaults=row
        )
        return
    mine.delete()
    if row["status"] == "succeeded":
        IndexedDeployment.objects.filter(
            organization_id=schema, stack=row["stack"], status__in=FAILED, resolved_at=None
        ).update(resolved_at=row["finished_at"] or timezone.now())


def failed_deployments():
    """Failures not resolved by a later success, newest first (the console's default)."""
    return IndexedDeployment.objects.filter(status__in=FAILED, resolved_at=None)


def stuck_deployments(now=None):
    now = now or timezone.now()
    return IndexedDeployment.objects.filter(
        Q(status="queued", created_at__lt=now - STUCK_QUEUED)
        | Q(status="running", started_at__lt=now - STUCK_RUNNING)
    )


def recent_failures(now=None):
    """Every failure of the last FAILURE_WINDOW, resolved or not (the organisation list)."""
    now = now or timezone.now()
    return IndexedDeployment.objects.filter(
        status__in=FAILED, finished_at__gte=now - FAILURE_WINDOW
    )


# --- Servers ----------------------------------------------------------------------------------


def server_added() -> None:
    """apps.targets.services.create_target."""
    if schema := current_schema():
        _after_commit(_bump, schema, servers=1)


def server_removed(server_id: int) -> None:
    """apps.targets.services.delete_target."""
    if schema := current_schema():
        _after_commit(_forget_server, schema, server_id)


def _forget_server(schema: str, server_id: int) -> None:
    _bump(schema, servers=-1)
    OfflineServer.objects.filter(organization_id=schema, server_id=server_id).delete()


def server_checked(target, failed_check: str = "") -> None:
    """apps.targets.connect.check_target recorded `target.status`: an offline server is
    indexed (since its first offline check), any other answer removes it."""
    schema = current_schema()
    if schema is None:
        return
    offline = target.status == "offline"
    _after_commit(_mirror_server, schema, target.pk, target.name[:100], offline, failed_check)


def _mirror_server(schema, server_id, name, offline, failed_check) -> None:
    mine = OfflineServer.objects.filter(organization_id=schema, server_id=server_id)
    if not offline:
        mine.delete()
    elif not mine.update(name=name, failed_check=failed_check[:60]):
        OfflineServer.objects.get_or_create(
            organization_id=schema,
            server_id=server_id,
            defaults={"name": name, "since": timezone.now(), "failed_check": failed_check[:60]},
        )


# --- Security events --------------------------------------------------------------------------


def security_event(
    kind: str,
    *,
    actor: str = "",
    summary: str = "",
    organization: Organization | None = None,
    platform: bool = False,
) -> None:
    """Record a lockout, a compose policy refusal or a revocation: the platform's
    (`platform`), `organization`'s, or else that of the organisation the connection works
    for (the platform's on the public schema). `summary` names things (a stack, a token, an
    address), never a value. A lockout of the same person within LOCKOUT_QUIET is the same
    event."""
    if platform:
        schema = None
    elif organization is not None:
        schema = organization.schema_name
    else:
        schema = current_schema()
    kind = SecurityEventKind(kind)
    _after_commit(_record_security_event, schema, kind, _short(actor)[:254], _short(summary))


def _record_security_event(schema, kind, actor, summary) -> None:
    now = timezone.now()
    if kind == SecurityEventKind.LOCKOUT:
        repeated = SecurityEvent.objects.filter(
            organization_id=schema, kind=kind, actor=actor, created_at__gte=now - LOCKOUT_QUIET
        )
        if repeated.exists():
            return
    SecurityEvent.objects.create(
        organization_id=schema, kind=kind, actor=actor, summary=summary, created_at=now
    )


# --- Keeping it small, forgetting an organisation ---------------------------------------------


def prune(now=None) -> dict[str, int]:
    """Delete what the console no longer shows: resolved failures past the failure window,
    failures (and deployments active, as far as the index knows) older than FAILED_KEPT,
    security events older than SECURITY_EVENT_DAYS (the scheduler, hourly)."""
    now = now or timezone.now()
    resolved = IndexedDeployment.objects.filter(
        resolved_at__isnull=False, finished_at__lt=now - FAILURE_WINDOW
    )
    old = IndexedDeployment.objects.filter(
        Q(status__in=FAILED, finished_at__lt=now - FAILED_KEPT)
        | Q(status__in=ACTIVE, created_at__lt=now - FAILED_KEPT)
    )
    events = SecurityEvent.objects.filter(created_at__lt=now - timedelta(days=SECURITY_EVENT_DAYS))
    return {
        "resolved failures": resolved.delete()[0],
        "old rows": old.delete()[0],
        "security events": events.delete()[0],
    }


def forget_organization(organization: Organization) -> None:
    """Remove every index row of `organization` (its deletion; the foreign keys cascade too,
    this is for a deletion that keeps the Organization row for a while)."""
    schema = organization.schema_name
    OrganizationUsage.objects.filter(organization_id=schema).delete()
    IndexedDeployment.objects.filter(organization_id=schema).delete()
    OfflineServer.objects.filter(organization_id=schema).delete()
    SecurityEvent.objects.filter(organization_id=schema).delete()
