"""The demo shop: a deterministic, realistic store generated from a seed.

``generate_demo`` builds a store for a fashion-and-lifestyle shop in
Shanghai: customers who signed up over the two years before the as-of,
their orders (most buy once, a heavy tail buys every week), behaviour
events, consent per channel with its history, and a few manual tags.

**Archetypes.** Every customer is drawn from one of the archetypes in
:data:`ARCHETYPES`, a share of the population each. They are chosen so that
every cell of both RFM models and every lifecycle stage is populated at
2,000 customers and up (``tests/test_demo.py`` checks it), not by luck of
the draw: e.g. *lapsed heavy* buyers ordered 10+ times and stopped 235+
days ago (Can't lose), *bursty* ones bought 3-4 times within a few weeks
long ago (At risk), *big-ticket* ones bought once for thousands (cn8's
"high M, low F").

**Determinism.** All randomness comes from numpy ``PCG64`` generators keyed
by ``(seed, stream, chunk)`` and chunks have a fixed size, so the same
(customers, seed, as-of) gives the same rows.

**Speed.** 1M customers means about 10M orders. Binding that many rows
through ``executemany`` costs ~2 s per million in Python alone, so each
chunk of rows travels as one blob of fixed-width digits that a single
``INSERT ... SELECT`` unpacks (``substr`` + ``CAST``), with the GIL released
while SQLite steps. Generating and writing run on three threads (see
"building" below); rows arrive in the key order of the indexes kept during
the load, so order ids are numbered customer by customer. The store is
built beside the target with the journal off (a failed build is deleted,
not rolled back) and renamed into place at the end, in WAL mode. All writes
go through ``sqlite3``.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Callable, Iterator
from zoneinfo import ZoneInfo

import numpy as np

from core.errors import InputError, StoreError

DEMO_TIMEZONE = "Asia/Shanghai"
DEMO_CURRENCY = "¥"
# Bump when the generator's output changes: an older demo store is then
# regenerated instead of reused.
GENERATOR_VERSION = 1
DEMO_USERS = (("lin", "operator"), ("sam", "support"), ("vic", "viewer"))
CONFIG_MARKER = "# tierdesk demo shop"

HISTORY_DAYS = 730  # signups and orders over the two years up to the as-of
CHUNK_CUSTOMERS = 20_000  # fixed: the random streams are keyed by chunk
DAY = 86_400

# Rows are unpacked in SQL, so text columns travel as codes. Codes of the
# events' kind and category follow the text's sort order, so sorting by code
# is sorting by the UNIQUE (customer, kind, at, category) index.
STATUSES = ("paid", "pending", "cancelled", "voided", "test", "staff")
PAID, PENDING, CANCELLED, VOIDED, TEST, STAFF = range(len(STATUSES))
CATEGORIES = (
    "apparel", "baby", "bags", "beauty", "books", "electronics",
    "food", "home", "kitchen", "shoes", "skincare", "sports",
)
# median basket per category, yuan
CATEGORY_PRICE = np.array([189, 139, 459, 159, 59, 899, 69, 129, 99, 329, 229, 219], dtype=np.float64)
CATEGORY_POPULARITY = np.array([16, 5, 6, 12, 3, 7, 8, 9, 6, 10, 11, 7], dtype=np.float64)
ELECTRONICS, BAGS = CATEGORIES.index("electronics"), CATEGORIES.index("bags")
KINDS = ("cart", "community", "favorite", "live", "review", "share", "view")
CART, COMMUNITY, FAVORITE, LIVE, REVIEW, SHARE, VIEW = range(len(KINDS))
EVENT_CATEGORIES = ("",) + CATEGORIES  # code 0: no category (live, community)
CHANNELS = ("email", "sms", "push", "wecom")

# (region, time zone, weight, group); group 0 mainland China, 1 overseas
REGIONS = (
    ("Guangdong", "Asia/Shanghai", 14, 0), ("Zhejiang", "Asia/Shanghai", 10, 0),
    ("Jiangsu", "Asia/Shanghai", 10, 0), ("Shanghai", "Asia/Shanghai", 9, 0),
    ("Beijing", "Asia/Shanghai", 7, 0), ("Shandong", "Asia/Shanghai", 6, 0),
    ("Fujian", "Asia/Shanghai", 5, 0), ("Sichuan", "Asia/Shanghai", 5, 0),
    ("Henan", "Asia/Shanghai", 4, 0), ("Hubei", "Asia/Shanghai", 4, 0),
    ("Hunan", "Asia/Shanghai", 3, 0), ("Anhui", "Asia/Shanghai", 3, 0),
    ("Hebei", "Asia/Shanghai", 3, 0), ("Chongqing", "Asia/Shanghai", 2, 0),
    ("Shaanxi", "Asia/Shanghai", 2, 0), ("Liaoning", "Asia/Shanghai", 2, 0),
    ("Tianjin", "Asia/Shanghai", 2, 0), ("Yunnan", "Asia/Shanghai", 1, 0),
    ("Xinjiang", "Asia/Urumqi", 0.5, 0),
    ("Hong Kong", "Asia/Hong_Kong", 2, 1), ("Singapore", "Asia/Singapore", 1, 1),
    ("Los Angeles", "America/Los_Angeles", 0.6, 1), ("London", "Europe/London", 0.4, 1),
)
# (country code, national number length, leading digits) per overseas region
OVERSEAS_PHONES = {
    "Hong Kong": (852, 8, ("5", "6", "9")), "Singapore": (65, 8, ("8", "9")),
    "Los Angeles": (1, 10, ("213", "310", "323", "424")), "London": (44, 10, ("7",)),
}
CN_DOMAINS = (("qq.com", 38), ("163.com", 22), ("126.com", 9), ("foxmail.com", 6), ("sina.com", 5),
              ("gmail.com", 7), ("outlook.com", 6), ("icloud.com", 7))
OVERSEAS_DOMAINS = (("gmail.com", 45), ("outlook.com", 20), ("icloud.com", 20), ("yahoo.com", 15))
DOMAINS = tuple(dict.fromkeys(name for name, _ in CN_DOMAINS + OVERSEAS_DOMAINS))

SURNAMES = (
    ("Wang", "王"), ("Li", "李"), ("Zhang", "张"), ("Liu", "刘"), ("Chen", "陈"), ("Yang", "杨"),
    ("Huang", "黄"), ("Zhao", "赵"), ("Wu", "吴"), ("Zhou", "周"), ("Xu", "徐"), ("Sun", "孙"),
    ("Ma", "马"), ("Zhu", "朱"), ("Hu", "胡"), ("Guo", "郭"), ("He", "何"), ("Gao", "高"),
    ("Lin", "林"), ("Luo", "罗"), ("Zheng", "郑"), ("Liang", "梁"), ("Xie", "谢"), ("Song", "宋"),
    ("Tang", "唐"), ("Han", "韩"), ("Feng", "冯"), ("Deng", "邓"), ("Cao", "曹"), ("Peng", "彭"),
)
GIVEN_NAMES = (
    ("Wei", "伟"), ("Fang", "芳"), ("Na", "娜"), ("Min", "敏"), ("Jing", "静"), ("Li", "丽"),
    ("Qiang", "强"), ("Lei", "磊"), ("Jun", "军"), ("Yang", "洋"), ("Yong", "勇"), ("Yan", "艳"),
    ("Jie", "杰"), ("Juan", "娟"), ("Tao", "涛"), ("Ming", "明"), ("Chao", "超"), ("Xiulan", "秀兰"),
    ("Xia", "霞"), ("Ping", "平"), ("Gang", "刚"), ("Hui", "辉"), ("Ying", "英"), ("Hua", "华"),
    ("Yu", "宇"), ("Xin", "鑫"), ("Hao", "浩"), ("Yi", "怡"), ("Ting", "婷"), ("Xue", "雪"),
    ("Zihan", "子涵"), ("Yuxuan", "宇轩"), ("Haoran", "浩然"), ("Yutong", "雨桐"), ("Xinyi", "欣怡"),
    ("Zimo", "子墨"), ("Jiayi", "佳怡"), ("Mingyu", "明宇"), ("Shuang", "爽"), ("Kai", "凯"),
)
OVERSEAS_GIVEN = ("Emily", "Jason", "Olivia", "Daniel", "Chloe", "Ryan", "Grace", "Kevin",
                  "Sophie", "Ethan", "Hannah", "Marcus", "Vivian", "Alan", "Karen", "Leo")
OVERSEAS_SURNAMES = ("Chan", "Wong", "Lee", "Tan", "Lim", "Ng", "Cheung", "Lau",
                     "Smith", "Brown", "Taylor", "Nguyen", "Garcia", "Kim", "Ho", "Teo")

CONSENT_SOURCES = ("signup", "checkout", "unsubscribe-link", "sms-reply", "app-settings", "wecom", "sam")
CONSENT_NOTES = (None, "replied TD to a promotion", "asked on the phone to stop messages")

MANUAL_TAGS = (
    # (tag, who adds it, note, share of them removed again)
    ("vip", "lin", "Top spender; invite to the autumn preview", 0.0),
    ("influencer", "lin", "Xiaohongshu creator with a large following; send samples", 0.0),
    ("wholesale", "lin", "Buys for a small boutique; asked about bulk pricing", 0.1),
    ("complaint", "sam", "Parcel arrived damaged; refunded and apologised", 0.5),
    ("do-not-call", "sam", "Asked not to be phoned; email only", 0.0),
)

ProgressCallback = Callable[[str, int, int], None]


# --- the result -----------------------------------------------------------


DEFAULT_CUSTOMERS = 20_000
DEFAULT_SEED = 7
EARLIEST_AS_OF = date(2000, 1, 1)


@dataclass(frozen=True)
class DemoParams:
    """What a demo store is generated from; equal params give an equal store."""

    customers: int
    seed: int
    as_of: date

    def meta(self) -> dict[str, str]:
        return {
            "demo": "1",
            "demo_customers": str(self.customers),
            "demo_seed": str(self.seed),
            "demo_as_of": self.as_of.isoformat(),
            "demo_generator": str(GENERATOR_VERSION),
        }


@dataclass(frozen=True)
class DemoSummary:
    """What ``generate_demo`` did: the counts, where, how long, and whether it reused a store."""

    path: Path
    params: DemoParams
    customers: int
    orders: int
    events: int
    consent_events: int
    manual_tags: int
    reused: bool
    seconds: float
    phases: dict[str, float] = field(default_factory=dict)


# --- the entry point ------------------------------------------------------


def generate_demo(
    path: Path | str,
    *,
    customers: int | None = None,
    seed: int | None = None,
    as_of: date | None = None,
    owner: str,
    now: int,
    fresh: bool = False,
    progress: ProgressCallback | None = None,
) -> DemoSummary:
    """Create the demo store at ``path`` (and its config beside it).

    A demo store already at ``path`` is reopened, whatever day it is: people
    tag, import and run campaigns in it, and none of that is thrown away
    unless ``fresh`` says so. Asking for other parameters than it was made
    with (those given, not None) is refused with :class:`InputError`
    naming ``--fresh``. Any other file at ``path`` is refused with
    :class:`StoreError`, so real data is never overwritten. The store is
    built in a temporary file beside the target and renamed into place only
    when complete. Unset parameters default to 20,000 customers, seed 7
    and yesterday.
    """
    started = time.perf_counter()
    path = Path(path).expanduser()
    if customers is not None and (isinstance(customers, bool) or not isinstance(customers, int) or customers < 1):
        raise InputError(f"--customers: expected a whole number of at least 1, got {customers!r}")
    as_of_limit = default_demo_as_of(now)
    if as_of is not None and as_of > as_of_limit:
        raise InputError(
            f"--as-of: {as_of.isoformat()} is not a whole past day yet; the latest is {as_of_limit.isoformat()}"
        )
    if as_of is not None and as_of < EARLIEST_AS_OF:
        raise InputError(f"--as-of: the demo shop's two years of history need a day from "
                         f"{EARLIEST_AS_OF.isoformat()} on, got {as_of.isoformat()}")
    asked = {"demo_customers": customers, "demo_seed": seed, "demo_as_of": as_of}
    params = DemoParams(customers=DEFAULT_CUSTOMERS if customers is None else customers,
                        seed=DEFAULT_SEED if seed is None else int(seed), as_of=as_of or as_of_limit)
    building = _building_path(path)
    with _build_lock(path):
        existing = existing_demo_params(path)
        if existing is not None and not fresh and "demo_counts" in existing:
            made = DemoParams(customers=int(existing["demo_customers"]), seed=int(existing["demo_seed"]),
                              as_of=date.fromisoformat(existing["demo_as_of"]))
            differs = [key for key, value in asked.items()
                       if value is not None and str(value if key != "demo_as_of" else value.isoformat())
                       != existing.get(key)]
            if differs:
                raise InputError(
                    f"{path} already holds a demo shop of {made.customers:,} customers (seed {made.seed}, "
                    f"as of {made.as_of.isoformat()}); add --fresh to replace it, and everything done in it "
                    "since, or --db to put this one elsewhere"
                )
            counts = json.loads(existing["demo_counts"])
            return DemoSummary(path=path, params=made, reused=True,
                               seconds=time.perf_counter() - started, **counts)
        _remove_store_files(building)
        try:
            counts, phases, (t0, order_columns) = _build(building, params, owner=owner, now=now, target=path,
                                                         progress=progress)
            existing_demo_params(path)  # still nothing real there (`init` takes no lock)
            _remove_store_files(path, main=False, config=False)
            os.replace(_config_path(building), _config_path(path))
            os.replace(building, path)
        except BaseException:
            _remove_store_files(building)
            raise
        shutil.rmtree(path.with_suffix(".cache"), ignore_errors=True)  # a replaced demo's copies
        mark = time.perf_counter()
        # The first refresh needs columnar copies of all three tables: orders
        # come from what was generated, customers and events are read back by
        # child processes meanwhile, on the other core.
        failures: list[BaseException] = []
        warming = threading.Thread(target=_warm_copies, args=(path, failures), name="demo-warm")
        warming.start()
        try:
            _seed_orders_copy(path, t0, order_columns)
        finally:
            warming.join()
        if failures:
            raise failures[0]
        phases["columnar copies"] = round(time.perf_counter() - mark, 3)
    return DemoSummary(
        path=path, params=params, reused=False, seconds=time.perf_counter() - started,
        phases=phases, **counts,
    )


def existing_demo_params(path: Path) -> dict[str, str] | None:
    """The demo markers of the store at ``path``, or None if there is nothing there.

    Raises :class:`StoreError` if ``path`` (or the config beside it) holds
    anything that is not a demo store: that may be someone's real data.
    """
    elsewhere = "use --db to put the demo elsewhere"
    config = _config_path(path)
    if path.is_dir():
        raise StoreError(f"{path} is a directory; {elsewhere}")
    if not path.exists() or path.stat().st_size == 0:
        if config.exists() and not _is_demo_config(config):
            raise StoreError(f"{config} holds a config that is not the demo's; {elsewhere}")
        return None
    try:
        with open(path, "rb") as handle:
            header = handle.read(16)
        if header != b"SQLite format 3\x00":
            raise StoreError(f"{path} is not a tierdesk store; {elsewhere}")
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=10)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").fetchone() is None:
                raise StoreError(f"{path} is an SQLite database but not a tierdesk store; {elsewhere}")
            rows = conn.execute("SELECT key, value FROM meta WHERE key LIKE 'demo%'").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read {path} ({exc}); {elsewhere}") from None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc.strerror or exc}") from None
    markers = dict(rows)
    if markers.get("demo") != "1":
        raise StoreError(f"{path} holds a real store; {elsewhere}",
                         hint="tierdesk demo only ever replaces a store it generated itself.")
    return markers


# --- files ----------------------------------------------------------------


def _config_path(db_path: Path) -> Path:
    from core.config import config_path_for

    return config_path_for(db_path)


def _building_path(path: Path) -> Path:
    """Where the store is built: hidden, beside the target, fixed (a stale one is replaced)."""
    return path.with_name(f".{path.name}.building")


def _is_demo_config(config: Path) -> bool:
    try:
        with open(config, encoding="utf-8") as handle:
            return handle.readline().startswith(CONFIG_MARKER)
    except (OSError, UnicodeDecodeError):
        return False


def _remove_store_files(path: Path, *, main: bool = True, config: bool = True) -> None:
    """Remove a store file's -wal, -shm and -journal, and unless told otherwise the file and its config."""
    names = [f"{path}-wal", f"{path}-shm", f"{path}-journal"]
    if main:
        names.append(str(path))
    if config:
        names.append(str(_config_path(path)))
    for name in names:
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


