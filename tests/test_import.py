"""The importers, through core: every format, every bad-input kind, and what lands."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core import csvread
from core.errors import InputError, PermissionDenied
from core.importer import ImportResult, import_file, list_rejects
from core.records import SeenKeys
from core.users import User
from tests.conftest import NOW, make_store

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
OWNER = User(login="owner", role="owner", known=True)
DATA_TABLES = ("customers", "orders", "events", "consent_events")


def run(store, kind, path, **options) -> ImportResult:
    return import_file(store, kind, path, actor=OWNER, now=NOW, **options)


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def dump(store) -> dict[str, list[tuple]]:
    """Every row of every table, to compare a store before and after."""
    tables = [row[0] for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {table: sorted(store.conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr) for table in tables}


def data(store) -> dict[str, list[tuple]]:
    full = dump(store)
    return {table: full[table] for table in DATA_TABLES}


def orders(store) -> dict[str, dict]:
    rows = store.rows(
        "SELECT o.order_id, c.customer_id, o.placed_at, o.total_cents, o.discount_cents, o.refunded_cents, o.status, "
        "o.category FROM orders o JOIN customers c ON c.id = o.customer ORDER BY o.order_id"
    )
    return {row.pop("order_id"): row for row in rows}


@pytest.fixture(params=[False, True], ids=["direct", "staged"])
def bulk(request, tmp_path, monkeypatch):
    """Orders written by executemany, or staged through ADBC in a child process (large files)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield request.param
    assert list(scratch.iterdir()) == []  # staging cleans up after itself, whatever happened


def reasons(result: ImportResult) -> list[tuple[int | None, str | None, str]]:
    return [(reject.line, reject.field, reject.reason) for reject in result.rejects]


ORDERS_HEADER = "order_id,customer_id,placed_at,total,discount,status,category\n"


# --- formats ----------------------------------------------------------------------------


def test_an_orders_csv_lands_and_creates_its_customers(store, bulk):
    result = run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
    assert (result.status, result.exit_code) == ("landed", 0)
    assert (result.rows, result.inserted, result.updated, result.unchanged, result.rejected) == (5, 5, 0, 0, 0)
    assert result.customers_created == 4
    assert orders(store)["1002"] == {
        "customer_id": "C002", "placed_at": 1717337100, "total_cents": 12000, "discount_cents": 0,
        "refunded_cents": 2000, "status": "paid", "category": "bags",
    }
    # "refunded" is paid with the whole total refunded.
    assert orders(store)["1005"]["status"] == "paid" and orders(store)["1005"]["refunded_cents"] == 1500
    ana = store.rows("SELECT * FROM customers WHERE customer_id = 'C001'")[0]
    assert ana["email"] == "ana@example.com"
    assert ana["signed_up_at"] == orders(store)["1001"]["placed_at"]  # their first order
    assert ana["source"] == "import:orders.csv"
    imported = store.rows("SELECT * FROM imports")[0]
    assert (imported["kind"], imported["status"], imported["inserted"], imported["customers_created"]) == (
        "orders", "landed", 5, 4)
    audit = store.rows("SELECT action, details FROM audit WHERE action LIKE 'import.%'")
    assert audit[0]["action"] == "import.orders" and '"inserted": 5' in audit[0]["details"]


def test_reimporting_the_same_file_changes_nothing(store, bulk):
    run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
    before = data(store)
    again = run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
    assert (again.inserted, again.updated, again.unchanged, again.customers_created) == (0, 0, 5, 0)
    assert again.exit_code == 0
    assert data(store) == before
    assert store.scalar("SELECT count(*) FROM changes") == 0


def test_a_changed_row_updates_its_order(store, bulk, tmp_path):
    first = write(tmp_path, "o.csv", ORDERS_HEADER + "A1,C1,2025-01-05,10.00,0,paid,shoes\nA2,C1,2025-01-06,20.00,0,paid,\n")
    run(store, "orders", first, bulk=bulk)
    changed = write(tmp_path, "o.csv", ORDERS_HEADER + "A1,C1,2025-01-05,12.00,0,paid,shoes\nA2,C1,2025-01-06,20.00,0,paid,\n")
    result = run(store, "orders", changed, bulk=bulk)
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    assert orders(store)["A1"]["total_cents"] == 1200
    assert store.scalar("SELECT import_id FROM orders WHERE order_id = 'A1'") == result.import_id
    assert store.scalar("SELECT count(*) FROM changes WHERE tbl = 'orders'") == 1


def test_shopify_export_groups_line_items_into_orders(store, bulk):
    result = run(store, "orders", FIXTURES / "shopify_orders.csv", bulk=bulk)
    assert result.format == "shopify" and result.exit_code == 0
    assert (result.rows, result.inserted, result.customers_created) == (6, 6, 4)
    got = orders(store)
    assert sorted(got) == ["#1001", "#1002", "#1003", "#1004", "#1005", "#1006"]
    summary = {order_id: (row["total_cents"], row["refunded_cents"], row["status"]) for order_id, row in got.items()}
    assert summary == {
        "#1001": (5629, 0, "paid"),
        "#1002": (8000, 1000, "paid"),  # partial refund restated onto the order
        "#1003": (3000, 0, "cancelled"),  # Cancelled at wins over Financial Status
        "#1004": (1500, 0, "pending"),  # authorized
        "#1005": (2500, 2500, "paid"),  # refunded in full
        "#1006": (4250, 0, "paid"),
    }
    assert got["#1001"]["discount_cents"] == 500
    assert got["#1001"]["placed_at"] == 1725372840  # 2024-09-03 10:14:00 -0400
    net_paid = sum(total - refunded for total, refunded, status in summary.values() if status == "paid")
    assert net_paid == 16879
    # Customers are found or created by email, lowercased, with billing details.
    customers = {row["customer_id"]: row for row in store.rows("SELECT * FROM customers")}
    assert sorted(customers) == ["ada@example.com", "bo@example.com", "cy@example.com", "dee@example.com"]
    ada = customers["ada@example.com"]
    assert (ada["name"], ada["phone"], ada["region"], ada["accepts_email"]) == (
        "Ada Example", "+1 555 0100", "New York", 1)
    assert ada["signed_up_at"] == got["#1001"]["placed_at"]
    assert (got["#1004"]["customer_id"], got["#1006"]["customer_id"]) == ("ada@example.com", "bo@example.com")
    assert store.rows("SELECT channel, state, source FROM consent_events") == [
        {"channel": "email", "state": 1, "source": "import:shopify_orders.csv"}]

    before = data(store)
    again = run(store, "orders", FIXTURES / "shopify_orders.csv", bulk=bulk)
    assert (again.inserted, again.updated, again.unchanged, again.customers_created) == (0, 0, 6, 0)
    assert data(store) == before


