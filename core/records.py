"""The records of an import file: which column is which field, and which rows are good.

Everything here is pure polars over one batch of text records (no store),
so it can run on a worker thread while the previous batch is written. For
each record it parses the fields into typed values (``<field>_v`` columns),
names the record's first problem (``_field``, ``_reason``) and its identity
(``_key``: the order id, the customer, or the whole event), and rejects the
later of two records with the same identity, naming the first one's line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping
from zoneinfo import ZoneInfo, available_timezones

import numpy as np
import polars as pl

from core import cells, shopify
from core.csvread import FIELDS, LINE, RAW, Batch, Table, open_table, parquet_raw
from core.errors import InputError

KINDS = ("customers", "orders", "events")
FORMATS = ("auto", "csv", "parquet", "shopify")
ENCODINGS = ("auto", "utf-8", "gb18030")
CHANNELS = ("email", "sms", "push", "wecom")

FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "email", "phone", "name", "region", "timezone", "signed_up_at",
        "accepts_email", "accepts_sms", "accepts_push", "accepts_wecom",
    ),
    "orders": ("order_id", "customer_id", "email", "placed_at", "total", "discount", "refunded", "status", "category"),
    "events": ("customer_id", "kind", "at", "category"),
}
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (),
    "orders": ("placed_at", "total"),
    "events": ("customer_id", "kind", "at"),
}

# Column names each field is recognised by, compared lowercased with spaces,
# dots, hyphens and underscores alike; the field's own name always counts.
_CUSTOMER_ID = ("customer", "customerid", "cust_id", "client_id", "user_id", "userid", "member_id", "buyer_id",
                "客户id", "客户编号", "会员id", "会员编号", "用户id", "买家id", "买家会员名")
_CATEGORY = ("product_category", "product_type", "类目", "品类", "分类", "商品类目")
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "customer_id": _CUSTOMER_ID,
        "email": ("e_mail", "email_address", "mail", "邮箱", "电子邮箱", "电子邮件"),
        "phone": ("phone_number", "mobile", "mobile_phone", "tel", "telephone", "手机", "手机号", "手机号码", "电话",
                  "联系电话"),
        "name": ("full_name", "customer_name", "姓名", "客户姓名", "客户名称"),
        "region": ("province", "state", "country", "地区", "省份", "省"),
        "timezone": ("time_zone", "tz", "时区"),
        "signed_up_at": ("signup", "signup_date", "signed_up", "sign_up_date", "registered_at", "registration_date",
                         "join_date", "joined_at", "created_at", "注册时间", "注册日期"),
        "accepts_email": ("email_consent", "accepts_email_marketing", "accepts_marketing", "email_opt_in",
                          "email_subscribed"),
        "accepts_sms": ("sms_consent", "accepts_sms_marketing", "sms_opt_in"),
        "accepts_push": ("push_consent", "push_opt_in"),
        "accepts_wecom": ("wecom_consent", "wecom_opt_in"),
    },
    "orders": {
        "order_id": ("order", "order_no", "order_number", "orderid", "订单号", "订单编号", "订单id"),
        "customer_id": _CUSTOMER_ID,
        "email": ("e_mail", "email_address", "customer_email", "邮箱"),
        "placed_at": ("order_date", "ordered_at", "order_time", "created_at", "date", "datetime", "time", "timestamp",
                      "下单时间", "订单时间", "创建时间", "订单创建时间"),
        "total": ("amount", "order_total", "total_amount", "total_price", "grand_total", "revenue", "金额", "订单金额",
                  "实付金额", "总金额", "实付款", "买家实际支付金额"),
        "discount": ("discount_amount", "discounts", "优惠", "优惠金额", "折扣", "折扣金额"),
        "refunded": ("refund", "refund_amount", "refunded_amount", "退款", "退款金额"),
        "status": ("order_status", "financial_status", "订单状态", "状态"),
        "category": _CATEGORY,
    },
    "events": {
        "customer_id": _CUSTOMER_ID,
        "kind": ("event", "event_type", "type", "action", "行为", "事件", "事件类型"),
        "at": ("timestamp", "time", "occurred_at", "event_time", "date", "datetime", "created_at", "时间"),
        "category": _CATEGORY,
    },
}

ORDER_STATUSES = ("paid", "pending", "cancelled", "voided", "test", "staff")
# Other shops' words for our statuses (keys as cells.word_reading compares them).
# "refunded" is paid with the whole total refunded, unless a refunded column
# says how much.
STATUS_WORDS: dict[str, str] = {
    **{status: status for status in ORDER_STATUSES},
    **dict.fromkeys(("completed", "complete", "fulfilled", "success", "succeeded", "delivered", "shipped",
                     "processing", "partially_refunded", "partial_refund", "已付款", "已完成", "交易成功",
                     "已发货", "已收货"), "paid"),
    **dict.fromkeys(("authorized", "unpaid", "awaiting_payment", "on_hold", "partially_paid", "待付款",
                     "等待买家付款"), "pending"),
    **dict.fromkeys(("canceled", "cancel", "已取消", "交易关闭"), "cancelled"),
    **dict.fromkeys(("void", "expired", "failed"), "voided"),
    **dict.fromkeys(("refunded", "refund", "已退款", "退款成功"), "refunded"),
}
EVENT_KINDS = ("view", "cart", "favorite", "share", "review", "live", "community")
KIND_WORDS: dict[str, str] = {
    **{kind: kind for kind in EVENT_KINDS},
    **dict.fromkeys(("page_view", "pageview", "visit", "浏览"), "view"),
    **dict.fromkeys(("add_to_cart", "addtocart", "add_cart", "加购", "加入购物车"), "cart"),
    **dict.fromkeys(("favourite", "fav", "wishlist", "like", "收藏"), "favorite"),
    **dict.fromkeys(("分享",), "share"),
    **dict.fromkeys(("rating", "评价"), "review"),
    **dict.fromkeys(("live_view", "livestream", "直播"), "live"),
    **dict.fromkeys(("post", "forum", "社区"), "community"),
}
REJECT_COLUMNS = (LINE, "_field", "_reason", RAW)
# What the writer needs of a good row (the rest of a batch is let go early).
LANDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "orders": ("_key", "customer_id", "email", "name", "phone", "region", "accepts_email_v", "placed_at_v",
               "total_v", "discount_v", "refunded_v", "status_v", "category"),
    "customers": ("_key", "customer_id", "email", "name", "phone", "region", "timezone", "signed_up_at_v",
                  *(f"accepts_{channel}_v" for channel in CHANNELS)),
    "events": (LINE, RAW, "customer_id", "kind_v", "at_v", "category"),
}


@dataclass(frozen=True)
class ImportPlan:
    """A file that passed the file-level checks, and which column feeds which field."""

    kind: str
    table: Table
    format: str  # csv | parquet | shopify
    columns: dict[str, int]  # field -> the file's column index
    labels: dict[str, str]  # field -> the file's column name (to name it in rejects)


@dataclass(frozen=True)
class Prepared:
    """One batch after validation: rows to land, rows rejected so far, and where the file is."""

    good: pl.DataFrame
    rejects: pl.DataFrame  # REJECT_COLUMNS
    rows: int
    bytes_done: int
    originals: pl.DataFrame | None  # Parquet: the batch's cells, to show a late reject's row


# --- the plan ------------------------------------------------------------------------


def parse_mapping(items: Iterable[str]) -> dict[str, str]:
    """``["total=金额", ...]`` -> ``{"total": "金额"}``; refuses items without ``=``."""
    mapping: dict[str, str] = {}
    for item in items:
        target, sep, column = item.partition("=")
        if not sep or not target.strip() or not column.strip():
            raise InputError(f"--map {item!r}: expected FIELD=COLUMN, e.g. --map order_id=订单号")
        mapping[target.strip().lower()] = column.strip()
    return mapping


def plan_import(kind: str, path: Path | str, *, fmt: str = "auto", mapping: Mapping[str, str] | None = None,
                encoding: str = "auto") -> ImportPlan:
    """Check the file and the options without a store; file-level problems raise InputError."""
    if kind not in KINDS:
        raise InputError(f"unknown import kind {kind!r} (use {', '.join(KINDS)})")
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})")
    if encoding not in ENCODINGS:
        raise InputError(f"unknown encoding {encoding!r} (use {', '.join(ENCODINGS)})")
    mapping = dict(mapping or {})
    for target in mapping:
        if target not in FIELDS_BY_KIND[kind]:
            raise InputError(
                f"--map {target}=...: {kind} have no field {target!r} (fields: {', '.join(FIELDS_BY_KIND[kind])})"
            )
    table = open_table(path, "csv" if fmt == "shopify" else fmt, encoding)
    is_shopify = table.format == "csv" and shopify.is_export(table.columns)
    if fmt == "shopify" and not is_shopify:
        raise InputError(f"{table.name}: not a Shopify orders export (its header lacks "
                         f"{', '.join(shopify.MARKERS)})")
    if is_shopify and fmt in ("auto", "shopify"):
        if kind != "orders":
            raise InputError(f"{table.name}: a Shopify orders export; import it with `tierdesk import orders`")
        columns = shopify.source_columns(table, mapping)
        return ImportPlan(kind, table, "shopify", columns, shopify.labels(table, columns))
    columns = _match_columns(kind, table, mapping)
    unusable = dict(table.unusable)
    for index in sorted(set(columns.values()) & set(unusable)):
        raise InputError(f"{table.name}: column {table.columns[index]!r} holds {unusable[index]}, "
                         "which cannot be imported")
    return ImportPlan(kind, table, table.format, columns,
                      {name: table.columns[index] for name, index in columns.items()})


def _normal(name: str) -> str:
    return "_".join(name.strip().lower().replace("-", " ").replace(".", " ").replace("_", " ").split())


def _match_columns(kind: str, table: Table, mapping: dict[str, str]) -> dict[str, int]:
    exact = {column: index for index, column in enumerate(table.columns)}
    normal: dict[str, int] = {}
    for index, column in enumerate(table.columns):
        normal.setdefault(_normal(column), index)
    chosen: dict[str, int] = {}
    for target, column in mapping.items():
        index = exact.get(column, normal.get(_normal(column)))
        if index is None:
            raise InputError(
                f"--map {target}={column}: {table.name} has no column {column!r} "
                f"(columns: {', '.join(table.columns)})"
            )
        chosen[target] = index
    taken = set(chosen.values())
    for name in FIELDS_BY_KIND[kind]:
        if name in chosen:
            continue
        for candidate in (name, *ALIASES[kind].get(name, ())):
            index = normal.get(_normal(candidate))
            if index is not None and index not in taken:
                chosen[name] = index
                taken.add(index)
                break
    missing = [name for name in REQUIRED_COLUMNS[kind] if name not in chosen]
    if kind in ("orders", "customers") and "customer_id" not in chosen and "email" not in chosen:
        missing.insert(0, "customer_id or email")
    if missing:
        raise InputError(
            f"{table.name}: no {', '.join(missing)} column (columns found: {', '.join(table.columns)}); "
            f"name one with --map {missing[0].split()[0]}=COLUMN"
        )
    return chosen


# --- batches ---------------------------------------------------------------------------


class RecordReader:
    """Turns batches of a file's text records into validated rows, remembering ids across batches."""

    def __init__(self, plan: ImportPlan, zone: ZoneInfo) -> None:
        self.plan = plan
        self.table = plan.table
        self.kind = plan.kind
        self.zone = zone
        self.decimal_comma = self.table.delimiter == ";"
        self.seen = SeenKeys()  # the ids of earlier batches
        self.carry: pl.DataFrame | None = None  # Shopify: the last order's rows, continued next batch

    def prepare(self, batch: Batch, last: bool) -> Prepared:
        """Validate one batch; ``last`` says no batch follows (so nothing need be remembered)."""
        frame = batch.frame
        if self.plan.format == "shopify":
            text, early = self._shopify_records(frame, last)
        else:
            text, early = self._records(frame, batch.padded), None
        checked = validate(self.kind, text, self.plan.labels, self.table, self.zone, self.decimal_comma)
        checked = self._mark_duplicates(checked, last)
        failed = pl.col("_reason").is_not_null()
        rejects = checked.filter(failed).select(REJECT_COLUMNS).sort(LINE)
        if early is not None and early.height:
            rejects = pl.concat([rejects, early], how="vertical_relaxed").sort(LINE)
        originals = frame if self.table.format == "parquet" else None
        if originals is not None:
            rejects = with_parquet_raw(rejects, originals, self.table)
        rows = checked.height + (early.height if early is not None else 0)
        good = checked.filter(~failed).select(LANDING_COLUMNS[self.kind])
        return Prepared(good=good, rejects=rejects, rows=rows, bytes_done=batch.bytes_done, originals=originals)

    def _records(self, frame: pl.DataFrame, padded: bool = True) -> pl.DataFrame:
        """One text column per field, stripped, a blank cell null (without padding, they are both already)."""
        cells = [pl.col(self.table.cell(index)).alias(name) for name, index in self.plan.columns.items()]
        if not padded:
            return frame.select(LINE, FIELDS, RAW, *cells)
        stripped = frame.select(LINE, FIELDS, RAW, *[cell.str.strip_chars() for cell in cells])
        return stripped.with_columns(pl.when(pl.col(name).str.len_bytes() > 0).then(pl.col(name)).alias(name)
                                     for name in self.plan.columns)

    def _shopify_records(self, frame: pl.DataFrame, last: bool) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Fold line items into orders; line rows that cannot belong to an order are rejected here."""
        table = self.table
        width = len(table.columns)
        name_cell = table.cell(self.plan.columns["order_id"])
        if self.carry is not None:
            frame = pl.concat([self.carry, frame], how="vertical_relaxed")
            self.carry = None
        name = pl.col(name_cell).str.strip_chars()
        ragged = pl.col(FIELDS) != width
        nameless = name.is_null() | (name == "")
        label = self.plan.labels["order_id"]
        early = frame.filter(ragged | nameless).select(
            LINE,
            pl.when(ragged).then(None).otherwise(pl.lit(label)).alias("_field"),
            pl.when(ragged).then(_ragged_reason(width)).otherwise(
                pl.lit(f"{label} is empty: cannot tell which order this line belongs to")
            ).alias("_reason"),
            RAW,
        )
        frame = frame.filter(~(ragged | nameless))
        if not last and frame.height:
            # The last order may go on in the next batch: hold its rows back.
            held = pl.col(name_cell) == frame[name_cell][-1]
            self.carry = frame.filter(held)
            frame = frame.filter(~held)
        return shopify.fold(frame, table, self.plan.columns), early

    def _mark_duplicates(self, checked: pl.DataFrame, last: bool) -> pl.DataFrame:
        """The later of two records with the same ``_key`` is rejected, naming the first one's line.

        The records come back sorted by ``_key`` (then line): equal keys sit
        together, and the orders upsert wants that order anyway.
        """
        key = pl.col("_key")
        present = key.is_not_null()
        checked = checked.sort("_key", LINE, nulls_last=True)
        remember = not last
        if len(self.seen) or remember:
            hashes = checked.select(key.hash(0).alias("_h0"), key.hash(1).alias("_h1"))
            h0, h1 = hashes["_h0"].to_numpy(), hashes["_h1"].to_numpy()
            keys = checked["_key"]
            present_keys = keys.len() - keys.null_count()  # sorted, nulls last: the range is at the ends
            low, high = (keys[0], keys[present_keys - 1]) if present_keys else (None, None)
            met_before = self.seen.lines(h0, h1, low, high)
        else:  # a single batch: nothing before it, nothing after
            met_before = np.zeros(checked.height, dtype=np.int64)
        again = present & (key == key.shift(1)).fill_null(False)
        first = pl.coalesce(pl.col("_seen"), pl.when(~again).then(pl.col(LINE)).forward_fill())
        later = present & (pl.col("_seen").is_not_null() | again)
        fresh = pl.col("_reason").is_null() & later
        checked = checked.with_columns(
            pl.Series("_seen", met_before, dtype=pl.Int64).replace(0, None)
        ).with_columns(first.alias("_first"), later.alias("_later")).with_columns(
            pl.when(fresh).then(self._duplicate_message()).otherwise(pl.col("_reason")).alias("_reason"),
            pl.when(fresh).then(pl.lit(self._key_label(), dtype=pl.String)).otherwise(pl.col("_field"))
            .alias("_field"),
        )
        if remember:
            keep = checked.select(present & ~pl.col("_later")).to_series().to_numpy()
            self.seen.add(h0[keep], h1[keep], checked[LINE].to_numpy()[keep], low, high)
        return checked.drop("_seen", "_first", "_later")

    def _duplicate_message(self) -> pl.Expr:
        word = "row" if self.table.format == "parquet" else "line"
        if self.kind == "events":
            return pl.format(f"duplicate event (the same as {word} {{}})", pl.col("_first"))
        what = "order_id" if self.kind == "orders" else "customer"
        return pl.format(f"duplicate {what} '{{}}' (first on {word} {{}})", pl.col("_key"), pl.col("_first"))

    def _key_label(self) -> str | None:
        labels = self.plan.labels
        if self.kind == "orders":
            return labels.get("order_id", "order_id")
        if self.kind == "customers":
            return labels.get("customer_id", labels.get("email"))
        return None


class SeenKeys:
    """The identities met in earlier batches, as two 64-bit hashes, with the line each was first on.

    Kept as sorted numpy arrays (20 bytes a record, no hash table to
    rebuild), one run per batch with the range of its keys. A batch is
    looked up, by binary search, only in the runs its key range overlaps:
    in a file sorted by its ids that is none at all. A batch that overlaps
    earlier ones is merged into them, so an unsorted file keeps one run.
    """

    def __init__(self) -> None:
        self.runs: list[_SeenRun] = []

    def __len__(self) -> int:
        return sum(len(run.h0) for run in self.runs)

    def lines(self, h0: np.ndarray, h1: np.ndarray, low: str | None = None, high: str | None = None) -> np.ndarray:
        """For each hash pair, the line it was first met on, or 0; ``low``/``high`` bound the keys (None: unknown)."""
        found = np.zeros(len(h0), dtype=np.int64)
        for run in self.runs:
            if len(h0) and run.overlaps(low, high):
                found = np.where(found == 0, run.lines(h0, h1), found)  # a key is kept in one run only
        return found

    def add(self, h0: np.ndarray, h1: np.ndarray, line: np.ndarray, low: str | None = None,
            high: str | None = None) -> None:
        """Remember keys met for the first time (none of them is here yet)."""
        if not len(h0):
            return
        new = _SeenRun(h0, h1, line, low, high)
        apart = []
        for run in self.runs:
            if run.overlaps(low, high):
                new = new.merged(run)
            else:
                apart.append(run)
        self.runs = [*apart, new]


class _SeenRun:
    """Keys of one batch, or of batches whose key ranges overlap, sorted by their first hash when searched."""

    def __init__(self, h0: np.ndarray, h1: np.ndarray, line: np.ndarray, low: str | None, high: str | None,
                 ordered: bool = False) -> None:
        self.h0, self.h1, self.line = h0, h1, line
        self.low, self.high = low, high
        self.ordered = ordered  # sorted by h0 yet (a run nobody searches is never sorted)

    def _order(self) -> None:
        if not self.ordered:
            order = np.argsort(self.h0, kind="stable")
            self.h0, self.h1, self.line = self.h0[order], self.h1[order], self.line[order]
            self.ordered = True

    def overlaps(self, low: str | None, high: str | None) -> bool:
        if None in (low, high, self.low, self.high):
            return True
        return not (high < self.low or low > self.high)

    def merged(self, other: "_SeenRun") -> "_SeenRun":
        self._order()
        other._order()
        where = np.searchsorted(other.h0, self.h0)
        unknown = None in (self.low, self.high, other.low, other.high)
        return _SeenRun(
            np.insert(other.h0, where, self.h0), np.insert(other.h1, where, self.h1),
            np.insert(other.line, where, self.line),
            None if unknown else min(self.low, other.low), None if unknown else max(self.high, other.high),
            ordered=True,
        )

    def lines(self, h0: np.ndarray, h1: np.ndarray) -> np.ndarray:
        found = np.zeros(len(h0), dtype=np.int64)
        if not len(self.h0):
            return found
        self._order()
        # Searching in sorted order walks the table once instead of jumping about: ~4x faster.
        order = np.argsort(h0)
        start = np.empty(len(h0), dtype=np.int64)
        stop = np.empty(len(h0), dtype=np.int64)
        start[order] = np.searchsorted(self.h0, h0[order], side="left")
        stop[order] = np.searchsorted(self.h0, h0[order], side="right")
        single = np.flatnonzero(stop - start == 1)
        same = self.h1[start[single]] == h1[single]
        found[single[same]] = self.line[start[single][same]]
        for position in np.flatnonzero(stop - start > 1):  # one h0 for several ids: next to never
            candidates = np.arange(start[position], stop[position])
            matching = candidates[self.h1[candidates] == h1[position]]
            if len(matching):
                found[position] = self.line[matching].min()
        return found


def with_parquet_raw(rejects: pl.DataFrame, originals: pl.DataFrame, table: Table) -> pl.DataFrame:
    """Parquet rows have no text of their own: show rejected ones as JSON with the file's column names."""
    if rejects.height == 0:
        return rejects
    rows = originals.filter(pl.col(LINE).is_in(rejects[LINE].implode()))
    shown = rows.select(LINE, parquet_raw(rows, table).alias("_shown"))
    return rejects.join(shown, on=LINE, how="left", maintain_order="left").with_columns(
        pl.col("_shown").alias(RAW)
    ).drop("_shown")


