import os
import stat

from typer.testing import CliRunner

from console.cli import app
from tests.conftest import make_store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(arg) for arg in args])


def test_init_creates_a_private_store_and_refuses_a_second_time(store_path):
    result = invoke("init", "--db", store_path, "--timezone", "Europe/Berlin")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(os.stat(store_path).st_mode) == 0o600
    assert 'timezone = "Europe/Berlin"' in store_path.with_suffix(".toml").read_text()
    again = invoke("init", "--db", store_path)
    assert again.exit_code == 2
    assert "already exists" in again.stderr
    assert "Traceback" not in again.output


def test_init_refuses_an_unknown_time_zone_and_creates_nothing(store_path):
    result = invoke("init", "--db", store_path, "--timezone", "Nowhere/Land")
    assert result.exit_code == 2
    assert "unknown time zone" in result.stderr
    assert not store_path.exists()


def test_db_comes_from_the_environment(store_path, monkeypatch):
    monkeypatch.setenv("TIERDESK_DB", str(store_path))
    assert invoke("init").exit_code == 0
    assert store_path.exists()


def test_a_db_typed_before_the_command_is_the_commands_and_beats_the_environment(tmp_path, monkeypatch):
    first, second = tmp_path / "a.db", tmp_path / "b.db"
    make_store(first).close()
    make_store(second).close()
    monkeypatch.setenv("TIERDESK_DB", str(second))
    assert invoke("--db", first, "config", "path").stdout.strip() == str(tmp_path / "a.toml")
    assert invoke("config", "path").stdout.strip() == str(tmp_path / "b.toml")
    assert invoke("config", "path", "--db", first).stdout.strip() == str(tmp_path / "a.toml")
    both = invoke("--db", first, "users", "list", "--db", second)
    assert both.exit_code == 2 and "--db given twice" in both.stderr
    assert invoke("--db", first, "users", "list", "--db", first).exit_code == 0


def test_missing_store_explains_how_to_make_one(tmp_path):
    result = invoke("users", "list", "--db", tmp_path / "none.db")
    assert result.exit_code == 2
    assert "no store at" in result.stderr and "tierdesk demo" in result.stderr


def test_config_check_names_the_bad_key_and_line(store):
    store.config_path.write_text('timezone = "UTC"\n\n[send]\nattribution_dayz = 3\n')
    result = invoke("config", "check", "--db", store.path)
    assert result.exit_code == 2
    assert "line 4: send.attribution_dayz: unknown key" in result.stderr
    assert "Traceback" not in result.output


def test_config_show_and_path(store):
    shown = invoke("config", "show", "--db", store.path)
    assert shown.exit_code == 0 and 'model = "rf11"' in shown.stdout
    path = invoke("config", "path", "--db", store.path)
    assert path.stdout.strip() == str(store.config_path)


def test_users_add_is_owner_only_and_audited(store, as_user):
    assert invoke("users", "add", "ann", "--role", "support", "--db", store.path).exit_code == 0
    as_user("ann")
    refused = invoke("users", "add", "bob", "--role", "owner", "--db", store.path)
    assert refused.exit_code == 2 and "ann (support) may not manage users" in refused.stderr
    listed = invoke("users", "list", "--json", "--db", store.path)
    assert '"ann"' in listed.stdout and '"bob"' not in listed.stdout
    log = invoke("audit", "--json", "--db", store.path)
    assert "users.add" in log.stdout


def test_audit_verify_names_the_first_broken_row(tmp_path, as_user):
    store = make_store(tmp_path / "a.db")
    for login in ("a1", "a2", "a3"):
        assert invoke("users", "add", login, "--role", "viewer", "--db", store.path).exit_code == 0
    assert invoke("audit", "--verify", "--db", store.path).exit_code == 0
    store.conn.execute("DROP TRIGGER audit_append_only_update")  # as someone with sqlite3 would
    store.conn.execute("UPDATE audit SET actor = 'someone-else' WHERE id = 3")
    store.close()
    result = invoke("audit", "--verify", "--db", tmp_path / "a.db")
    assert result.exit_code == 2
    assert "broken at row 3" in result.stderr


def test_compact_money_for_narrow_tables():
    from core.money import format_compact

    assert format_compact(141300, "¥") == "¥1,413.00"
    assert format_compact(12345678, "¥") == "¥123.5k"
    assert format_compact(2748911600, "¥") == "¥27.49M"
    assert format_compact(-2748911600, "$") == "-$27.49M"
