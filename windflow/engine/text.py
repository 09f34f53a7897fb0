"""Texts for people, translatable although the engine imports no Django.

A text is an English template marked with :func:`gettext_noop` (so that ``makemessages``
collects it into ``locale/``) and its arguments. :class:`Text` is a ``str``: the English
text, what logs, tests and comparisons read. It also keeps its template and arguments, so
that the apps say it in the reader's language (:func:`windflow.i18n.translated`:
``gettext(template) % args``). A fixed text (a hint) needs no :class:`Text`: marked with
:func:`gettext_noop`, it is translated as it is.
"""

from __future__ import annotations

from typing import Any


def gettext_noop(message: str) -> str:
    """Mark `message` for translation (``makemessages`` looks for this name); it returns
    the message unchanged."""
    return message


class Text(str):
    """``Text(gettext_noop("exited with code %(code)s"), code=3)`` reads
    "exited with code 3" and keeps ``template`` and ``args`` for a translation."""

    template: str
    args: dict[str, Any]

    def __new__(cls, template: str, **args: Any) -> Text:
        text = super().__new__(cls, template % args if args else template)
        text.template = template
        text.args = args
        return text

    def __reduce__(self):  # copies and pickles keep the text, its template and arguments
        return _text, (self.template, self.args)


def _text(template: str, args: dict[str, Any]) -> Text:
    return Text(template, **args)


__all__ = ["Text", "gettext_noop"]