def _ragged_reason(width: int) -> pl.Expr:
    return pl.format(f"expected {width} fields, found {{}}", pl.col(FIELDS))


# --- validation ---------------------------------------------------------------------------


def validate(kind: str, text: pl.DataFrame, labels: dict[str, str], table: Table, zone: ZoneInfo,
             decimal_comma: bool) -> pl.DataFrame:
    """Parse every field and name each row's first problem in ``_field``/``_reason`` (null when fine).

    ``text`` has a cleaned text column per field the file has; the result adds
    ``<field>_v`` for the parsed values and ``_key`` for the row's identity.
    """
    for name in (*FIELDS_BY_KIND[kind], "email", "name", "phone", "region", "accepts_email"):
        if name not in text.columns:
            text = text.with_columns(pl.lit(None, dtype=pl.String).alias(name))
    text = text.with_columns(pl.col("email").str.to_lowercase())
    checks: list[tuple[pl.Expr, str | None, pl.Expr]] = []
    readings: dict[str, cells.Reading] = {}  # read side by side, below

    def label(name: str) -> str:
        return labels.get(name, name)

    def required(name: str) -> None:
        checks.append((pl.col(name).is_null(), label(name), pl.lit(f"{label(name)} is empty")))

    def unreadable(name: str, reason: pl.Expr) -> None:
        checks.append((pl.col(name).is_not_null() & pl.col(f"{name}_v").is_null(), label(name), reason))

    def instant(name: str) -> None:
        unreadable(name, pl.format(f"cannot read '{{}}' as a date or time ({cells.INSTANT_HINT})", pl.col(name)))
        readings[name] = cells.instant_reading(zone)

    def amount(name: str) -> None:
        unreadable(name, pl.format("'{}' is not an amount", pl.col(name)))
        checks.append((pl.col(f"{name}_v") < 0, label(name), pl.format("negative amount '{}'", pl.col(name))))
        readings[name] = cells.amount_reading(decimal_comma)

    def vocabulary(name: str, words: dict, accepted: str, dtype: pl.DataType = pl.String) -> None:
        what = name.replace("_", " ")
        unreadable(name, pl.format(f"unknown {what} '{{}}' (accepted: {accepted})", pl.col(name)))
        readings[name] = cells.word_reading(words, dtype)

    width = len(table.columns)
    checks.append((pl.col(FIELDS) != width, None, _ragged_reason(width)))
    if kind in ("orders", "customers"):
        named = [label(name) for name in ("customer_id", "email") if name in labels]
        both = " and ".join(named) + (" are both empty" if len(named) > 1 else " is empty")
        checks.append((pl.col("customer_id").is_null() & pl.col("email").is_null(), named[0], pl.lit(both)))
        checks.append((pl.col("email").is_not_null() & ~pl.col("email").str.contains("@", literal=True),
                       label("email"), pl.format("not an email address: '{}'", pl.col("email"))))
    if kind == "orders":
        required("placed_at")
        instant("placed_at")
        required("total")
        amount("total")
        amount("discount")
        amount("refunded")
        vocabulary("status", STATUS_WORDS, ", ".join(ORDER_STATUSES) + ", or completed, refunded, canceled, ...")
        readings["accepts_email"] = cells.word_reading(cells.CONSENT_WORDS, pl.Int64)
        checks.append((pl.col("refunded_v") > pl.col("total_v"), label("refunded"),
                       pl.format("refunded '{}' is more than the total '{}'", pl.col("refunded"), pl.col("total"))))
    elif kind == "customers":
        checks.append((pl.col("timezone").is_not_null() & ~pl.col("timezone").is_in(sorted(available_timezones())),
                       label("timezone"),
                       pl.format("unknown time zone '{}' (use an IANA name such as Asia/Shanghai)", pl.col("timezone"))))
        instant("signed_up_at")
        for channel in CHANNELS:
            vocabulary(f"accepts_{channel}", cells.CONSENT_WORDS, "yes, no, unsubscribed", pl.Int64)
    else:
        required("customer_id")
        required("kind")
        vocabulary("kind", KIND_WORDS, ", ".join(EVENT_KINDS))
        required("at")
        instant("at")

    text = text.with_columns(value.alias(f"{value.name}_v") for value in cells.read_columns(text, readings))
    # A row's reason is its first failing check, in the order they were listed. ("" stands
    # for a check of the whole row, so the coalesce stops there too.)
    text = text.with_columns(
        pl.coalesce([pl.when(mask).then(reason) for mask, _, reason in checks]).alias("_reason"),
        pl.coalesce([pl.when(mask).then(pl.lit(name or "")) for mask, name, _ in checks]).alias("_field"),
    ).with_columns(pl.when(pl.col("_field") != "").then(pl.col("_field")).alias("_field"))
    if kind == "orders":
        return _finish_orders(text)
    if kind == "customers":
        return text.with_columns(pl.coalesce("customer_id", "email").alias("_key"))
    return text.with_columns(
        pl.concat_str([pl.col("customer_id"), pl.col("kind_v"), pl.col("at_v").cast(pl.String),
                       pl.col("category").fill_null("")], separator="\x1f").alias("_key")
    )


