"""Money is integer cents everywhere: equal spend ties exactly, sums never drift."""

from __future__ import annotations


def format_cents(cents: int | None, currency: str = "$", *, plain: bool = False) -> str:
    """``123456`` -> ``$1,234.56``; ``plain`` drops the symbol and separators."""
    if cents is None:
        return ""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(int(cents)), 100)
    if plain:
        return f"{sign}{whole}.{part:02d}"
    return f"{sign}{currency}{whole:,}.{part:02d}"


def format_compact(cents: int | None, currency: str = "$") -> str:
    """Short amounts for narrow tables: '¥1,413.00', '¥123.4k', '¥27.49M' (exact values: --json)."""
    if cents is None:
        return ""
    units = abs(int(cents)) / 100
    sign = "-" if cents < 0 else ""
    if units >= 1_000_000:
        return f"{sign}{currency}{units / 1_000_000:.2f}M"
    if units >= 100_000:
        return f"{sign}{currency}{units / 1_000:.1f}k"
    return format_cents(cents, currency)
