import os
import sqlite3
import stat

import pytest

from core import audit
from core.errors import ConfigError, InputError, PermissionDenied, StoreError
from core.schema import SCHEMA_VERSION
from core.store import PAGE_SIZE, Store
from core.users import add_user, current_user
from tests.conftest import NOW, make_store


def test_new_store_is_private_wal_with_foreign_keys_and_an_owner(store_path):
    store = Store.create(store_path, owner="alice", now=NOW, timezone="Asia/Shanghai")
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.config_path).st_mode) == 0o600
    assert store.scalar("PRAGMA journal_mode") == "wal"
    assert store.scalar("PRAGMA page_size") == PAGE_SIZE == 16_384  # bulk writes: see core.store
    assert store.scalar("PRAGMA foreign_keys") == 1
    assert store.scalar("PRAGMA busy_timeout") >= 1000
    assert store.scalar("PRAGMA user_version") == SCHEMA_VERSION
    assert store.rows("SELECT login, role FROM users") == [{"login": "alice", "role": "owner"}]
    assert store.config.timezone == "Asia/Shanghai"
    assert "# tierdesk shop policy" in store.config_path.read_text()
    with pytest.raises(sqlite3.IntegrityError):
        store.conn.execute(
            "INSERT INTO orders (order_id, customer, placed_at, total_cents) VALUES ('x', 999, 0, 100)"
        )
    store.close()


def test_group_store_is_shared_with_the_group(store_path):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    store = Store.create(store_path, owner="alice", now=NOW, group=group)
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o660
    assert os.stat(store_path).st_gid == os.getgid()
    store.close()


def test_unknown_group_is_refused_before_anything_is_created(store_path):
    with pytest.raises(StoreError, match="no such group"):
        Store.create(store_path, owner="alice", now=NOW, group="no-such-group-xyz")
    assert not store_path.exists()


def test_create_refuses_an_existing_store(store):
    with pytest.raises(StoreError, match="already exists"):
        Store.create(store.path, owner="x", now=NOW)


def test_open_refuses_missing_foreign_and_newer_files(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path / "missing.db")
    text = tmp_path / "notes.db"
    text.write_text("hello, not a database at all")
    with pytest.raises(StoreError, match="not an SQLite database"):
        Store.open(text)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a tierdesk store"):
        Store.open(other)
    newer = make_store(tmp_path / "newer.db")
    newer.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    newer.close()
    with pytest.raises(StoreError, match="newer tierdesk"):
        Store.open(tmp_path / "newer.db")


