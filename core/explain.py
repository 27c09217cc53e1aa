"""Why a customer reads the way they do, at an as-of (DESIGN "Explain").

At the as-of of the latest refresh the population's parameters (cut points,
medians, the cn8 split) come from that refresh's record and the scores from
the stored state; at any other as-of the whole reading is computed again,
because quantile scores depend on everyone. Either way the customer's own
facts are recomputed from their orders with the same functions the refresh
uses, so the explanation cannot drift from the rule.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import polars as pl

from core import fastread, lifecycle, reading as reading_mod, rfm, segments, tags
from core.customers import Match
from core.refresh import latest_refresh
from core.segments import Cn8Split

if TYPE_CHECKING:
    from core.store import Store


def explain(store: "Store", match: Match, as_of: date | None = None) -> dict[str, Any]:
    config = store.config
    latest = latest_refresh(store)
    if as_of is None:
        if latest is None:
            from core.errors import Conflict

            raise Conflict("there is no reading to explain yet",
                           hint="Run `tierdesk refresh`, or pass --as-of DATE to compute one for this customer.")
        as_of = date.fromisoformat(latest["as_of"])
    as_of_day = reading_mod.day_number(as_of)
    lookback = config.rfm.lookback_days
    zone = config.zone

    orders = _customer_frame(store, match.id, "orders")
    events = _customer_frame(store, match.id, "events")
    classified = _classify(orders, as_of_day, lookback)

    stored = latest is not None and latest["as_of"] == as_of.isoformat()
    if stored:
        assert latest is not None
        method, cut_points = latest["method"], latest["cut_points"]
        split = Cn8Split(**cut_points["cn8_split"])
        median_aov = cut_points["median_aov_cents"]
        state = store.rows("SELECT * FROM customer_state WHERE customer = ?", (match.id,))
        scores = ({k: state[0][k] for k in ("r_score", "f_score", "m_score")} if state
                  else {"r_score": None, "f_score": None, "m_score": None})
        stored_segment = state[0]["segment"] if state else None
        model = latest["model"]
        source = f"the refresh of {latest['as_of']} (#{latest['id']})"
    else:
        full = reading_mod.compute(fastread.load(store, "orders"), fastread.load(store, "events"),
                                   fastread.load(store, "customers"), as_of, config)
        method = {name: {"method": r.method, "rule": r.rule} for name, r in full.reports.items()}
        cut_points = full.method()
        split, median_aov, model = full.split, full.median_aov, full.model
        row = full.frame.filter(pl.col("customer") == match.id)
        scores = ({k: row[k][0] for k in ("r_score", "f_score", "m_score")} if row.height
                  else {"r_score": None, "f_score": None, "m_score": None})
        stored_segment = row["segment"][0] if row.height else None
        source = f"a reading computed now for {as_of} (no refresh has that as-of)"

    facts_frame = rfm.order_facts(orders.lazy(), as_of_day, lookback).collect()
    facts = facts_frame.row(0, named=True) if facts_frame.height else {
        "first_day": None, "last_day": None, "last_order_at": None, "frequency": 0, "monetary": 0,
        "orders_30d": 0, "discounted": 0}
    recency = as_of_day - facts["last_day"] if facts["last_day"] is not None else None
    frequency, monetary = facts["frequency"], facts["monetary"]
    aov = (monetary * 2 + frequency) // (2 * frequency) if frequency else None
    known_days = [day for day in (_signup_day(store, match.id, zone), facts["first_day"]) if day is not None]
    signup_day = min(known_days) if known_days else None  # as the reading: never after the first order

    values = {"recency_days": recency, "frequency": frequency, "monetary": monetary}
    score_lines = []
    for key, column, value in (("R", "r_score", recency), ("F", "f_score", frequency), ("M", "m_score", monetary)):
        score = scores[column]
        band = cut_points.get(key, {}).get("bands", {}).get(str(score)) if score is not None else None
        score_lines.append({
            "score": key, "value": value, "assigned": score, "method": method[key]["method"],
            "rule": method[key]["rule"], "band": band,
        })
    segment_words = segments.describe_cell(
        model, config, scores["r_score"], scores["f_score"], scores["m_score"], split, values
    )
    if scores["r_score"] is None:
        segment_words = (
            f"{segments.LOST}: qualifying orders, but none in the {lookback}-day window"
            if facts["last_day"] is not None else f"{segments.PROSPECT}: no qualifying order ever"
        )

    stage_facts = {"signup_day": signup_day, "last_day": facts["last_day"], "recency_days": recency,
                   "orders_30d": facts["orders_30d"]}
    stage, stage_trace = _lifecycle_trace(config.lifecycle, as_of_day, stage_facts)
    tag_trace = _tag_trace(config, facts, scores, recency, aov, median_aov, orders, events, as_of_day, lookback)
    manual = store.rows("SELECT tag, added_by, note FROM manual_tags WHERE customer = ? ORDER BY tag", (match.id,))

    return {
        "customer_id": match.customer_id,
        "name": match.name,
        "as_of": as_of.isoformat(),
        "source": source,
        "window": {"start": _iso(as_of_day - lookback + 1), "end": as_of.isoformat(), "days": lookback},
        "orders": classified,
        "facts": {"recency_days": recency, "frequency": frequency, "monetary_cents": monetary, "aov_cents": aov,
                  "first_order_day": _iso(facts["first_day"]), "last_order_day": _iso(facts["last_day"])},
        "scores": score_lines,
        "model": model,
        "segment": stored_segment,
        "segment_rule": segment_words,
        "lifecycle": stage,
        "lifecycle_trace": stage_trace,
        "tags": tag_trace,
        "manual_tags": manual,
    }


def _iso(day: int | None) -> str | None:
    return pl.Series([day], dtype=pl.Int32).cast(pl.Date)[0].isoformat() if day is not None else None


def _customer_frame(store: "Store", customer: int, table: str) -> pl.DataFrame:
    """One customer's rows in the same shape the refresh reads (through the index)."""
    spec = fastread.TABLES[table]
    raw = fastread._sqlite_frame(store.conn, spec, "customer = ?", (customer,))
    shaped = spec.shape(raw, store.config.zone)
    if table == "orders":
        ids = store.conn.execute("SELECT id, order_id FROM orders WHERE customer = ?", (customer,)).fetchall()
        names = pl.DataFrame(ids, schema={"id": pl.Int64, "order_id": pl.String}, orient="row")
        shaped = shaped.join(names, on="id", how="left")
    return shaped


