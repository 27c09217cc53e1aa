"""A yes/no question about something that cannot be taken back; Cancel is the default."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static


class ConfirmDialog(ModalScreen[bool]):
    """Shows the impact and asks; ``enter`` on the focused Cancel, or ``esc``, says no."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="confirm.cancel", tooltip="Do nothing."),
        Binding("left,right", "switch", "Switch", show=False, id="confirm.switch",
                tooltip="Move between Cancel and the action."),
    ]

    def __init__(self, title: str, impact: str, *, confirm: str) -> None:
        super().__init__()
        self.question = title
        self.impact = impact
        self.confirm_label = confirm

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"! {self.question}", style="bold"), classes="dialog-title")
            yield Static(Text(self.impact))
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", variant="primary", compact=True)
                yield Button(self.confirm_label, id="confirm", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def action_cancel(self) -> None:
        self.dismiss(False)

    def action_switch(self) -> None:
        cancel = self.query_one("#cancel", Button)
        (self.query_one("#confirm", Button) if cancel.has_focus else cancel).focus()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(False)

    @on(Button.Pressed, "#confirm")
    def _confirm(self) -> None:
        self.dismiss(True)
