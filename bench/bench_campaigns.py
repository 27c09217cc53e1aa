"""Campaign benchmarks: preview at scale and a durable send through the file adapter.

    python bench/bench_campaigns.py                      # 1M customers, 5M touches, 100k send
    python bench/bench_campaigns.py --customers 100000 --touches 500000 --send 20000
    python bench/bench_campaigns.py --store /tmp/bench.db   # reuse a store built before

Builds a store with bulk inserts (sqlite3 executemany in one transaction)
unless ``--store`` names one that exists, runs a real refresh for the
reading, and prints a table. Targets (issue 4): preview <= 300 ms
in-process at 1M customers with 5M touches in the ledger; a 100k-member
send through the file adapter <= 10 s, durable (fsync per batch, touches
committed with synchronous = FULL).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core import campaigns, fastread, plan, send  # noqa: E402
from core.clock import day_start  # noqa: E402
from core.refresh import refresh  # noqa: E402
from core.store import Store  # noqa: E402
from core.users import current_user  # noqa: E402

ZONE = "Asia/Shanghai"
TIMEZONES = [None, "Asia/Shanghai", "Asia/Tokyo", "Europe/Berlin", "America/New_York"]
REGIONS = ["north", "south", "east", "west", "central"]
AS_OF = date(2025, 6, 29)
NOW = int(datetime(2025, 6, 30, 4, 0, tzinfo=timezone.utc).timestamp())  # 12:00 in Shanghai
CONFIG = f"""timezone = "{ZONE}"
allow_self_approval = true

[[caps]]
channel = "any"
segment = "any"
max = 3
per = "week"

[[caps]]
channel = "sms"
segment = "any"
max = 1
per = "day"

