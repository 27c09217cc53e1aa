"""``?``: every key that works on the screen below, read from its live bindings."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


def bindings_table(screen: Screen) -> Table:
    """The screen's active bindings: this screen's first, then everywhere; dimmed if not now."""
    app = screen.app
    here: list = []
    everywhere: list = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        if not binding.description or binding.system or binding.id is None:
            continue  # widget internals (cursor moves) are summed up under "Moving"
        if binding.id in seen:
            continue
        seen.add(binding.id)
        (everywhere if active.node is app else here).append((app.get_key_display(binding), binding, active.enabled))
    # In the order the screen declares them (a priority key, such as Home on a
    # table, otherwise takes the place of the table's own binding: first).
    here.sort(key=lambda row: _declared_at(screen, row[1]))
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(ratio=1)
    for title, rows in (("On this screen", here), ("Everywhere", everywhere)):
        if not rows:
            continue
        table.add_row("", Text(title, style="bold"), "")
        for display, binding, enabled in rows:
            style = "" if enabled else "dim"
            tooltip = Text(binding.tooltip or "", style="dim")
            if not enabled:
                tooltip.append("  (not now)", style="dim italic")
            table.add_row(Text(display, style="bold" if enabled else "dim"), Text(binding.description, style=style),
                          tooltip)
        table.add_row("", "", "")
    table.add_row("", Text("Moving", style="bold"), "")
    for keys, words in (
        ("↑ ↓ PgUp PgDn", "move in lists and scroll pages; Home and End jump"),
        ("tab", "moves between the fields of a dialog"),
        ("ctrl+p  :", "the command palette: go: tiers, customer: NAME, segment: NAME, theme: ansi-dark"),
        ("ctrl+q", "quits from anywhere"),
    ):
        table.add_row(Text(keys, style="bold"), "", Text(words, style="dim"))
    return table


def _declared_at(screen: Screen, binding: Binding) -> int:
    declared = [getattr(item, "id", None) for item in type(screen).BINDINGS]
    return declared.index(binding.id) if binding.id in declared else len(declared)


class HelpScreen(ModalScreen[None]):
    """The keys of the screen it was opened over; any key closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="helpscreen.close", tooltip="Close the help."),
    ]

    def __init__(self, below: Screen) -> None:
        super().__init__()
        self.below = below
        # Read the keys now, while ``below`` is still on top: once this modal
        # is, the app's own keys (q quits at the root) are not available.
        self.keys = bindings_table(below)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="help-box"):
            yield Static(Text("Keys", style="bold"), classes="dialog-title")
            with VerticalScroll():
                yield Static(self.keys, id="keys")
            yield Static(Text("↑ ↓ scroll · any other key closes", style="dim"), classes="dialog-keys")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)

    def on_key(self, event: events.Key) -> None:
        if event.key in ("up", "down", "pageup", "pagedown", "home", "end"):
            return
        event.stop()
        event.prevent_default()
        self.dismiss(None)
