"""Shopify's orders export: recognising it, and folding its line items into orders.

The export (Admin > Orders > Export) has one row per line item. The
order-level columns (Financial Status, Total, Created at, Refunded Amount,
Cancelled at, the billing address, ...) are filled on the first row of each
order only; Name (the order number, "#1001") and Email repeat on every row.
:func:`fold` turns the rows into one record per order in the importer's
order fields, so the ordinary orders validation and upsert apply to it.
The export has no product category; ``--map category=Vendor`` (or any other
column) takes it from the order's first line item.
"""

from __future__ import annotations

import polars as pl

from core.csvread import FIELDS, LINE, RAW, Table
from core.errors import InputError

# Columns whose presence together says "this is a Shopify orders export".
MARKERS = ("Name", "Financial Status", "Lineitem quantity")

# Where each order field comes from; the first column present wins.
SOURCES: dict[str, tuple[str, ...]] = {
    "order_id": ("Name",),
    "email": ("Email",),
    "placed_at": ("Created at",),
    "total": ("Total",),
    "discount": ("Discount Amount",),
    "refunded": ("Refunded Amount",),
    "status": ("Financial Status",),
    "cancelled_at": ("Cancelled at",),
    "name": ("Billing Name", "Shipping Name"),
    "phone": ("Billing Phone", "Phone", "Shipping Phone"),
    "region": ("Billing Province Name", "Billing Province", "Billing Country"),
    "accepts_email": ("Accepts Marketing",),
}
REQUIRED = ("order_id", "email", "placed_at", "total")

# Financial Status -> our order status. "refunded" is restated by the importer
# as paid with the whole total refunded (unless Refunded Amount says otherwise).
FINANCIAL_STATUS = {
    "paid": "paid",
    "partially_refunded": "paid",
    "refunded": "refunded",
    "pending": "pending",
    "authorized": "pending",
    "partially_paid": "pending",
    "unpaid": "pending",
    "voided": "voided",
    "expired": "voided",
}


def _key(name: str) -> str:
    return " ".join(name.lower().split())


def is_export(columns: tuple[str, ...]) -> bool:
    """Does this header look like Shopify's orders export?"""
    present = {_key(column) for column in columns}
    return all(_key(marker) in present for marker in MARKERS)


def source_columns(table: Table, mapping: dict[str, str]) -> dict[str, int]:
    """Which file column feeds each field: Shopify's layout, overridden by ``mapping``."""
    positions = {_key(column): index for index, column in enumerate(table.columns)}
    chosen: dict[str, int] = {}
    for field, candidates in SOURCES.items():
        for candidate in candidates:
            if _key(candidate) in positions:
                chosen[field] = positions[_key(candidate)]
                break
    for field, column in mapping.items():
        if _key(column) not in positions:
            raise InputError(
                f"--map {field}={column}: {table.name} has no column {column!r} "
                f"(columns: {', '.join(table.columns)})"
            )
        chosen[field] = positions[_key(column)]
    missing = [SOURCES[field][0] for field in REQUIRED if field not in chosen]
    if missing:
        raise InputError(f"{table.name}: a Shopify export without {', '.join(missing)}")
    return chosen


def fold(rows: pl.DataFrame, table: Table, sources: dict[str, int]) -> pl.DataFrame:
    """One record per order (by Name), from the order's first row, in the importer's field names.

    ``rows`` are the file's records (cells c0..cN, LINE, FIELDS, RAW) that are
    well formed; the result has a text column per field plus LINE, FIELDS and
    RAW of the order's first row. The status is already translated from
    Financial Status and Cancelled at.
    """
    def cell(field: str) -> pl.Expr:
        if field not in sources:
            return pl.lit(None, dtype=pl.String)
        text = pl.col(table.cell(sources[field])).str.strip_chars()
        return pl.when(text == "").then(None).otherwise(text)

    fields = list(dict.fromkeys([*SOURCES, *sources]))  # Shopify's, then any mapped in with --map
    records = rows.select(LINE, FIELDS, RAW, *[cell(field).alias(field) for field in fields])
    # The rows are in file order, so each order's first row comes first.
    orders = records.group_by("order_id", maintain_order=True).agg(pl.all().first())
    financial = pl.col("status").str.to_lowercase().str.replace_all(r"[\s\-]+", "_")
    status = (
        pl.when(pl.col("cancelled_at").is_not_null()).then(pl.lit("cancelled"))
        .otherwise(financial.replace_strict(FINANCIAL_STATUS, default=pl.col("status")))
    )
    return orders.with_columns(status.alias("status")).drop("cancelled_at").sort(LINE)


def labels(table: Table, sources: dict[str, int]) -> dict[str, str]:
    """The file's column name for each field, to name it in rejects."""
    return {field: table.columns[index] for field, index in sources.items()}