def test_shopify_orders_split_across_batches_stay_whole(store, monkeypatch):
    whole = make_store(store.path.with_name("whole.db"))
    run(whole, "orders", FIXTURES / "shopify_orders.csv")
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 700)  # a few lines per batch
    result = run(store, "orders", FIXTURES / "shopify_orders.csv")
    assert (result.rows, result.inserted, result.rejected) == (6, 6, 0)
    assert orders(store) == orders(whole)
    whole.close()


def test_the_last_shopify_order_survives_trailing_blank_lines(store, tmp_path, monkeypatch):
    path = tmp_path / "export.csv"
    path.write_text((FIXTURES / "shopify_orders.csv").read_text() + "\n\n")
    monkeypatch.setattr(csvread, "EXACT_BATCH_ROWS", 10)  # a batch ends with the last record
    result = run(store, "orders", path)
    assert (result.rows, result.inserted) == (6, 6)


def test_shopify_fields_can_be_mapped_too(store):
    run(store, "orders", FIXTURES / "shopify_orders.csv", mapping={"category": "Vendor"})
    got = orders(store)
    assert (got["#1001"]["category"], got["#1002"]["category"]) == ("Paper & Co", "Clayhouse")  # first line item's


def test_progress_is_reported_up_to_the_whole_file(store, monkeypatch):
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 100)
    seen = []
    run(store, "orders", FIXTURES / "orders.csv", progress=lambda done, total: seen.append((done, total)))
    assert len(seen) > 2
    assert seen[-1] == (5, 5)
    assert all(done <= total for done, total in seen)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_shopify_customers_are_found_by_email(store, tmp_path):
    known = write(tmp_path, "c.csv", "customer_id,email,name\nK-1,BO@example.com,Bo\n")
    run(store, "customers", known)
    result = run(store, "orders", FIXTURES / "shopify_orders.csv")
    assert result.customers_created == 3
    assert orders(store)["#1002"]["customer_id"] == "K-1"


def test_a_gb18030_file_with_chinese_columns_maps_with_map(store):
    mapping = {"order_id": "单号", "customer_id": "买家昵称", "placed_at": "成交时间", "total": "成交金额",
               "category": "商品分类"}
    result = run(store, "orders", FIXTURES / "orders_gb18030.csv", mapping=mapping)
    assert (result.encoding, result.inserted, result.rejected) == ("gb18030", 4, 0)
    got = orders(store)
    assert got["TB20250301001"]["total_cents"] == 123450  # "¥1,234.50"
    assert got["TB20250301001"]["customer_id"] == "小王"
    assert got["TB20250301001"]["category"] == "女装"
    assert got["TB20250302003"]["status"] == "cancelled"  # 交易关闭, via the 订单状态 alias
    assert got["TB20250303004"]["status"] == "pending"  # 等待买家付款


def test_a_gb18030_file_without_the_map_names_the_missing_columns(store):
    with pytest.raises(InputError) as caught:
        run(store, "orders", FIXTURES / "orders_gb18030.csv")
    message = str(caught.value)
    assert "orders_gb18030.csv: no customer_id or email, placed_at, total column" in message
    assert "单号, 买家昵称, 成交时间" in message and "--map customer_id=COLUMN" in message


def test_a_bom_file_reads_its_first_column(store):
    result = run(store, "customers", FIXTURES / "customers_bom.csv")
    assert (result.encoding, result.inserted, result.rejected) == ("utf-8-sig", 3, 0)
    ana = store.rows("SELECT * FROM customers WHERE customer_id = 'C001'")[0]
    assert (ana["email"], ana["timezone"], ana["accepts_email"], ana["accepts_sms"]) == (
        "ana@example.com", "America/Sao_Paulo", 1, 0)
    ben = store.rows("SELECT * FROM customers WHERE customer_id = 'C002'")[0]
    assert ben["accepts_sms"] == -1 and ben["phone"] is None
    consent = store.rows("SELECT c.customer_id, e.channel, e.state FROM consent_events e "
                         "JOIN customers c ON c.id = e.customer ORDER BY e.id")
    assert [(row["customer_id"], row["channel"], row["state"]) for row in consent] == [
        ("C001", "email", 1), ("C002", "email", 1), ("C002", "sms", -1), ("C003", "sms", 1)]


def test_a_semicolon_file_with_decimal_commas(store):
    result = run(store, "orders", FIXTURES / "orders_semicolon.csv")
    assert (result.inserted, result.rejected) == (3, 0)
    got = orders(store)
    assert (got["S-1"]["total_cents"], got["S-2"]["total_cents"], got["S-2"]["discount_cents"]) == (1250, 123456, 1000)
    assert (got["S-2"]["status"], got["S-3"]["status"]) == ("paid", "cancelled")


@pytest.mark.parametrize("delimiter", ["\t", "|", ";", ","])
def test_any_delimiter(store, tmp_path, delimiter):
    rows = [["order_id", "customer_id", "placed_at", "total", "category"],
            ["D1", "C1", "2025-01-05 10:00", "10.50", "home, garden"], ["D2", "C2", "2025-01-06", "3", ""]]
    text = "\n".join(delimiter.join(f'"{cell}"' if "," in cell else cell for cell in row) for row in rows) + "\n"
    result = run(store, "orders", write(tmp_path, "d.csv", text))
    assert (result.inserted, result.rejected) == (2, 0)
    assert orders(store)["D1"]["category"] == "home, garden"
    assert orders(store)["D1"]["total_cents"] == 1050


def test_parquet_events(store):
    run(store, "orders", FIXTURES / "orders.csv")
    result = run(store, "events", FIXTURES / "events.parquet")
    assert (result.format, result.inserted, result.rejected) == ("parquet", 6, 0)
    rows = store.rows("SELECT c.customer_id, e.kind, e.at, e.category FROM events e "
                      "JOIN customers c ON c.id = e.customer ORDER BY e.at")
    assert rows[0] == {"customer_id": "C001", "kind": "view", "at": 1717203600, "category": "shoes"}
    assert rows[4]["category"] == ""
    again = run(store, "events", FIXTURES / "events.parquet")
    assert (again.inserted, again.unchanged) == (0, 6)