[[caps]]
channel = "any"
segment = "Hibernating"
max = 4
per = "month"
"""


def build(path: Path, customers: int, touches: int, seed: int = 7) -> None:
    """A benchmark store: customers, orders, a real refresh, then a ledger of past touches.

    The store is closed and reopened between the bulk steps: a single
    connection that has just written hundreds of MB of WAL and then lets
    the fast read path (ADBC) read the same file crashed with SIGBUS here
    (see the note in the report); fresh connections do not.
    """
    from core.users import os_login

    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    store = Store.create(path, owner=os_login(), now=NOW, timezone=ZONE)
    store.config_path.write_text(CONFIG)
    store.reload_config()
    _customers_and_orders(store, customers, rng)
    store.close()
    store = Store.open(path)
    tick = time.perf_counter()
    refresh(store, as_of=AS_OF, actor=current_user(store), now=NOW)
    print(f"  refresh: {time.perf_counter() - tick:.1f} s", flush=True)
    store.close()
    store = Store.open(path)
    _ledger(store, customers, touches, rng)
    store.close()
    store = Store.open(path)
    tick = time.perf_counter()
    for table in ("customers", "orders", "touches"):
        fastread.load(store, table)
    print(f"  columnar copies: {time.perf_counter() - tick:.1f} s", flush=True)
    store.close()
    print(f"built {path} in {time.perf_counter() - started:.1f} s", flush=True)


def _customers_and_orders(store: Store, customers: int, rng: np.random.Generator) -> None:
    tick = time.perf_counter()
    conn = store.conn
    ids = np.arange(1, customers + 1)
    consent = rng.choice([1, 1, 1, 0, -1], size=(customers, 4))
    zones = rng.integers(0, len(TIMEZONES), customers)
    regions = rng.integers(0, len(REGIONS), customers)
    signup = NOW - rng.integers(30, 900, customers) * 86400
    with store.transaction():
        conn.executemany(
            "INSERT INTO customers (id, customer_id, name, email, phone, region, timezone, signed_up_at, "
            "accepts_email, accepts_sms, accepts_push, accepts_wecom, created_at, source) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'bench')",
            (
                (int(i), f"C{i - 1:07d}", f"Customer {i}", f"c{i}@example.com", f"+8613{i:09d}",
                 REGIONS[regions[i - 1]], TIMEZONES[zones[i - 1]], int(signup[i - 1]),
                 *map(int, consent[i - 1]), NOW)
                for i in ids.tolist()
            ),
        )
    print(f"  customers: {customers:,} in {time.perf_counter() - tick:.1f} s", flush=True)
    tick = time.perf_counter()
    order_count = customers * 2
    buyers = rng.integers(1, customers + 1, order_count)
    placed = NOW - rng.integers(2, 420, order_count) * 86400 - rng.integers(0, 86400, order_count)
    totals = rng.integers(500, 40000, order_count)
    discounts = np.where(rng.random(order_count) < 0.3, totals // 10, 0)
    with store.transaction():
        conn.executemany(
            "INSERT INTO orders (id, order_id, customer, placed_at, total_cents, discount_cents, refunded_cents, "
            "status, category) VALUES (?, ?, ?, ?, ?, ?, 0, 'paid', 'shoes')",
            ((i + 1, f"O{i:08d}", int(buyers[i]), int(placed[i]), int(totals[i]), int(discounts[i]))
             for i in range(order_count)),
        )
    print(f"  orders: {order_count:,} in {time.perf_counter() - tick:.1f} s", flush=True)


def _ledger(store: Store, customers: int, touches: int, rng: np.random.Generator) -> None:
    """Past campaigns of up to 100k distinct customers each, sent on days in the last five weeks."""
    tick = time.perf_counter()
    conn = store.conn
    per_campaign = min(100_000, customers)
    campaign_count = max(1, touches // per_campaign)
    today = (datetime.fromtimestamp(NOW, tz=timezone.utc).date() - date(1970, 1, 1)).days
    channels = ["email", "sms", "push", "wecom"]
    with store.transaction():
        for number in range(1, campaign_count + 1):
            days_ago = int(rng.integers(1, 36))
            channel = channels[number % 4]
            at = day_start(date(1970, 1, 1) + timedelta(days=today - days_ago), store.config.zone) + 11 * 3600
            conn.execute(
                "INSERT INTO campaigns (name, audience, channel, state, created_by, created_at, updated_at, "
                "send_time, sent_at) VALUES (?, 'TRUE', ?, 'sent', 'bench', ?, ?, ?, ?)",
                (f"past {number}", channel, at, at, at, at),
            )
            campaign_id = conn.execute("SELECT max(id) FROM campaigns").fetchone()[0]
            chosen = rng.choice(customers, size=per_campaign, replace=False) + 1
            conn.executemany(
                "INSERT INTO touches (campaign, customer, channel, at, counts, arm, reserved_at) "
                "VALUES (?, ?, ?, ?, 1, 'treatment', ?)",
                ((campaign_id, int(customer), channel, at, at) for customer in chosen.tolist()),
            )
    print(f"  touches: {campaign_count * per_campaign:,} in {time.perf_counter() - tick:.1f} s", flush=True)


def _first_reachable(store: Store, count: int) -> str:
    """An audience of the first ``count`` customers (by id) who can get an email."""
    cutoff = store.scalar(
        "SELECT customer_id FROM customers WHERE accepts_email = 1 AND coalesce(email, '') != '' "
        "ORDER BY id LIMIT 1 OFFSET ?", (count - 1,))
    return f"accepts_email = 1 AND has_email AND customer_id <= '{cutoff}'"


def _cli_preview(path: Path, campaign_id: int) -> float:
    import subprocess

    command = [sys.executable, "-m", "console", "campaign", "preview", str(campaign_id), "--json", "--db", str(path)]
    times = []
    for _ in range(3):
        tick = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - tick)
    return statistics.median(times)


def timed(function, repeat: int = 1) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        tick = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - tick)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--touches", type=int, default=5_000_000)
    parser.add_argument("--send", type=int, default=100_000, help="members of the campaign that is sent")
    parser.add_argument("--store", type=Path, help="reuse (or build here) a benchmark store")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ["TIERDESK_NO_PROGRESS"] = "1"
    path = args.store or Path(tempfile.mkdtemp(prefix="tierdesk-bench-")) / "bench.db"
    if not path.exists():
        print(f"building {path} ...", flush=True)
        build(path, args.customers, args.touches)
    store = Store.open(path)
    user = current_user(store)
    customers = store.scalar("SELECT count(*) FROM customers")
    touches = store.scalar("SELECT count(*) FROM touches")
    rows: list[tuple[str, str, str]] = []

    audiences = {
        "win-back (DESIGN example)": "segment IN ('At risk', 'Can''t lose') AND array_contains(tags, 'price-sensitive')",
        "everyone (worst case)": "TRUE",
    }
    for label, expression in audiences.items():
        campaign = campaigns.create(store, user, name=f"bench {label}", audience=expression, channel="sms",
                                    holdout=10, now=NOW)
        cold, _ = timed(lambda: plan.compute(store, campaign, NOW).summary())
        warm, summary = timed(lambda: plan.compute(store, campaign, NOW).summary(), args.repeat)
        rows.append((f"preview: {label}", f"{statistics.median(warm) * 1000:,.0f} ms",
                     f"first in the process {cold[0] * 1000:,.0f} ms; {summary['matched']:,} matched, "
                     f"{summary['sendable']:,} sendable, {summary['excluded']['over_budget']:,} over budget"))
        if label.startswith("win-back"):
            cli = _cli_preview(path, campaign.id)
            rows.append(("  the same as `tierdesk campaign preview --json`", f"{cli:,.2f} s",
                         "a new process: start-up, imports, cached audience base"))
        campaigns.cancel(store, user, campaign.id, NOW)

    size = min(args.send, customers)
    campaign = campaigns.create(store, user, name="bench send", audience=_first_reachable(store, size),
                                channel="email", now=NOW)
    # Some of those are over budget: widen the slice so that about `size` are sendable.
    share = plan.compute(store, campaign, NOW).summary(0)["sendable"] / size
    campaigns.edit(store, user, campaign.id, NOW, audience=_first_reachable(store, int(size / max(share, 0.01))))
    (submit_time,), (submitted, summary) = timed(lambda: campaigns.submit(store, user, campaign.id, NOW))
    rows.append(("submit (freeze + hash plan)", f"{submit_time:,.2f} s",
                 f"{summary['matched']:,} members, {summary['sendable']:,} sendable"))
    (approve_time,), _ = timed(lambda: campaigns.approve(store, user, campaign.id, NOW))
    rows.append(("approve (re-hash plan)", f"{approve_time:,.2f} s", ""))
    (send_time,), report = timed(lambda: send.send(store, user, campaign.id, NOW + 60))
    lines = sum(1 for _ in open(report.file, "rb"))
    rows.append(("send through the file adapter", f"{send_time:,.2f} s",
                 f"{report.touched:,} touches, {lines:,} lines, {report.delivered:,} delivered; "
                 f"commit + fsync per {send.BATCH:,}"))

    from core import budget

    today = datetime.fromtimestamp(NOW, tz=store.config.zone).date()
    overview_times, _ = timed(lambda: budget.overview(store, today), 3)
    rows.append(("budget overview (segment x channel)", f"{statistics.median(overview_times) * 1000:,.0f} ms", ""))
    store.close()

    load = os.getloadavg()[0]
    print(f"\n{customers:,} customers, {touches:,} touches in the ledger, {os.cpu_count()} cores, "
          f"load average {load:.1f} at the end\n")
    width = max(len(row[0]) for row in rows)
    print(f"{'step':<{width}}  {'time':>10}  notes")
    for step, value, notes in rows:
        print(f"{step:<{width}}  {value:>10}  {notes}")


if __name__ == "__main__":
    main()
