"""The pieces of a customer's story, as text: identity, RFM card, histories, consent.

Pure functions from a frozen :func:`core.customers.profile` to Rich text, so
the screen stays a layout and the wording is tested without a terminal.
State reads as symbols and words first (``✓ opted in``, ``✗ opted out``,
``· no consent``); colour only follows.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Mapping, Sequence

from rich.text import Text

from core.money import format_cents

CONSENT_MARKS = {1: ("✓", "green"), 0: ("·", ""), -1: ("✗", "red")}


def identity(customer: Mapping[str, Any], *, can_reveal: bool) -> Text:
    """Name and id, then contacts (masked or not), region and signup."""
    text = Text(no_wrap=False)
    text.append(customer["name"] or "(no name)", style="bold")
    text.append(f"  {customer['customer_id']}\n")
    contacts = [part for part in (customer["email"], customer["phone"]) if part] or ["no email or phone"]
    text.append("  ".join(contacts))
    if customer["masked"]:
        text.append("  (masked", style="dim")
        text.append(": x reveals, audited)" if can_reveal else ")", style="dim")
    details = [part for part in (customer["region"], customer["timezone"]) if part]
    details.append(f"signed up {customer['signed_up'] or '–'}")
    text.append("\n" + " · ".join(details), style="dim")
    return text


def _score_bar(score: int | None) -> str:
    if score is None:
        return "·····"
    return "█" * score + "·" * (5 - score)


def _beats(standing: Mapping[str, Any], key: str) -> str:
    share = standing.get(key)
    return "" if share is None else f"better than {share:.0%}"


def rfm_card(reading: Mapping[str, Any] | None, *, language: str, currency: str,
             refresh_command: str = "tierdesk refresh") -> Text:
    """Segment and stage, the three scores with their facts and the customer's standing."""
    from core import lifecycle, segments

    if reading is None:
        return Text(f"· No reading for this customer yet (press r on Tiers, or run `{refresh_command}`).")
    money = lambda cents: format_cents(cents, currency) or "–"  # noqa: E731
    text = Text()
    text.append(segments.label(reading["segment"], language), style="bold reverse")
    text.append(f" · {lifecycle.label(reading['lifecycle'], language)}", style="bold")
    text.append(f"   reading of {reading['as_of']} ({reading['model']})\n", style="dim")
    standing = reading["standing"]
    recency = "no order" if reading["recency_days"] is None else f"last order {reading['recency_days']} days ago"
    lines = (
        ("R", reading["r_score"], recency, _beats(standing, "recency")),
        ("F", reading["f_score"], f"{reading['frequency']} orders in the window", _beats(standing, "frequency")),
        ("M", reading["m_score"], f"{money(reading['monetary_cents'])} spent (AOV {money(reading['aov_cents'])})",
         _beats(standing, "monetary")),
    )
    for index, (name, score, fact, beats) in enumerate(lines):
        shown = "–" if score is None else str(score)
        text.append(f"{name} {shown} ", style="bold")
        text.append(_score_bar(score))
        text.append(f"  {fact:<34}")
        text.append(beats, style="dim")
        if index < 2:
            text.append("\n")
    return text


def history(steps: Sequence[Mapping[str, Any]], current: str | None, first_reading: str | None,
            *, label) -> Text:
    """``(new) → A (date) → B (date)``, or since when the current value holds."""
    if not steps:
        return Text(f"{label(current) or '–'} since the reading of {first_reading or '–'}")
    text = Text(label(steps[0]["from_value"]) or "(new)")
    for step in steps:
        text.append(" → ")
        text.append(label(step["to_value"]) or "–", style="bold")
        text.append(f" ({step['as_of']})", style="dim")
    return text


def consent(channels: Mapping[str, Mapping[str, Any]]) -> Text:
    """Every channel's state as a symbol and a word, with when and who for changes."""
    text = Text()
    for index, (channel, info) in enumerate(channels.items()):
        mark, colour = CONSENT_MARKS.get(info["state"], ("?", ""))
        if index:
            text.append("\n")
        text.append(f"{channel:<6} ")
        text.append(f"{mark} {info['word']}", style=f"bold {colour}".strip())
        if info["since"]:
            text.append(f"  since {info['since']}", style="dim")
            if info["source"]:
                text.append(f" ({info['source']})", style="dim")
        if info["note"]:
            text.append(f"  “{info['note']}”", style="dim")
    return text


def monthly_series(monthly: Mapping[str, int], as_of: str | None, months: int = 24) -> tuple[list[float], str]:
    """Net spend per month for the ``months`` months up to the as-of (gaps are 0), and the span."""
    if as_of:
        end = date.fromisoformat(as_of)
    elif monthly:
        end = date.fromisoformat(max(monthly) + "-01")
    else:
        return [], ""
    keys = []
    year, month = end.year, end.month
    for _ in range(months):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    keys.reverse()
    return [float(monthly.get(key, 0)) for key in keys], f"{keys[0]} … {keys[-1]}"


def orders_title(orders: Mapping[str, Any], currency: str) -> Text:
    text = Text("Orders ", style="bold")
    text.append(f"{orders['count']:,} ({orders['qualifying']:,} counted, "
                f"{format_cents(orders['net_cents'], currency)} net)")
    return text
