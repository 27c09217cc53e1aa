"""The reading commands through the real CLI."""

import json
from datetime import timedelta

import pytest
from typer.testing import CliRunner

from console.cli import app
from core.users import add_user, current_user
from tests.conftest import AS_OF, NOW
from tests.factories import Shop, days_before

runner = CliRunner()


def invoke(store, *args):
    return runner.invoke(app, [*map(str, args), "--db", str(store.path)])


@pytest.fixture
def shop(store, as_user):
    shop = Shop(store)
    ann = shop.customer("C001", name="Ann Lee", email="ann@example.com", phone="+86 138 0013 8000",
                        consent={"email": 1, "sms": -1})
    shop.orders(ann, days_before(AS_OF, 2, 9, 30, 31), total=80, discount=0)
    shop.order(ann, AS_OF - timedelta(days=5), 120, status="cancelled")
    for index, name in enumerate(["Annabel Wu", "Bo Chen", "Cai Li"], start=2):
        cid = shop.customer(f"C00{index}", name=name, email=f"p{index}@example.com")
        shop.orders(cid, days_before(AS_OF, index * 40))
    add_user(store, current_user(store), "sam", "support", NOW)
    add_user(store, current_user(store), "vic", "viewer", NOW)
    return shop


def test_refresh_then_tiers_in_both_languages(store, shop):
    result = invoke(store, "refresh", "--as-of", AS_OF)
    assert result.exit_code == 0, result.output
    assert "4 customers" in result.stdout and "baseline" in result.stdout
    tiers = invoke(store, "tiers")
    assert tiers.exit_code == 0 and "Champions" in tiers.stdout and "Prospect" in tiers.stdout
    store.config_path.write_text('trust_env_user = true\nlanguage = "zh"\n')
    zh = invoke(store, "tiers")
    assert "冠军客户" in zh.stdout
    grid = invoke(store, "tiers", "--grid")
    assert "F5" in grid.stdout and "R1" in grid.stdout and "冠军客户" in grid.stdout
    cn8_grid = invoke(store, "tiers", "--grid", "--model", "cn8")  # rf11's names do not belong on it
    assert "F5" in cn8_grid.stdout and "冠军客户" not in cn8_grid.stdout and "Champions" not in cn8_grid.stdout
    assert "counts only" in cn8_grid.stderr
    why = invoke(store, "why", "C001").stdout
    assert "Champions" not in why and "new:" not in why and "新客:" in why
    cn8 = invoke(store, "tiers", "--model", "cn8", "--json")
    data = json.loads(cn8.stdout)
    assert data["model"] == "cn8" and sum(row["customers"] for row in data["rows"]) == 4
    bad = invoke(store, "tiers", "--model", "rfm99")
    assert bad.exit_code == 2 and "unknown model 'rfm99'" in bad.stderr


def test_a_reading_of_stale_data_says_so_wherever_it_is_read(store, shop):
    from datetime import timedelta

    assert invoke(store, "refresh", "--as-of", AS_OF).exit_code == 0
    assert "stale" not in invoke(store, "tiers").stderr
    assert invoke(store, "refresh", "--as-of", AS_OF + timedelta(days=60)).exit_code == 0
    tiers = invoke(store, "tiers")
    assert tiers.exit_code == 0 and "days older than the as-of" in tiers.stderr and "stale" in tiers.stderr


def test_tiers_before_any_refresh_says_what_to_do(store, shop):
    result = invoke(store, "tiers")
    assert result.exit_code == 2 and "tierdesk refresh" in result.stderr


def test_bad_as_of_is_refused(store, shop):
    result = invoke(store, "refresh", "--as-of", "2025-02-30")
    assert result.exit_code == 2 and "no such date" in result.stderr


