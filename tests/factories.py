"""Small hand-built shops: customers, orders and events written straight to a store."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.contacts import normalize_email, normalize_phone
from core.store import Store

UTC = ZoneInfo("UTC")


def at(day: date, hour: int = 12, zone: ZoneInfo = UTC) -> int:
    return int(datetime.combine(day, time(hour), tzinfo=zone).timestamp())


class Shop:
    """Builds customers and their orders with readable defaults."""

    def __init__(self, store: Store, zone: ZoneInfo = UTC) -> None:
        self.store = store
        self.zone = zone
        self._orders = store.scalar("SELECT coalesce(max(id), 0) FROM orders")

    def customer(self, customer_id: str, *, signed_up: date | None = date(2020, 1, 1), name: str | None = None,
                 email: str | None = None, phone: str | None = None, region: str | None = None,
                 timezone: str | None = None, consent: dict[str, int] | None = None) -> int:
        consent = consent or {}
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO customers (customer_id, name, email, phone, region, timezone, signed_up_at, "
                "accepts_email, accepts_sms, accepts_push, accepts_wecom, created_at, source) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 'test')",
                (customer_id, name or customer_id, normalize_email(email), normalize_phone(phone), region, timezone,
                 at(signed_up, 9, self.zone) if signed_up else None,
                 consent.get("email", 0), consent.get("sms", 0), consent.get("push", 0), consent.get("wecom", 0)),
            )
            return int(cursor.lastrowid)

    def order(self, customer: int, day: date, total: float, *, refunded: float = 0, discount: float = 0,
              status: str = "paid", category: str | None = "shoes", hour: int = 12, order_id: str | None = None) -> int:
        self._orders += 1
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO orders (order_id, customer, placed_at, total_cents, discount_cents, refunded_cents, "
                "status, category) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (order_id or f"O{self._orders:05d}-{customer}", customer, at(day, hour, self.zone),
                 round(total * 100), round(discount * 100), round(refunded * 100), status, category),
            )
            return int(cursor.lastrowid)

    def orders(self, customer: int, days: list[date], total: float = 50.0, **kwargs) -> None:
        for day in days:
            self.order(customer, day, total, **kwargs)

    def event(self, customer: int, kind: str, day: date, category: str = "", hour: int = 12) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO events (customer, kind, at, category) VALUES (?, ?, ?, ?)",
                (customer, kind, at(day, hour, self.zone), category),
            )


def days_before(as_of: date, *offsets: int) -> list[date]:
    return [as_of - timedelta(days=offset) for offset in offsets]