def test_transaction_rolls_back_everything_on_error(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_meta("k", "v")
            raise RuntimeError("boom")
    assert store.meta("k") is None
    with store.transaction():
        store.set_meta("k", "v")
        with pytest.raises(RuntimeError):
            with store.transaction():
                store.set_meta("k", "nested")
                raise RuntimeError("inner")
    assert store.meta("k") == "v"


def test_changes_log_catches_updates_even_from_outside_tools(store):
    with store.transaction():
        store.conn.execute("INSERT INTO customers (customer_id, created_at) VALUES ('c1', 0)")
    outside = sqlite3.connect(store.path)
    outside.execute("UPDATE customers SET name = 'Ann' WHERE customer_id = 'c1'")
    outside.commit()
    outside.close()
    assert store.rows("SELECT tbl, row FROM changes") == [{"tbl": "customers", "row": 1}]


def test_audit_chain_verifies_and_names_the_first_tampered_row(store):
    for index in range(5):
        with store.transaction():
            audit.record(store, actor="owner", action="test", target=str(index), now=NOW + index)
    assert audit.verify(store).ok
    untrigger(store)
    store.conn.execute("UPDATE audit SET target = 'forged' WHERE id = 4")
    result = audit.verify(store)
    assert not result.ok and result.first_broken == 4
    assert "changed" in result.reason


def test_audit_chain_names_a_deleted_row(store):
    for index in range(4):
        with store.transaction():
            audit.record(store, actor="owner", action="test", target=str(index), now=NOW)
    untrigger(store)
    store.conn.execute("DELETE FROM audit WHERE id = 3")
    result = audit.verify(store)
    assert result.first_broken == 4


def untrigger(store):
    """What someone editing the file with sqlite3 would do first."""
    store.conn.execute("DROP TRIGGER audit_append_only_update")
    store.conn.execute("DROP TRIGGER audit_append_only_delete")


def test_the_audit_log_refuses_edits_and_verify_sees_rows_cut_from_either_end(store):
    import sqlite3

    for index in range(5):
        with store.transaction():
            audit.record(store, actor="owner", action="test", target=str(index), now=NOW)
    for statement in ("UPDATE audit SET actor = 'x' WHERE id = 2", "DELETE FROM audit WHERE id = 5"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store.conn.execute(statement)
    untrigger(store)
    newest = store.scalar("SELECT max(id) FROM audit")
    store.conn.execute("DELETE FROM audit WHERE id >= ?", (newest - 1,))
    result = audit.verify(store)
    assert not result.ok and result.reason == f"rows {newest - 1}..{newest} are missing from the end"
    store.conn.execute("DELETE FROM audit WHERE id <= 2")
    assert audit.verify(store).reason == "rows 1..2 are missing"
    store.conn.execute("DELETE FROM audit")
    assert not audit.verify(store).ok
    store.conn.execute("DROP TABLE audit")
    with pytest.raises(StoreError, match="the audit log cannot be read"):
        audit.verify(store)


def test_env_user_is_ignored_unless_the_store_trusts_it(tmp_path, monkeypatch):
    store = Store.create(tmp_path / "s.db", owner="alice", now=NOW)
    monkeypatch.setenv("TIERDESK_USER", "mallory")
    user = current_user(store)
    assert user.login != "mallory" and "ignored" in user.warning
    store.config_path.write_text("trust_env_user = true\n")
    store.reload_config()
    assert current_user(store).login == "mallory"
    for odd in ("  ", "eve\nroot", "a b"):
        monkeypatch.setenv("TIERDESK_USER", odd)
        with pytest.raises(InputError, match="is not a login name"):
            current_user(store)


def test_roles_gate_actions_and_unknown_users_only_look(store, as_user):
    owner = current_user(store)
    add_user(store, owner, "sam", "support", NOW)
    as_user("sam")
    sam = current_user(store)
    assert sam.role == "support" and sam.can("tag") and not sam.can("campaign.approve")
    with pytest.raises(PermissionDenied, match="may not manage users"):
        add_user(store, sam, "eve", "owner", NOW)
    as_user("stranger")
    assert current_user(store).role == "viewer" and not current_user(store).known
    assert audit.verify(store).ok


def test_bad_config_refuses_the_command_naming_key_and_line(store):
    store.config_path.write_text('language = "fr"\n[rfm]\nlookback = 90\n')
    with pytest.raises(ConfigError) as caught:
        store.reload_config()
    problems = "\n".join(caught.value.problems)
    assert "line 1: language" in problems
    assert "line 3: rfm.lookback: unknown key (did you mean 'lookback_days'?)" in problems


def test_an_older_store_opened_read_only_is_upgraded_first(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    Store.create(path, owner="alice", now=NOW).close()
    conn = sqlite3.connect(path)  # as tierdesk before the audit log refused edits left it
    conn.execute("DROP TRIGGER audit_append_only_update")
    conn.execute("DROP TRIGGER audit_append_only_delete")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_audit_append_only'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()
    with Store.open(path, readonly=True) as store:
        assert store.scalar("PRAGMA user_version") == SCHEMA_VERSION
        assert store.scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'audit_append_only%'") == 2
        assert audit.verify(store).ok


def test_contact_lookups_search_their_partial_indexes(tmp_path):
    """The contact indexes leave out customers without that contact, and every lookup still uses them."""
    from core import customers

    with Store.create(tmp_path / "s.db", owner="alice", now=NOW) as store:
        searches = store.conn.set_trace_callback  # the SQL find() runs, with its plan
        ran: list[str] = []
        searches(ran.append)
        for query in ("ana@example.com", "+86 138 0000 0000", "Ana"):
            customers.find(store, query)
        searches(None)
        lookups = [sql for sql in ran if "FROM customers WHERE" in sql and "WHERE customer_id" not in sql]
        assert all(any(f"WHERE {column} " in sql for sql in lookups) for column in ("email", "phone", "name"))
        for sql in lookups:
            explain = store.conn.execute("EXPLAIN QUERY PLAN " + sql, [1] * sql.count("?"))
            plan = " ".join(row[3] for row in explain.fetchall())
            assert "SEARCH customers USING " in plan and "INDEX customers_" in plan, (sql, plan)
        partial = store.scalar("SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                               "AND name IN ('customers_email', 'customers_phone', 'customers_name') "
                               "AND sql LIKE '%WHERE % IS NOT NULL'")
        assert partial == 3


def test_a_store_from_before_partial_contact_indexes_is_upgraded(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    Store.create(path, owner="alice", now=NOW).close()
    conn = sqlite3.connect(path)  # as tierdesk left it before the contact indexes were partial
    for name, column in (("email", "email"), ("phone", "phone"), ("name", "name COLLATE NOCASE")):
        conn.execute(f"DROP INDEX customers_{name}")
        conn.execute(f"CREATE INDEX customers_{name} ON customers ({column})")
    conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'm004_partial_contact_indexes'")
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert store.scalar("PRAGMA user_version") == SCHEMA_VERSION
        assert store.scalar("SELECT count(*) FROM sqlite_master WHERE name LIKE 'customers_%' "
                            "AND sql LIKE '%IS NOT NULL'") == 3
