"""A virtual table of customers, Arrow-backed, for lists of any length.

textual-fastdatatable renders only the rows on screen, so 100k+ members
scroll as smoothly as ten. Two choices keep every key press cheap:

* each row reaches the table as two cells — the customer id and one line
  holding every other column at fixed widths — because the table renders
  every cell through Rich (about a millisecond per cell on a busy machine:
  twelve cells per row made a page of rows cost more than a frame);
* the widths are measured once, by polars in the worker, and the lines are
  built only for the rows the table draws, so nothing scales with the
  number of rows on the UI thread.

Rows are never edited in place: a new sort or filter arrives as a new
backend, which replaces the old one inside the same table widget (mounting
a new widget would restyle it and move the focus, which rebuilds the
footer: a tenth of a second of UI-thread time on a busy machine).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import Static

if TYPE_CHECKING:
    import polars as pl
    from textual_fastdatatable import ArrowBackend

    from console.messages import TableLoaded

GAP = "  "


@dataclass(frozen=True)
class Column:
    """How one field of a row line is shown."""

    name: str
    header: str
    right: bool = False
    max_width: int = 24


def _cells(expr: "pl.Expr") -> "pl.Expr":
    """Terminal cells a string takes, near enough: wide characters count twice.

    East Asian wide characters take three bytes in UTF-8 and accented Latin
    ones two, so (bytes - characters) // 2 counts the wide ones without a
    regular expression (ten times faster over 100k rows). Signed, so a
    difference with it may go below zero.
    """
    import polars as pl

    characters = expr.str.len_chars().cast(pl.Int64)
    return characters + (expr.str.len_bytes().cast(pl.Int64) - characters) // 2


def _fit(text: str, width: int, right: bool) -> str:
    """``text`` padded (or cut, marked with "~") to exactly ``width`` terminal cells."""
    cells = cell_len(text)
    if cells > width:
        while text and cell_len(text) > width - 1:
            text = text[:-1]
        text, cells = text + "~", cell_len(text) + 1
    padding = " " * (width - cells)
    return padding + text if right else text + padding


class RowLines:
    """The line of each row, built only when the table asks for it (rows on screen).

    Formatting 100k lines up front took a fifth of a second; the table only
    ever shows a screenful. ``texts`` holds every field already as text.
    """

    def __init__(self, texts: "pl.DataFrame", columns: Sequence[Column], widths: Sequence[int]) -> None:
        self.texts = texts
        self.columns = tuple(columns)
        self.widths = tuple(widths)
        self.header = GAP.join(_fit(column.header, width, column.right)
                               for column, width in zip(self.columns, self.widths))

    def line(self, index: int) -> str:
        fields = self.texts.row(index)
        return GAP.join(_fit(field, width, column.right)
                        for field, column, width in zip(fields, self.columns, self.widths))


def row_lines(rows: "pl.DataFrame", columns: Sequence[Column]) -> RowLines:
    """Every field as text and each column's width (the longest value, capped): one polars pass."""
    import polars as pl

    texts = rows.select(
        # An ASCII "-" for missing values: the width estimate counts multi-byte as wide.
        pl.col(column.name).cast(pl.String).fill_null("-").alias(column.name) for column in columns
    )
    longest = texts.select(_cells(pl.col(column.name)).max() for column in columns).row(0) if texts.height else \
        [0] * len(columns)
    widths = [min(max(found or 0, len(column.header)), column.max_width)
              for column, found in zip(columns, longest)]
    return RowLines(texts, columns, widths)


def align_rows(rows: Sequence[Sequence[str]], headers: Sequence[str], *, max_width: int = 28
               ) -> tuple[list[str], str]:
    """Short lists (search results): each row as one line of padded fields, and the header.

    One cell per row renders several times faster than one cell per field.
    """
    widths = [
        min(max([Text(header).cell_len, *(Text(row[index]).cell_len for row in rows)]), max_width)
        for index, header in enumerate(headers)
    ]

    def line(fields: Sequence[str]) -> str:
        parts = []
        for field, width in zip(fields, widths):
            text = Text(field)
            text.truncate(width, overflow="ellipsis", pad=True)
            parts.append(text.plain)
        return GAP.join(parts).rstrip()

    return [line(row) for row in rows], line(headers)


