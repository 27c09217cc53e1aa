"""Refresh: compute the reading at an as-of and store what changed.

One transaction writes the refresh record, the customer_state rows that
changed, and the tier, lifecycle and tag events of the customers whose
reading changed; a failure or Ctrl-C anywhere leaves the previous reading
untouched. A second refresh at the same as-of therefore writes no events.

The very first refresh of a store is the baseline: it writes every
customer's state but no events (there is nothing they moved from), and a
customer's history starts at their ``first_refresh_id``.

After the commit the reading is also kept as an Arrow file beside the store
(``<store>.cache/reading.arrow``): the next refresh diffs against it, and
tiers, previews and the console read it instead of 1M SQLite rows. It is
checked against the store's last refresh before it is trusted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Callable

import polars as pl

from core import audit, fastread, reading as reading_mod, tags as tags_mod
from core.clock import EPOCH_DAY
from core.errors import Conflict

if TYPE_CHECKING:
    from core.store import Store
    from core.users import User

Progress = Callable[[str, float], None]

# A reading whose newest order is older than this (before its as-of) is called stale.
STALE_AFTER_DAYS = 30
SNAPSHOT = "reading.arrow"
SNAPSHOT_META = "reading.json"
# Bump when the saved reading's columns change: an older file is ignored, not misread.
SNAPSHOT_FORMAT = 2

_COMPARED = ("first_day", "last_day", "frequency", "monetary", "aov",
             "r_score", "f_score", "m_score", "segment", "lifecycle", "tags_text")


@dataclass(frozen=True)
class RefreshResult:
    refresh_id: int
    as_of: date
    model: str
    population: int
    scored: int
    changed_rows: int
    tier_moves: int
    lifecycle_moves: int
    tag_changes: int
    baseline: bool
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    counts: dict = field(default_factory=dict)


def refresh(store: "Store", *, as_of: date, actor: "User", now: int,
            progress: Progress | None = None) -> RefreshResult:
    """Compute the reading at ``as_of`` and store it (see the module docstring)."""
    actor.require("refresh")
    config = store.config
    step = progress or (lambda stage, fraction: None)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    def mark(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 3)
        return time.perf_counter()

    step("reading orders", 0.0)
    tick = time.perf_counter()
    orders = fastread.load(store, "orders")
    events = fastread.load(store, "events")
    customers = fastread.load(store, "customers")
    tick = mark("read", tick)
    step("scoring", 0.3)
    new = reading_mod.compute(orders, events, customers, as_of, config)
    tick = mark("compute", tick)
    del orders, events

    step("comparing", 0.6)
    last = store.rows("SELECT id, model, as_of FROM refreshes ORDER BY id DESC LIMIT 1")
    previous_refresh = last[0] if last else None
    previous = _previous_state(store, previous_refresh["id"] if previous_refresh else None)
    baseline = previous_refresh is None
    model_changed = bool(previous_refresh) and previous_refresh["model"] != new.model
    diff = _diff(new.frame, previous)
    tick = mark("diff", tick)

    step("writing", 0.7)
    warnings = []
    stale = new.stale_days is not None and new.stale_days > STALE_AFTER_DAYS
    if stale:
        newest = EPOCH_DAY.toordinal() + new.newest_order_day
        warnings.append(
            f"the newest order ({date.fromordinal(newest)}) is {new.stale_days} days older than the as-of "
            f"({as_of}): the data is probably stale or historical"
        )
    if previous_refresh and date.fromisoformat(previous_refresh["as_of"]) > as_of:
        warnings.append(f"as-of {as_of} is earlier than the previous reading's ({previous_refresh['as_of']})")
    if model_changed:
        warnings.append(
            f"the segment model changed from {previous_refresh['model']} to {new.model}: "
            "segment moves are not counted for this refresh"
        )

    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO refreshes (as_of, started_at, finished_at, lookback_days, model, population, scored, "
            "method, cut_points, counts, config_hash, actor) VALUES (?, ?, ?, ?, ?, ?, ?, '{}', '{}', '{}', ?, ?)",
            (as_of.isoformat(), now, now, new.lookback_days, new.model, new.population, new.scored,
             config.hash, actor.login),
        )
        refresh_id = int(cursor.lastrowid)
        changed_rows = _write_state(conn, diff, refresh_id, empty_table=previous.height == 0)
        moves = {"tier": 0, "lifecycle": 0, "tag": 0}
        if not baseline:
            moves = _write_events(conn, diff, refresh_id, as_of, now, new.model, count_tiers=not model_changed)
        counts = _counts(new, diff, baseline or model_changed)
        counts.update(changed_rows=changed_rows, tier_moves=moves["tier"], lifecycle_moves=moves["lifecycle"],
                      tag_changes=moves["tag"], baseline=baseline, warnings=warnings,
                      stale_days=new.stale_days if stale else None)
        conn.execute(
            "UPDATE refreshes SET method = ?, cut_points = ?, counts = ? WHERE id = ?",
            (json.dumps(_methods(new)), json.dumps(new.method(), default=float), json.dumps(counts, default=float),
             refresh_id),
        )
        audit.record(store, actor=actor.login, action="refresh", target=as_of.isoformat(), now=now,
                     details={"refresh_id": refresh_id, "population": new.population,
                              "changed_rows": changed_rows, **moves})
    tick = mark("write", tick)
    step("saving the reading", 0.95)
    _save_snapshot(store, new.frame, refresh_id, previous.select("customer", "first_refresh_id"))
    mark("snapshot", tick)
    step("done", 1.0)
    return RefreshResult(
        refresh_id=refresh_id, as_of=as_of, model=new.model, population=new.population, scored=new.scored,
        changed_rows=changed_rows, tier_moves=moves["tier"], lifecycle_moves=moves["lifecycle"],
        tag_changes=moves["tag"], baseline=baseline, seconds=round(time.perf_counter() - started, 3),
        timings=timings, warnings=tuple(warnings), counts=counts,
    )


# --- the previous reading ----------------------------------------------------

_STATE_SCHEMA = {
    "customer": pl.Int32, "first_refresh_id": pl.Int64, "first_day": pl.Int32, "last_day": pl.Int32,
    "frequency": pl.Int32, "monetary": pl.Int64, "aov": pl.Int64, "r_score": pl.Int8, "f_score": pl.Int8,
    "m_score": pl.Int8, "segment": pl.String, "lifecycle": pl.String, "tags_text": pl.String,
}


def _previous_state(store: "Store", refresh_id: int | None) -> pl.DataFrame:
    if refresh_id is None:
        return pl.DataFrame(schema=_STATE_SCHEMA)
    snapshot = load_snapshot(store, refresh_id)
    if snapshot is not None:
        return snapshot.select(list(_STATE_SCHEMA))
    return _state_from_sqlite(store)


def _state_from_sqlite(store: "Store") -> pl.DataFrame:
    raw = fastread.query(
        store,
        "SELECT customer, first_refresh_id, first_order_day, last_order_day, frequency, monetary_cents, "
        "aov_cents, r_score, f_score, m_score, segment, lifecycle, tags FROM customer_state ORDER BY customer",
        {"customer": pl.Int32, "first_refresh_id": pl.Int64, "first_day": pl.String,
         "last_day": pl.String, "frequency": pl.Int32, "monetary": pl.Int64, "aov": pl.Int64,
         "r_score": pl.Int8, "f_score": pl.Int8, "m_score": pl.Int8, "segment": pl.String,
         "lifecycle": pl.String, "tags": pl.String},
    )
    return raw.rename({"tags": "tags_text"}).with_columns(
        first_day=pl.col("first_day").str.to_date().cast(pl.Int32),
        last_day=pl.col("last_day").str.to_date().cast(pl.Int32),
        tags=tags_mod.as_list(pl.col("tags_text")),
    )


def _diff(new: pl.DataFrame, previous: pl.DataFrame) -> pl.DataFrame:
    """New rows joined to their previous state, keeping only those that changed."""
    current = new.select("customer", *_COMPARED)
    before = previous.rename({name: f"{name}_prev" for name in _COMPARED}).with_columns(known=pl.lit(True))
    # Both come sorted by customer; saying so lets polars merge instead of hash.
    if current["customer"].is_sorted() and before["customer"].is_sorted():
        current = current.with_columns(pl.col("customer").set_sorted())
        before = before.with_columns(pl.col("customer").set_sorted())
    joined = current.join(before, on="customer", how="full", coalesce=True)
    differs = pl.any_horizontal(
        [pl.col(name).ne_missing(pl.col(f"{name}_prev")) for name in _COMPARED]
    )
    return joined.filter(differs | pl.col("known").is_null()).with_columns(
        known=pl.col("known").fill_null(False),
        gone=pl.col("segment").is_null(),
    )


# --- writing -----------------------------------------------------------------

def _iso(day: pl.Expr) -> pl.Expr:
    return day.cast(pl.Date).dt.strftime("%Y-%m-%d")


def _write_state(conn, diff: pl.DataFrame, refresh_id: int, *, empty_table: bool) -> int:
    present = diff.filter(~pl.col("gone"))
    rows = present.select(
        "customer",
        pl.lit(refresh_id).alias("refresh_id"),
        pl.when(pl.col("known")).then(pl.col("first_refresh_id")).otherwise(refresh_id).alias("first_refresh_id"),
        _iso(pl.col("first_day")).alias("first_day"),
        _iso(pl.col("last_day")).alias("last_day"),
        "frequency", "monetary", "aov", "r_score", "f_score", "m_score", "segment", "lifecycle",
        pl.col("tags_text").alias("tags"),
    )
    columns = ("customer, refresh_id, first_refresh_id, first_order_day, last_order_day, frequency, "
               "monetary_cents, aov_cents, r_score, f_score, m_score, segment, lifecycle, tags")
    sql = f"INSERT INTO customer_state ({columns}) VALUES ({', '.join('?' * 14)})"
    if empty_table:
        # The baseline writes every customer: build the index once afterwards
        # instead of maintaining it row by row in random order.
        conn.execute("DROP INDEX IF EXISTS customer_state_segment")
        conn.executemany(sql, rows.iter_rows())
        conn.execute("CREATE INDEX customer_state_segment ON customer_state (segment)")
    else:
        updates = ", ".join(f"{name} = excluded.{name}" for name in columns.split(", ")[1:] if name != "first_refresh_id")
        conn.executemany(f"{sql} ON CONFLICT (customer) DO UPDATE SET {updates}", rows.iter_rows())
    gone = diff.filter(pl.col("gone"))["customer"].to_list()
    conn.executemany("DELETE FROM customer_state WHERE customer = ?", [(customer,) for customer in gone])
    return rows.height + len(gone)


def _write_events(conn, diff: pl.DataFrame, refresh_id: int, as_of: date, now: int, model: str,
                  *, count_tiers: bool) -> dict[str, int]:
    as_of_text = as_of.isoformat()
    present = diff.filter(~pl.col("gone"))
    tier_rows = []
    if count_tiers:
        tier_rows = present.filter(pl.col("segment").ne_missing(pl.col("segment_prev"))).select(
            "customer", pl.lit(model).alias("model"), "segment_prev", "segment",
            pl.lit(refresh_id).alias("refresh_id"), pl.lit(as_of_text).alias("as_of")
        ).rows()
        conn.executemany(
            "INSERT INTO tier_events (customer, model, from_segment, to_segment, refresh_id, as_of) "
            "VALUES (?, ?, ?, ?, ?, ?)", tier_rows,
        )
    stage_rows = present.filter(pl.col("lifecycle").ne_missing(pl.col("lifecycle_prev"))).select(
        "customer", "lifecycle_prev", "lifecycle",
        pl.lit(refresh_id).alias("refresh_id"), pl.lit(as_of_text).alias("as_of")
    ).rows()
    conn.executemany(
        "INSERT INTO lifecycle_events (customer, from_stage, to_stage, refresh_id, as_of) VALUES (?, ?, ?, ?, ?)",
        stage_rows,
    )
    retagged = diff.filter(pl.col("tags_text").ne_missing(pl.col("tags_text_prev")))
    now_tags = tags_mod.as_list(pl.col("tags_text").fill_null(""))
    before_tags = tags_mod.as_list(pl.col("tags_text_prev").fill_null(""))
    tag_diff = retagged.select(
        "customer",
        added=now_tags.list.set_difference(before_tags),
        removed=before_tags.list.set_difference(now_tags),
    )
    tag_rows = []
    for action in ("added", "removed"):
        exploded = tag_diff.select("customer", action).explode(action).drop_nulls(action).sort("customer", action)
        tag_rows.extend(
            (customer, tag, action, "rule:" + (tag.split(":")[0] if ":" in tag else tag), now, as_of_text, refresh_id)
            for customer, tag in exploded.iter_rows()
        )
    conn.executemany(
        "INSERT INTO tag_events (customer, tag, action, source, manual, at, as_of, refresh_id) "
        "VALUES (?, ?, ?, ?, 0, ?, ?, ?)", tag_rows,
    )
    return {"tier": len(tier_rows), "lifecycle": len(stage_rows), "tag": len(tag_rows)}


def _methods(reading: reading_mod.Reading) -> dict:
    return {name: {"method": report.method, "rule": report.rule} for name, report in reading.reports.items()} | {
        "cn8": reading.split.method, "model": reading.model, "lookback_days": reading.lookback_days,
    }


def _counts(reading: reading_mod.Reading, diff: pl.DataFrame, no_moves: bool) -> dict:
    frame = reading.frame
    per_segment = reading_mod.segment_counts(frame)
    moved = diff.filter(pl.col("known") & ~pl.col("gone") & pl.col("segment").ne_missing(pl.col("segment_prev")))
    moved_in = dict(moved.group_by("segment").len().iter_rows()) if not no_moves else {}
    moved_out = dict(moved.group_by("segment_prev").len().iter_rows()) if not no_moves else {}
    entered = dict(diff.filter(~pl.col("known")).group_by("segment").len().iter_rows()) if not no_moves else {}
    segment_counts = {}
    for row in per_segment.iter_rows(named=True):
        name = row["segment"]
        segment_counts[name] = {
            "customers": row["customers"], "revenue": row["revenue"],
            "avg_r": row["avg_r"], "avg_f": row["avg_f"], "avg_m": row["avg_m"],
            "moved_in": moved_in.get(name, 0), "moved_out": moved_out.get(name, 0), "entered": entered.get(name, 0),
        }
    grid = [[0] * 5 for _ in range(5)]
    for r, f, n in frame.filter(pl.col("r_score").is_not_null()).group_by("r_score", "f_score").len().iter_rows():
        grid[r - 1][f - 1] = n
    tag_counts = dict(
        frame.select(pl.col("tags_text").filter(pl.col("tags_text") != "").str.split(";").explode())
        .to_series().value_counts().iter_rows()
    )
    newest = reading.newest_order_day
    return {
        "percentiles": _percentiles(frame.filter(pl.col("r_score").is_not_null())),
        "segments": segment_counts,
        "lifecycle": dict(sorted(frame.group_by("lifecycle").len().iter_rows())),
        "tags": dict(sorted(tag_counts.items())),
        "grid": grid,
        "population": reading.population,
        "scored": reading.scored,
        "revenue_total": int(frame["monetary"].sum()),
        "newest_order_day": date.fromordinal(EPOCH_DAY.toordinal() + newest).isoformat() if newest is not None else None,
        "moves_counted": not no_moves,
    }


def _percentiles(scored: pl.DataFrame) -> dict[str, list]:
    """101 points of each value's distribution: a customer's standing, without a scan."""
    if scored.height == 0:
        return {}
    positions = [round(q / 100 * (scored.height - 1)) for q in range(101)]
    columns = ("recency_days", "frequency", "monetary")
    points = scored.select([pl.col(column).sort().gather(positions) for column in columns])
    return {column: points[column].to_list() for column in columns}


# --- the snapshot ------------------------------------------------------------

def _save_snapshot(store: "Store", frame: pl.DataFrame, refresh_id: int, first_seen: pl.DataFrame) -> None:
    try:
        fastread._ensure_dir(store)
    except OSError:
        return
    snapshot = frame.join(first_seen, on="customer", how="left").with_columns(
        first_refresh_id=pl.col("first_refresh_id").fill_null(refresh_id)
    ).drop("tags", strict=False)
    fastread._write_ipc(store, snapshot, store.cache_dir / SNAPSHOT)
    meta = store.cache_dir / SNAPSHOT_META
    meta.write_text(json.dumps({"refresh_id": refresh_id, "store_id": store.meta("store_id", ""),
                                "rows": snapshot.height, "format": SNAPSHOT_FORMAT}))


def load_snapshot(store: "Store", refresh_id: int | None) -> pl.DataFrame | None:
    """The saved reading, if it belongs to this store and to ``refresh_id``.

    ``refresh_id=None`` accepts whatever snapshot the store has.
    """
    try:
        meta = json.loads((store.cache_dir / SNAPSHOT_META).read_text())
        if meta.get("store_id") != store.meta("store_id", ""):
            return None
        if refresh_id is not None and meta.get("refresh_id") != refresh_id:
            return None
        if meta.get("format") != SNAPSHOT_FORMAT:
            return None
        frame = pl.read_ipc(store.cache_dir / SNAPSHOT)
    except (OSError, ValueError):
        return None
    if frame.height != meta.get("rows"):
        return None
    return frame


def current_reading(store: "Store") -> tuple[dict, pl.DataFrame]:
    """The latest refresh record and its full reading (from the snapshot or rebuilt)."""
    last = latest_refresh(store)
    if last is None:
        raise Conflict("there is no reading yet", hint="Run `tierdesk refresh` first.")
    snapshot = load_snapshot(store, last["id"])
    if snapshot is not None:
        snapshot = snapshot.with_columns(tags=tags_mod.as_list(pl.col("tags_text")))
    else:
        # The cache was deleted or is behind: the stored state plus what follows from the as-of.
        as_of = date.fromisoformat(last["as_of"])
        snapshot = reading_mod.with_outlook(
            _state_from_sqlite(store), reading_mod.day_number(as_of), last["lookback_days"]
        )
    return last, snapshot


def latest_refresh(store: "Store") -> dict | None:
    rows = store.rows("SELECT * FROM refreshes ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    row = rows[0]
    for key in ("method", "cut_points", "counts"):
        row[key] = json.loads(row[key])
    return row
