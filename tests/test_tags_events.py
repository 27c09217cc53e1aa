"""Tag rules that read behaviour events."""

from datetime import timedelta

import polars as pl

from core.config import Config
from core.reading import compute, day_number
from tests.test_rfm import AS_OF, Frames, ago


def event_reading() -> pl.DataFrame:
    shop = Frames()
    events = []

    def event(cid, kind, days_ago, hour=12):
        day = day_number(AS_OF - timedelta(days=days_ago))
        events.append({"id": len(events) + 1, "customer": cid, "kind": kind, "at": day * 86400 + hour * 3600,
                       "day": day, "category": ""})

    shop.order(1, ago(200), 10)
    event(1, "share", 10)
    event(1, "review", 80)
    shop.order(2, ago(200), 10)
    event(2, "share", 10)
    event(2, "review", 95)  # outside the 90 days
    shop.order(3, ago(20), 10)
    event(3, "cart", 5)  # no order since
    shop.order(4, ago(2), 10)
    event(4, "cart", 5)  # ordered after the cart
    shop.order(5, ago(40), 10)
    event(5, "cart", 20)  # older than 14 days
    for k in range(3):
        shop.order(6, ago(k + 1), 10)
    for kind, days in (("live", 3), ("community", 4), ("share", 5)):
        event(6, kind, days)
    orders = pl.DataFrame(shop.orders).with_columns(
        pl.col("customer").cast(pl.Int32), pl.col("day").cast(pl.Int32))
    frame = pl.DataFrame(events).with_columns(pl.col("customer").cast(pl.Int32), pl.col("day").cast(pl.Int32))
    customers = pl.DataFrame({"id": list(shop.customers), "signup_day": list(shop.customers.values())},
                             schema={"id": pl.Int64, "signup_day": pl.Int32})
    return compute(orders, frame, customers, AS_OF, Config()).frame
