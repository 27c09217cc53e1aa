"""Results on constructed cases with known answers."""

import math

import pytest

from core import campaigns, results, send
from core.errors import Conflict
from tests.conftest import NOW
from tests.factories import Shop
from tests.test_campaign_support import add_cast, approved, campaign_store, new, user

DAY = 86_400
T0 = NOW + 3600  # when the campaign went out


def build_case(store, arms_spec: dict[str, tuple[int, int]], *, holdout: float = 50.0, variants: str | None = None):
    """Customers per arm (members, converters); treatment arms touched at T0, control held out.

    Converters order 50.00 two days after T0; everyone else is quiet, except
    for orders that must not count (too late, too early, not paid).
    """
    add_cast(store)
    shop = Shop(store)
    campaign = new(store, holdout=holdout, variants=variants)
    with store.transaction() as conn:
        conn.execute("UPDATE campaigns SET state = 'sent', send_time = ?, send_started_at = ?, sent_at = ? "
                     "WHERE id = ?", (T0, T0, T0, campaign.id))
    number = 0
    for arm, (members, converters) in arms_spec.items():
        for index in range(members):
            number += 1
            customer = shop.customer(f"R{number:04d}", email=f"r{number}@example.com", consent={"email": 1})
            with store.transaction() as conn:
                if arm == "control":
                    conn.execute("INSERT INTO campaign_members (campaign, customer, arm, reason, segment) "
                                 "VALUES (?, ?, 'control', 'holdout', 'Lost')", (campaign.id, customer))
                else:
                    conn.execute("INSERT INTO campaign_members (campaign, customer, arm, reason, segment, planned_at, "
                                 "outcome) VALUES (?, ?, ?, 'sendable', 'Lost', ?, 'touched')",
                                 (campaign.id, customer, arm, T0))
                    conn.execute("INSERT INTO touches (campaign, customer, channel, at, counts, arm, reserved_at) "
                                 "VALUES (?, ?, 'email', ?, 1, ?, ?)", (campaign.id, customer, T0, arm, T0))
            if index < converters:
                insert_order(store, customer, T0 + 2 * DAY, 5000)
            elif index == converters:
                insert_order(store, customer, T0 + 8 * DAY, 9900)                  # after the window
                insert_order(store, customer, T0 - DAY, 9900)                      # before the send
                insert_order(store, customer, T0 + DAY, 9900, status="cancelled")  # not a purchase
    return campaign


def insert_order(store, customer: int, at: int, cents: int, status: str = "paid") -> None:
    with store.transaction() as conn:
        conn.execute("INSERT INTO orders (order_id, customer, placed_at, total_cents, status) VALUES (?, ?, ?, ?, ?)",
                     (f"X{customer}-{at}-{status}", customer, at, cents, status))


def test_treatment_against_control_known_answer(store):
    campaign = build_case(store, {"treatment": (100, 20), "control": (100, 10)})
    data = results.results(store, campaign.id, T0 + 30 * DAY)
    treatment, control = data["arms"]["treatment"], data["arms"]["control"]
    assert (treatment["members"], treatment["conversions"], treatment["revenue_cents"]) == (100, 20, 100_000)
    assert (control["members"], control["conversions"], control["revenue_cents"]) == (100, 10, 50_000)
    assert treatment["conversion_rate"] == 0.2 and control["conversion_rate"] == 0.1
    assert treatment["revenue_per_member_cents"] == 1000 and control["revenue_per_member_cents"] == 500
    (comparison,) = data["comparisons"]
    conversion = comparison["conversion"]
    assert conversion["uplift"] == pytest.approx(0.1)
    # Newcombe's hybrid score interval: Wilson 20/100 = [.1334, .2888], 10/100 = [.0552, .1744]
    assert conversion["low"] == pytest.approx(0.1 - math.hypot(0.2 - 0.13345, 0.17436 - 0.1), abs=1e-4)
    assert conversion["high"] == pytest.approx(0.1 + math.hypot(0.28883 - 0.2, 0.1 - 0.05523), abs=1e-4)
    assert conversion["verdict"] == "better" == comparison["verdict"]
    revenue = comparison["revenue_per_member_cents"]
    se = math.sqrt((400e6 / 99) / 100 + (225e6 / 99) / 100)
    assert revenue["uplift"] == pytest.approx(500)
    assert revenue["low"] == pytest.approx(500 - 1.959963984540054 * se)
    assert revenue["verdict"] == "better"
    # seeing a 10-point lift from a 10% base reliably takes ~197 per arm: 100 is not enough
    assert comparison["needed_per_arm"] == 197
    assert any(warning.startswith("low power: arms of 100 and 100") for warning in comparison["warnings"])
    assert data["notes"] == []


def test_an_interval_that_spans_zero_is_inconclusive(store):
    campaign = build_case(store, {"A": (100, 30), "B": (100, 20), "control": (100, 25)}, variants="A,B")
    data = results.results(store, campaign.id, T0 + 30 * DAY)
    pairs = {(c["a"], c["b"]): c for c in data["comparisons"]}
    assert set(pairs) == {("A", "control"), ("B", "control"), ("A", "B")}
    a_vs_b = pairs[("A", "B")]["conversion"]
    assert a_vs_b["uplift"] == pytest.approx(0.1)
    assert a_vs_b["low"] < 0 < a_vs_b["high"] and a_vs_b["verdict"] == "inconclusive"
    assert pairs[("B", "control")]["verdict"] == "inconclusive"


def test_tiny_arms_get_a_warning_and_no_control_gets_a_note(store):
    campaign = build_case(store, {"treatment": (8, 2)}, holdout=0)
    data = results.results(store, campaign.id, T0 + DAY)
    assert data["comparisons"] == []
    assert any("no control group" in note for note in data["notes"])
    assert any("preliminary" in note for note in data["notes"])
    small = results.compare("treatment", {"members": 8, "conversion_rate": 0.25, "revenue_per_member_cents": 10.0,
                                          "revenue_var": 1.0},
                            "control", {"members": 9, "conversion_rate": 0.1, "revenue_per_member_cents": 5.0,
                                        "revenue_var": 1.0})
    assert any("fewer than 30" in warning for warning in small["warnings"])


def test_no_results_before_the_send(store):
    campaign_store(store, 3)
    campaign = approved(store)
    with pytest.raises(Conflict, match="no results before it is sent"):
        results.results(store, campaign.id, NOW)


def test_results_after_a_real_send(store):
    ids = campaign_store(store, 40)
    campaign = approved(store, holdout=25)
    send.send(store, user(store, "ava"), campaign.id, NOW)
    sent = campaigns.get(store, campaign.id)
    touched = [row[0] for row in store.conn.execute("SELECT customer FROM touches WHERE campaign = ?", (campaign.id,))]
    for customer in touched[:5]:
        insert_order(store, customer, sent.send_time + DAY, 3000)
    data = results.results(store, campaign.id, NOW + 10 * DAY)
    assert data["arms"]["treatment"]["conversions"] == 5
    assert data["arms"]["treatment"]["members"] + data["arms"]["control"]["members"] == len(ids)


def test_the_difference_interval_matches_newcombes_published_example():
    """Newcombe (1998), Statistics in Medicine 17:873, Table II (a): 56/70 - 48/80."""
    low, high = results.difference_interval(56 / 70, 70, 48 / 80, 80)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_nobody_converting_is_inconclusive_not_certain():
    low, high = results.difference_interval(0.0, 233, 0.0, 41)
    assert low < 0 < high and high - low > 0.05
