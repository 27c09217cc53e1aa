"""Ask for the as-of of a new reading (default: yesterday in the shop's time zone)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

if TYPE_CHECKING:
    from console.session import Session


class RefreshDialog(ModalScreen[date | None]):
    """The as-of to read at; ``enter`` starts the refresh, ``esc`` cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="refresh.cancel", tooltip="Close without refreshing."),
    ]

    def __init__(self, session: "Session", now: int, *, cursor_blink: bool = True) -> None:
        super().__init__()
        self.session = session
        self.now = now
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        from core.clock import default_as_of

        default = default_as_of(ZoneInfo(self.session.timezone), self.now)
        previous = (f"The latest reading is as of {self.session.as_of}." if self.session.as_of
                    else "This will be the store's first reading.")
        with Vertical(classes="dialog"):
            yield Static(Text("Refresh the reading", style="bold"), classes="dialog-title")
            yield Static(Text(f"{previous} Orders after the as-of are ignored; the console stays usable "
                              "while it runs."))
            yield Label("As of (YYYY-MM-DD, the last whole shop day to read)")
            as_of = Input(default.isoformat(), id="as-of", compact=True)
            as_of.cursor_blink = self.cursor_blink
            yield as_of
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("↻ Refresh", id="start", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#as-of", Input).focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#start")
    @on(Input.Submitted, "#as-of")
    def _begin(self) -> None:
        from core.clock import parse_date
        from core.errors import InputError

        try:
            day = parse_date(self.query_one("#as-of", Input).value, "as of")
        except InputError as error:
            self.query_one("#problem", Static).update(Text(f"✗ {error.message}"))
            return
        self.dismiss(day)
