"""Importing customers, orders and events from CSV, Parquet and Shopify's orders export.

One import is one transaction: the good rows, the ``imports`` row, its
``import_rejects`` and an audit row land together or not at all, so an
exception or Ctrl-C part-way leaves the store as it was. Bad rows never stop
the good ones (unless ``strict``); each becomes a :class:`Reject` naming the
physical line it starts on, the column, the reason and its raw text.

Re-importing a file changes nothing: orders are upserted by ``order_id`` and
only written when a field differs, events are unique, and customers only
take the non-blank cells that differ from what the store knows.

The file is read, parsed and validated with polars (:mod:`core.records`)
on a worker thread, one batch ahead of the writer, which feeds SQLite with
``executemany`` over multi-row ``VALUES`` statements built from column lists.
A large orders file's orders go another way: staged through ADBC in a child
process (:mod:`core.bulkwrite`) while the next batch is read, then landed
with one ``INSERT … SELECT`` at the end, still inside the one transaction.
"""

from __future__ import annotations

import queue
import re
import sqlite3
import threading
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping, TypeVar

import polars as pl

from core.audit import record
from core.bulkwrite import PARTS, SCHEMA as STAGE, TABLE as STAGED, Batch as StagedBatch, Stager
from core.csvread import LINE, RAW, read_batches
from core.errors import InputError, NotFound, StoreError
from core.records import (
    CHANNELS, ENCODINGS, FIELDS_BY_KIND, FORMATS, KINDS, REJECT_COLUMNS, ImportPlan, Prepared, RecordReader,
    parse_mapping, plan_import, with_parquet_raw,
)

if TYPE_CHECKING:
    from core.store import Store
    from core.users import User

__all__ = [
    "ENCODINGS", "FIELDS_BY_KIND", "FORMATS", "KINDS", "ImportPlan", "ImportResult", "Reject", "import_file",
    "latest_import", "list_rejects", "parse_mapping", "plan_import",
]

REJECTS_KEPT = 10_000  # in the result; the store keeps every one
RAW_CHARS = 2_000  # of a rejected record's text (an unclosed quote can swallow the rest of a file)
REASON_CHARS = 200  # of a reason, which quotes the cell it is about
STATEMENT_ROWS = 1_000  # rows per INSERT ... VALUES statement (at most 13 parameters each: < 32,766)
WRITE_SLICE = 100_000  # rows turned into Python values at a time
IMPORT_CACHE_KIB = 400_000  # SQLite's page cache while importing; it only grows as pages are used
IDLE_POLL_S = 0.005  # how often a writer waiting for the next batch looks for finished parts
SORT_THREADS = 2  # helper threads for rebuilding an index (this is a 2-core machine's worth)
SORT_PIECE_KIB = 4_096  # the pieces they sort: small enough that even 1M orders make several
DROP_INDEX_MIN_ROWS = 50_000  # below this, keeping orders_customer up to date costs little
BULK_MIN_ROWS = 100_000  # orders files expected to be larger are staged (a child process costs ~0.3 s)
TEXT_BYTES_PER_ROW = 64  # a typical orders CSV row, to guess a text file's rows from its size
HASH = "_pair"  # a customer's (key, by_email) as one 64-bit hash
_PAIR_HASH = (pl.col("key").hash(0x7469657264657368) ^ pl.col("by_email").cast(pl.UInt64)).alias(HASH)
ORDER_COLUMNS = ("order_id", "customer", "placed_at", "total_cents", "discount_cents", "refunded_cents", "status",
                 "category")


def _order_rows(good: pl.DataFrame, customers: pl.Series) -> pl.DataFrame:
    """A batch's orders as the orders table has them (ORDER_COLUMNS).

    They stay sorted by order_id (the reader sorts by _key), so the unique index grows at its end.
    """
    return good.select(
        pl.col("_key").alias("order_id"), customers.alias("customer"), pl.col("placed_at_v").alias("placed_at"),
        pl.col("total_v").alias("total_cents"), pl.col("discount_v").alias("discount_cents"),
        pl.col("refunded_v").alias("refunded_cents"), pl.col("status_v").alias("status"), "category",
    )


@dataclass(frozen=True)
class Reject:
    """A row that did not land: the line it starts on, the column, why, and its text."""

    line: int | None
    field: str | None
    reason: str
    raw: str | None


@dataclass(frozen=True)
class ImportResult:
    """What an import did; ``exit_code`` is the CLI's answer."""

    import_id: int | None  # None when nothing was stored (refused with --strict, or a dry run)
    kind: str
    file: str
    format: str
    encoding: str | None
    rows: int
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    customers_created: int
    rejects: list[Reject] = field(default_factory=list)  # the first REJECTS_KEPT, by line
    status: str = "landed"  # landed | partial | refused | dry-run

    @property
    def exit_code(self) -> int:
        """0 all landed; 1 some rows rejected, the rest landed; 2 refused, nothing changed."""
        if self.status == "refused" or (self.rows and self.rejected == self.rows):
            return 2
        return 1 if self.rejected else 0

    @property
    def where_word(self) -> str:
        """Parquet has rows, text has lines."""
        return "row" if self.format == "parquet" else "line"

    def as_dict(self) -> dict:
        return {
            "import_id": self.import_id, "kind": self.kind, "file": self.file, "format": self.format,
            "encoding": self.encoding, "status": self.status, "exit_code": self.exit_code, "rows": self.rows,
            "inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
            "rejected": self.rejected, "customers_created": self.customers_created,
            "rejects": [reject.__dict__ for reject in self.rejects],
        }


