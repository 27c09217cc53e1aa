"""The touch budget: the ``[[caps]]`` rules over the touch ledger.

A rule (channel or "any", segment or "any", max, per day/week/month) counts
the touches that count toward caps in a window of shop-local days: a touch
on day D falls in the windows ending on D .. D + days - 1. One more touch
on day D is allowed when, for every rule that applies (its channel is the
touch's channel or "any", its segment the customer's or "any"), every one of
those windows stays within ``max``. Usually the ledger holds nothing after
D and only the window ending on D matters; touches scheduled later (a
deferred or future-dated send) are checked against the later windows too,
so sending out of order can never break a cap either.

The segment that decides which rules apply is the customer's at the plan;
the touches counted are the person's, whatever segment they were in then.

Usage frames have one row per counted touch (or reservation):
``customer`` (Int32), ``channel`` (String) and ``day`` (Int32, days since
1970-01-01 in the shop's zone). Two paths count them, and a property test
holds them to the same answer:

* :func:`verdicts`, the reference: candidates joined to usage rows. The send
  uses it for each batch, inside its write transaction, over a
  :class:`LedgerView` brought up to date in that transaction.
* :func:`dense_verdicts`, for whole audiences: per-customer counts as arrays
  indexed by customer id (:class:`DenseCounts`, kept between previews while
  the append-only ledger does not grow), gathered instead of joined.

Both end in :func:`judge`: the first rule, in config order, that one more
touch would break is the reason (``cap:<channel>/<segment>/<max>-per-<per>``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import polars as pl

from core.clock import EPOCH_DAY
from core.config import CHANNELS, CapRule

if TYPE_CHECKING:
    from core.store import Store

USAGE_SCHEMA = {"customer": pl.Int32, "channel": pl.String, "day": pl.Int32}
# Campaigns whose frozen plan reserves budget on their day.
PLANNED_STATES = ("submitted", "approved", "sending")


def day_number(day: date) -> int:
    """A date as days since 1970-01-01 (how days are kept in frames)."""
    return (day - EPOCH_DAY).days


def day_date(number: int) -> date:
    """The inverse of :func:`day_number`."""
    return EPOCH_DAY + timedelta(days=int(number))


def empty_usage() -> pl.DataFrame:
    """A usage frame with no rows."""
    return pl.DataFrame(schema=USAGE_SCHEMA)


def relevant_rules(rules: Sequence[CapRule], channel: str) -> list[CapRule]:
    """The rules that can apply to a touch on ``channel`` (whatever the segment)."""
    return [rule for rule in rules if rule.channel in ("any", channel)]


def _matches_channel(rule: CapRule) -> pl.Expr:
    return pl.lit(True) if rule.channel == "any" else pl.col("channel") == rule.channel


def window_counts(candidates: pl.DataFrame, usage: pl.DataFrame, rules: Sequence[CapRule]) -> pl.DataFrame:
    """Per candidate and rule: the fullest window a touch on the candidate's ``day`` would join.

    ``candidates`` has ``customer`` and ``day``; returns ``customer`` plus a
    ``n{i}`` column (touches already in that window) for each rule, in order.
    """
    names = [f"n{index}" for index in range(len(rules))]
    if not rules:
        return candidates.select("customer")
    longest = max(rule.days for rule in rules)
    keys = candidates.select("customer", pl.col("day").alias("send_day"))
    near = usage.join(keys, on="customer", how="inner").with_columns(
        offset=(pl.col("day") - pl.col("send_day")).cast(pl.Int32)
    ).filter(pl.col("offset").abs() < longest)
    # The window ending on the send day: touches on that day and the days before.
    past = near.filter(pl.col("offset") <= 0).group_by("customer").agg(
        (_matches_channel(rule) & (pl.col("offset") > -rule.days)).sum().cast(pl.Int32).alias(name)
        for rule, name in zip(rules, names)
    )
    counts = candidates.select("customer").join(past, on="customer", how="left", maintain_order="left").with_columns(
        pl.col(name).fill_null(0) for name in names
    )
    future = near.filter(pl.col("offset") > 0)
    if future.height == 0:
        return counts
    # Someone already has a touch scheduled after the send day: check every
    # window the new touch would fall in (ending send_day + k, k < days).
    later = near.filter(pl.col("customer").is_in(future["customer"].unique().implode()))
    for rule, name in zip(rules, names):
        hits = later.filter(_matches_channel(rule) & (pl.col("offset") > -rule.days) & (pl.col("offset") < rule.days))
        if hits.height == 0:
            continue
        # A touch at offset o lies in the windows ending on k = max(0, o) .. min(days-1, o+days-1).
        spread = hits.select(
            "customer",
            k=pl.int_ranges(pl.col("offset").clip(lower_bound=0),
                            (pl.col("offset") + rule.days).clip(upper_bound=rule.days)),
        ).explode("k")
        fullest = spread.group_by("customer", "k").len().group_by("customer").agg(
            pl.col("len").max().cast(pl.Int32).alias(f"{name}_later")
        )
        counts = counts.join(fullest, on="customer", how="left", maintain_order="left").with_columns(
            pl.max_horizontal(name, pl.col(f"{name}_later").fill_null(0)).alias(name)
        ).drop(f"{name}_later")
    return counts


def verdicts(candidates: pl.DataFrame, usage: pl.DataFrame, rules: Sequence[CapRule], channel: str) -> pl.DataFrame:
    """``candidates`` (customer, segment, day) with ``rule``: the first rule one more touch would break.

    ``rule`` is null when the touch fits every rule that applies. Also adds
    the ``n{i}`` window counts of :func:`window_counts` for the relevant rules.
    This is the reference path (a join of candidates to usage rows); the send
    uses it per batch, and :func:`dense_verdicts` must agree with it.
    """
    relevant = relevant_rules(rules, channel)
    if candidates.height == 0 or not relevant:
        return candidates.with_columns(rule=pl.lit(None, dtype=pl.String))
    counts = window_counts(candidates.select("customer", "day"), usage, relevant)
    counted = candidates.join(counts, on="customer", how="left", maintain_order="left")
    segments = counted["segment"]
    broken = judge(
        [counted[f"n{index}"].to_numpy() for index in range(len(relevant))],
        [_segment_mask(rule, lambda name: (segments == name).fill_null(False).to_numpy(), counted.height)
         for rule in relevant],
        relevant,
    )
    return counted.with_columns(rule=rule_names(broken, relevant))


def judge(counts: Sequence[np.ndarray], applying: Sequence[np.ndarray], relevant: Sequence[CapRule]) -> np.ndarray:
    """Index (into ``relevant``) of the first rule one more touch breaks, or -1.

    ``counts[i]`` are the touches already in rule i's fullest window and
    ``applying[i]`` says where rule i applies (its segment).
    """
    size = len(counts[0]) if counts else 0
    broken = np.full(size, -1, dtype=np.int8)
    for index in range(len(relevant) - 1, -1, -1):  # backwards, so the first rule in the config wins
        over = applying[index] & (counts[index] + 1 > relevant[index].max)
        broken[over] = index
    return broken


def rule_names(broken: np.ndarray, relevant: Sequence[CapRule]) -> pl.Series:
    """Rule indexes from :func:`judge` as rule names (null for none)."""
    names = [rule.name for rule in relevant]
    return pl.Series("rule", [names[index] if index >= 0 else None for index in broken.tolist()], dtype=pl.String) \
        if len(broken) < 10_000 else (
            pl.Series("rule", broken, dtype=pl.Int8)
            .replace_strict({index: name for index, name in enumerate(names)}, default=None, return_dtype=pl.String)
        )


def _segment_mask(rule: CapRule, segment_is: Callable[[str], np.ndarray], size: int) -> np.ndarray:
    if rule.segment == "any":
        return np.ones(size, dtype=bool)
    return segment_is(rule.segment)


# --- the fast path: dense per-customer window counts ----------------------------
#
# A preview judges up to every customer at once. Joining a million candidates
# to millions of touches costs seconds; counting touches per customer into
# arrays indexed by customer id (np.bincount) and gathering them costs
# milliseconds, and the ledger's counts for a day are kept between previews
# (the ledger is append-only, so its highest id says whether they still hold).


@dataclass(frozen=True)
class DenseCounts:
    """Per rule, counted touches in the window ending ``day``, indexed by customer id."""

    day: int
    counts: tuple[np.ndarray, ...]
    later: np.ndarray  # a counted touch after ``day`` that a window from ``day`` reaches

    def __add__(self, other: "DenseCounts") -> "DenseCounts":
        size = max(len(self.later), len(other.later))
        return DenseCounts(
            self.day,
            tuple(_grow(a, size) + _grow(b, size) for a, b in zip(self.counts, other.counts)),
            _grow(self.later, size) | _grow(other.later, size),
        )


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    if len(array) >= size:
        return array
    grown = np.zeros(size, dtype=array.dtype)
    grown[:len(array)] = array
    return grown


def _gather(array: np.ndarray, ids: np.ndarray) -> np.ndarray:
    if len(ids) and int(ids.max()) < len(array):
        return array[ids]
    inside = ids < len(array)
    out = np.zeros(len(ids), dtype=array.dtype)
    out[inside] = array[ids[inside]]
    return out


CHANNEL_CODES = {name: code for code, name in enumerate(CHANNELS)}


def dense_counts(usage: pl.DataFrame, day: int, rules: Sequence[CapRule], size: int) -> DenseCounts:
    """Count ``usage`` rows (customer, channel, day) into per-customer arrays for the windows ending ``day``."""
    longest = max((rule.days for rule in rules), default=1)
    near = usage.filter(pl.col("day").is_between(day - longest + 1, day + longest - 1))
    customers = near["customer"].cast(pl.Int64).to_numpy()
    size = max(size, int(customers.max()) + 1 if len(customers) else 0)
    channels = near["channel"].cast(pl.String).replace_strict(CHANNEL_CODES, return_dtype=pl.Int8).to_numpy()
    offsets = (near["day"] - day).to_numpy()
    counts = []
    for rule in rules:
        in_window = (offsets <= 0) & (offsets > -rule.days)
        if rule.channel != "any":
            in_window &= channels == CHANNEL_CODES[rule.channel]
        counts.append(np.bincount(customers[in_window], minlength=size).astype(np.int32))
    later = np.bincount(customers[offsets > 0], minlength=size) > 0
    return DenseCounts(day, tuple(counts), later)


_LEDGER_COUNTS: dict[tuple, DenseCounts] = {}


def ledger_counts(store: "Store", day: int, rules: Sequence[CapRule]) -> DenseCounts:
    """The ledger's :class:`DenseCounts` for ``day`` (kept in memory while the ledger is unchanged)."""
    key = (str(store.path.resolve()), store.meta("store_id", ""), store.config.timezone, tuple(rules), day,
           store.scalar("SELECT coalesce(max(id), 0) FROM touches"))
    cached = _LEDGER_COUNTS.get(key)
    if cached is not None:
        return cached
    longest = max((rule.days for rule in rules), default=1)
    size = store.scalar("SELECT coalesce(max(id), 0) FROM customers") + 1
    counts = dense_counts(ledger_usage(store, day - longest + 1, day + longest - 1), day, rules, size)
    for old in [old for old in _LEDGER_COUNTS if old[:5] == key[:5]]:
        del _LEDGER_COUNTS[old]  # the ledger grew: its older counts will not be asked for again
    while len(_LEDGER_COUNTS) >= 8:
        del _LEDGER_COUNTS[next(iter(_LEDGER_COUNTS))]
    _LEDGER_COUNTS[key] = counts
    return counts


