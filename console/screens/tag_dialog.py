"""Add or remove a manual tag, with the note that says why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, RadioSet, Static
from textual.worker import Worker, WorkerState

from console.messages import ChangeSaved
from console.widgets.choice import Choice
from core.customers import Match
from core.errors import Conflict, InputError, NotFound, PermissionDenied

REFUSALS = (InputError, Conflict, NotFound, PermissionDenied)
"""What the store says no to: shown in the dialog, where the person can correct it (or cancel)."""


@dataclass(frozen=True)
class TagRequest:
    """What the person asked for: a tag to add or remove, and why."""

    tag: str
    note: str
    adding: bool


class TagDialog(ModalScreen[ChangeSaved | None]):
    """A tag (typed, or picked from the manual ones when removing) and a note.

    It stays open while ``save`` runs (in a worker), so a refused tag (a rule
    tag, a bad name) is explained here, with the text kept to correct it.
    It closes with what was saved.
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="tag.cancel", tooltip="Close without changing anything."),
    ]

    def __init__(self, match: Match, save: Callable[[TagRequest], ChangeSaved], *, adding: bool,
                 choices: tuple[str, ...] = (), cursor_blink: bool = True):
        super().__init__()
        self.match = match
        self.save = save
        """Stores a request (one core call on its own writing connection); runs in a worker thread."""
        self.adding = adding
        self.choices = choices
        self.cursor_blink = cursor_blink
        self.saving = False

    def compose(self) -> ComposeResult:
        verb = "Add a tag to" if self.adding else "Remove a tag from"
        with Vertical(classes="dialog"):
            yield Static(Text(f"{verb} {self.match.customer_id} {self.match.name or ''}", style="bold"),
                         classes="dialog-title")
            if self.adding:
                yield Label("Tag (up to 40 characters; rule tags are computed, not added)")
                tag = Input(placeholder="e.g. vip, complained-2025-06", id="tag", compact=True)
                tag.cursor_blink = self.cursor_blink
                yield tag
            else:
                yield Label("Manual tag")
                with RadioSet(id="choices"):
                    for index, choice in enumerate(self.choices):
                        yield Choice(choice, value=index == 0)
            yield Label("Note (required: say why, for the next person)")
            note = Input(placeholder="why", id="note", compact=True)
            note.cursor_blink = self.cursor_blink
            yield note
            yield Static("", id="problem", classes="problem")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                label = "+ Add tag" if self.adding else "− Remove tag"
                yield Button(label, id="save", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#tag" if self.adding else "#choices").focus()

    def _request(self) -> TagRequest | None:
        if self.adding:
            tag = self.query_one("#tag", Input).value.strip()
        else:
            pressed = self.query_one("#choices", RadioSet).pressed_index
            tag = self.choices[pressed] if 0 <= pressed < len(self.choices) else ""
        note = self.query_one("#note", Input).value.strip()
        problem = self.query_one("#problem", Static)
        if not tag:
            problem.update(Text("✗ a tag is needed"))
            return None
        if not note:
            problem.update(Text("✗ a note is needed"))
            self.query_one("#note", Input).focus()
            return None
        return TagRequest(tag=tag, note=note, adding=self.adding)

    def action_cancel(self) -> None:
        if not self.saving:  # a save under way is not cancelled half-way: it ends here
            self.dismiss(None)

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    @on(Button.Pressed, "#save")
    @on(Input.Submitted, "#note")
    def _save(self) -> None:
        if self.saving:
            return
        request = self._request()
        if request is not None:
            self._set_saving(True)
            self.query_one("#problem", Static).update("")
            self.store(request)

    def _set_saving(self, saving: bool) -> None:
        self.saving = saving
        self.query_one("#save", Button).disabled = saving
        self.query_one("#cancel", Button).disabled = saving

    @work(thread=True, exit_on_error=False, group="write", description="Saving a tag")
    def store(self, request: TagRequest) -> None:
        """The save, off the UI thread (a write may wait for another writer); never cancelled."""
        self.post_message(self.save(request))

    def on_change_saved(self, message: ChangeSaved) -> None:
        self.dismiss(message)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "write" or event.state != WorkerState.ERROR:
            return
        self._set_saving(False)
        error = event.worker.error
        if isinstance(error, REFUSALS):
            self.query_one("#problem", Static).update(Text(f"✗ {error}"))
            self.query_one("#tag" if self.adding else "#choices").focus()
        else:  # not the person's to correct here: the app's one error path
            self.dismiss(None)
            self.app.report_failure(error)  # type: ignore[attr-defined]

    @on(Input.Submitted, "#tag")
    def _next(self) -> None:
        self.query_one("#note", Input).focus()
