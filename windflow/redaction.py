"""Secret values never reach a log, an error body or the audit trail.

Code that holds secret values (the deploy worker after resolving them) runs inside
`secrets_in_scope(values)`; every log record (through `RedactingFilter`) and every string
passed to `redact()` in that scope has the values, and their usual encodings, replaced by
`[REDACTED]`. Encodings covered: the value itself, each of its lines, JSON and URL escaping,
and base64 (standard and URL-safe, padded or not, and embedded in a longer base64 text).
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
from collections.abc import Iterable
from contextlib import contextmanager
from urllib.parse import quote

MASK = "[REDACTED]"
MIN_LENGTH = 4  # shorter values would mask ordinary words; they are refused as secrets anyway


def _base64_forms(raw: bytes) -> set[str]:
    forms = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for offset in range(3):
            encoded = encode(b"\0" * offset + raw).decode()
            start = (0, 2, 3)[offset]  # characters that mix in the preceding bytes
            end = (8 * (offset + len(raw))) // 6  # characters that mix in the following ones
            core = encoded[start:end]
            if len(core) >= 6:
                forms.add(core)
        forms.add(encode(raw).decode())
        forms.add(encode(raw).decode().rstrip("="))
    return forms


def variants(value: str) -> set[str]:
    """Every form in which `value` could show up in text."""
    forms = {value, json.dumps(value)[1:-1], quote(value, safe="")}
    forms |= {line.strip() for line in value.splitlines()}
    forms |= _base64_forms(value.encode())
    return {form for form in forms if len(form) >= MIN_LENGTH}


class Redactor:
    def __init__(self, values: Iterable[str] = ()):
        self.values = frozenset(value for value in values if value and len(value) >= MIN_LENGTH)
        forms = set()
        for value in self.values:
            forms |= variants(value)
        # Longest first, so a value that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def merged(self, values: Iterable[str]) -> Redactor:
        return Redactor(self.values | set(values))


_NOTHING = Redactor()
_active: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "windflow_redactor", default=None
)


def active() -> Redactor:
    return _active.get() or _NOTHING


def redact(text: str) -> str:
    """Mask every secret value in scope (see `secrets_in_scope`)."""
    return active().redact(text)


@contextmanager
def secrets_in_scope(values: Iterable[str]):
    token = _active.set(active().merged(values))
    try:
        yield
    finally:
        _active.reset(token)


class RedactingFilter(logging.Filter):
    """On every handler: the message, its arguments and the traceback are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = active()
        if redactor.values:
            record.msg = redactor.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redactor.redact(record.exc_text)
        return True
