"""The reading: every customer's R/F/M, scores, segment, lifecycle and tags at an as-of.

:func:`compute` is pure: frames in, a :class:`Reading` out, with no store
and no clock. ``core.refresh`` feeds it from the store and writes the result;
``core.explain`` runs it for one customer to say why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from core import lifecycle, rfm, segments, tags
from core.clock import EPOCH_DAY
from core.config import Config

# Columns the store keeps per customer (customer_state); the rest is derived.
STATE_COLUMNS = (
    "first_day", "last_day", "frequency", "monetary", "aov",
    "r_score", "f_score", "m_score", "segment", "lifecycle", "tags_text",
)


def day_number(day: date) -> int:
    return (day - EPOCH_DAY).days


@dataclass(frozen=True)
class Reading:
    as_of: date
    model: str
    lookback_days: int
    frame: pl.DataFrame  # one row per customer in the population, sorted by customer
    reports: dict[str, rfm.ScoreReport]
    split: segments.Cn8Split
    median_order: float | None  # only computed for a small population
    median_aov: float
    newest_order_day: int | None

    @property
    def population(self) -> int:
        return self.frame.height

    @property
    def scored(self) -> int:
        return int(self.frame["r_score"].is_not_null().sum())

    @property
    def stale_days(self) -> int | None:
        """Days between the newest order and the as-of (None without orders)."""
        if self.newest_order_day is None:
            return None
        return day_number(self.as_of) - self.newest_order_day

    def method(self) -> dict:
        return {name: report.as_dict() for name, report in self.reports.items()} | {
            "cn8_split": self.split.as_dict(),
            "median_order_cents": self.median_order,
            "median_aov_cents": self.median_aov,
        }


def compute(
    orders: pl.DataFrame | pl.LazyFrame,
    events: pl.DataFrame | pl.LazyFrame,
    customers: pl.DataFrame | pl.LazyFrame,
    as_of: date,
    config: Config,
) -> Reading:
    """Compute the reading at ``as_of`` (a shop day; later data is ignored)."""
    rfm_config = config.rfm
    as_of_day = day_number(as_of)
    lookback = rfm_config.lookback_days
    orders = orders.lazy()
    events = events.lazy()

    facts = rfm.order_facts(orders, as_of_day, lookback)
    event_facts = tags.event_facts(events, as_of_day, config.tags)
    affinity = tags.affinity(orders, as_of_day, lookback, config.tags)
    people = customers.lazy().select(
        pl.col("id").cast(pl.Int32).alias("customer"), pl.col("signup_day")
    )
    frame = (
        people.join(facts, on="customer", how="full", coalesce=True)
        .join(event_facts, on="customer", how="left")
        .join(affinity, on="customer", how="left")
        .filter(
            (pl.col("signup_day") <= as_of_day)
            | pl.col("signup_day").is_null()
            | pl.col("first_day").is_not_null()
        )
        .with_columns(
            # Nobody signs up after their first order, whatever order the files came in.
            signup_day=pl.min_horizontal("signup_day", "first_day"),
            frequency=pl.col("frequency").fill_null(0),
            monetary=pl.col("monetary").fill_null(0),
            orders_30d=pl.col("orders_30d").fill_null(0),
            discounted=pl.col("discounted").fill_null(0),
            social_events=pl.col("social_events").fill_null(0),
            koc_events=pl.col("koc_events").fill_null(0),
            recency_days=(as_of_day - pl.col("last_day")).cast(pl.Int32),
        )
        .with_columns(
            aov=pl.when(pl.col("frequency") > 0)
            .then(((pl.col("monetary") * 2 + pl.col("frequency")) // (2 * pl.col("frequency"))))
            .cast(pl.Int64),
        )
        .sort("customer")
        .collect()
    )

    scored_input = frame.filter(pl.col("frequency") >= 1).select("customer", "recency_days", "frequency", "monetary")
    # The median order only sets the M cut-offs of a small population.
    small = scored_input.height < rfm_config.small_population
    median_order = rfm.median_order(orders, as_of_day, lookback) if small else None
    scored, reports = rfm.score(scored_input, rfm_config, median_order or 0.0)
    frame = frame.join(scored.select("customer", "r_score", "f_score", "m_score"), on="customer", how="left")
    split = segments.cn8_split(scored, config)
    median_aov = float(frame.filter(pl.col("frequency") >= 1)["aov"].median() or 0.0)

    frame = frame.with_columns(segment=segments.assign(frame, rfm_config.model, config, split))
    frame = frame.with_columns(
        lifecycle=lifecycle.stage_expr(config.lifecycle, as_of_day),
        tags_text=tags.tags_text(config.tags, median_aov),
    )
    frame = frame.with_columns(**_outlook(lookback))
    newest = orders.filter(pl.col("day") <= as_of_day).select(pl.col("day").max()).collect().item()
    return Reading(
        as_of=as_of,
        model=rfm_config.model,
        lookback_days=lookback,
        frame=frame,
        reports=reports,
        split=split,
        median_order=median_order,
        median_aov=median_aov,
        newest_order_day=newest,
    )


def with_outlook(state: pl.DataFrame, as_of_day: int, lookback_days: int) -> pl.DataFrame:
    """Add what follows from the as-of to a stored state (recency, churn risk, CLV)."""
    state = state.with_columns(recency_days=(as_of_day - pl.col("last_day")).cast(pl.Int32))
    return state.with_columns(**_outlook(lookback_days))


def _outlook(lookback_days: int) -> dict[str, pl.Expr]:
    """Churn risk and 12-month value: simple, explainable heuristics.

    Orders are taken to arrive at the customer's window rate; past the usual
    gap between orders, the chance they are still a customer decays.
    P(churn) = P(no order in the next 90 days); CLV = expected net spend in
    the next 365 days. Prospects get neither.
    """
    rate = pl.col("frequency") / lookback_days  # orders per day
    gap = pl.when(rate > 0).then(1 / rate)
    overdue = (pl.col("recency_days") - gap).clip(lower_bound=0)
    alive = pl.when(rate > 0).then((-(overdue / gap)).exp()).otherwise(0.0)
    ordering = 1 - (-(90 * rate)).exp()
    has_orders = pl.col("last_day").is_not_null()
    return {
        "churn_risk": pl.when(has_orders).then((1 - alive * ordering).round(2)),
        "clv": pl.when(has_orders).then((alive * rate * 365 * pl.col("aov").fill_null(0)).round(0).cast(pl.Int64)),
    }


def segment_counts(frame: pl.DataFrame) -> pl.DataFrame:
    """Per segment: customers, window revenue and average R/F/M scores."""
    return (
        frame.group_by("segment")
        .agg(
            customers=pl.len(),
            revenue=pl.col("monetary").sum(),
            avg_r=pl.col("r_score").mean(),
            avg_f=pl.col("f_score").mean(),
            avg_m=pl.col("m_score").mean(),
        )
        .sort("segment")
    )
