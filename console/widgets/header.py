"""The two-line header every screen shows: sections, where you are, who and which reading."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Static

if TYPE_CHECKING:
    from console.session import Session

SECTIONS: tuple[tuple[str, str], ...] = (
    ("tiers", "Tiers"),
    ("customers", "Customers"),
    ("campaigns", "Campaigns"),
    ("budget", "Budget"),
    ("audit", "Audit"),
)
"""Section mode names and titles, in number-key order."""


def section_tabs(active: str | None) -> Text:
    """``1 Tiers  2 Customers …`` with the active section reversed."""
    tabs = Text(no_wrap=True, overflow="ellipsis")
    for number, (mode, title) in enumerate(SECTIONS, start=1):
        style = "reverse bold" if mode == active else ""
        tabs.append(f" {number} {title} ", style=style)
    return tabs


class SectionHeader(Widget):
    """Sections and the user on the first line; the breadcrumb and the reading on the second.

    It follows the app's ``session`` reactive, so every screen's header
    shows the new as-of as soon as a refresh ends. There is no clock in it.
    """

    DEFAULT_CSS = """
    SectionHeader {
        dock: top;
        height: 2;
        background: $panel;
        color: $foreground;
    }
    SectionHeader Horizontal { height: 1; }
    SectionHeader #tabs, SectionHeader #crumbs { width: 1fr; }
    SectionHeader #who, SectionHeader #where { width: auto; padding: 0 1; }
    SectionHeader #crumbs { padding: 0 1; text-style: bold; }
    SectionHeader #where { color: $text-muted; }
    """

    def __init__(self, section: str | None, crumbs: Sequence[str] = ()) -> None:
        super().__init__()
        self.section = section
        self._crumbs = tuple(crumbs)

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static(section_tabs(self.section), id="tabs")
            yield Static(id="who")
        with Horizontal():
            yield Static(self._crumb_text(), id="crumbs")
            yield Static(id="where")

    def on_mount(self) -> None:
        self.watch(self.app, "session", self._show_session)

    def set_crumbs(self, *crumbs: str) -> None:
        """Say where in the section's drill-down this screen is."""
        self._crumbs = tuple(crumbs)
        if self.is_mounted:
            self.query_one("#crumbs", Static).update(self._crumb_text())

    def _crumb_text(self) -> Text:
        return Text(" › ".join(self._crumbs), no_wrap=True, overflow="ellipsis")

    def _show_session(self, session: "Session | None") -> None:
        who = self.query_one("#who", Static)
        where = self.query_one("#where", Static)
        if session is None:
            path = getattr(self.app, "db_path", None)
            who.update("")
            where.update(Text(path.name if path else "", no_wrap=True))
            return
        user = session.user
        who.update(Text(f"{user.login} · {user.role}", no_wrap=True))
        reading = f"as of {session.as_of}" if session.as_of else "no reading yet"
        where.update(Text(f"{session.store_name} · {reading}", no_wrap=True))
