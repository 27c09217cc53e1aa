"""Quiet hours: when a message may not arrive, in the customer's own time.

The window (config ``[quiet_hours]``, e.g. 21:00-09:00) is read in the
customer's time zone, or the shop's when the customer has none (or an
unknown one). A campaign either *defers* a message that would land inside
the window to the window's end, or *drops* it. Customers share a handful of
time zones, so each zone is worked out once in Python and joined back.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl

from core.config import QuietHours


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


@lru_cache(maxsize=512)
def _zone(name: str | None, fallback: str) -> ZoneInfo:
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(fallback)


def is_quiet(local: time, quiet: QuietHours) -> bool:
    """Whether a local time of day falls in the quiet window (which may span midnight)."""
    start, end = _clock(quiet.start), _clock(quiet.end)
    if start == end:
        return False  # an empty window
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


def resume_at(instant: int, zone: ZoneInfo, quiet: QuietHours) -> int:
    """The first instant at or after ``instant`` outside the quiet window, in ``zone``."""
    moment = datetime.fromtimestamp(instant, tz=zone)
    if not is_quiet(moment.time(), quiet):
        return instant
    end = _clock(quiet.end)
    candidate = datetime.combine(moment.date(), end, tzinfo=zone)
    if candidate <= moment:
        candidate = datetime.combine(moment.date() + timedelta(days=1), end, tzinfo=zone)
    # Round-trip through UTC so a DST gap lands on a real instant.
    return int(candidate.timestamp())


def by_zone(zones: list[str | None], send_at: int, quiet: QuietHours, shop_zone: str) -> tuple[np.ndarray, np.ndarray]:
    """For each time zone in ``zones`` (None: the shop's): in quiet hours at ``send_at``, and when it may go."""
    in_quiet = np.zeros(len(zones), dtype=bool)
    deferred_at = np.full(len(zones), send_at, dtype=np.int64)
    for index, name in enumerate(zones):
        zone = _zone(name, shop_zone)
        if is_quiet(datetime.fromtimestamp(send_at, tz=zone).time(), quiet):
            in_quiet[index] = True
            deferred_at[index] = resume_at(send_at, zone, quiet)
    return in_quiet, deferred_at


def schedule(timezones: pl.Series, send_at: int, quiet: QuietHours, shop_zone: str) -> pl.DataFrame:
    """Per customer (in the order of ``timezones``): ``in_quiet`` and ``deferred_at``.

    ``deferred_at`` is when the message may go out: ``send_at`` itself when
    outside the window, else the window's end in the customer's zone.
    """
    names = timezones.cast(pl.String)
    distinct = [name for name in names.unique().to_list() if name is not None]
    zones = [None, *distinct]
    in_quiet, deferred_at = by_zone(zones, send_at, quiet, shop_zone)
    codes = names.replace_strict({name: index + 1 for index, name in enumerate(distinct)}, default=0,
                                 return_dtype=pl.Int64).to_numpy() if len(names) else np.zeros(0, dtype=np.int64)
    return pl.DataFrame({"in_quiet": in_quiet[codes], "deferred_at": deferred_at[codes]},
                        schema={"in_quiet": pl.Boolean, "deferred_at": pl.Int64})