def import_file(
    store: "Store",
    kind: str,
    path: Path | str,
    *,
    actor: "User",
    now: int,
    fmt: str = "auto",
    mapping: Mapping[str, str] | None = None,
    encoding: str = "auto",
    strict: bool = False,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
    bulk: bool | None = None,
) -> ImportResult:
    """Import ``path`` as ``kind`` (customers, orders or events) into ``store``.

    File-level problems (missing, a directory, empty, binary, no header, a
    required column missing, an unreadable encoding) raise
    :class:`~core.errors.InputError` and write nothing. Row-level problems
    become rejects; with ``strict`` any reject refuses the whole file, and
    ``dry_run`` computes everything, then rolls it back. ``progress(done,
    total)`` is called after each batch (for CSV the total is an estimate
    until the end). ``bulk`` stages orders through ADBC (see :mod:`core.bulkwrite`);
    by default a large orders file is staged, a small one is not.
    """
    actor.require("import")
    plan = plan_import(kind, path, fmt=fmt, mapping=mapping, encoding=encoding)
    reader = RecordReader(plan, store.config.zone)
    if bulk is None:
        expected = plan.table.rows if plan.table.rows is not None else plan.table.size // TEXT_BYTES_PER_ROW
        bulk = expected >= BULK_MIN_ROWS
    # Staged parts are attached to the connection and detached once the transaction is over:
    # inside someone else's transaction that would be too late.
    nested = store.conn.in_transaction
    stager = Stager() if bulk and plan.kind == "orders" and not nested else None
    lookups: sqlite3.Connection | None = None
    try:
        with _bulk_writes(store.conn), store.transaction():
            run = _Run(store, plan, actor=actor.login, now=now, keep_rejects=not (strict or dry_run),
                       stager=stager)
            # Orders: their customers are resolved on the reading thread, a batch ahead, which
            # asks the store (as it was before the import) through a connection of its own.
            resolver = None if nested else run.customers
            if resolver is not None and resolver.before:
                resolver.conn = lookups = store.reading_connection()
            # Closed on the way out, so an error here also stops the reading thread.
            # While the next batch is read, the writer lands staged parts the child has finished.
            idle = run.land_finished_parts if stager is not None else None
            with closing(_ahead(lambda: _prepared_batches(reader, resolver, stager), idle)) as batches:
                for prepared, resolution in batches:
                    run.land(prepared, resolution)
                    if progress is not None:
                        progress(run.rows, run.estimate_total(prepared.bytes_done))
                    del prepared  # let the batch go before waiting for the next
            result = run.finish(strict=strict, dry_run=dry_run)
            if result.import_id is None:
                raise _Discard(result)
    except _Discard as discard:
        result = discard.result
    finally:
        if lookups is not None:
            lookups.close()
        if stager is not None:
            try:
                _detach(store.conn)
            finally:
                stager.close()
    if progress is not None:
        progress(result.rows, result.rows)
    return result


def latest_import(store: "Store", import_id: int | None = None) -> dict:
    """The ``imports`` row for ``import_id``, or the latest one."""
    if import_id is None:
        rows = store.rows("SELECT * FROM imports ORDER BY id DESC LIMIT 1")
        if not rows:
            raise NotFound("no imports yet", hint="Import a file with `tierdesk import orders FILE`.")
    else:
        rows = store.rows("SELECT * FROM imports WHERE id = ?", (import_id,))
        if not rows:
            raise NotFound(f"no import #{import_id}", hint="`tierdesk rejects` shows the latest import's.")
    return rows[0]


def list_rejects(store: "Store", import_id: int | None = None, *,
                 user: "User | None" = None) -> tuple[dict, list[dict]]:
    """An import (the latest unless given) and its rejected rows in line order.

    A user who sees contacts masked (support, viewers) gets no raw text, and
    an email or phone a reason quotes comes masked: rejects must not be a way
    round the masking of the customer view.
    """
    record = latest_import(store, import_id)
    rejects = store.rows(
        "SELECT line, field, reason, raw, file FROM import_rejects WHERE import_id = ? ORDER BY line, id",
        (record["id"],),
    )
    if user is not None and user.masks_contacts:
        from core.contacts import mask_email

        def masked(match: "re.Match[str]") -> str:
            return "'" + mask_email(match.group(1)) + "'"

        for row in rejects:
            row["raw"] = None
            if row["field"] in ("email", "phone"):
                # The cell itself is the contact: keep what was wrong, not the cell (which may hold
                # quotes of its own, or be cut short).
                shown = row["reason"].split("'", 1)[0].rstrip(": ")
                row["reason"] = f"{shown} (the cell is hidden from the {user.role} role)"
            else:
                row["reason"] = _QUOTED_EMAIL.sub(masked, row["reason"])
    return record, rejects


_QUOTED_EMAIL = re.compile(r"'([^'\s]*@[^'\s]*)'?")  # an email a reason quotes (maybe cut short)


# --- the reading side ---------------------------------------------------------------------

T = TypeVar("T")


def _prepared_batches(reader: RecordReader, customers: "_CustomerResolver | None" = None,
                      stager: Stager | None = None) -> Iterator[tuple[Prepared, "_Resolution | None"]]:
    """Each batch validated, and with ``customers``, its orders' customers resolved.

    With a ``stager`` too, the orders are written for it here as well
    (``resolution.staged``), so the writer only hands them on.
    """
    with closing(read_batches(reader.table)) as batches:
        for batch in batches:
            # The last batch reaches the end of the file (no need to read ahead to know).
            prepared = reader.prepare(batch, last=batch.bytes_done >= reader.table.size)
            resolution = customers.resolve(prepared.good) if customers is not None and prepared.good.height else None
            if resolution is not None and stager is not None:
                resolution = replace(resolution, staged=stager.write(_order_rows(prepared.good, resolution.ids)))
            yield prepared, resolution


