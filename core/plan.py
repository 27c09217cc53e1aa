"""The send plan: who a campaign would reach now, and a reason for everyone else.

The funnel, in order (the first reason that applies wins):

1. **matched** — the audience expression is true for the customer;
2. ``no_consent`` — no consent given for the channel, or no address for it
   (email needs an email, SMS a phone; push and WeCom reach the customer's
   app or account, so consent alone decides);
3. ``opted_out`` — the customer opted out of the channel;
4. ``holdout`` — the stable hash puts them in the control arm (removed
   before caps, so the control group spends no budget);
5. ``over_budget`` — one more touch would break a cap rule (the rule is
   recorded); campaigns with more priority planned for the same day have
   reserved their share first;
6. ``quiet_hours`` — the message would land in the customer's quiet hours
   and the campaign drops such messages; with ``defer`` it stays sendable
   as ``deferred``, scheduled for the end of the window;
7. ``sendable`` (or ``deferred``).

The same plan, frozen at submit, is what the approver signs.

A preview may cover every customer of a large shop, so the funnel runs on
whole numpy columns of small integer codes (reason, arm, segment, rule)
over the cached audience base, and the summary is a handful of bincounts;
strings are only made for what is shown or stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from core import arms, audience, budget, quiet
from core.clock import EPOCH_DAY, format_instant
from core.config import CapRule

if TYPE_CHECKING:
    from core.campaigns import Campaign
    from core.store import Store

EXCLUSIONS = ("no_consent", "opted_out", "holdout", "over_budget", "quiet_hours")
SENDING = ("sendable", "deferred")
REASON_ORDER = (*EXCLUSIONS, "deferred", "sendable")
REASON_CODE = {reason: code for code, reason in enumerate(REASON_ORDER)}
NO_SEGMENT = "(no reading)"
OPEN = -1


def address_expr(channel: str) -> pl.Expr:
    """Whether the channel has somewhere to go for this customer."""
    if channel == "email":
        return pl.col("has_email").fill_null(False)
    if channel == "sms":
        return pl.col("has_phone").fill_null(False)
    return pl.lit(True)


def reachability(channel: str) -> pl.Expr:
    """``no_consent`` / ``opted_out`` / null from the consent and address columns."""
    consent = pl.col(f"accepts_{channel}")
    return (
        pl.when(~address_expr(channel) | (consent == 0) | consent.is_null()).then(pl.lit("no_consent"))
        .when(consent == -1).then(pl.lit("opted_out"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


@dataclass
class Plan:
    """A campaign's funnel over its matched customers, as parallel arrays sorted by customer."""

    campaign: "Campaign"
    refresh_id: int | None
    as_of: str | None
    send_at: int
    planned_day: str
    plan_at: int
    zone: str
    base: "audience.Base"
    rules: list[CapRule]  # the rules that can apply to this channel
    customers: np.ndarray  # customer ids, ascending
    segment_codes: np.ndarray  # into base.segments
    arm_codes: np.ndarray  # into arm_names
    arm_names: list[str]
    reasons: np.ndarray  # into REASON_ORDER
    broken: np.ndarray  # into rules, -1 for none
    planned_at: np.ndarray  # when each sendable member is scheduled (0 for the others)
    window: list[np.ndarray] = field(default_factory=list)  # per rule, touches already in its window

    @cached_property
    def counts(self) -> dict[str, int]:
        found = np.bincount(self.reasons, minlength=len(REASON_ORDER))
        return {reason: int(found[code]) for code, reason in enumerate(REASON_ORDER)}

    @property
    def deferred(self) -> int:
        return self.counts["deferred"]

    @cached_property
    def sending(self) -> np.ndarray:
        """True for the members who would get the message (sendable or deferred)."""
        return (self.reasons == REASON_CODE["sendable"]) | (self.reasons == REASON_CODE["deferred"])

    @cached_property
    def members(self) -> pl.DataFrame:
        """The plan as rows: customer, segment, arm, reason, rule, planned_at (sorted by customer)."""
        sending = self.sending
        return pl.DataFrame({
            "customer": pl.Series(self.customers, dtype=pl.Int32),
            "segment": _decode(self.segment_codes, self.base.segments),
            "arm": _decode(self.arm_codes, self.arm_names),
            "reason": _decode(self.reasons, list(REASON_ORDER)),
            "rule": _decode(self.broken + 1, [None, *(rule.name for rule in self.rules)]),
            "planned_at": pl.Series(self.planned_at, dtype=pl.Int64).set(pl.Series(~sending), None)
            if len(self.planned_at) else pl.Series([], dtype=pl.Int64),
        })

    def members_for_store(self) -> pl.DataFrame:
        """The rows frozen into ``campaign_members`` (and hashed), sorted by customer."""
        return self.members.select("customer", "arm", "reason", "rule", "segment", "planned_at")

    def summary(self, sample: int = 20) -> dict[str, Any]:
        """The preview: the funnel, by segment, by rule (with projected use), and a sample of rows."""
        counts = self.counts
        return {
            "matched": int(len(self.customers)),
            "excluded": {reason: counts[reason] for reason in EXCLUSIONS},
            "sendable": counts["sendable"] + counts["deferred"],
            "by_segment": self._by_segment(),
            "by_rule": self._by_rule(),
            "sample": self._sample(sample),
        }

    def _by_segment(self) -> dict[str, dict[str, int]]:
        width = len(REASON_ORDER)
        grid = np.bincount(self.segment_codes.astype(np.int64) * width + self.reasons.astype(np.int64),
                           minlength=len(self.base.segments) * width).reshape(-1, width)
        out: dict[str, dict[str, int]] = {}
        for code, row in enumerate(grid):
            if not row.any():
                continue
            segment = self.base.segments[code]
            entry = {"matched": int(row.sum()),
                     "sendable": int(row[REASON_CODE["sendable"]] + row[REASON_CODE["deferred"]]),
                     "deferred": int(row[REASON_CODE["deferred"]])}
            entry.update({reason: int(row[REASON_CODE[reason]]) for reason in EXCLUSIONS})
            out[segment if segment is not None else NO_SEGMENT] = entry
        return dict(sorted(out.items()))

    def _by_rule(self) -> dict[str, dict[str, Any]]:
        counting = bool(self.campaign.counts_toward_caps)
        sending = self.sending
        out: dict[str, dict[str, Any]] = {}
        for index, rule in enumerate(self.rules):
            applying = sending & self._segment_is(rule.segment) if rule.segment != "any" else sending
            at_cap_after = None
            if counting and self.window:
                at_cap_after = int((applying & (self.window[index] + 1 >= rule.max)).sum())
            out[rule.name] = {"max": rule.max, "per": rule.per, "over_budget": int((self.broken == index).sum()),
                              "counted": int(applying.sum()) if counting else 0, "at_cap_after": at_cap_after}
        return out

    def _segment_is(self, name: str) -> np.ndarray:
        if name not in self.base.segments:
            return np.zeros(len(self.customers), dtype=bool)
        return self.segment_codes == self.base.segments.index(name)

    def _sample(self, size: int) -> list[dict[str, Any]]:
        """A few rows of every reason (so each exclusion has an example), lowest customer ids first."""
        if size <= 0 or len(self.customers) == 0:
            return []
        per_reason = max(1, size // len(REASON_ORDER))
        picked = np.concatenate([
            np.flatnonzero(self.reasons == code)[:per_reason] for code in range(len(REASON_ORDER))
        ])[:size]
        ids = self.customers[picked]
        names = dict(
            self.base.frame.filter(pl.col("customer").is_in(pl.Series(ids, dtype=pl.Int32).implode()))
            .select("customer", "customer_id").iter_rows()
        )
        zone = _zone(self.zone)
        rules = [rule.name for rule in self.rules]
        return [
            {"customer_id": names.get(int(self.customers[row])),
             "segment": self.base.segments[self.segment_codes[row]],
             "arm": self.arm_names[self.arm_codes[row]],
             "reason": REASON_ORDER[self.reasons[row]],
             "rule": rules[self.broken[row]] if self.broken[row] >= 0 else None,
             "send_at": format_instant(int(self.planned_at[row]), zone)
             if REASON_ORDER[self.reasons[row]] in SENDING else None}
            for row in picked.tolist()
        ]


def _decode(codes: np.ndarray, names: list[str | None]) -> pl.Series:
    """Integer codes -> their names, as a String column (one gather, not a Python loop)."""
    table = pl.Series(names, dtype=pl.String)
    return table.gather(pl.Series(codes.astype(np.int64)))


def _zone(name: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def _shop_day(instant: int, zone) -> int:
    return (datetime.fromtimestamp(instant, tz=zone).date() - EPOCH_DAY).days


def compute(store: "Store", campaign: "Campaign", now: int) -> Plan:
    """The campaign's plan if it were sent from ``now`` (its send time, if later).

    Works on whole columns of the cached audience base (:func:`core.audience.base`)
    and the dense budget counts (:func:`core.budget.dense_verdicts`): no join
    of the audience against the ledger, so a preview over a million customers
    stays interactive.
    """
    config = store.config
    zone = config.zone
    current = audience.base(store)
    expression = audience.compile_expression(campaign.audience)
    mask = audience.match_mask(current, expression)
    channel = campaign.channel
    matched = current.frame.select(
        "customer", "segment_code", "tz_code", "has_email", "has_phone", f"accepts_{channel}",
    ).filter(mask)
    send_at = campaign.send_instant(now)
    frozen = campaign.planned_day is not None and campaign.plan_at is not None
    planned_day = campaign.planned_day if frozen else datetime.fromtimestamp(send_at, tz=zone).date().isoformat()
    plan_at = campaign.plan_at if frozen else (campaign.send_at if campaign.send_at is not None else now)

    customers = matched["customer"].to_numpy()
    segment_codes = matched["segment_code"].to_numpy()
    size = len(customers)
    reasons = np.full(size, OPEN, dtype=np.int8)

    # Reachable: consent given, not opted out, and an address for the channel.
    consent = matched[f"accepts_{channel}"].fill_null(0).to_numpy()
    address = {"email": "has_email", "sms": "has_phone"}.get(channel)
    has_address = matched[address].fill_null(False).to_numpy() if address else np.ones(size, dtype=bool)
    reasons[(~has_address) | (consent == 0)] = REASON_CODE["no_consent"]
    reasons[(reasons == OPEN) & (consent == -1)] = REASON_CODE["opted_out"]

    # Holdout, by the stable hash, before caps.
    arm_codes, arm_names = arms.codes(campaign.id, customers, campaign.holdout_pct, campaign.variant_names)
    reasons[(reasons == OPEN) & (arm_codes == len(arm_names) - 1)] = REASON_CODE["holdout"]

    # When each message would land, in the customer's own time zone.
    in_quiet_by_zone, deferred_by_zone = quiet.by_zone(current.zones, send_at, config.quiet_hours, config.timezone)
    day_by_zone = np.array([_shop_day(int(instant), zone) for instant in deferred_by_zone], dtype=np.int32)
    zone_codes = matched["tz_code"].to_numpy()
    in_quiet = in_quiet_by_zone[zone_codes]
    defer = campaign.quiet == "defer"
    planned_at = np.where(in_quiet & defer, deferred_by_zone[zone_codes], send_at)
    days = np.where(in_quiet & defer, day_by_zone[zone_codes], _shop_day(send_at, zone)).astype(np.int32)

    relevant = budget.relevant_rules(config.caps, channel)
    broken = np.full(size, -1, dtype=np.int8)
    window: list[np.ndarray] = []
    if campaign.obeys_caps and relevant:
        open_rows = np.flatnonzero(reasons == OPEN)
        if len(open_rows):
            open_broken, open_window = _budget_verdicts(
                store, campaign, current, customers[open_rows], days[open_rows], segment_codes[open_rows],
                planned_day, plan_at,
            )
            broken[open_rows] = open_broken
            window = [np.zeros(size, dtype=np.int32) for _ in relevant]
            for position, column in enumerate(open_window):
                window[position][open_rows] = column
            reasons[open_rows[open_broken >= 0]] = REASON_CODE["over_budget"]

    still_open = reasons == OPEN
    reasons[still_open & in_quiet & (not defer)] = REASON_CODE["quiet_hours"]
    reasons[still_open & in_quiet & defer] = REASON_CODE["deferred"]
    reasons[still_open & ~in_quiet] = REASON_CODE["sendable"]
    sending = (reasons == REASON_CODE["sendable"]) | (reasons == REASON_CODE["deferred"])
    return Plan(
        campaign=campaign, refresh_id=current.refresh["id"] if current.refresh else None,
        as_of=current.refresh["as_of"] if current.refresh else None, send_at=send_at, planned_day=planned_day,
        plan_at=plan_at, zone=config.timezone, base=current, rules=relevant, customers=customers,
        segment_codes=segment_codes, arm_codes=arm_codes, arm_names=arm_names, reasons=reasons,
        broken=broken, planned_at=np.where(sending, planned_at, 0), window=window,
    )


def _budget_verdicts(store: "Store", campaign: "Campaign", current: "audience.Base", customers: np.ndarray,
                     days: np.ndarray, segment_codes: np.ndarray, planned_day: str,
                     plan_at: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Over-budget verdicts for the members still in the funnel (ledger + reservations ahead of us)."""

    def segment_is(name: str) -> np.ndarray:
        if name not in current.segments:
            return np.zeros(len(customers), dtype=bool)
        return segment_codes == current.segments.index(name)

    return budget.campaign_verdicts(
        store, campaign.channel, budget.Precedence(campaign.id, campaign.priority, plan_at), planned_day,
        customers, days, segment_is,
    )


def preview(store: "Store", campaign_id: int | str, now: int, sample: int = 20) -> dict[str, Any]:
    """``campaign preview``: the live funnel (what would happen if it were sent now)."""
    from core import campaigns

    campaign = campaigns.get(store, campaign_id)
    return compute(store, campaign, now).summary(sample)


def describe(plan: Plan) -> dict[str, Any]:
    """Context shown beside a preview: the reading, the send time and the day budget is counted on."""
    return {
        "campaign": plan.campaign.id, "name": plan.campaign.name, "channel": plan.campaign.channel,
        "as_of": plan.as_of, "refresh_id": plan.refresh_id,
        "send_at": format_instant(plan.send_at, _zone(plan.zone)), "planned_day": plan.planned_day,
        "deferred": plan.deferred, "obeys_caps": bool(plan.campaign.obeys_caps),
        "counts_toward_caps": bool(plan.campaign.counts_toward_caps),
    }
