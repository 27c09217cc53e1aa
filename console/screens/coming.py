"""Campaigns, Budget and Audit: what they will hold, until part 2 builds them."""

from __future__ import annotations

from typing import ClassVar, Iterable

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from console.command_lines import command_line
from console.screens.base import TierdeskScreen


class ComingScreen(TierdeskScreen):
    """A section that is not built yet: say plainly what it will do and what works today."""

    TITLE_TEXT: ClassVar[str] = ""
    PLAN: ClassVar[str] = ""
    TODAY: ClassVar[str] = ""
    """The command that does it today (its arguments after ``tierdesk``)."""
    TODAY_USES_STORE: ClassVar[bool] = False
    """Whether that command reads the store (then it is spelled with this console's ``--db``)."""

    def crumbs(self) -> Iterable[str]:
        return (self.TITLE_TEXT,)

    def compose_body(self) -> Iterable[Widget]:
        text = Text()
        text.append(f"{self.TITLE_TEXT} — coming in part 2 of the console\n\n", style="bold")
        text.append(self.PLAN + "\n\n")
        text.append("Today: ", style="bold")
        today = command_line(self.tierdesk.db_path, self.TODAY) if self.TODAY_USES_STORE else f"tierdesk {self.TODAY}"
        text.append(f"`{today}` on the command line.")
        with VerticalScroll(classes="coming"):
            yield Static(text)


class CampaignsScreen(ComingScreen):
    """Section 3."""

    SECTION = "campaigns"
    TITLE_TEXT = "Campaigns"
    PLAN = ("Create a campaign from an audience expression over the reading, preview who it reaches with a "
            "reason for every exclusion (no consent, opted out, held out, over budget, quiet hours), submit "
            "it, approve it with four eyes, send it exactly once, and read the result against the control "
            "group.")
    TODAY = "campaign --help"


class BudgetScreen(ComingScreen):
    """Section 4."""

    SECTION = "budget"
    TITLE_TEXT = "Budget"
    PLAN = ("Every customer's touch budget per rule — used / cap / remaining, per channel, segment and "
            "overall, with the day the next slot frees up — and what a planned send would use.")
    TODAY = "budget --help"


class AuditScreen(ComingScreen):
    """Section 5."""

    SECTION = "audit"
    TITLE_TEXT = "Audit"
    PLAN = ("The append-only, hash-chained log of every change: refreshes, tags, consent, reveals, "
            "campaign approvals and sends, with who and when, and a check that nothing was edited.")
    TODAY = "audit --verify"
    TODAY_USES_STORE = True
