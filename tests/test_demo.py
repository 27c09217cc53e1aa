"""The demo shop: deterministic, realistic, complete, and never over real data."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from datetime import date, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from typer.testing import CliRunner

from console.cli import app
from core.clock import day_end, day_start
from core.config import load_config
from core.demo import DEMO_USERS, GENERATOR_VERSION, generate_demo
from core.errors import InputError, StoreError
from tests.conftest import AS_OF, NOW, make_store

SHANGHAI = ZoneInfo("Asia/Shanghai")
RF11 = ("Champions", "Loyal", "Potential loyalist", "New", "Promising", "Need attention",
        "About to sleep", "At risk", "Can't lose", "Hibernating", "Lost")
CN8 = ("HHH", "HLH", "LHH", "LLH", "HHL", "HLL", "LHL", "LLL")
LIFECYCLE = ("new", "prospect", "churned", "dormant", "active", "occasional")


def generate(path: Path, customers: int = 2000, seed: int = 7, as_of: date = AS_OF, **options):
    return generate_demo(path, customers=customers, seed=seed, as_of=as_of, owner="owner", now=NOW, **options)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """One 2,000-customer demo store shared by the read-only tests below."""
    path = tmp_path_factory.mktemp("demo") / "shop.db"
    generate(path)
    return path


def query(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def scalar(path: Path, sql: str, params: tuple = ()):
    return query(path, sql, params)[0][0]


def table_digests(path: Path) -> dict[str, str]:
    """A digest of every table's rows, sorted.

    Left out: meta's store_id (random by design) and sqlite-utils' record of
    when each migration ran (the machine's clock).
    """
    conn = sqlite3.connect(path)
    try:
        tables = [name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name != '_sqlite_migrations' ORDER BY name")]
        digests = {}
        for table in tables:
            digest = hashlib.sha256()
            where = " WHERE key != 'store_id'" if table == "meta" else ""
            for row in sorted(repr(row) for row in conn.execute(f"SELECT * FROM {table}{where}")):
                digest.update(row.encode())
            digests[table] = digest.hexdigest()
        return digests
    finally:
        conn.close()


# --- an independent reading -------------------------------------------------
#
# A deliberately plain polars rendering of DESIGN.md "Definitions", here only
# to show the demo populates every cell; the segment engine has its own tests.


def reading(path: Path, as_of: date) -> pl.DataFrame:
    conn = sqlite3.connect(path)
    try:
        orders = pl.DataFrame(
            conn.execute("SELECT customer, placed_at, total_cents - refunded_cents, status FROM orders").fetchall(),
            schema=["customer", "placed_at", "net", "status"], orient="row",
        )
        customers = pl.DataFrame(conn.execute("SELECT id, signed_up_at FROM customers").fetchall(),
                                 schema=["customer", "signed_up_at"], orient="row")
    finally:
        conn.close()
    as_of_day = (as_of - date(1970, 1, 1)).days
    offset = 8 * 3600  # Asia/Shanghai, no daylight saving
    qualifying = orders.with_columns(day=(pl.col("placed_at") + offset) // 86400).filter(
        (pl.col("status") == "paid") & (pl.col("net") > 0) & (pl.col("day") <= as_of_day))
    in_window = pl.col("day") > as_of_day - 365
    per_customer = qualifying.group_by("customer").agg(
        last_day=pl.col("day").max(),
        last_in_window=pl.col("day").filter(in_window).max(),
        frequency=in_window.sum(),
        monetary=pl.col("net").filter(in_window).sum(),
        orders_30d=(pl.col("day") > as_of_day - 30).sum(),
    )
    everyone = customers.join(per_customer, on="customer", how="left").with_columns(
        signed_up_days=as_of_day - (pl.col("signed_up_at") + offset) // 86400,
        recency=as_of_day - pl.col("last_in_window"),
        since_last=as_of_day - pl.col("last_day"),
    )
    scored = everyone.filter(pl.col("recency").is_not_null())
    n = scored.height
    f = pl.col("frequency")
    scored = scored.with_columns(
        r=1 + (5 * (pl.col("recency").rank("min", descending=True) - 1)) // n,
        f=pl.when(f >= 6).then(5).when(f >= 4).then(4).otherwise(f),
    )
    r, f = pl.col("r"), pl.col("f")
    segment = (pl.when((r == 5) & (f >= 4)).then(pl.lit("Champions"))
               .when(r.is_between(3, 4) & (f >= 4)).then(pl.lit("Loyal"))
               .when((r >= 4) & f.is_between(2, 3)).then(pl.lit("Potential loyalist"))
               .when((r == 5) & (f == 1)).then(pl.lit("New"))
               .when((r == 4) & (f == 1)).then(pl.lit("Promising"))
               .when((r == 3) & (f == 3)).then(pl.lit("Need attention"))
               .when((r == 3) & (f <= 2)).then(pl.lit("About to sleep"))
               .when((r <= 2) & f.is_between(3, 4)).then(pl.lit("At risk"))
               .when((r <= 2) & (f == 5)).then(pl.lit("Can't lose"))
               .when((r == 1) & (f == 1)).then(pl.lit("Lost"))
               .otherwise(pl.lit("Hibernating")))

    def high(condition: pl.Expr) -> pl.Expr:
        return pl.when(condition).then(pl.lit("H")).otherwise(pl.lit("L"))

    scored = scored.with_columns(
        rf11=segment,
        cn8=pl.concat_str([high(pl.col("recency") <= pl.col("recency").mean()),
                           high(pl.col("frequency") >= pl.col("frequency").mean()),
                           high(pl.col("monetary") >= pl.col("monetary").mean())]),
    )
    lifecycle = (pl.when(pl.col("signed_up_days") <= 7).then(pl.lit("new"))
                 .when(pl.col("last_day").is_null()).then(pl.lit("prospect"))
                 .when(pl.col("since_last") >= 90).then(pl.lit("churned"))
                 .when(pl.col("since_last") >= 30).then(pl.lit("dormant"))
                 .when(pl.col("orders_30d") >= 2).then(pl.lit("active"))
                 .otherwise(pl.lit("occasional")))
    return (everyone.join(scored.select("customer", "rf11", "cn8"), on="customer", how="left")
            .with_columns(rf11=pl.col("rf11").fill_null("Lost"), lifecycle=lifecycle))


@pytest.mark.parametrize("customers", [2000, 20_000])
def test_every_segment_class_and_stage_is_populated(tmp_path, customers):
    path = tmp_path / "shop.db"
    generate(path, customers=customers)
    readings = reading(path, AS_OF)
    counts = {column: dict(readings[column].drop_nulls().value_counts().iter_rows())
              for column in ("rf11", "cn8", "lifecycle")}
    # at least a handful in every cell, not one lucky customer
    assert {name: counts["rf11"].get(name, 0) for name in RF11 if counts["rf11"].get(name, 0) < 5} == {}
    assert {name: counts["cn8"].get(name, 0) for name in CN8 if counts["cn8"].get(name, 0) < 5} == {}
    assert {name: counts["lifecycle"].get(name, 0) for name in LIFECYCLE
            if counts["lifecycle"].get(name, 0) < 5} == {}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_coverage_does_not_depend_on_the_seed(tmp_path, seed):
    path = tmp_path / "shop.db"
    generate(path, customers=2000, seed=seed)
    readings = reading(path, AS_OF)
    assert set(readings["rf11"]) == set(RF11)
    assert set(readings["cn8"].drop_nulls()) == set(CN8)
    assert set(readings["lifecycle"]) == set(LIFECYCLE)


# --- determinism ------------------------------------------------------------


def test_the_same_parameters_give_identical_tables(tmp_path):
    path = tmp_path / "shop.db"
    generate(path, customers=3000, seed=11)
    first = table_digests(path)
    generate(path, customers=3000, seed=11, fresh=True)
    assert table_digests(path) == first
    elsewhere = tmp_path / "other" / "shop.db"
    generate(elsewhere, customers=3000, seed=11)
    digests = table_digests(elsewhere)
    # the audit log names the file, so it (and its head, kept in meta) differs; the shop's data does not
    assert {table: digest for table, digest in digests.items() if table not in ("audit", "meta")} == {
        table: digest for table, digest in first.items() if table not in ("audit", "meta")}


def test_another_seed_or_as_of_gives_another_shop(tmp_path):
    base = table_digests(_generated(tmp_path / "a.db", seed=7))
    assert table_digests(_generated(tmp_path / "b.db", seed=8))["orders"] != base["orders"]
    later = table_digests(_generated(tmp_path / "c.db", seed=7, as_of=AS_OF - timedelta(days=1)))
    assert later["orders"] != base["orders"]


def _generated(path: Path, **options) -> Path:
    generate(path, customers=500, **options)
    return path


# --- the data ---------------------------------------------------------------


def test_nothing_happens_after_the_as_of_or_before_a_signup(demo):
    end = day_end(AS_OF, SHANGHAI)
    start = day_start(AS_OF - timedelta(days=729), SHANGHAI)
    for table, column in (("orders", "placed_at"), ("events", "at"), ("consent_events", "at"),
                          ("customers", "signed_up_at"), ("tag_events", "at"), ("manual_tags", "added_at")):
        low, high = query(demo, f"SELECT min({column}), max({column}) FROM {table}")[0]
        assert start <= low and high < end, table
    # the last days of the as-of have orders: the as-of is a full day of trading
    assert scalar(demo, "SELECT max(placed_at) FROM orders") >= end - 86400
    for table, column in (("orders", "placed_at"), ("events", "at"), ("consent_events", "at")):
        early = scalar(demo, f"SELECT count(*) FROM {table} JOIN customers c ON c.id = {table}.customer "
                             f"WHERE {column} < c.signed_up_at")
        assert early == 0, table


def test_orders_look_like_a_shop(demo):
    total = scalar(demo, "SELECT count(*) FROM orders")
    assert 9 * 2000 < total < 12 * 2000  # about ten orders per customer
    per_buyer = pl.DataFrame(query(demo, "SELECT customer, count(*) FROM orders GROUP BY customer"),
                             schema=["customer", "orders"], orient="row")["orders"]
    assert (per_buyer == 1).mean() > 0.45  # most buy once...
    assert per_buyer.max() >= 60  # ...and a heavy tail buys every week or so
    share = {status: count / total for status, count in query(demo, "SELECT status, count(*) FROM orders GROUP BY 1")}
    assert 0.015 < share["cancelled"] < 0.025
    assert {"pending", "test", "staff", "voided"} <= set(share)
    refunded = scalar(demo, "SELECT avg(refunded_cents > 0) FROM orders")
    assert 0.025 < refunded < 0.035
    partial, full = query(demo, "SELECT sum(refunded_cents < total_cents), sum(refunded_cents = total_cents) "
                                "FROM orders WHERE refunded_cents > 0")[0]
    assert partial > 0 and full > 0
    assert scalar(demo, "SELECT count(*) FROM orders WHERE refunded_cents > total_cents OR discount_cents < 0") == 0
    assert 0.2 < scalar(demo, "SELECT avg(discount_cents > 0) FROM orders") < 0.5
    assert scalar(demo, "SELECT count(DISTINCT category) FROM orders") == 12
    assert query(demo, "SELECT order_id FROM orders WHERE id = 1") == [("SO00000001",)]
    # spend is concentrated: the top fifth of buyers bring most of the revenue
    spend = pl.DataFrame(query(demo, "SELECT sum(total_cents - refunded_cents) FROM orders "
                                     "WHERE status = 'paid' GROUP BY customer"), schema=["net"], orient="row")["net"]
    top = spend.sort(descending=True).head(len(spend) // 5).sum()
    assert top / spend.sum() > 0.6


def test_customers_have_names_contacts_regions_and_zones(demo):
    assert query(demo, "SELECT customer_id FROM customers WHERE id = 1") == [("C0000001",)]
    names = [name for (name,) in query(demo, "SELECT name FROM customers")]
    assert any(" " in name and name.isascii() for name in names)  # pinyin, "Wang Wei"
    assert any(not name.isascii() for name in names)  # Hanzi
    assert 0 < scalar(demo, "SELECT count(*) FROM customers WHERE email IS NULL") < 200
    assert 0 < scalar(demo, "SELECT count(*) FROM customers WHERE phone IS NULL") < 200
    assert scalar(demo, "SELECT count(*) FROM customers WHERE email NOT LIKE '%_@_%._%'") == 0
    assert scalar(demo, "SELECT count(*) FROM customers WHERE phone NOT LIKE '+%'") == 0
    zones = dict(query(demo, "SELECT coalesce(timezone, '-'), count(*) FROM customers GROUP BY 1"))
    assert zones["Asia/Shanghai"] > 0.8 * 2000
    assert {"Asia/Hong_Kong", "Asia/Singapore", "America/Los_Angeles", "Europe/London", "-"} <= set(zones)
    for zone in zones:
        if zone != "-":
            ZoneInfo(zone)
    assert scalar(demo, "SELECT count(DISTINCT region) FROM customers") > 15
    end = day_end(AS_OF, SHANGHAI)
    assert scalar(demo, "SELECT count(*) FROM customers WHERE signed_up_at >= ?", (end - 7 * 86400,)) > 5
    prospects = scalar(demo, "SELECT count(*) FROM customers WHERE id NOT IN "
                             "(SELECT customer FROM orders WHERE status = 'paid')")
    assert prospects > 50


def test_consent_has_opt_outs_and_a_history_for_every_state(demo):
    for channel in ("email", "sms", "push", "wecom"):
        states = dict(query(demo, f"SELECT accepts_{channel}, count(*) FROM customers GROUP BY 1"))
        assert states.get(-1, 0) > 0 and states.get(1, 0) > 0 and states.get(0, 0) > 0, channel
        # every opt-in and every opt-out is in the history, opt-ins first
        mismatched = scalar(demo, f"""
            SELECT count(*) FROM customers c WHERE accepts_{channel} !=
                coalesce((SELECT state FROM consent_events e WHERE e.customer = c.id AND e.channel = ?
                          ORDER BY at DESC, id DESC LIMIT 1), 0)""", (channel,))
        assert mismatched == 0, channel
        outs = scalar(demo, "SELECT count(*) FROM consent_events WHERE channel = ? AND state = -1", (channel,))
        assert outs == states[-1]
    assert scalar(demo, "SELECT count(*) FROM consent_events WHERE source = 'sam' AND note IS NOT NULL") > 0


def test_manual_tags_come_with_their_history(demo):
    logins = {login for login, _ in DEMO_USERS}
    tags = query(demo, "SELECT customer, tag, added_by, added_at, note FROM manual_tags")
    assert len(tags) >= 5
    for customer, tag, added_by, added_at, note in tags:
        assert added_by in logins and note
        history = query(demo, "SELECT action, source, manual, at FROM tag_events WHERE customer = ? AND tag = ? "
                              "ORDER BY at", (customer, tag))
        assert history[-1] == ("added", added_by, 1, added_at)
    removed = scalar(demo, "SELECT count(*) FROM tag_events WHERE action = 'removed'")
    assert scalar(demo, "SELECT count(*) FROM tag_events") == len(tags) + 2 * removed


def test_behaviour_events_follow_buying(demo):
    kinds = dict(query(demo, "SELECT kind, count(*) FROM events GROUP BY kind"))
    assert set(kinds) == {"view", "cart", "favorite", "share", "review", "live", "community"}
    assert kinds["view"] == max(kinds.values())
    by_orders = pl.DataFrame(query(demo, """
        SELECT c.id, (SELECT count(*) FROM orders o WHERE o.customer = c.id),
               (SELECT count(*) FROM events e WHERE e.customer = c.id) FROM customers c"""),
        schema=["customer", "orders", "events"], orient="row")
    assert by_orders.select(pl.corr("orders", "events")).item() > 0.5
    assert scalar(demo, "SELECT count(*) FROM events WHERE kind IN ('live', 'community') AND category != ''") == 0


def test_the_store_is_sound_private_and_ready_to_use(demo):
    assert query(demo, "PRAGMA integrity_check") == [("ok",)]  # CHECK constraints included
    assert query(demo, "PRAGMA foreign_key_check") == []
    assert scalar(demo, "PRAGMA journal_mode") == "wal"
    assert stat.S_IMODE(os.stat(demo).st_mode) == 0o600
    config_path = demo.with_suffix(".toml")
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    config = load_config(config_path)
    assert config.trust_env_user and config.timezone == "Asia/Shanghai" and config.currency == "¥"
    assert "# " in config_path.read_text().splitlines()[0]  # commented, like the default file
    assert dict(query(demo, "SELECT login, role FROM users")) == {"owner": "owner", **dict(DEMO_USERS)}
    meta = dict(query(demo, "SELECT key, value FROM meta WHERE key LIKE 'demo%'"))
    assert meta["demo"] == "1" and meta["demo_customers"] == "2000" and meta["demo_seed"] == "7"
    assert meta["demo_as_of"] == AS_OF.isoformat() and meta["demo_generator"] == str(GENERATOR_VERSION)
    indexes = {name for (name,) in query(demo, "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"orders_customer", "customers_email", "customers_phone", "customers_name",
            "consent_events_customer"} <= indexes
    triggers = {name for (name,) in query(demo, "SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    assert {"customers_updated", "customers_deleted", "events_updated", "events_deleted"} <= triggers
    from core import audit
    from core.store import Store

    with Store.open(demo, readonly=True) as store:
        assert audit.verify(store).ok
    assert [name for name in os.listdir(demo.parent) if name.startswith(".")] == []


@pytest.mark.parametrize("customers", [1, 2, 7, 150])
def test_tiny_shops_work_too(tmp_path, customers):
    summary = generate(tmp_path / "shop.db", customers=customers)
    assert summary.customers == customers == scalar(tmp_path / "shop.db", "SELECT count(*) FROM customers")
    assert query(tmp_path / "shop.db", "PRAGMA integrity_check") == [("ok",)]


def test_bad_parameters_are_refused(tmp_path):
    with pytest.raises(InputError, match="--customers"):
        generate(tmp_path / "shop.db", customers=0)
    with pytest.raises(InputError, match="not a whole past day"):
        generate(tmp_path / "shop.db", as_of=AS_OF + timedelta(days=1))
    assert not (tmp_path / "shop.db").exists()


# --- an existing file at the path ---------------------------------------------


def test_the_same_demo_is_reused_and_only_fresh_replaces_it(tmp_path):
    path = tmp_path / "shop.db"
    generate(path, customers=300)
    store_id = scalar(path, "SELECT value FROM meta WHERE key = 'store_id'")
    again = generate(path, customers=300)
    assert again.reused and again.customers == 300 and again.orders > 0
    assert scalar(path, "SELECT value FROM meta WHERE key = 'store_id'") == store_id
    fresh = generate(path, customers=300, fresh=True)
    assert not fresh.reused
    assert scalar(path, "SELECT value FROM meta WHERE key = 'store_id'") != store_id
    with pytest.raises(InputError, match=r"already holds a demo shop of 300 customers \(seed 7, as of "
                                         r"2025-06-29\); add --fresh to replace it"):
        generate(path, customers=400, seed=8)
    assert scalar(path, "SELECT count(*) FROM customers") == 300
    (tmp_path / "shop.db-wal").write_bytes(b"")  # stale files of the store being replaced
    (tmp_path / "shop.db-shm").write_bytes(b"")
    other = generate(path, customers=400, seed=8, fresh=True)
    assert not other.reused
    assert scalar(path, "SELECT value FROM meta WHERE key = 'demo_seed'") == "8"
    assert scalar(path, "SELECT count(*) FROM customers") == 400
    assert sorted(os.listdir(tmp_path)) == ["shop.cache", "shop.db", "shop.toml"]  # cache: the columnar copy


def test_a_demo_worked_in_is_reopened_on_a_later_day(tmp_path):
    """Yesterday moves on every night; the shop someone tagged and ran campaigns in must not."""
    path = tmp_path / "shop.db"
    generate_demo(path, customers=200, owner="owner", now=NOW)
    made = scalar(path, "SELECT value FROM meta WHERE key = 'demo_as_of'")
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO manual_tags (customer, tag, added_by, added_at) VALUES (5, 'keep-me', 'owner', 1)")
    next_day = generate_demo(path, owner="owner", now=NOW + 86_400)
    assert next_day.reused and next_day.params.as_of.isoformat() == made
    assert scalar(path, "SELECT count(*) FROM manual_tags WHERE tag = 'keep-me'") == 1


def test_a_real_store_is_never_replaced(tmp_path):
    path = tmp_path / "shop.db"
    make_store(path).close()
    before = path.read_bytes(), path.with_suffix(".toml").read_text()
    with pytest.raises(StoreError, match="holds a real store; use --db to put the demo elsewhere"):
        generate(path, customers=100)
    assert (path.read_bytes(), path.with_suffix(".toml").read_text()) == before


def test_other_files_and_configs_are_not_replaced_either(tmp_path):
    notes = tmp_path / "notes.db"
    notes.write_text("my notes")
    with pytest.raises(StoreError, match="use --db"):
        generate(notes, customers=100)
    assert notes.read_text() == "my notes"
    config = tmp_path / "shop.toml"
    config.write_text('timezone = "Europe/Berlin"\n')
    with pytest.raises(StoreError, match="not the demo's"):
        generate(tmp_path / "shop.db", customers=100)
    assert config.read_text() == 'timezone = "Europe/Berlin"\n'
    with pytest.raises(StoreError, match="directory"):
        generate(tmp_path, customers=100)


def test_an_interrupted_build_leaves_the_previous_store_and_no_debris(tmp_path, monkeypatch):
    monkeypatch.setattr("core.demo.CHUNK_CUSTOMERS", 500)  # several chunks, quickly
    path = tmp_path / "shop.db"
    generate(path, customers=300)
    before = table_digests(path)
    calls = []

    def interrupt(description: str, done: int, total: int) -> None:
        calls.append(description)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(path, customers=3000, seed=9, progress=interrupt, fresh=True)
    assert table_digests(path) == before
    assert sorted(os.listdir(tmp_path)) == ["shop.cache", "shop.db", "shop.toml"]  # cache: the columnar copy


# --- the command --------------------------------------------------------------

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


@pytest.fixture
def console_calls(monkeypatch):
    """Record the hook and the console instead of opening it."""
    import console.commands.console_cmd as console_cmd
    import console.commands.demo as demo_cmd

    calls: list[tuple[str, Path]] = []
    monkeypatch.setattr(demo_cmd, "after_generate", lambda path: calls.append(("after_generate", path)))
    monkeypatch.setattr(console_cmd, "open_console", lambda db: calls.append(("open_console", db)))
    monkeypatch.setattr(demo_cmd, "now", lambda: NOW)
    return calls


def test_demo_command_generates_then_reuses(tmp_path, console_calls):
    path = tmp_path / "x.db"
    result = invoke("demo", "--no-open", "--customers", 2000, "--db", path)
    assert result.exit_code == 0, result.output
    assert "2,000 customers" in result.stdout and str(path) in result.stdout
    assert scalar(path, "SELECT count(*) FROM customers") == 2000
    assert scalar(path, "SELECT value FROM meta WHERE key = 'demo_as_of'") == AS_OF.isoformat()
    assert console_calls == [("after_generate", path)]
    again = invoke("demo", "--customers", 2000, "--db", path)
    assert again.exit_code == 0, again.output
    assert "Reopening" in again.stdout
    other = invoke("demo", "--no-open", "--customers", 10, "--db", path)
    assert other.exit_code == 2 and "add --fresh to replace it" in other.stderr
    assert scalar(path, "SELECT count(*) FROM customers") == 2000
    assert console_calls[1:] == [("after_generate", path), ("open_console", path)]


@pytest.mark.parametrize("value", ["0", "-5", "99999999"])
def test_demo_command_refuses_a_bad_customer_count(tmp_path, console_calls, value):
    result = invoke("demo", "--no-open", "--customers", value, "--db", tmp_path / "x.db")
    assert result.exit_code == 2
    assert "--customers" in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists() and console_calls == []


@pytest.mark.parametrize("value, message", [
    ("2025-13-01", "no such date"), ("yesterday", "expected a date as YYYY-MM-DD"),
    ("2999-01-01", "not a whole past day"), ("0001-01-01", "need a day from 2000-01-01 on"),
])
def test_demo_command_refuses_a_bad_as_of(tmp_path, console_calls, value, message):
    result = invoke("demo", "--no-open", "--as-of", value, "--db", tmp_path / "x.db")
    assert result.exit_code == 2
    assert "--as-of" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output
    assert not (tmp_path / "x.db").exists()


def test_demo_command_refuses_a_real_store(tmp_path, console_calls):
    path = tmp_path / "shop.db"
    make_store(path).close()
    result = invoke("demo", "--no-open", "--customers", 100, "--db", path)
    assert result.exit_code == 2
    assert "holds a real store; use --db to put the demo elsewhere" in result.stderr
    assert console_calls == []


def test_demo_command_takes_the_path_from_the_environment(tmp_path, monkeypatch, console_calls):
    path = tmp_path / "env.db"
    monkeypatch.setenv("TIERDESK_DB", str(path))
    result = invoke("demo", "--no-open", "--customers", 50, "--as-of", "2025-06-01")
    assert result.exit_code == 0, result.output
    assert scalar(path, "SELECT value FROM meta WHERE key = 'demo_as_of'") == "2025-06-01"


def test_demo_command_shows_progress_on_a_terminal(tmp_path, console_calls, monkeypatch):
    import console.commands.demo as demo_cmd

    monkeypatch.setattr(demo_cmd, "progress_enabled", lambda: True)
    result = invoke("demo", "--no-open", "--customers", 300, "--db", tmp_path / "x.db")
    assert result.exit_code == 0, result.output
    assert "300 customers" in result.stdout