def _ahead(produce: Callable[[], Iterator[T]], idle: Callable[[], None] | None = None) -> Iterator[T]:
    """Run ``produce()`` on a worker thread, one item ahead of the consumer.

    polars releases the GIL, and so does SQLite while it steps, so the next
    batch is read and checked while this one is written; the worker starts
    an item only once the consumer has taken the one before, so at most two
    batches are in memory. While the consumer waits for an item, it calls
    ``idle()`` every few milliseconds. An error in the worker is raised
    here; stopping early (an error here, Ctrl-C) stops the worker.
    """
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    turn = threading.Semaphore(1)  # the worker's permission to start the next item
    stop = threading.Event()

    def my_turn() -> bool:
        while not stop.is_set():
            if turn.acquire(timeout=0.1):
                return True
        return False

    def work() -> None:
        try:
            with closing(produce()) as items:
                while my_turn():
                    try:
                        item = next(items)
                    except StopIteration:
                        handoff.put(("end", None))
                        return
                    handoff.put(("item", item))
        except BaseException as exc:  # handed to the consumer, which raises it
            handoff.put(("error", exc))

    worker = threading.Thread(target=work, name="tierdesk-import-reader", daemon=True)
    worker.start()
    try:
        while True:
            try:
                kind, value = handoff.get(timeout=IDLE_POLL_S if idle is not None else None)
            except queue.Empty:
                idle()
                continue
            turn.release()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


class _Discard(Exception):
    """Roll the transaction back and hand this result out (a strict refusal, a dry run)."""

    def __init__(self, result: ImportResult) -> None:
        super().__init__("discarded")
        self.result = result


# --- the writing side --------------------------------------------------------------------


