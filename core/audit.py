"""The audit log: append-only and hash-chained.

Each row's hash covers its own fields and the previous row's hash, so an
edit or a deletion anywhere in the file breaks the chain from that row on;
:func:`verify` names the first row that no longer fits.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.store import Store

GENESIS = "0" * 64


def _digest(prev_hash: str, at: int, actor: str, action: str, target: str | None, details: str) -> str:
    payload = json.dumps([prev_hash, at, actor, action, target, details], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def record(store: "Store", *, actor: str, action: str, target: str | None, now: int,
           details: dict[str, Any] | None = None) -> int:
    """Append one audit row; call it inside the transaction that does the action."""
    conn = store.conn
    if not conn.in_transaction:
        raise RuntimeError("audit.record must run inside the transaction it audits")
    row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_hash = row[0] if row else GENESIS
    details_text = json.dumps(details or {}, sort_keys=True, ensure_ascii=False, default=str)
    digest = _digest(prev_hash, now, actor, action, target, details_text)
    cursor = conn.execute(
        "INSERT INTO audit (at, actor, action, target, details, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (now, actor, action, target, details_text, prev_hash, digest),
    )
    # The newest row, kept apart from the log: rows cut off its end leave a chain that is
    # whole but shorter, and only this tells.
    conn.execute("INSERT INTO meta (key, value) VALUES ('audit_head', ?) "
                 "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (f"{cursor.lastrowid}:{digest}",))
    return int(cursor.lastrowid)


@dataclass(frozen=True)
class Verification:
    rows: int
    first_broken: int | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.first_broken is None


def verify(store: "Store") -> Verification:
    """Recompute the chain; report the first row whose hash or link is wrong."""
    import sqlite3

    from core.errors import StoreError

    prev_hash = GENESIS
    count = 0
    expected_id = 1
    try:
        rows = store.conn.execute(
            "SELECT id, at, actor, action, target, details, prev_hash, hash FROM audit ORDER BY id"
        ).fetchall()
        head = store.conn.execute("SELECT value FROM meta WHERE key = 'audit_head'").fetchone()
    except sqlite3.OperationalError as exc:
        raise StoreError(f"the audit log cannot be read ({exc}): the store was changed outside tierdesk") from None
    for row_id, at, actor, action, target, details, stored_prev, stored_hash in rows:
        count += 1
        if row_id != expected_id:
            return Verification(count, row_id, f"rows {expected_id}..{row_id - 1} are missing")
        if stored_prev != prev_hash:
            return Verification(count, row_id, "its link to the previous row does not match")
        if _digest(stored_prev, at, actor, action, target, details) != stored_hash:
            return Verification(count, row_id, "its contents were changed after it was written")
        prev_hash = stored_hash
        expected_id = row_id + 1
    if head is not None:
        head_id, _, head_hash = head[0].partition(":")
        if int(head_id) >= expected_id:
            return Verification(count, expected_id, f"rows {expected_id}..{head_id} are missing from the end")
        if int(head_id) == expected_id - 1 and head_hash != prev_hash:
            return Verification(count, expected_id - 1, "the newest row is not the one last written")
    return Verification(count, None, None)


def recent(store: "Store", limit: int = 50) -> list[dict[str, Any]]:
    return store.rows(
        "SELECT id, at, actor, action, target, details FROM audit ORDER BY id DESC LIMIT ?", (limit,)
    )
