"""Byte sizes as people read them, in binary units (KiB, MiB, GiB, TiB) everywhere: the
checks' messages and the pages (the `bytes` template filter) say the same thing."""

from __future__ import annotations

KiB = 1024
MiB = 1024**2
GiB = 1024**3
TiB = 1024**4


def split_bytes(value: int) -> tuple[str, str]:
    """(number, unit) of a byte count: ``(“7.6”, “GiB”)``, ``(“512”, “MiB”)``."""
    value = int(value)
    if value >= TiB:
        return f"{value / TiB:.1f}", "TiB"
    if value >= GiB:
        return f"{value / GiB:.1f}", "GiB"
    if value >= MiB:
        return f"{value / MiB:.0f}", "MiB"
    if value >= KiB:
        return f"{value / KiB:.0f}", "KiB"
    return str(value), "B"


def format_bytes(value: int | None, unknown: str = "unknown") -> str:
    """``"7.6 GiB"``; `unknown` for None."""
    if value is None:
        return unknown
    number, unit = split_bytes(value)
    return f"{number} {unit}"
