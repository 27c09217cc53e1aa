"""The preview funnel: a reason for every matched customer, in order, and what it adds up to."""

from datetime import timedelta

import pytest

from core import campaigns, plan
from tests.conftest import NOW
from tests.factories import Shop, days_before
from tests.test_campaign_support import TODAY, campaign_store, new, noon, past_touch, user

# [[caps]] in a config replaces the default rules, so all three are spelled out.
CAPS_EMAIL_DAY = "".join(
    f'\n[[caps]]\nchannel = "{channel}"\nsegment = "any"\nmax = {most}\nper = "{per}"\n'
    for channel, most, per in (("any", 3, "week"), ("sms", 1, "day"), ("email", 1, "day"))
)


def with_config(store, text: str) -> None:
    store.config_path.write_text(store.config_path.read_text() + text)
    store.reload_config()


@pytest.fixture
def shop(store):
    ids = campaign_store(store, 10)
    extra = Shop(store)
    # One of each kind of unreachable customer, all in the same segment as the others.
    for customer_id, kwargs in (
        ("N001", {"email": None, "consent": {"email": 1}}),      # no address
        ("N002", {"email": "n2@example.com", "consent": {}}),    # no consent given
        ("N003", {"email": "n3@example.com", "consent": {"email": -1}}),  # opted out
    ):
        customer = extra.customer(customer_id, **kwargs)
        extra.orders(customer, days_before(TODAY - timedelta(days=1), 3, 20), total=40)
    from tests.test_campaign_support import read

    read(store)
    return ids


def preview(store, campaign, now=NOW, sample=20):
    return plan.compute(store, campaigns.get(store, campaign.id), now).summary(sample)


def test_json_shape_and_the_funnel_adds_up(store, shop):
    campaign = new(store, holdout=30)
    data = preview(store, campaign)
    assert set(data) == {"matched", "excluded", "sendable", "by_segment", "by_rule", "sample"}
    assert set(data["excluded"]) == {"no_consent", "opted_out", "holdout", "over_budget", "quiet_hours"}
    assert data["matched"] == 13
    assert data["matched"] == data["sendable"] + sum(data["excluded"].values())
    assert data["excluded"]["no_consent"] == 2 and data["excluded"]["opted_out"] == 1
    assert data["excluded"]["holdout"] >= 1
    segment = next(iter(data["by_segment"].values()))
    assert segment["matched"] == 13 and segment["sendable"] == data["sendable"]
    reasons = {row["reason"] for row in data["sample"]}
    assert {"no_consent", "opted_out", "holdout", "sendable"} <= reasons
    sendable_row = next(row for row in data["sample"] if row["reason"] == "sendable")
    assert sendable_row["send_at"] == "2025-06-30 12:00" and sendable_row["arm"] == "treatment"
    assert all(row["customer_id"] for row in data["sample"])


def test_over_budget_carries_the_rule_and_projects_budget_use(store, shop):
    with_config(store, CAPS_EMAIL_DAY)
    past_touch(store, shop[0], noon(TODAY, hour=8))
    past_touch(store, shop[1], noon(TODAY - timedelta(days=2)))
    past_touch(store, shop[1], noon(TODAY - timedelta(days=3)))
    past_touch(store, shop[1], noon(TODAY - timedelta(days=4)))
    data = preview(store, new(store))
    assert data["excluded"]["over_budget"] == 2
    rows = plan.compute(store, campaigns.get(store, 1), NOW).members
    reasons = dict(zip(rows["customer"].to_list(), rows["rule"].to_list()))
    assert reasons[shop[0]] == "cap:email/any/1-per-day"
    assert reasons[shop[1]] == "cap:any/any/3-per-week"
    by_rule = data["by_rule"]
    assert by_rule["cap:email/any/1-per-day"]["over_budget"] == 1
    assert by_rule["cap:any/any/3-per-week"]["over_budget"] == 1
    assert by_rule["cap:email/any/1-per-day"]["counted"] == data["sendable"]
    # after this send everyone sent to has used their one email of the day
    assert by_rule["cap:email/any/1-per-day"]["at_cap_after"] == data["sendable"]
    assert "cap:sms/any/1-per-day" not in by_rule  # an SMS rule cannot apply to email


