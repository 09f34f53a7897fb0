"""Secrets: write-only values, versioned rotation, and resolution for the deploy worker."""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from apps.accounts import permissions
from apps.accounts.models import Membership
from apps.audit import services as audit
from windflow.errors import Conflict, ServiceError
from windflow.redaction import MIN_LENGTH, Memo, Redactor, active, secrets_in_scope

from .backends import SecretBackendError, backend_for, default_backend_name
from .choices import SecretPurpose, SecretScope
from .models import SecretRef, SecretVersion, validate_secret_name

logger = logging.getLogger(__name__)

MAX_VALUE_BYTES = 64 * 1024


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
    permissions.require(actor, "secret.manage")
    name = (name or "").strip()
    _check_name(name, environment)
    _check_value(value)
    backend_name = default_backend_name()
    with transaction.atomic():
        secret = SecretRef.objects.create(
            name=name,
            environment=environment,
            description=description.strip(),
            scope=SecretScope.ENVIRONMENT if environment else SecretScope.ORGANIZATION,
            backend=backend_name,
            version=1,
            created_by=actor.user,
        )
        _store_version(secret, 1, value, actor)
        audit.record(
            "secret.create",
            obj=secret,
            changes={"scope": secret.scope, "backend": backend_name, "version": secret.version},
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
    permissions.require(actor, "secret.manage")
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
        )
    return secret


def update_description(actor: Membership, secret: SecretRef, description: str) -> SecretRef:
    permissions.require(actor, "secret.manage")
    before = secret.description
    secret.description = description.strip()[:300]
    with transaction.atomic():
        secret.save(update_fields=["description"])
        audit.record(
            "secret.update",
            obj=secret,
            changes=audit.diff({"description": before}, {"description": secret.description}),
        )
    return secret


def delete_secret(actor: Membership, secret: SecretRef) -> None:
    permissions.require(actor, "secret.manage")
    with transaction.atomic():
        audit.record("secret.delete", obj=secret, changes={"version": secret.version})
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
    actor: Membership, *, name: str, value: str, description: str = ""
) -> SecretRef:
    permissions.require(actor, "target.manage")
    _check_value(value)
    if SecretRef.server_credentials.filter(name=name).exists():
        raise Conflict(
            _("A server credential named %(name)s already exists.") % {"name": name},
            field="name",
            code="duplicate",
        )
    backend_name = default_backend_name()
    with transaction.atomic():
        secret = SecretRef.all_purposes.create(
            name=name,
            purpose=SecretPurpose.SERVER,
            scope=SecretScope.ORGANIZATION,
            description=description.strip()[:300],
            backend=backend_name,
            version=1,
            created_by=actor.user,
        )
        _store_version(secret, 1, value, actor)
        audit.record(
            "secret.create",
            obj=secret,
            changes={"purpose": secret.purpose, "backend": backend_name},
        )
    return secret


def delete_server_credential(actor: Membership, secret: SecretRef) -> None:
    permissions.require(actor, "target.manage")
    if secret.purpose != SecretPurpose.SERVER:
        raise ServiceError(_("This is not a server credential."))
    with transaction.atomic():
        audit.record("secret.delete", obj=secret, changes={"purpose": secret.purpose})
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


# --- Redaction of what is stored or shown about a stack -----------------------------------

WITHHELD = "[withheld: %s]"
MAX_VERSIONS = 5  # earlier values a running container may still print
_memo = Memo(seconds=10.0)
_bound: contextvars.ContextVar[tuple[str, int, Redactor] | None] = contextvars.ContextVar(
    "windflow_stack_redactor", default=None
)


def _scope_versions(stack) -> list[tuple[int, str, int]]:
    """(secret id, backend, version) of every value the stack's text may hold: the
    organisation's secrets and those of every environment it was in (a stack moves), each
    with its last few versions (a container started earlier prints the value it was given).
    Registry passwords are secrets too, so they are in; so are server credentials, which no
    stack may reference now, but a container started before they were set apart may print."""
    from django.db.models import Q

    environments = {stack.environment_id} if stack.environment_id else set()
    if stack.pk:
        environments |= set(
            stack.deployments.exclude(environment=None)
            .order_by()
            .values_list("environment_id", flat=True)
            .distinct()
        )
    rows = (
        SecretVersion.objects.filter(
            Q(secret__environment=None) | Q(secret__environment_id__in=environments)
        )
        .order_by("secret_id", "-version")
        .values_list("secret_id", "secret__backend", "version")
    )
    kept, counts = [], {}
    for secret_id, backend, version in rows:
        counts[secret_id] = counts.get(secret_id, 0) + 1
        if counts[secret_id] <= MAX_VERSIONS:
            kept.append((secret_id, backend, version))
    return kept


