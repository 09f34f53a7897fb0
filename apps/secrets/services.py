"""Secrets: write-only values, versioned rotation, and resolution for the deploy worker."""

from __future__ import annotations

import logging
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from windflow.errors import Conflict, ServiceError
from windflow.redaction import MIN_LENGTH, secrets_in_scope

from .backends import backend_for, default_backend_name
from .choices import SecretPurpose, SecretScope
from .models import SecretRef, SecretVersion, validate_secret_name
from .redaction import organization_redactor

logger = logging.getLogger(__name__)

MAX_VALUE_BYTES = 64 * 1024


# --- Access: how pages and the API reach a secret --------------------------------------------


def visible_secrets(actor: Membership | None, queryset=None):
    """The organisation's secrets (names, never values) that `actor` may see."""
    if queryset is None:
        queryset = SecretRef.objects.select_related("environment")
    return permissions.visible(actor, queryset, "secret.view")


def get_secret_for(
    actor: Membership | None, pk, action="secret.view", *, queryset=None
) -> SecretRef:
    """Secret `pk`, for `action` on it: NotFound when `actor` cannot see it, Forbidden when
    their role does not allow `action`."""
    return permissions.get_visible(actor, visible_secrets(actor, queryset), action, pk=pk)


# --- Secrets -----------------------------------------------------------------------------------


def _check_value(value) -> str:
    if not isinstance(value, str):
        raise ServiceError(_("The value must be text."), field="value")
    size = len(value.encode())
    if size > MAX_VALUE_BYTES:
        raise ServiceError(
            _("The value is %(size)d bytes; the limit is 64 KiB.") % {"size": size}, field="value"
        )
    if len(value) < MIN_LENGTH:
        raise ServiceError(
            _("A secret must be at least %(n)d characters long.") % {"n": MIN_LENGTH},
            field="value",
        )
    return value


def _check_name(name: str, environment) -> None:
    from django.core.exceptions import ValidationError

    try:
        validate_secret_name(name)
    except ValidationError as exc:
        raise ServiceError(exc.messages[0], field="name") from exc
    if SecretRef.objects.filter(name=name, environment=environment).exists():
        where = environment.name if environment else _("the organisation")
        raise Conflict(
            _("A secret named %(name)s already exists in %(where)s.")
            % {"name": name, "where": where},
            field="name",
            code="duplicate",
        )


def create_secret(
    actor: Membership, *, name: str, value: str, environment=None, description: str = ""
) -> SecretRef:
    """Store a new secret. The value goes to the backend in the same transaction as the row:
    if the backend fails, nothing is left behind."""
    permissions.require(actor, "secret.add")
    name = (name or "").strip()
    _check_name(name, environment)
    _check_value(value)
    return _create_stored(
        actor,
        value,
        audited=("scope", "backend", "version"),
        name=name,
        environment=environment,
        description=description.strip(),
        scope=SecretScope.ENVIRONMENT if environment else SecretScope.ORGANIZATION,
    )


def _create_stored(actor: Membership, value: str, *, audited, **fields) -> SecretRef:
    """A new secret row (of any purpose) and its first value in the backend, in one
    transaction with its audit event: if the backend fails, nothing is left behind."""
    with transaction.atomic():
        secret = SecretRef.all_purposes.create(
            backend=default_backend_name(), version=1, created_by=actor.user, **fields
        )
        _store_version(secret, 1, value, actor)
        audit.record(
            "secret.create",
            obj=secret,
            changes={field: getattr(secret, field) for field in audited},
            actor=actor,
        )
    return secret


def _store_version(secret: SecretRef, version: int, value: str, actor: Membership) -> None:
    record = SecretVersion.objects.create(secret=secret, version=version, created_by=actor.user)
    stored = backend_for(secret.backend).write(secret, version, value)
    if stored != version:  # Vault numbers versions itself
        record.version = stored
        record.save(update_fields=["version"])
        secret.version = stored
        secret.save(update_fields=["version"])