def test_parquet_rejects_name_the_row_and_show_it(store, tmp_path):
    path = tmp_path / "orders.parquet"
    pl.DataFrame({
        "order_id": ["P1", "P2", "P3"],
        "customer_id": ["C1", "C1", None],
        "placed_at": ["2025-01-01", "someday", "2025-01-02"],
        "total": [10.5, 3.0, 1.0],
    }).write_parquet(path)
    result = run(store, "orders", path)
    assert result.where_word == "row"
    assert reasons(result)[0][:2] == (2, "placed_at")
    assert reasons(result)[1] == (3, "customer_id", "customer_id is empty")
    assert result.rejects[0].raw == '{"order_id":"P2","customer_id":"C1","placed_at":"someday","total":"3.0"}'
    assert orders(store)["P1"]["total_cents"] == 1050


def test_typed_parquet_columns(store, tmp_path):
    from datetime import date, datetime

    path = tmp_path / "typed.parquet"
    pl.DataFrame({
        "order_id": [1, 2],
        "customer_id": ["C1", "C2"],
        "placed_at": [datetime(2025, 1, 1, 8, 30), datetime(2025, 1, 2)],
        "signup": [date(2024, 1, 1), date(2024, 2, 1)],
        "total": [19.99, 5.0],
    }).write_parquet(path)
    result = run(store, "orders", path)
    assert result.inserted == 2
    got = orders(store)
    assert got["1"]["placed_at"] == 1735720200 and got["1"]["total_cents"] == 1999


def test_parquet_columns_no_field_uses_are_ignored_whatever_their_type(store, tmp_path):
    path = tmp_path / "extra.parquet"
    pl.DataFrame({
        "order_id": ["X1", "X2"], "customer_id": ["C1", "C2"], "placed_at": ["2025-01-01", "2025-01-02"],
        "total": [1.0, 2.0], "notes": [None, None], "items": [["a", "b"], []], "meta": [{"k": 1}, {"k": 2}],
    }).write_parquet(path)
    assert run(store, "orders", path).inserted == 2
    with pytest.raises(InputError, match=r"extra.parquet: column 'items' holds List\(String\), which cannot be"):
        run(store, "orders", path, mapping={"category": "items"})
    nulls = tmp_path / "nulls.parquet"  # a blank column a field does use is just blank
    pl.DataFrame({"order_id": ["N1"], "customer_id": ["C1"], "placed_at": ["2025-01-03"], "total": [3.0],
                  "category": [None]}).write_parquet(nulls)
    assert run(store, "orders", nulls).inserted == 1
    assert orders(store)["N1"]["category"] is None


# --- bad input --------------------------------------------------------------------------


def test_every_kind_of_bad_row_is_rejected_with_its_line(store, tmp_path):
    path = write(tmp_path, "bad.csv", ORDERS_HEADER + "\n".join([
        "A1,C1,2025-01-05,10.00,0,paid,shoes",  # 2 fine
        "A2,,2025-01-05,10.00,0,paid,",  # 3 no customer
        "A3,C1,,10.00,0,paid,",  # 4 missing date
        "A4,C1,2025-13-01,10.00,0,paid,",  # 5 unparseable date
        "A5,C1,2025-01-05,ten,0,paid,",  # 6 non-numeric amount
        "A6,C1,2025-01-05,-3,0,paid,",  # 7 negative amount
        "A7,C1,2025-01-05",  # 8 too few fields (and so no total: the row's problem is its shape)
        "A8,C1,2025-01-05,10.00,0,paid,shoes,extra",  # 9 too many fields
        "A1,C2,2025-01-06,11.00,0,paid,",  # 10 duplicate of line 2
        "A9,C1,2025-01-05,10.00,0,shipped-to-mars,",  # 11 unknown status
        "A10,C1,2025-01-05,,0,paid,",  # 12 missing total
        "A11,C1,2025-01-05,10.00,-1,paid,",  # 13 negative discount
        "",  # 14 a blank line is not a row
        "A12,C1,2025-01-05,10.00,0,completed,",  # 15 fine (a synonym)
    ]) + "\n")
    result = run(store, "orders", path)
    assert (result.status, result.exit_code) == ("partial", 1)
    assert (result.rows, result.inserted, result.rejected) == (13, 2, 11)
    assert reasons(result) == [
        (3, "customer_id", "customer_id is empty"),
        (4, "placed_at", "placed_at is empty"),
        (5, "placed_at", "cannot read '2025-13-01' as a date or time "
                         "(use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or an ISO time with an offset)"),
        (6, "total", "'ten' is not an amount"),
        (7, "total", "negative amount '-3'"),
        (8, None, "expected 7 fields, found 3"),
        (9, None, "expected 7 fields, found 8"),
        (10, "order_id", "duplicate order_id 'A1' (first on line 2)"),
        (11, "status", "unknown status 'shipped-to-mars' (accepted: paid, pending, cancelled, voided, test, staff, "
                       "or completed, refunded, canceled, ...)"),
        (12, "total", "total is empty"),
        (13, "discount", "negative amount '-1'"),
    ]
    stored = store.rows("SELECT line, field, reason, raw, file FROM import_rejects ORDER BY line")
    assert [row["line"] for row in stored] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert stored[0]["raw"] == "A2,,2025-01-05,10.00,0,paid,"
    assert stored[0]["file"] == str(path.resolve())
    assert sorted(orders(store)) == ["A1", "A12"]


def test_unknown_event_kinds_and_customers_are_rejected(store, tmp_path):
    run(store, "orders", FIXTURES / "orders.csv")
    path = write(tmp_path, "events.csv", "customer_id,kind,at\nC001,view,2025-01-01\nC001,click,2025-01-01\n"
                                         "C999,view,2025-01-01\nC001,view,2025-01-01\nC002,Add to cart,2025-01-02\n")
    result = run(store, "events", path)
    assert reasons(result) == [
        (3, "kind", "unknown kind 'click' (accepted: view, cart, favorite, share, review, live, community)"),
        (4, "customer_id", "unknown customer 'C999': import customers or orders first"),
        (5, None, "duplicate event (the same as line 2)"),
    ]
    assert result.inserted == 2
    assert store.scalar("SELECT kind FROM events WHERE at = ?", (1735776000,)) == "cart"


