"""The command palette (``ctrl+p`` or ``:``): namespaced commands.

``go:`` sections and views, ``theme:`` the offered themes, ``segment:`` a
segment's members, ``customer:`` anyone the search box would find (looked
up in a thread, on a connection of its own).
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Callable

from textual.command import DiscoveryHit, Hit, Hits, Provider

from console.widgets.header import SECTIONS

if TYPE_CHECKING:
    from pathlib import Path

    from console.app import TierdeskApp
    from core.browse import Found

THEMES = ("ansi-dark", "ansi-light", "textual-dark", "textual-light")


class TierdeskProvider(Provider):
    """Base: fuzzy-matches a fixed list of (title, help, callback)."""

    @property
    def tierdesk(self) -> "TierdeskApp":
        return self.app  # type: ignore[return-value]

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        return []

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, text=title, help=help_text)


class GoCommands(TierdeskProvider):
    """``go:`` a section, ``theme:`` a theme."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.tierdesk
        found: list[tuple[str, str, Callable[[], object]]] = []
        if app.current_mode != "nostore":
            for number, (mode, title) in enumerate(SECTIONS, start=1):
                found.append((f"go: {title.lower()}", f"Switch to {title} (key {number})",
                              partial(app.switch_mode, mode)))
        found.append(("go: help", "Every key on this screen (key ?)", app.action_help))
        for theme in THEMES:
            found.append((f"theme: {theme}", "Colours: the ansi themes use your terminal's own palette",
                          partial(setattr, app, "theme", theme)))
        return found


class SegmentCommands(TierdeskProvider):
    """``segment:`` the members of any segment of the model on show."""

    def commands(self) -> list[tuple[str, str, Callable[[], object]]]:
        app = self.tierdesk
        data = app.tiers_data
        if data is None:
            return []
        from core import segments

        return [
            (f"segment: {segments.label(row.segment, app.language)}",
             f"{row.customers:,} customers in {data.model}: open the members",
             _later(app.open_segment, row.segment))
            for row in data.rows
        ]


def _later(coroutine_function, *args) -> Callable[[], None]:
    """A palette callback that starts an async app method."""
    def start() -> None:
        asyncio.get_running_loop().create_task(coroutine_function(*args))

    return start


def _lookup(path: "Path", query: str) -> list["Found"]:
    from core import browse
    from core.users import current_user
    from console.session import opened

    with opened(path) as store:
        return browse.lookup(store, current_user(store), query, limit=10)


class CustomerCommands(Provider):
    """``customer:`` anyone found by id, email, phone or the start of a name."""

    @property
    def tierdesk(self) -> "TierdeskApp":
        return self.app  # type: ignore[return-value]

    async def discover(self) -> Hits:
        app = self.tierdesk
        if app.current_mode == "nostore":
            return
        yield DiscoveryHit("customer: …", partial(app.switch_mode, "customers"),
                           help="Type an id, email, phone or the start of a name")

    async def search(self, query: str) -> Hits:
        app = self.tierdesk
        if app.current_mode == "nostore" or not app.db_path.exists():
            return
        text = query.strip()
        if text.lower().startswith("customer:"):
            text = text[len("customer:"):].strip()
        if len(text) < 2 and text.isascii():  # one Chinese character is a surname: worth looking up
            return
        try:
            found = await asyncio.to_thread(_lookup, app.db_path, text)
        except Exception:  # noqa: BLE001  (a palette search must not raise; the search screen reports errors)
            return
        for rank, result in enumerate(found):
            match = result.match
            title = f"customer: {match.customer_id} {match.name or ''}".rstrip()
            yield Hit(1.0 - rank / 100, title, _later(app.open_customer, match), text=title,
                      help=f"found by {match.matched_by}" + (f" · {result.segment}" if result.segment else ""))
