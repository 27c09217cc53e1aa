"""Hand-computed checks of each definition in DESIGN.md (R, F, M and scores)."""

from datetime import date, timedelta

import polars as pl
import pytest

from core import reading as reading_mod
from core.config import Config, RfmConfig, parse_config
from core.reading import compute, day_number
from core.rfm import fixed_score, quantile_score

AS_OF = date(2025, 6, 29)


class Frames:
    """Orders and customers as the refresh sees them (shop days as integers)."""

    def __init__(self) -> None:
        self.orders: list[dict] = []
        self.customers: dict[int, int | None] = {}

    def customer(self, cid: int, signup: date | None = date(2020, 1, 1)) -> int:
        self.customers[cid] = day_number(signup) if signup else None
        return cid

    def order(self, cid: int, day: date, total: float, *, refunded: float = 0, discount: float = 0,
              status: str = "paid", category: str = "shoes") -> None:
        self.customers.setdefault(cid, day_number(date(2020, 1, 1)))
        self.orders.append({
            "id": len(self.orders) + 1, "customer": cid, "placed_at": day_number(day) * 86400 + 43200,
            "day": day_number(day), "total_cents": round(total * 100), "discount_cents": round(discount * 100),
            "refunded_cents": round(refunded * 100), "status": status, "category": category,
        })

    def compute(self, config: Config | None = None, as_of: date = AS_OF) -> pl.DataFrame:
        return self.reading(config, as_of).frame

    def reading(self, config: Config | None = None, as_of: date = AS_OF):
        orders = pl.DataFrame(self.orders, schema={
            "id": pl.Int64, "customer": pl.Int32, "placed_at": pl.Int64, "day": pl.Int32,
            "total_cents": pl.Int64, "discount_cents": pl.Int64, "refunded_cents": pl.Int64,
            "status": pl.String, "category": pl.String})
        events = pl.DataFrame(schema={"id": pl.Int64, "customer": pl.Int32, "kind": pl.String, "at": pl.Int64,
                                      "day": pl.Int32, "category": pl.String})
        customers = pl.DataFrame({"id": list(self.customers), "signup_day": list(self.customers.values())},
                                 schema={"id": pl.Int64, "signup_day": pl.Int32})
        return compute(orders, events, customers, as_of, config or Config())


def ago(days: int) -> date:
    return AS_OF - timedelta(days=days)


def row(frame: pl.DataFrame, cid: int) -> dict:
    return frame.filter(pl.col("customer") == cid).row(0, named=True)


def test_only_paid_orders_with_something_left_after_refunds_count():
    shop = Frames()
    for status in ("pending", "cancelled", "voided", "test", "staff"):
        shop.order(1, ago(5), 80, status=status)
    shop.order(1, ago(10), 100, refunded=100)  # fully refunded
    shop.order(1, ago(20), 100, refunded=30)  # partly refunded: 70 counts
    shop.order(1, ago(30), 50)
    result = row(shop.compute(), 1)
    assert result["frequency"] == 2
    assert result["monetary"] == 12000  # 70 + 50, in cents
    assert result["aov"] == 6000
    assert result["recency_days"] == 20  # the refunded and cancelled ones don't make it recent


def test_window_edges_are_inclusive_and_later_orders_ignored():
    shop = Frames()
    shop.order(1, ago(364), 10)  # the window's first day
    shop.order(2, ago(365), 10)  # the day before it
    shop.order(3, AS_OF, 10)  # the as-of itself
    shop.order(4, AS_OF + timedelta(days=1), 10)  # after: ignored
    frame = shop.compute()
    assert row(frame, 1)["frequency"] == 1 and row(frame, 1)["r_score"] is not None
    assert row(frame, 2)["frequency"] == 0
    assert row(frame, 2)["segment"] == "Lost" and row(frame, 2)["r_score"] is None
    assert row(frame, 2)["recency_days"] == 365
    assert row(frame, 3)["recency_days"] == 0
    assert row(frame, 4)["segment"] == "Prospect" and row(frame, 4)["last_day"] is None


def test_quantile_score_formula_and_a_tie_block_straddling_a_cut_goes_down():
    # 10 customers: values 1..6 then a block of four 7s. N = 10, score = 1 + floor(5 * worse / 10).
    values = [1, 2, 3, 4, 5, 6, 7, 7, 7, 7]
    frame = pl.DataFrame({"v": values})
    scores = frame.select(quantile_score(pl.col("v"), higher_is_better=True)).to_series().to_list()
    # worse: 0..5 for the first six, 6 for every 7 (only six are strictly lower)
    assert scores == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    # the 7s' block spans positions 6..9 (worse 6..9 would be 4,4,5,5): it goes down to 4, so 5 stays empty
    low = frame.select(quantile_score(pl.col("v"), higher_is_better=False)).to_series().to_list()
    assert low == [5, 5, 4, 4, 3, 3, 1, 1, 1, 1]