def test_holdout_is_removed_before_caps(store, shop):
    with_config(store, CAPS_EMAIL_DAY)
    for customer in shop:
        past_touch(store, customer, noon(TODAY, hour=7))
    data = preview(store, new(store, holdout=40))
    assert data["sendable"] == 0
    assert data["excluded"]["holdout"] + data["excluded"]["over_budget"] == len(shop)
    assert data["excluded"]["holdout"] > 0
    assert data["by_rule"]["cap:email/any/1-per-day"]["over_budget"] == data["excluded"]["over_budget"]


def test_service_messages_ignore_caps_and_count_nothing(store, shop):
    with_config(store, CAPS_EMAIL_DAY)
    for customer in shop:
        past_touch(store, customer, noon(TODAY, hour=7))
    data = preview(store, new(store, service=True))
    assert data["excluded"]["over_budget"] == 0 and data["sendable"] == len(shop)
    assert data["by_rule"]["cap:email/any/1-per-day"]["counted"] == 0


def test_quiet_hours_defer_or_drop(store, shop):
    late = noon(TODAY, hour=22)  # 22:00 UTC: inside 21:00-09:00 for everyone here
    deferred = preview(store, new(store, send_at=late, quiet="defer"), now=NOW)
    assert deferred["excluded"]["quiet_hours"] == 0 and deferred["sendable"] == len(shop)
    segment = next(iter(deferred["by_segment"].values()))
    assert segment["deferred"] == len(shop)
    row = next(row for row in deferred["sample"] if row["reason"] == "deferred")
    assert row["send_at"] == "2025-07-01 09:00"
    dropped = preview(store, new(store, send_at=late, quiet="drop"), now=NOW)
    assert dropped["excluded"]["quiet_hours"] == len(shop) and dropped["sendable"] == 0


def test_quiet_hours_use_the_customer_time_zone(store):
    campaign_store(store, 4, timezone="Asia/Tokyo")
    # 12:00 UTC is 21:00 in Tokyo: quiet there, not in the shop's UTC.
    data = preview(store, new(store, quiet="drop"))
    assert data["excluded"]["quiet_hours"] == 4


def test_same_day_campaigns_reserve_budget_in_priority_order(store, shop):
    with_config(store, CAPS_EMAIL_DAY)
    first = new(store, priority=5, name="important")
    campaigns.submit(store, user(store, "olga"), first.id, NOW)
    reserved = preview(store, first)["sendable"]
    later = new(store, priority=1, name="less important")
    data = preview(store, later)
    assert data["excluded"]["over_budget"] == reserved and data["sendable"] == 0
    # a higher priority campaign does not see a lower one's reservation
    boss = new(store, priority=9, name="most important")
    assert preview(store, boss)["sendable"] == reserved
    # a cancelled plan reserves nothing
    campaigns.cancel(store, user(store, "olga"), first.id, NOW)
    assert preview(store, later)["sendable"] == reserved


def test_equal_priority_goes_by_send_time_then_id(store, shop):
    with_config(store, CAPS_EMAIL_DAY)
    early = new(store, send_at=NOW + 600)
    campaigns.submit(store, user(store, "olga"), early.id, NOW)
    late = new(store, send_at=NOW + 3600)
    assert preview(store, late)["sendable"] == 0
    earlier_but_newer = new(store, send_at=NOW + 300)
    assert preview(store, earlier_but_newer)["sendable"] == preview(store, early)["sendable"]


def test_a_customer_added_after_submit_is_not_added_to_the_plan(store, shop):
    campaign = new(store)
    campaigns.submit(store, user(store, "olga"), campaign.id, NOW)
    extra = Shop(store)
    newcomer = extra.customer("LATE1", email="late@example.com", consent={"email": 1})
    extra.orders(newcomer, days_before(TODAY - timedelta(days=1), 3, 20), total=40)
    from tests.test_campaign_support import read

    read(store)
    frozen = campaigns.stored_members(store, campaign.id)
    assert newcomer not in frozen["customer"].to_list()


def test_members_frame_matches_the_summary(store, shop):
    computed = plan.compute(store, new(store, holdout=20, variants="A,B"), NOW)
    members = computed.members
    assert members["customer"].is_sorted()
    counts = dict(members.group_by("reason").len().iter_rows())
    assert counts.get("holdout", 0) == computed.counts["holdout"]
    assert set(members["arm"].unique().to_list()) <= {"A", "B", "control"}
    assert members.filter(members["reason"] == "sendable")["planned_at"].null_count() == 0
    assert members.filter(members["reason"] == "opted_out")["planned_at"].null_count() == 1
