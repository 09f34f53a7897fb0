"""Secret values never reach a log, an error body or the audit trail.

Code that holds secret values (the deploy worker after resolving them) runs inside
`secrets_in_scope(values)`; every log record (through `RedactingFilter`) and every string
passed to `redact()` in that scope has the values, and their usual encodings, replaced by
`[REDACTED]`. Encodings covered: the value itself, each of its lines, JSON and URL escaping,
and base64 (standard and URL-safe, padded or not, and embedded in a longer base64 text).

What WindFlow stores or shows about a stack is masked with that stack's secrets wherever it
is written (see `apps.secrets.redaction.redact_for_stack`), whether or not a scope is active:
a `Redactor` is built from the values, used, and dropped. `Memo` keeps a few of them in this
process for some seconds (never in Redis or the database), keyed by what they were built
from, so that a page of log lines does not decrypt every secret once per line.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Hashable, Iterable
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


EDGE_LENGTH = 8  # a cut value shorter than this at a text's edge is not worth a guess
ELLIPSIS = "…"


class Redactor:
    def __init__(self, values: Iterable[str] = ()):
        self.values = frozenset(value for value in values if value and len(value) >= MIN_LENGTH)
        forms = set()
        for value in self.values:
            forms |= variants(value)
        # Longest first, so a value that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        self._forms = [form for form in ordered if len(form) > EDGE_LENGTH]
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str, *, edges: bool = False) -> str:
        """`text` with every form of every value masked; with `edges`, also a value cut at
        the start or the end of the text (a bounded reason, a log tail)."""
        if self._pattern is None or not text:
            return text
        text = self._pattern.sub(MASK, text)
        return self._edges(text) if edges else text

    def _edges(self, text: str) -> str:
        """A text cut to a length (a bounded reason, the tail of a log) may begin with the
        end of a value, or end with its beginning: those pieces are masked too."""
        body = text.rstrip().removesuffix(ELLIPSIS).rstrip()
        for form in self._forms:
            tail = body[-(len(form) - 1) :]
            at = tail.find(form[:EDGE_LENGTH])
            while at != -1:
                if form.startswith(tail[at:]):
                    cut = len(body) - len(tail) + at
                    text = text[:cut] + MASK + text[len(body) :]
                    body = text[:cut]
                    break
                at = tail.find(form[:EDGE_LENGTH], at + 1)
        start = len(text) - len(text.lstrip().removeprefix(ELLIPSIS).lstrip())
        for form in self._forms:
            head = text[start : start + len(form) - 1]
            at = head.rfind(form[-EDGE_LENGTH:])
            while at != -1:
                end = at + EDGE_LENGTH
                if form.endswith(head[:end]):
                    text = text[:start] + MASK + text[start + end :]
                    break
                at = head.rfind(form[-EDGE_LENGTH:], 0, at + EDGE_LENGTH - 1)
        return text

    def merged(self, values: Iterable[str]) -> Redactor:
        return Redactor(self.values | set(values))

    def redact_data(self, data, *, edges: bool = False):
        """`redact` applied to every string (keys too) of a JSON-like value."""
        if self._pattern is None:
            return data
        if isinstance(data, str):
            return self.redact(data, edges=edges)
        if isinstance(data, dict):
            return {
                (self.redact(key) if isinstance(key, str) else key): self.redact_data(
                    value, edges=edges
                )
                for key, value in data.items()
            }
        if isinstance(data, list | tuple):
            return [self.redact_data(item, edges=edges) for item in data]
        return data


class Memo:
    """A few redactors for a few seconds, in this process only (their values are secrets:
    they never go to a shared cache). Keys say what a redactor was built from (for example
    the secret versions in scope), so a rotated secret builds a new one at once."""

    def __init__(self, *, seconds: float = 10.0, size: int = 64):
        self.seconds, self.size = seconds, size
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Redactor]] = {}

    def get(self, key: Hashable, build: Callable[[], Redactor]) -> Redactor:
        now = time.monotonic()
        with self._lock:
            found = self._entries.get(key)
            if found is not None and now - found[0] < self.seconds:
                return found[1]
        redactor = build()
        with self._lock:
            for stale in [k for k, (at, _r) in self._entries.items() if now - at >= self.seconds]:
                del self._entries[stale]
            if len(self._entries) >= self.size:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = (now, redactor)
        return redactor

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_NOTHING = Redactor()
_active: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "windflow_redactor", default=None
)


def active() -> Redactor:
    return _active.get() or _NOTHING


def redact(text: str) -> str:
    """Mask every secret value in scope (see `secrets_in_scope`)."""
    return active().redact(text)


# Every scope open in this process, whatever its thread: log records are masked with all of
# them, because a deployment's driver logs from threads of its own (pulls, services), which
# do not inherit the scope's context.
_open_scopes: dict[object, Redactor] = {}
_open_lock = threading.Lock()


def open_scopes() -> list[Redactor]:
    with _open_lock:
        return list(_open_scopes.values())


@contextmanager
def secrets_in_scope(values: Iterable[str]):
    redactor = active().merged(values)
    token = _active.set(redactor)
    key = object()
    with _open_lock:
        _open_scopes[key] = redactor
    try:
        yield
    finally:
        with _open_lock:
            _open_scopes.pop(key, None)
        _active.reset(token)


def redact_data(data):
    """`redact` for every string of a JSON-like value."""
    return active().redact_data(data)


class RedactingFilter(logging.Filter):
    """On every handler: the message, its arguments and the traceback are masked, with the
    values of this context's scope and of every scope open in the process (any thread)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = [active(), *open_scopes()]
        redactors = [r for i, r in enumerate(redactors) if r.values and r not in redactors[:i]]
        if redactors:
            message = record.getMessage()
            for redactor in redactors:
                message = redactor.redact(message)
            record.msg, record.args = message, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                for redactor in redactors:
                    record.exc_text = redactor.redact(record.exc_text)
        return True
