"""Tiers › who moved into or out of a segment in the latest refresh."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Static

from console.messages import MovesLoaded, TableLoaded
from console.screens.base import MemberListScreen
from console.session import opened
from console.widgets.member_table import Column, MemberTable, build_backend

COLUMNS = (
    Column("name", "name", max_width=20),
    Column("from_segment", "from", max_width=20),
    Column("to_segment", "to", max_width=20),
    Column("as_of", "as of", max_width=10),
)
"""The line of a moves row after the customer id (see ``core.browse.moved_rows``)."""

if TYPE_CHECKING:
    import polars as pl


class MovedScreen(MemberListScreen):
    """The customers whose segment changed at the latest refresh, into or out of one segment."""

    SECTION = "tiers"
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, id="moved.open", tooltip="Open the highlighted customer."),
        Binding("i", "direction('in')", "Moved in", id="moved.in",
                tooltip="Who came into this segment (and from where)."),
        Binding("o", "direction('out')", "Moved out", id="moved.out",
                tooltip="Who left this segment (and to where)."),
    ]

    direction: var[str] = var("in")

    def __init__(self, segment: str) -> None:
        super().__init__()
        self.segment = segment
        self.moves: dict[str, "pl.DataFrame"] = {}
        self._generation = 0

    def crumbs(self) -> Iterable[str]:
        from core import segments

        return ("Tiers", segments.label(self.segment, self.tierdesk.language), "moved")

    def compose_body(self) -> Iterable[Widget]:
        yield Static("", id="flows")
        yield MemberTable(id="moves")

    def on_mount(self) -> None:
        self.query_one(MemberTable).loading = True
        self.tierdesk.reading_changed.subscribe(self, lambda _: self._reload())
        self._reload()

    def _reload(self) -> None:
        self._generation += 1
        self.load(self._generation, self.direction)

    @work(thread=True, exclusive=True, exit_on_error=False, group="moves", description="Loading moves")
    def load(self, generation: int, direction: str) -> None:
        """Both directions from tier_events (by the refresh index), then the table of one."""
        from core import browse

        with opened(self.tierdesk.db_path) as store:
            moved_in = browse.moved_members(store, self.segment, "in")
            moved_out = browse.moved_members(store, self.segment, "out")
            session = self.tierdesk.session
            tracked = bool(session and session.moves_counted)
        self.post_message(MovesLoaded(moved_in, moved_out, tracked))
        self._table(generation, moved_in if direction == "in" else moved_out, direction)

    @work(thread=True, exclusive=True, exit_on_error=False, group="moves-table", description="Showing moves")
    def table_of(self, generation: int, moves: "pl.DataFrame", direction: str) -> None:
        self._table(generation, moves, direction)

    def _table(self, generation: int, moves: "pl.DataFrame", direction: str) -> None:
        from core import browse

        rows = browse.moved_rows(moves, language=self.tierdesk.language)
        backend = build_backend(rows, "customer_id", "customer", COLUMNS)
        verb = "came in" if direction == "in" else "left"
        self.post_message(TableLoaded(backend, moves["customer"], total=moves.height,
                                      note=f"{moves.height:,} customers {verb} · sorted by customer id",
                                      generation=generation))

    def on_moves_loaded(self, message: MovesLoaded) -> None:
        from core import browse, segments

        self.moves = {"in": message.moved_in, "out": message.moved_out}
        language = self.tierdesk.language
        name = segments.label(self.segment, language)

        def flows(direction: str) -> str:
            parts = [f"{segments.label(other, language) if other else '(new)'} {count:,}"
                     for other, count in browse.moved_flows(self.moves[direction], direction)[:4]]
            return ", ".join(parts) or "nobody"

        lines = Text(no_wrap=True, overflow="ellipsis")
        if not message.tracked:
            lines.append("· Moves are not tracked for this reading (the first one, or the model changed).\n")
        lines.append(f"▲ into {name}: {message.moved_in.height:,}", style="bold")
        lines.append(f" — from {flows('in')}\n")
        lines.append(f"▼ out of {name}: {message.moved_out.height:,}", style="bold")
        lines.append(f" — to {flows('out')}")
        self.query_one("#flows", Static).update(lines)
        self.refresh_bindings()

    def on_table_loaded(self, message: TableLoaded) -> None:
        table = self.query_one(MemberTable)
        table.loading = False
        had_rows = table.row_count > 0
        table.show(message)
        if had_rows != (table.row_count > 0):
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open":
            return self.query_one(MemberTable).row_count > 0 or None
        if action == "direction":
            return (bool(self.moves) and parameters[0] != self.direction) or None
        return True

    def action_direction(self, direction: str) -> None:
        if direction == self.direction or direction not in self.moves:
            return
        self.direction = direction
        self._generation += 1
        self.table_of(self._generation, self.moves[direction], direction)
        self.refresh_bindings()