def test_customer_lookup_by_id_email_phone_and_name_prefix(store, shop):
    invoke(store, "refresh", "--as-of", AS_OF)
    for query in ("C001", "ANN@example.com", "+86-138-0013-8000"):
        result = invoke(store, "customer", query, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["customer"]["customer_id"] == "C001"
    several = invoke(store, "customer", "ann")
    assert several.exit_code == 0 and "Annabel Wu" in several.stdout and "Ann Lee" in several.stdout
    none = invoke(store, "customer", "zzz")
    assert none.exit_code == 2 and "no customer matches" in none.stderr


def test_profile_tells_the_story(store, shop):
    invoke(store, "refresh", "--as-of", AS_OF)
    data = json.loads(invoke(store, "customer", "C001", "--json").stdout)
    reading = data["reading"]
    assert reading["frequency"] == 4 and reading["recency_days"] == 2
    assert data["orders"]["count"] == 5 and data["orders"]["qualifying"] == 4
    assert data["consent"]["email"]["word"] == "opted in" and data["consent"]["sms"]["word"] == "opted out"
    text = invoke(store, "customer", "C001").stdout
    assert "Ann Lee" in text and "cancelled" in text


def test_support_sees_masked_contacts_and_reveal_is_audited(store, shop, as_user):
    as_user("sam")
    masked = json.loads(invoke(store, "customer", "C001", "--json").stdout)["customer"]
    assert masked["email"] == "a**@e******.com" and masked["phone"].endswith("8000") and "*" in masked["phone"]
    revealed = json.loads(invoke(store, "customer", "C001", "--reveal", "--json").stdout)["customer"]
    assert revealed["email"] == "ann@example.com"
    assert store.rows("SELECT actor, action, target FROM audit WHERE action = 'customer.reveal'") == [
        {"actor": "sam", "action": "customer.reveal", "target": "C001"}]
    as_user("vic")
    refused = invoke(store, "customer", "C001", "--reveal")
    assert refused.exit_code == 2 and "may not reveal" in refused.stderr


def test_why_lists_orders_used_and_excluded(store, shop):
    invoke(store, "refresh", "--as-of", AS_OF)
    data = json.loads(invoke(store, "why", "C001", "--json").stdout)
    used = {order["used"] for order in data["orders"]}
    assert "counted" in used and "excluded" in used
    assert any(order["reason"] == "status is cancelled" for order in data["orders"])
    assert data["facts"]["frequency"] == 4
    assert [line["score"] for line in data["scores"]] == ["R", "F", "M"]
    assert data["lifecycle"] == "active"
    text = invoke(store, "why", "C001").stdout
    assert "excluded: status is cancelled" in text and "Lifecycle" in text
    earlier = json.loads(invoke(store, "why", "C001", "--as-of", AS_OF - timedelta(days=20), "--json").stdout)
    assert earlier["facts"]["frequency"] == 2 and "computed now" in earlier["source"]


def test_moved_after_a_second_refresh(store, shop):
    invoke(store, "refresh", "--as-of", AS_OF - timedelta(days=60))
    invoke(store, "refresh", "--as-of", AS_OF)
    data = json.loads(invoke(store, "moved", "--json").stdout)
    assert data["total"] >= 1 and data["customers"]
    only = json.loads(invoke(store, "moved", "--to", "champions", "--json").stdout)
    assert all(row["to_segment"] == "Champions" for row in only["customers"])
    bad = invoke(store, "moved", "--from", "Nowhere")
    assert bad.exit_code == 2 and "unknown segment" in bad.stderr


def test_manual_tags_and_consent_are_recorded_with_notes(store, shop, as_user):
    as_user("sam")
    added = invoke(store, "tag", "add", "C001", "vip-call", "--note", "asked for a callback")
    assert added.exit_code == 0, added.output
    again = invoke(store, "tag", "add", "C001", "vip-call", "--note", "again")
    assert again.exit_code == 0 and "already" in again.stderr
    no_note = invoke(store, "tag", "add", "C001", "other")
    assert no_note.exit_code == 2 and "needs a note" in no_note.stderr
    rule = invoke(store, "tag", "add", "C001", "price-sensitive", "--note", "x")
    assert rule.exit_code == 2 and "rule tag" in rule.stderr
    removed = invoke(store, "tag", "remove", "C001", "vip-call", "--note", "done")
    assert removed.exit_code == 0
    out = invoke(store, "consent", "C001", "--channel", "email", "--out", "--note", "said so on the phone")
    assert out.exit_code == 0 and "opted out of email" in out.stdout
    timeline = json.loads(invoke(store, "customer", "C001", "--json").stdout)
    assert [(t["tag"], t["action"]) for t in timeline["tags"]] == [("vip-call", "added"), ("vip-call", "removed")]
    assert timeline["consent"]["email"]["word"] == "opted out"
    actions = [row["action"] for row in store.rows("SELECT action FROM audit ORDER BY id")]
    assert actions[-3:] == ["tag.add", "tag.remove", "consent.out"]
    as_user("vic")
    refused = invoke(store, "tag", "add", "C001", "x", "--note", "n")
    assert refused.exit_code == 2 and "may not tag" in refused.stderr
    bad_channel = invoke(store, "consent", "C001", "--channel", "fax", "--in")
    assert bad_channel.exit_code == 2
    both = invoke(store, "consent", "C001", "--channel", "sms", "--in", "--out")
    assert both.exit_code == 2 and "contradict" in both.stderr
    neither = invoke(store, "consent", "C001", "--channel", "sms")
    assert neither.exit_code == 2 and "say --in or --out" in neither.stderr
