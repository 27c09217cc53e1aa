"""The demo shop through the real engine: every segment, class and stage, and R/F/M checked in SQL."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import polars as pl
import pytest
from typer.testing import CliRunner

from console.cli import app
from core.segments import CN8, RF11
from core.lifecycle import STAGES
from core.store import Store
from tests.conftest import AS_OF

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    result = runner.invoke(app, ["demo", "--no-open", "--customers", "5000", "--as-of", AS_OF.isoformat(),
                                 "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert "Reading at" in result.stdout
    return path


def invoke(path, *args):
    return runner.invoke(app, [*map(str, args), "--db", str(path)])


def test_demo_takes_its_first_reading_and_fills_every_segment_class_and_stage(shop):
    rf11 = json.loads(invoke(shop, "tiers", "--json").stdout)
    counts = {row["segment"]: row["customers"] for row in rf11["rows"]}
    assert all(counts[name] > 0 for name, _, _ in RF11), counts
    cn8 = json.loads(invoke(shop, "tiers", "--model", "cn8", "--json").stdout)
    counts = {row["segment"]: row["customers"] for row in cn8["rows"]}
    assert all(counts[name] > 0 for name, *_ in CN8), counts
    assert all(rf11["lifecycle"].get(stage, 0) > 0 for stage in STAGES), rf11["lifecycle"]


def test_export_gives_one_row_per_customer(shop):
    result = invoke(shop, "export", "customers", "--format", "csv")
    assert result.exit_code == 0
    frame = pl.read_csv(io.BytesIO(result.stdout_bytes))
    assert frame.height == 5000 and frame["segment"].null_count() == 0


def test_rfm_agrees_with_plain_sql_customer_by_customer(shop):
    """An independent recomputation: Asia/Shanghai has no DST, so a shop day is UTC + 8 h."""
    store = Store.open(shop, readonly=True)
    start = (AS_OF - timedelta(days=364)).isoformat()
    day = "date(o.placed_at + 8 * 3600, 'unixepoch')"
    qualifying = "o.status = 'paid' AND o.total_cents > o.refunded_cents"
    expected = store.rows(
        f"""
        SELECT c.id AS customer,
               max(CASE WHEN {qualifying} AND {day} <= :as_of THEN {day} END) AS last_order_day,
               sum(CASE WHEN {qualifying} AND {day} BETWEEN :start AND :as_of THEN 1 ELSE 0 END) AS frequency,
               coalesce(sum(CASE WHEN {qualifying} AND {day} BETWEEN :start AND :as_of
                   THEN o.total_cents - o.refunded_cents END), 0) AS monetary_cents
        FROM customers c LEFT JOIN orders o ON o.customer = c.id
        WHERE c.signed_up_at IS NULL OR date(c.signed_up_at + 8 * 3600, 'unixepoch') <= :as_of
           OR c.id IN (SELECT customer FROM orders)
        GROUP BY c.id ORDER BY c.id
        """,
        {"as_of": AS_OF.isoformat(), "start": start},
    )
    actual = store.rows(
        "SELECT customer, last_order_day, frequency, monetary_cents FROM customer_state ORDER BY customer"
    )
    store.close()
    assert len(actual) == 5000
    assert actual == expected


def test_the_seeded_orders_copy_is_what_the_store_holds(shop, tmp_path):
    """The demo writes the columnar copy from what it generated; it must equal a rebuild from SQLite."""
    import shutil

    from core import fastread

    store = Store.open(shop)
    seeded = fastread.load(store, "orders").sort("id")
    shutil.copytree(store.cache_dir, tmp_path / "kept")
    for name in store.cache_dir.glob("orders*"):
        name.unlink()
    rebuilt = fastread.load(store, "orders").sort("id")
    store.close()
    assert seeded.height == rebuilt.height > 0
    assert seeded.equals(rebuilt)