def _read_versions(versions) -> list[str]:
    """The values of `versions`; one that is gone or undecryptable is skipped (it cannot be
    printed by anyone now), a backend that does not answer raises SecretBackendError."""
    from .backends import organization_data_key

    values = []
    local = [(sid, v) for sid, backend, v in versions if backend == "local"]
    if local:
        from . import crypto
        from .backends import _context

        key = organization_data_key()
        rows = SecretVersion.objects.filter(
            secret_id__in={sid for sid, _v in local}, ciphertext__isnull=False
        ).values_list("secret_id", "version", "ciphertext")
        wanted = set(local)
        for secret_id, version, sealed in rows:
            if (secret_id, version) in wanted:
                try:
                    context = _context("secret", secret_id, version)
                    values.append(crypto.open_sealed(key, bytes(sealed), context).decode())
                except crypto.CryptoError:
                    logger.warning("secret %s v%s is undecryptable", secret_id, version)
    remote = [(sid, backend, v) for sid, backend, v in versions if backend != "local"]
    if remote:
        refs = SecretRef.all_purposes.in_bulk({sid for sid, _b, _v in remote})
        for secret_id, backend, version in remote:
            ref = refs.get(secret_id)
            if ref is None:
                continue
            try:
                values.append(backend_for(backend).read(ref, version))
            except SecretBackendError as exc:
                if exc.code not in ("vault_not_found", "secret_value_missing"):
                    raise
    return values


def stack_redactor(stack) -> Redactor:
    """A redactor with every secret value in scope for `stack` (see `_scope_versions`).
    Raises SecretBackendError when the values cannot be read."""
    from django.db import connection

    bound = _bound.get()
    if bound is not None and bound[0] == connection.schema_name and bound[1] == stack.pk:
        return bound[2]
    versions = _scope_versions(stack)
    key = (connection.schema_name, tuple(versions))
    return _memo.get(key, lambda: Redactor(_read_versions(versions)))


def _withheld(exc: Exception) -> str:
    message = getattr(exc, "message", "") or type(exc).__name__
    return WITHHELD % (
        _("the secrets could not be read to mask this text: %(why)s") % {"why": message}
    )


def _redactors_for(stack) -> list[Redactor]:
    """The stack's redactor and the active scope's (one pass when the active scope is the
    stack's own run, which holds its values already). Raises SecretBackendError."""
    from django.db import connection

    bound = _bound.get()
    if stack is None or (
        bound is not None and bound[0] == connection.schema_name and bound[1] == stack.pk
    ):
        redactors = [active()]
    else:
        redactors = [stack_redactor(stack), active()]
    return [redactor for redactor in redactors if redactor.values]


def redact_for_stack(stack, text: str) -> str:
    """`text` with every secret of `stack` masked (and those of the active scope). When the
    secrets cannot be read, the text is withheld, never stored or shown in clear."""
    if not text:
        return text
    try:
        redactors = _redactors_for(stack)
    except SecretBackendError as exc:
        logger.warning("text about stack %s withheld: %s", stack.pk, exc.message)
        return _withheld(exc)
    for redactor in redactors:
        text = redactor.redact(text, edges=True)
    return text


def redact_data_for_stack(stack, data):
    """`redact_for_stack` for every string of a JSON-like value."""
    if not data:
        return data
    try:
        redactors = _redactors_for(stack)
    except SecretBackendError as exc:
        logger.warning("data about stack %s withheld: %s", stack.pk, exc.message)
        return {"withheld": _withheld(exc)}
    for redactor in redactors:
        data = redactor.redact_data(data, edges=True)
    return data


@contextmanager
def stack_scope(stack):
    """For a whole deployment (and its rollback and outcome): the stack's secret values are
    masked in every log record and every redacted text of the block, and the chokepoints
    reuse this redactor instead of reading the values again. Falls through (each chokepoint
    then withholds what it cannot mask) when the values cannot be read."""
    from django.db import connection

    try:
        redactor = stack_redactor(stack)
    except SecretBackendError as exc:
        logger.warning("secrets of stack %s unreadable at the start of a run: %s", stack.pk, exc)
        yield
        return
    token = _bound.set((connection.schema_name, stack.pk, redactor))
    try:
        with secrets_in_scope(redactor.values):
            yield redactor
    finally:
        _bound.reset(token)


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


def organization_redactor() -> Redactor:
    """Every value the organisation has stored, of every secret and server credential, with
    their last few versions: what `mask_stored_text` looks for. SecretBackendError when a
    backend does not answer."""
    rows = (
        SecretVersion.objects.filter(secret__in=SecretRef.all_purposes.all())
        .order_by("secret_id", "-version")
        .values_list("secret_id", "secret__backend", "version")
    )
    kept, counts = [], {}
    for secret_id, backend, version in rows:
        counts[secret_id] = counts.get(secret_id, 0) + 1
        if counts[secret_id] <= MAX_VERSIONS:
            kept.append((secret_id, backend, version))
    return Redactor(_read_versions(kept))


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