def test_line_numbers_stay_right_after_a_quoted_multi_line_field(store, tmp_path):
    path = write(tmp_path, "notes.csv", ORDERS_HEADER
                 + 'A1,C1,2025-01-05,10.00,0,paid,"a category\nthat goes on\nfor three lines"\n'  # lines 2-4
                 + "A2,C1,2025-01-05,oops,0,paid,\n"  # line 5
                 + 'A3,C1,2025-01-05,1,0,paid,"two\nlines"\n'  # lines 6-7
                 + 'A4,C1,never,1,0,paid,"also\ntwo"\n'  # lines 8-9
                 + "A5,C1,2025-01-05,1,0,bogus,\n")  # line 10
    result = run(store, "orders", path)
    assert [(line, field) for line, field, _ in reasons(result)] == [(5, "total"), (8, "placed_at"), (10, "status")]
    assert result.rejects[1].raw == 'A4,C1,never,1,0,paid,"also\ntwo"'
    assert orders(store)["A1"]["category"] == "a category\nthat goes on\nfor three lines"


def test_line_numbers_across_batches_and_duplicates_across_batches(store, bulk, tmp_path, monkeypatch):
    lines = [f"B{index},C{index % 7},2025-01-{1 + index % 28:02d},{index}.50,0,paid," for index in range(300)]
    lines[250] = "B3,C9,2025-02-01,1,0,paid,"  # the same id as line 5
    lines[120] = "B120,C1,2025-01-01,1,0,paid,\"multi\nline\""  # the exact reader from here on
    lines[200] = "B200,C1,2025-01-01,x,0,paid,"
    path = write(tmp_path, "many.csv", ORDERS_HEADER + "\n".join(lines) + "\n")
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 1000)
    monkeypatch.setattr(csvread, "EXACT_BATCH_ROWS", 37)
    result = run(store, "orders", path, bulk=bulk)
    # Line of record k (0-based) is k + 2, plus one after the two-line record at index 120.
    assert reasons(result) == [
        (203, "total", "'x' is not an amount"),
        (253, "order_id", "duplicate order_id 'B3' (first on line 5)"),
    ]
    assert result.inserted == 298
    # Customers met in one batch with an earlier order in a later one: signup is the earliest.
    first_orders = store.rows("SELECT c.customer_id, c.signed_up_at, min(o.placed_at) AS first FROM customers c "
                              "JOIN orders o ON o.customer = c.id GROUP BY c.id")
    assert all(row["signed_up_at"] == row["first"] for row in first_orders)


def test_orders_without_an_id_get_a_stable_one(store, tmp_path):
    text = "customer_id,placed_at,total\nC1,2025-01-05 10:00,10.00\nC2,2025-01-05 11:00,12.00\nC1,2025-01-05 10:00,10\n"
    path = write(tmp_path, "noid.csv", text)
    result = run(store, "orders", path)
    assert result.inserted == 2
    ids = sorted(orders(store))
    assert all(order_id.startswith("row-") and len(order_id) == 20 for order_id in ids)
    # The third row is the first again (10 and 10.00 are the same amount).
    assert reasons(result)[0][0] == 4 and "first on line 2" in reasons(result)[0][2]
    again = run(store, "orders", path)
    assert (again.inserted, again.unchanged) == (0, 2)
    assert sorted(orders(store)) == ids


def test_orders_by_email_find_or_file_customers(store, bulk, tmp_path):
    run(store, "customers", write(tmp_path, "c.csv", "customer_id,email\nK1,ana@example.com\n"))
    path = write(tmp_path, "o.csv", "order_id,email,placed_at,total\nE1,Ana@Example.com,2025-01-01,5\n"
                                    "E2,new@example.com,2025-01-02,6\nE3,new@example.com,2025-01-01,7\n")
    result = run(store, "orders", path, bulk=bulk)
    assert result.customers_created == 1
    got = orders(store)
    assert got["E1"]["customer_id"] == "K1"
    assert got["E2"]["customer_id"] == "new@example.com"
    created = store.rows("SELECT * FROM customers WHERE customer_id = 'new@example.com'")[0]
    assert created["email"] == "new@example.com" and created["signed_up_at"] == got["E3"]["placed_at"]


def test_refunds_larger_than_the_order_are_rejected(store, tmp_path):
    path = write(tmp_path, "r.csv", "order_id,customer_id,placed_at,total,refunded,status\n"
                                    "R1,C1,2025-01-01,10,12,paid\nR2,C1,2025-01-01,10,,refunded\n")
    result = run(store, "orders", path)
    assert reasons(result) == [(2, "refunded", "refunded '12' is more than the total '10'")]
    assert orders(store)["R2"]["refunded_cents"] == 1000


def test_customers_blank_cells_keep_what_is_known_and_consent_changes_are_logged(store, tmp_path):
    run(store, "customers", write(tmp_path, "c1.csv", "customer_id,name,phone,accepts_sms\nC1,Ana,+1 555,yes\n"))
    result = run(store, "customers", write(tmp_path, "c2.csv", "customer_id,name,phone,accepts_sms,accepts_email\n"
                                                               "C1,,+1 777,opted out,\n"))
    assert (result.updated, result.inserted) == (1, 0)
    ana = store.rows("SELECT * FROM customers")[0]
    assert (ana["name"], ana["phone"], ana["accepts_sms"], ana["accepts_email"]) == ("Ana", "+1 777", -1, 0)
    assert store.rows("SELECT channel, state, source FROM consent_events ORDER BY id") == [
        {"channel": "sms", "state": 1, "source": "import:c1.csv"},
        {"channel": "sms", "state": -1, "source": "import:c2.csv"},
    ]
    again = run(store, "customers", tmp_path / "c2.csv")
    assert (again.updated, again.unchanged) == (0, 1)
    assert store.scalar("SELECT count(*) FROM consent_events") == 2


def test_an_import_never_lifts_an_opt_out(store, tmp_path):
    from core.customers import resolve, set_consent

    path = write(tmp_path, "c.csv", "customer_id,email,accepts_email,accepts_sms\nC1,a@x.com,yes,yes\nC2,b@x.com,yes,\n")
    run(store, "customers", path)
    set_consent(store, OWNER, resolve(store, "C1"), "email", False, "asked us to stop", NOW)
    again = run(store, "customers", path)  # a stale export still says yes
    assert (again.updated, again.unchanged) == (0, 2)
    assert store.scalar("SELECT accepts_email FROM customers WHERE customer_id = 'C1'") == -1
    no = run(store, "customers", write(tmp_path, "n.csv", "customer_id,accepts_email,accepts_sms\nC1,no,no\n"))
    assert no.updated == 1  # sms: given → not given; email stays opted out
    assert store.rows("SELECT accepts_email, accepts_sms FROM customers WHERE customer_id = 'C1'") == [
        {"accepts_email": -1, "accepts_sms": 0}]
    assert [row["source"] for row in store.rows("SELECT source FROM consent_events WHERE channel = 'email' "
                                                "AND customer = 1 ORDER BY id")] == ["import:c.csv", "user:owner"]


