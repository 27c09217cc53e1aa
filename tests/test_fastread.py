"""The columnar copy stays in step with the store, whatever writes to it."""

import json
import sqlite3

import polars as pl

from core import fastread
from tests.conftest import make_store
from tests.factories import Shop, days_before
from tests.test_refresh import AS_OF


def from_sqlite(store, table):
    spec = fastread.TABLES[table]
    conn = sqlite3.connect(store.path)
    raw = fastread._sqlite_frame(conn, spec, "1 = 1", ())
    conn.close()
    return spec.shape(raw, store.config.zone)


def same(store, table):
    copy = fastread.load(store, table).sort("id")
    truth = from_sqlite(store, table).sort("id")
    assert copy.equals(truth), (copy, truth)


def manifest(store, table):
    return json.loads((store.cache_dir / f"{table}.json").read_text())


def test_appends_updates_deletes_and_outside_edits_are_followed(store):
    shop = Shop(store)
    for index in range(30):
        cid = shop.customer(f"c{index}")
        shop.orders(cid, days_before(AS_OF, index, index + 3))
    same(store, "orders")
    same(store, "customers")
    files = manifest(store, "orders")["files"]
    shop.orders(1, days_before(AS_OF, 1))  # an append: a new file, the old one kept
    same(store, "orders")
    assert manifest(store, "orders")["files"][0] == files[0] and len(manifest(store, "orders")["files"]) == 2
    with store.transaction() as conn:
        conn.execute("UPDATE orders SET refunded_cents = total_cents WHERE id = 5")
        conn.execute("DELETE FROM orders WHERE id = 7")
    same(store, "orders")
    assert len(manifest(store, "orders")["files"]) == 1  # compacted
    outside = sqlite3.connect(store.path)
    outside.execute("UPDATE customers SET accepts_email = -1 WHERE id = 3")
    outside.execute("INSERT INTO orders (order_id, customer, placed_at, total_cents) VALUES ('x', 2, 0, 100)")
    outside.commit()
    outside.close()
    same(store, "orders")
    same(store, "customers")


def test_a_reused_rowid_after_deleting_the_newest_row_is_seen(store):
    shop = Shop(store)
    cid = shop.customer("a")
    shop.orders(cid, days_before(AS_OF, 1, 2, 3))
    same(store, "orders")
    with store.transaction() as conn:
        conn.execute("DELETE FROM orders WHERE id = 3")
        conn.execute("INSERT INTO orders (id, order_id, customer, placed_at, total_cents) VALUES (3, 'new', 1, 5, 7)")
    same(store, "orders")


def test_a_new_time_zone_or_another_store_rebuilds_the_copy(tmp_path, store):
    shop = Shop(store)
    shop.orders(shop.customer("a"), days_before(AS_OF, 1))
    fastread.load(store, "orders")
    store.config_path.write_text('timezone = "Pacific/Kiritimati"\n')
    store.reload_config()
    same(store, "orders")
    assert manifest(store, "orders")["zone"] == "Pacific/Kiritimati"
    # a store file replaced under the cache (say, a regenerated demo) is not mistaken for the old one
    other = make_store(tmp_path / "other.db")
    Shop(other).customer("zz")
    other.close()
    store.close()
    for suffix in ("", "-wal", "-shm"):
        source = tmp_path / f"other.db{suffix}"
        if source.exists():
            source.replace(tmp_path / f"shop.db{suffix}")
    from core.store import Store

    reopened = Store.open(tmp_path / "shop.db")
    assert fastread.load(reopened, "orders").height == 0
    reopened.close()


def test_missing_cache_files_rebuild(store):
    shop = Shop(store)
    shop.orders(shop.customer("a"), days_before(AS_OF, 1, 2))
    fastread.load(store, "orders")
    for name in manifest(store, "orders")["files"]:
        (store.cache_dir / name).unlink()
    same(store, "orders")


def test_bulk_reads_run_adbc_in_a_child_and_a_later_write_survives(store, monkeypatch):
    """The hazard in performance.md: another SQLite library closing on our WAL file."""
    import sys

    monkeypatch.setattr(fastread, "SMALL_READ", 0)  # force the ADBC path even for a few rows
    shop = Shop(store)
    cid = shop.customer("a")
    shop.orders(cid, days_before(AS_OF, 1, 2, 3))
    frame = fastread.load(store, "orders")
    assert frame.height == 3
    # ADBC's own SQLite never entered this process, which holds the writer connection
    assert not any(name.startswith("adbc_driver") for name in sys.modules)
    with store.transaction() as conn:  # our writer still has the file open
        conn.execute("INSERT INTO orders (order_id, customer, placed_at, total_cents) VALUES ('after', ?, 1, 1)",
                     (cid,))
    fresh = sqlite3.connect(store.path)
    assert fresh.execute("SELECT count(*) FROM orders").fetchone()[0] == 4
    fresh.close()
    same(store, "orders")


def test_types_are_compact():
    schema = fastread._shape_orders(pl.DataFrame(schema=fastread._RAW_TYPES["orders"]),
                                    __import__("zoneinfo").ZoneInfo("UTC")).schema
    assert schema["customer"] == pl.Int32 and schema["day"] == pl.Int32
    assert schema["status"] == fastread.ORDER_STATUS
