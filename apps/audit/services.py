"""Recording, verifying, exporting and archiving the audit trail.

Every service that changes state calls `record()` in the same transaction, so an event
exists exactly when its change does. Events are chained per schema (organisation or public).

Who an event names follows one rule (`actor_fields`): services pass the Membership or User
acting as `actor=`, and the way they acted (an API token) is read from the acting context
(windflow.context), never passed by a service.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import ApiToken, Membership
from windflow import context
from windflow.clientaddress import client_address
from windflow.errors import ServiceError
from windflow.exports import csv_stream

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


def actor_fields(actor=None) -> tuple[str, str, str]:
    """(actor_type, actor_id, actor_label) of an event: the one rule for who it names.

    `actor` is the person acting, a Membership or a User, as services take it; None lets the
    acting context decide (the request's signed-in user, or else the system, e.g. a job).
    How the person acted is read here alone, from the acting context: through one of their
    API tokens, the event is "token", with the person's id and a label naming the token, so
    every service records the same token the same way.
    """
    acting = context.current()
    request = acting.request if acting else None
    person = actor.user if isinstance(actor, Membership) else actor
    if person is None:
        signed_in = getattr(request, "user", None)
        person = signed_in if signed_in is not None and signed_in.is_authenticated else None
    if person is None:
        return ActorType.SYSTEM, "", acting.system_label if acting else "system"
    token = getattr(request, "auth", None)
    if isinstance(token, ApiToken) and token.user_id == person.pk:
        label = f"{person.email} via token “{token.name}” ({token.prefix}…)"
        return ActorType.TOKEN, str(person.pk), label[:254]
    return ActorType.USER, str(person.pk), person.email


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


def _stack_of(obj, stack=None):
    """The stack an event is about (a stack, a revision, a deployment...), for redaction."""
    if stack is not None or obj is None:
        return stack
    from apps.stacks.models import Stack

    if isinstance(obj, Stack):
        return obj
    try:
        found = getattr(obj, "stack", None)
    except Exception:  # a related row that is gone: nothing to scope by
        return None
    return found if isinstance(found, Stack) else None


def masked(fields: dict, stack=None) -> dict:
    """The free-text fields of an event with secret values masked: those in scope for
    `stack` and for the active scope (windflow.redaction). Applied before the hash, so the
    chain never holds a value."""
    from apps.secrets.redaction import redact_for_stack

    changes = fields.get("changes") or {}
    text = redact_for_stack(stack, json.dumps(changes, default=str, ensure_ascii=False))
    try:
        changes = json.loads(text)
    except ValueError:  # withheld, or a mask that cut through JSON syntax
        changes = {"withheld": text}
    return {
        **fields,
        "changes": changes,
        "object_label": redact_for_stack(stack, fields.get("object_label") or "")[:200],
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
    stack=None,
) -> AuditEvent:
    """Append one event to the active schema's chain. `actor`: the Membership or User acting
    (services pass theirs; see actor_fields). Its changes and label are masked first (secret
    values of `stack`, found from `obj` when not given, and of the active scope)."""
    actor_type, actor_id, actor_label = actor_fields(actor)
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
        "changes": changes or {},
        **_request_meta(),
    }
    fields = masked(fields, _stack_of(obj, stack))
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


# --- Masking values stored before redaction covered everything ----------------------------------

REMASKED_FIELDS = ("changes", "object_label", "actor_label", "user_agent")


def remask(redactor, *, dry_run: bool = False) -> dict:
    """Mask, with `redactor`, the secret values that events of the active schema hold (they
    were recorded before every text went through redaction), then hash the chain again from
    the first changed event and append an `audit.reanchor` event that records the old head,
    the new head and how many events changed; that event is chained like any other, so
    `verify()` covers it. Refused on a chain that does not verify (nothing would prove what
    it was). Idempotent: a chain with nothing to mask is left as it is. Returns
    ``{"checked", "changed", "rehashed", "first_changed_id", "old_head", "new_head"}``."""
    schema = connection.schema_name
    summary = {
        "checked": 0,
        "changed": 0,
        "rehashed": 0,
        "first_changed_id": None,
        "old_head": None,
        "new_head": None,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"audit:{schema}"])
        _checked, broken = verify()
        if broken:
            raise ServiceError(
                f"The audit chain is broken at event {broken[0]['id']}: fix that before "
                "masking it.",
                code="chain_broken",
            )
        if not dry_run:
            cursor.execute("SET LOCAL windflow.audit_reanchoring = 'on'")
        try:
            _rehash(redactor, summary, dry_run=dry_run)
        finally:
            if not dry_run:
                cursor.execute("SET LOCAL windflow.audit_reanchoring = 'off'")
        if summary["changed"] and not dry_run:
            record(
                "audit.reanchor",
                object_type="audit",
                object_label=_("secret values masked"),
                changes={
                    "old_head": summary["old_head"],
                    "new_head": summary["new_head"],
                    "first_changed_id": summary["first_changed_id"],
                    "events_changed": summary["changed"],
                    "events_rehashed": summary["rehashed"],
                },
                actor=None,
            )
    return summary


def _rehash(redactor, summary: dict, *, dry_run: bool) -> None:
    """Mask each event, and hash again every event from the first one that changed."""
    prev = _anchor_hash()
    rehashing = False
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        summary["checked"] += 1
        summary["old_head"] = event.hash
        masked = {
            "changes": redactor.redact_data(event.changes, edges=True),
            "object_label": redactor.redact(event.object_label, edges=True)[:200],
            "actor_label": redactor.redact(event.actor_label, edges=True)[:254],
            "user_agent": redactor.redact(event.user_agent, edges=True)[:300],
        }
        changed = any(masked[field] != getattr(event, field) for field in REMASKED_FIELDS)
        if changed:
            summary["changed"] += 1
            if summary["first_changed_id"] is None:
                summary["first_changed_id"] = event.id
            rehashing = True
        if not rehashing:
            prev = event.hash
            continue
        for field, value in masked.items():
            setattr(event, field, value)
        event.prev_hash = prev
        event.hash = chain.event_hash(prev, as_dict(event))
        prev = event.hash
        summary["rehashed"] += 1
        if not dry_run:
            AuditEvent.objects.filter(pk=event.pk).update(
                prev_hash=event.prev_hash, hash=event.hash, **masked
            )
    summary["new_head"] = prev if summary["checked"] else None


def reanchors():
    """The `audit.reanchor` events of the active schema, newest first."""
    return AuditEvent.objects.filter(action="audit.reanchor").order_by("-id")


# --- Queries and exports ----------------------------------------------------------------------


def get_event_for(actor, pk, action="audit.view", *, queryset=None) -> AuditEvent:
    """Audit event `pk`: NotFound when `actor` may not read the audit log (or there is no
    such event), Forbidden when their role does not allow `action`."""
    if queryset is None:
        queryset = AuditEvent.objects.all()
    visible = permissions.visible(actor, queryset, "audit.view")
    return permissions.get_visible(actor, visible, action, pk=pk)


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
    """Cells that a spreadsheet would run as formulas are neutralised (windflow.exports)."""
    rows = (
        dict(event, changes=json.dumps(event["changes"], default=str))
        for event in _stream(queryset)
    )
    return csv_stream(EXPORT_FIELDS, rows)


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
