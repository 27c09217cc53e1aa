"""Customers: find one mid-call by id, email, phone or the start of a name."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual import on, work
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static
from textual.worker import get_current_worker

from console.messages import SearchDone
from console.screens.base import TierdeskScreen
from console.session import opened
from console.widgets.member_table import align_rows

RESULT_LIMIT = 50


class CustomersScreen(TierdeskScreen):
    """A search box with results as you type; ``enter`` opens the customer."""

    SECTION = "customers"
    BINDINGS = [
        Binding("enter", "open", "Open", priority=True, id="customers.open",
                tooltip="Open the highlighted result (from the box: the first one)."),
        Binding("slash", "search", "Search", id="customers.search",
                tooltip="Back to the search box (esc leaves it, so number keys switch sections again)."),
        Binding("down", "results", "Results", show=False, id="customers.results",
                tooltip="From the search box: move into the results."),
        Binding("escape", "leave_box", "Leave box", show=False, id="customers.leave_box",
                tooltip="Leave the search box (then 1-5 switch sections and q quits)."),
        # Textual's table binds Home and End to its first and last column,
        # which a row cursor does not have; here they jump as in the member lists.
        Binding("home", "first_result", "First", show=False, priority=True, id="customers.first",
                tooltip="In the results: jump to the first one."),
        Binding("end", "last_result", "Last", show=False, priority=True, id="customers.last",
                tooltip="In the results: jump to the last one."),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.results: tuple = ()
        self._query = ""

    def crumbs(self) -> Iterable[str]:
        return ("Customers", "search")

    def compose_body(self) -> Iterable[Widget]:
        search = Input(placeholder="search: customer id, email, phone, or the start of a name", id="search",
                       compact=True)
        search.cursor_blink = self.tierdesk.cursor_blink
        yield search
        yield Static("", id="search-status")
        table: DataTable = DataTable(id="results", cursor_type="row", zebra_stripes=True)
        yield table

    def on_mount(self) -> None:
        self._status()
        self.query_one("#search", Input).focus()

    def _status(self, text: str | None = None) -> None:
        if text is None:
            text = "Type to search. ↵ opens · ↓ moves into the results · esc leaves the box"
        self.query_one("#search-status", Static).update(Text(text, style="dim"))

    # --- searching ---------------------------------------------------------------

    @on(Input.Changed, "#search")
    def _changed(self, event: Input.Changed) -> None:
        self._query = event.value.strip()
        if not self._query:
            if self.results:
                self.results = ()
                self.refresh_bindings()
            self.query_one("#results", DataTable).clear()
            self._status()
            return
        self.search(self._query)

    @work(thread=True, exclusive=True, exit_on_error=False, group="search", description="Searching")
    def search(self, query: str) -> None:
        """A few index probes (``core.browse.lookup``); a newer query cancels this one."""
        from core import browse
        from core.users import current_user

        with opened(self.tierdesk.db_path) as store:
            results = browse.lookup(store, current_user(store), query, limit=RESULT_LIMIT + 1)
        if not get_current_worker().is_cancelled:
            self.post_message(SearchDone(query, tuple(results)))

    def on_search_done(self, message: SearchDone) -> None:
        if message.query != self._query:
            return  # typing has moved on
        from core import segments

        language = self.tierdesk.language
        results = message.results[:RESULT_LIMIT]
        previous = self.results
        self.results = results
        table = self.query_one("#results", DataTable)
        table.clear(columns=True)
        if results:
            lines, header = align_rows(
                [[found.match.name or "", found.email, found.phone, found.match.region or "",
                  segments.label(found.segment, language) or "–"] for found in results],
                ["name", "email", "phone", "region", "segment"],
            )
            table.add_column("customer", key="customer")
            table.add_column(header, key="line")
            for index, (found, line) in enumerate(zip(results, lines)):
                table.add_row(Text(found.match.customer_id), Text(line), key=str(index))
        more = "+" if len(message.results) > RESULT_LIMIT else ""
        if bool(results) != bool(previous):  # "Open" changes only with (no) results
            self.refresh_bindings()
        if not results:
            self._status(f"✗ nobody matches “{message.query}” (id and email match exactly, names by their start)")
        else:
            how = results[0].match.matched_by
            self._status(f"{len(results)}{more} found by {how} · ↵ opens the highlighted one")

    # --- keys -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        search = self.query_one("#search", Input)
        if action == "open":
            return bool(self.results) or None
        if action == "results":
            return search.has_focus and bool(self.results)
        if action == "leave_box":
            return search.has_focus
        if action == "search":
            return not search.has_focus
        if action in ("first_result", "last_result"):
            return self.query_one("#results", DataTable).has_focus  # in the box they move the text cursor
        return True

    def action_open(self) -> None:
        table = self.query_one("#results", DataTable)
        row = table.cursor_row if table.has_focus else 0
        if 0 <= row < len(self.results):
            from console.screens.customer import CustomerScreen

            self.app.push_screen(CustomerScreen(self.results[row].match, trail=("Customers",)))

    def action_first_result(self) -> None:
        self.query_one("#results", DataTable).action_scroll_top()

    def action_last_result(self) -> None:
        self.query_one("#results", DataTable).action_scroll_bottom()

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_results(self) -> None:
        self.query_one("#results", DataTable).focus()

    def action_leave_box(self) -> None:
        self.query_one("#results", DataTable).focus()