def test_email_only_rows_find_the_same_customer_on_every_import(store, tmp_path):
    path = write(tmp_path, "o.csv", "order_id,customer_id,email,placed_at,total\n"
                                    "O1,C1,a@x.com,2025-01-01,10\nO2,,a@x.com,2025-01-02,20\n")
    run(store, "orders", path)
    before = data(store)
    again = run(store, "orders", path)
    assert (again.updated, again.unchanged) == (0, 2)
    assert data(store) == before
    people = write(tmp_path, "c.csv", "customer_id,email,name\nC7,z@x.com,Ann\n,z@x.com,Ann Smith\n")
    run(store, "customers", people)
    before = data(store)
    for _ in range(2):
        assert run(store, "customers", people).updated == 0
    assert data(store) == before


def test_customers_with_bad_cells(store, tmp_path):
    path = write(tmp_path, "c.csv", "customer_id,email,timezone,accepts_push,signed_up_at\n"
                                    "C1,not-an-email,,yes,\nC2,b@x.io,Mars/Olympus,,\nC3,c@x.io,,perhaps,\n"
                                    "C4,d@x.io,,,yesterday\n,e@x.io,UTC,1,2025-01-01\n")
    result = run(store, "customers", path)
    assert reasons(result) == [
        (2, "email", "not an email address: 'not-an-email'"),
        (3, "timezone", "unknown time zone 'Mars/Olympus' (use an IANA name such as Asia/Shanghai)"),
        (4, "accepts_push", "unknown accepts push 'perhaps' (accepted: yes, no, unsubscribed)"),
        (5, "signed_up_at", "cannot read 'yesterday' as a date or time "
                            "(use YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or an ISO time with an offset)"),
    ]
    # Known only by email: filed under it.
    assert store.scalar("SELECT customer_id FROM customers") == "e@x.io"


def test_a_viewer_may_not_import(store):
    with pytest.raises(PermissionDenied):
        import_file(store, "orders", FIXTURES / "orders.csv", actor=User("v", "viewer", True), now=NOW)


# --- all or nothing ---------------------------------------------------------------------


BAD_AND_GOOD = ORDERS_HEADER + "A1,C1,2025-01-05,10.00,0,paid,\nA2,C1,2025-01-05,oops,0,paid,\n"


def test_strict_refuses_the_whole_file_and_stores_nothing(store, bulk, tmp_path):
    run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
    before = dump(store)
    result = run(store, "orders", write(tmp_path, "mixed.csv", BAD_AND_GOOD), strict=True, bulk=bulk)
    assert (result.status, result.exit_code, result.import_id) == ("refused", 2, None)
    assert reasons(result) == [(3, "total", "'oops' is not an amount")]
    assert result.inserted == 1  # what would have landed
    assert dump(store) == before


def test_dry_run_counts_everything_and_stores_nothing(store, bulk, tmp_path):
    before = dump(store)
    result = run(store, "orders", write(tmp_path, "mixed.csv", BAD_AND_GOOD), dry_run=True, bulk=bulk)
    assert (result.status, result.exit_code, result.import_id) == ("dry-run", 1, None)
    assert (result.inserted, result.rejected, result.customers_created) == (1, 1, 1)
    assert dump(store) == before


def test_an_import_that_fails_part_way_leaves_the_store_as_it_was(store, bulk, tmp_path, monkeypatch):
    run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
    before = dump(store)
    good = "".join(f"F{index},C1,2025-01-05,1,0,paid,\n" for index in range(100))
    path = tmp_path / "broken.csv"
    path.write_bytes((ORDERS_HEADER + good).encode() + b"F100,C1,2025-01-05,1,0,paid,\xff\xfe\n")
    # Sniff only the start, and read small batches: the first ones land before the bad bytes are met.
    monkeypatch.setattr(csvread, "SNIFF_BYTES", 300)
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 500)
    with pytest.raises(InputError, match=r"broken.csv: line 102 is not valid UTF-8"):
        run(store, "orders", path, bulk=bulk)
    assert dump(store) == before