def build_backend(rows: "pl.DataFrame", key: str, key_header: str,
                  columns: Sequence[Column]) -> "ArrowBackend":
    """A backend of two cells per row: ``key``, then the line of the other ``columns``.

    Call it in a worker. The Arrow table holds the keys; each line is
    assembled when the table asks for that row, and the widths are known,
    so nothing is measured or formatted for rows that are never shown.
    """
    import polars as pl
    import pyarrow as pa
    from textual_fastdatatable import ArrowBackend

    lines = row_lines(rows, columns)
    keys = rows.get_column(key).cast(pl.String).fill_null("")
    key_width = max(int(keys.str.len_chars().max() or 0), len(key_header))
    table = pa.table({key_header: keys.to_arrow(), lines.header: pa.nulls(rows.height, pa.string())})
    line_width = cell_len(lines.header)

    class LazyLines(ArrowBackend):
        """Keys from Arrow, lines from :class:`RowLines`, widths known in advance."""

        @property
        def column_content_widths(self) -> list[int]:
            return [key_width, line_width]

        def get_cell_at(self, row_index: int, column_index: int):
            if column_index == 1:
                return lines.line(row_index)
            return super().get_cell_at(row_index, column_index)

        def get_row_at(self, index: int):
            return [super().get_cell_at(index, 0), lines.line(index)]

        def get_column_at(self, column_index: int) -> list:
            if column_index == 1:
                return [lines.line(index) for index in range(self.row_count)]
            return super().get_column_at(column_index)

    backend = LazyLines(table)
    backend.render_markup = False
    return backend


def customer_table(backend: "ArrowBackend"):
    """A fast table of customer rows over ``backend`` (see :func:`build_backend`)."""
    from textual_fastdatatable import DataTable

    class CustomerTable(DataTable):
        """textual-fastdatatable, plus replacing all rows without a new widget."""

        def replace_backend(self, new: "ArrowBackend") -> None:
            # The widget keeps per-backend caches (column layout, rendered
            # cells and lines, keyed by an update counter) and sizes itself
            # from the backend: reset all of them, as its own sort() does.
            self.backend = new
            self.backend.render_markup = False
            self._ordered_columns = None
            self._update_count += 1
            self._clear_caches()
            self._update_dimensions([])
            self.move_cursor(row=0, column=0)
            self.scroll_to(0, 0, animate=False)
            self.refresh()

    return CustomerTable(
        backend=backend,
        cursor_type="row",
        zebra_stripes=True,
        fixed_columns=1,
        show_row_labels=False,
        render_markup=False,
        null_rep="–",
    )


class MemberTable(Vertical):
    """A status line and a virtual table of customers; ``enter`` chooses one."""

    DEFAULT_CSS = """
    MemberTable { height: 1fr; }
    MemberTable > #table-status { height: 1; padding: 0 1; color: $text-muted; }
    MemberTable > DataTable { height: 1fr; }
    """

    class Chosen(Message):
        """A customer row was chosen (``customer`` is their row id)."""

        def __init__(self, customer: int) -> None:
            super().__init__()
            self.customer = customer

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._ids: "pl.Series | None" = None
        self._generation = 0

    def compose(self) -> ComposeResult:
        yield Static("", id="table-status")

    @property
    def row_count(self) -> int:
        return 0 if self._ids is None else len(self._ids)

    @property
    def table(self):
        """The fast table on show, if any."""
        from textual_fastdatatable import DataTable

        found = self.query(DataTable)
        return found.first() if found else None

    def set_status(self, text: str | Text) -> None:
        self.query_one("#table-status", Static).update(text if isinstance(text, Text) else Text(text))

    def forget(self) -> None:
        """Drop the rows on show, so none can be chosen until :meth:`show` brings new ones.

        The widget keeps drawing the old rows under its loading indicator;
        a key pressed meanwhile must not open one of them, now or (the
        table's own enter posts a message) once the new rows are in.
        """
        self._ids = None
        self.set_status("")
        table = self.table
        if table is not None:
            table.cursor_type = "none"  # its enter selects nothing until show()

    def show(self, loaded: "TableLoaded", *, focus: bool = True) -> None:
        """Show the rows of ``loaded`` (an answer older than the one on show is ignored)."""
        if loaded.generation < self._generation:
            return
        self._generation = loaded.generation
        self._ids = loaded.ids
        table = self.table
        if table is None:
            table = customer_table(loaded.backend)
            self.mount(table)
            if focus:
                table.focus()
        else:
            table.replace_backend(loaded.backend)
            table.cursor_type = "row"
        self.set_status(loaded.note)

    def highlighted(self) -> int | None:
        """The row id of the customer under the cursor."""
        table = self.table
        if table is None or self._ids is None or not len(self._ids):
            return None
        row = table.cursor_row
        return int(self._ids[row]) if 0 <= row < len(self._ids) else None

    def on_data_table_row_selected(self, event) -> None:
        # Only fast tables live in here; their RowSelected carries the row index.
        event.stop()
        row = event.cursor_row
        if self._ids is not None and 0 <= row < len(self._ids):
            self.post_message(self.Chosen(int(self._ids[row])))