def rotate_secret(actor: Membership, secret: SecretRef, value: str) -> SecretRef:
    permissions.require(actor, "secret.change")
    _check_value(value)
    with transaction.atomic():
        secret = SecretRef.objects.select_for_update().get(pk=secret.pk)
        before = secret.version
        secret.version = before + 1
        secret.rotated_at = timezone.now()
        secret.save(update_fields=["version", "rotated_at"])
        _store_version(secret, secret.version, value, actor)
        audit.record(
            "secret.rotate",
            obj=secret,
            changes={"version": [before, secret.version]},
            actor=actor,
        )
    return secret


def update_description(actor: Membership, secret: SecretRef, description: str) -> SecretRef:
    permissions.require(actor, "secret.change")
    before = secret.description
    secret.description = description.strip()[:300]
    with transaction.atomic():
        secret.save(update_fields=["description"])
        audit.record(
            "secret.update",
            obj=secret,
            changes=audit.diff({"description": before}, {"description": secret.description}),
            actor=actor,
        )
    return secret


def delete_secret(actor: Membership, secret: SecretRef) -> None:
    permissions.require(actor, "secret.delete")
    with transaction.atomic():
        audit.record("secret.delete", obj=secret, changes={"version": secret.version}, actor=actor)
        backend = backend_for(secret.backend)
        secret.delete()
        backend.destroy(secret)  # last: if the backend refuses, the row comes back


def read_value(secret: SecretRef) -> str:
    """The current value of one secret, for WindFlow's own use (a target's SSH key). Callers
    keep it under `secrets_in_scope` and never return it to anyone."""
    return backend_for(secret.backend).read(secret, secret.version)


# --- Server credentials -------------------------------------------------------------------
#
# The SSH keys and TLS client material WindFlow uses to reach a server. They live apart from
# stack secrets (`purpose` "server", backend location `server/<NAME>`): no stack can reference
# one, no page or API lists one, and nothing returns their value; only the target services
# read them, to connect.


