"""Refresh against a real store: history, idempotency, atomicity, time zones."""

import random
import shutil
import sqlite3
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import PermissionDenied
from core.refresh import current_reading, latest_refresh, refresh
from core import tiers
from core.users import add_user, current_user
from tests.conftest import AS_OF, NOW, make_store
from tests.factories import Shop, days_before


def run(store, as_of=AS_OF):
    return refresh(store, as_of=as_of, actor=current_user(store), now=NOW)


def random_shop(store, customers=150, seed=1):
    rng = random.Random(seed)
    shop = Shop(store)
    for index in range(customers):
        cid = shop.customer(f"C{index:04d}", signed_up=AS_OF - timedelta(days=rng.randint(0, 900)),
                            email=f"c{index}@example.com")
        for _ in range(rng.choice([0, 1, 1, 2, 3, 5, 9])):
            shop.order(cid, AS_OF - timedelta(days=rng.randint(0, 600)), rng.randint(5, 400),
                       discount=rng.choice([0, 0, 3]), refunded=rng.choice([0, 0, 0, 2]),
                       status=rng.choice(["paid"] * 12 + ["cancelled", "pending"]),
                       category=rng.choice(["shoes", "home", "toys"]))
    return shop


def state(store):
    return store.rows("SELECT * FROM customer_state ORDER BY customer")


def test_first_refresh_is_a_baseline_and_a_second_one_changes_nothing(store, as_user):
    random_shop(store)
    first = run(store)
    assert first.baseline and first.population == 150
    assert first.changed_rows == 150 and first.tier_moves == 0
    assert store.scalar("SELECT count(*) FROM tier_events") == 0
    before = state(store)
    second = run(store)
    assert not second.baseline
    assert (second.changed_rows, second.tier_moves, second.lifecycle_moves, second.tag_changes) == (0, 0, 0, 0)
    assert state(store) == before
    assert store.scalar("SELECT count(*) FROM refreshes") == 2


def test_only_customers_whose_reading_changed_get_events(store, as_user):
    shop = Shop(store)
    quiet = shop.customer("quiet")
    shop.orders(quiet, days_before(AS_OF, 3, 40, 80))
    mover = shop.customer("mover")
    shop.orders(mover, days_before(AS_OF, 200))
    for index in range(5):
        other = shop.customer(f"o{index}")
        shop.orders(other, days_before(AS_OF, index * 10 + 1))
    run(store)
    shop.orders(mover, days_before(AS_OF, 1, 2, 3, 4, 5, 6))  # six recent orders: a champion now
    result = run(store)
    changed = store.rows(
        "SELECT c.customer_id, e.from_segment, e.to_segment FROM tier_events e JOIN customers c ON c.id = e.customer"
    )
    assert {row["customer_id"] for row in changed} >= {"mover"}
    mover_move = next(row for row in changed if row["customer_id"] == "mover")
    assert mover_move["to_segment"] == "Champions"
    assert store.scalar(
        "SELECT count(*) FROM lifecycle_events e JOIN customers c ON c.id = e.customer WHERE c.customer_id = 'mover'"
    ) == 1
    assert result.tier_moves == len(changed)
    summary = latest_refresh(store)["counts"]["segments"]
    assert summary["Champions"]["moved_in"] >= 1


def test_new_customer_after_the_baseline_enters_from_nowhere(store, as_user):
    shop = Shop(store)
    shop.orders(shop.customer("a"), days_before(AS_OF, 5))
    run(store)
    shop.orders(shop.customer("b", signed_up=AS_OF - timedelta(days=30)), days_before(AS_OF, 1))
    result = run(store)
    assert result.tier_moves == 1
    assert store.rows("SELECT from_segment FROM tier_events") == [{"from_segment": None}]


def test_tag_events_record_rule_tags_coming_and_going(store, as_user):
    shop = Shop(store)
    buyer = shop.customer("buyer")
    shop.orders(buyer, days_before(AS_OF, 60, 61), discount=5)
    run(store, AS_OF - timedelta(days=1))
    shop.orders(buyer, days_before(AS_OF, 0, 0, 0))  # undiscounted: no longer price-sensitive
    run(store)
    events = store.rows("SELECT tag, action, source, as_of FROM tag_events ORDER BY id")
    assert {"tag": "price-sensitive", "action": "removed", "source": "rule:price-sensitive",
            "as_of": AS_OF.isoformat()} in events


def test_a_failed_refresh_leaves_the_previous_reading_intact(store, as_user):
    random_shop(store)
    run(store)
    before = state(store)
    refreshes = store.scalar("SELECT count(*) FROM refreshes")
    Shop(store).orders(1, days_before(AS_OF, 0, 0, 0, 0, 0, 0))
    # a real failure inside the write transaction: the store itself refuses the events
    store.conn.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON lifecycle_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk on fire"):
        run(store, AS_OF + timedelta(days=30))
    assert state(store) == before
    assert store.scalar("SELECT count(*) FROM refreshes") == refreshes
    assert store.scalar("SELECT count(*) FROM tier_events") == 0
    store.conn.execute("DROP TRIGGER refuse")
    assert run(store, AS_OF + timedelta(days=30)).changed_rows > 0


