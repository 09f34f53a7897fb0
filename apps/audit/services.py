"""Recording, verifying, exporting and archiving the audit trail.

Every service that changes state calls `record()` in the same transaction, so an event
exists exactly when its change does. Events are chained per schema (organisation or public).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from windflow import context
from windflow.clientaddress import client_address
from windflow.errors import ServiceError
from windflow.redaction import redact

from . import chain
from .models import ActorType, AuditAnchor, AuditEvent

logger = logging.getLogger(__name__)

TABLE = AuditEvent._meta.db_table
EXPORT_FIELDS = (*chain.HASHED_FIELDS, "prev_hash", "hash")


def diff(before: dict, after: dict) -> dict:
    """{"field": [old, new]} for the fields that changed."""
    return {
        key: [before.get(key), after.get(key)]
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    }


def _actor(explicit_user=None) -> tuple[str, str, str]:
    if explicit_user is not None:
        return ActorType.USER, str(explicit_user.pk), explicit_user.email
    acting = context.current()
    request = acting.request if acting else None
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ActorType.SYSTEM, "", acting.system_label if acting else "system"
    from apps.accounts.models import ApiToken

    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken):
        return ActorType.TOKEN, str(token.pk), f"{user.email} (token {token.prefix}…)"
    return ActorType.USER, str(user.pk), user.email


def _request_meta() -> dict:
    acting = context.current()
    request = acting.request if acting else None
    if request is None:
        return {"ip": None, "user_agent": "", "request_id": ""}
    return {
        "ip": client_address(request),
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:300],
        "request_id": getattr(request, "id", ""),
    }


def _object_fields(obj, object_type, object_id, object_label) -> dict:
    if obj is not None:
        object_type = object_type or getattr(obj, "audit_type", obj._meta.model_name)
        object_id = object_id or str(obj.pk)
        object_label = object_label or str(obj)
    return {
        "object_type": object_type or "",
        "object_id": str(object_id or ""),
        "object_label": (object_label or "")[:200],
    }


def record(
    action: str,
    *,
    obj=None,
    object_type: str = "",
    object_id="",
    object_label: str = "",
    changes: dict | None = None,
    actor=None,
) -> AuditEvent:
    """Append one event to the active schema's chain."""
    actor_type, actor_id, actor_label = _actor(actor)
    tenant = getattr(connection, "tenant", None)
    fields = {
        "organization": ""
        if connection.schema_name == settings.PUBLIC_SCHEMA_NAME
        else getattr(tenant, "slug", connection.schema_name),
        "actor_type": actor_type,
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        **_object_fields(obj, object_type, object_id, object_label),
        "changes": json.loads(redact(json.dumps(changes or {}, default=str))),
        **_request_meta(),
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            # One writer at a time per chain; the lock ends with the transaction.
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"audit:{connection.schema_name}"]
            )
            cursor.execute(f"SELECT hash FROM {TABLE} ORDER BY id DESC LIMIT 1")  # noqa: S608
            row = cursor.fetchone()
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id'))", [TABLE])
            event_id = cursor.fetchone()[0]
        prev_hash = row[0] if row else _anchor_hash()
        # Stamped under the lock, so that time order and chain order agree.
        event = AuditEvent(id=event_id, prev_hash=prev_hash, timestamp=timezone.now(), **fields)
        event.hash = chain.event_hash(prev_hash, as_dict(event))
        event.save(force_insert=True)
    return event


def record_in(organization, action: str, **kwargs) -> AuditEvent:
    """`record()` in `organization`'s chain (or the public chain for None), whatever schema is
    active now."""
    from django_tenants.utils import schema_context

    schema = organization.schema_name if organization else settings.PUBLIC_SCHEMA_NAME
    if connection.schema_name == schema:
        return record(action, **kwargs)
    if organization is not None:
        from django_tenants.utils import tenant_context

        with tenant_context(organization):
            return record(action, **kwargs)
    with schema_context(schema):
        return record(action, **kwargs)