def dense_verdicts(customers: np.ndarray, days: np.ndarray, segment_is: Callable[[str], np.ndarray],
                   rules: Sequence[CapRule], channel: str, counts_for: Callable[[int], DenseCounts],
                   usage_for: Callable[[np.ndarray], pl.DataFrame]) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`verdicts` over arrays: (index of the broken relevant rule or -1, window counts per relevant rule).

    ``counts_for(day)`` gives the :class:`DenseCounts` of everything that uses
    budget (ledger and reservations) for windows ending ``day``; the few
    candidates with usage after their send day are counted exactly by
    :func:`window_counts` over ``usage_for(customers)``. Both paths agree (a
    property test holds them to it).
    """
    relevant = relevant_rules(rules, channel)
    size = len(customers)
    if size == 0 or not relevant:
        return np.full(size, -1, dtype=np.int8), []
    index = [list(rules).index(rule) for rule in relevant]
    columns = [np.zeros(size, dtype=np.int32) for _ in relevant]
    exact = np.zeros(size, dtype=bool)
    distinct = np.unique(days) if size < 1000 else pl.Series(days).unique().to_numpy()
    for day in distinct:
        rows = days == day if len(distinct) > 1 else slice(None)
        dense = counts_for(int(day))
        ids = customers[rows]
        exact[rows] = _gather(dense.later, ids)
        for position, rule_index in enumerate(index):
            columns[position][rows] = _gather(dense.counts[rule_index], ids)
    if exact.any():
        where = np.flatnonzero(exact)
        slow = pl.DataFrame({"customer": customers[where], "day": days[where]},
                            schema={"customer": pl.Int32, "day": pl.Int32})
        precise = window_counts(slow, usage_for(customers[where]), relevant)
        for position in range(len(relevant)):
            columns[position][where] = precise[f"n{position}"].to_numpy()
    applying = [_segment_mask(rule, segment_is, size) for rule in relevant]
    return judge(columns, applying, relevant), columns


def campaign_verdicts(store: "Store", channel: str, precedence: "Precedence", planned_day: str,
                      customers: np.ndarray, days: np.ndarray,
                      segment_is: Callable[[str], np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """:func:`dense_verdicts` against the ledger plus what campaigns ahead reserved on ``planned_day``."""
    rules = store.config.caps
    reserved = reservations(store, planned_day, precedence)
    size = store.scalar("SELECT coalesce(max(id), 0) FROM customers") + 1

    def counts_for(day: int) -> DenseCounts:
        counts = ledger_counts(store, day, rules)
        if reserved.height:
            counts = counts + dense_counts(reserved, day, rules, size)
        return counts

    def usage_for(ids: np.ndarray) -> pl.DataFrame:
        longest = max(rule.days for rule in rules)
        wanted = pl.Series(ids, dtype=pl.Int32)
        return pl.concat([
            ledger_usage(store, int(days.min()) - longest + 1, int(days.max()) + longest - 1, wanted),
            reserved.filter(pl.col("customer").is_in(wanted.implode())),
        ])

    return dense_verdicts(customers, days, segment_is, rules, channel, counts_for, usage_for)


# --- usage from the store -----------------------------------------------------


def ledger_usage(store: "Store", first_day: int, last_day: int, customers: pl.Series | None = None) -> pl.DataFrame:
    """Counted touches on days ``first_day .. last_day``, from the columnar copy of the ledger."""
    from core import fastread

    touches = fastread.load(store, "touches")
    selected = touches.lazy().filter(pl.col("counts") & pl.col("day").is_between(first_day, last_day))
    if customers is not None:
        selected = selected.filter(pl.col("customer").is_in(customers.implode()))
    return selected.select(
        "customer", pl.col("channel").cast(pl.String), "day"
    ).collect()


class LedgerView:
    """The counted touches a send judges against, kept current while it runs.

    Built once from the columnar copy (the ledger up to its highest id), then
    brought up to date inside each write transaction by reading only the rows
    added since (``id`` beyond the last one seen) — the ledger is append-only,
    so those are all that can have changed. Inside ``BEGIN IMMEDIATE`` nobody
    else can add a touch, so what the view holds then is the whole ledger.
    Reading by id keeps the send off the customer index, whose random pages
    would otherwise be read for every batch.
    """

    def __init__(self, store: "Store", first_day: int, last_day: int, customers: pl.Series | None = None) -> None:
        from core import fastread

        self.store = store
        self.first_day, self.last_day = first_day, last_day
        touches = fastread.load(store, "touches")
        self.seen = int(touches["id"].max() or 0) if touches.height else 0
        selected = touches.lazy().filter(pl.col("counts") & pl.col("day").is_between(first_day, last_day))
        if customers is not None:
            selected = selected.filter(pl.col("customer").is_in(customers.cast(pl.Int32).implode()))
        self.rows = selected.select("customer", pl.col("channel").cast(pl.String), "day").collect()

    def catch_up(self) -> None:
        """Add the touches committed since the view was last brought up to date."""
        from core.fastread import local_days

        fresh = self.store.conn.execute(
            "SELECT id, customer, channel, at FROM touches WHERE id > ? AND counts = 1 ORDER BY id", (self.seen,)
        ).fetchall()
        self.seen = self.store.scalar("SELECT coalesce(max(id), 0) FROM touches")
        if not fresh:
            return
        frame = pl.DataFrame(fresh, orient="row", schema={"id": pl.Int64, "customer": pl.Int32, "channel": pl.String,
                                                           "at": pl.Int64})
        added = frame.select("customer", "channel", local_days(pl.col("at"), self.store.config.zone).alias("day"))
        self.rows = pl.concat([self.rows, added.filter(pl.col("day").is_between(self.first_day, self.last_day))])

    def add(self, touches: pl.DataFrame) -> None:
        """Our own touches, just inserted in the current transaction (customer, channel, day)."""
        added = touches.select(pl.col("customer").cast(pl.Int32), pl.col("channel").cast(pl.String),
                               pl.col("day").cast(pl.Int32))
        self.rows = pl.concat([self.rows, added.filter(pl.col("day").is_between(self.first_day, self.last_day))])

    def usage(self, customers: Iterable[int]) -> pl.DataFrame:
        wanted = pl.Series(list(customers), dtype=pl.Int32).implode()
        return self.rows.filter(pl.col("customer").is_in(wanted))


def ledger_usage_sql(store: "Store", customers: Iterable[int], first_day: int, last_day: int) -> pl.DataFrame:
    """Counted touches of ``customers`` on days ``first_day .. last_day``, read in the current transaction.

    The send reads this inside its ``BEGIN IMMEDIATE`` transaction: no other
    writer can add a touch between this read and its own inserts.
    """
    from core.clock import day_end, day_start

    zone = store.config.zone
    start = day_start(day_date(first_day), zone)
    end = day_end(day_date(last_day), zone)
    ids = sorted(set(int(customer) for customer in customers))
    rows: list[tuple] = []
    for offset in range(0, len(ids), 900):
        chunk = ids[offset:offset + 900]
        marks = ", ".join("?" * len(chunk))
        rows.extend(store.conn.execute(
            f"SELECT customer, channel, at FROM touches WHERE customer IN ({marks}) AND at >= ? AND at < ? "
            "AND counts = 1",
            (*chunk, start, end),
        ).fetchall())
    frame = pl.DataFrame(rows, schema={"customer": pl.Int32, "channel": pl.String, "at": pl.Int64}, orient="row")
    from core.fastread import local_days

    return frame.select("customer", "channel", local_days(pl.col("at"), zone).alias("day"))


@dataclass(frozen=True)
class Precedence:
    """Where a campaign stands among those planned for the same day."""

    campaign: int | None
    priority: int
    plan_at: int

    def key(self) -> tuple[int, int, int]:
        # Higher priority first, then the earlier send time, then the lower id.
        return (-self.priority, self.plan_at, self.campaign if self.campaign is not None else 1 << 62)


def reservations(store: "Store", planned_day: str, ahead_of: Precedence,
                 customers: Iterable[int] | None = None) -> pl.DataFrame:
    """Budget reserved on ``planned_day`` by the frozen plans of campaigns that go first.

    A plan's members that are still to be sent count as touches on their
    planned day: a lower-priority campaign sees only what is left.
    """
    from core.fastread import local_days

    plans = store.rows(
        f"SELECT id, priority, plan_at, channel FROM campaigns WHERE planned_day = ? AND counts_toward_caps = 1 "
        f"AND state IN ({', '.join('?' * len(PLANNED_STATES))}) ORDER BY id",
        (planned_day, *PLANNED_STATES),
    )
    ahead = [
        plan for plan in plans
        if plan["id"] != ahead_of.campaign
        and Precedence(plan["id"], plan["priority"], plan["plan_at"]).key() < ahead_of.key()
    ]
    if not ahead:
        return empty_usage()
    rows: list[tuple] = []
    wanted = None if customers is None else sorted(set(int(customer) for customer in customers))
    for plan in ahead:
        base = ("SELECT customer, ?, planned_at FROM campaign_members WHERE campaign = ? "
                "AND reason IN ('sendable', 'deferred') AND outcome IS NULL")
        if wanted is None:
            rows.extend(store.conn.execute(base, (plan["channel"], plan["id"])).fetchall())
            continue
        for offset in range(0, len(wanted), 900):
            chunk = wanted[offset:offset + 900]
            rows.extend(store.conn.execute(
                f"{base} AND customer IN ({', '.join('?' * len(chunk))})", (plan["channel"], plan["id"], *chunk)
            ).fetchall())
    frame = pl.DataFrame(rows, schema={"customer": pl.Int32, "channel": pl.String, "at": pl.Int64}, orient="row")
    return frame.select("customer", "channel", local_days(pl.col("at"), store.config.zone).alias("day"))


# --- what people read ---------------------------------------------------------


def customer_budget(store: "Store", customer: int, today: date) -> dict[str, Any]:
    """One customer's budget on ``today``: used / cap / remaining per rule, and when a slot frees up."""
    from core.customers import recent_touches

    rules = store.config.caps
    segment = store.scalar("SELECT segment FROM customer_state WHERE customer = ?", (customer,))
    today_number = day_number(today)
    longest = max((rule.days for rule in rules), default=1)
    usage = ledger_usage_sql(store, [customer], today_number - longest + 1, today_number + longest)
    rows = []
    for rule in rules:
        if rule.segment not in ("any", segment):
            continue
        in_rule = usage.filter(pl.lit(True) if rule.channel == "any" else pl.col("channel") == rule.channel)
        window = in_rule.filter(pl.col("day").is_between(today_number - rule.days + 1, today_number))
        days = sorted(window["day"].to_list())
        used = len(days)
        remaining = max(rule.max - used, 0)
        frees_on = None
        if remaining == 0 and used:
            # The window must lose used - max + 1 touches; the last of those to leave decides.
            frees_on = day_date(days[used - rule.max] + rule.days).isoformat() if rule.max > 0 else None
        scheduled = in_rule.filter(pl.col("day") > today_number).height
        rows.append({
            "rule": rule.name, "channel": rule.channel, "segment": rule.segment, "per": rule.per,
            "used": used, "cap": rule.max, "remaining": remaining, "frees_on": frees_on,
            "scheduled_later": scheduled,
            "status": "ok" if remaining > 0 else ("never" if rule.max == 0 else "at cap"),
        })
    touches = recent_touches(store, customer, limit=20)
    by_channel = {}
    for channel in CHANNELS:
        limits = [row for row in rows if row["channel"] in ("any", channel)]
        by_channel[channel] = min((row["remaining"] for row in limits), default=None)
    return {
        "day": today.isoformat(), "segment": segment, "rules": rows,
        "remaining_by_channel": by_channel, "recent_touches": touches,
    }