class _build_lock:
    """One demo build per directory at a time (two would share the temporary file)."""

    def __init__(self, path: Path) -> None:
        self.directory = path.parent
        self.fd: int | None = None

    def __enter__(self) -> "_build_lock":
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, the fixed temporary name still applies
            return self
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.fd = os.open(self.directory, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            self.fd = None
            raise StoreError(f"another `tierdesk demo` is building a store in {self.directory}; try again later")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the lock


def demo_config_text(params: DemoParams) -> str:
    """The default config for the shop's zone and currency, trusting TIERDESK_USER."""
    from core.config import default_config_text

    text = default_config_text(timezone=DEMO_TIMEZONE, currency=DEMO_CURRENCY)
    default_line = next(line for line in text.splitlines() if line.startswith("trust_env_user"))
    demo_line = "trust_env_user = true            # demo shop: try the roles, e.g. TIERDESK_USER=lin"
    header = (
        f"{CONFIG_MARKER}, generated by `tierdesk demo --customers {params.customers} "
        f"--seed {params.seed} --as-of {params.as_of.isoformat()}`.\n"
        "# Users: lin (operator), sam (support), vic (viewer) besides the owner.\n"
    )
    return header + text.replace(default_line, demo_line, 1)


# --- building -------------------------------------------------------------
#
# Three threads share the work. SQLite writes a file from one connection at
# a time, and stepping a statement releases the GIL, so:
#   main       writes the orders (two thirds of all rows) into the store;
#   aside      writes customers, events and consent history into a second
#              file beside it, then indexes them;
#   generator  computes each chunk of rows with numpy, for both writers.
# At the end the main thread copies the aside tables in with SQLite's transfer
# optimisation, which moves rows and index b-trees in key order without
# decoding or sorting anything (1M customers with their four indexes: 1.6 s,
# against ~10 s to insert and index them).

ASIDE_TABLES = ("customers", "events", "consent_events")
# Rows are written in the key order of every other index (order ids and
# event rowids run customer by customer), which keeps those indexes cheap to
# maintain during the load (~0.1 us a row with 16 KiB pages). These three get
# their keys in random order: building them after the load is cheaper.
DEFERRED_INDEXES = ("customers_email", "customers_name", "customers_phone")


class _PhaseClock:
    """Wall time per phase of a build, for the summary and the benchmark."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._mark = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.add(phase, now - self._mark)
        self._mark = now

    def add(self, phase: str, seconds: float) -> None:
        self.phases[phase] = self.phases.get(phase, 0.0) + seconds


def _build(
    building: Path, params: DemoParams, *, owner: str, now: int, target: Path,
    progress: ProgressCallback | None,
) -> tuple[dict[str, int], dict[str, float]]:
    from core.audit import record
    from core.store import Store
    from core.users import User, add_user

    clock = _PhaseClock()
    cpu = time.thread_time()
    order_columns: list[dict[str, np.ndarray]] = []
    store = Store.create(building, owner=owner, now=now, timezone=DEMO_TIMEZONE, currency=DEMO_CURRENCY,
                         audit_target=str(target))
    feed: _ChunkFeed | None = None
    aside: _Aside | None = None
    try:
        store.config_path.write_text(demo_config_text(params), encoding="utf-8")
        owner_user = User(login=owner, role="owner", known=True)
        for login, role in DEMO_USERS:
            if login != owner:
                add_user(store, owner_user, login, role, now)
        conn = store.conn
        _bulk_mode(conn, on=True)
        clock.lap("create")
        shop = _Shop(params)
        clock.lap("plan")

        feed = _ChunkFeed(shop, clock)
        aside = _Aside(_aside_path(building), conn, shop, feed)
        feed.start()
        aside.start()
        conn.execute("BEGIN")
        try:
            counts = _write_orders(conn, shop, feed, progress, order_columns)
        except _FeedStopped:
            aside.finish()  # raises whatever stopped the aside writer
            raise
        conn.execute("COMMIT")
        clock.lap("write orders")
        if progress:
            progress("finishing customers and events", 0, 0)
        counts.update(aside.finish())
        clock.lap("wait for the aside writer")
        if progress:
            progress("copying customers and events", 0, 0)
        _copy_in(conn, aside.path, ASIDE_TABLES)
        aside.abandon()
        clock.lap("copy customers and events")

        conn.execute("BEGIN")
        counts["manual_tags"] = _write_manual_tags(conn, shop)
        for key, value in params.meta().items():
            store.set_meta(key, value)
        store.set_meta("demo_counts", json.dumps(counts, sort_keys=True))
        conn.execute("COMMIT")
        _bulk_mode(conn, on=False)
        with store.transaction():
            record(store, actor=owner, action="demo.generate", target=str(target), now=now,
                   details={"customers": params.customers, "seed": params.seed,
                            "as_of": params.as_of.isoformat(), **counts})
        clock.lap("finish")
        clock.add("cpu: main thread", time.thread_time() - cpu)
        shop_t0 = shop.t0
    finally:
        if feed is not None:
            feed.close()
        if aside is not None:
            aside.abandon()
        store.close()
    return counts, clock.phases, (shop_t0, order_columns)


def _seed_orders_copy(path: Path, t0: int, parts: list[dict[str, np.ndarray]]) -> None:
    """Write the columnar copy of orders from the generated columns.

    Reading 10M orders back out of SQLite to build it would take longer than
    writing them; ``fastread.seed`` checks the count and the last id
    against the store before it trusts the copy.
    """
    import polars as pl

    from core import fastread
    from core.store import Store

    columns = {name: np.concatenate([part[name] for part in parts]) if parts else np.empty(0, np.int64)
               for name in ("id", "customer", "placed", "total", "discount", "refunded", "status", "category")}
    parts.clear()
    raw = pl.DataFrame({
        "id": columns["id"], "customer": columns["customer"], "placed_at": columns["placed"] + t0,
        "total_cents": columns["total"], "discount_cents": columns["discount"],
        "refunded_cents": columns["refunded"],
        "status": pl.Series(STATUSES).gather(columns["status"]),
        "category": pl.Series(CATEGORIES).gather(columns["category"]),
    })
    del columns
    with Store.open(path) as store:
        fastread.seed(store, "orders", raw)


def _warm_copies(path: Path, failures: list[BaseException]) -> None:
    """Build the customers and events copies; a failure is handed to the caller's thread."""
    from core import fastread
    from core.store import Store

    try:
        with Store.open(path, readonly=True) as store:
            for table in ("customers", "events"):
                fastread.load(store, table)
    except BaseException as exc:  # re-raised by generate_demo on its own thread
        failures.append(exc)


def _bulk_mode(conn: sqlite3.Connection, on: bool) -> None:
    """Journal off, no FK or CHECK evaluation while loading a file nobody else sees yet.

    A failed build is deleted, not rolled back, so the journal buys nothing;
    the generator writes valid rows by construction (the tests run
    ``integrity_check`` and ``foreign_key_check`` on demo stores).
    """
    if on:
        # a modest cache: the main writer only appends (the aside one sorts)
        pragmas = ("journal_mode = OFF", "synchronous = OFF", "foreign_keys = OFF",
                   "ignore_check_constraints = ON", "cache_size = -65536", "temp_store = MEMORY")
    else:
        pragmas = ("ignore_check_constraints = OFF", "foreign_keys = ON", "cache_size = -2000",
                   "temp_store = DEFAULT", "journal_mode = WAL", "synchronous = NORMAL")
    for pragma in pragmas:
        conn.execute(f"PRAGMA {pragma}")


def _set_aside(conn: sqlite3.Connection, kind: str, names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Drop these indexes or triggers, returning their DDL (as the schema wrote it) to recreate them."""
    marks = ",".join("?" for _ in names)
    rows = conn.execute(
        f"SELECT name, sql FROM sqlite_master WHERE type = ? AND name IN ({marks}) ORDER BY name",
        (kind, *names),
    ).fetchall()
    for name, _ in rows:
        conn.execute(f"DROP {kind.upper()} {name}")
    return rows


def _aside_path(building: Path) -> Path:
    return building.with_name(building.name + "-aside")


class _FeedStopped(Exception):
    """The chunk feed was stopped (by a failure elsewhere) before it finished."""


_DONE = object()


class _ChunkFeed:
    """Generates the chunks on a thread of its own and hands them, in order, to both writers.

    numpy releases the GIL in its long calls and SQLite while it steps, so
    generation overlaps the writing. The main writer's queue holds two
    chunks of orders (memory); the aside writer's is unbounded, so that it
    can write all customers first while its events and consent history
    (~100 MB for 1M customers) wait, without ever holding the orders back.
    """

    def __init__(self, shop: "_Shop", clock: _PhaseClock) -> None:
        self.shop = shop
        self.clock = clock
        self.stop = threading.Event()
        self._queues = {"main": queue.Queue(maxsize=2), "aside": queue.Queue()}
        self._thread = threading.Thread(target=self._produce, name="demo-generator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.stop.set()
        self._thread.join()

    def _offer(self, main: object, aside: object) -> bool:
        """Queue an item for each reader unless stopped; never block forever."""
        for waiting, item in ((self._queues["main"], main), (self._queues["aside"], aside)):
            while True:
                if self.stop.is_set():
                    return False
                try:
                    waiting.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
        return True

    def _produce(self) -> None:
        cpu = time.thread_time()
        try:
            order_base = 1
            for index in range(self.shop.chunks):
                chunk = _make_chunk(self.shop, index, order_base)
                self.clock.add("generate (other core)", chunk.seconds)
                order_base += chunk.orders.count
                # each writer holds only its own part, so each part is freed once written
                for_main = replace(chunk, events=None, consent=None)
                if not self._offer(for_main, replace(chunk, orders=None)):
                    return
            self._offer(_DONE, _DONE)
            self.clock.add("cpu: generator thread", time.thread_time() - cpu)
        except BaseException as exc:  # handed to the readers, which re-raise it
            self._offer(exc, exc)

    def chunks(self, reader: str) -> Iterator["_Chunk"]:
        """The chunks for ``reader`` ("main" or "aside"), in order."""
        waiting = self._queues[reader]
        while True:
            mark = time.perf_counter()
            try:
                item = waiting.get(timeout=0.1)
            except queue.Empty:
                if self.stop.is_set():
                    raise _FeedStopped() from None
                continue
            finally:
                self.clock.add(f"{reader}: waiting for the generator", time.perf_counter() - mark)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class _Aside:
    """Writes customers (then indexes them), events and consent history into a file of its own."""

    def __init__(self, path: Path, main: sqlite3.Connection, shop: "_Shop", feed: _ChunkFeed) -> None:
        self.path = path
        self.shop = shop
        self.feed = feed
        # Tables and indexes exactly as the schema wrote them: the transfer
        # needs identical definitions on both sides.
        marks = ",".join("?" for _ in ASIDE_TABLES)
        self.ddl = main.execute(
            f"SELECT name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) AND type IN ('table', 'index') "
            "AND sql IS NOT NULL ORDER BY type = 'index', name", ASIDE_TABLES,
        ).fetchall()
        self.counts = {"customers": 0, "events": 0, "consent_events": 0}
        self.error: BaseException | None = None
        self._conn: sqlite3.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="demo-aside", daemon=True)

    def start(self) -> None:
        _remove_store_files(self.path, config=False)
        self._thread.start()

    def _run(self) -> None:
        try:
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # private, like the store
            conn = self._conn = sqlite3.connect(self.path, isolation_level=None)
            cpu = time.thread_time()
            try:
                self._load(conn)
            finally:
                self._conn = None
                conn.close()
            self.feed.clock.add("cpu: aside thread", time.thread_time() - cpu)
        except BaseException as exc:  # handed to the main thread by finish()
            self.error = exc
            self.feed.stop.set()

    def _load(self, conn: sqlite3.Connection) -> None:
        from core.store import PAGE_SIZE

        for pragma in (f"page_size = {PAGE_SIZE}", "journal_mode = OFF", "synchronous = OFF",
                       "ignore_check_constraints = ON", "cache_size = -262144", "temp_store = MEMORY"):
            conn.execute(f"PRAGMA {pragma}")
        for name, sql in self.ddl:
            if name not in DEFERRED_INDEXES:
                conn.execute(sql)
        _create_vocabulary(conn)
        row_numbers = _RowNumbers(conn)
        # Customers first (they need no generator), indexed as soon as they
        # are in; then the events and consent history queued up meanwhile.
        conn.execute("BEGIN")
        for index in range(self.shop.chunks):
            if self.feed.stop.is_set():
                raise _FeedStopped()
            customers = _customer_rows(self.shop, index)
            row_numbers.ensure(customers.count)
            _insert_customers(conn, self.shop, customers)
            self.counts["customers"] += customers.count
        conn.execute("COMMIT")
        for name, sql in self.ddl:
            if name in DEFERRED_INDEXES:
                conn.execute(sql)
        conn.execute("BEGIN")
        for chunk in self.feed.chunks("aside"):
            row_numbers.ensure(max(chunk.events.count, chunk.consent.count))
            for insert, packed, table in ((_insert_events, chunk.events, "events"),
                                          (_insert_consent, chunk.consent, "consent_events")):
                if packed.count:
                    insert(conn, self.shop, packed)
                self.counts[table] += packed.count
        conn.execute("COMMIT")

    def finish(self) -> dict[str, int]:
        """Wait for the tables; re-raise whatever stopped them. Returns the row counts."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return dict(self.counts)

    def abandon(self) -> None:
        """Stop (if still running) and remove the file. Safe to call twice."""
        self.feed.stop.set()
        conn = self._conn
        if conn is not None:
            try:
                conn.interrupt()  # the one call sqlite3 allows from another thread
            except sqlite3.ProgrammingError:  # it closed meanwhile
                pass
        self._thread.join()
        _remove_store_files(self.path, config=False)


def _copy_in(conn: sqlite3.Connection, path: Path, tables: tuple[str, ...]) -> None:
    """Copy finished tables in from another file (outside a transaction: ATTACH needs that)."""
    marks = ",".join("?" for _ in tables)
    triggers = tuple(name for (name,) in conn.execute(
        f"SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks})", tables,
    ))
    conn.execute("ATTACH DATABASE ? AS demo_aside", (str(path),))
    try:
        # The transfer optimisation skips tables with triggers; these fire on
        # UPDATE and DELETE only, so setting them aside for an INSERT changes nothing.
        set_aside = _set_aside(conn, "trigger", triggers) if triggers else []
        for table in tables:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM demo_aside.{table}")
        for _, sql in set_aside:
            conn.execute(sql)
    finally:
        conn.execute("DETACH DATABASE demo_aside")


# --- the shop: who the customers are --------------------------------------


class _Draw:
    """Random draws in whole days before the as-of (the window is days 0-364)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def between(self, low, high, size: int) -> np.ndarray:
        return self.rng.integers(np.asarray(low), np.asarray(high) + 1, size)

    def chance(self, share: float, size: int) -> np.ndarray:
        return self.rng.random(size) < share

    def signup_by(self, first: np.ndarray) -> np.ndarray:
        """Signed up on the first order's day for half of them, some time before for the rest."""
        earlier = self.between(0, HISTORY_DAYS - 1 - first, len(first))
        return first + np.where(self.chance(0.5, len(first)), 0, earlier)


@dataclass(frozen=True)
class _Spans:
    """Per customer: signup day, number of orders, first and last order day (days before the as-of).

    Orders spread between the first and last day, which they fall on exactly.
    """

    signup: np.ndarray
    orders: np.ndarray
    first: np.ndarray
    last: np.ndarray


def _prospects(d: _Draw, k: int) -> _Spans:
    signup = d.between(8, HISTORY_DAYS - 1, k)
    day = np.maximum(signup - d.between(0, 5, k), 0)
    return _Spans(signup, d.chance(0.15, k).astype(np.int64), day, day)  # that order is cancelled


def _new_signups(d: _Draw, k: int) -> _Spans:
    signup = d.between(0, 6, k)
    day = d.between(0, signup, k)
    return _Spans(signup, d.chance(0.4, k).astype(np.int64), day, day)


def _lapsed_once(d: _Draw, k: int) -> _Spans:
    signup = d.between(372, HISTORY_DAYS - 1, k)
    day = np.maximum(signup - d.between(0, 14, k), 368)
    return _Spans(signup, np.ones(k, np.int64), day, day)


def _lapsed_few(d: _Draw, k: int) -> _Spans:
    signup = d.between(450, HISTORY_DAYS - 1, k)
    first = signup - d.between(0, 5, k)
    return _Spans(signup, d.between(2, 4, k), first, d.between(368, first - 30, k))


def _one_time(d: _Draw, k: int) -> _Spans:
    day = d.between(0, 362, k)
    return _Spans(d.signup_by(day), np.ones(k, np.int64), day, day)


def _casual(d: _Draw, k: int) -> _Spans:
    last = d.between(0, 330, k)
    first = d.between(last + 14, 362, k)
    return _Spans(d.signup_by(first), np.where(d.chance(0.55, k), 2, 3), first, last)


def _regular(d: _Draw, k: int) -> _Spans:
    last = d.between(0, 300, k)
    first = d.between(last + 40, 362, k)
    return _Spans(d.signup_by(first), d.between(4, 5, k), first, last)


def _loyal_heavy(d: _Draw, k: int) -> _Spans:
    signup = d.between(45, HISTORY_DAYS - 1, k)
    first = signup - d.between(0, 7, k)
    last = np.minimum(np.minimum(np.floor(d.rng.exponential(8.0, k)).astype(np.int64), 40), first)
    # Heavy-tailed: median ~50 orders, a few hundred at most (two a day at the very most)
    orders = 6 + np.round(np.exp(d.rng.normal(np.log(45), 0.9, k))).astype(np.int64)
    orders = np.minimum(orders, np.minimum(2 * (first - last + 1), 700))
    return _Spans(signup, orders, first, last)


def _lapsed_heavy(d: _Draw, k: int) -> _Spans:
    first = d.between(335, 362, k)
    return _Spans(d.signup_by(first), d.between(10, 40, k), first, d.between(235, 310, k))


def _bursty(d: _Draw, k: int) -> _Spans:
    last = d.between(235, 330, k)
    first = last + d.between(3, 25, k)
    return _Spans(d.signup_by(first), d.between(3, 4, k), first, last)


def _big_ticket(d: _Draw, k: int) -> _Spans:
    orders = np.where(d.chance(0.7, k), 1, 2)
    last = np.where(d.chance(0.5, k), d.between(0, 45, k), d.between(180, 330, k))
    first = last + np.where(orders == 2, d.between(10, 30, k), 0)
    return _Spans(d.signup_by(first), orders, first, last)


def _bargain(d: _Draw, k: int) -> _Spans:
    last = np.where(d.chance(0.6, k), d.between(0, 12, k), d.between(150, 240, k))
    first = d.between(330, 362, k)
    return _Spans(d.signup_by(first), d.between(18, 35, k), first, last)


@dataclass(frozen=True)
class Archetype:
    """A kind of customer: its share of the population, how its spans are drawn, what it is for."""

    name: str
    share: float
    draw: Callable[[_Draw, int], _Spans]
    guarantees: str


ARCHETYPES = (
    Archetype("prospect", 0.075, _prospects, "lifecycle prospect (a few have only a cancelled order)"),
    Archetype("new_signup", 0.012, _new_signups, "lifecycle new: signed up in the last 7 days, some ordered"),
    Archetype("lapsed_once", 0.20, _lapsed_once, "Lost with no order in the window: one order 368+ days ago"),
    Archetype("lapsed_few", 0.035, _lapsed_few, "Lost: 2-4 orders, all before the window"),
    Archetype("one_time", 0.235, _one_time, "F1 at every recency: New, Promising, About to sleep, Hibernating, Lost"),
    Archetype("casual", 0.14, _casual, "F2-3 at every recency: Potential loyalist, Need attention, Hibernating"),
    Archetype("regular", 0.085, _regular, "F4 at every recency: Champions, Loyal, At risk"),
    Archetype("loyal_heavy", 0.10, _loyal_heavy, "the heavy tail (~70 orders): Champions, Loyal, active, cn8 HHH"),
    Archetype("lapsed_heavy", 0.025, _lapsed_heavy, "10-40 orders, stopped 235-310 days ago: Can't lose, cn8 LHH"),
    Archetype("bursty", 0.023, _bursty, "3-4 orders within weeks, 235-330 days ago: At risk"),
    Archetype("big_ticket", 0.025, _big_ticket, "1-2 orders worth thousands: cn8 HLH (recent) and LLH (old)"),
    Archetype("bargain", 0.04, _bargain, "18-35 small discounted orders: cn8 HHL (recent) and LHL (lapsed)"),
)


def _split(total: int, shares: np.ndarray) -> np.ndarray:
    """Largest-remainder split of ``total`` by ``shares``: exact and deterministic."""
    raw = shares / shares.sum() * total
    counts = np.floor(raw).astype(np.int64)
    rest = total - counts.sum()
    order = np.lexsort((np.arange(len(shares)), -(raw - counts)))
    counts[order[:rest]] += 1
    return counts


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence((seed, *stream))))


