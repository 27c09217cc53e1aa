"""Campaigns and their states (DESIGN "Campaign states").

::

    draft -> submitted -> approved -> sending -> sent
    draft, submitted: may be rejected or cancelled; approved: may be cancelled
    an edit (draft, submitted or approved) returns the campaign to draft

Submitting freezes the send plan — every matched customer with their arm
and reason code (``campaign_members``) — and its SHA-256 over the sorted
plan. Approving signs that hash: the approver, the time and the hash are
stored, and the send refuses a plan whose rows no longer hash to it. Any
edit voids the plan and the approval. The approver is not the submitter
unless the config sets ``allow_self_approval``. Every transition is an
audit row in the same transaction as the change.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core import audit
from core.config import CHANNELS
from core.errors import Conflict, InputError, NotFound, PermissionDenied

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from core.store import Store
    from core.users import User

STATES = ("draft", "submitted", "approved", "sending", "sent", "rejected", "cancelled")
EDITABLE = ("draft", "submitted", "approved")
QUIET_MODES = ("defer", "drop")
MAX_HOLDOUT = 90.0
MAX_VARIANTS = 10
_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,39}$")

STATE_LABELS = {
    "draft": "○ draft",
    "submitted": "… submitted",
    "approved": "✓ approved",
    "sending": "» sending",
    "sent": "✓ sent",
    "rejected": "✗ rejected",
    "cancelled": "✗ cancelled",
}


@dataclass(frozen=True)
class Campaign:
    """One row of ``campaigns``: the definition, where it stands, and its plan, approval and send."""

    id: int
    name: str
    audience: str
    channel: str
    offer: str | None
    holdout_pct: float
    variants: str
    priority: int
    obeys_caps: int
    counts_toward_caps: int
    quiet: str
    send_at: int | None
    state: str
    created_by: str
    created_at: int
    updated_at: int
    revision: int
    submitted_by: str | None
    submitted_at: int | None
    planned_day: str | None
    plan_at: int | None
    plan_hash: str | None
    plan_counts: str | None
    plan_refresh_id: int | None
    approved_by: str | None
    approved_at: int | None
    approved_hash: str | None
    decided_note: str | None
    send_time: int | None
    send_started_at: int | None
    sent_at: int | None
    adapter: str | None

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(name for name in self.variants.split(",") if name)

    @property
    def service(self) -> bool:
        return not self.obeys_caps and not self.counts_toward_caps

    @property
    def target(self) -> str:
        return f"campaign:{self.id}"

    def send_instant(self, now: int) -> int:
        """When messages go out if sent at ``now``: the planned time, or now if that has passed."""
        return max(now, self.send_at) if self.send_at is not None else now

    def definition(self) -> dict[str, Any]:
        """What the people approving a plan agree to, besides its members (part of the plan hash)."""
        return {
            "id": self.id, "name": self.name, "audience": self.audience, "channel": self.channel,
            "offer": self.offer, "holdout_pct": self.holdout_pct, "variants": self.variants,
            "priority": self.priority, "obeys_caps": self.obeys_caps,
            "counts_toward_caps": self.counts_toward_caps, "quiet": self.quiet, "send_at": self.send_at,
            "revision": self.revision,
        }

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["variants"] = list(self.variant_names)
        data["service"] = self.service
        data["plan_counts"] = json.loads(self.plan_counts) if self.plan_counts else None
        return data


_COLUMNS = ", ".join(field.name for field in fields(Campaign))


def get(store: "Store", campaign_id: int | str) -> Campaign:
    """The campaign with this id; :class:`NotFound` otherwise."""
    number = _campaign_number(campaign_id)
    rows = store.rows(f"SELECT {_COLUMNS} FROM campaigns WHERE id = ?", (number,))
    if not rows:
        raise NotFound(f"no campaign {number}", hint="List them with `tierdesk campaign list`.")
    return Campaign(**rows[0])


def _campaign_number(campaign_id: int | str) -> int:
    text = str(campaign_id).strip().lstrip("#")
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"not a campaign id: {campaign_id!r} (campaign ids are numbers)")
    if int(text) >= 2**63:  # past any id SQLite can hold
        raise NotFound(f"no campaign {text}", hint="List them with `tierdesk campaign list`.")
    return int(text)


def list_campaigns(store: "Store", state: str | None = None) -> list[Campaign]:
    """All campaigns (or those in one state), oldest first."""
    if state is not None and state not in STATES:
        raise InputError(f"unknown state {state!r} (expected one of {', '.join(STATES)})")
    where, params = ("WHERE state = ?", (state,)) if state else ("", ())
    return [Campaign(**row) for row in store.rows(f"SELECT {_COLUMNS} FROM campaigns {where} ORDER BY id", params)]


# --- validating what people type -----------------------------------------------


def parse_send_at(text: str | None, zone: "ZoneInfo", now: int | None = None) -> int | None:
    """``YYYY-MM-DD HH:MM`` in the shop's zone (or ISO 8601 with an offset) -> Unix seconds.

    With ``now``, a time already past is refused: the send would go out at once,
    while the campaign went on showing the old time.
    """
    if text is None or not text.strip():
        return None
    value = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise InputError(f"--send-at: give a time too, e.g. '{value} 10:00' (shop time)")
    try:
        moment = datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise InputError(f"--send-at: expected 'YYYY-MM-DD HH:MM' (shop time), got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    seconds = int(moment.timestamp())
    if now is not None and seconds < now:
        shown = datetime.fromtimestamp(now, zone).strftime("%Y-%m-%d %H:%M")
        raise InputError(f"--send-at: {value} has passed (it is {shown} shop time); "
                         "leave --send-at out to deliver when the campaign is sent")
    return seconds


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise InputError("a campaign needs a name")
    if len(name) > 200:
        raise InputError("campaign name: at most 200 characters")
    return name


def _check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise InputError(f"unknown channel {channel!r} (expected one of {', '.join(CHANNELS)})")
    return channel


def _check_holdout(holdout: float) -> float:
    if holdout != holdout or not 0 <= holdout <= MAX_HOLDOUT:  # NaN is not a percentage either
        raise InputError(f"--holdout: a percentage between 0 and {MAX_HOLDOUT:g}, got {holdout}")
    return float(holdout)


def _check_variants(variants: str | list[str] | tuple[str, ...] | None) -> str:
    if variants is None:
        return ""
    names = [part.strip() for part in (variants.split(",") if isinstance(variants, str) else variants)]
    names = [name for name in names if name]
    if not names:
        return ""
    if len(names) < 2:
        raise InputError("--variants: name at least two, e.g. A,B (one message needs no variants)")
    if len(names) > MAX_VARIANTS:
        raise InputError(f"--variants: at most {MAX_VARIANTS}")
    if len(set(names)) != len(names):
        raise InputError("--variants: each name once")
    for name in names:
        if not _ARM_NAME.match(name) or name in ("control", "treatment"):
            raise InputError(f"--variants: {name!r} is not a usable arm name "
                             "(letters, digits, - and _; not 'control' or 'treatment')")
    return ",".join(names)


def _check_quiet(quiet: str) -> str:
    if quiet not in QUIET_MODES:
        raise InputError(f"--quiet: expected defer or drop, got {quiet!r}")
    return quiet


def _check_priority(priority: int) -> int:
    if not -1000 <= int(priority) <= 1000:
        raise InputError("--priority: between -1000 and 1000")
    return int(priority)


def _check_audience(text: str) -> str:
    from core.audience import compile_expression

    compile_expression(text)
    return text.strip()


# --- transitions ---------------------------------------------------------------


def create(store: "Store", user: "User", *, name: str, audience: str, channel: str, now: int,
           offer: str | None = None, holdout: float = 0.0, variants: str | None = None, priority: int = 0,
           service: bool = False, quiet: str = "defer", send_at: int | None = None) -> Campaign:
    """A new draft campaign (operators and owners only)."""
    user.require("campaign.edit")
    values = {
        "name": _check_name(name), "audience": _check_audience(audience), "channel": _check_channel(channel),
        "offer": (offer or "").strip() or None, "holdout_pct": _check_holdout(holdout),
        "variants": _check_variants(variants), "priority": _check_priority(priority),
        "obeys_caps": 0 if service else 1, "counts_toward_caps": 0 if service else 1,
        "quiet": _check_quiet(quiet), "send_at": send_at,
    }
    with store.transaction() as conn:
        cursor = conn.execute(
            "INSERT INTO campaigns (name, audience, channel, offer, holdout_pct, variants, priority, obeys_caps, "
            "counts_toward_caps, quiet, send_at, state, created_by, created_at, updated_at) "
            "VALUES (:name, :audience, :channel, :offer, :holdout_pct, :variants, :priority, :obeys_caps, "
            ":counts_toward_caps, :quiet, :send_at, 'draft', :user, :now, :now)",
            {**values, "user": user.login, "now": now},
        )
        campaign_id = int(cursor.lastrowid)
        audit.record(store, actor=user.login, action="campaign.create", target=f"campaign:{campaign_id}", now=now,
                     details=values)
    return get(store, campaign_id)


EDIT_FIELDS = ("name", "audience", "channel", "offer", "holdout", "variants", "priority", "service", "quiet",
               "send_at")


def edit(store: "Store", user: "User", campaign_id: int | str, now: int, **changes: Any) -> Campaign:
    """Change a draft, submitted or approved campaign; it returns to draft, its plan and approval void.

    ``changes`` uses the names of :data:`EDIT_FIELDS`; ``None`` leaves a field
    as it is (``send_at=0`` clears the send time, ``offer=""`` the offer).
    """
    user.require("campaign.edit")
    unknown = set(changes) - set(EDIT_FIELDS)
    if unknown:
        raise InputError(f"cannot edit {', '.join(sorted(unknown))}")
    campaign = get(store, campaign_id)
    require_state(campaign, EDITABLE, "edited")
    updates: dict[str, Any] = {}
    if changes.get("name") is not None:
        updates["name"] = _check_name(changes["name"])
    if changes.get("audience") is not None:
        updates["audience"] = _check_audience(changes["audience"])
    if changes.get("channel") is not None:
        updates["channel"] = _check_channel(changes["channel"])
    if changes.get("offer") is not None:
        updates["offer"] = changes["offer"].strip() or None
    if changes.get("holdout") is not None:
        updates["holdout_pct"] = _check_holdout(changes["holdout"])
    if changes.get("variants") is not None:
        updates["variants"] = _check_variants(changes["variants"])
    if changes.get("priority") is not None:
        updates["priority"] = _check_priority(changes["priority"])
    if changes.get("service") is not None:
        updates["obeys_caps"] = updates["counts_toward_caps"] = 0 if changes["service"] else 1
    if changes.get("quiet") is not None:
        updates["quiet"] = _check_quiet(changes["quiet"])
    if changes.get("send_at") is not None:
        updates["send_at"] = changes["send_at"] or None
    updates = {key: value for key, value in updates.items() if getattr(campaign, key) != value}
    if not updates:
        raise InputError(f"campaign {campaign.id}: nothing to change")
    with store.transaction() as conn:
        current = get(store, campaign.id)
        if current.revision != campaign.revision:
            raise Conflict(f"campaign {campaign.id} changed meanwhile; look again and retry")
        voided = current.state != "draft"
        assignments = ", ".join(f"{key} = :{key}" for key in updates)
        conn.execute(
            f"UPDATE campaigns SET {assignments}, revision = revision + 1, updated_at = :now, state = 'draft', "
            "submitted_by = NULL, submitted_at = NULL, planned_day = NULL, plan_at = NULL, plan_hash = NULL, "
            "plan_counts = NULL, plan_refresh_id = NULL, approved_by = NULL, approved_at = NULL, "
            "approved_hash = NULL WHERE id = :id",
            {**updates, "now": now, "id": campaign.id},
        )
        conn.execute("DELETE FROM campaign_members WHERE campaign = ?", (campaign.id,))
        details = {"changes": {key: {"from": getattr(current, key), "to": value} for key, value in updates.items()}}
        if voided:
            details["voided"] = {"state": current.state, "plan_hash": current.plan_hash,
                                 "approved_by": current.approved_by}
        audit.record(store, actor=user.login, action="campaign.edit", target=current.target, now=now,
                     details=details)
    return get(store, campaign.id)


def submit(store: "Store", user: "User", campaign_id: int | str, now: int) -> tuple[Campaign, dict]:
    """Freeze the send plan of a draft and ask for approval; returns the campaign and the preview."""
    from core import plan as plan_mod

    user.require("campaign.edit")
    campaign = get(store, campaign_id)
    require_state(campaign, ("draft",), "submitted")
    plan = plan_mod.compute(store, campaign, now)
    summary = plan.summary(sample=0)
    if summary["sendable"] == 0:
        excluded = [f"{count:,} {reason.replace('_', ' ')}" for reason, count in summary["excluded"].items() if count]
        raise Conflict(
            f"campaign {campaign.id} would send nothing: {summary['matched']:,} matched"
            + (f", of whom {', '.join(excluded)}" if excluded else " (the audience selects nobody)"),
            hint="Check it with `tierdesk campaign preview`, then edit the audience or wait for budget.",
        )
    members = plan.members_for_store()
    digest = plan_hash(campaign, plan.planned_day, plan.plan_at, plan.refresh_id, members)
    counts = {"matched": summary["matched"], "sendable": summary["sendable"], "excluded": summary["excluded"],
              "deferred": plan.deferred, "as_of": plan.as_of, "send_at": plan.send_at}
    with store.transaction() as conn:
        current = get(store, campaign.id)
        if current.revision != campaign.revision or current.state != "draft":
            raise Conflict(f"campaign {campaign.id} changed meanwhile; look again and retry")
        conn.execute("DELETE FROM campaign_members WHERE campaign = ?", (campaign.id,))
        conn.executemany(
            "INSERT INTO campaign_members (campaign, customer, arm, reason, rule, segment, planned_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            members.select(
                _literal(campaign.id), "customer", "arm", "reason", "rule", "segment", "planned_at"
            ).iter_rows(),
        )
        conn.execute(
            "UPDATE campaigns SET state = 'submitted', submitted_by = ?, submitted_at = ?, planned_day = ?, "
            "plan_at = ?, plan_hash = ?, plan_counts = ?, plan_refresh_id = ?, updated_at = ? WHERE id = ?",
            (user.login, now, plan.planned_day, plan.plan_at, digest, json.dumps(counts), plan.refresh_id, now,
             campaign.id),
        )
        audit.record(store, actor=user.login, action="campaign.submit", target=campaign.target, now=now,
                     details={"plan_hash": digest, "matched": summary["matched"], "sendable": summary["sendable"],
                              "excluded": summary["excluded"], "planned_day": plan.planned_day})
    return get(store, campaign.id), summary


def approve(store: "Store", user: "User", campaign_id: int | str, now: int) -> Campaign:
    """Sign the frozen plan's hash (four eyes: not the submitter, unless the config allows it)."""
    user.require("campaign.approve")
    campaign = get(store, campaign_id)
    require_state(campaign, ("submitted",), "approved")
    if campaign.submitted_by == user.login and not store.config.allow_self_approval:
        raise PermissionDenied(
            f"{user.login} submitted campaign {campaign.id} and may not also approve it",
            hint="Ask another operator or owner (or set allow_self_approval = true in the config).",
        )
    digest = stored_plan_hash(store, campaign)
    if digest != campaign.plan_hash:
        raise Conflict(f"campaign {campaign.id}: the frozen plan no longer matches its hash; "
                       "it was changed outside tierdesk",
                       hint="Edit the campaign (back to draft) and submit it again.")
    with store.transaction() as conn:
        current = get(store, campaign.id)
        if current.revision != campaign.revision or current.state != "submitted":
            raise Conflict(f"campaign {campaign.id} changed meanwhile; look again and retry")
        conn.execute(
            "UPDATE campaigns SET state = 'approved', approved_by = ?, approved_at = ?, approved_hash = ?, "
            "updated_at = ? WHERE id = ?",
            (user.login, now, digest, now, campaign.id),
        )
        audit.record(store, actor=user.login, action="campaign.approve", target=campaign.target, now=now,
                     details={"plan_hash": digest, "submitted_by": campaign.submitted_by})
    return get(store, campaign.id)


