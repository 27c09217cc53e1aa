"""Audience expressions: one boolean SQL expression over one row per customer.

An audience is parsed by polars' SQL expression parser (``pl.sql_expr``),
but only after our own check of the text, for two reasons: ``sql_expr``
accepts far more than a filter (aggregates, window functions, subqueries —
and in polars 2.1 some subqueries *panic* when evaluated), and its errors
name Rust internals rather than the user's mistake. So the text is
tokenised here first and refused, with one line naming the problem, when
it holds a subquery or statement keyword, an unknown column (the known ones
are listed), a function outside :data:`FUNCTIONS`, or anything but one
expression. What passes is handed to ``sql_expr`` and must evaluate to a
boolean on a row of the audience frame.

The frame (:func:`audience_frame`) joins the latest reading to the current
customer record: consent is current, so an opt-out recorded after the last
refresh is already seen. Money columns are in currency units, as people
write them (``monetary > 500``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from core.errors import InputError

if TYPE_CHECKING:
    from core.store import Store

MAX_LENGTH = 2000


@dataclass(frozen=True)
class Column:
    """A column an audience expression may name."""

    name: str
    dtype: pl.DataType
    describe: str


COLUMNS: tuple[Column, ...] = (
    Column("customer_id", pl.String(), "the shop's customer id"),
    Column("segment", pl.String(), "segment at the latest reading, e.g. 'At risk'"),
    Column("lifecycle", pl.String(), "lifecycle stage: new, prospect, active, occasional, dormant, churned"),
    Column("recency_days", pl.Int32(), "days since the last qualifying order"),
    Column("frequency", pl.Int32(), "qualifying orders in the lookback window"),
    Column("monetary", pl.Float64(), "net spend in the window, in currency units"),
    Column("aov", pl.Float64(), "average order value, in currency units"),
    Column("r_score", pl.Int8(), "recency score 1-5 (5 = most recent)"),
    Column("f_score", pl.Int8(), "frequency score 1-5"),
    Column("m_score", pl.Int8(), "monetary score 1-5"),
    Column("tags", pl.List(pl.String()), "rule and manual tags; use array_contains(tags, 'name')"),
    Column("churn_risk", pl.Float64(), "chance of no order in the next 90 days, 0-1"),
    Column("clv", pl.Float64(), "expected net spend in the next 365 days, in currency units"),
    Column("region", pl.String(), "region on the customer record"),
    Column("timezone", pl.String(), "the customer's time zone, if known"),
    Column("has_email", pl.Boolean(), "an email address is on file"),
    Column("has_phone", pl.Boolean(), "a phone number is on file"),
    Column("accepts_email", pl.Int8(), "email consent: 1 opted in, 0 not given, -1 opted out"),
    Column("accepts_sms", pl.Int8(), "SMS consent: 1, 0 or -1"),
    Column("accepts_push", pl.Int8(), "push consent: 1, 0 or -1"),
    Column("accepts_wecom", pl.Int8(), "WeCom consent: 1, 0 or -1"),
)
COLUMN_NAMES = tuple(column.name for column in COLUMNS)
SCHEMA = {column.name: column.dtype for column in COLUMNS}
_SAMPLE = {
    "customer_id": "1001", "segment": "At risk", "lifecycle": "dormant", "recency_days": 40, "frequency": 3,
    "monetary": 120.5, "aov": 40.2, "r_score": 2, "f_score": 3, "m_score": 4, "tags": ["price-sensitive"],
    "churn_risk": 0.4, "clv": 80.0, "region": "Zhejiang", "timezone": "Asia/Shanghai", "has_email": True,
    "has_phone": False, "accepts_email": 1, "accepts_sms": 0, "accepts_push": -1, "accepts_wecom": 0,
}

# Row-wise functions only: nothing that aggregates, reads files or looks at other rows.
FUNCTIONS = {
    "array_contains": "array_contains(tags, 'price-sensitive')",
    "array_length": "array_length(tags) >= 2",
    "lower": "lower(region) = 'north'",
    "upper": "upper(region) = 'NORTH'",
    "length": "length(customer_id) = 6",
    "starts_with": "starts_with(region, 'north')",
    "ends_with": "ends_with(customer_id, '7')",
    "coalesce": "coalesce(recency_days, 9999) > 90",
    "abs": "abs(monetary) > 10",
    "round": "round(aov) >= 50",
    "floor": "floor(churn_risk * 10) >= 7",
    "ceil": "ceil(aov) > 20",
    "least": "least(r_score, f_score) >= 4",
    "greatest": "greatest(r_score, f_score) = 5",
}
KEYWORDS = {
    "AND", "OR", "NOT", "IN", "IS", "NULL", "TRUE", "FALSE", "LIKE", "ILIKE", "BETWEEN",
    "CASE", "WHEN", "THEN", "ELSE", "END", "CAST", "AS", "DISTINCT", "FROM",
}
TYPES = {
    "INT", "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "FLOAT", "DOUBLE", "REAL", "DECIMAL",
    "NUMERIC", "TEXT", "VARCHAR", "STRING", "BOOLEAN", "BOOL",
}
# Words that only make sense in a statement or a subquery.
SUBQUERY_WORDS = {"SELECT", "WITH", "EXISTS", "VALUES", "UNION", "INTERSECT", "EXCEPT", "LATERAL", "TABLE"}
STATEMENT_WORDS = {
    "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "OVER", "PARTITION", "WINDOW", "JOIN",
    "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "ATTACH", "DETACH", "PRAGMA", "INTO",
    "INTERVAL", "QUALIFY", "FILTER", "ANY", "ALL", "SOME",
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")+")
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><=|>=|<>|!=|\|\||::|[=<>+\-*/%(),])
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    at: int


def _tokens(text: str) -> list[_Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            snippet = text[position:position + 12]
            if text[position] == "'":
                raise InputError(f"audience: unterminated string starting at {snippet!r}")
            raise InputError(f"audience: unexpected {text[position]!r} at position {position + 1} "
                             f"(near {snippet!r})")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(_Token(kind, match.group(), position))
        position = match.end()
    return tokens


def check(text: str) -> None:
    """Refuse anything but one boolean expression over known columns and allowed functions."""
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"audience: empty expression (for example: {EXAMPLE})")
    if len(text) > MAX_LENGTH:
        raise InputError(f"audience: longer than {MAX_LENGTH} characters")
    tokens = _tokens(text)
    stack: list[str] = []  # what each open parenthesis belongs to
    for index, token in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        previous = tokens[index - 1] if index else None
        if token.kind == "op":
            if token.text == "(":
                is_call = previous is not None and previous.kind == "word" and previous.text.upper() not in (
                    KEYWORDS - {"CAST"})
                stack.append(previous.text.upper() if is_call else "(")
            elif token.text == ")":
                if not stack:
                    raise InputError(f"audience: unbalanced ')' at position {token.at + 1}")
                stack.pop()
            elif token.text == "," and not stack:
                raise InputError("audience: one expression only (found a top-level comma; "
                                 "combine conditions with AND / OR)")
            continue
        if token.kind == "quoted":
            _known_column(token.text[1:-1].replace('""', '"'))
            continue
        if token.kind != "word":
            continue
        word = token.text.upper()
        if word in SUBQUERY_WORDS:
            raise InputError(f"audience: subqueries are not allowed (found {token.text})")
        if word in STATEMENT_WORDS:
            raise InputError(f"audience: only a single boolean expression is allowed (found {token.text})")
        if previous is not None and previous.text == "::":
            _type_name(token)
            continue
        if word == "AS":
            if not stack or stack[-1] != "CAST":
                raise InputError("audience: AS is only allowed inside CAST(... AS type)")
            continue
        if previous is not None and previous.text.upper() == "AS":
            _type_name(token)
            continue
        if word == "FROM" and (previous is None or previous.text.upper() != "DISTINCT"):
            raise InputError("audience: subqueries are not allowed (found FROM)")
        if word in KEYWORDS:
            continue
        if following is not None and following.text == "(":
            if token.text.lower() not in FUNCTIONS:
                raise InputError(f"audience: function {token.text}() is not allowed "
                                 f"(allowed: {', '.join(sorted(FUNCTIONS))})")
            continue
        _known_column(token.text)
    if stack:
        raise InputError("audience: unbalanced '(' (a closing parenthesis is missing)")


def _type_name(token: _Token) -> None:
    if token.text.upper() not in TYPES:
        raise InputError(f"audience: unknown type {token.text!r} in a cast "
                         f"(use one of {', '.join(sorted(TYPES))})")


def _known_column(name: str) -> None:
    if name in SCHEMA:
        return
    close = difflib.get_close_matches(name.lower(), COLUMN_NAMES, n=1, cutoff=0.6)
    guess = f" (did you mean {close[0]}?)" if close else ""
    raise InputError(f"audience: unknown column {name!r}{guess}; known columns: {', '.join(COLUMN_NAMES)} "
                     "(text values need single quotes: 'At risk')")


EXAMPLE = "segment IN ('At risk', 'Can''t lose') AND array_contains(tags, 'price-sensitive')"


def compile_expression(text: str) -> pl.Expr:
    """The audience as a boolean polars expression (null counts as false).

    Raises :class:`InputError` with one line naming the problem.
    """
    from polars.exceptions import PanicException

    check(text)
    try:
        expression = pl.sql_expr(text)
    except (Exception, PanicException) as exc:  # polars' parser errors: keep the first line
        reason = _first_line(exc)
        if reason.startswith("unable to parse"):
            reason = f"syntax error in {text.strip()!r}"
        raise InputError(f"audience: {reason}") from None
    unknown = sorted(set(expression.meta.root_names()) - set(SCHEMA))
    if unknown:
        _known_column(unknown[0])
    # A customer like the real ones (so a cast of a segment name or a list compared with text fails
    # here, not at preview) and one with nothing known.
    sample = pl.DataFrame([pl.Series(name, [_SAMPLE[name], None], dtype=dtype) for name, dtype in SCHEMA.items()])
    try:
        result = sample.select(expression.alias("matched"))
    except (Exception, PanicException) as exc:
        reason = _first_line(exc)
        if "List type" in reason and "tags" in expression.meta.root_names():
            reason = "tags is a list of names: test one with array_contains(tags, 'price-sensitive')"
        failed = re.match(r"(conversion from `\w+` to `\w+` failed in column '(\w+)')", reason)
        if failed and failed.group(2) in _SAMPLE:  # the counts would be of our sample, not of the shop
            reason = f"{failed.group(1)}: it holds text such as {_SAMPLE[failed.group(2)]!r}"
        raise InputError(f"audience: {reason}") from None
    dtype = result.schema["matched"]
    if dtype != pl.Boolean:
        raise InputError(f"audience: must be true or false for each customer (this gives a {dtype} value; "
                         "compare it with something, e.g. monetary > 100)")
    return expression.fill_null(False)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else type(exc).__name__
    return re.sub(r"\s+", " ", message)[:300]


def columns_help() -> list[dict[str, str]]:
    """The columns an audience may use, for ``campaign columns`` and the console."""
    return [{"name": column.name, "type": _type_label(column.dtype), "describe": column.describe}
            for column in COLUMNS]


def _type_label(dtype: pl.DataType) -> str:
    if dtype == pl.List(pl.String):
        return "list of text"
    if dtype == pl.String:
        return "text"
    if dtype == pl.Boolean:
        return "true/false"
    if dtype in (pl.Float64,):
        return "number"
    return "whole number"


# --- the frame ---------------------------------------------------------------


@dataclass
class Base:
    """One row per current customer, sorted by customer: what audiences are evaluated over.

    Built once per state of the store and kept in memory (see :func:`base`):
    a console or a benchmark previews many audiences against the same base,
    and at a million customers building it (the reading joined to the
    customer record) costs far more than any one preview. ``tags`` (a list
    column, slow to build) is added on first use.
    """

    key: tuple
    refresh: dict  # the latest refresh: id, as_of, model, lookback_days
    frame: pl.DataFrame  # customer, the COLUMNS except tags (tags_text instead), tz_code, segment_code
    zones: list[str | None]  # tz_code -> time zone name (None: the customer has none)
    segments: list[str | None]  # segment_code -> segment (None: not in the reading)
    _with_tags: pl.DataFrame | None = None

    def with_tags(self) -> pl.DataFrame:
        if self._with_tags is None:
            from core.tags import as_list

            self._with_tags = self.frame.with_columns(
                tags=as_list(pl.col("tags_text").fill_null(""))
            )
        return self._with_tags


_BASES: dict[str, Base] = {}


def _state_key(store: "Store") -> tuple:
    """Cheap to read (a few max() lookups), and different whenever the base could be."""
    conn = store.conn
    return (
        store.meta("store_id", ""),
        conn.execute("SELECT coalesce(max(id), 0) FROM refreshes").fetchone()[0],
        conn.execute("SELECT coalesce(max(id), 0) FROM customers").fetchone()[0],
        conn.execute("SELECT coalesce(max(seq), 0) FROM changes").fetchone()[0],
        manual_tags_version(store),
        store.config.timezone,
    )


def base(store: "Store") -> Base:
    """The audience base for the store as it is now (rebuilt only when the store changed).

    Kept in memory for this process, and as an Arrow file in the store's
    cache directory for the next one (a CLI preview reads it instead of
    joining a million rows again).
    """
    key = _state_key(store)
    where = str(store.path.resolve())
    cached = _BASES.get(where)
    if cached is None or cached.key != key:
        cached = _read_base(store, key) or _save_base(store, _build_base(store, key))
        _BASES.clear()  # one store at a time is plenty; a million rows is not small
        _BASES[where] = cached
    return cached


BASE_FILE = "audience.arrow"
BASE_META = "audience.json"


def _read_base(store: "Store", key: tuple) -> Base | None:
    try:
        meta = json.loads((store.cache_dir / BASE_META).read_text())
        if meta.get("key") != json.loads(json.dumps(key)):
            return None
        frame = pl.read_ipc(store.cache_dir / BASE_FILE)
    except (OSError, ValueError, KeyError):
        return None
    if frame.height != meta.get("rows"):
        return None
    return Base(key=key, refresh=meta["refresh"], frame=frame, zones=meta["zones"], segments=meta["segments"])


def _save_base(store: "Store", built: Base) -> Base:
    """Write the base for the next process; a cache that cannot be written is no error."""
    from core import fastread

    try:
        fastread._ensure_dir(store)
        fastread._write_ipc(store, built.frame, store.cache_dir / BASE_FILE)
        meta = {"key": built.key, "refresh": built.refresh, "zones": built.zones, "segments": built.segments,
                "rows": built.frame.height}
        temporary = store.cache_dir / (BASE_META + ".tmp")
        temporary.write_text(json.dumps(meta, default=str))
        os.replace(temporary, store.cache_dir / BASE_META)
    except OSError:
        pass
    return built


def _build_base(store: "Store", key: tuple) -> Base:
    from core import fastread
    from core.refresh import current_reading, latest_refresh, load_snapshot
    from core.tags import with_manual

    refresh = latest_refresh(store)
    if refresh is None:
        refresh, reading = current_reading(store)  # raises: there is no reading yet
    # The saved reading as it is (tags ';'-joined): current_reading would
    # also split the tags into lists, which costs seconds at a million rows.
    reading = load_snapshot(store, refresh["id"])
    if reading is None:
        refresh, reading = current_reading(store)
    people = fastread.load(store, "customers").select(
        pl.col("id").cast(pl.Int32).alias("customer"),
        pl.col("customer_id"),
        pl.col("region").cast(pl.String),
        pl.col("timezone").cast(pl.String),
        "has_email", "has_phone", "accepts_email", "accepts_sms", "accepts_push", "accepts_wecom",
    ).sort("customer")
    units = 100.0
    if "tags_text" in reading.columns:
        tags_text = pl.col("tags_text")
    else:
        tags_text = pl.col("tags").list.join(";")
    state = reading.select(
        pl.col("customer").cast(pl.Int32),
        pl.col("segment").cast(pl.String),
        pl.col("lifecycle").cast(pl.String),
        pl.col("recency_days").cast(pl.Int32),
        pl.col("frequency").cast(pl.Int32),
        (pl.col("monetary") / units).alias("monetary"),
        (pl.col("aov") / units).alias("aov"),
        pl.col("r_score").cast(pl.Int8),
        pl.col("f_score").cast(pl.Int8),
        pl.col("m_score").cast(pl.Int8),
        tags_text.cast(pl.String).alias("tags_text"),
        pl.col("churn_risk").cast(pl.Float64),
        (pl.col("clv") / units).alias("clv"),
    )
    frame = people.join(state, on="customer", how="left", maintain_order="left")
    # Manual tags join the rule tags, ';'-joined and sorted like them.
    frame = with_manual(frame, manual_tags(store), column="tags_text", joined=True)
    # Small integer codes for the columns every preview groups or looks up by.
    zones = _codes(frame["timezone"])
    segments = _codes(frame["segment"])
    frame = frame.with_columns(
        tz_code=_encode(pl.col("timezone"), zones), segment_code=_encode(pl.col("segment"), segments),
    )
    summary = {name: refresh[name] for name in ("id", "as_of", "model", "lookback_days")}
    return Base(key=key, refresh=summary, frame=frame, zones=zones, segments=segments)


def _codes(column: pl.Series) -> list[str | None]:
    """Code 0 is null; the others are the distinct values, sorted."""
    return [None, *sorted(value for value in column.unique().to_list() if value is not None)]


def _encode(column: pl.Expr, codes: list[str | None]) -> pl.Expr:
    mapping = {value: code for code, value in enumerate(codes) if value is not None}
    return column.replace_strict(mapping, default=0, return_dtype=pl.UInt32).fill_null(0)


def audience_frame(store: "Store") -> tuple[dict, pl.DataFrame]:
    """(latest refresh, one row per customer with :data:`COLUMNS` plus ``customer``), sorted by customer.

    Every current customer has a row; one who signed up after the reading
    has nulls for the reading's columns (and so matches no condition on them).
    """
    current = base(store)
    return current.refresh, current.with_tags().select("customer", *COLUMN_NAMES)


def manual_tags_version(store: "Store") -> int:
    """Changes whenever a manual tag is added or removed (each appends a tag event; the
    manual tags' own count and highest rowid can come back to what they were)."""
    return store.conn.execute("SELECT coalesce(max(id), 0) FROM tag_events").fetchone()[0]


def manual_tags(store: "Store") -> pl.DataFrame:
    """Manual tags per customer (a small table: read straight from SQLite)."""
    rows = store.conn.execute("SELECT customer, tag FROM manual_tags ORDER BY customer, tag").fetchall()
    frame = pl.DataFrame(rows, schema={"customer": pl.Int32, "tag": pl.String}, orient="row")
    return frame.group_by("customer", maintain_order=True).agg(manual=pl.col("tag"))


def match_mask(current: Base, expression: pl.Expr) -> pl.Series:
    """True for each row of ``current.frame`` the (compiled) expression selects."""
    from polars.exceptions import PanicException

    needs_tags = "tags" in expression.meta.root_names()
    frame = current.with_tags() if needs_tags else current.frame
    try:
        # Beside a column, so a constant (``TRUE``) is broadcast to every row:
        # polars 2.1 refuses a constant filter predicate on a multi-chunk
        # frame ("filter predicate length of 2").
        return frame.select(pl.col("customer"), expression.alias("matched"))["matched"]
    except (Exception, PanicException) as exc:
        raise InputError(f"audience: {_first_line(exc)}") from None


def matching(store: "Store", text: str) -> pl.DataFrame:
    """The audience rows (:data:`COLUMNS` plus ``customer``) the expression selects, sorted by customer."""
    expression = compile_expression(text)
    current = base(store)
    mask = match_mask(current, expression)
    return current.with_tags().filter(mask).select("customer", *COLUMN_NAMES)