class _Shop:
    """Everything decided per customer, as arrays indexed by customer (id - 1).

    Days are counted back from the as-of (0 = the as-of day); instants are
    seconds since ``self.t0``, the start of the first shop day of the history.
    """

    def __init__(self, params: DemoParams) -> None:
        from core.clock import day_end

        self.params = params
        zone = ZoneInfo(DEMO_TIMEZONE)
        self.end = day_end(params.as_of, zone)  # first instant after the as-of
        # Asia/Shanghai keeps no daylight saving: every shop day is 86,400 s.
        self.t0 = self.end - HISTORY_DAYS * DAY
        n = params.customers
        rng = _rng(params.seed, 0)
        counts = _split(n, np.array([a.share for a in ARCHETYPES]))
        kind = np.repeat(np.arange(len(ARCHETYPES), dtype=np.int8), counts)
        spans = _draw_spans(rng, kind)

        signup_at = self._instant(spans.signup, _time_of_day(rng, n))
        # ids in signup order, ties broken at random (one sort key: 3x faster than lexsort)
        order = np.argsort(signup_at * 2**20 + rng.integers(0, 2**20, n), kind="stable")
        self.archetype = kind[order]
        self.signup_at = signup_at[order]
        self.n_orders = spans.orders[order]
        self.first_ago = spans.first[order]
        self.last_ago = spans.last[order]
        self._draw_traits(rng)
        self.chunks = (n + CHUNK_CUSTOMERS - 1) // CHUNK_CUSTOMERS

    def _instant(self, days_ago: np.ndarray, second_of_day: np.ndarray) -> np.ndarray:
        """Seconds since t0 of a time of day on a day so many days before the as-of."""
        return (HISTORY_DAYS - 1 - days_ago.astype(np.int64)) * DAY + second_of_day

    def _draw_traits(self, rng: np.random.Generator) -> None:
        n = self.params.customers
        kind = self.archetype
        big, bargain = _kind("big_ticket"), _kind("bargain")
        self.basket = np.exp(rng.normal(0.0, 0.45, n))
        self.basket[kind == bargain] *= 0.3
        self.basket[kind == big] *= rng.uniform(15, 35, int((kind == big).sum()))
        popularity = CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum()
        self.favourite = rng.choice(len(CATEGORIES), n, p=popularity).astype(np.int64)
        self.second = rng.choice(len(CATEGORIES), n, p=popularity).astype(np.int64)
        is_big = kind == big
        self.favourite[is_big] = np.where(rng.random(int(is_big.sum())) < 0.7, ELECTRONICS, BAGS)
        self.discount_share = np.where(rng.random(n) < 0.25, 0.7, 0.2)
        self.discount_share[kind == bargain] = 0.85
        self.discount_share[is_big] = 0.1
        engaged = np.isin(kind, [_kind("loyal_heavy"), _kind("regular"), _kind("bargain")])
        self.social = rng.random(n) < np.where(engaged, 0.15, 0.04)
        # carts in the last two weeks with no order since: anyone not buying lately
        self.cart_abandoner = (rng.random(n) < 0.05) & ((self.n_orders == 0) | (self.last_ago > 14))
        self.cancelled_only = (kind == _kind("prospect")) & (self.n_orders > 0)

        weights = np.array([r[2] for r in REGIONS], dtype=np.float64)
        self.region = rng.choice(len(REGIONS), n, p=weights / weights.sum()).astype(np.int64)
        overseas = np.array([r[3] for r in REGIONS])[self.region] == 1
        self.overseas = overseas
        self.zone_unknown = rng.random(n) < 0.02
        self.name = _names(rng, overseas)
        self.domain = _domains(rng, overseas)
        self.domain[rng.random(n) < np.where(overseas, 0.01, 0.05)] = -1  # phone-only customers
        self.phone = _phones(rng, self.region)
        self.phone[rng.random(n) < np.where(overseas, 0.10, 0.02)] = 0
        self.consent = _consent(rng, overseas)


