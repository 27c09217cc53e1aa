"""Turning the text cells of an imported file into typed values.

Every parser here takes text (already stripped, blanks as null) and gives
values, null where the text cannot be read: a :class:`Reading`, for
:func:`read_columns` (a frame's columns side by side) or :func:`read_column`
(one Series).
The caller tells "blank" from "unreadable" by comparing the two, so the
rejection reasons stay with the importer.

The common layouts are parsed vectorised (one polars pass over the column);
whatever they leave over goes through a Python reference parser once per
distinct value, so an unusual but repetitive layout ("¥1,234.00",
"2024/3/5 9:03") still costs little, and both paths agree by construction:
the vectorised formats only ever accept text the reference parser reads the
same way.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Callable, Mapping, NamedTuple
from zoneinfo import ZoneInfo

import polars as pl


class Reading(NamedTuple):
    """How to read a column of cells: most of them at once, then the rest.

    ``fast`` is one polars expression that reads the usual layouts (null
    where it cannot); ``rest(text, result, todo)`` fills in the cells it
    left open (``todo``: not blank, not read yet), called only if there are any.
    """

    fast: Callable[[pl.Expr], pl.Expr]
    rest: Callable[[pl.Series, pl.Series, pl.Series], pl.Series]


def read_columns(frame: pl.DataFrame, readings: Mapping[str, Reading]) -> list[pl.Series]:
    """The columns of ``frame`` named in ``readings``, each read its way.

    Every column's fast expression goes into one ``select``, which polars
    runs side by side on its threads; then each column's rest.
    """
    fast = frame.select(reading.fast(pl.col(name)).alias(name) for name, reading in readings.items())
    read = []
    for name, reading in readings.items():
        text, result = frame[name], fast[name]
        todo = text.is_not_null() & result.is_null()
        read.append((reading.rest(text, result, todo) if todo.any() else result).alias(name))
    return read


def read_column(text: pl.Series, reading: Reading) -> pl.Series:
    """One column read: :func:`read_columns` for a single Series."""
    return read_columns(pl.DataFrame({"cells": text}), {"cells": reading})[0].alias(text.name)


# --- instants --------------------------------------------------------------

_INSTANT = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})"
    r"(?:[T ]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_EPOCH_SECONDS = re.compile(r"^\d{9,10}$")
_EPOCH_MILLIS = re.compile(r"^\d{12,13}$")

# Layouts polars parses exactly (``exact`` matching), tried in this order on
# whatever the previous one left over. Naive ones are in the shop's zone.
_NAIVE_LAYOUTS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y/%m/%d %H:%M:%S", "%Y-%m-%d")
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT"})
_AWARE_LAYOUTS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%#z")

INSTANT_HINT = "use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or an ISO time with an offset"


def parse_instant_text(text: str, zone: ZoneInfo) -> int | None:
    """One instant as Unix seconds, or None: the reference parser.

    Accepts ISO dates and times with or without an offset ("Z", "+08:00",
    " +0800" as Shopify writes it), "/" or "." between date parts (Chinese
    exports), and Unix seconds or milliseconds. Naive values are read in
    ``zone``; a local time that does not exist (a DST gap) is None.
    """
    text = text.strip()
    if _EPOCH_SECONDS.match(text):
        return int(text)
    if _EPOCH_MILLIS.match(text):
        return int(text) // 1000
    match = _INSTANT.match(text)
    if not match:
        return None
    year, month, day, hour, minute, second, _fraction, offset = match.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None
    if offset is None:
        local = naive.replace(tzinfo=zone)
        instant = int(local.timestamp())
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) != naive:
            return None  # skipped by a DST change: no such local time
        return instant
    if offset.upper() in ("Z", "UTC", "GMT"):
        shift = 0
    else:
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:  # no such offset
            return None
        shift = hours * 3600 + minutes * 60
        if offset[0] == "-":
            shift = -shift
    return int(naive.replace(tzinfo=timezone(timedelta(seconds=shift))).timestamp())


def _repeats(layout: str) -> bool:
    """Whether cells in ``layout`` tend to repeat, so parsing each distinct one once pays.

    Dates do (a shop has a few hundred days of orders); times of day to the
    second hardly ever, and finding the distinct ones first costs half again
    as much as parsing them all.
    """
    return "%H" not in layout


def _naive(text: pl.Expr, layout: str, zone: ZoneInfo) -> pl.Expr:
    """Unix seconds of cells in a naive ``layout``, read in ``zone``."""
    local = text.str.strptime(pl.Datetime("ms"), layout, strict=False, cache=_repeats(layout))
    if zone.key not in _UTC_NAMES:
        local = local.dt.replace_time_zone(zone.key, ambiguous="earliest", non_existent="null")
    return local.dt.epoch("s")


def instant_reading(zone: ZoneInfo) -> Reading:
    """Unix seconds (Int64) for each cell; null where blank or unreadable.

    The first layout reads most files whole; the others, then the reference
    parser, take what each leaves.
    """
    def rest(text: pl.Series, result: pl.Series, todo: pl.Series) -> pl.Series:
        for layout in _NAIVE_LAYOUTS[1:]:
            if not todo.any():
                break
            result, todo = _fill(result, todo, pl.select(_naive(pl.lit(text), layout, zone)).to_series())
        for layout in _AWARE_LAYOUTS:
            if not todo.any():
                break
            parsed = text.str.strptime(pl.Datetime("us", "UTC"), layout, strict=False,
                                       cache=_repeats(layout)).dt.epoch("s")
            result, todo = _fill(result, todo, parsed)
        if todo.any():
            result = _by_distinct_value(result, text, todo, lambda value: parse_instant_text(value, zone))
        return result

    return Reading(lambda text: _naive(text, _NAIVE_LAYOUTS[0], zone), rest)


# --- money -----------------------------------------------------------------

_CODES = "USD|CNY|RMB|EUR|GBP|JPY|HKD|TWD|SGD|AUD|CAD|KRW|INR|CHF"
_CURRENCY = re.compile(rf"^(?:{_CODES})\s*|\s*(?:{_CODES}|元)$|[¥￥$€£₩₹]", re.IGNORECASE)
_SPACES = re.compile(r"[\s\u00a0\u202f']")
_PLAIN = re.compile(r"^\d+(?:\.\d*)?$|^\.\d+$")
_GROUPS_COMMA = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_GROUPS_DOT = re.compile(r"^\d{1,3}(?:\.\d{3})+(?:,\d*)?$")
MAX_DIGITS = 13  # ten trillion: anything larger is a typo, and stays inside Int64 cents


def parse_amount_text(text: str, decimal_comma: bool = False) -> int | None:
    """An amount as integer cents (negative allowed here), or None: the reference parser.

    Takes "1,234.56", "¥1234.5", "$12", "(12.00)" (negative), "1.234,56" and,
    when ``decimal_comma`` (a ;-separated file), "12,50". Rounds half away
    from zero to the cent.
    """
    value = _CURRENCY.sub("", text.strip())
    value = _SPACES.sub("", value)
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1]
    if value.startswith("-") or value.endswith("-"):
        negative, value = True, value.strip("-")
    elif value.startswith("+"):
        value = value[1:]
    value = _CURRENCY.sub("", value)
    if "," in value and "." in value:
        # Both separators: the last one is the decimal point.
        if value.rfind(",") > value.rfind("."):
            value = value.replace(".", "").replace(",", ".")
        else:
            value = value.replace(",", "")
    elif "," in value:
        if not decimal_comma and _GROUPS_COMMA.match(value):
            value = value.replace(",", "")
        elif value.count(",") == 1:
            value = value.replace(",", ".")
        else:
            return None
    elif value.count(".") > 1 and _GROUPS_DOT.match(value):
        value = value.replace(".", "")
    if not _PLAIN.match(value):
        return None
    if len(value.split(".")[0]) > MAX_DIGITS:
        return None
    try:
        cents = int((Decimal(value) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    except InvalidOperation:
        return None
    return -cents if negative else cents


def amount_reading(decimal_comma: bool = False) -> Reading:
    """Integer cents (Int64) for each cell, negative where the text is; null if blank or unreadable."""
    separator = "," if decimal_comma else r"\."

    def fast(text: pl.Expr) -> pl.Expr:
        digits = text.str.replace(",", ".", literal=True) if decimal_comma else text
        simple = text.str.contains(rf"^\d{{1,{MAX_DIGITS}}}(?:{separator}\d{{0,2}})?$").fill_null(False)
        # At most 15 significant digits (the pattern): a float holds them to well within a
        # hundredth of a cent, so rounding to whole cents is exact.
        return pl.when(simple).then((digits.cast(pl.Float64, strict=False) * 100).round().cast(pl.Int64, strict=False))

    def rest(text: pl.Series, result: pl.Series, todo: pl.Series) -> pl.Series:
        return _by_distinct_value(result, text, todo, lambda value: parse_amount_text(value, decimal_comma))

    return Reading(fast, rest)


# --- words -----------------------------------------------------------------

# Keys are lowercase with "_" for spaces and hyphens, as :func:`word_reading` compares them.
CONSENT_WORDS: dict[str, int] = {
    **dict.fromkeys(("1", "yes", "y", "true", "t", "subscribed", "opted_in", "opt_in", "是"), 1),
    **dict.fromkeys(("0", "no", "n", "false", "f", "not_subscribed", "否"), 0),
    **dict.fromkeys(("-1", "unsubscribed", "opted_out", "opt_out", "退订"), -1),
}


def word_reading(vocabulary: dict[str, object], dtype: pl.DataType) -> Reading:
    """Map each cell through ``vocabulary`` (case-insensitive; spaces and hyphens as "_"); null if blank or unknown."""
    def rest(text: pl.Series, result: pl.Series, todo: pl.Series) -> pl.Series:
        # Only cells not already written as the vocabulary writes them.
        normal = text.filter(todo).str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
        return result.scatter(todo.arg_true(), normal.replace_strict(vocabulary, default=None, return_dtype=dtype))

    return Reading(lambda text: text.replace_strict(vocabulary, default=None, return_dtype=dtype), rest)


# --- helpers ---------------------------------------------------------------


def _fill(result: pl.Series, todo: pl.Series, parsed: pl.Series) -> tuple[pl.Series, pl.Series]:
    """Take ``parsed`` where the result is still open; return the new result and what stays open."""
    take = todo & parsed.is_not_null()
    return result.zip_with(~take, parsed), todo & ~take


def _by_distinct_value(
    result: pl.Series, text: pl.Series, todo: pl.Series, parse: Callable[[str], int | None]
) -> pl.Series:
    """Parse the cells still open once per distinct text with the reference parser."""
    distinct = text.filter(todo).unique()
    table = {value: parse(value) for value in distinct.to_list()}
    parsed = text.replace_strict(table, default=None, return_dtype=pl.Int64)
    return result.zip_with(~todo, parsed)