def reject(store: "Store", user: "User", campaign_id: int | str, note: str, now: int) -> Campaign:
    """Turn down a draft or submitted campaign, with a note saying why."""
    user.require("campaign.approve")
    if not (note or "").strip():
        raise InputError("a rejection needs a note saying why (--note TEXT)")
    campaign = get(store, campaign_id)
    require_state(campaign, ("draft", "submitted"), "rejected")
    return _finish(store, user, campaign, "rejected", now, note.strip())


def cancel(store: "Store", user: "User", campaign_id: int | str, now: int, note: str | None = None) -> Campaign:
    """Call off a campaign that has not started sending."""
    user.require("campaign.edit")
    campaign = get(store, campaign_id)
    require_state(campaign, EDITABLE, "cancelled")
    return _finish(store, user, campaign, "cancelled", now, (note or "").strip() or None)


def _finish(store: "Store", user: "User", campaign: Campaign, state: str, now: int, note: str | None) -> Campaign:
    with store.transaction() as conn:
        current = get(store, campaign.id)
        if current.state != campaign.state:
            raise Conflict(f"campaign {campaign.id} changed meanwhile; look again and retry")
        conn.execute("UPDATE campaigns SET state = ?, decided_note = ?, updated_at = ? WHERE id = ?",
                     (state, note, now, campaign.id))
        action = {"rejected": "campaign.reject", "cancelled": "campaign.cancel"}[state]
        audit.record(store, actor=user.login, action=action,
                     target=campaign.target, now=now, details={"from": campaign.state, "note": note})
    return get(store, campaign.id)