def _kind(name: str) -> int:
    return next(index for index, archetype in enumerate(ARCHETYPES) if archetype.name == name)


def _draw_spans(rng: np.random.Generator, kind: np.ndarray) -> _Spans:
    """Every customer's spans, drawn archetype by archetype."""
    draw = _Draw(rng)
    spans = _Spans(*(np.zeros(len(kind), np.int64) for _ in range(4)))
    for index, archetype in enumerate(ARCHETYPES):
        members = np.flatnonzero(kind == index)
        if len(members):
            drawn = archetype.draw(draw, len(members))
            for name in ("signup", "orders", "first", "last"):
                getattr(spans, name)[members] = getattr(drawn, name)
    return spans


# Orders and signups by hour of the shop's day: lunch and late evening peak.
HOUR_WEIGHTS = np.array([2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 5, 5, 6, 5, 4, 4, 4, 4, 5, 6, 8, 9, 8, 5])


def _time_of_day(rng: np.random.Generator, size: int) -> np.ndarray:
    hours = rng.choice(24, size, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return hours * 3600 + rng.integers(0, 3600, size)


# --- names, contacts, consent ---------------------------------------------


def _name_table() -> list[tuple[str, str]]:
    """(display name, email stem) for every name a customer can have.

    Index ranges: pinyin names, then the same names in Hanzi (same stem),
    then overseas names.
    """
    pinyin = [(f"{s} {g}", f"{s}{g}".lower()) for s, _ in SURNAMES for g, _ in GIVEN_NAMES]
    hanzi = [(f"{sh}{gh}", f"{s}{g}".lower()) for s, sh in SURNAMES for g, gh in GIVEN_NAMES]
    overseas = [(f"{g} {s}", f"{g}.{s}".lower()) for g in OVERSEAS_GIVEN for s in OVERSEAS_SURNAMES]
    return pinyin + hanzi + overseas


def _names(rng: np.random.Generator, overseas: np.ndarray) -> np.ndarray:
    n = len(overseas)
    chinese = len(SURNAMES) * len(GIVEN_NAMES)
    # common surnames are common: a Zipf-like weight by rank
    surname_p = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.8
    surname = rng.choice(len(SURNAMES), n, p=surname_p / surname_p.sum())
    given = rng.integers(0, len(GIVEN_NAMES), n)
    index = surname * len(GIVEN_NAMES) + given
    index = np.where(rng.random(n) < 0.3, index + chinese, index)  # written in Hanzi
    foreign = rng.integers(0, len(OVERSEAS_GIVEN) * len(OVERSEAS_SURNAMES), n) + 2 * chinese
    # Hong Kong and Singapore customers are about half Chinese-named
    foreign_named = overseas & (rng.random(n) < 0.6)
    return np.where(foreign_named, foreign, index)


def _domains(rng: np.random.Generator, overseas: np.ndarray) -> np.ndarray:
    def pick(table, size):
        names = [DOMAINS.index(name) for name, _ in table]
        weights = np.array([w for _, w in table], dtype=np.float64)
        return np.array(names)[rng.choice(len(table), size, p=weights / weights.sum())]

    n = len(overseas)
    return np.where(overseas, pick(OVERSEAS_DOMAINS, n), pick(CN_DOMAINS, n)).astype(np.int64)


def _phones(rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
    """E.164 numbers as integers (printed with a leading +): mobile numbers per region."""
    n = len(region)
    prefixes = np.array([130, 131, 132, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159,
                         166, 177, 180, 181, 186, 187, 188, 189, 199])
    phone = 86 * 10**11 + rng.choice(prefixes, n) * 10**8 + rng.integers(0, 10**8, n)
    region_names = [r[0] for r in REGIONS]
    for region_name, (country, length, leads) in OVERSEAS_PHONES.items():
        members = np.flatnonzero(region == region_names.index(region_name))
        pick = rng.integers(0, len(leads), len(members))
        lead = np.array([int(x) for x in leads])[pick]
        rest = length - np.array([len(x) for x in leads])[pick]
        phone[members] = country * 10**length + lead * 10**rest + rng.integers(0, 10**rest)
    return phone.astype(np.int64)


# per channel: (share opted in, mainland), (opted in, overseas), share of them opted out later
CONSENT_RATES = {"email": (0.45, 0.60, 0.12), "sms": (0.40, 0.25, 0.15),
                 "push": (0.30, 0.30, 0.08), "wecom": (0.45, 0.05, 0.06)}


def _consent(rng: np.random.Generator, overseas: np.ndarray) -> np.ndarray:
    """Per customer and channel: 1 opted in, 0 never asked, -1 opted in once and out since."""
    n = len(overseas)
    states = np.zeros((n, len(CHANNELS)), np.int64)
    for column, channel in enumerate(CHANNELS):
        mainland, abroad, out_share = CONSENT_RATES[channel]
        opted_in = rng.random(n) < np.where(overseas, abroad, mainland)
        opted_out = opted_in & (rng.random(n) < out_share)
        states[:, column] = np.where(opted_out, -1, opted_in.astype(np.int64))
    return states


# --- rows -----------------------------------------------------------------


class _Packed:
    """Non-negative integer columns packed as fixed-width decimal digits in one blob.

    SQLite reads field ``name`` of row ``i`` with :meth:`expr`. One blob per
    chunk is the cheapest way through the stdlib ``sqlite3``: binding rows
    with ``executemany`` costs ~2 s per million in Python (and holds the
    GIL), JSON parsing in SQL is slower than ``substr`` + ``CAST``.
    """

    def __init__(self, base: int, **columns: np.ndarray) -> None:
        lengths = {len(values) for values in columns.values()}
        assert len(lengths) == 1, "packed columns must have equal lengths"
        self.base = base
        self.count = lengths.pop()
        self.fields: dict[str, tuple[int, int]] = {}
        widths = {}
        for name, values in columns.items():
            if self.count and int(values.min()) < 0:
                raise ValueError(f"packed column {name} has negative values")
            widths[name] = len(str(int(values.max()))) if self.count else 1
        self.width = sum(widths.values())
        # One plane of digits per position, filled contiguously and transposed
        # once at the end: six times faster than writing strided columns.
        planes = np.empty((self.width, self.count), np.uint8)
        offset = 0
        for name, values in columns.items():
            width = widths[name]
            self.fields[name] = (offset + 1, width)
            rest = values.astype(np.uint32 if width <= 9 else np.int64)  # uint32 divides faster
            for position in range(offset + width - 1, offset - 1, -1):
                quotient = rest // 10
                np.add(rest - quotient * 10, 48, out=planes[position], casting="unsafe")
                rest = quotient
            offset += width
        self.blob = np.ascontiguousarray(planes.T).tobytes()

    def expr(self, name: str) -> str:
        offset, width = self.fields[name]
        return f"CAST(substr(:packed, i * {self.width} + {offset}, {width}) AS INTEGER)"

    def params(self, **extra: object) -> dict:
        return {"packed": self.blob, "count": self.count, "base": self.base, **extra}


class _RowNumbers:
    """The row numbers 0..n-1 each ``INSERT ... SELECT`` reads its blob by (a temp table)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.ready = 0
        conn.execute("CREATE TEMP TABLE demo_rows (i INTEGER PRIMARY KEY)")

    def ensure(self, count: int) -> None:
        if count > self.ready:
            self.conn.execute(
                "WITH RECURSIVE n(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :stop) "
                "INSERT INTO temp.demo_rows (i) SELECT i FROM n",
                {"start": self.ready, "stop": count},
            )
            self.ready = count


def _padded_id(prefix: str, expr: str, digits: int) -> str:
    """``prefix || printf('%0{digits}d', expr)``, without printf (it costs as much as the row insert)."""
    pad = 10**digits
    return f"'{prefix}' || CASE WHEN {expr} < {pad} THEN substr({pad} + {expr}, 2) ELSE {expr} END"


def _case(expr: str, values: tuple) -> str:
    """``CASE expr WHEN 0 THEN values[0] ...`` with the values as SQL literals."""
    def literal(value) -> str:
        return "NULL" if value is None else "'" + str(value).replace("'", "''") + "'"

    arms = " ".join(f"WHEN {index} THEN {literal(value)}" for index, value in enumerate(values))
    return f"CASE {expr} {arms} END"


def _create_vocabulary(conn: sqlite3.Connection) -> None:
    """Small lookup tables the customer rows' codes are resolved against."""
    tables = {
        "demo_names (k INTEGER PRIMARY KEY, name TEXT, stem TEXT)": [
            (k, name, stem) for k, (name, stem) in enumerate(_name_table())],
        # code = region * 2 + (1 if the customer's time zone is unknown)
        "demo_places (k INTEGER PRIMARY KEY, region TEXT, timezone TEXT)": [
            (2 * k + unknown, region, None if unknown else zone)
            for k, (region, zone, _, _) in enumerate(REGIONS) for unknown in (0, 1)],
        # code 0 (no email) has no row: the LEFT JOIN makes the email NULL
        "demo_domains (k INTEGER PRIMARY KEY, domain TEXT)": [
            (k + 1, domain) for k, domain in enumerate(DOMAINS)],
        # code = the four states (+1) as base-3 digits, email first
        "demo_consent (k INTEGER PRIMARY KEY, email INTEGER, sms INTEGER, push INTEGER, wecom INTEGER)": [
            (code, *(code // 3 ** (3 - column) % 3 - 1 for column in range(4))) for code in range(81)],
    }
    for table, rows in tables.items():
        conn.execute(f"CREATE TEMP TABLE {table}")
        name = table.split(" ", 1)[0]
        marks = ", ".join("?" for _ in rows[0])
        conn.executemany(f"INSERT INTO temp.{name} VALUES ({marks})", rows)


def _customer_rows(shop: "_Shop", index: int) -> _Packed:
    ids = np.arange(index * CHUNK_CUSTOMERS, min((index + 1) * CHUNK_CUSTOMERS, shop.params.customers))
    consent_code = ((shop.consent[ids] + 1) * np.array([27, 9, 3, 1])).sum(axis=1)
    return _Packed(
        int(ids[0]) + 1,
        name=shop.name[ids], domain=shop.domain[ids] + 1, phone=shop.phone[ids],
        place=shop.region[ids] * 2 + shop.zone_unknown[ids], signup=shop.signup_at[ids],
        consent=consent_code,
    )


def _insert_customers(conn: sqlite3.Connection, shop: "_Shop", p: _Packed) -> None:
    # One decode and one lookup per vocabulary: a decode costs about as much
    # as a lookup, and a long CASE more than both.
    conn.execute(
        f"""INSERT INTO customers (id, customer_id, name, email, phone, region, timezone, signed_up_at,
                accepts_email, accepts_sms, accepts_push, accepts_wecom, created_at, source)
        SELECT :base + i, {_padded_id('C', ':base + i', 7)}, n.name,
            n.stem || (:base + i) || '@' || d.domain, '+' || nullif({p.expr('phone')}, 0),
            r.region, r.timezone, :t0 + {p.expr('signup')},
            c.email, c.sms, c.push, c.wecom, :t0 + {p.expr('signup')}, 'demo'
        FROM temp.demo_rows
        CROSS JOIN temp.demo_names AS n ON n.k = {p.expr('name')}
        CROSS JOIN temp.demo_places AS r ON r.k = {p.expr('place')}
        CROSS JOIN temp.demo_consent AS c ON c.k = {p.expr('consent')}
        LEFT JOIN temp.demo_domains AS d ON d.k = {p.expr('domain')}
        WHERE i < :count""",
        p.params(t0=shop.t0),
    )


def _insert_orders(conn: sqlite3.Connection, shop: "_Shop", p: _Packed) -> None:
    conn.execute(
        f"""INSERT INTO orders (id, order_id, customer, placed_at, total_cents, discount_cents,
                refunded_cents, status, category)
        SELECT :base + i, {_padded_id('SO', ':base + i', 8)}, {p.expr('customer')},
            :t0 + {p.expr('placed')}, {p.expr('total')}, {p.expr('discount')}, {p.expr('refunded')},
            {_case(p.expr('status'), STATUSES)}, {_case(p.expr('category'), CATEGORIES)}
        FROM temp.demo_rows WHERE i < :count""",
        p.params(t0=shop.t0),
    )


def _insert_events(conn: sqlite3.Connection, shop: "_Shop", p: _Packed) -> None:
    conn.execute(
        f"""INSERT INTO events (customer, kind, at, category)
        SELECT {p.expr('customer')}, {_case(p.expr('kind'), KINDS)}, :t0 + {p.expr('at')},
            {_case(p.expr('category'), EVENT_CATEGORIES)}
        FROM temp.demo_rows WHERE i < :count""",
        p.params(t0=shop.t0),
    )


def _insert_consent(conn: sqlite3.Connection, shop: "_Shop", p: _Packed) -> None:
    conn.execute(
        f"""INSERT INTO consent_events (customer, channel, state, source, at, note)
        SELECT {p.expr('customer')}, {_case(p.expr('channel'), CHANNELS)}, {p.expr('state')} - 1,
            {_case(p.expr('source'), CONSENT_SOURCES)}, :t0 + {p.expr('at')},
            {_case(p.expr('note'), CONSENT_NOTES)}
        FROM temp.demo_rows WHERE i < :count""",
        p.params(t0=shop.t0),
    )


@dataclass
class _Chunk:
    """The orders, events and consent history of one chunk of customers, ready for SQLite."""

    index: int
    customers: int
    orders: _Packed | None  # the main writer's part
    events: _Packed | None  # the aside writer's part
    consent: _Packed | None
    seconds: float
    # the same orders as columns, to seed the columnar copy (core.fastread)
    order_columns: dict[str, np.ndarray] | None = None


def _write_orders(
    conn: sqlite3.Connection, shop: "_Shop", feed: _ChunkFeed, progress: ProgressCallback | None,
    order_columns: list[dict[str, np.ndarray]],
) -> dict[str, int]:
    """Write every chunk's orders, in order, on this thread (and keep their columns)."""
    row_numbers = _RowNumbers(conn)
    orders, done, total = 0, 0, shop.params.customers
    if progress:
        progress("generating customers", 0, total)
    for chunk in feed.chunks("main"):
        if chunk.orders.count:
            row_numbers.ensure(chunk.orders.count)
            _insert_orders(conn, shop, chunk.orders)
        orders += chunk.orders.count
        if chunk.order_columns is not None:
            order_columns.append(chunk.order_columns)
        done += chunk.customers
        if progress:
            progress("generating customers", done, total)
    conn.execute("DROP TABLE temp.demo_rows")
    return {"orders": orders}


def _make_chunk(shop: "_Shop", index: int, order_base: int) -> _Chunk:
    mark = time.perf_counter()
    rng = _rng(shop.params.seed, 1, index)
    ids = np.arange(index * CHUNK_CUSTOMERS, min((index + 1) * CHUNK_CUSTOMERS, shop.params.customers))
    orders = _orders(shop, rng, ids)
    events = _events(shop, rng, ids, orders)
    consent = _consent_events(shop, rng, ids)
    packed_orders = _Packed(
        order_base, customer=orders["customer"] + 1, placed=orders["placed"], total=orders["total"],
        discount=orders["discount"], refunded=orders["refunded"], status=orders["status"],
        category=orders["category"],
    )
    columns = {
        "id": np.arange(order_base, order_base + len(orders["customer"]), dtype=np.int64),
        "customer": (orders["customer"] + 1).astype(np.int32),
        "placed": orders["placed"].astype(np.int64),
        "total": orders["total"].astype(np.int64), "discount": orders["discount"].astype(np.int64),
        "refunded": orders["refunded"].astype(np.int64),
        "status": orders["status"].astype(np.uint8), "category": orders["category"].astype(np.uint8),
    }
    return _Chunk(index, len(ids), packed_orders, events, consent, time.perf_counter() - mark, columns)


def _orders(shop: _Shop, rng: np.random.Generator, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Every order of these customers, sorted by (customer, placed)."""
    counts = shop.n_orders[ids]
    total = int(counts.sum())
    owner = np.repeat(ids, counts)
    local = np.repeat(np.arange(len(ids)), counts)
    starts = np.cumsum(counts) - counts

    # Positions in the span from cumulative gamma gaps: repeat buyers come
    # back at roughly regular intervals, first and last order on the bounds.
    gaps = rng.gamma(2.0, 1.0, total)
    gaps[starts[counts > 0]] = 0.0
    cumulative = np.cumsum(gaps)
    within = cumulative - cumulative[starts[local]]
    span_total = within[(starts + counts - 1)[local]]
    position = np.divide(within, span_total, out=np.zeros(total), where=span_total > 0)
    first, last = shop.first_ago[owner], shop.last_ago[owner]
    days_ago = np.rint(first - position * (first - last)).astype(np.int64)

    placed = shop._instant(days_ago, _time_of_day(rng, total))
    signup = shop.signup_at[owner]
    day_end = (HISTORY_DAYS - days_ago) * DAY
    early = placed < signup  # on the signup day, before signing up: move after it
    placed = np.where(early, signup + ((day_end - signup) * rng.random(total)).astype(np.int64), placed)
    order = np.lexsort((placed, owner))
    owner, placed = owner[order], placed[order]
    days_ago = days_ago[order]

    roll = rng.random(total)
    category = np.where(roll < 0.55, shop.favourite[owner],
                        np.where(roll < 0.75, shop.second[owner],
                                 rng.choice(len(CATEGORIES), total,
                                            p=CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum())))
    price = shop.basket[owner] * CATEGORY_PRICE[category] * np.exp(rng.normal(0.0, 0.35, total))
    cents = np.maximum(np.rint(price) * 100, 900).astype(np.int64)
    cents -= np.where(rng.random(total) < 0.4, 10, 0)  # the odd ¥x.90 price point

    discounted = rng.random(total) < shop.discount_share[owner]
    discount = np.where(discounted, np.maximum(np.rint(cents * rng.uniform(0.05, 0.3, total) / 100), 1) * 100, 0)

    status = np.full(total, PAID, np.int64)
    refunded = np.zeros(total, np.int64)
    roll = rng.random(total)
    status[roll < 0.02] = CANCELLED
    refund = (roll >= 0.02) & (roll < 0.05)  # about 3%, a third of them in full
    partial = refund & (rng.random(total) < 0.65)
    refunded[refund] = cents[refund]
    partial_amount = np.rint(cents * rng.uniform(0.1, 0.7, total) / 100) * 100
    refunded[partial] = np.clip(partial_amount[partial], 100, cents[partial] - 10).astype(np.int64)
    status[(roll >= 0.05) & (roll < 0.0505)] = VOIDED
    staff = (roll >= 0.0505) & (roll < 0.0515)
    status[staff] = STAFF
    discount[staff] = cents[staff] // 2
    test = (roll >= 0.0515) & (roll < 0.0518)
    status[test] = TEST
    cents[test], discount[test] = 1, 0
    # orders of the last two days still awaiting payment
    status[(days_ago <= 1) & (rng.random(total) < 0.15) & (status == PAID) & (refunded == 0)] = PENDING
    status[shop.cancelled_only[owner]] = CANCELLED
    refunded[shop.cancelled_only[owner]] = 0
    return {"customer": owner, "placed": placed, "total": cents, "discount": discount.astype(np.int64),
            "refunded": refunded, "status": status, "category": category.astype(np.int64)}


def _events(shop: _Shop, rng: np.random.Generator, ids: np.ndarray, orders: dict) -> _Packed:
    """Behaviour around orders (views and carts before, reviews and shares after) and beyond them."""
    horizon = HISTORY_DAYS * DAY  # the first instant after the as-of, from t0
    owner, placed, category = orders["customer"], orders["placed"], orders["category"] + 1
    social = shop.social[owner]
    parts = []

    def around(kind: int, share, low: int, high: int) -> None:
        chosen = rng.random(len(owner)) < share
        offset = rng.integers(low, high, int(chosen.sum()))
        parts.append((owner[chosen], np.full(int(chosen.sum()), kind), placed[chosen] + offset, category[chosen]))

    around(VIEW, 0.07, -3 * DAY, -60)
    around(CART, 0.035, -6 * 3600, -30)
    around(FAVORITE, 0.01, -10 * DAY, -3600)
    around(REVIEW, np.where(social, 0.2, 0.02), 2 * DAY, 14 * DAY)
    around(SHARE, np.where(social, 0.15, 0.003), 3600, 3 * DAY)

    # browsing in the last 60 days, more by those who buy
    recent = np.maximum(shop.signup_at[ids], horizon - 60 * DAY)
    views = rng.poisson(np.where(shop.n_orders[ids] > 0, 0.5, 0.3))
    who = np.repeat(ids, views)
    start = np.repeat(recent, views)
    parts.append((who, np.full(len(who), VIEW), start + ((horizon - start) * rng.random(len(who))).astype(np.int64),
                  _event_categories(shop, rng, who)))
    # cart abandoners: carts in the last two weeks, no order since
    abandoners = ids[shop.cart_abandoner[ids]]
    carts = rng.integers(1, 3, len(abandoners))
    who = np.repeat(abandoners, carts)
    start = np.maximum(shop.signup_at[who], horizon - 13 * DAY)
    parts.append((who, np.full(len(who), CART), start + ((horizon - start) * rng.random(len(who))).astype(np.int64),
                  _event_categories(shop, rng, who)))
    # the social ones watch live streams and post in the community
    socials = ids[shop.social[ids]]
    for kind, most in ((LIVE, 6), (COMMUNITY, 5)):
        times = rng.integers(0, most + 1, len(socials))
        who = np.repeat(socials, times)
        start = np.maximum(shop.signup_at[who], horizon - 90 * DAY)
        at = start + ((horizon - start) * rng.random(len(who))).astype(np.int64)
        parts.append((who, np.full(len(who), kind), at, np.zeros(len(who), np.int64)))

    who = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts]).astype(np.int64)
    at = np.concatenate([p[2] for p in parts]).astype(np.int64)
    cat = np.concatenate([p[3] for p in parts]).astype(np.int64)
    at = np.maximum(at, shop.signup_at[who])  # nobody browses before signing up
    keep = at < horizon  # reviews of the last days are still to come
    who, kind, at, cat = who[keep], kind[keep], at[keep], cat[keep]
    order = np.lexsort((cat, at, kind, who))  # the UNIQUE index's order
    who, kind, at, cat = who[order], kind[order], at[order], cat[order]
    if len(who):
        repeat = np.zeros(len(who), bool)
        repeat[1:] = (who[1:] == who[:-1]) & (kind[1:] == kind[:-1]) & (at[1:] == at[:-1]) & (cat[1:] == cat[:-1])
        who, kind, at, cat = who[~repeat], kind[~repeat], at[~repeat], cat[~repeat]
    return _Packed(0, customer=who + 1, kind=kind, at=at, category=cat)


def _event_categories(shop: _Shop, rng: np.random.Generator, who: np.ndarray) -> np.ndarray:
    favourite = rng.random(len(who)) < 0.6
    other = rng.integers(0, len(CATEGORIES), len(who))
    return np.where(favourite, shop.favourite[who], other) + 1


def _consent_events(shop: _Shop, rng: np.random.Generator, ids: np.ndarray) -> _Packed:
    """An opt-in at signup for every channel ever opted into; a later opt-out where it stands at -1."""
    horizon = HISTORY_DAYS * DAY
    states = shop.consent[ids]
    signup = shop.signup_at[ids]
    parts = []
    checkout = rng.random(len(ids)) < 0.3
    for column, channel in enumerate(CHANNELS):
        ever = states[:, column] != 0
        who = ids[ever]
        source = np.where(checkout[ever], CONSENT_SOURCES.index("checkout"), CONSENT_SOURCES.index("signup"))
        parts.append((who, np.full(len(who), column), np.full(len(who), 1), signup[ever], source,
                      np.zeros(len(who), np.int64)))
        out = states[:, column] == -1
        who = ids[out]
        start = signup[out] + 60
        at = start + ((horizon - start) * rng.random(len(who))).astype(np.int64)
        by_support = rng.random(len(who)) < 0.1
        own_source = CONSENT_SOURCES.index(("unsubscribe-link", "sms-reply", "app-settings", "wecom")[column])
        source = np.where(by_support, CONSENT_SOURCES.index("sam"), own_source)
        note = np.where(by_support, 2, 1 if channel == "sms" else 0)
        parts.append((who, np.full(len(who), column), np.full(len(who), -1), np.minimum(at, horizon - 1), source, note))
    who, channel, state, at, source, note = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(6))
    order = np.lexsort((channel, at, who))  # the (customer, at) index's order
    return _Packed(
        0, customer=who[order] + 1, channel=channel[order], state=state[order] + 1, at=at[order],
        source=source[order], note=note[order],
    )


def _write_manual_tags(conn: sqlite3.Connection, shop: _Shop) -> int:
    """A few tags people added by hand (and some they removed again), with notes."""
    rng = _rng(shop.params.seed, 2)
    n = shop.params.customers
    horizon = HISTORY_DAYS * DAY
    buyers = np.flatnonzero(shop.n_orders > 0)
    pools = {
        "vip": np.flatnonzero(shop.archetype == _kind("loyal_heavy")),
        "influencer": np.flatnonzero(shop.social & (shop.n_orders > 0)),
        "wholesale": np.flatnonzero(shop.archetype == _kind("bargain")),
        "complaint": buyers,
        "do-not-call": np.arange(n),
    }
    per_tag = max(2, n // 5000)
    current, history = [], []
    for tag, source, note, removed_share in MANUAL_TAGS:
        pool = pools[tag]
        if len(pool) == 0:
            continue
        chosen = np.sort(rng.choice(pool, min(per_tag, len(pool)), replace=False))
        start = np.maximum(shop.signup_at[chosen] + DAY, horizon - 300 * DAY)
        added = np.minimum(start + ((horizon - start) * rng.random(len(chosen))).astype(np.int64), horizon - 1)
        removed_at = added + rng.integers(10 * DAY, 60 * DAY, len(chosen))
        removed = (rng.random(len(chosen)) < removed_share) & (removed_at < horizon)
        for customer, at, gone, gone_at in zip(chosen.tolist(), added.tolist(), removed.tolist(), removed_at.tolist()):
            history.append((customer + 1, tag, "added", source, shop.t0 + at, note))
            if gone:
                history.append((customer + 1, tag, "removed", source, shop.t0 + gone_at, "Resolved"))
            else:
                current.append((customer + 1, tag, source, shop.t0 + at, note))
    history.sort(key=lambda row: (row[4], row[0], row[1]))
    conn.executemany(
        "INSERT INTO tag_events (customer, tag, action, source, manual, at, note) VALUES (?, ?, ?, ?, 1, ?, ?)",
        history,
    )
    conn.executemany("INSERT INTO manual_tags (customer, tag, added_by, added_at, note) VALUES (?, ?, ?, ?, ?)",
                     sorted(current))
    return len(current)


def default_demo_as_of(now: int) -> date:
    """Yesterday in the demo shop's time zone (the last whole shop day)."""
    from core.clock import default_as_of

    return default_as_of(ZoneInfo(DEMO_TIMEZONE), now)


__all__ = [
    "ARCHETYPES", "DemoParams", "DemoSummary", "default_demo_as_of", "demo_config_text",
    "existing_demo_params", "generate_demo",
]
