"""Load a compose file: YAML, safely, with limits.

Two passes. First the event stream (libyaml when present) is scanned without building
anything: size, nesting depth, alias expansion (a "billion laughs" file is refused after
a bounded amount of work and memory), tags, duplicate keys, anchors, one document; it
also records where each value starts (path -> line, column) for later messages. Only
then is the document built, with a YAML 1.2 core schema as Docker Compose reads it
(``22:22`` and ``yes`` stay strings, ``<<`` merge keys work), so the Python objects
match what ``docker compose`` sees.

Limits: :data:`MAX_BYTES`, :data:`MAX_DEPTH`, :data:`MAX_ALIAS_NODES`.
"""

from __future__ import annotations

import math
import re

import yaml

try:
    from yaml._yaml import CParser
except ImportError:  # pragma: no cover
    CParser = None
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    DocumentStartEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceStartEvent,
)
from yaml.resolver import BaseResolver

from windflow.engine.compose import ComposeError, Path, format_path

MAX_BYTES = 1024 * 1024
"""A compose file larger than this (UTF-8 bytes) is refused."""
MAX_DEPTH = 64
"""Mappings and sequences nested deeper than this (aliases expanded) are refused."""
MAX_ALIAS_NODES = 100_000
"""Total nodes that aliases (``*name``) may add to the document once expanded."""

_CORE = "tag:yaml.org,2002:"
ALLOWED_TAGS = frozenset(
    {None, "!"}
    | {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}
)

Positions = dict[Path, tuple[int, int]]


class _CoreResolver(BaseResolver):
    """YAML 1.2 core schema (what Compose's Go YAML reads), plus ``<<`` merge keys."""


