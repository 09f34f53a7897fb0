"""Helpers for the files WindFlow exports (CSV today)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

# A spreadsheet reads a cell that begins with one of these as a formula (or strips the
# control character and then does).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value) -> str:
    """The text of one CSV cell, made inert for spreadsheets: a cell that begins with a
    formula trigger gets a leading apostrophe (OWASP's advice), which spreadsheets show as
    text and do not evaluate."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def csv_stream(fieldnames: Iterable[str], rows: Iterable[dict]) -> Iterator[str]:
    """CSV text, a row at a time, every cell neutralised: every CSV export goes through
    this."""
    fieldnames = list(fieldnames)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(name) for name in fieldnames])
    for row in rows:
        writer.writerow([neutralise(row.get(name)) for name in fieldnames])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