def _finish_orders(text: pl.DataFrame) -> pl.DataFrame:
    """Defaults, a refund restated onto its order, and an id for rows without one."""
    whole_refund = pl.col("status_v") == "refunded"
    text = text.with_columns(
        pl.col("discount_v").fill_null(0),
        pl.coalesce(pl.col("refunded_v"), pl.when(whole_refund).then(pl.col("total_v")).otherwise(0))
        .alias("refunded_v"),
        pl.when(whole_refund).then(pl.lit("paid")).otherwise(pl.col("status_v").fill_null("paid")).alias("status_v"),
    )
    needs_id = pl.col("order_id").is_null() & pl.col("_reason").is_null()
    if text.select(needs_id.any()).item():
        where = text.select(pl.arg_where(needs_id)).to_series()
        derived = derived_ids(text.filter(needs_id))
        text = text.with_columns(text["order_id"].scatter(where, derived).alias("order_id"))
    return text.with_columns(pl.col("order_id").alias("_key"))


def derived_ids(rows: pl.DataFrame) -> pl.Series:
    """A stable order id from what the order is: "row-" and 16 hex digits of SHA-1 of its normalised fields."""
    content = rows.select(
        pl.concat_str(
            [pl.coalesce("customer_id", "email"), pl.col("placed_at_v").cast(pl.String),
             pl.col("total_v").cast(pl.String), pl.col("discount_v").cast(pl.String),
             pl.col("refunded_v").cast(pl.String), pl.col("status_v"), pl.col("category").fill_null("")],
            separator="\x1f",
        )
    ).to_series()
    return pl.Series([f"row-{hashlib.sha1(text.encode()).hexdigest()[:16]}" for text in content], dtype=pl.String)