def require_state(campaign: Campaign, allowed: tuple[str, ...], verb: str) -> None:
    """Refuse (:class:`Conflict`, with what to do instead) unless the campaign is in one of ``allowed``."""
    if campaign.state in allowed:
        return
    hints = {
        "draft": "Submit it first: `tierdesk campaign submit ID`.",
        "submitted": "It waits for approval: `tierdesk campaign approve ID` (by someone else).",
        "approved": "Send it with `tierdesk campaign send ID`, or edit it (back to draft).",
        "sending": "It is being sent; finish with `tierdesk campaign send ID`.",
        "sent": "It has been sent; see `tierdesk campaign results ID`.",
        "rejected": "Rejected campaigns stay as they are; create a new one.",
        "cancelled": "Cancelled campaigns stay as they are; create a new one.",
    }
    raise Conflict(
        f"campaign {campaign.id} is {campaign.state}: only {' or '.join(allowed)} campaigns can be {verb}",
        hint=hints.get(campaign.state, "").replace("ID", str(campaign.id)) or None,
    )


def _literal(value: int):
    import polars as pl

    return pl.lit(value, dtype=pl.Int64).alias("campaign")


# --- the plan's hash --------------------------------------------------------------


def plan_hash(campaign: Campaign, planned_day: str, plan_at: int, refresh_id: int | None, members) -> str:
    """SHA-256 over the campaign's definition and its plan rows, sorted by customer.

    ``members`` has customer, arm, reason, rule, segment, planned_at. The
    hash is recomputed from the stored rows before approval and before the
    send: a plan changed behind tierdesk's back no longer matches.
    """
    import hashlib

    import polars as pl

    header = json.dumps({"campaign": campaign.definition(), "planned_day": planned_day, "plan_at": plan_at,
                         "refresh_id": refresh_id}, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(header.encode())
    lines = members.sort("customer").select(
        pl.concat_str(
            [pl.col(name).cast(pl.String).fill_null("") for name in
             ("customer", "arm", "reason", "rule", "segment", "planned_at")],
            separator="\t",
        ).alias("line")
    )["line"]
    for start in range(0, len(lines), 100_000):
        chunk = lines.slice(start, 100_000)
        digest.update(("\n" + "\n".join(chunk.to_list())).encode())
    return digest.hexdigest()


def stored_members(store: "Store", campaign_id: int):
    """The frozen plan rows of a campaign, as a frame."""
    import polars as pl

    rows = store.conn.execute(
        "SELECT customer, arm, reason, rule, segment, planned_at, outcome, outcome_reason "
        "FROM campaign_members WHERE campaign = ? ORDER BY customer",
        (campaign_id,),
    ).fetchall()
    return pl.DataFrame(rows, orient="row", schema={
        "customer": pl.Int32, "arm": pl.String, "reason": pl.String, "rule": pl.String, "segment": pl.String,
        "planned_at": pl.Int64, "outcome": pl.String, "outcome_reason": pl.String,
    })


def stored_plan_hash(store: "Store", campaign: Campaign) -> str:
    """The hash of the plan as it is stored now (compare with ``plan_hash`` / ``approved_hash``)."""
    members = stored_members(store, campaign.id)
    return plan_hash(campaign, campaign.planned_day or "", campaign.plan_at or 0, campaign.plan_refresh_id,
                     members)


# --- reading ---------------------------------------------------------------------


def show(store: "Store", campaign_id: int | str) -> dict[str, Any]:
    """The campaign, its plan, approval and send outcome, and its audit trail."""
    campaign = get(store, campaign_id)
    data = campaign.as_dict()
    data["state_label"] = STATE_LABELS[campaign.state]
    data["members"] = {
        reason: count for reason, count in store.conn.execute(
            "SELECT reason, count(*) FROM campaign_members WHERE campaign = ? GROUP BY reason ORDER BY reason",
            (campaign.id,),
        )
    }
    data["arms"] = {
        arm: count for arm, count in store.conn.execute(
            "SELECT arm, count(*) FROM campaign_members WHERE campaign = ? AND reason IN "
            "('sendable', 'deferred', 'holdout', 'over_budget', 'quiet_hours') GROUP BY arm ORDER BY arm",
            (campaign.id,),
        )
    }
    data["outcome"] = {
        f"{outcome}:{reason}" if reason else outcome: count for outcome, reason, count in store.conn.execute(
            "SELECT outcome, outcome_reason, count(*) FROM campaign_members WHERE campaign = ? AND outcome IS NOT NULL "
            "GROUP BY outcome, outcome_reason ORDER BY outcome, outcome_reason",
            (campaign.id,),
        )
    }
    data["delivery"] = {
        status: count for status, count in store.conn.execute(
            "SELECT status, count(*) FROM outbox WHERE campaign = ? GROUP BY status ORDER BY status", (campaign.id,)
        )
    }
    data["history"] = store.rows(
        "SELECT id, at, actor, action, details FROM audit WHERE target = ? ORDER BY id", (campaign.target,)
    )
    for row in data["history"]:
        row["details"] = json.loads(row["details"])
    return data
