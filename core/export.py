"""Exports: customers with their reading, orders, touches and campaign members, as CSV, Parquet or JSON.

Money leaves as exact decimals (``12.30``), never floats; instants as ISO
times in the shop's zone.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import polars as pl

from core import fastread
from core.errors import InputError

if TYPE_CHECKING:
    from core.store import Store
    from core.users import User

FORMATS = ("csv", "parquet", "json")
CUSTOMER_COLUMNS = (
    "customer_id", "name", "email", "phone", "region", "timezone", "signed_up_at",
    "accepts_email", "accepts_sms", "accepts_push", "accepts_wecom",
    "recency_days", "frequency", "monetary", "aov", "r_score", "f_score", "m_score",
    "segment", "lifecycle", "tags", "churn_risk", "clv", "as_of",
)


def money(cents: pl.Expr) -> pl.Expr:
    """Integer cents as an exact decimal string: 1230 -> '12.30', -5 -> '-0.05'."""
    sign = pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    magnitude = cents.abs()
    return pl.when(cents.is_null()).then(None).otherwise(
        pl.concat_str([sign, (magnitude // 100).cast(pl.String), pl.lit("."),
                       (magnitude % 100).cast(pl.String).str.zfill(2)])
    )


def _instant(column: str, zone: str) -> pl.Expr:
    return (pl.from_epoch(pl.col(column), time_unit="s").dt.replace_time_zone("UTC")
            .dt.convert_time_zone(zone).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))


def customers(store: "Store", user: "User") -> pl.DataFrame:
    user.require("export")
    from core.refresh import current_reading, latest_refresh

    zone = store.config.timezone
    identity = _identity(store)
    if latest_refresh(store) is None:
        reading = pl.DataFrame(schema={"customer": pl.Int32})
        as_of = None
    else:
        last, reading = current_reading(store)
        as_of = last["as_of"]
    from core.audience import manual_tags
    from core.tags import with_manual

    joined = identity.join(reading, left_on="id", right_on="customer", how="left")
    if "tags" in joined.columns:
        joined = with_manual(joined, manual_tags(store), key="id")
    for name, dtype in (("recency_days", pl.Int32), ("frequency", pl.Int32), ("monetary", pl.Int64),
                        ("aov", pl.Int64), ("r_score", pl.Int8), ("f_score", pl.Int8), ("m_score", pl.Int8),
                        ("segment", pl.String), ("lifecycle", pl.String), ("tags", pl.List(pl.String)),
                        ("churn_risk", pl.Float64), ("clv", pl.Int64)):
        if name not in joined.columns:
            joined = joined.with_columns(pl.lit(None, dtype=dtype).alias(name))
    return joined.sort("id").select(
        "customer_id", "name", "email", "phone", "region", "timezone",
        _instant("signed_up_at", zone).alias("signed_up_at"),
        "accepts_email", "accepts_sms", "accepts_push", "accepts_wecom",
        "recency_days", "frequency", money(pl.col("monetary")).alias("monetary"),
        money(pl.col("aov")).alias("aov"), "r_score", "f_score", "m_score", "segment", "lifecycle",
        pl.col("tags").list.join(";").alias("tags"), "churn_risk", money(pl.col("clv")).alias("clv"),
        pl.lit(as_of, dtype=pl.String).alias("as_of"),
    )


def _identity(store: "Store") -> pl.DataFrame:
    conn = store.conn
    rows = conn.execute(
        "SELECT id, customer_id, name, email, phone, region, timezone, signed_up_at, accepts_email, accepts_sms, "
        "accepts_push, accepts_wecom FROM customers ORDER BY id"
    ).fetchall()
    return pl.DataFrame(rows, orient="row", schema={
        "id": pl.Int32, "customer_id": pl.String, "name": pl.String, "email": pl.String, "phone": pl.String,
        "region": pl.String, "timezone": pl.String, "signed_up_at": pl.Int64, "accepts_email": pl.Int8,
        "accepts_sms": pl.Int8, "accepts_push": pl.Int8, "accepts_wecom": pl.Int8})


def orders(store: "Store", user: "User") -> pl.DataFrame:
    user.require("export")
    zone = store.config.timezone
    frame = fastread.load(store, "orders")
    ids = pl.DataFrame(store.conn.execute("SELECT id, order_id FROM orders").fetchall(), orient="row",
                       schema={"id": pl.Int64, "order_id": pl.String})
    people = fastread.load(store, "customers").select(pl.col("id").cast(pl.Int32).alias("customer"), "customer_id")
    return (
        frame.join(ids, on="id").join(people, on="customer", how="left").sort("id")
        .select(
            "order_id", "customer_id", _instant("placed_at", zone).alias("placed_at"),
            money(pl.col("total_cents")).alias("total"), money(pl.col("discount_cents")).alias("discount"),
            money(pl.col("refunded_cents")).alias("refunded"),
            money(pl.col("total_cents") - pl.col("refunded_cents")).alias("net"),
            pl.col("status").cast(pl.String), pl.col("category").cast(pl.String),
        )
    )


def touches(store: "Store", user: "User", campaign: int | None = None) -> pl.DataFrame:
    """The touch ledger (one row per message handed to an adapter) with each touch's delivery state."""
    user.require("export")
    zone = store.config.timezone
    where, params = ("WHERE t.campaign = ?", (campaign,)) if campaign is not None else ("", ())
    if campaign is not None:
        _require_campaign(store, campaign)
    rows = store.conn.execute(
        "SELECT t.id, t.campaign, cp.name, c.customer_id, t.channel, t.at, t.counts, t.arm, t.reserved_at, "
        "o.adapter, o.status, o.attempts, o.delivered_at, o.idempotency_key "
        "FROM touches AS t JOIN customers AS c ON c.id = t.customer JOIN campaigns AS cp ON cp.id = t.campaign "
        f"LEFT JOIN outbox AS o ON o.touch = t.id {where} ORDER BY t.id",
        params,
    ).fetchall()
    frame = pl.DataFrame(rows, orient="row", schema={
        "touch_id": pl.Int64, "campaign_id": pl.Int64, "campaign": pl.String, "customer_id": pl.String,
        "channel": pl.String, "at": pl.Int64, "counts_toward_caps": pl.Int8, "arm": pl.String,
        "reserved_at": pl.Int64, "adapter": pl.String, "status": pl.String, "attempts": pl.Int64,
        "delivered_at": pl.Int64, "idempotency_key": pl.String})
    return frame.with_columns(
        _instant("at", zone).alias("at"), _instant("reserved_at", zone).alias("reserved_at"),
        _instant("delivered_at", zone).alias("delivered_at"),
        pl.col("counts_toward_caps").cast(pl.Boolean),
    )