class _Run:
    """One import while its batches land (inside the transaction)."""

    def __init__(self, store: "Store", plan: ImportPlan, *, actor: str, now: int, keep_rejects: bool,
                 stager: Stager | None = None) -> None:
        self.store = store
        self.stager = stager
        self.landed: set[int] = set()  # staged parts already landed
        self.conn: sqlite3.Connection = store.conn
        self.plan = plan
        self.table = plan.table
        self.kind = plan.kind
        self.actor = actor
        self.now = now
        self.keep_rejects = keep_rejects
        self.file = str(self.table.path.resolve())
        self.source = f"import:{self.table.name}"
        self.rows = self.inserted = self.updated = self.unchanged = self.rejected = self.created = 0
        self.rejects: list[Reject] = []
        self.batches = 0
        self.dropped_index: str | None = None
        # Customers that were here before this import: the only ones the store is asked about.
        self.customers_before = int(store.scalar("SELECT coalesce(max(id), 0) FROM customers"))
        self.customers = _CustomerResolver(self.conn, self.customers_before) if self.kind == "orders" else None
        self.import_id = int(self.conn.execute(
            "INSERT INTO imports (kind, file, format, encoding, actor, started_at, status) "
            "VALUES (?, ?, ?, ?, ?, ?, 'running')",
            (self.kind, self.file, plan.format, self.table.encoding, actor, now),
        ).lastrowid)

    def estimate_total(self, bytes_done: int) -> int:
        """Rows in the whole file: known for Parquet, extrapolated from the bytes read for text."""
        if self.table.rows is not None:
            return self.table.rows
        read = max(bytes_done - self.table.data_offset, 1)
        return max(self.rows, int(self.rows * (self.table.size - self.table.data_offset) / read))

    def land(self, prepared: Prepared, resolution: "_Resolution | None" = None) -> None:
        """Write one validated batch: its good rows, then its rejects.

        An orders batch may come with its customers already resolved (on the
        reading thread); otherwise they are resolved here.
        """
        self.batches += 1
        self.rows += prepared.rows
        rejects = prepared.rejects
        good = prepared.good
        if good.height:
            if self.kind == "orders":
                self._land_orders(good, prepared.bytes_done, resolution or self.customers.resolve(good))
            elif self.kind == "customers":
                self._land_customers(good)
            else:
                late = self._land_events(good)
                if late.height:
                    if prepared.originals is not None:
                        late = with_parquet_raw(late, prepared.originals, self.table)
                    rejects = pl.concat([rejects, late], how="vertical_relaxed").sort(LINE)
        self._reject(rejects)

    def _reject(self, rejects: pl.DataFrame) -> None:
        if rejects.height == 0:
            return
        rejects = rejects.select(REJECT_COLUMNS).with_columns(
            pl.when(pl.col(column).str.len_chars() > limit)
            .then(pl.col(column).str.slice(0, limit) + pl.lit("…"))
            .otherwise(pl.col(column)).alias(column)
            for column, limit in ((RAW, RAW_CHARS), ("_reason", REASON_CHARS))  # a reason quotes the cell
        )
        self.rejected += rejects.height
        room = REJECTS_KEPT - len(self.rejects)
        if room > 0:
            self.rejects.extend(Reject(*row) for row in rejects.head(room).iter_rows())
        if self.keep_rejects:
            self.conn.executemany(
                "INSERT INTO import_rejects (import_id, file, line, field, reason, raw) VALUES (?, ?, ?, ?, ?, ?)",
                ((self.import_id, self.file, *row) for row in rejects.iter_rows()),
            )

    # -- orders --

    _ORDER_UPSERT = (
        " ON CONFLICT (order_id) DO UPDATE SET customer = excluded.customer, placed_at = excluded.placed_at, "
        "total_cents = excluded.total_cents, discount_cents = excluded.discount_cents, "
        "refunded_cents = excluded.refunded_cents, status = excluded.status, category = excluded.category, "
        "import_id = excluded.import_id "
        "WHERE orders.customer IS NOT excluded.customer OR orders.placed_at IS NOT excluded.placed_at "
        "OR orders.total_cents IS NOT excluded.total_cents OR orders.discount_cents IS NOT excluded.discount_cents "
        "OR orders.refunded_cents IS NOT excluded.refunded_cents OR orders.status IS NOT excluded.status "
        "OR orders.category IS NOT excluded.category"
    )

    def _land_orders(self, good: pl.DataFrame, bytes_done: int, resolution: "_Resolution") -> None:
        self._write_customers(resolution)
        expected = self.estimate_total(bytes_done)
        if self.batches == 1 and expected >= DROP_INDEX_MIN_ROWS:
            if self.store.scalar("SELECT count(*) FROM orders") < expected:
                self._drop_customer_index()
        if self.stager is not None:
            # With a stager, the reading thread resolved this batch and wrote it for the child.
            part = self.stager.put(resolution.staged)
            # The part before is written by now, or nearly: land it while this one is.
            self._land_staged_orders(below=part)
            return
        before = self.store.scalar("SELECT coalesce(max(id), 0) FROM orders")
        changed = _insert_rows(
            self.conn, f"INSERT INTO orders ({', '.join(ORDER_COLUMNS)}, import_id) VALUES ",
            _order_rows(good, resolution.ids), constants=(self.import_id,), tail=self._ORDER_UPSERT,
        )
        self._count_orders(before, changed, good.height)

    def _count_orders(self, before: int, changed: int, rows: int) -> None:
        # New rows take the next row ids, so the highest id tells inserts from updates.
        inserted = self.store.scalar("SELECT coalesce(max(id), 0) FROM orders") - before
        self.inserted += inserted
        self.updated += changed - inserted
        self.unchanged += rows - changed

    def _land_staged_orders(self, below: int = PARTS + 1) -> None:
        """Land the staged parts numbered below ``below`` not landed yet, each with one statement.

        A part is attached inside the import's transaction (and detached
        after it, see ``_detach``); the last part may take several batches,
        so it is landed only at the end.
        """
        if self.stager is None:
            return
        for part in sorted(self.stager.parts):
            if part >= below or part in self.landed:
                continue
            staged = self.stager.ready(part)
            self.landed.add(part)
            schema = f"{STAGE}{part}"
            self.conn.execute(f"ATTACH DATABASE ? AS {schema}", (str(self.stager.part_path(part)),))
            columns = ", ".join(ORDER_COLUMNS)
            before = self.store.scalar("SELECT coalesce(max(id), 0) FROM orders")
            with _checks_off(self.conn):
                # WHERE true: without it SQLite would read ON CONFLICT as part of the SELECT's join.
                changed = self.conn.execute(
                    f"INSERT INTO orders ({columns}, import_id) SELECT {columns}, {int(self.import_id)} "
                    f"FROM {schema}.{STAGED} WHERE true" + self._ORDER_UPSERT
                ).rowcount
            self._count_orders(before, changed, staged)

    def land_finished_parts(self) -> None:
        """Land the staged parts the child has finished and no batch will add to, without waiting.

        Called while the writer would otherwise wait for the next batch: a part
        lands as soon as it is written, not when the batch after it comes.
        """
        finished = self.stager.finished()
        if finished:  # in order: the child writes the parts one after another
            self._land_staged_orders(below=finished[-1] + 1)

    def _drop_customer_index(self) -> None:
        """For an import larger than the table: one rebuild beats a million inserts in random order."""
        sql = self.store.scalar("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = 'orders_customer'")
        if sql:
            self.conn.execute("DROP INDEX orders_customer")
            self.dropped_index = sql

    def _write_customers(self, resolution: "_Resolution") -> None:
        """Create the customers a batch met first, and move earlier the signups it found earlier."""
        new = resolution.new
        if new.height:
            # In id order, each row takes the id the resolver gave it: SQLite numbers a new row
            # max(id) + 1, and the transaction holds the write lock (cheaper than naming the id).
            _insert_rows(
                self.conn,
                "INSERT INTO customers (customer_id, name, email, phone, region, signed_up_at, accepts_email, "
                "created_at, source) VALUES ",
                new.select("key", "name", "email", "phone", "region", "signed_up_at", "accepts_email_v"),
                constants=(self.now, self.source),
            )
            if self.store.scalar("SELECT max(id) FROM customers") != new["id"][-1]:
                raise StoreError("customers were numbered out of step with this import; nothing was imported")
            self.created += new.height
            opted = new.filter(pl.col("accepts_email_v") != 0)
            self._consent_events(opted["id"].to_list(), "email", opted["accepts_email_v"].to_list())
        if resolution.earlier.height:
            self.conn.executemany("UPDATE customers SET signed_up_at = ? WHERE id = ?",
                                  resolution.earlier.select("signed_up_at", "id").iter_rows())

    def _consent_events(self, customers: list[int], channel: str, states: list[int]) -> None:
        """Consent an import set or changed: appended to the history, source import:<file>."""
        self.conn.executemany(
            "INSERT INTO consent_events (customer, channel, state, source, at) VALUES (?, ?, ?, ?, ?)",
            ((customer, channel, state, self.source, self.now) for customer, state in zip(customers, states)),
        )

    # -- events --

    def _land_events(self, good: pl.DataFrame) -> pl.DataFrame:
        """Insert events of known customers; the others come back as rejects."""
        keys = good.select(pl.col("customer_id").alias("key"), pl.lit(0, dtype=pl.Int32).alias("by_email")).unique()
        known = _known_customers(self.conn, keys.sort("key")).select(pl.col("key").alias("customer_id"),
                                                               pl.col("id").alias("customer"))
        resolved = good.join(known, on="customer_id", how="left", maintain_order="left")
        rows = resolved.filter(pl.col("customer").is_not_null()).select(
            "customer", "kind_v", "at_v", pl.col("category").fill_null("")
        ).sort("customer", "kind_v", "at_v", "category")
        inserted = _insert_rows(
            self.conn, "INSERT INTO events (customer, kind, at, category, import_id) VALUES ", rows,
            constants=(self.import_id,), tail=" ON CONFLICT DO NOTHING",
        )
        self.inserted += inserted
        self.unchanged += rows.height - inserted
        return resolved.filter(pl.col("customer").is_null()).select(
            LINE, pl.lit(self.plan.labels["customer_id"]).alias("_field"),
            pl.format("unknown customer '{}': import customers or orders first", pl.col("customer_id"))
            .alias("_reason"),
            RAW,
        )

    # -- customers --

    _CUSTOMER_COLUMNS = ("name", "email", "phone", "region", "timezone", "signed_up_at",
                         "accepts_email", "accepts_sms", "accepts_push", "accepts_wecom")

    def _land_customers(self, good: pl.DataFrame) -> None:
        """Insert new customers; fill and change known ones where the file has a value; log consent changes."""
        columns = self._CUSTOMER_COLUMNS
        incoming = good.select(
            pl.col("_key").alias("key"), pl.col("customer_id").is_null().cast(pl.Int32).alias("by_email"),
            "name", "email", "phone", "region", "timezone", pl.col("signed_up_at_v").alias("signed_up_at"),
            *[pl.col(f"accepts_{channel}_v").alias(f"accepts_{channel}") for channel in CHANNELS],
        )
        old = self._existing_customers(incoming.select("key", "by_email").sort("by_email", "key"))
        merged = incoming.join(old, on=["key", "by_email"], how="left", suffix="_old", maintain_order="left")
        # A blank cell keeps what the store knows, and a file never lifts an opt-out: a stale
        # export must not undo what a customer asked for (a person records opting back in).
        merged = merged.with_columns([pl.coalesce(pl.col(name), pl.col(f"{name}_old")).alias(name) for name in columns])
        merged = merged.with_columns([
            pl.when(pl.col(f"accepts_{channel}_old") == -1).then(-1).otherwise(pl.col(f"accepts_{channel}"))
            .alias(f"accepts_{channel}") for channel in CHANNELS
        ])
        is_new = pl.col("id").is_null()
        differs = pl.any_horizontal([pl.col(name).ne_missing(pl.col(f"{name}_old")) for name in columns])
        new = merged.filter(is_new).sort("key")
        changed = merged.filter(~is_new & differs)
        if new.height:
            # Sorted by key, new rows take the next row ids in order (see _create_customers).
            base = self.store.scalar("SELECT coalesce(max(id), 0) FROM customers")
            new = new.with_columns(pl.int_range(base + 1, base + 1 + new.height, dtype=pl.Int64).alias("id"))
            _insert_rows(
                self.conn,
                "INSERT INTO customers (customer_id, name, email, phone, region, timezone, signed_up_at, "
                "accepts_email, accepts_sms, accepts_push, accepts_wecom, created_at, source) VALUES ",
                new.select("key", *columns[:6], *[pl.col(f"accepts_{channel}").fill_null(0) for channel in CHANNELS]),
                constants=(self.now, self.source),
            )
        if changed.height:
            with _checks_off(self.conn):
                self.conn.executemany(
                    "UPDATE customers SET name = ?, email = ?, phone = ?, region = ?, timezone = ?, "
                    "signed_up_at = ?, accepts_email = ?, accepts_sms = ?, accepts_push = ?, accepts_wecom = ? "
                    "WHERE id = ?",
                    changed.select(*columns, "id").iter_rows(),
                )
        for channel in CHANNELS:
            name = f"accepts_{channel}"
            moved = pl.concat([
                new.filter(pl.col(name).fill_null(0) != 0).select("id", name),
                changed.filter(pl.col(name).ne_missing(pl.col(f"{name}_old"))).select("id", name),
            ]).sort("id")
            self._consent_events(moved["id"].to_list(), channel, moved[name].to_list())
        self.inserted += new.height
        self.updated += changed.height
        self.unchanged += good.height - new.height - changed.height

    def _existing_customers(self, keys: pl.DataFrame) -> pl.DataFrame:
        """What the store knows of these customers, by customer_id, or for email-only rows by email."""
        schema = {"key": pl.String, "by_email": pl.Int32, "id": pl.Int64, "name": pl.String, "email": pl.String,
                  "phone": pl.String, "region": pl.String, "timezone": pl.String, "signed_up_at": pl.Int64,
                  **{f"accepts_{channel}": pl.Int64 for channel in CHANNELS}}
        known = _known_customers(self.conn, keys, up_to=self.customers_before)
        if known.height == 0:
            return pl.DataFrame(schema=schema)
        conn = self.conn
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_ids (id INTEGER PRIMARY KEY)")
        conn.execute("DELETE FROM temp.import_ids")
        conn.executemany("INSERT OR IGNORE INTO temp.import_ids (id) VALUES (?)",
                         ((id_,) for id_ in known["id"].sort().to_list()))
        found = conn.execute(
            f"SELECT c.id, {', '.join('c.' + name for name in self._CUSTOMER_COLUMNS)} "
            "FROM temp.import_ids i JOIN customers c ON c.id = i.id"
        ).fetchall()
        conn.execute("DELETE FROM temp.import_ids")
        details = pl.DataFrame(found, schema={name: dtype for name, dtype in schema.items()
                                              if name not in ("key", "by_email")}, orient="row")
        return known.join(details, on="id", how="left").select(list(schema))

    # -- the end --

    def finish(self, *, strict: bool, dry_run: bool) -> ImportResult:
        """Say what happened; if it is to be kept, rebuild what was set aside, record the import, audit it.

        A result without an import_id is rolled back by the caller (a dry
        run, or a strict refusal), which also restores what was set aside.
        """
        if self.rows == 0:  # only blank lines below the header
            raise InputError(f"{self.table.name}: has a header but no rows")
        self._land_staged_orders()
        kept = not dry_run and not (strict and self.rejected)
        if not kept:
            status = "refused" if strict and self.rejected else "dry-run"
        elif self.rejected == self.rows:
            status = "refused"
        else:
            status = "partial" if self.rejected else "landed"
        result = ImportResult(
            import_id=self.import_id if kept else None, kind=self.kind, file=self.file, format=self.plan.format,
            encoding=self.table.encoding, rows=self.rows, inserted=self.inserted, updated=self.updated,
            unchanged=self.unchanged, rejected=self.rejected, customers_created=self.created,
            rejects=self.rejects, status=status,
        )
        if not kept:
            return result
        if self.dropped_index:
            with _sorting_in_parallel(self.conn):
                self.conn.execute(self.dropped_index)
        for table in ("import_keys", "import_ids"):
            self.conn.execute(f"DROP TABLE IF EXISTS temp.{table}")
        counts = {"rows": self.rows, "inserted": self.inserted, "updated": self.updated,
                  "unchanged": self.unchanged, "rejected": self.rejected, "customers_created": self.created}
        self.conn.execute(
            "UPDATE imports SET finished_at = ?, rows = ?, inserted = ?, updated = ?, unchanged = ?, "
            "rejected = ?, customers_created = ?, status = ? WHERE id = ?",
            (self.now, *counts.values(), status, self.import_id),
        )
        record(self.store, actor=self.actor, action=f"import.{self.kind}", target=self.file, now=self.now,
               details={"import_id": self.import_id, "format": self.plan.format, "status": status, **counts})
        return result


