"""What the console browses: ready-to-show slices of the saved reading.

The console is a thin shell; every set it shows is computed here, with
polars, from the saved reading (``core.refresh.current_reading``) and the
columnar copy of the customers table (``core.fastread``), so the same
answers are testable without a terminal:

* :func:`directory` — the whole reading with each customer's id, name and
  region beside it, loaded once per refresh and then sliced in memory;
* :func:`members` — one segment's members, filtered and sorted, and
  :func:`member_rows` — the same rows shaped for a table (Arrow-ready);
* :func:`moved_members` — who moved into or out of a segment in the latest
  refresh, and :func:`moved_flows` — how many from where to where;
* :func:`lookup` — search results for a person at the keyboard, masked for
  the roles that see contacts masked.

Every frame is sorted explicitly (ties broken by the customer's row id)
before it is returned: ``group_by`` and joins do not keep order, and what a
person sees must not change between two identical requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import polars as pl

from core import customers as customers_mod
from core import fastread, segments
from core.contacts import mask_email, mask_phone
from core.customers import LOOKUP_COLUMNS, Match
from core.errors import Conflict, NotFound
from core.refresh import current_reading, latest_refresh

if TYPE_CHECKING:
    from core.config import Config
    from core.store import Store
    from core.users import User

# The reading's columns a member list needs (the rest stay in the snapshot).
_READING_COLUMNS = (
    "customer", "segment", "lifecycle", "r_score", "f_score", "m_score", "recency_days", "last_day",
    "frequency", "monetary", "aov", "tags", "churn_risk", "clv",
)

# name -> (column, descending). Ties are always broken by the customer's row id.
SORTS: dict[str, tuple[str, bool]] = {
    "spend": ("monetary", True),
    "recency": ("recency_days", False),
    "orders": ("frequency", True),
    "churn": ("churn_risk", True),
    "value": ("clv", True),
    "name": ("name", False),
    "id": ("customer_id", False),
}
SORT_ORDER = tuple(SORTS)

@dataclass(frozen=True)
class Directory:
    """The latest reading, one row per customer, with identity columns beside it.

    ``frame`` is never modified after it is built; slices of it are new frames.
    """

    refresh_id: int
    as_of: str
    model: str
    frame: pl.DataFrame
    cn8_split: segments.Cn8Split | None

    @property
    def population(self) -> int:
        return self.frame.height


def directory(store: "Store") -> Directory:
    """Load the latest reading and join each customer's id, name, region and manual tags to it."""
    return with_manual_tags(store, reading_with_names(store))


def with_manual_tags(store: "Store", found: Directory) -> Directory:
    """``found`` with the store's manual tags as they are now among each customer's tags."""
    from core.audience import manual_tags
    from core.tags import with_manual

    return replace(found, frame=with_manual(found.frame, manual_tags(store)))


def reading_with_names(store: "Store") -> Directory:
    """The latest reading with each customer's id, name and region (its rule tags only)."""
    latest, reading = current_reading(store)
    people = fastread.load(store, "customers").select(
        pl.col("id").cast(pl.Int32).alias("customer"),
        "customer_id",
        "name",
        pl.col("region").cast(pl.String),
    )
    frame = reading.select(_READING_COLUMNS).join(people, on="customer", how="left").sort("customer")
    split = latest["cut_points"].get("cn8_split")
    return Directory(
        refresh_id=latest["id"],
        as_of=latest["as_of"],
        model=latest["model"],
        frame=frame,
        cn8_split=segments.Cn8Split(**split) if split else None,
    )


def in_model(found: Directory, model: str, config: "Config") -> pl.DataFrame:
    """The directory's frame with segments of ``model`` (the reading's own, or recomputed)."""
    if model == found.model:
        return found.frame
    return found.frame.with_columns(segment=segments.assign(found.frame, model, config, found.cn8_split))


def members(frame: pl.DataFrame, segment: str, *, text: str = "", sort: str = "spend",
            descending: bool | None = None) -> pl.DataFrame:
    """One segment's members, filtered by ``text`` (see :func:`text_filter`) and sorted."""
    selected = frame.filter(pl.col("segment") == segment)
    return sort_members(filter_members(selected, text), sort, descending)


def filter_members(frame: pl.DataFrame, text: str) -> pl.DataFrame:
    """Keep the rows that match every word of ``text`` (see :func:`text_filter`)."""
    condition = text_filter(text)
    return frame if condition is None else frame.filter(condition)


def text_filter(text: str) -> pl.Expr | None:
    """Every word must match: an id or name prefix, a region, a stage or a tag.

    ``r5``, ``f1``, ``m3`` match a score; ``tag:NAME`` a tag exactly.
    Case does not matter. Empty text matches everything (``None``).
    """
    words = text.casefold().split()
    if not words:
        return None
    conditions = []
    for word in words:
        if len(word) == 2 and word[0] in "rfm" and word[1] in "12345":
            conditions.append(pl.col(f"{word[0]}_score") == int(word[1]))
            continue
        if word.startswith("tag:") and len(word) > 4:
            conditions.append(pl.col("tags").list.eval(pl.element().str.to_lowercase() == word[4:]).list.any())
            continue
        conditions.append(
            pl.col("customer_id").str.to_lowercase().str.starts_with(word).fill_null(False)
            | pl.col("name").str.to_lowercase().str.contains(word, literal=True).fill_null(False)
            | (pl.col("region").str.to_lowercase() == word).fill_null(False)
            | (pl.col("lifecycle") == word).fill_null(False)
            | pl.col("tags").list.eval(pl.element().str.contains(word, literal=True)).list.any().fill_null(False)
        )
    return pl.all_horizontal(conditions)


