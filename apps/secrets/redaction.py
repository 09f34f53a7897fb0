"""Redaction of what is stored or shown about a stack: every secret value in scope for it
(and their encodings, see windflow.redaction) is masked at the chokepoints that write or show
text (deployment records, notifications, audit entries, container logs). Kept apart from
`services` so that the audit service, which every service calls, can mask without importing
them back."""

from __future__ import annotations

import contextvars
import logging
from contextlib import contextmanager

from django.utils.translation import gettext as _

from windflow.redaction import Memo, Redactor, active, secrets_in_scope

from .backends import SecretBackendError, backend_for
from .models import SecretRef, SecretVersion

logger = logging.getLogger(__name__)

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
    rows = SecretVersion.objects.filter(
        Q(secret__environment=None) | Q(secret__environment_id__in=environments)
    )
    return _latest(rows)


def _latest(versions) -> list[tuple[int, str, int]]:
    """(secret id, backend, version) of the last MAX_VERSIONS versions of each secret."""
    rows = versions.order_by("secret_id", "-version").values_list(
        "secret_id", "secret__backend", "version"
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


def organization_redactor() -> Redactor:
    """Every value the organisation has stored, of every secret and server credential, with
    their last few versions: what `mask_stored_text` looks for. SecretBackendError when a
    backend does not answer."""
    versions = SecretVersion.objects.filter(secret__in=SecretRef.all_purposes.all())
    return Redactor(_read_versions(_latest(versions)))