@dataclass(frozen=True)
class _Resolution:
    """A batch's orders with their customers: ids per row, customers to create, signups to move earlier."""

    ids: pl.Series
    new: pl.DataFrame  # id, key, name, email, phone, region, signed_up_at, accepts_email_v
    earlier: pl.DataFrame  # id, signed_up_at
    staged: StagedBatch | None = None  # the orders, written for the stager


_BOTH_KINDS = pl.DataFrame({"by_email": [0, 1]}, schema={"by_email": pl.Int32})
_NEW_DETAILS = {"name": pl.String, "email": pl.String, "phone": pl.String, "region": pl.String,
                "accepts_email_v": pl.Int64}


class _CustomerResolver:
    """Finds each order's customer, batch after batch, and files the customers nobody knows yet.

    A customer is a (key, by_email) pair: the customer_id, or for a row with
    only an email, the email. Pairs are looked up among the customers this
    import met already (a customer it filed under a key answers for that key
    either way), then (by customer_id, or for an email the oldest customer
    with it) among those the store had before the import; the rest are new,
    numbered on from the store's highest id in key order.

    The answer does not depend on where the file's batches are cut, with one
    exception: an email-only row that the store matches by email, met in a
    batch before the one that files a new customer whose customer_id is that
    email, keeps the store's match (a re-import then moves it to the new
    customer, as the store answers by customer_id first).

    It writes nothing, so it can run on the reading thread, a batch ahead of
    the writer, asking the store through a connection of its own (the
    import's transaction is still open, and its writes are not needed: what
    it created is in ``resolved``).

    Grouping and joining a million such strings is most of the work, so the
    pairs go by a 64-bit hash instead, and every match is checked against the
    strings: two pairs sharing a hash (about one import in ten million)
    switch the import back to joining on the strings themselves.
    """

    def __init__(self, conn: "sqlite3.Connection", before: int) -> None:
        self.conn = conn  # to ask about customers with ids up to ``before``
        self.before = before
        self.next_id = before + 1
        # Customers this import found or created (with the signup it gave them).
        self.resolved = pl.DataFrame(
            schema={HASH: pl.UInt64, "key": pl.String, "by_email": pl.Int32, "id": pl.Int64, "signed_up_at": pl.Int64}
        )
        self.pair = [HASH]  # what a customer is joined on
        # The pairs the store answered: the only ones a key this import files can have met already.
        self.from_store = pl.DataFrame(schema={"key": pl.String, "by_email": pl.Int32})

    def resolve(self, good: pl.DataFrame) -> _Resolution:
        details = [name for name in _NEW_DETAILS if good[name].null_count() < good.height]
        keyed = good.select(
            pl.coalesce("customer_id", "email").alias("key"),
            pl.col("customer_id").is_null().cast(pl.Int32).alias("by_email"),
            "placed_at_v", *details,
        ).with_columns(_PAIR_HASH)
        resolution = self._resolve(keyed, details)
        if resolution is None:  # a shared hash: once more, by the strings
            self.pair = ["key", "by_email"]
            resolution = self._resolve(keyed, details)
        return resolution

    def _resolve(self, keyed: pl.DataFrame, details: list[str]) -> _Resolution | None:
        """The resolution with customers joined on ``self.pair``; None if two pairs share a hash."""
        pair = self.pair
        hashed = pair == [HASH]
        # One row per customer: their first order here, and the first value of each detail.
        customers = keyed.group_by(pair).agg(
            *[pl.col(name).first() for name in (HASH, "key", "by_email") if name not in pair],
            pl.col("placed_at_v").min().alias("signed_up_at"),
            *[pl.col(name).drop_nulls().first() for name in details],
            *([pl.col("key").n_unique().alias("_keys"), pl.col("by_email").n_unique().alias("_kinds")]
              if hashed else []),
        )
        if hashed:
            if customers.select((pl.col("_keys").max() > 1) | (pl.col("_kinds").max() > 1)).item():
                return None
            customers = customers.drop("_keys", "_kinds")
        unseen = customers
        known = pl.DataFrame(schema={HASH: pl.UInt64, "key": pl.String, "by_email": pl.Int32, "id": pl.Int64})
        earlier = pl.DataFrame(schema={"id": pl.Int64, "signed_up_at": pl.Int64})
        if self.resolved.height:  # customers an earlier batch found or created
            met = customers.join(self.resolved, on=pair, how="inner", suffix="_before")
            if hashed and not met.select(((pl.col("key") == pl.col("key_before"))
                                          & (pl.col("by_email") == pl.col("by_email_before"))).all()).item():
                return None
            # A customer created in an earlier batch may have an earlier order in this one (under
            # either of its pairs): its signup moves, for every pair that leads to it.
            moved = met.filter(pl.col("signed_up_at") < pl.col("signed_up_at_before"))
            if moved.height:
                earlier = moved.group_by("id").agg(pl.col("signed_up_at").min()).sort("id")
                self.resolved = self.resolved.join(earlier, on="id", how="left", suffix="_moved").with_columns(
                    pl.coalesce("signed_up_at_moved", "signed_up_at").alias("signed_up_at")
                ).select(self.resolved.columns)
            known = met.select(known.columns)
            unseen = customers.join(known, on=pair, how="anti")
        if self.before:  # ask the store about the keys this import has not met
            looked_up = _known_customers(self.conn, unseen.select("key", "by_email").sort("by_email", "key"),
                                         up_to=self.before).with_columns(_PAIR_HASH)
            # An email that is also a customer_id this batch files new leads to that customer (the
            # store names a customer_id match first), as it does in any later batch.
            filing = unseen.filter(pl.col("by_email") == 0).join(looked_up, on=["key", "by_email"], how="anti")
            looked_up = looked_up.filter(~((pl.col("by_email") == 1) & pl.col("key").is_in(filing["key"].implode())))
            known = pl.concat([known, looked_up.select(known.columns)])
            unseen = unseen.join(looked_up, on=["key", "by_email"], how="anti")
            self.resolved = pl.concat([self.resolved, looked_up.select(
                *self.resolved.columns[:-1], pl.lit(None, dtype=pl.Int64).alias("signed_up_at"))])
            self.from_store = pl.concat([self.from_store, looked_up.select(self.from_store.columns)])
        unseen, new = self._file(unseen)
        if new.height:
            # A customer filed under a key is the one later rows name by that customer_id, and
            # the one an email-only row with that email finds first, as the store answers.
            # (A pair an earlier batch resolved otherwise keeps its answer: the store's, as a
            # key filed before has both its pairs met, and so is not filed again.)
            filed = new.select("key", "id", "signed_up_at").join(_BOTH_KINDS, how="cross")
            if self.from_store.height:
                filed = filed.join(self.from_store, on=["key", "by_email"], how="anti")
            self.resolved = pl.concat([self.resolved, filed.with_columns(_PAIR_HASH).select(self.resolved.columns)])
            known = pl.concat([known, unseen.select(known.columns)])
        ids = keyed.select(pair).join(known.select(*pair, "id"), on=pair, how="left", maintain_order="left")["id"]
        return _Resolution(ids=ids, new=new, earlier=earlier)

    def _file(self, unseen: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Number the unseen pairs' keys on, in key order; say each pair's id and the customers to create.

        An id-keyed and an email-keyed pair can share a key: it is filed
        once, with the id-keyed one's details. Signup is the key's first order here.
        """
        for name, dtype in _NEW_DETAILS.items():
            if name not in unseen.columns:
                unseen = unseen.with_columns(pl.lit(None, dtype=dtype).alias(name))
        # Sorted, a key's pairs sit together, the id-keyed one (by_email 0) first.
        unseen = unseen.sort("key", "by_email")
        key, signed_up_at = pl.col("key"), pl.col("signed_up_at")
        starts = (key != key.shift(1)).fill_null(True)
        shares = (key == key.shift(-1)).fill_null(False)
        unseen = unseen.with_columns(
            (self.next_id - 1 + starts.cum_sum().cast(pl.Int64)).alias("id"),
            pl.when(shares).then(pl.min_horizontal(signed_up_at, signed_up_at.shift(-1))).otherwise(signed_up_at)
            .alias("signed_up_at"),
        )
        filed = unseen.filter(starts).with_columns(pl.col("accepts_email_v").fill_null(0))
        self.next_id += filed.height
        return unseen, filed.select("id", "key", "name", "email", "phone", "region", "signed_up_at",
                                    "accepts_email_v")


def _known_customers(conn: "sqlite3.Connection", keys: pl.DataFrame, up_to: int | None = None) -> pl.DataFrame:
    """Store ids for (key, by_email) pairs: by customer_id, or for emails the oldest with that email.

    ``up_to`` limits the answer to customers with ids up to it (those that
    were there before an import, whichever connection asks).
    """
    schema = {"key": pl.String, "by_email": pl.Int32, "id": pl.Int64}
    if keys.height == 0:
        return pl.DataFrame(schema=schema)
    limit = "" if up_to is None else f" AND id <= {int(up_to)}"
    joined_limit = "" if up_to is None else f" AND c.id <= {int(up_to)}"
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS import_keys (key TEXT NOT NULL, by_email INTEGER NOT NULL)")
    conn.execute("DELETE FROM temp.import_keys")
    _insert_rows(conn, "INSERT INTO temp.import_keys (key, by_email) VALUES ", keys.select("key", "by_email"))
    found = conn.execute(
        "SELECT k.key, k.by_email, c.id FROM temp.import_keys k JOIN customers c ON c.customer_id = k.key "
        f"WHERE k.by_email = 0{joined_limit} "
        "UNION ALL SELECT key, by_email, id FROM ("
        "  SELECT k.key, k.by_email, coalesce("
        f"    (SELECT id FROM customers WHERE customer_id = k.key{limit}),"
        f"    (SELECT min(id) FROM customers WHERE email = k.key{limit})) AS id "
        "  FROM temp.import_keys k WHERE k.by_email = 1"
        ") WHERE id IS NOT NULL"
    ).fetchall()
    conn.execute("DELETE FROM temp.import_keys")
    return pl.DataFrame(found, schema=schema, orient="row")


# --- writing rows --------------------------------------------------------------------------


def _detach(conn: "sqlite3.Connection") -> None:
    """Let go of the staging databases (only possible once the transaction has ended)."""
    for row in conn.execute("PRAGMA database_list").fetchall():
        if row[1].startswith(STAGE):
            conn.execute(f"DETACH DATABASE {row[1]}")


@contextmanager
def _bulk_writes(conn: "sqlite3.Connection") -> Iterator[None]:
    """A large page cache and no per-row foreign key checks, for one import; both restored after.

    Every customer an imported row points at was looked up or created by the
    import itself, in its transaction; checking each reference again costs
    1.5 s per million orders. (Switching foreign keys is a no-op inside an
    open transaction, so an import nested in one keeps them checked.)
    """
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    keys = conn.execute("PRAGMA foreign_keys").fetchone()[0]
    conn.execute(f"PRAGMA cache_size = {-IMPORT_CACHE_KIB}")
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
        conn.execute(f"PRAGMA foreign_keys = {int(keys)}")


@contextmanager
def _sorting_in_parallel(conn: "sqlite3.Connection") -> Iterator[None]:
    """Let SQLite sort an index build in pieces on two threads, then merge them: ~40% faster.

    The sorter keeps everything in one piece, sorted on one thread, while
    the page cache is larger than the keys; a small cache for the length of
    the statement makes it cut them into pieces its helper threads sort.
    """
    cache = conn.execute("PRAGMA cache_size").fetchone()[0]
    threads = conn.execute("PRAGMA threads").fetchone()[0]
    conn.execute(f"PRAGMA threads = {SORT_THREADS}")
    conn.execute(f"PRAGMA cache_size = {-SORT_PIECE_KIB}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA cache_size = {int(cache)}")
        conn.execute(f"PRAGMA threads = {int(threads)}")


@contextmanager
def _checks_off(conn: "sqlite3.Connection") -> Iterator[None]:
    """Skip CHECK constraints for rows validated before they got here.

    SQLite evaluates ``status IN (...)`` by building a small table for every
    row: 3.4 s per million orders, more than the insert itself.
    """
    conn.execute("PRAGMA ignore_check_constraints = ON")
    try:
        yield
    finally:
        conn.execute("PRAGMA ignore_check_constraints = OFF")


def _insert_rows(conn: "sqlite3.Connection", head: str, rows: pl.DataFrame, *, constants: tuple = (),
                 tail: str = "") -> int:
    """Run ``head (…), (…), … tail`` over ``rows`` with ``constants`` appended to each; return rows changed.

    Many rows per statement keep the per-row cost inside SQLite rather than
    in Python's statement loop; rows become Python values a slice at a time,
    and a column that is blank all through a slice is written as NULL
    instead of being bound row by row.
    """
    changed = 0
    with _checks_off(conn):
        for start in range(0, rows.height, WRITE_SLICE):
            part = rows.slice(start, WRITE_SLICE)
            # The first column (the row's key) is always bound, so there is something to bind.
            bound = [column for position, column in enumerate(part.columns)
                     if position == 0 or part[column].null_count() < part.height]
            width = len(bound)
            one = "(" + ", ".join(["?" if column in bound else "NULL" for column in part.columns]
                                  + [_literal(value) for value in constants]) + ")"
            flat = list(chain.from_iterable(zip(*(part[column].to_list() for column in bound))))
            whole = part.height // STATEMENT_ROWS * STATEMENT_ROWS * width
            step = STATEMENT_ROWS * width
            if whole:
                sql = head + ", ".join([one] * STATEMENT_ROWS) + tail
                changed += conn.executemany(sql, (flat[at:at + step] for at in range(0, whole, step))).rowcount
            if whole < len(flat):
                rest = (len(flat) - whole) // width
                changed += conn.execute(head + ", ".join([one] * rest) + tail, flat[whole:]).rowcount
    return changed


def _literal(value: object) -> str:
    """A constant of this import (its id, its time, its source) written into the statement once."""
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
