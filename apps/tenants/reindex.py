"""Rebuilding the operator index (apps.tenants.index) from the organisations' schemas: for an
install that had organisations before the index, and for repair (`manage.py
rebuild_operator_index`). A constant number of queries per schema (plus two per offline
server), each schema's rows replaced in one transaction. Security events are a log, not a
mirror of any table: they are kept as they are.

A service that writes while its organisation is being rebuilt may see its write replaced by
the rebuild's reading of a moment before; the next change of that deployment or server puts
it right (or another rebuild)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone
from django_tenants.utils import schema_context

from apps.deployments.choices import DeploymentStatus
from apps.deployments.models import Deployment
from apps.stacks.models import Stack
from apps.targets.choices import TargetStatus
from apps.targets.models import Target, TargetCheck

from . import index
from .models import IndexedDeployment, OfflineServer, Organization, OrganizationUsage

# A failed stack's failures older than this many are not listed again by a rebuild.
FAILURES_PER_ORGANIZATION = 500


def _read_organization(now) -> dict:
    """What the index should hold for the organisation whose schema is active."""
    deployments = Deployment.objects.all()
    last = [
        deployments.aggregate(a=Max("created_at"), b=Max("finished_at")),
        Stack.objects.aggregate(a=Max("created_at")),
        Target.objects.aggregate(a=Max("created_at")),
    ]
    moments = [moment for found in last for moment in found.values() if moment is not None]
    successes = dict(
        deployments.filter(status=DeploymentStatus.SUCCEEDED)
        .values("stack_id")
        .annotate(last=Max("finished_at"))
        .values_list("stack_id", "last")
    )
    wanted = deployments.filter(status__in=index.ACTIVE) | deployments.filter(
        status__in=index.FAILED, finished_at__gte=now - index.FAILED_KEPT
    )
    rows = []
    for deployment in wanted.select_related("stack", "target")[:FAILURES_PER_ORGANIZATION]:
        row = IndexedDeployment(deployment_id=deployment.pk, **index.deployment_row(deployment))
        success = successes.get(deployment.stack_id)
        finished = deployment.finished_at
        if deployment.status in index.FAILED and success and finished and success > finished:
            if success < now - index.FAILURE_WINDOW and finished < now - index.FAILURE_WINDOW:
                continue  # resolved long ago: the index would have pruned it
            row.resolved_at = success
        rows.append(row)
    return {
        "usage": {
            "servers": Target.objects.count(),
            "stacks": Stack.objects.count(),
            "deployments": deployments.count(),
            "last_activity_at": max(moments, default=None),
        },
        "deployments": rows,
        "offline": [_offline(target) for target in Target.objects.filter(status="offline")],
    }


def _offline(target: Target) -> OfflineServer:
    """Offline since the first offline check after its last other answer."""
    checks = TargetCheck.objects.filter(target=target)
    answered = checks.exclude(status=TargetStatus.OFFLINE).aggregate(at=Max("started_at"))["at"]
    offline = checks.filter(status=TargetStatus.OFFLINE)
    if answered is not None:
        offline = offline.filter(started_at__gt=answered)
    since = offline.aggregate(at=Min("started_at"))["at"] or target.updated_at
    last = offline.order_by("-started_at").values_list("results", flat=True).first() or []
    failed = next((r.get("name", "") for r in last if not r.get("ok", True)), "")
    return OfflineServer(
        server_id=target.pk, name=target.name[:100], since=since, failed_check=failed[:60]
    )


def rebuild_organization(organization: Organization) -> None:
    """Replace `organization`'s index rows (not its security events) with what its schema
    holds now."""
    schema = organization.schema_name
    with schema_context(schema):
        found = _read_organization(timezone.now())
    with transaction.atomic():
        OrganizationUsage.objects.update_or_create(organization_id=schema, defaults=found["usage"])
        IndexedDeployment.objects.filter(organization_id=schema).delete()
        OfflineServer.objects.filter(organization_id=schema).delete()
        for row in [*found["deployments"], *found["offline"]]:
            row.organization_id = schema
        IndexedDeployment.objects.bulk_create(found["deployments"])
        OfflineServer.objects.bulk_create(found["offline"])


def organizations(slugs: Iterable[str] = ()):
    queryset = Organization.objects.exclude(schema_name=settings.PUBLIC_SCHEMA_NAME)
    slugs = list(slugs)
    if slugs:
        queryset = queryset.filter(slug__in=slugs)
    return queryset.order_by("pk")


def rebuild(
    queryset=None, *, progress: Callable[[int, int, float], None] | None = None
) -> tuple[int, float]:
    """Rebuild every organisation of `queryset` (default: all), one after another; calls
    `progress(done, total, seconds)` every 100. Returns (organisations, seconds)."""
    queryset = organizations() if queryset is None else queryset
    total = queryset.count()
    started = time.perf_counter()
    done = 0
    for organization in queryset.iterator(chunk_size=200):
        rebuild_organization(organization)
        done += 1
        if progress is not None and (done % 100 == 0 or done == total):
            progress(done, total, time.perf_counter() - started)
    return done, time.perf_counter() - started
