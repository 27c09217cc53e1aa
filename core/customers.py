"""One customer: finding them, their whole story, and the changes people make.

Everything here reads through the store's indexes (a lookup is a few
index probes, not a scan), so a support agent's search answers at once even
at a million customers. Nothing here imports polars.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from core import audit
from core.clock import format_instant, local_day
from core.config import CHANNELS
from core.contacts import looks_like_phone, mask_email, mask_phone, normalize_email, normalize_phone
from core.errors import Conflict, InputError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from core.store import Store
    from core.users import User

RULE_TAGS = ("price-sensitive", "quality-seeker", "social-sharer", "cart-abandoner", "high-value-dormant",
             "koc-candidate")
CONSENT_WORDS = {1: "opted in", 0: "no consent", -1: "opted out"}
LOOKUP_COLUMNS = "id, customer_id, name, email, phone, region"


@dataclass(frozen=True)
class Match:
    id: int
    customer_id: str
    name: str | None
    email: str | None
    phone: str | None
    region: str | None
    matched_by: str


def find(store: "Store", query: str, limit: int = 20) -> list[Match]:
    """Customers matching an id, an email or a phone exactly, else a name prefix."""
    text = (query or "").strip()
    if not text:
        return []
    conn = store.conn
    row = conn.execute(f"SELECT {LOOKUP_COLUMNS} FROM customers WHERE customer_id = ?", (text,)).fetchone()
    if row:
        return [Match(*row, matched_by="id")]
    if "@" in text:
        rows = conn.execute(
            f"SELECT {LOOKUP_COLUMNS} FROM customers WHERE email = ? ORDER BY id LIMIT ?",
            (normalize_email(text), limit),
        ).fetchall()
        return [Match(*row, matched_by="email") for row in rows]
    if looks_like_phone(text):
        rows = conn.execute(
            f"SELECT {LOOKUP_COLUMNS} FROM customers WHERE phone = ? ORDER BY id LIMIT ?",
            (normalize_phone(text), limit),
        ).fetchall()
        if rows:
            return [Match(*row, matched_by="phone") for row in rows]
    # A prefix range on the NOCASE index: the whole bound is one parameter, so
    # SQLite searches the index instead of scanning (LIKE ? || '%' would scan).
    rows = conn.execute(
        f"SELECT {LOOKUP_COLUMNS} FROM customers "
        "WHERE name >= ? COLLATE NOCASE AND name < ? COLLATE NOCASE "
        "ORDER BY name COLLATE NOCASE, id LIMIT ?",
        (text, text + "\U0010ffff", limit),
    ).fetchall()
    return [Match(*row, matched_by="name") for row in rows]


def resolve(store: "Store", query: str) -> Match:
    """Exactly one customer for a query, or a clear refusal."""
    matches = find(store, query, limit=11)
    if not matches:
        raise NotFound(f"no customer matches {query!r}",
                       hint="Search by customer id, email, phone, or the start of a name.")
    if len(matches) > 1:
        shown = ", ".join(f"{match.customer_id} ({match.name})" for match in matches[:10])
        more = " and more" if len(matches) > 10 else ""
        raise InputError(f"{query!r} matches several customers: {shown}{more}",
                         hint="Use the customer id to pick one.")
    return matches[0]


def reveal_allowed(user: "User") -> None:
    if not user.can("reveal"):
        raise PermissionDenied(f"{user.login} ({user.role}) may not reveal contact details")


def profile(store: "Store", match: Match, user: "User", *, reveal: bool = False, now: int | None = None,
            order_limit: int = 10) -> dict[str, Any]:
    """Everything about one customer, ready to show (contacts masked for support).

    ``reveal`` shows the contacts to a role that masks them, and is audited.
    """
    zone = store.config.zone
    conn = store.conn
    masked = user.masks_contacts and not reveal
    if reveal and user.masks_contacts:
        reveal_allowed(user)
        if now is None:
            raise ValueError("revealing needs `now` for the audit row")
        with store.transaction():
            audit.record(store, actor=user.login, action="customer.reveal", target=match.customer_id, now=now)
    row = store.rows(
        # Nobody signs up after their first order (files may arrive newest first), as in the reading.
        "SELECT id, customer_id, name, email, phone, region, timezone, "
        "min(coalesce(signed_up_at, placed_at), coalesce(placed_at, signed_up_at)) AS signed_up_at, "
        "accepts_email, accepts_sms, accepts_push, accepts_wecom FROM customers "
        "LEFT JOIN (SELECT min(placed_at) AS placed_at FROM orders WHERE customer = ?) "
        "WHERE id = ?", (match.id, match.id),
    )[0]
    identity = {
        "customer_id": row["customer_id"],
        "name": row["name"],
        "email": mask_email(row["email"]) if masked else row["email"],
        "phone": mask_phone(row["phone"]) if masked else row["phone"],
        "masked": masked,
        "region": row["region"],
        "timezone": row["timezone"],
        "signed_up": format_instant(row["signed_up_at"], zone, with_time=False),
    }
    return {
        "customer": identity,
        "reading": _reading(store, match.id),
        "segment_history": _history(store, match.id, "tier_events", "from_segment", "to_segment"),
        "lifecycle_history": _history(store, match.id, "lifecycle_events", "from_stage", "to_stage"),
        "tags": _tag_timeline(store, match.id),
        "orders": _orders(store, match.id, order_limit),
        "consent": _consent(store, match.id, row),
        "touches": recent_touches(store, match.id),
    }


def _reading(store: "Store", customer: int) -> dict[str, Any] | None:
    rows = store.rows(
        "SELECT s.*, r.as_of AS refresh_as_of, r.model, r.counts FROM customer_state AS s "
        "JOIN refreshes AS r ON r.id = (SELECT max(id) FROM refreshes) WHERE s.customer = ?",
        (customer,),
    )
    if not rows:
        return None
    row = rows[0]
    counts = json.loads(row.pop("counts"))
    as_of = date.fromisoformat(row["refresh_as_of"])
    recency = (as_of - date.fromisoformat(row["last_order_day"])).days if row["last_order_day"] else None
    standing = {}
    percentiles = counts.get("percentiles") or {}
    if row["r_score"] is not None and percentiles:
        standing = {
            # the share of scored customers this one beats
            "recency": _beats(percentiles["recency_days"], recency, higher_is_better=False),
            "frequency": _beats(percentiles["frequency"], row["frequency"], higher_is_better=True),
            "monetary": _beats(percentiles["monetary"], row["monetary_cents"], higher_is_better=True),
        }
    manual = store.rows(
        "SELECT tag, added_by, added_at, note FROM manual_tags WHERE customer = ? ORDER BY tag", (customer,)
    )
    first_as_of = store.scalar("SELECT as_of FROM refreshes WHERE id = ?", (row["first_refresh_id"],))
    return {
        "as_of": row["refresh_as_of"],
        "model": row["model"],
        "segment": row["segment"],
        "lifecycle": row["lifecycle"],
        "r_score": row["r_score"], "f_score": row["f_score"], "m_score": row["m_score"],
        "recency_days": recency,
        "frequency": row["frequency"],
        "monetary_cents": row["monetary_cents"],
        "aov_cents": row["aov_cents"],
        "first_order_day": row["first_order_day"],
        "last_order_day": row["last_order_day"],
        "rule_tags": [tag for tag in row["tags"].split(";") if tag],
        "manual_tags": [item["tag"] for item in manual],
        "standing": standing,
        "population": counts.get("scored"),
        "first_reading": first_as_of,
    }


def _beats(points: list[float], value: float | None, *, higher_is_better: bool) -> float | None:
    """Approximate share of the population with a worse value, from 101 percentiles."""
    if value is None or not points:
        return None
    if higher_is_better:
        position = bisect.bisect_left(points, value)
    else:
        position = len(points) - bisect.bisect_right(points, value)
    return round(max(0, min(position, 100)) / 100, 2)


def _history(store: "Store", customer: int, table: str, from_column: str, to_column: str) -> list[dict]:
    return store.rows(
        f"SELECT as_of, {from_column} AS from_value, {to_column} AS to_value FROM {table} "
        "WHERE customer = ? ORDER BY id", (customer,),
    )


def _tag_timeline(store: "Store", customer: int) -> list[dict]:
    zone = store.config.zone
    rows = store.rows(
        "SELECT tag, action, source, manual, at, as_of, note FROM tag_events WHERE customer = ? ORDER BY at, id",
        (customer,),
    )
    for row in rows:
        row["when"] = row["as_of"] if not row["manual"] and row["as_of"] else format_instant(row["at"], zone)
    return rows


def _orders(store: "Store", customer: int, limit: int) -> dict[str, Any]:
    zone = store.config.zone
    summary = store.rows(
        "SELECT count(*) AS n, coalesce(sum(total_cents - refunded_cents), 0) AS net FROM orders "
        "WHERE customer = ? AND status = 'paid' AND total_cents - refunded_cents > 0", (customer,),
    )[0]
    total = store.scalar("SELECT count(*) FROM orders WHERE customer = ?", (customer,))
    recent = store.rows(
        "SELECT order_id, placed_at, total_cents, discount_cents, refunded_cents, status, category FROM orders "
        "WHERE customer = ? ORDER BY placed_at DESC, id DESC LIMIT ?", (customer, limit),
    )
    for order in recent:
        order["placed"] = format_instant(order["placed_at"], zone)
        order["net_cents"] = order["total_cents"] - order["refunded_cents"]
    months: dict[str, int] = {}
    for placed_at, net in store.conn.execute(
        "SELECT placed_at, total_cents - refunded_cents FROM orders WHERE customer = ? AND status = 'paid' "
        "AND total_cents - refunded_cents > 0", (customer,),
    ):
        month = local_day(placed_at, zone).strftime("%Y-%m")
        months[month] = months.get(month, 0) + net
    return {"count": total, "qualifying": summary["n"], "net_cents": summary["net"], "recent": recent,
            "monthly_cents": dict(sorted(months.items()))}


def _consent(store: "Store", customer: int, row: dict) -> dict[str, Any]:
    zone = store.config.zone
    out: dict[str, Any] = {}
    for channel in CHANNELS:
        last = store.rows(
            "SELECT state, source, at, note FROM consent_events WHERE customer = ? AND channel = ? "
            "ORDER BY at DESC, id DESC LIMIT 1", (customer, channel),
        )
        state = row[f"accepts_{channel}"]
        out[channel] = {
            "state": state,
            "word": CONSENT_WORDS[state],
            "since": format_instant(last[0]["at"], zone) if last else None,
            "source": last[0]["source"] if last else None,
            "note": last[0]["note"] if last else None,
        }
    return out


def recent_touches(store: "Store", customer: int, limit: int = 50) -> list[dict]:
    """The customer's latest touches, newest first, with their campaign and whether they count to caps."""
    zone = store.config.zone
    rows = store.rows(
        "SELECT t.id, t.campaign, c.name AS campaign_name, t.channel, t.at, t.counts FROM touches AS t "
        "LEFT JOIN campaigns AS c ON c.id = t.campaign WHERE t.customer = ? ORDER BY t.at DESC LIMIT ?",
        (customer, limit),
    )
    for row in rows:
        row["when"] = format_instant(row["at"], zone)
        row["counts"] = bool(row["counts"])
    return rows


