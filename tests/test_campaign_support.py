"""Shared builders for the campaign tests (imported by test_campaign*, test_send*, test_budget*, ...).

A campaign shop: customers with orders (so they are in the reading), consent
and addresses, a refresh at AS_OF, and a cast of users: ``owner`` (the
store's creator), operators ``olga`` and ``ava``, support ``sam``, viewer
``vic``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core import campaigns
from core.refresh import refresh
from core.store import Store
from core.users import User, add_user, current_user
from tests.conftest import AS_OF, NOW
from tests.factories import Shop, days_before

UTC = ZoneInfo("UTC")


def user(store: Store, login: str) -> User:
    return current_user(store, login)


def add_cast(store: Store) -> None:
    owner = user(store, "owner")
    for login, role in (("olga", "operator"), ("ava", "operator"), ("sam", "support"), ("vic", "viewer")):
        add_user(store, owner, login, role, NOW)


def build_shop(store: Store, count: int = 20, *, consent: dict[str, int] | None = None, zone: ZoneInfo = UTC,
               timezone: str | None = None, prefix: str = "C", discounted: bool = False) -> list[int]:
    """``count`` customers who all bought recently (same segment), opted in to every channel."""
    shop = Shop(store, zone)
    ids = []
    for index in range(count):
        customer = shop.customer(
            f"{prefix}{index:03d}", email=f"{prefix.lower()}{index}@example.com", phone=f"+86 138 0000 {index:04d}",
            timezone=timezone, consent=consent or {"email": 1, "sms": 1, "push": 1, "wecom": 1},
        )
        shop.orders(customer, days_before(AS_OF, 3, 20), total=40, discount=5 if discounted else 0)
        ids.append(customer)
    return ids


def read(store: Store) -> None:
    refresh(store, as_of=AS_OF, actor=user(store, "owner"), now=NOW)


def campaign_store(store: Store, count: int = 20, **kwargs) -> list[int]:
    add_cast(store)
    ids = build_shop(store, count, **kwargs)
    read(store)
    return ids


def new(store: Store, *, by: str = "olga", audience: str = "frequency >= 1", channel: str = "email",
        **kwargs) -> campaigns.Campaign:
    return campaigns.create(store, user(store, by), name=kwargs.pop("name", "test campaign"), audience=audience,
                            channel=channel, now=kwargs.pop("now", NOW), **kwargs)


def approved(store: Store, *, submitter: str = "olga", approver: str = "ava", now: int = NOW,
             **kwargs) -> campaigns.Campaign:
    """A new campaign, submitted by one operator and approved by another."""
    campaign = new(store, by=submitter, now=now, **kwargs)
    campaigns.submit(store, user(store, submitter), campaign.id, now)
    return campaigns.approve(store, user(store, approver), campaign.id, now)


def past_touch(store: Store, customer: int, at: int, channel: str = "email", counts: int = 1) -> None:
    """A touch in the ledger from an earlier (already sent) campaign."""
    with store.transaction() as conn:
        # One past campaign per touch: the ledger allows one touch per (campaign, customer, channel).
        campaign_id = conn.execute(
            "INSERT INTO campaigns (name, audience, channel, state, created_by, created_at, updated_at, obeys_caps, "
            "counts_toward_caps) VALUES ('(history)', 'TRUE', ?, 'sent', 'owner', ?, ?, ?, ?)",
            (channel, at, at, counts, counts),
        ).lastrowid
        conn.execute(
            "INSERT INTO touches (campaign, customer, channel, at, counts, arm, reserved_at) "
            "VALUES (?, ?, ?, ?, ?, 'treatment', ?)",
            (campaign_id, customer, channel, at, counts, at),
        )


def noon(day: date, zone: ZoneInfo = UTC, hour: int = 12, minute: int = 0) -> int:
    return int(datetime.combine(day, time(hour, minute), tzinfo=zone).timestamp())


TODAY = AS_OF + timedelta(days=1)  # the shop day of NOW


def lines(path) -> list[str]:
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()
