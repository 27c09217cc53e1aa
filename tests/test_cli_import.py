"""`tierdesk import` and `tierdesk rejects`: exit codes, messages, and the store they leave."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from console.cli import app

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ORDERS_HEADER = "order_id,customer_id,placed_at,total,discount,status,category\n"

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_import_creates_the_store_when_there_is_none(tmp_path):
    db = tmp_path / "new" / "shop.db"
    result = invoke("import", "orders", FIXTURES / "orders.csv", "--db", db)
    assert result.exit_code == 0, result.output
    assert "Created a new store at" in result.stderr
    assert "✓ imported orders from orders.csv (csv, utf-8) — import #1" in result.stdout
    assert "customers created    4" in result.stdout
    assert db.exists() and db.with_suffix(".toml").exists()


def test_reimport_is_a_clean_zero(store, as_user):
    assert invoke("import", "orders", FIXTURES / "shopify_orders.csv", "--db", store.path).exit_code == 0
    again = invoke("import", "orders", FIXTURES / "shopify_orders.csv", "--db", store.path, "--json")
    assert again.exit_code == 0
    summary = json.loads(again.stdout)
    assert (summary["format"], summary["rows"], summary["inserted"], summary["unchanged"]) == ("shopify", 6, 0, 6)


def test_rejected_rows_exit_1_and_are_named_by_line(store, as_user, tmp_path):
    lines = [f"A{index},C1,2025-01-05,{'bad' if index % 2 else '1.00'},0,paid," for index in range(50)]
    path = tmp_path / "half.csv"
    path.write_text(ORDERS_HEADER + "\n".join(lines) + "\n")
    result = invoke("import", "orders", path, "--db", store.path)
    assert result.exit_code == 1
    assert "! imported orders from half.csv (csv, utf-8), with rejected rows — import #1" in result.stdout
    assert "  line 3: total: 'bad' is not an amount" in result.stdout
    assert "  line 41: total: 'bad' is not an amount" in result.stdout  # the 20th
    assert "line 43:" not in result.stdout
    assert "  … and 5 more: tierdesk rejects --import 1" in result.stdout
    listing = invoke("rejects", "--db", store.path)
    assert listing.exit_code == 0
    assert "Import #1: orders from half.csv (csv)" in listing.stdout and "25 of 50 rows rejected (partial)" in listing.stdout
    assert "A49,C1,2025-01-05,bad,0,paid," in listing.stdout
    as_json = json.loads(invoke("rejects", "--import", "1", "--json", "--db", store.path).stdout)
    assert as_json["import"]["id"] == 1 and len(as_json["rejects"]) == 25
    assert as_json["rejects"][0] == {"line": 3, "field": "total", "reason": "'bad' is not an amount",
                                     "raw": "A1,C1,2025-01-05,bad,0,paid,", "file": str(path.resolve())}


def test_strict_exits_2_and_changes_nothing(store, as_user, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text(ORDERS_HEADER + "A1,C1,2025-01-05,1,0,paid,\nA2,C1,2025-13-05,1,0,paid,\n")
    result = invoke("import", "orders", path, "--strict", "--db", store.path)
    assert result.exit_code == 2
    assert "line 3: placed_at: cannot read '2025-13-05' as a date or time" in result.stdout
    assert "--strict and some rows were rejected; the store is unchanged" in result.stderr
    assert store.scalar("SELECT count(*) FROM orders") == 0
    assert store.scalar("SELECT count(*) FROM imports") == 0


def test_dry_run_against_a_missing_store_creates_nothing(tmp_path):
    db = tmp_path / "shop.db"
    result = invoke("import", "orders", FIXTURES / "orders.csv", "--dry-run", "--db", db)
    assert result.exit_code == 0, result.output
    assert "… dry run, nothing stored: orders from orders.csv" in result.stdout
    assert "inserted             5" in result.stdout
    assert not db.exists()


def test_file_problems_are_one_line_and_exit_2(store, as_user, tmp_path):
    (tmp_path / "binary.csv").write_bytes(b"\x00\x01\x02" * 50)
    (tmp_path / "cols.csv").write_text("id,when\n1,2\n")
    cases = {
        tmp_path / "nope.csv": "nope.csv: no such file",
        tmp_path / "binary.csv": "binary.csv: a binary file, not CSV or Parquet",
        tmp_path / "cols.csv": "cols.csv: no customer_id or email, placed_at, total column (columns found: id, when)",
    }
    for path, message in cases.items():
        result = invoke("import", "orders", path, "--db", store.path)
        assert result.exit_code == 2
        assert message in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.output
    assert store.scalar("SELECT count(*) FROM imports") == 0


def test_file_problems_do_not_create_a_store(tmp_path):
    db = tmp_path / "shop.db"
    result = invoke("import", "orders", tmp_path / "nope.csv", "--db", db)
    assert result.exit_code == 2 and not db.exists()


def test_map_with_chinese_column_names(store, as_user):
    result = invoke(
        "import", "orders", FIXTURES / "orders_gb18030.csv", "--db", store.path,
        "--map", "order_id=单号", "--map", "customer_id=买家昵称", "--map", "placed_at=成交时间",
        "--map", "total=成交金额", "--map", "category=商品分类",
    )
    assert result.exit_code == 0, result.output
    assert "(csv, gb18030)" in result.stdout
    assert store.scalar("SELECT total_cents FROM orders WHERE order_id = 'TB20250301001'") == 123450


def test_bad_map_options(store, as_user):
    result = invoke("import", "orders", FIXTURES / "orders.csv", "--db", store.path, "--map", "total")
    assert result.exit_code == 2 and "expected FIELD=COLUMN" in result.stderr
    result = invoke("import", "orders", FIXTURES / "orders.csv", "--db", store.path, "--map", "total=金额")
    assert result.exit_code == 2 and "orders.csv has no column '金额'" in result.stderr


def test_events_and_customers_commands(store, as_user, tmp_path):
    assert invoke("import", "customers", FIXTURES / "customers_bom.csv", "--db", store.path).exit_code == 0
    result = invoke("import", "events", FIXTURES / "events.csv", "--db", store.path)
    assert result.exit_code == 0, result.output
    assert "customers created" not in result.stdout
    assert store.scalar("SELECT count(*) FROM events") == 5
    stranger = tmp_path / "stranger.csv"
    stranger.write_text("customer_id,kind,at\nC999,view,2025-01-01\nC001,share,2025-01-01\n")
    result = invoke("import", "events", stranger, "--db", store.path)
    assert result.exit_code == 1
    assert "line 2: customer_id: unknown customer 'C999': import customers or orders first" in result.stdout


def test_a_viewer_is_refused(store, as_user):
    as_user("someone-else")
    result = invoke("import", "orders", FIXTURES / "orders.csv", "--db", store.path)
    assert result.exit_code == 2
    assert "someone-else (viewer) may not import data" in result.stderr


def test_rejects_without_imports(store):
    result = invoke("rejects", "--db", store.path)
    assert result.exit_code == 2 and "no imports yet" in result.stderr
    result = invoke("rejects", "--import", "7", "--db", store.path)
    assert result.exit_code == 2 and "no import #7" in result.stderr


def test_parquet_rejects_say_row(store, as_user, tmp_path):
    import polars as pl

    path = tmp_path / "o.parquet"
    pl.DataFrame({"order_id": ["P1", "P2"], "customer_id": ["C1", "C1"], "placed_at": ["2025-01-01", "x"],
                  "total": ["1", "2"]}).write_parquet(path)
    result = invoke("import", "orders", path, "--db", store.path)
    assert result.exit_code == 1
    assert "Rejected rows:" in result.stdout and "  row 2: placed_at: cannot read 'x'" in result.stdout
    assert "row " in invoke("rejects", "--db", store.path).stdout


def test_rejects_do_not_unmask_contacts_for_support(store, as_user, tmp_path):
    from core.users import User, add_user

    add_user(store, User(login="owner", role="owner", known=True), "sam", "support", 1)
    path = tmp_path / "leak.csv"
    path.write_text("customer_id,email,phone\nC1,yang@icloud.com,+86 138 0013 8000\nC2,not-an-email,+1\n"
                    "C3,ok@x.com,13800138000x\nC4,\"Don't email, call 13900139000\",\n"
                    f"C5,wechat only: 13700137000 {'x' * 300},\n", encoding="utf-8")
    invoke("import", "customers", path, "--db", store.path)
    owner = json.loads(invoke("rejects", "--json", "--db", store.path).stdout)
    assert owner["rejects"][0]["raw"] == "C2,not-an-email,+1"
    as_user("sam")
    shown = invoke("rejects", "--db", store.path)
    assert shown.exit_code == 0 and "not-an-email,+1" not in shown.stdout
    assert " raw" not in shown.stdout.splitlines()[1]  # the header: no raw column
    assert "not shown to the support role" in shown.stdout
    hidden = json.loads(invoke("rejects", "--json", "--db", store.path).stdout)["rejects"]
    assert [row["raw"] for row in hidden] == [None] * len(hidden)
    assert [row["line"] for row in hidden] == [3, 5, 6]
    for number in ("13900139000", "13700137000", "not-an-email"):
        assert all(number not in row["reason"] for row in hidden), number
