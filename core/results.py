"""Results: did the campaign change what people bought? (DESIGN "Results")

A member *converts* when they place a qualifying order (``core.rfm.qualifying``)
within ``send.attribution_days`` after their touch — after the campaign's
send time for the control group, who got no touch: the window is
``(start, start + days]``. Revenue is the net amount of those orders.

The treatment arms are the members who were touched; the control arm is the
holdout (drawn before consent-reachable members were capped, so a few in it
might have been over budget — with small holdouts this is noise, and
it never flatters the campaign).

Each comparison gives the difference in conversion rate and in revenue per
member with a 95% interval (normal approximation: Wald for proportions,
Welch for revenue). An interval that spans zero reads "inconclusive" — an
honest answer for small shops — and a power note says how many members per
arm it would take to see a difference of the observed size (80% power).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import TYPE_CHECKING, Any

import polars as pl

from core import campaigns, fastread
from core.arms import CONTROL
from core.clock import format_instant
from core.errors import Conflict
from core.rfm import qualifying

if TYPE_CHECKING:
    from core.store import Store

Z_95 = 1.959963984540054
Z_POWER_80 = 0.8416212335729143
SMALL_ARM = 30
DAY = 86_400


def arm_outcomes(members: pl.DataFrame, orders: pl.DataFrame, window_seconds: int) -> pl.DataFrame:
    """Per member (customer, arm, start): ``converted`` and ``revenue`` (cents) within the window."""
    counted = orders.filter(qualifying()).select(
        "customer", "placed_at", (pl.col("total_cents") - pl.col("refunded_cents")).alias("net")
    )
    hits = (
        members.join(counted, on="customer", how="inner")
        .filter((pl.col("placed_at") > pl.col("start")) & (pl.col("placed_at") <= pl.col("start") + window_seconds))
        .group_by("customer", "arm")
        .agg(orders=pl.len(), revenue=pl.col("net").sum())
    )
    return members.join(hits, on=["customer", "arm"], how="left").with_columns(
        converted=pl.col("orders").fill_null(0) > 0,
        revenue=pl.col("revenue").fill_null(0).cast(pl.Int64),
    )


def summarise(outcomes: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per arm: members, conversions, rate, revenue and revenue per member (with its variance)."""
    table = outcomes.group_by("arm").agg(
        members=pl.len(),
        conversions=pl.col("converted").sum(),
        revenue=pl.col("revenue").sum(),
        revenue_var=pl.col("revenue").cast(pl.Float64).var(ddof=1),
    ).sort("arm")
    arms = {}
    for row in table.iter_rows(named=True):
        n = int(row["members"])
        arms[row["arm"]] = {
            "members": n,
            "conversions": int(row["conversions"]),
            "conversion_rate": row["conversions"] / n if n else None,
            "revenue_cents": int(row["revenue"]),
            "revenue_per_member_cents": row["revenue"] / n if n else None,
            "revenue_var": float(row["revenue_var"]) if row["revenue_var"] is not None else 0.0,
        }
    return arms


def _interval(diff: float, se: float) -> tuple[float, float, str]:
    low, high = diff - Z_95 * se, diff + Z_95 * se
    verdict = "inconclusive" if low <= 0 <= high else ("better" if low > 0 else "worse")
    return low, high, verdict


def wilson(successes_share: float, n: int) -> tuple[float, float]:
    """Wilson's score interval for a proportion (sensible at 0% and 100%)."""
    z2 = Z_95 ** 2
    centre = (successes_share + z2 / (2 * n)) / (1 + z2 / n)
    half = Z_95 / (1 + z2 / n) * math.sqrt(successes_share * (1 - successes_share) / n + z2 / (4 * n * n))
    return centre - half, centre + half


