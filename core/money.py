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
