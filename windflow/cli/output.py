"""--output table|json: JSON goes to stdout as is; tables are drawn with Rich."""

from __future__ import annotations

import json


def emit(fmt: str, data, columns: list[tuple[str, str]] | None = None, title: str = "") -> None:
    """`data` (a dict or a list of dicts) as JSON, or as a table of `columns` (key, header)."""
    if fmt == "json":
        print(json.dumps(data, indent=2, default=str))
        return
    from rich.console import Console
    from rich.table import Table

    rows = data if isinstance(data, list) else [data]
    if columns is None:  # one record: key / value
        table = Table(title=title or None, show_header=False)
        table.add_column("field", style="bold")
        table.add_column("value")
        for key, value in (data or {}).items():
            table.add_row(key, _cell(value))
    else:
        table = Table(title=title or None)
        for _key, header in columns:
            table.add_column(header)
        for row in rows:
            table.add_row(*(_cell(row.get(key)) for key, _header in columns))
    Console().print(table)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return str(value)