def test_an_interrupted_import_leaves_the_store_as_it_was(store, bulk, tmp_path, monkeypatch):
    before = dump(store)
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 500)
    path = write(tmp_path, "o.csv", ORDERS_HEADER + "".join(f"I{index},C1,2025-01-05,1,0,paid,\n" for index in range(100)))

    def interrupt(done, total):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(store, "orders", path, progress=interrupt, bulk=bulk)
    assert dump(store) == before
    assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_every_row_rejected_is_refused_but_the_rejects_are_kept(store, tmp_path):
    before = data(store)
    result = run(store, "orders", write(tmp_path, "all-bad.csv", ORDERS_HEADER + "A1,C1,never,1,0,paid,\n"))
    assert (result.status, result.exit_code) == ("refused", 2)
    assert data(store) == before
    record, rejects = list_rejects(store)
    assert record["id"] == result.import_id and record["status"] == "refused"
    assert rejects[0]["line"] == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "missing.csv: no such file"),
        ("empty.csv", b"", "empty.csv: the file is empty"),
        ("blank.csv", b"\n\n  \n", "blank.csv: no header line"),
        ("header-only.csv", b"order_id,customer_id,placed_at,total\n", "header-only.csv: has a header but no rows"),
        ("blank-rows.csv", b"order_id,customer_id,placed_at,total\n\n , ,,\n", "blank-rows.csv: has a header but no rows"),
        ("binary.csv", b"\x00\x01\x02\x03PK" * 100, "binary.csv: a binary file, not CSV or Parquet"),
        ("sheet.xlsx", b"PK\x03\x04" + b"\x00" * 100, "sheet.xlsx: a zip or Excel file"),
        ("utf16.csv", "order_id,total\n1,2\n".encode("utf-16"), "utf16.csv: UTF-16 text"),
        ("columns.csv", b"id,when,sum\n1,2025-01-01,3\n",
         "columns.csv: no customer_id or email, placed_at, total column (columns found: id, when, sum); "
         "name one with --map customer_id=COLUMN"),
        ("fake.parquet", b"PAR1 not really", "fake.parquet: a Parquet file that is cut short or damaged"),
        # Past the first 8 KB, where a binary file is told at a glance: the line is named.
        ("nul.csv", ORDERS_HEADER.encode() + b"A,C1,2025-01-05,1,0,paid,\n" * 1200 + b"X\x00,C1,2025-01-05,1,0,paid,\n",
         "nul.csv: line 1202 holds a NUL byte: binary data, not CSV text"),
        ("nul-after-quote.csv", ORDERS_HEADER.encode() + b'A1,C1,2025-01-05,1,0,paid,"two\nlines"\n'
         + b"A,C1,2025-01-05,1,0,paid,\n" * 400 + b"A2,C1,2025-01-05,1,0,paid,x\x00\n",
         "nul-after-quote.csv: line 404 holds a NUL byte"),
    ],
)
def test_file_level_problems_refuse_with_one_line_and_write_nothing(store, tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    before = dump(store)
    with pytest.raises(InputError) as caught:
        run(store, "orders", path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert dump(store) == before


def test_a_nul_byte_at_the_start_of_a_later_block_is_named_too(store, tmp_path, monkeypatch):
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 400)
    path = tmp_path / "late-nul.csv"
    path.write_bytes(ORDERS_HEADER.encode() + b"A1,C1,2025-01-05,1,0,paid,\n" * 400 + b"\x00B,C1,2025-01-05,1,0,paid,\n")
    before = dump(store)
    with pytest.raises(InputError, match="late-nul.csv: line 402 holds a NUL byte"):
        run(store, "orders", path)
    assert dump(store) == before


def test_a_quote_polars_will_not_read_is_read_as_pythons_csv_module_reads_it(store, tmp_path):
    path = write(tmp_path, "quirk.csv", ORDERS_HEADER + '"A"1,C1,2025-01-05,1,0,paid,\nA2,C1,2025-01-05,2,0,paid,\n')
    result = run(store, "orders", path)
    assert (result.inserted, result.rejected) == (2, 0)
    assert sorted(orders(store)) == ["A1", "A2"]


def test_a_directory_is_not_a_file(store, tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        run(store, "orders", tmp_path)


def test_bad_maps_are_refused(store):
    with pytest.raises(InputError, match="--map colour=...: orders have no field 'colour'"):
        run(store, "orders", FIXTURES / "orders.csv", mapping={"colour": "category"})
    with pytest.raises(InputError, match="--map total=金额: orders.csv has no column '金额'"):
        run(store, "orders", FIXTURES / "orders.csv", mapping={"total": "金额"})


def test_a_shopify_export_is_only_orders(store):
    with pytest.raises(InputError, match="a Shopify orders export; import it with `tierdesk import orders`"):
        run(store, "customers", FIXTURES / "shopify_orders.csv")
    with pytest.raises(InputError, match="not a Shopify orders export"):
        run(store, "orders", FIXTURES / "orders.csv", fmt="shopify")


def test_a_forced_encoding_that_does_not_fit_is_refused(store):
    with pytest.raises(InputError, match="orders_gb18030.csv: cannot be read as UTF-8; try --encoding gb18030"):
        run(store, "orders", FIXTURES / "orders_gb18030.csv", encoding="utf-8",
            mapping={"order_id": "单号"})


def test_exit_codes():
    def result(**fields):
        base = dict(import_id=1, kind="orders", file="f", format="csv", encoding="utf-8", rows=3, inserted=3,
                    updated=0, unchanged=0, rejected=0, customers_created=0, status="landed")
        return ImportResult(**{**base, **fields})

    assert result().exit_code == 0
    assert result(inserted=0, unchanged=3).exit_code == 0
    assert result(rejected=1, status="partial").exit_code == 1
    assert result(rejected=3, status="refused").exit_code == 2
    assert result(rejected=1, status="refused", import_id=None).exit_code == 2


def test_seen_keys_find_the_first_line_even_when_first_hashes_collide():
    seen = SeenKeys()
    seen.add(np.array([5, 9], dtype=np.uint64), np.array([1, 2], dtype=np.uint64), np.array([10, 20]))
    seen.add(np.array([5], dtype=np.uint64), np.array([3], dtype=np.uint64), np.array([30]))
    h0 = np.array([5, 5, 5, 9, 7], dtype=np.uint64)
    h1 = np.array([3, 1, 4, 2, 1], dtype=np.uint64)
    assert seen.lines(h0, h1).tolist() == [30, 10, 0, 20, 0]


def test_seen_keys_look_only_where_the_key_range_overlaps():
    seen = SeenKeys()
    u64 = lambda *values: np.array(values, dtype=np.uint64)  # noqa: E731
    seen.add(u64(1, 2), u64(1, 2), np.array([10, 11]), "A1", "A9")
    seen.add(u64(3), u64(3), np.array([20]), "B1", "B9")
    assert len(seen.runs) == 2  # a sorted file: one run per batch, nothing merged
    assert seen.lines(u64(2, 3), u64(2, 3), "A5", "B5").tolist() == [11, 20]
    # Keys beyond every range cannot have been met: not even looked up.
    assert seen.lines(u64(2, 3), u64(2, 3), "C1", "C9").tolist() == [0, 0]
    seen.add(u64(4), u64(4), np.array([30]), "A0", "Z0")  # an unsorted batch gathers what it overlaps
    assert len(seen.runs) == 1 and len(seen) == 4
    assert seen.lines(u64(1, 4, 5), u64(1, 4, 5), "A0", "Z9").tolist() == [10, 30, 0]


def test_thousands_of_rows_land_whole(store, bulk, tmp_path):
    lines = [f"T{index:05d},C{index % 450},2025-01-01 {index % 24:02d}:00,{index}.25,0,paid," for index in range(2_345)]
    path = write(tmp_path, "many.csv", ORDERS_HEADER + "\n".join(lines) + "\n")
    result = run(store, "orders", path, bulk=bulk)
    assert (result.inserted, result.customers_created) == (2_345, 450)
    assert store.scalar("SELECT count(*), sum(total_cents) FROM orders") == 2_345
    assert store.scalar("SELECT sum(total_cents) FROM orders") == sum(index * 100 + 25 for index in range(2_345))
    again = run(store, "orders", path, bulk=bulk)
    assert (again.inserted, again.unchanged) == (0, 2_345)


def test_staged_and_direct_imports_store_the_same_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 4_000)  # several batches, customers met again across them
    lines = [f"S{index:05d},C{index % 97},2025-01-{1 + index % 28:02d} {index % 24:02d}:00,{index}.25,"
             f"{index % 3},{'paid' if index % 11 else 'cancelled'},{'shoes' if index % 2 else ''}"
             for index in range(1_500)]
    path = write(tmp_path, "many.csv", ORDERS_HEADER + "\n".join(reversed(lines)) + "\n")
    stores = {}
    for bulk in (False, True):
        store = stores[bulk] = make_store(tmp_path / f"{bulk}.db")
        run(store, "orders", FIXTURES / "orders.csv", bulk=bulk)
        result = run(store, "orders", path, bulk=bulk)
        assert (result.inserted, result.customers_created) == (1_500, 97)
    assert data(stores[True]) == data(stores[False])
    # ADBC's own SQLite stayed in the child: it never shares a process with our writer (performance.md).
    assert not any(name.startswith("adbc_driver") for name in sys.modules)
    for store in stores.values():
        store.close()


def _sharing_row(index: int) -> str:
    email = f"e{index % 61}@x.cn"
    # Some rows have only an email; some customer ids are another row's email.
    customer = "" if index % 5 == 0 else email if index % 7 == 0 else f"C{index % 61}"
    return f"H{index:05d},{customer},{email if index % 5 == 0 else ''},2025-02-{1 + index % 28:02d} 10:00,{index}.00"


def _later_row(index: int) -> str:
    return f"L{index:05d},C{index // 60},,2025-02-{1 + index % 28:02d} 10:00,{index}.00"


@pytest.mark.parametrize("shared, row", [
    (pl.lit(7, dtype=pl.UInt64), _sharing_row),  # every customer of a batch shares one hash
    # A batch holds at most three customers in a row (C{n}): their hashes differ, but not from
    # those of customers of other batches.
    (pl.col("key").str.slice(1).cast(pl.UInt64) % 4, _later_row),
], ids=["within a batch", "across batches"])
def test_customers_sharing_a_hash_are_still_told_apart(tmp_path, monkeypatch, shared, row):
    """Customers are matched by a 64-bit hash; should two share one, the strings decide."""
    from core import importer

    monkeypatch.setattr(csvread, "CHUNK_BYTES", 4_000)  # several batches, customers met again across them
    path = write(tmp_path, "shared.csv", "order_id,customer_id,email,placed_at,total\n"
                 + "\n".join(row(index) for index in range(900)) + "\n")
    reference = make_store(tmp_path / "reference.db")
    run(reference, "orders", FIXTURES / "orders.csv")
    expected = run(reference, "orders", path)
    monkeypatch.setattr(importer, "_PAIR_HASH", shared.alias(importer.HASH))
    store = make_store(tmp_path / "shared.db")
    run(store, "orders", FIXTURES / "orders.csv")
    result = run(store, "orders", path)
    assert result.customers_created == expected.customers_created >= 15
    assert data(store) == data(reference)
    store.close()
    reference.close()


def test_a_huge_bad_cell_is_quoted_short(store, tmp_path):
    path = write(tmp_path, "big.csv", ORDERS_HEADER + "B1,C1,2025-01-05," + "9" * 50_000 + "x,0,paid,\n")
    result = run(store, "orders", path)
    reason = result.rejects[0].reason
    assert result.rejects[0].field == "total" and len(reason) <= 201 and reason.endswith("…")
    assert len(store.scalar("SELECT reason FROM import_rejects")) <= 201


def test_a_staging_child_that_dies_fails_the_import_cleanly(tmp_path, monkeypatch):
    from core.bulkwrite import Stager, StagingError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stager = Stager()
    part = stager.put(stager.write(pl.DataFrame({"order_id": ["A"], "customer": [1]})))
    stager._child.kill()  # as a crash or the OOM killer would
    with pytest.raises(StagingError, match="staging the import failed") as caught:
        stager.ready(part)
    assert "Nothing was imported" in caught.value.hint
    stager.close()
    assert list(tmp_path.iterdir()) == []


def test_staged_parts_have_the_stores_page_size(tmp_path, monkeypatch):
    from core.bulkwrite import Stager
    from core.store import PAGE_SIZE

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stager = Stager()
    part = stager.put(stager.write(pl.DataFrame({"order_id": ["A", "B"], "customer": [1, 2]})))
    assert stager.ready(part) == 2
    header = stager.part_path(part).read_bytes()[:100]  # SQLite's file header: the page size at byte 16
    assert int.from_bytes(header[16:18], "big") == PAGE_SIZE
    stager.close()


def test_a_part_is_finished_once_written_and_closed_to_more_batches(tmp_path, monkeypatch):
    """The writer lands what finished() names without waiting: never a part still being written or added to."""
    import time

    from core import bulkwrite
    from core.bulkwrite import Stager

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(bulkwrite, "PARTS", 2)
    stager = Stager()
    frame = pl.DataFrame({"order_id": ["A", "B"], "customer": [1, 2]})
    assert stager.finished() == []
    first = stager.put(stager.write(frame))
    deadline = time.monotonic() + 30
    while not stager.finished() and time.monotonic() < deadline:  # the child writes it meanwhile
        time.sleep(0.01)
    assert stager.finished() == [first] == [1]
    last = stager.put(stager.write(frame))
    assert stager.ready(last) == 2
    assert stager.finished() == [1]  # the last part takes every batch from here on: only the end closes it
    stager.close()


def test_a_staging_child_that_miscounts_fails_the_import_instead_of_waiting(tmp_path, monkeypatch):
    """The parent waits for a report per file it sent, then compares rows: a wrong count cannot hang it."""
    import subprocess
    import threading

    from core.bulkwrite import Stager, StagingError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stager = Stager()
    # A child that speaks the protocol but reports an unknown count, as an ADBC driver may.
    stager._child = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfor line in sys.stdin:\n    print('ok', line.split()[0], -1, flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    part = stager.put(stager.write(pl.DataFrame({"order_id": ["A", "B"], "customer": [1, 2]})))
    raised: list[BaseException] = []

    def wait() -> None:
        try:
            stager.ready(part)
        except BaseException as exc:
            raised.append(exc)

    waiting = threading.Thread(target=wait, daemon=True)
    waiting.start()
    waiting.join(timeout=20)
    assert not waiting.is_alive(), "ready() hung on a child that miscounted"
    assert len(raised) == 1 and isinstance(raised[0], StagingError) and "sent 2, staged -1" in str(raised[0])
    stager.close()
    assert list(tmp_path.iterdir()) == []


def test_a_staging_child_outlives_no_parent_and_ignores_the_terminals_ctrl_c(tmp_path):
    """Killed mid-import, the parent cannot clean up: its child removes the staging files."""
    import os
    import subprocess
    import sys
    import time

    script = (
        "import os, sys, tempfile\n"
        f"tempfile.tempdir = {str(tmp_path)!r}\n"
        "import polars as pl\n"
        "from core.bulkwrite import Stager\n"
        "stager = Stager()\n"
        "stager.ready(stager.put(stager.write(pl.DataFrame({'order_id': ['A'], 'customer': [1]}))))\n"
        "print(stager._child.pid, os.getsid(stager._child.pid), os.getsid(0), flush=True)\n"
        "os._exit(9)  # as SIGKILL or the OOM killer would leave it: no finally, no close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parents[1])
    child, child_session, parent_session = map(int, done.stdout.split())
    assert child_session != parent_session  # a Ctrl-C at the terminal reaches the parent only
    deadline = time.monotonic() + 10
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


def test_an_import_inside_a_transaction_writes_directly(store, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "scratch"))
    (tmp_path / "scratch").mkdir()
    with store.transaction():
        # A customer this transaction added, not committed yet: the import must still find it.
        store.conn.execute("INSERT INTO customers (customer_id, created_at) VALUES ('C001', ?)", (NOW,))
        result = run(store, "orders", FIXTURES / "orders.csv", bulk=True)
    assert result.inserted == 5 and list((tmp_path / "scratch").iterdir()) == []
    assert store.scalar("SELECT count(*) FROM customers WHERE customer_id = 'C001'") == 1
    assert store.scalar("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer "
                        "WHERE c.customer_id = 'C001'") >= 1


def test_a_signup_found_earlier_under_either_key_never_moves_later(tmp_path, monkeypatch):
    """A customer id that is an email is also what an email-only row with that email finds."""
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 200)  # a batch every few lines
    pad = "".join(f"P{n:02d},C{n},,2025-06-01 10:00,5\n" for n in range(8))
    path = write(tmp_path, "o.csv", "order_id,customer_id,email,placed_at,total\n"
                 "A1,x@y.com,,2025-03-10 10:00,5\n" + pad
                 + "B1,,x@y.com,2025-01-01 10:00,5\n" + pad.replace("P", "Q")  # earlier, by the email
                 + "C1,x@y.com,,2025-02-01 10:00,5\n")  # later than that, by the id
    store = make_store(tmp_path / "s.db")
    result = run(store, "orders", path)
    assert result.rejected == 0 and store.scalar("SELECT count(*) FROM customers WHERE customer_id = 'x@y.com'") == 1
    first = store.scalar("SELECT min(o.placed_at) FROM orders o JOIN customers c ON c.id = o.customer "
                         "WHERE c.customer_id = 'x@y.com'")
    assert store.scalar("SELECT signed_up_at FROM customers WHERE customer_id = 'x@y.com'") == first
    store.close()


def test_where_batches_are_cut_does_not_change_which_customer_a_row_finds(tmp_path, monkeypatch):
    text = "customer_id,email,name\nA,x@y.z,Ann\n" + "".join(f"K{n},,pad{n}\n" for n in range(10)) + ",x@y.z,Other\n"
    path = write(tmp_path, "c.csv", text)
    seen = {}
    for chunk in (16 << 20, 60):
        monkeypatch.setattr(csvread, "CHUNK_BYTES", chunk)
        store = make_store(tmp_path / f"{chunk}.db")
        result = run(store, "customers", path)
        seen[chunk] = ((result.inserted, result.updated),
                       store.rows("SELECT customer_id, email, name FROM customers WHERE email = 'x@y.z' ORDER BY 1"))
        store.close()
    assert seen[16 << 20] == seen[60]


def test_an_email_that_is_also_a_new_customer_id_leads_there_however_the_file_is_cut(tmp_path, monkeypatch, bulk):
    """The store knows K1 by the email; the file files a customer whose id is that email: the id wins."""
    path = write(tmp_path, "o.csv", "order_id,customer_id,email,placed_at,total\n"
                 "A1,x@y.com,,2025-03-10 10:00,5\n"
                 + "".join(f"A{n},C{n},,2025-03-10 10:00,5\n" for n in range(2, 12))
                 + "B1,,x@y.com,2025-01-01 10:00,5\n")
    seen = {}
    for chunk in (16 << 20, 60):
        monkeypatch.setattr(csvread, "CHUNK_BYTES", chunk)
        store = make_store(tmp_path / f"{chunk}.db")
        run(store, "customers", write(tmp_path, "c.csv", "customer_id,email\nK1,x@y.com\n"))
        run(store, "orders", path, bulk=bulk)
        seen[chunk] = store.rows("SELECT o.order_id, c.customer_id, c.signed_up_at FROM orders o "
                                 "JOIN customers c ON c.id = o.customer WHERE o.order_id IN ('A1', 'B1') ORDER BY 1")
        store.close()
    assert seen[16 << 20] == seen[60]
    assert [row["customer_id"] for row in seen[60]] == ["x@y.com", "x@y.com"]


def test_an_email_the_store_answered_keeps_its_answer_when_a_later_batch_files_that_id(tmp_path, monkeypatch, bulk):
    """The one case where batch cuts matter (see _CustomerResolver): the earlier batch's answer stands."""
    monkeypatch.setattr(csvread, "CHUNK_BYTES", 60)  # about a batch a line
    pad = "".join(f"P{n},C{n},,2025-03-10 10:00,5\n" for n in range(2, 8))
    path = write(tmp_path, "o.csv", "order_id,customer_id,email,placed_at,total\n"
                 "B1,,x@y.com,2025-01-01 10:00,5\n" + pad  # by the email: the store's K1
                 + "A1,x@y.com,,2025-03-10 10:00,5\n" + pad.replace("P", "Q")  # a new customer with that id
                 + "B2,,x@y.com,2025-04-01 10:00,5\n")  # by the email again
    store = make_store(tmp_path / "s.db")
    run(store, "customers", write(tmp_path, "c.csv", "customer_id,email\nK1,x@y.com\n"))
    result = run(store, "orders", path, bulk=bulk)
    assert result.rejected == 0 and result.inserted == 15
    owners = dict(store.conn.execute("SELECT o.order_id, c.customer_id FROM orders o "
                                     "JOIN customers c ON c.id = o.customer WHERE o.order_id IN ('A1', 'B1', 'B2')"))
    assert owners == {"B1": "K1", "A1": "x@y.com", "B2": "K1"}
    store.close()
