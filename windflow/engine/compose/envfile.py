"""Env files as compose reads them (``env_file:``, a project's ``.env``).

Pure Python, no Django.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from windflow.engine.compose import ComposeError
from windflow.engine.compose.interpolate import interpolate_string

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


class EnvFileError(ValueError):
    """A line of an env file that is not ``KEY=VALUE``: ``.line`` is 1-based."""

    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}


def parse_env_file(
    text: str, lookup: Mapping[str, str | None] | None = None
) -> dict[str, str | None]:
    """Read an env file as compose does: ``KEY=VALUE`` lines, ``#`` comments and blank
    lines skipped, an optional ``export`` prefix, values in single quotes (literal) or
    double quotes (``\\n`` escapes; both may span lines), unquoted values trimmed and cut at
    `` #``; ``${VAR}`` in unquoted and double-quoted values is interpolated from the keys
    above and `lookup`. A line holding only ``KEY`` takes the value from `lookup` (None
    when absent). Raises :class:`EnvFileError` with the line of a malformed entry."""
    lookup = lookup or {}
    values: dict[str, str | None] = {}
    lines = text.replace("\r\n", "\n").split("\n")
    number = 0
    while number < len(lines):
        raw = lines[number]
        number += 1
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not _ENV_KEY.match(key):
            shown = key if len(key) <= 40 else key[:37] + "..."
            raise EnvFileError(
                f"line {number}: {shown!r} is not a variable name (expected KEY=VALUE)", number
            )
        if not sep:
            values[key] = lookup.get(key)
            continue
        rest = rest.lstrip()
        start = number
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            while True:
                end = _closing_quote(body, quote)
                if end is not None:
                    break
                if number >= len(lines):
                    raise EnvFileError(
                        f"line {start}: the value of {key} opens a {quote} quote that is never "
                        "closed",
                        start,
                    )
                body += "\n" + lines[number]
                number += 1
            value = body[:end]
            trailing = body[end + 1 :].strip()
            if trailing and not trailing.startswith("#"):
                raise EnvFileError(
                    f"line {number}: unexpected text after the quoted value of {key}", number
                )
            if quote == '"':
                value = re.sub(
                    r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), value
                )
                value = _expand(value, values, lookup)
        else:
            value = re.split(r"\s#", rest, maxsplit=1)[0].strip()
            value = _expand(value, values, lookup)
        values[key] = value
    return values


def parse_raw_env_file(text: str) -> dict[str, str]:
    """Read an env file of ``format: raw`` as compose does: ``KEY=VALUE`` lines taken as
    they are (no quotes, no interpolation, no comment after the value); blank lines and
    ``#`` comment lines skipped, a line without ``=`` left out. Raises
    :class:`EnvFileError` for a name holding spaces."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if not _ENV_KEY.match(key):
            shown = key if len(key) <= 40 else key[:37] + "..."
            raise EnvFileError(
                f"line {number}: {shown!r} is not a variable name (expected KEY=VALUE)", number
            )
        values[key] = value
    return values


def _closing_quote(body: str, quote: str) -> int | None:
    index = 0
    while index < len(body):
        if quote == '"' and body[index] == "\\":
            index += 2
            continue
        if body[index] == quote:
            return index
        index += 1
    return None


def _expand(value: str, known: Mapping, lookup: Mapping) -> str:
    if "$" not in value:
        return value
    scope = dict(lookup)
    scope.update(known)
    try:
        return interpolate_string(value, scope, strict=False)
    except ComposeError:
        return value


__all__ = ["EnvFileError", "parse_env_file", "parse_raw_env_file"]
