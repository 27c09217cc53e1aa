"""Messages the console's workers post, and the frozen data they carry.

A worker runs one core call on its own connection and ends by posting one
of these; the message handler (on the UI thread) owns every change to the
screen. What travels is immutable: frozen dataclasses, tuples, read-only
mappings (:func:`freeze`), polars frames (every polars operation returns a
new frame) and Arrow-backed table backends handed over whole, never touched
by the worker again.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Mapping

from textual.message import Message

if TYPE_CHECKING:
    import polars as pl
    from textual_fastdatatable import ArrowBackend

    from console.session import Session
    from core.browse import Found
    from core.customers import Match


def freeze(value: Any) -> Any:
    """A read-only copy of nested dicts and lists (mappings and tuples)."""
    if isinstance(value, dict):
        return MappingProxyType({key: freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item) for item in value)
    return value


@dataclass(frozen=True)
class TierRow:
    """One segment of the tiers table, as core computed it (labels come later)."""

    segment: str
    customers: int
    share: float
    revenue_cents: int
    revenue_share: float
    avg_r: float | None
    avg_f: float | None
    avg_m: float | None
    moved_in: int | None
    moved_out: int | None


@dataclass(frozen=True)
class TiersData:
    """The tiers of one model at the latest reading."""

    model: str
    reading_model: str
    refresh_id: int
    as_of: str
    lookback_days: int
    population: int
    scored: int
    revenue_total_cents: int
    rows: tuple[TierRow, ...]
    grid: tuple[tuple[int, ...], ...]  # R1..R5 rows, F1..F5 columns
    moves_tracked: bool
    warnings: tuple[str, ...]
    stale: bool  # the newest order is well before the as-of

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], reading_model: str) -> "TiersData":
        """Build from :func:`core.tiers.summary`'s answer."""
        refresh = summary["refresh"]
        return cls(
            model=summary["model"],
            reading_model=reading_model,
            refresh_id=refresh["id"],
            as_of=refresh["as_of"],
            lookback_days=refresh["lookback_days"],
            population=refresh["population"],
            scored=refresh["scored"],
            revenue_total_cents=summary["revenue_total_cents"],
            rows=tuple(
                TierRow(**{key: row[key] for key in TierRow.__dataclass_fields__}) for row in summary["rows"]
            ),
            grid=tuple(tuple(int(count) for count in row) for row in summary["grid"]),
            moves_tracked=bool(summary["moves_tracked"]),
            warnings=tuple(summary.get("warnings") or ()),
            stale=bool(summary.get("stale")),
        )


@dataclass(frozen=True)
class StoreFacts:
    """What an unread store holds, for the 'no reading yet' page."""

    customers: int
    orders: int


# --- messages ------------------------------------------------------------------


class SessionLoaded(Message):
    """The store opened: who is at the keyboard and what the latest reading is."""

    def __init__(self, session: "Session") -> None:
        super().__init__()
        self.session = session


class TiersLoaded(Message):
    """The tiers of a model (``data`` is None when the store has no reading yet)."""

    def __init__(self, model: str, data: TiersData | None, facts: StoreFacts | None = None) -> None:
        super().__init__()
        self.model = model
        self.data = data
        self.facts = facts


class TableLoaded(Message):
    """Rows for a virtual table: the backend is built (and measured) off the UI thread.

    ``ids`` holds each row's customer row id, in row order.
    """

    def __init__(self, backend: "ArrowBackend", ids: "pl.Series", *, total: int, note: str = "",
                 generation: int = 0) -> None:
        super().__init__()
        self.backend = backend
        self.ids = ids
        self.total = total
        self.note = note
        self.generation = generation


class MembersReady(Message):
    """A segment's members (unfiltered, unsorted) for later filtering and sorting."""

    def __init__(self, frame: "pl.DataFrame", generation: int = 0) -> None:
        super().__init__()
        self.frame = frame
        self.generation = generation


class MovesLoaded(Message):
    """Who moved into and out of a segment in the latest refresh."""

    def __init__(self, moved_in: "pl.DataFrame", moved_out: "pl.DataFrame", tracked: bool) -> None:
        super().__init__()
        self.moved_in = moved_in
        self.moved_out = moved_out
        self.tracked = tracked


class SearchDone(Message):
    """Results for one search query (stale ones are dropped by the handler)."""

    def __init__(self, query: str, results: tuple["Found", ...]) -> None:
        super().__init__()
        self.query = query
        self.results = results


class ProfileLoaded(Message):
    """One customer's whole story (a frozen :func:`core.customers.profile`)."""

    def __init__(self, match: "Match", profile: Mapping[str, Any], revealed: bool) -> None:
        super().__init__()
        self.match = match
        self.profile = profile
        self.revealed = revealed


class ExplanationLoaded(Message):
    """Why a customer reads the way they do (a frozen :func:`core.explain.explain`)."""

    def __init__(self, match: "Match", explanation: Mapping[str, Any]) -> None:
        super().__init__()
        self.match = match
        self.explanation = explanation


class ChangeSaved(Message):
    """A change a person made (tag, opt-out) is stored and audited."""

    def __init__(self, summary: str, changed: bool) -> None:
        super().__init__()
        self.summary = summary
        self.changed = changed


class RefreshProgress(Message):
    """How far a refresh is; a newer one replaces an unprocessed older one."""

    def __init__(self, stage: str, fraction: float) -> None:
        super().__init__()
        self.stage = stage
        self.fraction = fraction

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, RefreshProgress)


class RefreshFinished(Message):
    """A refresh committed a new reading."""

    def __init__(self, summary: str, warnings: tuple[str, ...]) -> None:
        super().__init__()
        self.summary = summary
        self.warnings = warnings