# --- changes people make ------------------------------------------------------

def _check_tag_name(tag: str) -> str:
    tag = tag.strip()
    if not tag:
        raise InputError("a tag needs a name")
    if len(tag) > 40 or any(ch in tag for ch in ";,\n\t") or tag != " ".join(tag.split()):
        raise InputError(f"not a usable tag name: {tag!r} (up to 40 characters, no ; , tabs or newlines)")
    if tag in RULE_TAGS or tag.startswith("affinity:"):
        raise InputError(f"{tag!r} is a rule tag: refresh computes it; choose another name")
    return tag


def add_tag(store: "Store", user: "User", match: Match, tag: str, note: str, now: int) -> bool:
    """Tag a customer by hand; False when the tag was already there."""
    user.require("tag")
    tag = _check_tag_name(tag)
    note = (note or "").strip()
    if not note:
        raise InputError("a manual tag needs a note (--note): say why, for the next person")
    with store.transaction() as conn:
        if conn.execute("SELECT 1 FROM manual_tags WHERE customer = ? AND tag = ?", (match.id, tag)).fetchone():
            return False
        conn.execute("INSERT INTO manual_tags (customer, tag, added_by, added_at, note) VALUES (?, ?, ?, ?, ?)",
                     (match.id, tag, user.login, now, note))
        conn.execute(
            "INSERT INTO tag_events (customer, tag, action, source, manual, at, note) VALUES (?, ?, 'added', ?, 1, ?, ?)",
            (match.id, tag, user.login, now, note),
        )
        audit.record(store, actor=user.login, action="tag.add", target=match.customer_id, now=now,
                     details={"tag": tag, "note": note})
    return True


