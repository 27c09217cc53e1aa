"""With no store yet: say how to make one instead of failing."""

from __future__ import annotations

from typing import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from console.command_lines import command_line
from console.screens.base import TierdeskScreen


class NoStoreScreen(TierdeskScreen):
    """Shown when the store file does not exist; ``r`` looks again."""

    BINDINGS = [
        Binding("r", "recheck", "Look again", id="nostore.recheck",
                tooltip="Open the store if it exists now (e.g. after `tierdesk demo --no-open`)."),
    ]

    def crumbs(self) -> Iterable[str]:
        return ("No store",)

    def compose_body(self) -> Iterable[Widget]:
        path = self.tierdesk.db_path
        text = Text()
        text.append("There is no store here yet.\n\n", style="bold")
        text.append(f"  {path}\n\n")
        text.append("Make one from the command line, then press r:\n\n")
        # Each command on a line of its own: with --db PATH it may take the width.
        for arguments, what in (
            ("demo", "a generated demo shop (20,000 customers), opened right away"),
            ("init", "an empty store; you become its owner"),
            ("import customers FILE", "then your own customers..."),
            ("import orders FILE", "...and orders (CSV, Parquet or a Shopify export)"),
        ):
            text.append(f"  {command_line(path, arguments)}\n", style="bold")
            text.append(f"      {what}\n")
        text.append("\nA different store: tierdesk --db PATH, or set TIERDESK_DB.", style="dim")
        with VerticalScroll(classes="coming"):
            yield Static(text)

    def action_recheck(self) -> None:
        if self.tierdesk.db_path.exists():
            self.tierdesk.switch_mode("tiers")
            self.tierdesk.load_session()
        else:
            self.notify("Still no store at that path.", timeout=3)
