"""Compose files: load (safe YAML with limits), interpolate (``${VAR}`` and friends).

Pure Python, no Django. Every refusal is a :class:`ComposeError` (a ``ValueError`` and an
:class:`~windflow.engine.errors.EngineError`) with a message for people, the 1-based
``line`` / ``column`` when known, the ``path`` in the document (``services.web.image``)
and the list of :class:`Problem` s behind it (several when, for example, several
variables are missing).

- ``load``: :func:`~windflow.engine.compose.load.load_compose`.
- ``interpolate``: :func:`~windflow.engine.compose.interpolate.interpolate`,
  :func:`~windflow.engine.compose.interpolate.referenced_variables`.
- ``project``: :func:`~windflow.engine.compose.project.load_project` (a project folder:
  several files, ``include``, ``extends``, ``env_file``, into one merged compose text).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from windflow.engine.errors import EngineError

PathElement = str | int
Path = tuple[PathElement, ...]


@dataclass(frozen=True)
class Problem:
    """One finding about a compose file: ``severity`` is "error", "warning" or "info";
    ``line`` / ``column`` are 1-based (None when unknown); ``path`` is like
    ``services.web.environment.DB_URL``; ``code`` a stable id; ``hint`` a fix; ``file``
    the project-relative file the line is in (``compose.override.yaml``) when the finding
    comes from a project folder (:mod:`windflow.engine.compose.project`), else None."""

    severity: str
    message: str
    line: int | None = None
    path: str | None = None
    column: int | None = None
    code: str = ""
    hint: str = ""
    file: str | None = None

    @property
    def rule(self) -> str:
        """The finding's id (``compose-schema``, ``no-healthcheck``...): every id is listed
        in :mod:`windflow.engine.compose.rules`."""
        return self.code

    def as_dict(self) -> dict:
        return {
            "rule": self.code,
            "severity": self.severity,
            "message": self.message,
            "path": self.path,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }


def finding(rule: str, severity: str, message: str, path: str, hint: str = "") -> Problem:
    """A validation or lint Problem, by rule id."""
    return Problem(severity=severity, message=message, path=path, code=rule, hint=hint)


class ComposeError(EngineError, ValueError):
    """A compose file refused. ``.message`` for people, ``.line`` / ``.column`` (1-based,
    None when unknown), ``.path``, ``.code`` and ``.problems`` (at least one)."""

    default_hint = "Fix the compose file at the place shown and try again."
    missing_variables: tuple[str, ...] = ()

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        path: str | None = None,
        code: str = "compose-invalid",
        hint: str | None = None,
        problems: Sequence[Problem] | None = None,
    ):
        super().__init__(message, hint)
        self.line = line
        self.column = column
        self.path = path
        self.error_code = code
        if problems:
            self.problems: tuple[Problem, ...] = tuple(problems)
        else:
            self.problems = (Problem("error", message, line, path, column, code, self.hint),)

    @property
    def code(self) -> str:
        return self.error_code


PROJECT_MARKER = "x-windflow-project"
"""The top-level extension field :func:`~windflow.engine.compose.project.load_project`
writes in a merged project text (``{compose_files: [...]}``): the text comes from a project
folder, so ``build:``, ``env_file:`` and config or secret files have their files."""


def from_project(document) -> bool:
    """Whether a loaded compose document is the merged text of a project folder."""
    return isinstance(document, dict) and isinstance(document.get(PROJECT_MARKER), dict)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_\-]+\Z")


def format_path(path: Iterable[PathElement]) -> str:
    """``("services", "web", "ports", 0)`` -> ``services.web.ports[0]``; keys that are
    not plain (dots, spaces...) are quoted: ``labels["com.example.role"]``."""
    out = ""
    for element in path:
        if isinstance(element, int) and not isinstance(element, bool):
            out += f"[{element}]"
        else:
            key = str(element)
            if _PLAIN_KEY.match(key):
                out += f".{key}" if out else key
            else:
                out += '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'
    return out


__all__ = ["PROJECT_MARKER", "ComposeError", "Path", "Problem", "format_path", "from_project"]
