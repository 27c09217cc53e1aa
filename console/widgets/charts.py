"""The R x F heat map and the revenue bars of the Tiers screen.

Both read as text first: every cell prints its count and a bar of up to
five blocks for its share of the busiest cell, every segment its share and
amount, so they work in NO_COLOR, 256-colour and ANSI themes alike; colour
only adds the heat.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.style import Style
from rich.text import Text
from textual.widget import Widget

from core.money import format_cents

if TYPE_CHECKING:
    from console.messages import TiersData

BLOCKS = " ▏▎▍▌▋▊▉█"
CELL = 14


def heat_bar(count: int, busiest: int, width: int = 5) -> str:
    """Up to ``width`` blocks for ``count`` against the busiest cell (one at least if any)."""
    if count <= 0 or busiest <= 0:
        return "·".ljust(width)
    filled = max(1, round(width * count / busiest))
    return ("█" * filled).ljust(width)


def bar(fraction: float, width: int) -> str:
    """A horizontal bar ``width`` cells long at most, in eighths of a cell."""
    eighths = round(max(0.0, min(fraction, 1.0)) * width * 8)
    full, part = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[part] if part else "")).ljust(width)


class RFGrid(Widget):
    """Customers by R (rows, 5 at the top) and F (columns), with the rf11 regions."""

    DEFAULT_CSS = """
    RFGrid { height: auto; width: 100%; max-width: 74; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: "TiersData | None" = None
        self._language = "en"

    def show(self, data: "TiersData | None", language: str) -> None:
        """Draw these counts, with region names in ``language``."""
        self._data = data
        self._language = language
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        if self._data is None:
            return 1
        per_cell = 2 if self._data.model == "rf11" else 1
        return 1 + 5 * per_cell + 1

    def get_content_width(self, container, viewport) -> int:
        return 4 + 5 * CELL

    @property
    def cell_width(self) -> int:
        """Cells shrink to fit the pane (region names get cut first)."""
        return max(9, min(CELL, (self.size.width - 4) // 5))

    def render(self) -> Text:
        data = self._data
        if data is None:
            return Text("…", style="dim")
        from core import segments  # loaded by the worker that fetched the data

        regions = data.model == "rf11"
        busiest = max((count for row in data.grid for count in row), default=0)
        cell = self.cell_width
        lines = Text(no_wrap=True)
        lines.append("    ")
        for f in range(1, 6):
            lines.append(f"F{f}".center(cell), style="bold")
        lines.append("\n")
        for r in range(5, 0, -1):
            if regions:
                lines.append("    ")
                for f in range(1, 6):
                    name = segments.label(segments.rf11_cell(r, f), self._language)
                    lines.append(_fit(name, cell - 1) + " ", style=self._heat_style(data.grid[r - 1][f - 1], busiest))
                lines.append("\n")
            lines.append(f"R{r}  ", style="bold")
            for f in range(1, 6):
                count = data.grid[r - 1][f - 1]
                bar_width = 3 if cell < 13 else 5
                shown = f"{count:>{cell - 2 - bar_width},} {heat_bar(count, busiest, bar_width)}"
                lines.append(_fit(shown, cell - 1) + " ", style=self._heat_style(count, busiest))
            lines.append("\n")
        note = ("5 = best · █: share of the busiest cell" if regions else
                f"{data.model} does not map onto R × F cells; counts only")
        lines.append(note, style="dim")
        return lines

    def _heat_style(self, count: int, busiest: int) -> Style:
        """A background from the theme's panel to its primary colour, when colour is on."""
        app = self.app
        if busiest <= 0 or app.no_color or app.current_theme.ansi:
            return Style()
        from textual.color import Color

        theme = app.current_theme
        low = Color.parse(theme.panel or theme.background or "#000000")
        high = Color.parse(theme.primary)
        return Style(bgcolor=low.blend(high, 0.15 + 0.6 * count / busiest).rich_color)


class RevenueBars(Widget):
    """Window revenue by segment as horizontal bars, with share and amount."""

    DEFAULT_CSS = """
    RevenueBars { height: auto; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._data: "TiersData | None" = None
        self._language = "en"
        self._currency = "$"

    def show(self, data: "TiersData | None", language: str, currency: str) -> None:
        """Draw the bars of ``data`` with names in ``language``."""
        self._data = data
        self._language = language
        self._currency = currency
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._data.rows) if self._data else 1

    def render(self) -> Text:
        data = self._data
        if data is None:
            return Text("…", style="dim")
        from core import segments  # loaded by the worker that fetched the data

        names = [segments.label(row.segment, self._language) for row in data.rows]
        label_width = min(max((_width(name) for name in names), default=8), 18)
        amounts = [format_cents(row.revenue_cents, self._currency) for row in data.rows]
        amount_width = max((len(amount) for amount in amounts), default=1)
        bar_width = max(self.size.width - label_width - amount_width - 10, 5)
        top = max((row.revenue_share for row in data.rows), default=0.0) or 1.0
        lines = Text(no_wrap=True)
        for index, (row, name, amount) in enumerate(zip(data.rows, names, amounts)):
            if index:
                lines.append("\n")
            lines.append(_fit(name, label_width) + " ")
            lines.append(bar(row.revenue_share / top, bar_width), style="bold")
            lines.append(f" {row.revenue_share:>6.1%} {amount:>{amount_width}}")
        return lines


def _width(text: str) -> int:
    return Text(text).cell_len


def _fit(text: str, width: int) -> str:
    """Pad or cut ``text`` to ``width`` terminal cells (CJK counts double)."""
    rendered = Text(text)
    if rendered.cell_len > width:
        rendered.truncate(width, overflow="ellipsis")
        rendered.pad_right(width - rendered.cell_len)
    else:
        rendered.pad_right(width - rendered.cell_len)
    return rendered.plain