def remove_tag(store: "Store", user: "User", match: Match, tag: str, note: str, now: int) -> None:
    user.require("tag")
    tag = tag.strip()
    note = (note or "").strip()
    if not note:
        raise InputError("removing a tag needs a note (--note)")
    with store.transaction() as conn:
        if not conn.execute("SELECT 1 FROM manual_tags WHERE customer = ? AND tag = ?", (match.id, tag)).fetchone():
            if tag in RULE_TAGS or tag.startswith("affinity:"):
                raise Conflict(f"{tag!r} is a rule tag: it goes away when its rule stops matching")
            raise Conflict(f"{match.customer_id} has no manual tag {tag!r}")
        conn.execute("DELETE FROM manual_tags WHERE customer = ? AND tag = ?", (match.id, tag))
        conn.execute(
            "INSERT INTO tag_events (customer, tag, action, source, manual, at, note) VALUES (?, ?, 'removed', ?, 1, ?, ?)",
            (match.id, tag, user.login, now, note),
        )
        audit.record(store, actor=user.login, action="tag.remove", target=match.customer_id, now=now,
                     details={"tag": tag, "note": note})


def set_consent(store: "Store", user: "User", match: Match, channel: str, opted_in: bool, note: str | None,
                now: int) -> bool:
    """Record an opt-in or opt-out; False when it was already so."""
    user.require("consent")
    if channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r} (expected one of {', '.join(CHANNELS)})")
    state = 1 if opted_in else -1
    with store.transaction() as conn:
        current = conn.execute(f"SELECT accepts_{channel} FROM customers WHERE id = ?", (match.id,)).fetchone()[0]
        if current == state:
            return False
        conn.execute(f"UPDATE customers SET accepts_{channel} = ? WHERE id = ?", (state, match.id))
        conn.execute(
            "INSERT INTO consent_events (customer, channel, state, source, at, note) VALUES (?, ?, ?, ?, ?, ?)",
            (match.id, channel, state, f"user:{user.login}", now, note),
        )
        audit.record(store, actor=user.login, action="consent.in" if opted_in else "consent.out",
                     target=match.customer_id, now=now, details={"channel": channel, "note": note})
    return True
