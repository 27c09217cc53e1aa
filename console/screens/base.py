"""What every section screen shares: the header, the footer and the error path."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Iterable

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.worker import Worker

from console.widgets.header import SectionHeader

if TYPE_CHECKING:
    from console.app import TierdeskApp
    from console.widgets.member_table import MemberTable


class TierdeskScreen(Screen[None]):
    """A screen of a section: header (sections, breadcrumb, who, which reading), body, footer.

    Subclasses yield their body from :meth:`compose_body`. Their workers'
    failures go to the app's one error path.
    """

    SECTION: ClassVar[str | None] = None

    @property
    def tierdesk(self) -> "TierdeskApp":
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def crumbs(self) -> Iterable[str]:
        """Where this screen is in its section (the breadcrumb)."""
        return ()

    def compose(self) -> ComposeResult:
        # A screen pushed onto a section's stack (a customer opened from Tiers)
        # belongs to that section.
        yield SectionHeader(self.SECTION or self.app.current_mode, tuple(self.crumbs()))
        yield from self.compose_body()
        # The palette key is listed by ? (help); on the footer it would crowd
        # out a screen key at 80 columns.
        yield Footer(show_command_palette=False)

    def compose_body(self) -> Iterable[Widget]:
        return ()

    def set_crumbs(self, *crumbs: str) -> None:
        self.query_one(SectionHeader).set_crumbs(*crumbs)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Worker state messages go to the node that owns the worker and do not
        # bubble: hand them to the app, which owns the one error path.
        self.tierdesk.worker_changed(event)


class MemberListScreen(TierdeskScreen):
    """A screen around one MemberTable: enter (or a click) opens the customer on the highlighted row."""

    def action_open(self) -> None:
        from console.widgets.member_table import MemberTable

        customer = self.query_one(MemberTable).highlighted()
        if customer is not None:
            self._open(customer)

    def on_member_table_chosen(self, message: "MemberTable.Chosen") -> None:
        self._open(message.customer)

    def _open(self, customer: int) -> None:
        from console.screens.customer import CustomerScreen

        self.app.push_screen(CustomerScreen(customer, trail=tuple(self.crumbs())))