def _signup_day(store: "Store", customer: int, zone) -> int | None:
    value = store.scalar("SELECT signed_up_at FROM customers WHERE id = ?", (customer,))
    if value is None:
        return None
    return pl.select(fastread.local_days(pl.lit(value, dtype=pl.Int64), zone)).item()


def _classify(orders: pl.DataFrame, as_of_day: int, lookback: int) -> list[dict[str, Any]]:
    window_start = as_of_day - lookback + 1
    if orders.height == 0:
        return []
    net = pl.col("total_cents") - pl.col("refunded_cents")
    labelled = orders.sort("placed_at").with_columns(
        net_cents=net,
        date=pl.col("day").cast(pl.Date),
        reason=pl.when(pl.col("day") > as_of_day).then(pl.lit("after the as-of"))
        .otherwise(rfm.exclusion_reason()),
    ).with_columns(
        used=pl.when(pl.col("reason").is_not_null()).then(pl.lit("excluded"))
        .when(pl.col("day") < window_start).then(pl.lit("before the window (recency only)"))
        .otherwise(pl.lit("counted")),
    )
    return [
        {"order_id": row["order_id"], "date": row["date"].isoformat(),
         "total_cents": row["total_cents"], "refunded_cents": row["refunded_cents"], "net_cents": row["net_cents"],
         "status": str(row["status"]), "used": row["used"], "reason": row["reason"]}
        for row in labelled.iter_rows(named=True)
    ]


def _lifecycle_trace(config, as_of_day: int, facts: dict) -> tuple[str, list[dict]]:
    checks = {
        "new": facts["signup_day"] is not None and 0 <= as_of_day - facts["signup_day"] <= config.new_days,
        "prospect": facts["last_day"] is None,
        "churned": facts["recency_days"] is not None and facts["recency_days"] >= config.churned_days,
        "dormant": facts["recency_days"] is not None and facts["recency_days"] >= config.dormant_days,
        "active": facts["orders_30d"] >= config.active_orders_30d,
        "occasional": True,
    }
    trace = []
    chosen = None
    for stage, words in lifecycle.rules(config):
        matched = bool(checks[stage])
        trace.append({"stage": stage, "rule": words, "matched": matched, "chosen": matched and chosen is None})
        if matched and chosen is None:
            chosen = stage
    return chosen or "occasional", trace


def _tag_trace(config, facts, scores, recency, aov, median_aov, orders, events, as_of_day, lookback) -> list[dict]:
    event_facts = tags.event_facts(events.lazy(), as_of_day, config.tags).collect()
    affinity = tags.affinity(orders.lazy(), as_of_day, lookback, config.tags).collect()
    row = {
        "frequency": facts["frequency"], "discounted": facts["discounted"], "aov": aov,
        "m_score": scores["m_score"], "recency_days": recency, "last_order_at": facts["last_order_at"],
        "social_events": event_facts["social_events"][0] if event_facts.height else 0,
        "koc_events": event_facts["koc_events"][0] if event_facts.height else 0,
        "last_cart_at": event_facts["last_cart_at"][0] if event_facts.height else None,
    }
    frame = pl.DataFrame([row], schema={
        "frequency": pl.Int32, "discounted": pl.Int32, "aov": pl.Int64, "m_score": pl.Int8,
        "recency_days": pl.Int32, "last_order_at": pl.Int64, "social_events": pl.Int32,
        "koc_events": pl.Int32, "last_cart_at": pl.Int64,
    })
    trace = []
    for rule in tags.rules(config.tags, median_aov):
        fired = bool(frame.select(rule.expr.fill_null(False)).item())
        trace.append({"tag": rule.name, "rule": rule.describe, "fired": fired})
    affinity_tag = affinity["affinity_tag"][0] if affinity.height else None
    trace.append({"tag": affinity_tag or "affinity:<category>", "rule": tags.affinity_describe(config.tags),
                  "fired": affinity_tag is not None})
    return trace