def create_server_credential(
    actor: Membership, *, name: str, value: str, description: str = "", action="target.add"
) -> SecretRef:
    """`action`: what the credential is for (a target's key: target.add; a stack's Git
    deploy key: stack.add or stack.change)."""
    permissions.require(actor, action)
    _check_value(value)
    if SecretRef.server_credentials.filter(name=name).exists():
        raise Conflict(
            _("A server credential named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        )
    return _create_stored(
        actor,
        value,
        audited=("purpose", "backend"),
        name=name,
        purpose=SecretPurpose.SERVER,
        scope=SecretScope.ORGANIZATION,
        description=description.strip()[:300],
    )


def delete_server_credential(actor: Membership, secret: SecretRef) -> None:
    permissions.require(actor, "target.delete")
    if secret.purpose != SecretPurpose.SERVER:
        raise ServiceError(_("This is not a server credential."))
    with transaction.atomic():
        audit.record("secret.delete", obj=secret, changes={"purpose": secret.purpose}, actor=actor)
        backend = backend_for(secret.backend)
        secret.delete()
        backend.destroy(secret)


def forget_server_credential(secret: SecretRef) -> None:
    """Delete a server credential whose owner is gone (a deleted stack's Git deploy key):
    WindFlow's own clean-up after a deletion that was allowed, audited in the acting
    context (the person who deleted the owner)."""
    if secret.purpose != SecretPurpose.SERVER:
        raise ServiceError(_("This is not a server credential."))
    with transaction.atomic():
        audit.record("secret.delete", obj=secret, changes={"purpose": secret.purpose}, actor=None)
        backend = backend_for(secret.backend)
        secret.delete()
        backend.destroy(secret)


def versions(secret: SecretRef):
    return secret.versions.order_by("-version")


def _lookup(names, environment) -> dict[str, SecretRef]:
    """Environment secrets override organisation-wide ones of the same name."""
    found = {}
    refs = SecretRef.objects.filter(name__in=names, environment__isnull=True)
    if environment is not None:
        refs = refs | SecretRef.objects.filter(name__in=names, environment=environment)
    for ref in refs:
        if ref.name not in found or ref.environment_id is not None:
            found[ref.name] = ref
    return found


def resolve(names, *, environment=None, membership: Membership | None = None) -> dict[str, str]:
    """The current values of `names` (deploy worker only). Missing names are an error that
    lists them all; values are never logged (use `resolved()` to keep them redacted)."""
    if membership is not None:
        permissions.require(membership, "secret.use")
    names = sorted(set(names))
    refs = _lookup(names, environment)
    missing = [name for name in names if name not in refs]
    credentials = set(
        SecretRef.server_credentials.filter(name__in=missing).values_list("name", flat=True)
    )
    if credentials:
        raise ServiceError(
            _(
                "%(names)s: server credentials cannot be used by a stack. Store the value "
                "the stack needs as a secret of its own."
            )
            % {"names": ", ".join(sorted(credentials))},
            code="server_credential",
        )
    if missing:
        raise ServiceError(
            _("Missing secrets: %(names)s.") % {"names": ", ".join(missing)},
            code="secrets_missing",
        )
    values = {}
    by_backend: dict[str, list[SecretRef]] = {}
    for ref in refs.values():
        by_backend.setdefault(ref.backend, []).append(ref)
    for name, group in by_backend.items():
        read = backend_for(name).read_many(group)
        unreadable = [ref.name for ref in group if ref.pk not in read]
        if unreadable:
            raise ServiceError(
                _("No stored value for: %(names)s.") % {"names": ", ".join(unreadable)},
                code="secrets_unreadable",
            )
        values.update({ref.name: read[ref.pk] for ref in group})
    return values


@contextmanager
def resolved(names, *, environment=None, membership=None):
    """Resolve and keep the values out of every log and redacted string in this block."""
    values = resolve(names, environment=environment, membership=membership)
    with secrets_in_scope(values.values()):
        yield values


# --- Values stored in clear before every text went through redaction ------------------------

# (app label, model, text fields, JSON fields): every column that holds what a stack printed
# or failed with. Audit events are masked by the audit service (their chain is re-hashed).
STORED_TEXT = (
    ("deployments", "DeploymentLogLine", ("message",), ()),
    ("deployments", "Deployment", ("reason",), ("diagnosis",)),
    ("deployments", "DeploymentService", ("message",), ()),
    ("notifications", "Notification", ("text", "url"), ()),
    ("targets", "PrepareRun", ("output",), ()),
    ("targets", "TargetCheck", (), ("results",)),
)


def mask_stored_text(*, dry_run: bool = False) -> dict:
    """Mask the secret values that rows of the active organisation hold in clear (stored
    before redaction covered every path), then the audit trail (re-hashed and re-anchored,
    see `audit.remask`). Idempotent. Returns ``{"<model>.<field>": rows changed, ...,
    "audit": {...}}``."""
    from django.apps import apps

    redactor = organization_redactor()
    counts: dict = {}
    if not redactor.values:
        counts["audit"] = audit.remask(redactor, dry_run=True)
        return counts
    with transaction.atomic():
        for app_label, model_name, text_fields, json_fields in STORED_TEXT:
            model = apps.get_model(app_label, model_name)
            fields = (*text_fields, *json_fields)
            queryset = model._base_manager.order_by("pk").only("pk", *fields)
            for row in queryset.iterator(chunk_size=2000):
                changed = {}
                for field in text_fields:
                    value = getattr(row, field) or ""
                    limit = model._meta.get_field(field).max_length
                    masked = redactor.redact(value, edges=True)[: limit or None]
                    if masked != value:
                        changed[field] = masked
                for field in json_fields:
                    value = getattr(row, field)
                    masked = redactor.redact_data(value, edges=True)
                    if masked != value:
                        changed[field] = masked
                for field in changed:
                    key = f"{model_name}.{field}"
                    counts[key] = counts.get(key, 0) + 1
                if changed and not dry_run:
                    model._base_manager.filter(pk=row.pk).update(**changed)
        counts["audit"] = audit.remask(redactor, dry_run=dry_run)
    return counts