def sort_members(frame: pl.DataFrame, sort: str = "spend", descending: bool | None = None) -> pl.DataFrame:
    """Sort by one of :data:`SORTS`; missing values last, ties by the customer's row id."""
    column, default_descending = SORTS[sort]
    descending = default_descending if descending is None else descending
    return frame.sort([column, "customer"], descending=[descending, False], nulls_last=True)


def member_rows(frame: pl.DataFrame, *, language: str = "en") -> pl.DataFrame:
    """The rows of a member table: id, name, region, scores, facts, stage, churn and tags.

    ``spend`` is a decimal in currency units (it sorts and aligns as a
    number); ``churn`` a whole percentage; ``tag_list`` the tags joined.
    """
    stage = pl.col("lifecycle")
    if language == "zh":
        from core.lifecycle import ZH

        stage = stage.replace(ZH)
    return frame.select(
        "customer_id",
        pl.col("name").fill_null(""),
        pl.col("region").fill_null(""),
        "r_score", "f_score", "m_score", "recency_days", "frequency",
        (pl.col("monetary").cast(pl.Decimal(20, 2)) / 100).cast(pl.Decimal(18, 2)).alias("spend"),
        stage.alias("lifecycle"),
        (pl.col("churn_risk") * 100).round(0).cast(pl.Int16).alias("churn"),
        pl.col("tags").list.join(", ").fill_null("").alias("tag_list"),
    )


# --- who moved ---------------------------------------------------------------

def moved_members(store: "Store", segment: str, direction: str) -> pl.DataFrame:
    """Who moved into (``direction="in"``) or out of a segment in the latest refresh.

    One row per move: customer (row id), customer_id, name, from_segment
    (``None`` for a customer new to the reading), to_segment, as_of.
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
    latest = latest_refresh(store)
    if latest is None:
        raise Conflict("there is no reading yet", hint="Run `tierdesk refresh` first.")
    column = "e.to_segment" if direction == "in" else "e.from_segment"
    rows = store.conn.execute(
        "SELECT e.customer, c.customer_id, c.name, e.from_segment, e.to_segment, e.as_of "
        "FROM tier_events AS e JOIN customers AS c ON c.id = e.customer "
        f"WHERE e.refresh_id = ? AND e.model = ? AND {column} = ?",
        (latest["id"], latest["model"], segment),
    ).fetchall()
    frame = pl.DataFrame(
        rows,
        schema={"customer": pl.Int32, "customer_id": pl.String, "name": pl.String, "from_segment": pl.String,
                "to_segment": pl.String, "as_of": pl.String},
        orient="row",
    )
    return frame.sort(["customer_id", "customer"])


def moved_rows(moves: pl.DataFrame, *, language: str = "en") -> pl.DataFrame:
    """The rows of a moves table: id, name, from, to, as of (segment names in ``language``)."""
    def named(column: str) -> pl.Expr:
        expr = pl.col(column)
        if language == "zh":
            expr = expr.replace(segments.ZH)
        return expr.fill_null("(new)")

    return moves.select(
        "customer_id", pl.col("name").fill_null(""), named("from_segment"), named("to_segment"), "as_of",
    )


def moved_flows(moves: pl.DataFrame, direction: str) -> list[tuple[str | None, int]]:
    """How many moved from each segment (``in``) or to each segment (``out``), largest first."""
    other = "from_segment" if direction == "in" else "to_segment"
    counted = moves.group_by(other).len().sort(["len", other], descending=[True, False], nulls_last=True)
    return [(name, count) for name, count in counted.iter_rows()]


# --- finding a customer --------------------------------------------------------

@dataclass(frozen=True)
class Found:
    """One search result as a person at the keyboard may see it."""

    match: Match
    email: str
    phone: str
    segment: str | None
    lifecycle: str | None


def lookup(store: "Store", user: "User", query: str, limit: int = 50) -> list[Found]:
    """Customers matching ``query`` (id, email, phone, name prefix), masked for ``user``."""
    matches = customers_mod.find(store, query, limit=limit)
    if not matches:
        return []
    marks = ", ".join("?" * len(matches))
    state = {
        row[0]: (row[1], row[2])
        for row in store.conn.execute(
            f"SELECT customer, segment, lifecycle FROM customer_state WHERE customer IN ({marks})",
            tuple(match.id for match in matches),
        )
    }
    masked = user.masks_contacts
    return [
        Found(
            match=match,
            email=(mask_email(match.email) if masked else match.email) or "",
            phone=(mask_phone(match.phone) if masked else match.phone) or "",
            segment=state.get(match.id, (None, None))[0],
            lifecycle=state.get(match.id, (None, None))[1],
        )
        for match in matches
    ]


def match_by_id(store: "Store", customer: int) -> Match:
    """The customer with row id ``customer`` (as a member list knows them)."""
    row = store.conn.execute(f"SELECT {LOOKUP_COLUMNS} FROM customers WHERE id = ?", (customer,)).fetchone()
    if row is None:
        raise NotFound(f"no customer with row id {customer}")
    return Match(*row, matched_by="id")


def store_facts(store: "Store") -> dict[str, Any]:
    """Counts for an empty-looking console: customers, orders and whether a reading exists."""
    return {
        "customers": store.scalar("SELECT count(*) FROM customers"),
        "orders": store.scalar("SELECT count(*) FROM orders"),
        "refreshes": store.scalar("SELECT count(*) FROM refreshes"),
    }