def test_an_empty_score_is_reported_not_relabelled():
    shop = Frames()
    for cid in range(1, 121):
        shop.order(cid, ago(10), 50)  # everyone identical
    reading = shop.reading()
    assert set(reading.frame["r_score"].to_list()) == {1}
    assert reading.reports["R"].empty == [2, 3, 4, 5]
    assert reading.reports["M"].empty == [2, 3, 4, 5]
    assert reading.reports["R"].method == "quantile"


def test_f_uses_fixed_cut_offs():
    frame = pl.DataFrame({"f": [1, 2, 3, 4, 5, 6, 7, 40]})
    scores = frame.select(fixed_score(pl.col("f"), (2, 3, 4, 6), higher_is_better=True)).to_series().to_list()
    assert scores == [1, 2, 3, 4, 4, 5, 5, 5]


def test_f_cut_offs_come_from_the_config():
    config = parse_config("[rfm]\nf_cutoffs = [3, 5, 8, 13]\n")
    shop = Frames()
    for cid, n in ((1, 2), (2, 3), (3, 13)):
        for k in range(n):
            shop.order(cid, ago(k + 1), 10)
    frame = shop.compute(config)
    assert [row(frame, cid)["f_score"] for cid in (1, 2, 3)] == [1, 2, 5]


def test_quantile_scores_at_100_customers_and_fallback_below():
    shop = Frames()
    for cid in range(1, 101):
        shop.order(cid, ago(cid), cid)  # recency = cid days, spend = cid
    reading = shop.reading()
    frame = reading.frame
    assert reading.reports["R"].method == "quantile"
    # spend 1..100: worse = spend - 1, score = 1 + floor(5 * worse / 100)
    assert row(frame, 1)["m_score"] == 1 and row(frame, 20)["m_score"] == 1 and row(frame, 21)["m_score"] == 2
    assert row(frame, 100)["m_score"] == 5
    assert row(frame, 1)["r_score"] == 5 and row(frame, 100)["r_score"] == 1

    small = Frames()
    for cid, (days, spend) in enumerate([(5, 10), (30, 20), (31, 30), (61, 50), (120, 100), (181, 400)], start=1):
        small.order(cid, ago(days), spend)
    reading = small.reading()
    assert reading.reports["R"].method == "fixed" and "fewer than 100" in reading.reports["R"].rule
    frame = reading.frame
    # R: <=30 -> 5, <=60 -> 4, <=90 -> 3, <=180 -> 2, else 1
    assert [row(frame, cid)["r_score"] for cid in range(1, 7)] == [5, 5, 4, 3, 2, 1]
    # M: multiples 1, 2, 3, 5 of the median order (median of 10,20,30,50,100,400 = 40)
    assert reading.median_order == 4000
    assert [row(frame, cid)["m_score"] for cid in range(1, 7)] == [1, 1, 1, 2, 3, 5]


def test_lost_and_prospect_sit_outside_the_grid():
    shop = Frames()
    shop.order(1, ago(400), 90)
    shop.customer(2)
    frame = shop.compute()
    assert row(frame, 1)["segment"] == "Lost" and row(frame, 1)["f_score"] is None
    assert row(frame, 2)["segment"] == "Prospect"


def test_refunds_restated_change_scores():
    base = Frames()
    restated = Frames()
    for cid in range(1, 101):
        for shop in (base, restated):
            shop.order(cid, ago(cid), cid)
    restated.orders[-1]["refunded_cents"] = 9950  # customer 100 refunds most of it: 0.50 left
    assert row(base.compute(), 100)["m_score"] == 5
    assert row(restated.compute(), 100)["m_score"] == 1


def test_reading_is_sorted_and_deterministic():
    shop = Frames()
    for cid in (5, 3, 9, 1):
        shop.order(cid, ago(cid), 10 * cid)
    first = shop.compute()
    assert first["customer"].to_list() == [1, 3, 5, 9]
    shop.orders.reverse()
    assert shop.compute().equals(first)


@pytest.mark.parametrize("lookback", [30, 365])
def test_lookback_is_configurable(lookback):
    config = Config(rfm=RfmConfig(lookback_days=lookback))
    shop = Frames()
    shop.order(1, ago(100), 10)
    frame = shop.compute(config)
    assert (row(frame, 1)["frequency"] == 1) == (lookback == 365)


def test_day_number_is_days_since_epoch():
    assert reading_mod.day_number(date(1970, 1, 2)) == 1
