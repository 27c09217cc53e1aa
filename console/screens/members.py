"""Tiers › a segment's members: a virtual table of any size, sortable and filterable."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from textual import on, work
from textual.binding import Binding
from textual.reactive import var
from textual.widget import Widget
from textual.widgets import Input
from textual.worker import get_current_worker

from console.messages import MembersReady, TableLoaded
from console.screens.base import MemberListScreen
from console.session import opened
from console.widgets.member_table import Column, MemberTable, build_backend

if TYPE_CHECKING:
    import polars as pl


COLUMNS = (
    Column("name", "name", max_width=20),
    Column("region", "region", max_width=14),
    Column("r_score", "R", right=True, max_width=1),
    Column("f_score", "F", right=True, max_width=1),
    Column("m_score", "M", right=True, max_width=1),
    Column("recency_days", "days", right=True, max_width=5),
    Column("frequency", "orders", right=True, max_width=6),
    Column("spend", "spend", right=True, max_width=13),
    Column("lifecycle", "stage", max_width=10),
    Column("churn", "churn%", right=True, max_width=6),
    Column("tag_list", "tags", max_width=60),
)
"""The line of a member row after the customer id (see ``core.browse.member_rows``)."""


class FilterInput(Input):
    """The ``/`` filter line: hidden (and out of the focus chain) until asked for."""


    def __init__(self, **kwargs) -> None:
        super().__init__(compact=True, **kwargs)
        self.can_focus = False

    def open(self) -> None:
        self.add_class("-open")
        self.can_focus = True
        self.focus()

    def close(self) -> None:
        self.remove_class("-open")
        self.can_focus = False


class MembersScreen(MemberListScreen):
    """One segment's members, from the saved reading, sorted and filtered in a worker.

    The app keeps one installed instance and points it at a segment with
    :meth:`select` before pushing it: composing and styling a new screen
    (its table, its footer) costs more UI-thread time on a slow machine
    than drawing 100k members does.
    """

    SECTION = "tiers"
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, id="members.open",
                tooltip="Open the highlighted customer."),
        Binding("slash", "filter", "Filter", id="members.filter",
                tooltip="Filter: each word matches an id or name prefix, a region, a stage or a tag; "
                "r5 / f1 / m3 match a score, tag:NAME a tag exactly."),
        Binding("s", "sort", "Sort", id="members.sort",
                tooltip="Sort by the next column: spend, recency, orders, churn, value, name, id."),
        Binding("S", "reverse", "Reverse", id="members.reverse", tooltip="Reverse the sort order."),
        Binding("escape", "close_filter", "Close filter", id="members.close_filter",
                tooltip="Clear the filter, then close it."),
    ]

    sort: var[str] = var("spend")
    descending: var[bool | None] = var(None)

    def __init__(self, segment: str | None, model: str) -> None:
        super().__init__()
        self.segment = segment
        self.model = model
        self.members: "pl.DataFrame | None" = None
        self._generation = 0
        self._load_generation = 0
        """The generation of the latest load: answers older than it belong to what was shown before."""
        self._tags_stale = False
        """A manual tag changed since the members were loaded: load them again when next shown."""

    def crumbs(self) -> Iterable[str]:
        from core import segments

        return ("Tiers", segments.label(self.segment, self.tierdesk.language))

    def compose_body(self) -> Iterable[Widget]:
        yield MemberTable(id="members")
        filter_input = FilterInput(placeholder="/ filter: name, id, region, stage, tag, r5 f1 m3, tag:NAME",
                                   id="filter")
        filter_input.cursor_blink = self.tierdesk.cursor_blink
        yield filter_input

    def on_mount(self) -> None:
        self.query_one(MemberTable).loading = True
        self.tierdesk.reading_changed.subscribe(self, lambda _: self._reload())
        self.tierdesk.tags_changed.subscribe(self, lambda _: setattr(self, "_tags_stale", True))
        if self.segment is not None:  # None: composed ahead of time, nothing chosen yet
            self._reload()

    def select(self, segment: str, model: str) -> None:
        """Show another segment (the screen is reused): a fresh sort, no filter."""
        if not self.is_mounted:
            self.segment, self.model = segment, model
            return
        same = (segment, model) == (self.segment, self.model) and self.segment is not None
        self.segment, self.model = segment, model
        self.set_crumbs(*self.crumbs())
        filter_input = self.query_one(FilterInput)
        if filter_input.value or filter_input.has_class("-open"):
            with filter_input.prevent(Input.Changed):
                filter_input.value = ""
            filter_input.close()
        if same and self.members is not None and not self._tags_stale and self.sort == "spend" \
                and self.descending is None:
            return  # already showing exactly this
        self.sort, self.descending = "spend", None
        self.members = None
        table = self.query_one(MemberTable)
        table.forget()  # the previous segment's rows: a quick enter must not open one of them
        table.loading = True
        self._reload()
        self.refresh_bindings()

    def on_screen_resume(self) -> None:
        if self._tags_stale:  # back from a customer whose tags changed: show them
            self._reload()

    def _reload(self) -> None:
        if self.segment is None:
            return
        self._tags_stale = False
        self._generation += 1
        self._load_generation = self._generation
        self.load(self._generation, self.query_one(FilterInput).value)

    def _request_table(self) -> None:
        self._generation += 1
        self.rearrange_members(self._generation, self.query_one(FilterInput).value, self.sort, self.descending)

    # --- loading ---------------------------------------------------------------

    @work(thread=True, exclusive=True, exit_on_error=False, group="members", description="Loading members")
    def load(self, generation: int, text: str = "") -> None:
        """The segment's slice of the reading, then its table (filtered by ``text``)."""
        with opened(self.tierdesk.db_path) as store:
            config = store.config
            frame = self.tierdesk.directory.frame(store, self.model, config)
        import polars as pl

        members = frame.filter(pl.col("segment") == self.segment)
        self.post_message(MembersReady(members, generation))
        self._build_table(generation, members, text, self.sort, self.descending)

    @work(thread=True, exclusive=True, exit_on_error=False, group="arrange", description="Sorting members")
    def rearrange_members(self, generation: int, text: str, sort: str, descending: bool | None) -> None:
        """Filter and sort the members already loaded (a new table each time)."""
        if self.members is not None:
            self._build_table(generation, self.members, text, sort, descending)

    def _build_table(self, generation: int, members: "pl.DataFrame", text: str, sort: str,
                 descending: bool | None) -> None:
        from core import browse

        arranged = browse.sort_members(browse.filter_members(members, text), sort, descending)
        rows = browse.member_rows(arranged, language=self.tierdesk.language)
        backend = build_backend(rows, "customer_id", "customer", COLUMNS)
        if get_current_worker().is_cancelled:
            return  # a newer sort or filter is on its way
        self.post_message(TableLoaded(
            backend, arranged["customer"], total=members.height,
            note=self._note(members.height, arranged.height, text, sort, descending),
            generation=generation,
        ))

    def _note(self, total: int, shown: int, text: str, sort: str, descending: bool | None) -> str:
        from core.browse import SORTS

        down = SORTS[sort][1] if descending is None else descending
        parts = [f"{total:,} members", f"sorted by {sort} {'↓' if down else '↑'}"]
        if text.strip():
            parts.append(f"filter “{text.strip()}”: {shown:,} shown")
        return " · ".join(parts)

    def on_members_ready(self, message: MembersReady) -> None:
        if message.generation < self._load_generation:
            return  # loaded for the segment shown before
        self.members = message.frame
        self.refresh_bindings()

    def on_table_loaded(self, message: TableLoaded) -> None:
        if message.generation < self._load_generation:
            return  # a sort or filter of the segment shown before
        table = self.query_one(MemberTable)
        had_rows = table.row_count > 0
        table.loading = False
        table.show(message, focus=not self.query_one(FilterInput).has_focus)
        if had_rows != (table.row_count > 0):  # "Open" changes only with (no) rows
            self.refresh_bindings()

    # --- keys -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        filter_input = self.query_one(FilterInput)
        if action == "open":
            if filter_input.has_focus:
                return False  # enter in the filter goes back to the list
            return self.query_one(MemberTable).row_count > 0 or None
        if action == "close_filter":
            return filter_input.has_class("-open")
        if action in ("sort", "reverse", "filter"):
            return self.members is not None or None
        return True

    def action_filter(self) -> None:
        self.query_one(FilterInput).open()
        self.refresh_bindings()

    def action_close_filter(self) -> None:
        filter_input = self.query_one(FilterInput)
        if filter_input.value:
            filter_input.value = ""
            return
        filter_input.close()
        table = self.query_one(MemberTable).table
        if table is not None:
            table.focus()
        self.refresh_bindings()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._request_table()

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        table = self.query_one(MemberTable).table
        if table is not None:
            table.focus()

    def action_sort(self) -> None:
        from core.browse import SORT_ORDER

        self.sort = SORT_ORDER[(SORT_ORDER.index(self.sort) + 1) % len(SORT_ORDER)]
        self.descending = None
        self._request_table()

    def action_reverse(self) -> None:
        from core.browse import SORTS

        current = SORTS[self.sort][1] if self.descending is None else self.descending
        self.descending = not current
        self._request_table()
