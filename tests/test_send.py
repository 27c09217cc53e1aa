"""Send: exactly once, re-checked at send time, drop never add, stop past the tolerance, resume after a crash."""

import fcntl
import json
from datetime import timedelta

import pytest

from core import audit, campaigns, send
from core.customers import resolve, set_consent
from core.errors import Conflict
from tests.conftest import NOW
from tests.factories import Shop, days_before
from tests.test_campaign_support import TODAY, approved, campaign_store, lines, noon, past_touch, user


@pytest.fixture
def shop(store):
    return campaign_store(store, 30)


def sender(store):
    return user(store, "ava")


def file_keys(path) -> list[str]:
    return [json.loads(line)["idempotency_key"] for line in lines(path)]


def test_send_touches_every_planned_member_once_and_writes_one_line_each(store, shop):
    campaign = approved(store, holdout=20, offer="20% off")
    planned = send._planned_count(store, campaign.id)
    report = send.send(store, sender(store), campaign.id, NOW + 60, batch_size=7)
    assert report.state == "sent" and not report.partial
    assert report.touched == report.delivered == planned
    rows = [json.loads(line) for line in lines(report.file)]
    assert len(rows) == planned == len({row["idempotency_key"] for row in rows})
    first = rows[0]
    assert {"campaign_id", "customer_id", "channel", "touch_id", "idempotency_key"} <= set(first)
    assert first["campaign_id"] == campaign.id and first["channel"] == "email" and first["offer"] == "20% off"
    assert first["to"].endswith("@example.com")
    store_id = store.meta("store_id")
    customer = store.scalar("SELECT id FROM customers WHERE customer_id = ?", (first["customer_id"],))
    assert first["idempotency_key"] == f"td-{store_id}-{campaign.id}-{customer}-email"
    touch_ids = [row[0] for row in store.conn.execute(
        "SELECT id FROM touches WHERE campaign = ? ORDER BY id", (campaign.id,))]
    assert sorted(row["touch_id"] for row in rows) == touch_ids
    assert store.scalar("SELECT count(*) FROM outbox WHERE campaign = ? AND status = 'delivered'",
                        (campaign.id,)) == planned
    held_out = store.scalar("SELECT count(*) FROM campaign_members WHERE campaign = ? AND reason = 'holdout'",
                            (campaign.id,))
    assert held_out > 0 and store.scalar(
        "SELECT count(*) FROM touches AS t JOIN campaign_members AS m ON m.campaign = t.campaign "
        "AND m.customer = t.customer WHERE t.campaign = ? AND m.reason = 'holdout'", (campaign.id,)) == 0
    actions = [row["action"] for row in store.rows("SELECT action FROM audit WHERE target = ? ORDER BY id",
                                                   (campaign.target,))]
    assert actions[-2:] == ["campaign.send", "campaign.sent"]
    assert audit.verify(store).ok


def test_sending_again_adds_nothing(store, shop):
    campaign = approved(store)
    first = send.send(store, sender(store), campaign.id, NOW)
    with pytest.raises(Conflict, match="is sent"):
        send.send(store, sender(store), campaign.id, NOW)
    again = send.resend(store, sender(store), campaign.id, NOW)
    assert again.this_run["delivered"] == 0
    assert len(lines(first.file)) == first.touched


def test_members_who_opt_out_after_approval_are_dropped_with_the_reason(store, shop):
    campaign = approved(store)
    set_consent(store, user(store, "owner"), resolve(store, "C004"), "email", False, "unsubscribed", NOW)
    report = send.send(store, sender(store), campaign.id, NOW)
    assert report.dropped == {"opted_out": 1} and report.partial
    assert report.touched == report.planned - 1
    row = store.rows("SELECT outcome, outcome_reason FROM campaign_members AS m JOIN customers AS c "
                     "ON c.id = m.customer WHERE m.campaign = ? AND c.customer_id = 'C004'", (campaign.id,))[0]
    assert row == {"outcome": "dropped", "outcome_reason": "opted_out"}
    assert send.dropped_members(store, campaign.id) == [{"customer_id": "C004", "reason": "opted_out"}]


def test_members_who_hit_a_cap_since_are_dropped_with_the_rule(store, shop):
    campaign = approved(store)
    for customer in shop[:1]:
        for days_ago in (1, 2, 3):
            past_touch(store, customer, noon(TODAY - timedelta(days=days_ago)))
    report = send.send(store, sender(store), campaign.id, NOW)
    assert report.dropped == {"over_budget": 1}
    reason = store.scalar("SELECT outcome_reason FROM campaign_members WHERE campaign = ? AND customer = ?",
                          (campaign.id, shop[0]))
    assert reason == "over_budget:cap:any/any/3-per-week"


