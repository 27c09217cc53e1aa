"""The touch budget: window edges, shop-local midnight, the reference and fast paths, no cap ever broken."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import budget, campaigns, plan
from core.config import CapRule
from tests.conftest import NOW
from tests.test_campaign_support import TODAY, campaign_store, new, noon, past_touch

SHANGHAI = ZoneInfo("Asia/Shanghai")


def caps(*rules: tuple[str, str, int, str], quiet: bool = True) -> str:
    text = "".join(f'\n[[caps]]\nchannel = "{c}"\nsegment = "{s}"\nmax = {m}\nper = "{p}"\n' for c, s, m, p in rules)
    if not quiet:
        text += '\n[quiet_hours]\nstart = "00:00"\nend = "00:00"\n'  # an empty window
    return text


def configure(store, text: str) -> None:
    store.config_path.write_text(store.config_path.read_text() + text)
    store.reload_config()


def verdict_for(store, customer: int, now: int = NOW, send_at: int | None = None, channel: str = "email"):
    campaign = new(store, channel=channel, send_at=send_at)
    members = plan.compute(store, campaigns.get(store, campaign.id), now).members
    row = members.filter(pl.col("customer") == customer).to_dicts()[0]
    return row["rule"]


# --- window edges ---------------------------------------------------------------


@pytest.mark.parametrize("days_ago, over", [(0, True), (6, True), (7, False), (8, False)])
def test_week_is_the_send_day_and_the_six_before(store, days_ago, over):
    ids = campaign_store(store, 2)
    configure(store, caps(("any", "any", 1, "week")))
    past_touch(store, ids[0], noon(TODAY - timedelta(days=days_ago), hour=8))
    assert (verdict_for(store, ids[0]) is not None) is over
    assert verdict_for(store, ids[1]) is None


@pytest.mark.parametrize("days_ago, over", [(29, True), (30, False), (31, False)])
def test_month_is_thirty_days_ending_on_the_send_day(store, days_ago, over):
    ids = campaign_store(store, 1)
    configure(store, caps(("email", "any", 1, "month")))
    past_touch(store, ids[0], noon(TODAY - timedelta(days=days_ago)))
    assert (verdict_for(store, ids[0]) == "cap:email/any/1-per-month") is over


def test_a_day_is_a_shop_day_midnight_in_the_shop_time_zone(store):
    store.config_path.write_text('timezone = "Asia/Shanghai"\ntrust_env_user = true\n'
                                 + caps(("email", "any", 1, "day"), quiet=False))
    store.reload_config()
    ids = campaign_store(store, 2, zone=SHANGHAI)
    late = int(datetime(2025, 6, 30, 23, 59, tzinfo=SHANGHAI).timestamp())
    just_after = int(datetime(2025, 7, 1, 0, 1, tzinfo=SHANGHAI).timestamp())
    early = int(datetime(2025, 7, 1, 0, 1, tzinfo=SHANGHAI).timestamp())
    before_midnight = int(datetime(2025, 7, 1, 23, 59, tzinfo=SHANGHAI).timestamp())
    # In UTC both pairs are a few minutes apart; only the shop's midnight separates the first pair.
    past_touch(store, ids[0], late)
    assert verdict_for(store, ids[0], now=NOW, send_at=just_after) is None
    past_touch(store, ids[1], early)
    assert verdict_for(store, ids[1], now=NOW, send_at=before_midnight) == "cap:email/any/1-per-day"


def test_a_touch_scheduled_later_counts_against_a_send_before_it(store):
    ids = campaign_store(store, 1)
    configure(store, caps(("any", "any", 1, "week")))
    past_touch(store, ids[0], noon(TODAY + timedelta(days=3)))
    assert verdict_for(store, ids[0]) == "cap:any/any/1-per-week"


def test_service_touches_do_not_count(store):
    ids = campaign_store(store, 1)
    configure(store, caps(("email", "any", 1, "day")))
    past_touch(store, ids[0], noon(TODAY, hour=8), counts=0)
    assert verdict_for(store, ids[0]) is None


def test_segment_rules_apply_to_their_segment_only(store):
    ids = campaign_store(store, 1)
    segment = store.scalar("SELECT segment FROM customer_state WHERE customer = ?", (ids[0],))
    configure(store, caps(("any", segment, 1, "week"), ("any", "Lost", 0, "week")))
    past_touch(store, ids[0], noon(TODAY - timedelta(days=2)))
    assert verdict_for(store, ids[0]) == f"cap:any/{segment}/1-per-week"


# --- reading the budget ------------------------------------------------------------


def test_one_customers_budget_reads_used_cap_remaining_and_when_a_slot_frees(store):
    ids = campaign_store(store, 1)
    configure(store, caps(("any", "any", 2, "week"), ("sms", "any", 1, "day")))
    past_touch(store, ids[0], noon(TODAY - timedelta(days=5)))
    past_touch(store, ids[0], noon(TODAY - timedelta(days=1)), channel="sms")
    data = budget.customer_budget(store, ids[0], TODAY)
    week, sms = data["rules"]
    assert (week["used"], week["cap"], week["remaining"], week["status"]) == (2, 2, 0, "at cap")
    assert week["frees_on"] == (TODAY + timedelta(days=2)).isoformat()  # the touch 5 days ago leaves the window
    assert (sms["used"], sms["remaining"], sms["frees_on"]) == (0, 1, None)
    assert data["remaining_by_channel"] == {"email": 0, "sms": 0, "push": 0, "wecom": 0}
    assert len(data["recent_touches"]) == 2


def test_overview_counts_per_segment_and_channel(store):
    ids = campaign_store(store, 3)
    configure(store, caps(("email", "any", 1, "day")))
    past_touch(store, ids[0], noon(TODAY, hour=8))
    past_touch(store, ids[1], noon(TODAY - timedelta(days=3)))
    data = budget.overview(store, TODAY)
    email = [row for row in data["rows"] if row["channel"] == "email"]
    assert sum(row["touches_day"] for row in email) == 1
    assert sum(row["touches_week"] for row in email) == 2
    assert sum(row["at_cap"] for row in email) == 1
    assert sum(row["customers"] for row in email) == 3
    assert {row["channel"] for row in data["rows"]} == {"email", "sms", "push", "wecom"}


# --- properties ------------------------------------------------------------------------

CHANNELS = ("email", "sms", "push")
SEGMENTS = ("Lost", "Champions")
rule_strategy = st.builds(
    CapRule,
    channel=st.sampled_from(("any", *CHANNELS)),
    segment=st.sampled_from(("any", *SEGMENTS)),
    max=st.integers(0, 3),
    per=st.sampled_from(("day", "week", "month")),
)
send_strategy = st.tuples(
    st.sampled_from(CHANNELS),
    st.integers(0, 70),  # the send day; sends arrive in any order
    st.lists(st.integers(1, 6), min_size=1, max_size=6, unique=True),
    st.booleans(),  # counts toward caps
)


def segment_of(customer: int) -> str:
    return SEGMENTS[customer % 2]


def ledger_frame(rows: list[tuple[int, str, int]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"customer": pl.Int32, "channel": pl.String, "day": pl.Int32}, orient="row")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules=st.lists(rule_strategy, min_size=1, max_size=4), sends=st.lists(send_strategy, min_size=1, max_size=12))
def test_no_sequence_of_sends_breaks_any_cap(rules, sends):
    ledger: list[tuple[int, str, int]] = []  # counted touches
    for channel, day, customers, counts in sends:
        candidates = pl.DataFrame({"customer": customers, "segment": [segment_of(c) for c in customers],
                                   "day": [day] * len(customers)},
                                  schema={"customer": pl.Int32, "segment": pl.String, "day": pl.Int32})
        judged = budget.verdicts(candidates, ledger_frame(ledger), rules, channel)
        if counts:
            ledger.extend((customer, channel, day) for customer in judged.filter(pl.col("rule").is_null())["customer"])
    for rule in rules:
        for customer in range(1, 7):
            if rule.segment not in ("any", segment_of(customer)):
                continue
            days = [d for c, ch, d in ledger if c == customer and rule.channel in ("any", ch)]
            for end in range(0, 71 + rule.days):
                in_window = sum(1 for d in days if end - rule.days < d <= end)
                assert in_window <= rule.max, (rule, customer, end, days)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rules=st.lists(rule_strategy, min_size=1, max_size=4),
    usage=st.lists(st.tuples(st.integers(1, 12), st.sampled_from(CHANNELS), st.integers(0, 80)), max_size=60),
    candidates=st.lists(st.tuples(st.integers(1, 14), st.integers(25, 45)), min_size=1, max_size=14,
                        unique_by=lambda pair: pair[0]),
    channel=st.sampled_from(CHANNELS),
)
def test_the_fast_path_agrees_with_the_reference(rules, usage, candidates, channel):
    used = ledger_frame(usage)
    frame = pl.DataFrame({"customer": [c for c, _ in candidates], "segment": [segment_of(c) for c, _ in candidates],
                          "day": [d for _, d in candidates]},
                         schema={"customer": pl.Int32, "segment": pl.String, "day": pl.Int32})
    reference = budget.verdicts(frame, used, rules, channel)
    segments = np.array([segment_of(c) for c, _ in candidates])
    broken, counts = budget.dense_verdicts(
        frame["customer"].to_numpy(), frame["day"].to_numpy(), lambda name: segments == name, rules, channel,
        lambda day: budget.dense_counts(used, day, rules, 16),
        lambda ids: used.filter(pl.col("customer").is_in(pl.Series(ids, dtype=pl.Int32).implode())),
    )
    relevant = budget.relevant_rules(rules, channel)
    assert budget.rule_names(broken, relevant).to_list() == reference["rule"].to_list()
    for index in range(len(relevant)):
        assert counts[index].tolist() == reference[f"n{index}"].to_list()


def test_dense_counts_grow_past_the_customers_they_were_sized_for():
    rules = [CapRule("any", "any", 1, "day")]
    dense = budget.dense_counts(ledger_frame([(3, "email", 10)]), 10, rules, 2)
    assert dense.counts[0].tolist() == [0, 0, 0, 1]
    summed = dense + budget.dense_counts(ledger_frame([(1, "sms", 10)]), 10, rules, 2)
    assert summed.counts[0].tolist() == [0, 1, 0, 1]


def test_day_numbers_round_trip():
    assert budget.day_date(budget.day_number(date(2025, 6, 30))) == date(2025, 6, 30)