_CoreResolver.add_implicit_resolver(
    _CORE + "null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_CoreResolver.add_implicit_resolver(
    _CORE + "bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
_CoreResolver.add_implicit_resolver(
    _CORE + "int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
_CoreResolver.add_implicit_resolver(
    _CORE + "float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+.0123456789"),
)
_CoreResolver.add_implicit_resolver(_CORE + "merge", re.compile(r"^<<$"), ["<"])


class _CoreConstructor(SafeConstructor):
    """SafeConstructor restricted to the core tags; anything else is refused."""

    yaml_constructors: dict = {}

    def construct_core_int(self, node):
        value = self.construct_scalar(node)
        try:
            if value.startswith("0o"):
                return int(value[2:], 8)
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        except ValueError as error:  # e.g. more digits than Python converts
            raise ConstructorError(
                None, None, f"integer not supported: {error}", node.start_mark
            ) from None

    def construct_core_float(self, node):
        value = self.construct_scalar(node).lower()
        if value in (".inf", "+.inf"):
            return math.inf
        if value == "-.inf":
            return -math.inf
        if value == ".nan":
            return math.nan
        return float(value)


for _tag, _method in (
    ("null", SafeConstructor.construct_yaml_null),
    ("bool", SafeConstructor.construct_yaml_bool),
    ("int", _CoreConstructor.construct_core_int),
    ("float", _CoreConstructor.construct_core_float),
    ("str", SafeConstructor.construct_yaml_str),
    ("seq", SafeConstructor.construct_yaml_seq),
    ("map", SafeConstructor.construct_yaml_map),
):
    _CoreConstructor.add_constructor(_CORE + _tag, _method)
_CoreConstructor.add_constructor(None, SafeConstructor.construct_undefined)

if CParser is not None:
    _EventLoader = yaml.CSafeLoader

    class _Loader(CParser, _CoreConstructor, _CoreResolver):
        def __init__(self, stream):
            CParser.__init__(self, stream)
            _CoreConstructor.__init__(self)
            _CoreResolver.__init__(self)

else:  # pragma: no cover - libyaml is normally there
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    _EventLoader = yaml.SafeLoader

    class _Loader(Reader, Scanner, Parser, Composer, _CoreConstructor, _CoreResolver):
        def __init__(self, stream):
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _CoreConstructor.__init__(self)
            _CoreResolver.__init__(self)


def load_compose(text: str | bytes) -> dict:
    """Parse a compose file into plain Python (dict / list / str / int / float / bool /
    None). Raises :class:`ComposeError` (with line and column when known) for a file too
    large, malformed YAML, an alias bomb, nesting deeper than :data:`MAX_DEPTH`, a top
    level that is not a mapping, duplicate keys, tags other than the core ones, or more
    than one YAML document."""
    return load_compose_with_positions(text)[0]


def load_compose_with_positions(text: str | bytes) -> tuple[dict, Positions]:
    """Like :func:`load_compose`, also returning where each value starts:
    ``{("services", "web", "image"): (line, column)}`` (1-based; list items by index).
    Values that come from an alias or a ``<<`` merge have no entry of their own: look up
    the nearest enclosing path."""
    if isinstance(text, bytearray | memoryview):
        text = bytes(text)
    if not isinstance(text, str | bytes):
        raise TypeError(f"load_compose() takes str or bytes, not {type(text).__name__}")
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise ComposeError(
            f"The compose file is too large: {size:,} bytes, the limit is {MAX_BYTES:,} "
            "bytes (1 MiB).",
            code="compose-too-large",
            hint="Split it, or move large content (scripts, configs) into files or images.",
        )
    try:
        positions = _scan(text)
        loader = _Loader(text)
        try:
            document = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        raise _from_marked(error) from None
    except yaml.reader.ReaderError as error:
        newline = "\n" if isinstance(text, str) else b"\n"
        line = text[: error.position].count(newline) + 1
        raise ComposeError(
            f"The compose file is not valid text at line {line}: {error.reason}.",
            line=line,
            code="yaml-encoding",
            hint="Save the file as UTF-8 text without control characters.",
        ) from None
    except yaml.YAMLError as error:  # pragma: no cover - every other kind is marked
        raise ComposeError(f"Invalid YAML: {error}", code="yaml-syntax") from None
    if document is None:
        raise ComposeError(
            "The compose file is empty.",
            code="compose-empty",
            hint="Start with a top-level 'services:' mapping.",
        )
    if not isinstance(document, dict):
        line, column = positions.get((), (None, None))
        kind = "a list" if isinstance(document, list) else f"a single value ({document!r:.40})"
        raise ComposeError(
            f"The top level of a compose file must be a mapping (services:, networks:, "
            f"volumes: ...), not {kind}" + (f" (line {line})." if line else "."),
            line=line,
            column=column,
            code="compose-not-mapping",
            hint="Start with a top-level 'services:' mapping.",
        )
    return document, positions


def _from_marked(error: yaml.MarkedYAMLError) -> ComposeError:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    problem = (error.problem or error.context or "invalid YAML").strip()
    message = "Invalid YAML"
    if line is not None:
        message += f" at line {line}, column {column}"
    message += f": {problem}"
    if error.context and error.problem and error.context_mark is not None:
        message += (
            f" ({error.context} at line {error.context_mark.line + 1}, "
            f"column {error.context_mark.column + 1})"
        )
    return ComposeError(
        message + ".",
        line=line,
        column=column,
        code="yaml-syntax",
        hint="Check the indentation (spaces, not tabs), the colons and the quotes there.",
    )


class _Frame:
    __slots__ = (
        "anchor",
        "expect_key",
        "height",
        "index",
        "key",
        "keys",
        "mapping",
        "path",
        "size",
    )

    def __init__(self, mapping: bool, path: Path, anchor: str | None):
        self.mapping = mapping
        self.path = path
        self.anchor = anchor
        self.size = 1
        self.height = 1
        self.index = 0
        self.expect_key = True
        self.key: str | None = None
        self.keys: dict[str, int] = {}


def _refuse(message: str, event, code: str, hint: str = "", path: Path | None = None):
    mark = event.start_mark
    line = mark.line + 1 if mark is not None else None
    column = mark.column + 1 if mark is not None else None
    where = f" (line {line}, column {column})" if line is not None else ""
    raise ComposeError(
        message + where + ".",
        line=line,
        column=column,
        path=format_path(path) if path else None,
        code=code,
        hint=hint or None,
    )


def _scan(text: str | bytes) -> Positions:
    """Walk the YAML events once, enforcing the limits; return the positions."""
    positions: Positions = {}
    stack: list[_Frame] = []
    anchors: dict[str, tuple[int, int, str | None]] = {}  # name -> size, height, scalar
    anchor_lines: dict[str, int] = {}
    open_anchors: set[str] = set()
    alias_nodes = 0
    documents = 0

    for event in yaml.parse(text, Loader=_EventLoader):
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                _refuse(
                    "A compose file holds one YAML document; a second one starts here",
                    event,
                    "compose-multiple-documents",
                    "Remove the '---' separator and merge the documents, or use separate files.",
                )
            continue
        if isinstance(event, CollectionEndEvent):
            frame = stack.pop()
            if frame.anchor is not None:
                anchors[frame.anchor] = (frame.size, frame.height, None)
                open_anchors.discard(frame.anchor)
            if stack:
                _value_done(stack[-1], frame.size, frame.height)
            continue
        if not isinstance(event, ScalarEvent | AliasEvent | SequenceStartEvent | MappingStartEvent):
            continue

        parent = stack[-1] if stack else None
        is_key = parent is not None and parent.mapping and parent.expect_key

        if not isinstance(event, AliasEvent) and event.tag not in ALLOWED_TAGS:
            _refuse(
                f"The YAML tag {event.tag!r} is not supported in a compose file",
                event,
                "yaml-tag",
                "Remove the tag: only plain YAML values (strings, numbers, booleans, "
                "null, lists, mappings) are allowed.",
                parent.path if is_key else _child_path(parent),
            )

        anchor = getattr(event, "anchor", None)
        if anchor is not None and not isinstance(event, AliasEvent):
            if anchor in anchor_lines:
                _refuse(
                    f"The anchor &{anchor} is defined a second time, first at line "
                    f"{anchor_lines[anchor]}",
                    event,
                    "yaml-duplicate-anchor",
                    "Give each anchor a different name.",
                )
            anchor_lines[anchor] = event.start_mark.line + 1 if event.start_mark else 0

        if isinstance(event, AliasEvent):
            name = event.anchor
            if name not in anchors:
                if name in open_anchors:
                    _refuse(
                        f"The alias *{name} refers to a node that contains it (a recursive alias)",
                        event,
                        "yaml-recursive-alias",
                    )
                _refuse(
                    f"The alias *{name} refers to no anchor &{name} defined before it",
                    event,
                    "yaml-unknown-alias",
                )
            size, height, scalar = anchors[name]
            alias_nodes += size
            if alias_nodes > MAX_ALIAS_NODES:
                _refuse(
                    f"Aliases expand to more than {MAX_ALIAS_NODES:,} values; refusing the "
                    "file (a 'billion laughs' alias bomb?)",
                    event,
                    "yaml-alias-bomb",
                    "Use fewer or smaller anchors and aliases.",
                )
            if len(stack) + height > MAX_DEPTH:
                _refuse(
                    f"The alias *{name} nests values deeper than {MAX_DEPTH} levels",
                    event,
                    "yaml-too-deep",
                )
            if is_key:
                if scalar is None:
                    _refuse(
                        "A mapping key must be a plain value, not a list or mapping",
                        event,
                        "yaml-complex-key",
                        path=parent.path,
                    )
                _key_seen(parent, scalar, event)
            else:
                path = _child_path(parent)
                _mark(positions, path, event)
                if parent is not None:
                    _value_done(parent, size, height)
            continue

        if isinstance(event, ScalarEvent):
            if event.anchor is not None:
                anchors[event.anchor] = (1, 0, event.value)
            if is_key:
                _key_seen(parent, event.value, event)
            else:
                _mark(positions, _child_path(parent), event)
                if parent is not None:
                    _value_done(parent, 1, 0)
            continue

        # a mapping or sequence starts
        if is_key:
            _refuse(
                "A mapping key must be a plain value, not a list or mapping",
                event,
                "yaml-complex-key",
                path=parent.path,
            )
        if len(stack) + 1 > MAX_DEPTH:
            _refuse(
                f"Values are nested deeper than {MAX_DEPTH} levels",
                event,
                "yaml-too-deep",
                "A compose file never needs this much nesting.",
            )
        path = _child_path(parent)
        _mark(positions, path, event)
        if event.anchor is not None:
            anchors.pop(event.anchor, None)
            open_anchors.add(event.anchor)
        stack.append(_Frame(isinstance(event, MappingStartEvent), path, event.anchor))
    return positions


def _child_path(parent: _Frame | None) -> Path:
    if parent is None:
        return ()
    return (*parent.path, parent.key if parent.mapping else parent.index)


def _mark(positions: Positions, path: Path, event) -> None:
    mark = event.start_mark
    if mark is not None:
        positions[path] = (mark.line + 1, mark.column + 1)


def _key_seen(parent: _Frame, key: str, event) -> None:
    line = event.start_mark.line + 1 if event.start_mark is not None else 0
    first = parent.keys.get(key)
    if first is not None:
        where = f"in {format_path(parent.path)}" if parent.path else "at the top level"
        _refuse(
            f'Duplicate key "{key}" {where}, first at line {first}',
            event,
            "yaml-duplicate-key",
            "Each key may appear once in a mapping: remove or merge the duplicate.",
            (*parent.path, key),
        )
    parent.keys[key] = line
    parent.key = key
    parent.size += 1
    parent.expect_key = False


def _value_done(parent: _Frame, size: int, height: int) -> None:
    parent.size += size
    if height + 1 > parent.height:
        parent.height = height + 1
    if parent.mapping:
        parent.expect_key = True
    else:
        parent.index += 1
