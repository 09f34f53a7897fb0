"""Compose variable interpolation, as the Compose Specification defines it.

In every string value (keys are left alone), recursively:

- ``$VAR`` and ``${VAR}``: the value of VAR (a name is ``[A-Za-z_][A-Za-z0-9_]*``);
- ``${VAR:-default}``: default when VAR is unset or empty; ``${VAR-default}``: when unset;
- ``${VAR:?message}``: an error with that message when VAR is unset or empty;
  ``${VAR?message}``: when unset;
- ``${VAR:+alt}``: alt when VAR is set and not empty, else empty; ``${VAR+alt}``: when set;
- ``$$``: a literal ``$``. A ``$`` followed by anything else (``$1``, ``$ ``) is kept;
- defaults, alternatives and messages are interpolated too: ``${A:-${B:-x}}``.

Unlike ``docker compose``, which warns and uses an empty string, a variable that is
not set and has no default is an error (``strict=True``): every such variable, every
``:?`` failure and every malformed ``${...}`` in the document is collected, and a single
:class:`ComposeError` lists them all with their paths (and lines when positions from
:func:`~windflow.engine.compose.load.load_compose_with_positions` are given).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from windflow.engine.compose import ComposeError, Path, Problem, format_path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r":?[-+?]")


@dataclass(frozen=True)
class _Var:
    name: str
    operator: str | None = None  # None, ":-", "-", ":?", "?", ":+", "+"
    argument: tuple = field(default=())  # parts: str | _Var


class _SyntaxProblem(Exception):
    pass


def _parse(text: str, start: int = 0, end: int | None = None) -> tuple:
    """Parse text[start:end] into parts (str literals and _Var)."""
    end = len(text) if end is None else end
    parts: list = []
    literal: list[str] = []
    i = start
    while i < end:
        dollar = text.find("$", i, end)
        if dollar < 0:
            literal.append(text[i:end])
            break
        literal.append(text[i:dollar])
        nxt = text[dollar + 1] if dollar + 1 < end else ""
        if nxt == "$":
            literal.append("$")
            i = dollar + 2
        elif nxt == "{":
            close = _closing_brace(text, dollar + 2, end)
            name = _NAME.match(text, dollar + 2, close)
            if name is None:
                raise _SyntaxProblem(_invalid(text, dollar, close, "a variable name"))
            operator = None
            argument: tuple = ()
            if name.end() != close:
                op = _OPERATOR.match(text, name.end(), close)
                if op is None:
                    raise _SyntaxProblem(
                        _invalid(
                            text,
                            dollar,
                            close,
                            'one of ":-", "-", ":?", "?", ":+", "+" or "}" after the name',
                        )
                    )
                operator = op.group()
                argument = _parse(text, op.end(), close)
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Var(name.group(), operator, argument))
            i = close + 1
        else:
            name = _NAME.match(text, dollar + 1, end)
            if name is None:  # "$1", "$ ", a trailing "$": kept as they are
                literal.append("$")
                i = dollar + 1
                continue
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_Var(name.group()))
            i = name.end()
    if literal:
        joined = "".join(literal)
        if joined:
            parts.append(joined)
    return tuple(parts)


def _closing_brace(text: str, start: int, end: int) -> int:
    depth = 1
    i = start
    while i < end:
        if text.startswith("$$", i):
            i += 2
        elif text.startswith("${", i):
            depth += 1
            i += 2
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
            i += 1
        else:
            i += 1
    raise _SyntaxProblem(f'"${{" at character {start - 1} has no closing "}}" in {_quote(text)}')


def _invalid(text: str, dollar: int, close: int, expected: str) -> str:
    return (
        f'invalid interpolation "{text[dollar : close + 1]}" in {_quote(text)}: expected {expected}'
    )


def _quote(text: str) -> str:
    return '"' + (text if len(text) <= 80 else text[:77] + "...") + '"'


_HINT_SYNTAX = (
    "Write ${NAME}, ${NAME:-default}, ${NAME:?message} or $NAME (a name is letters, "
    'digits and "_", not starting with a digit); write $$ for a literal "$".'
)


class _Context:
    def __init__(
        self,
        variables: Mapping[str, str | None],
        strict: bool,
        positions: Mapping[Path, tuple[int, int]] | None,
    ):
        self.variables = variables
        self.strict = strict
        self.positions = positions or {}
        self.problems: list[Problem] = []
        self.missing: dict[str, list[str]] = {}

    def locate(self, path: Path) -> tuple[int | None, int | None]:
        candidates = [path, tuple(str(p) if not isinstance(p, int) else p for p in path)]
        for candidate in candidates:
            while True:
                if candidate in self.positions:
                    return self.positions[candidate]
                if not candidate:
                    break
                candidate = candidate[:-1]
        return None, None

    def problem(self, message: str, path: Path, code: str, hint: str) -> None:
        line, column = self.locate(path)
        where = format_path(path) or "the document"
        if line is not None:
            where += f" (line {line})"
        self.problems.append(
            Problem("error", f"{message}, in {where}", line, format_path(path), column, code, hint)
        )


def _evaluate(parts: tuple, context: _Context, path: Path) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        value = context.variables.get(part.name)
        is_set = value is not None
        if is_set and not isinstance(value, str):
            value = str(value)
        op = part.operator
        if op is None:
            if not is_set:
                if context.strict:
                    line, _ = context.locate(path)
                    where = format_path(path) or "the document"
                    if line is not None:
                        where += f" line {line}"
                    context.missing.setdefault(part.name, []).append(where)
                    context.problem(
                        f'variable "{part.name}" is not set',
                        path,
                        "variable-missing",
                        f"Set {part.name} in the stack's variables, or give a "
                        f"default: ${{{part.name}:-value}}.",
                    )
                value = ""
            out.append(value)
        elif op in (":-", "-"):
            use_default = not is_set or (op == ":-" and value == "")
            out.append(_evaluate(part.argument, context, path) if use_default else value)
        elif op in (":?", "?"):
            if not is_set or (op == ":?" and value == ""):
                message = _evaluate(part.argument, context, path)
                state = "is not set" if not is_set else "is empty"
                text = f'required variable "{part.name}" {state}'
                if message:
                    text += f": {message}"
                context.problem(
                    text, path, "variable-required", f"Set {part.name} in the stack's variables."
                )
                out.append("")
            else:
                out.append(value)
        else:  # ":+", "+"
            use_alt = is_set and (op == "+" or value != "")
            out.append(_evaluate(part.argument, context, path) if use_alt else "")
    return "".join(out)


def _walk(value, context: _Context, path: Path):
    if isinstance(value, str):
        if "$" not in value:
            return value
        try:
            parts = _parse(value)
        except _SyntaxProblem as error:
            context.problem(str(error), path, "interpolation-syntax", _HINT_SYNTAX)
            return value
        return _evaluate(parts, context, path)
    if isinstance(value, dict):
        return {key: _walk(item, context, (*path, key)) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, context, (*path, index)) for index, item in enumerate(value)]
    return value


def interpolate(
    document: dict,
    variables: Mapping[str, str | None],
    *,
    strict: bool = True,
    positions: Mapping[Path, tuple[int, int]] | None = None,
) -> dict:
    """Return a copy of ``document`` with every string value interpolated from
    ``variables`` (a value of None counts as unset). Raises :class:`ComposeError` listing
    every problem: variables not set without a default (unless ``strict=False``, which
    substitutes "" like ``docker compose``), ``:?`` failures and malformed ``${...}``.
    ``positions`` (from ``load_compose_with_positions``) adds line numbers."""
    result, error = interpolate_checked(document, variables, strict=strict, positions=positions)
    if error is not None:
        raise error
    return result


def interpolate_checked(
    document: dict,
    variables: Mapping[str, str | None],
    *,
    strict: bool = True,
    positions: Mapping[Path, tuple[int, int]] | None = None,
) -> tuple[dict, ComposeError | None]:
    """As :func:`interpolate`, but the error is returned beside the result instead of
    raised, so that the rest of the file can still be checked: each value in error is
    left as it could be made (a missing variable reads "")."""
    context = _Context(variables, strict, positions)
    result = _walk(document, context, ())
    return result, (_error(context) if context.problems else None)


def _error(context: _Context) -> ComposeError:
    problems = context.problems
    first = problems[0]
    lines: list[str] = []
    if context.missing:
        names = sorted(context.missing)
        lines.append(
            f"{len(names)} variable{'s' if len(names) > 1 else ''} not set: "
            + "; ".join(
                f"{name} (in {', '.join(_dedupe(context.missing[name]))})" for name in names
            )
            + "."
        )
    lines.extend(p.message + "." for p in problems if p.code != "variable-missing")
    error = ComposeError(
        " ".join(lines),
        line=first.line,
        column=first.column,
        path=first.path,
        code=first.code if len({p.code for p in problems}) == 1 else "interpolation",
        hint=(
            first.hint
            if len(problems) == 1
            else "Set the variables in the stack's variables, or give defaults: ${NAME:-value}."
        ),
        problems=problems,
    )
    error.missing_variables = tuple(sorted(context.missing))
    return error


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def referenced_variables(document) -> set[str]:
    """Every variable name the document's string values refer to, including those in
    defaults and alternatives (``${A:-${B}}`` -> {"A", "B"}). Malformed ``${...}`` are
    skipped (``interpolate`` reports them); ``$$`` is not a reference."""
    names: set[str] = set()

    def collect(parts: tuple) -> None:
        for part in parts:
            if isinstance(part, _Var):
                names.add(part.name)
                collect(part.argument)

    def walk(value) -> None:
        if isinstance(value, str):
            if "$" in value:
                with contextlib.suppress(_SyntaxProblem):
                    collect(_parse(value))
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(document)
    return names


def interpolate_string(
    text: str, variables: Mapping[str, str | None], *, strict: bool = True
) -> str:
    """Interpolate one string (same rules and errors as :func:`interpolate`)."""
    return interpolate({"value": text}, variables, strict=strict)["value"]
