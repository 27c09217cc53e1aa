"""Who are my customers: segment tables, the R x F grid, and who moved.

The configured model's figures come straight from the latest refresh record
(one row, so the answer is instant at any size); another model is computed
from the saved reading.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from core import segments
from core.config import BUILTIN_MODELS
from core.errors import Conflict, InputError
from core.refresh import latest_refresh

if TYPE_CHECKING:
    from core.store import Store


def require_reading(store: "Store") -> dict:
    latest = latest_refresh(store)
    if latest is None:
        raise Conflict("there is no reading yet", hint="Run `tierdesk refresh` to compute one.")
    return latest


def check_model(store: "Store", model: str) -> str:
    known = [*BUILTIN_MODELS, *store.config.segments]
    if model not in known:
        raise InputError(f"unknown model {model!r} (known: {', '.join(known)})")
    return model


def summary(store: "Store", model: str | None = None) -> dict[str, Any]:
    """Per segment: customers, share, window revenue and its share, average scores, moves."""
    latest = require_reading(store)
    config = store.config
    model = check_model(store, model or latest["model"])
    counts = latest["counts"]
    tracked = model == latest["model"] and counts.get("moves_counted", False)
    if model == latest["model"]:
        per_segment = counts["segments"]
    else:
        per_segment = _segments_from_snapshot(store, latest, model)
    population = max(counts["population"], 1)
    revenue_total = max(counts["revenue_total"], 1)
    rows = []
    for name in segments.names(model, config):
        data = per_segment.get(name)
        if data is None:
            data = {"customers": 0, "revenue": 0, "avg_r": None, "avg_f": None, "avg_m": None}
        rows.append({
            "segment": name,
            "label": segments.label(name, config.language),
            "customers": data["customers"],
            "share": data["customers"] / population,
            "revenue_cents": data["revenue"],
            "revenue_share": data["revenue"] / revenue_total,
            "avg_r": data.get("avg_r"), "avg_f": data.get("avg_f"), "avg_m": data.get("avg_m"),
            "moved_in": (data.get("moved_in", 0) + data.get("entered", 0)) if tracked else None,
            "moved_out": data.get("moved_out", 0) if tracked else None,
        })
    return {
        "refresh": {key: latest[key] for key in ("id", "as_of", "model", "lookback_days", "population", "scored")},
        "model": model,
        "rows": rows,
        "grid": counts["grid"],
        "lifecycle": counts["lifecycle"],
        "tags": counts["tags"],
        "revenue_total_cents": counts["revenue_total"],
        "moves_tracked": tracked,
        "warnings": counts.get("warnings", []),
        "stale": _stale(counts),
    }


def _stale(counts: dict) -> bool:
    """Whether a reading's newest order was long before its as-of (``stale_days`` recorded).

    A reading made before ``stale_days`` was recorded said so only in its warning's words.
    """
    if "stale_days" in counts:
        return counts["stale_days"] is not None
    return any("probably stale" in warning for warning in counts.get("warnings", []))


def _segments_from_snapshot(store: "Store", latest: dict, model: str) -> dict[str, dict]:
    from core.reading import segment_counts
    from core.refresh import current_reading
    from core.segments import Cn8Split

    _, frame = current_reading(store)
    split = Cn8Split(**latest["cut_points"]["cn8_split"])
    frame = frame.with_columns(segment=segments.assign(frame, model, store.config, split))
    out = {}
    for row in segment_counts(frame).iter_rows(named=True):
        out[row["segment"]] = {key: row[key] for key in ("customers", "revenue", "avg_r", "avg_f", "avg_m")}
    return out


def grid_regions(model: str = "rf11") -> list[list[str]]:
    """The rf11 segment of every R x F cell, rows R1..R5, columns F1..F5."""
    return [[segments.rf11_cell(r, f) for f in range(1, 6)] for r in range(1, 6)]


def canonical_segment(store: "Store", name: str, model: str | None = None) -> str:
    """Accept a segment by its English or Chinese name, in any case."""
    latest = latest_refresh(store)
    model = model or (latest["model"] if latest else store.config.rfm.model)
    options = segments.names(model, store.config)
    wanted = name.strip().casefold()
    for option in options:
        if wanted in (option.casefold(), segments.label(option, "zh").casefold()):
            return option
    raise InputError(f"unknown segment {name!r} (segments of {model}: {', '.join(options)})")


def moved(store: "Store", *, from_segment: str | None = None, to_segment: str | None = None,
          since: date | None = None, limit: int = 200) -> dict[str, Any]:
    """Who moved between segments: since a date, or else in the latest refresh."""
    latest = require_reading(store)
    where = ["e.model = ?"]
    params: list[Any] = [latest["model"]]
    if since is None:
        where.append("e.refresh_id = ?")
        params.append(latest["id"])
        scope = f"in the refresh of {latest['as_of']}"
    else:
        where.append("e.as_of >= ?")
        params.append(since.isoformat())
        scope = f"since {since.isoformat()}"
    if from_segment:
        where.append("e.from_segment = ?")
        params.append(canonical_segment(store, from_segment))
    if to_segment:
        where.append("e.to_segment = ?")
        params.append(canonical_segment(store, to_segment))
    clause = " AND ".join(where)
    flows = store.rows(
        f"SELECT coalesce(e.from_segment, '(new)') AS from_segment, e.to_segment, count(*) AS customers "
        f"FROM tier_events AS e WHERE {clause} GROUP BY 1, 2 ORDER BY customers DESC, 1, 2",
        tuple(params),
    )
    total = sum(flow["customers"] for flow in flows)
    people = store.rows(
        f"SELECT c.customer_id, c.name, e.from_segment, e.to_segment, e.as_of FROM tier_events AS e "
        f"JOIN customers AS c ON c.id = e.customer WHERE {clause} ORDER BY e.id DESC LIMIT ?",
        (*params, limit),
    )
    return {"scope": scope, "model": latest["model"], "total": total, "flows": flows, "customers": people,
            "shown": len(people)}
