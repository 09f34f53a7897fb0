"""The API's request parsers: the usual JSON, form and multipart parsers, which also refuse
what no field of WindFlow accepts and what would otherwise end in a 500 deep inside:
a NUL character in any string (PostgreSQL cannot store it), and JSON nested deeper than
MAX_DEPTH (Python's decoder gives up with a RecursionError around 1,000 levels)."""

from __future__ import annotations

import codecs
import json
import re

from django.conf import settings
from django.utils.translation import gettext as _
from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 64
# A JSON string literal, or one bracket: strings are skipped, brackets counted.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class BadInput(ParseError):
    """A 400 whose `code` names the rule."""

    def __init__(self, message: str, code: str):
        super().__init__(message, code=code)


def nul_refusal() -> BadInput:
    return BadInput(_("Text may not contain NUL characters (\\u0000)."), code="nul_character")


def depth_refusal() -> BadInput:
    return BadInput(
        _("JSON may not be nested more than %(n)d levels deep.") % {"n": MAX_DEPTH},
        code="too_deep",
    )


def check_depth(text: str, limit: int = MAX_DEPTH) -> None:
    """Refuse `text` when its arrays and objects nest deeper than `limit`, before decoding."""
    depth = 0
    for match in _TOKENS.finditer(text):
        found = match.group()
        if found in "[{":
            depth += 1
            if depth > limit:
                raise depth_refusal()
        elif found in "]}":
            depth -= 1


def check_strings(data) -> None:
    """Refuse decoded data holding a NUL in any string (keys included). Iterative: the
    depth is bounded already, but a walk needs no recursion."""
    pending = [data]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise nul_refusal()
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, (list, tuple)):
            pending.extend(value)


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.getreader(encoding)(stream).read()
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from exc
        check_depth(text)
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise ParseError(_("JSON parse error - %(error)s") % {"error": exc}) from exc
        check_strings(data)
        return data


def _no_constant(name):
    raise ValueError(f'"{name}" is not valid JSON')


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        check_strings([*data.keys(), *(v for values in data.lists() for v in values[1])])
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        data = result.data
        check_strings([*data.keys(), *(v for values in data.lists() for v in values[1])])
        return result
