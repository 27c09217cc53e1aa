"""Dates and instants. Nothing here reads the clock: callers pass ``now``.

Instants are Unix seconds (UTC). A shop day is a calendar date in the shop's
time zone; an as-of is the last whole shop day a reading covers.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from core.errors import InputError

EPOCH_DAY = date(1970, 1, 1)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_date(text: str, what: str = "date") -> date:
    """Parse ``YYYY-MM-DD`` (also ``today``/``yesterday`` are not accepted: be explicit)."""
    value = text.strip() if isinstance(text, str) else ""
    if not _ISO_DATE.match(value):
        raise InputError(f"{what}: expected a date as YYYY-MM-DD, got {text!r}")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"{what}: no such date: {text!r}") from None


def shop_today(zone: ZoneInfo, now: float) -> date:
    return datetime.fromtimestamp(now, tz=zone).date()


def default_as_of(zone: ZoneInfo, now: float) -> date:
    """Yesterday in the shop's time zone: the last whole day."""
    return shop_today(zone, now) - timedelta(days=1)


def day_start(day: date, zone: ZoneInfo) -> int:
    """The instant a shop day begins."""
    return int(datetime.combine(day, time.min, tzinfo=zone).timestamp())


def day_end(day: date, zone: ZoneInfo) -> int:
    """The first instant after a shop day (exclusive bound)."""
    return day_start(day + timedelta(days=1), zone)


def local_day(instant: int, zone: ZoneInfo) -> date:
    return datetime.fromtimestamp(instant, tz=zone).date()


def format_instant(instant: int | None, zone: ZoneInfo, with_time: bool = True) -> str:
    if instant is None:
        return ""
    moment = datetime.fromtimestamp(instant, tz=zone)
    return moment.strftime("%Y-%m-%d %H:%M") if with_time else moment.strftime("%Y-%m-%d")


def utc_iso(instant: int) -> str:
    return datetime.fromtimestamp(instant, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_zone_name() -> str:
    """This machine's IANA time zone, or UTC when it cannot be told."""
    import os
    from pathlib import Path

    env = os.environ.get("TZ", "").lstrip(":")
    candidates = [env] if env else []
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    try:
        candidates.append(Path("/etc/timezone").read_text().strip())
    except OSError:
        pass
    for name in candidates:
        try:
            ZoneInfo(name)
            return name
        except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
            continue
    return "UTC"