def overview(store: "Store", today: date) -> dict[str, Any]:
    """Usage per segment x channel on ``today``: touches in each window and customers at cap.

    Segments are those of the latest reading (customers without one are
    counted as "(no reading)"); at cap means one more touch on that channel
    today would break a rule.
    """
    from core import audience, fastread
    from core.refresh import latest_refresh

    rules = store.config.caps
    today_number = day_number(today)
    if latest_refresh(store) is not None:
        current = audience.base(store)
        ids = current.frame["customer"].to_numpy().astype(np.int64)
        codes = current.frame["segment_code"].to_numpy().astype(np.int64)
        names = current.segments
    else:
        ids = fastread.load(store, "customers")["id"].to_numpy().astype(np.int64)
        codes = np.zeros(len(ids), dtype=np.int64)
        names = [None]
    size = int(ids.max()) + 1 if len(ids) else 1
    segment_of = np.zeros(size, dtype=np.int64)
    segment_of[ids] = codes
    width = len(CHANNELS)
    usage = ledger_usage(store, today_number - 29, today_number)
    used_ids = usage["customer"].cast(pl.Int64).to_numpy()
    inside = used_ids < size
    cell = segment_of[used_ids[inside]] * width + usage["channel"].replace_strict(
        CHANNEL_CODES, return_dtype=pl.Int64).to_numpy()[inside]
    age = today_number - usage["day"].to_numpy()[inside]
    cells = len(names) * width

    def per_cell(mask: np.ndarray) -> np.ndarray:
        return np.bincount(cell[mask], minlength=cells)

    touches = {"touches_day": per_cell(age == 0), "touches_week": per_cell(age < 7),
               "touches_month": per_cell(age < 30)}
    customers = np.bincount(codes, minlength=len(names))
    at_cap = np.zeros(cells, dtype=np.int64)
    days = np.full(len(ids), today_number, dtype=np.int32)
    for channel_code, channel in enumerate(CHANNELS):
        broken, _ = dense_verdicts(
            ids, days, lambda name: codes == (names.index(name) if name in names else -1), rules, channel,
            lambda day: ledger_counts(store, day, rules),
            lambda wanted: ledger_usage(store, today_number - 29, today_number + 29, pl.Series(wanted, dtype=pl.Int32)),
        )
        at_cap += np.bincount(codes[broken >= 0] * width + channel_code, minlength=cells)
    rows = []
    order = sorted(range(len(names)), key=lambda code: (names[code] is None, names[code] or ""))
    for code in order:
        if not customers[code]:
            continue
        for channel_code, channel in enumerate(CHANNELS):
            index = code * width + channel_code
            rows.append({"segment": names[code], "channel": channel, "customers": int(customers[code]),
                         **{key: int(values[index]) for key, values in touches.items()},
                         "at_cap": int(at_cap[index])})
    return {
        "day": today.isoformat(),
        "rules": [{"rule": rule.name, "channel": rule.channel, "segment": rule.segment, "max": rule.max,
                   "per": rule.per} for rule in rules],
        "rows": rows,
    }