def test_too_many_drops_void_the_approval_and_send_nothing(store, shop):
    campaign = approved(store)
    for customer_id in ("C001", "C002", "C003"):
        set_consent(store, user(store, "owner"), resolve(store, customer_id), "email", False, None, NOW)
    with pytest.raises(Conflict, match=r"would drop 3 of 30 planned members \(3 opted_out\).*10.0%.*5.0%"):
        send.send(store, sender(store), campaign.id, NOW)
    after = campaigns.get(store, campaign.id)
    assert after.state == "draft" and after.approved_hash is None and after.plan_hash is None
    assert store.scalar("SELECT count(*) FROM touches WHERE campaign = ?", (campaign.id,)) == 0
    assert store.scalar("SELECT count(*) FROM campaign_members WHERE campaign = ?", (campaign.id,)) == 0
    voided = store.rows("SELECT details FROM audit WHERE action = 'campaign.approval_voided'")
    assert json.loads(voided[0]["details"])["would_drop"] == {"opted_out": 3}


def test_a_send_never_adds_a_customer_who_was_not_in_the_plan(store, shop):
    campaign = approved(store)
    extra = Shop(store)
    newcomer = extra.customer("LATE", email="late@example.com", consent={"email": 1})
    extra.orders(newcomer, days_before(TODAY - timedelta(days=1), 3, 20), total=40)
    from tests.test_campaign_support import read

    read(store)
    report = send.send(store, sender(store), campaign.id, NOW)
    assert "LATE" not in [json.loads(line)["customer_id"] for line in lines(report.file)]


def test_a_plan_changed_after_approval_is_not_sent(store, shop):
    campaign = approved(store)
    store.conn.execute("UPDATE campaign_members SET reason = 'sendable' WHERE campaign = ? AND customer = ?",
                       (campaign.id, shop[0]))
    store.conn.execute("DELETE FROM campaign_members WHERE campaign = ? AND customer = ?", (campaign.id, shop[1]))
    with pytest.raises(Conflict, match="does not match the approved hash"):
        send.send(store, sender(store), campaign.id, NOW)
    assert store.scalar("SELECT count(*) FROM touches") == 0


def test_one_sender_per_campaign(store, shop):
    campaign = approved(store)
    store.delivery_dir.mkdir(parents=True, exist_ok=True)
    with open(store.delivery_dir / f".campaign-{campaign.id}.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        with pytest.raises(Conflict, match="being sent by another process"):
            send.send(store, sender(store), campaign.id, NOW)


class Crash(Exception):
    pass


@pytest.mark.parametrize("stage", ["reserved", "written"])
def test_a_send_that_dies_resumes_without_duplicates(store, shop, stage):
    campaign = approved(store)
    seen = []

    def die_on_second(point):
        if point == stage:
            seen.append(point)
            if len(seen) == 2:
                raise Crash(point)

    with pytest.raises(Crash):
        send.send(store, sender(store), campaign.id, NOW, batch_size=8, checkpoint=die_on_second)
    assert campaigns.get(store, campaign.id).state == "sending"
    report = send.send(store, sender(store), campaign.id, NOW, batch_size=8)
    assert report.state == "sent" and report.touched == report.delivered == 30
    keys = file_keys(report.file)
    assert len(keys) == len(set(keys)) == 30
    assert store.scalar("SELECT count(*) FROM outbox WHERE status != 'delivered'") == 0


def test_a_torn_last_line_is_cut_and_the_touch_written_again(store, shop):
    campaign = approved(store)

    def die(point):
        if point == "written":
            raise Crash(point)

    with pytest.raises(Crash):
        send.send(store, sender(store), campaign.id, NOW, batch_size=10, checkpoint=die)
    path = store.delivery_dir / f"{campaign.id}-email.jsonl"
    written = lines(path)
    assert len(written) == 10
    # A crash half-way through the last write: the final line is cut short.
    torn = "\n".join(written[:9]) + "\n" + written[9][: len(written[9]) // 2]
    path.write_text(torn)
    report = send.send(store, sender(store), campaign.id, NOW, batch_size=10)
    keys = file_keys(path)
    assert len(keys) == len(set(keys)) == 30 == report.delivered
    assert path.read_text().endswith("\n")


def test_deferred_members_are_scheduled_at_the_end_of_quiet_hours(store, shop):
    late = noon(TODAY, hour=22)
    campaign = approved(store, send_at=late)
    report = send.send(store, sender(store), campaign.id, NOW)
    first = json.loads(lines(report.file)[0])
    assert first["deliver_at"] == "2025-07-01T09:00:00Z"
    at = store.scalar("SELECT min(at) FROM touches WHERE campaign = ?", (campaign.id,))
    assert at == noon(TODAY + timedelta(days=1), hour=9)


def test_service_campaigns_neither_obey_nor_count(store, shop):
    for customer in shop:
        for days_ago in (1, 2, 3):
            past_touch(store, customer, noon(TODAY - timedelta(days=days_ago)))
    campaign = approved(store, service=True)
    report = send.send(store, sender(store), campaign.id, NOW)
    assert report.touched == 30 and not report.dropped
    assert store.scalar("SELECT count(*) FROM touches WHERE campaign = ? AND counts = 0", (campaign.id,)) == 30


def test_touches_are_append_only(store, shop):
    campaign = approved(store)
    send.send(store, sender(store), campaign.id, NOW)
    import sqlite3

    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("DELETE FROM touches")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.conn.execute("UPDATE touches SET at = 0")
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        store.conn.execute("INSERT INTO touches (campaign, customer, channel, at, counts, reserved_at) "
                           "SELECT campaign, customer, channel, at, counts, reserved_at FROM touches LIMIT 1")
