"""Segment maps: the 11-segment R x F map, the Chinese eight classes, custom maps.

Stored segment values are the English names below (or a custom map's names);
:func:`label` shows them in the configured language. Customers without a
score are outside every map: *Lost* if they bought before the window,
*Prospect* if they never bought.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from core.config import Config, SegmentRule
from core.labels import SEGMENT_ZH as ZH  # noqa: F401 (re-exported)
from core.labels import segment_label as label  # noqa: F401 (re-exported)
from core.labels import CN8, LOST, OTHER, PROSPECT, RF11, segment_names  # noqa: F401 (re-exported)


def names(model: str, config: Config) -> list[str]:
    """Every segment a model can assign, in display order (unscored last)."""
    if model in ("rf11", "cn8"):
        return segment_names(model)
    return segment_names(model, (rule.name for rule in config.segments[model]))


def rf11_cell(r: int, f: int) -> str:
    for name, (r_lo, r_hi), (f_lo, f_hi) in RF11:
        if r_lo <= r <= r_hi and f_lo <= f <= f_hi:
            return name
    raise ValueError(f"R{r} F{f} is outside the rf11 map")


@dataclass(frozen=True)
class Cn8Split:
    """The values that split high from low in the eight-class model."""

    method: str
    recency_days: float
    frequency: float
    monetary: float

    def as_dict(self) -> dict:
        return {"method": self.method, "recency_days": self.recency_days,
                "frequency": self.frequency, "monetary": self.monetary}


def cn8_split(scored: pl.DataFrame, config: Config) -> Cn8Split:
    method = config.rfm.cn8_split
    if method == "fixed" and config.rfm.cn8_fixed:
        fixed = config.rfm.cn8_fixed
        # the config gives money in currency units; the reading is in cents
        return Cn8Split("fixed", fixed["recency_days"], fixed["frequency"], fixed["monetary"] * 100)
    if scored.height == 0:
        return Cn8Split(method, 0.0, 0.0, 0.0)
    agg = pl.median if method == "median" else pl.mean
    row = scored.select(
        agg("recency_days").alias("r"), agg("frequency").alias("f"), agg("monetary").alias("m")
    ).row(0)
    return Cn8Split(method, float(row[0]), float(row[1]), float(row[2]))


def segment_expr(model: str, config: Config, split: Cn8Split | None) -> pl.Expr:
    """The segment of a scored customer (r_score, f_score, m_score columns)."""
    r, f, m = pl.col("r_score"), pl.col("f_score"), pl.col("m_score")
    if model == "rf11":
        expr = pl.when(False).then(pl.lit(None, dtype=pl.String))
        for name, (r_lo, r_hi), (f_lo, f_hi) in RF11:
            expr = expr.when(r.is_between(r_lo, r_hi) & f.is_between(f_lo, f_hi)).then(pl.lit(name))
        return expr.otherwise(pl.lit(OTHER))
    if model == "cn8":
        assert split is not None
        r_high = pl.col("recency_days") <= split.recency_days
        f_high = pl.col("frequency") >= split.frequency
        m_high = pl.col("monetary") >= split.monetary
        expr = pl.when(False).then(pl.lit(None, dtype=pl.String))
        for name, rh, fh, mh in CN8:
            expr = expr.when((r_high == rh) & (f_high == fh) & (m_high == mh)).then(pl.lit(name))
        return expr.otherwise(pl.lit(OTHER))
    return custom_expr(config.segments[model])


def custom_expr(rules: tuple[SegmentRule, ...]) -> pl.Expr:
    """Top-down, first match wins; unmatched cells are 'Other'."""
    r, f, m = pl.col("r_score"), pl.col("f_score"), pl.col("m_score")
    expr = pl.when(False).then(pl.lit(None, dtype=pl.String))
    for rule in rules:
        expr = expr.when(
            r.is_between(*rule.r) & f.is_between(*rule.f) & m.is_between(*rule.m)
        ).then(pl.lit(rule.name))
    return expr.otherwise(pl.lit(OTHER))


def assign(reading: pl.DataFrame, model: str, config: Config, split: Cn8Split | None) -> pl.Series:
    """Segments for a whole reading: scored by the map, the rest Lost or Prospect."""
    return reading.select(
        pl.when(pl.col("r_score").is_not_null())
        .then(segment_expr(model, config, split))
        .when(pl.col("last_day").is_not_null())
        .then(pl.lit(LOST))
        .otherwise(pl.lit(PROSPECT))
        .alias("segment")
    ).to_series()


def describe_cell(model: str, config: Config, r: int | None, f: int | None, m: int | None,
                  split: Cn8Split | None = None, values: dict | None = None) -> str:
    """Which rule of the map put a customer where they are, in words."""
    if r is None:
        return "no qualifying order in the window: outside the score grid"
    if model == "rf11":
        name = rf11_cell(r, f)
        for cell_name, (r_lo, r_hi), (f_lo, f_hi) in RF11:
            if cell_name == name:
                return f"R{r} F{f} is in {name} (R {_span(r_lo, r_hi)}, F {_span(f_lo, f_hi)})"
    if model == "cn8" and split is not None and values is not None:
        parts = [
            f"R {'high' if values['recency_days'] <= split.recency_days else 'low'} "
            f"({values['recency_days']} days vs {split.method} {split.recency_days:.1f})",
            f"F {'high' if values['frequency'] >= split.frequency else 'low'} "
            f"({values['frequency']} vs {split.frequency:.2f})",
            f"M {'high' if values['monetary'] >= split.monetary else 'low'} "
            f"({values['monetary'] / 100:.2f} vs {split.monetary / 100:.2f})",
        ]
        return "; ".join(parts)
    if model in config.segments:
        for index, rule in enumerate(config.segments[model], start=1):
            if rule.r[0] <= r <= rule.r[1] and rule.f[0] <= f <= rule.f[1] and rule.m[0] <= (m or 0) <= rule.m[1]:
                return (f"R{r} F{f} M{m} matches rule {index} {rule.name!r} "
                        f"(R {_span(*rule.r)}, F {_span(*rule.f)}, M {_span(*rule.m)}; first match wins)")
        return f"R{r} F{f} M{m} matches no rule: {OTHER}"
    return ""


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}-{high}"