def as_dict(event: AuditEvent) -> dict:
    data = {field: getattr(event, field) for field in EXPORT_FIELDS}
    data["timestamp"] = event.timestamp.isoformat()
    return data


def _anchor_hash() -> str:
    anchor = AuditAnchor.objects.first()
    return anchor.anchor_hash if anchor else chain.GENESIS


# --- Verification -----------------------------------------------------------------------------


def _stream(queryset, chunk=2000) -> Iterator[dict]:
    for event in queryset.order_by("id").iterator(chunk_size=chunk):
        yield as_dict(event)


def verify() -> tuple[int, tuple[dict, str] | None]:
    """Verify the active schema's chain: (events checked, first break or None)."""
    checked = 0

    def counted():
        nonlocal checked
        for event in _stream(AuditEvent.objects.all()):
            checked += 1
            yield event

    broken = chain.first_break(counted(), _anchor_hash())
    return checked, broken


# --- Queries and exports ----------------------------------------------------------------------


def filtered(
    *,
    actor: str = "",
    action: str = "",
    object_type: str = "",
    object_id: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
):
    if since and until and since > until:
        raise ServiceError(
            "The start of the date range is after its end.", field="since", code="invalid_range"
        )
    queryset = AuditEvent.objects.all()
    if actor:
        queryset = queryset.filter(actor_label__icontains=actor)
    if action:
        queryset = queryset.filter(action__startswith=action)
    if object_type:
        queryset = queryset.filter(object_type=object_type)
    if object_id:
        queryset = queryset.filter(object_id=object_id)
    if since:
        queryset = queryset.filter(timestamp__gte=since)
    if until:
        queryset = queryset.filter(timestamp__lte=until)
    return queryset


def export_jsonl(queryset) -> Iterator[str]:
    for event in _stream(queryset):
        yield json.dumps(event, default=str, ensure_ascii=False) + "\n"


def export_csv(queryset) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_FIELDS)
    writer.writeheader()
    for event in _stream(queryset):
        event = dict(event, changes=json.dumps(event["changes"], default=str))
        writer.writerow(event)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


# --- Retention --------------------------------------------------------------------------------


def archive_before(cutoff: datetime, directory: Path) -> AuditAnchor | None:
    """Move events older than `cutoff` to a JSON Lines file and remember the hash of the last
    one as the chain's new anchor. Verifies the chain first: a broken chain is not archived."""
    _checked, broken = verify()
    if broken:
        raise ServiceError(
            f"The audit chain is broken at event {broken[0]['id']}: fix that before archiving.",
            code="chain_broken",
        )
    old = AuditEvent.objects.filter(timestamp__lt=cutoff).order_by("id")
    last = old.last()
    if last is None:
        return None
    # Archive a prefix of the chain only: events are time-ordered with their ids.
    old = AuditEvent.objects.filter(id__lte=last.id)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"audit-{connection.schema_name}-through-{last.id}.jsonl"
    count = 0
    with path.open("w", encoding="utf-8") as archive:
        archive.write(json.dumps({"anchor_start": _anchor_hash()}) + "\n")
        for line in export_jsonl(old):
            archive.write(line)
            count += 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"audit:{connection.schema_name}"]
        )
        cursor.execute("SET LOCAL windflow.audit_archiving = 'on'")
        cursor.execute(f"DELETE FROM {TABLE} WHERE id <= %s", [last.id])  # noqa: S608
        anchor = AuditAnchor.objects.create(
            archived_through_id=last.id,
            anchor_hash=last.hash,
            archived_count=count,
            archive_file=str(path),
        )
    logger.info("archived %d audit events of %s to %s", count, connection.schema_name, path)
    return anchor


def retention_directory() -> Path:
    return Path(settings.WINDFLOW_AUDIT_ARCHIVE_DIR)
