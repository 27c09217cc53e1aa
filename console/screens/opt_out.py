"""Choose the channel of an opt-out and say where it came from (confirmed next)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioSet, Static

from core.customers import Match
from console.widgets.choice import Choice
from console.widgets.profile import CONSENT_MARKS

WORDS = {1: "opted in", 0: "no consent", -1: "opted out"}


@dataclass(frozen=True)
class OptOutRequest:
    """An opt-out to record: the channel and an optional note."""

    channel: str
    note: str


class OptOutDialog(ModalScreen[OptOutRequest | None]):
    """Channels with their state now; those already opted out cannot be picked."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="opt_out.cancel", tooltip="Close without changing anything."),
    ]

    def __init__(self, match: Match, states: Mapping[str, int], *, cursor_blink: bool = True) -> None:
        super().__init__()
        self.match = match
        self.states = dict(states)
        self.open_channels = [channel for channel, state in self.states.items() if state != -1]
        self.cursor_blink = cursor_blink

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(Text(f"Opt {self.match.customer_id} {self.match.name or ''} out of a channel",
                              style="bold"), classes="dialog-title")
            if not self.open_channels:
                yield Static(Text("✗ Already opted out of every channel; nothing to record."))
            else:
                with RadioSet(id="channels"):
                    for index, channel in enumerate(self.open_channels):
                        mark = CONSENT_MARKS[self.states[channel]][0]
                        yield Choice(f"{channel}  (now {mark} {WORDS[self.states[channel]]})", value=index == 0)
                yield Label("Note (optional: where the request came from)")
                note = Input(placeholder="e.g. asked on the phone", id="note", compact=True)
                note.cursor_blink = self.cursor_blink
                yield note
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                if self.open_channels:
                    yield Button("Next…", id="next", variant="warning", compact=True)

    def on_mount(self) -> None:
        self.query_one("#channels" if self.open_channels else "#cancel").focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#next")
    @on(Input.Submitted, "#note")
    def _next(self) -> None:
        pressed = self.query_one("#channels", RadioSet).pressed_index
        if 0 <= pressed < len(self.open_channels):
            self.dismiss(OptOutRequest(self.open_channels[pressed], self.query_one("#note", Input).value.strip()))