def test_the_saved_reading_is_only_a_cache(store, as_user):
    random_shop(store)
    run(store, AS_OF - timedelta(days=10))
    shutil.rmtree(store.cache_dir)
    with_cache_gone = run(store)
    other = make_store(store.path.parent / "other.db")
    random_shop(other)
    run(other, AS_OF - timedelta(days=10))
    kept = run(other)
    assert with_cache_gone.counts["segments"] == kept.counts["segments"]
    assert with_cache_gone.tier_moves == kept.tier_moves
    assert state(store) == state(other)
    _, frame = current_reading(store)
    assert frame.height == 150


def test_day_boundaries_follow_the_shop_time_zone(tmp_path, as_user):
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")
    store = make_store(tmp_path / "sh.db", timezone="Asia/Shanghai")
    shop = Shop(store, zone=shanghai)
    late = shop.customer("late")
    shop.order(late, AS_OF, 10, hour=23)  # 23:00 in Shanghai on the as-of: counts
    early = shop.customer("early")
    shop.order(early, AS_OF + timedelta(days=1), 10, hour=0)  # 00:00 the next day: after the as-of
    run(store)
    rows = {row["customer"]: row for row in state(store)}
    assert rows[late]["last_order_day"] == AS_OF.isoformat() and rows[late]["frequency"] == 1
    assert rows[early]["frequency"] == 0 and rows[early]["segment"] == "Prospect"


def test_only_roles_that_may_refresh_can(store, as_user):
    add_user(store, current_user(store), "sam", "support", NOW)
    as_user("sam")
    with pytest.raises(PermissionDenied):
        run(store)


def test_stale_data_is_called_out(store, as_user):
    shop = Shop(store)
    shop.orders(shop.customer("a"), days_before(AS_OF, 100))
    result = run(store)
    assert any("probably stale" in warning for warning in result.warnings)
    assert result.counts["stale_days"] == 100
    assert tiers.summary(store)["stale"] is True
    # A reading made before stale_days was recorded still reads as stale, from its warning.
    store.conn.execute("UPDATE refreshes SET counts = json_remove(counts, '$.stale_days')")
    assert tiers.summary(store)["stale"] is True

    shop.orders(shop.customer("b"), days_before(AS_OF, 2))
    fresh = run(store)
    assert fresh.warnings == () and fresh.counts["stale_days"] is None
    assert tiers.summary(store)["stale"] is False


def test_rfm_agrees_with_an_independent_sql_recomputation(store, as_user):
    random_shop(store, customers=300, seed=7)
    run(store)
    start = (AS_OF - timedelta(days=364)).isoformat()
    expected = store.rows(
        """
        SELECT c.id AS customer,
               max(CASE WHEN o.status = 'paid' AND o.total_cents > o.refunded_cents
                        AND date(o.placed_at, 'unixepoch') <= :as_of
                   THEN date(o.placed_at, 'unixepoch') END) AS last_order_day,
               sum(CASE WHEN o.status = 'paid' AND o.total_cents > o.refunded_cents
                        AND date(o.placed_at, 'unixepoch') BETWEEN :start AND :as_of THEN 1 ELSE 0 END) AS frequency,
               coalesce(sum(CASE WHEN o.status = 'paid' AND o.total_cents > o.refunded_cents
                        AND date(o.placed_at, 'unixepoch') BETWEEN :start AND :as_of
                   THEN o.total_cents - o.refunded_cents END), 0) AS monetary_cents
        FROM customers c LEFT JOIN orders o ON o.customer = c.id
        GROUP BY c.id ORDER BY c.id
        """,
        {"as_of": AS_OF.isoformat(), "start": start},
    )
    actual = store.rows(
        "SELECT customer, last_order_day, frequency, monetary_cents FROM customer_state ORDER BY customer"
    )
    assert actual == expected


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), shift=st.integers(0, 40))
def test_refresh_is_idempotent_for_any_shop(tmp_path_factory, seed, shift, monkeypatch):
    monkeypatch.setenv("TIERDESK_USER", "owner")
    store = make_store(tmp_path_factory.mktemp("idem") / "s.db")
    random_shop(store, customers=40, seed=seed)
    as_of = AS_OF - timedelta(days=shift)
    run(store, as_of)
    again = run(store, as_of)
    assert (again.changed_rows, again.tier_moves, again.lifecycle_moves, again.tag_changes) == (0, 0, 0, 0)
    store.close()


def test_earlier_as_of_is_allowed_but_noted(store, as_user):
    random_shop(store, customers=20)
    run(store)
    result = run(store, date(2025, 1, 1))
    assert any("earlier than the previous" in warning for warning in result.warnings)
