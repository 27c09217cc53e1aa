"""A small seeded shop for the console's Pilot and snapshot tests (no tests here).

Under 100 scored customers R and M use the fixed cut-offs (R: 30/60/90/180
days; F: 1, 2, 3, 4-5, 6+ orders), so each customer below lands in a known
cell of the rf11 map. Two refreshes (a week apart) make some of them move.
The store is built once per session and copied for every test.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from core.refresh import refresh
from core.users import add_user, current_user
from tests.conftest import AS_OF, NOW, make_store
from tests.factories import Shop

PREVIOUS = AS_OF - timedelta(days=7)

# (customer_id, name, email, phone, region, days ago of each order, amount)
PEOPLE = (
    ("C001", "Ann Lee", "ann@example.com", "+86 138 0013 8000", "Shanghai", (2, 9, 16, 23, 30, 40), 120.0),
    ("C002", "Annabel Wu", "annabel@example.com", "+86 139 0000 0002", "Beijing", (5, 12, 20, 26), 80.0),
    ("C003", "Bo Chen", "bo@example.com", "+86 139 0000 0003", "Shanghai", (3,), 60.0),
    ("C004", "Cai Li", "cai@example.com", "+86 139 0000 0004", "Hangzhou", (1, 3), 45.0),
    ("C005", "Dan Zhou", "dan@example.com", "+86 139 0000 0005", "Beijing", (45, 50, 55), 70.0),
    ("C006", "Eve Sun", "eve@example.com", None, "Shenzhen", (50,), 30.0),
    ("C007", "Fang Ma", "fang@example.com", "+86 139 0000 0007", "Shanghai", (70, 75, 80), 90.0),
    ("C008", "Gao Yi", None, "+86 139 0000 0008", "Chengdu", (65, 85), 35.0),
    ("C009", "Hui Xu", "hui@example.com", "+86 139 0000 0009", "Beijing", (120, 130, 140, 150), 110.0),
    ("C010", "Ivy Tang", "ivy@example.com", "+86 139 0000 0010", "Wuhan", (100, 110, 120, 130, 140, 150, 160),
     200.0),
    ("C011", "Jun He", "jun@example.com", "+86 139 0000 0011", "Xi'an", (200, 210), 40.0),
    ("C012", "Kai Luo", "kai@example.com", "+86 139 0000 0012", "Shanghai", (300,), 25.0),
    ("C013", "Lan Qi", "lan@example.com", "+86 139 0000 0013", "Nanjing", (400,), 55.0),
    ("C014", "Mei Lin", "mei@example.com", "+86 139 0000 0014", "Shanghai", (), 0.0),
    ("C015", "Ning Bai", "ning@example.com", "+86 139 0000 0015", "Suzhou", (4, 6, 8), 65.0),
    ("C016", "Ou Yang", "ou@example.com", "+86 139 0000 0016", "Beijing", (35, 38, 42, 47), 95.0),
)


def build_shop(path: Path) -> None:
    """Create the seeded store at ``path`` with two refreshes and three users."""
    store = make_store(path)
    try:
        shop = Shop(store)
        for customer_id, name, email, phone, region, days, amount in PEOPLE:
            cid = shop.customer(customer_id, name=name, email=email, phone=phone, region=region,
                                consent={"email": 1, "sms": 1 if phone else 0})
            for offset in days:
                shop.order(cid, AS_OF - timedelta(days=offset), amount, category="shoes" if offset % 2 else "bags")
        owner = current_user(store, "owner")
        add_user(store, owner, "sam", "support", NOW)
        add_user(store, owner, "vic", "viewer", NOW)
        refresh(store, as_of=PREVIOUS, actor=owner, now=NOW - 7 * 86400)
        refresh(store, as_of=AS_OF, actor=owner, now=NOW)
    finally:
        store.close()


def copy_store(template: Path, target: Path) -> Path:
    """Copy a store with its config and cache (the cache belongs to the same store id)."""
    shutil.copy(template, target)
    shutil.copy(template.with_suffix(".toml"), target.with_suffix(".toml"))
    cache = template.with_suffix(".cache")
    if cache.exists():
        shutil.copytree(cache, target.with_suffix(".cache"))
    return target


@pytest.fixture(scope="session")
def console_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("console-template") / "shop.db"
    build_shop(path)
    return path


@pytest.fixture
def shop_path(console_template, tmp_path, monkeypatch) -> Path:
    """A fresh copy of the seeded shop; the person at the keyboard is its owner."""
    monkeypatch.setenv("TIERDESK_USER", "owner")
    return copy_store(console_template, tmp_path / "shop.db")


async def settle(pilot, rounds: int = 6) -> None:
    """Wait until no worker runs (failed ones included) and the screen has caught up."""
    app = pilot.app
    for _ in range(rounds):
        running = [worker for worker in app.workers if not worker.is_finished]
        if running:
            await asyncio.gather(*(worker.wait() for worker in running), return_exceptions=True)
        await pilot.pause()
        if not any(not worker.is_finished for worker in app.workers):
            await pilot.pause()
            if not any(not worker.is_finished for worker in app.workers):
                return


def pilot_test(test):
    """Run an ``async def`` test with ``asyncio.run`` (no async plugin is installed)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        return asyncio.run(test(*args, **kwargs))

    return run


def fixed_clock() -> float:
    return float(NOW)


def make_app(path: Path, **options):
    """The console over ``path`` with a fixed clock and no cursor blink."""
    from console.app import TierdeskApp

    return TierdeskApp(path, clock=fixed_clock, cursor_blink=False, **options)


__all__ = ["AS_OF", "NOW", "PREVIOUS", "build_shop", "console_template", "copy_store", "fixed_clock", "make_app",
           "pilot_test", "settle", "shop_path", "date"]