def difference_interval(p_a: float, n_a: int, p_b: float, n_b: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval for p_a - p_b (his method 10).

    Unlike the textbook normal interval it has no zero width when an arm
    converts nobody (0 of 233 against 0 of 41 is not "exactly no effect").
    """
    low_a, high_a = wilson(p_a, n_a)
    low_b, high_b = wilson(p_b, n_b)
    diff = p_a - p_b
    return (diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))


def needed_per_arm(p_base: float, difference: float) -> int:
    """Members per arm to detect ``difference`` in conversion at 95% / 80% power."""
    p_other = min(max(p_base + difference, 0.0), 1.0)
    spread = p_base * (1 - p_base) + p_other * (1 - p_other)
    if difference == 0:
        return 0
    return math.ceil((Z_95 + Z_POWER_80) ** 2 * spread / difference ** 2)


def compare(a_name: str, a: dict[str, Any], b_name: str, b: dict[str, Any]) -> dict[str, Any]:
    """Arm ``a`` against arm ``b``: uplift in conversion and revenue per member, with 95% intervals."""
    n_a, n_b = a["members"], b["members"]
    if not n_a or not n_b:
        return {"a": a_name, "b": b_name, "verdict": "no data",
                "warnings": [f"{a_name if not n_a else b_name} has no members"]}
    p_a, p_b = a["conversion_rate"], b["conversion_rate"]
    diff = p_a - p_b
    low, high = difference_interval(p_a, n_a, p_b, n_b)
    verdict = "inconclusive" if low <= 0 <= high else ("better" if low > 0 else "worse")
    r_diff = a["revenue_per_member_cents"] - b["revenue_per_member_cents"]
    r_se = math.sqrt(a["revenue_var"] / n_a + b["revenue_var"] / n_b)
    r_low, r_high, r_verdict = _interval(r_diff, r_se)
    # The effect to plan for: the one observed, or a 20% relative lift (at least a point) when none was.
    target = abs(diff) if diff else max(0.2 * p_b, 0.01)
    needed = needed_per_arm(p_b, target)
    warnings = []
    if min(n_a, n_b) < needed:
        warnings.append(
            f"low power: arms of {n_a:,} and {n_b:,} members; seeing a {target * 100:.1f}-point difference "
            f"reliably takes about {needed:,} per arm"
        )
    if min(n_a, n_b) < SMALL_ARM:
        warnings.append(f"an arm has fewer than {SMALL_ARM} members: treat any difference as anecdote")
    return {
        "a": a_name, "b": b_name,
        "conversion": {"a": p_a, "b": p_b, "uplift": diff, "low": low, "high": high, "verdict": verdict},
        "revenue_per_member_cents": {"a": a["revenue_per_member_cents"], "b": b["revenue_per_member_cents"],
                                     "uplift": r_diff, "low": r_low, "high": r_high, "verdict": r_verdict},
        "needed_per_arm": needed,
        "verdict": verdict,
        "warnings": warnings,
    }


def results(store: "Store", campaign_id: int | str, now: int) -> dict[str, Any]:
    """Conversion and revenue per arm, and the comparisons (treatment vs control, variant vs variant)."""
    campaign = campaigns.get(store, campaign_id)
    if campaign.state not in ("sending", "sent"):
        raise Conflict(f"campaign {campaign.id} is {campaign.state}: there are no results before it is sent")
    days = store.config.send.attribution_days
    window = days * DAY
    touched = pl.DataFrame(store.conn.execute(
        "SELECT customer, arm, at FROM touches WHERE campaign = ? ORDER BY customer", (campaign.id,)
    ).fetchall(), schema={"customer": pl.Int32, "arm": pl.String, "start": pl.Int64}, orient="row")
    control_start = campaign.send_time or campaign.send_started_at or now
    control = pl.DataFrame(store.conn.execute(
        "SELECT customer FROM campaign_members WHERE campaign = ? AND reason = 'holdout' ORDER BY customer",
        (campaign.id,),
    ).fetchall(), schema={"customer": pl.Int32}, orient="row").with_columns(
        arm=pl.lit(CONTROL), start=pl.lit(control_start, dtype=pl.Int64)
    )
    members = pl.concat([touched, control.select("customer", "arm", "start")])
    orders = fastread.load(store, "orders").filter(pl.col("customer").is_in(members["customer"].implode()))
    outcomes = arm_outcomes(members, orders, window)
    arms = summarise(outcomes)
    treatment_arms = [name for name in arms if name != CONTROL]
    comparisons = []
    if CONTROL in arms:
        comparisons.extend(compare(name, arms[name], CONTROL, arms[CONTROL]) for name in treatment_arms)
    comparisons.extend(compare(a, arms[a], b, arms[b]) for a, b in combinations(treatment_arms, 2))
    zone = store.config.zone
    last_start = int(members["start"].max()) if members.height else control_start
    closes = last_start + window
    notes = []
    if CONTROL not in arms:
        notes.append("no control group (holdout 0%): conversion is shown, uplift cannot be measured")
    if now < closes:
        notes.append(f"preliminary: the attribution window is open until {format_instant(closes, zone)}")
    for arm in arms.values():
        arm.pop("revenue_var")
    return {
        "campaign": campaign.id, "name": campaign.name, "state": campaign.state,
        "attribution_days": days, "send_time": format_instant(control_start, zone),
        "window_closes": format_instant(closes, zone), "arms": arms, "comparisons": comparisons, "notes": notes,
    }
