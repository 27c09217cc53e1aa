"""A table with a row cursor, where Home and End jump to the first and last row."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import DataTable


class RowTable(DataTable):
    """Textual's DataTable for a row cursor: Home and End go to the first and last row.

    Textual binds them to the first and last column, which a row cursor does
    not have; the member lists (textual-fastdatatable) already jump by rows.
    """

    BINDINGS = [
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]