def members(store: "Store", user: "User", campaign: int | None = None) -> pl.DataFrame:
    """Campaign send plans: every matched customer with arm, reason code and what the send did."""
    user.require("export")
    zone = store.config.timezone
    where, params = ("WHERE m.campaign = ?", (campaign,)) if campaign is not None else ("", ())
    if campaign is not None:
        _require_campaign(store, campaign)
    rows = store.conn.execute(
        "SELECT m.campaign, cp.name, c.customer_id, m.segment, m.arm, m.reason, m.rule, m.planned_at, m.outcome, "
        "m.outcome_reason FROM campaign_members AS m JOIN customers AS c ON c.id = m.customer "
        f"JOIN campaigns AS cp ON cp.id = m.campaign {where} ORDER BY m.campaign, c.customer_id",
        params,
    ).fetchall()
    frame = pl.DataFrame(rows, orient="row", schema={
        "campaign_id": pl.Int64, "campaign": pl.String, "customer_id": pl.String, "segment": pl.String,
        "arm": pl.String, "reason": pl.String, "rule": pl.String, "planned_at": pl.Int64, "outcome": pl.String,
        "outcome_reason": pl.String})
    return frame.with_columns(_instant("planned_at", zone).alias("planned_at"))


def _require_campaign(store: "Store", campaign: int) -> None:
    from core.errors import NotFound

    if store.scalar("SELECT count(*) FROM campaigns WHERE id = ?", (campaign,)) == 0:
        raise NotFound(f"no campaign {campaign}")


def write(frame: pl.DataFrame, fmt: str, destination: Path | BinaryIO) -> None:
    """Write ``frame`` as ``fmt`` to a path or a binary stream."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "csv":
        frame.write_csv(destination)
    elif fmt == "parquet":
        frame.write_parquet(destination)
    else:
        buffer = io.BytesIO()
        frame.write_json(buffer)
        data = buffer.getvalue()
        if isinstance(destination, Path):
            destination.write_bytes(data + b"\n")
        else:
            destination.write(data + b"\n")
