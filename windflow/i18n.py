"""The engine's texts in the reader's language (see windflow.engine.text): the apps call
these where a finding or a diagnosis leaves for a page, a form or the API."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from django.utils.translation import gettext

from windflow.engine.compose import Problem
from windflow.engine.text import Text


def translated(text: str) -> str:
    """`text` in the active language: a :class:`Text` through its template and arguments,
    a fixed text (a hint) as it is. A text the catalogue does not hold stays English."""
    if isinstance(text, Text):
        template = gettext(text.template)
        args = {  # a text inside a text (a path's wording) is translated too
            key: translated(value) if isinstance(value, Text) else value
            for key, value in text.args.items()
        }
        try:
            return template % args if args else template
        except (KeyError, TypeError, ValueError):
            return str(text)  # a translation whose placeholders do not fit: English
    return gettext(text) if text else text


def translated_problem(problem: Problem) -> Problem:
    """`problem` with its message and its hint in the active language."""
    return replace(problem, message=translated(problem.message), hint=translated(problem.hint))


def translated_diagnosis(diagnosis: dict) -> dict:
    """A stored diagnosis (``Diagnosis.as_dict()``) with its summary and hint in the active
    language: the summary from the template and arguments stored beside it."""
    if not diagnosis:
        return diagnosis
    out = dict(diagnosis)
    text = diagnosis.get("text") or {}
    if isinstance(text, dict) and isinstance(text.get("template"), str):
        args = text.get("args") if isinstance(text.get("args"), dict) else {}
        # A stored template and arguments that do not fit leave the English summary.
        with contextlib.suppress(KeyError, TypeError, ValueError):
            out["summary"] = translated(Text(text["template"], **args))
    if isinstance(diagnosis.get("hint"), str):
        out["hint"] = translated(diagnosis["hint"])
    return out


def translated_reason(reason: str, diagnosis: dict) -> str:
    """A deployment's reason in the active language when it is its diagnosis's summary (as
    the runner writes it); another reason as it was written."""
    if reason and diagnosis and reason == diagnosis.get("summary"):
        return translated_diagnosis(diagnosis)["summary"]
    return reason


__all__ = ["translated", "translated_diagnosis", "translated_problem", "translated_reason"]
