"""Lifecycle stages: a partition, first matching rule wins (DESIGN "Lifecycle")."""

from __future__ import annotations

import polars as pl

from core.config import LifecycleConfig
from core.labels import STAGE_ZH as ZH  # noqa: F401 (re-exported)
from core.labels import stage_label as label  # noqa: F401 (re-exported)

STAGES = ("new", "prospect", "churned", "dormant", "active", "occasional")


def rules(config: LifecycleConfig) -> list[tuple[str, str]]:
    """The rules in order, in words, for explanations and help."""
    return [
        ("new", f"signed up {config.new_days} days ago or less"),
        ("prospect", "no qualifying order"),
        ("churned", f"last order {config.churned_days} or more days ago"),
        ("dormant", f"last order {config.dormant_days} or more days ago"),
        ("active", f"{config.active_orders_30d} or more orders in the last 30 days"),
        ("occasional", "everyone else"),
    ]


def stage_expr(config: LifecycleConfig, as_of_day: int) -> pl.Expr:
    """Needs ``signup_day``, ``last_day``, ``recency_days`` and ``orders_30d``."""
    return (
        pl.when((as_of_day - pl.col("signup_day")).is_between(0, config.new_days)).then(pl.lit("new"))
        .when(pl.col("last_day").is_null()).then(pl.lit("prospect"))
        .when(pl.col("recency_days") >= config.churned_days).then(pl.lit("churned"))
        .when(pl.col("recency_days") >= config.dormant_days).then(pl.lit("dormant"))
        .when(pl.col("orders_30d") >= config.active_orders_30d).then(pl.lit("active"))
        .otherwise(pl.lit("occasional"))
    )


def fired_rule(config: LifecycleConfig, stage: str) -> str:
    return dict(rules(config))[stage]
