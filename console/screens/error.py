"""The error dialog: a failure's title and message, never a traceback."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static


class ErrorDialog(ModalScreen[None]):
    """Says what failed and what to do; any key closes it (``c`` copies the message)."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="error.close", tooltip="Close this message (any other key does too)."),
        Binding("c", "copy", "Copy", id="error.copy",
                tooltip="Copy the message to the clipboard (works over SSH in most terminals)."),
    ]

    def __init__(self, title: str, message: str, hint: str = "") -> None:
        super().__init__()
        self.error_title = title
        self.message = message
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(id="error-box", classes="dialog"):
            yield Static(Text(f"✗ {self.error_title}", style="bold"), classes="dialog-title")
            yield Static(Text(self.message), id="error-message")
            if self.hint:
                yield Static(Text(self.hint), id="error-hint", classes="hint")
            yield Static(Text("any key closes · c copies", style="dim"), classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard("\n".join(part for part in (self.error_title, self.message, self.hint) if part))
        self.notify("Copied the message.", timeout=2)

    def on_key(self, event: events.Key) -> None:
        # Consume the key, so closing the dialog cannot also act on the screen below.
        event.stop()
        event.prevent_default()
        if event.key == "c":
            self.action_copy()
        else:
            self.dismiss(None)
