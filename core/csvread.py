"""Reading an input file: what it is, and its records as text with line numbers.

:func:`open_table` looks at a file and says what it is (CSV or Parquet, the
encoding, the delimiter, the header) or refuses it with one clear line.
:func:`read_batches` then yields its records in bounded batches, every cell
as text, each record with the physical line it starts on (header = line 1;
for Parquet the 1-based row number), its number of fields and its raw text.

The fast path reads each block (whole lines, ~16 MB) twice with polars: once
as plain lines (for line numbers, raw text, blank lines and the field counts
of lines that need counting) and once as CSV. That is exact as long as no
quoted field spans lines, which holds when every line has an even number of
quote characters. The first block where it fails switches the rest of the
file to Python's ``csv`` module, slower but following quoted line breaks, so
line numbers stay right. Most exports quote nothing and pad no cell; for
those, one look at a block's bytes stands in for per-line work (see
``_vouched_fields`` and ``_spaces_touch_edges``).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np
import polars as pl

from core.errors import InputError

LINE = "__line"
FIELDS = "__fields"
RAW = "__raw"

BOM = codecs.BOM_UTF8
SNIFF_BYTES = 1 << 20
CHUNK_BYTES = 16 << 20  # ~250k orders: each batch is written while the next is read
EXACT_BATCH_ROWS = 100_000
PARQUET_BATCH_ROWS = 500_000
DELIMITERS = (",", ";", "\t", "|")
_QUOTED = re.compile(r'"[^"]*"')
# What a cell is stripped of: polars' strip_chars(), Unicode's White_Space (Python's str.strip
# also takes \x1c-\x1f). A line of only these, delimiters and quotes is blank to both readers.
WHITESPACE = ("\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
              + "\u2028\u2029\u202f\u205f\u3000")


@dataclass(frozen=True)
class Table:
    """An input file that looked readable, and how to read it."""

    path: Path
    format: str  # "csv" | "parquet"
    encoding: str | None  # "utf-8" | "utf-8-sig" | "gb18030"; None for Parquet
    delimiter: str | None
    columns: tuple[str, ...]  # the header, made unique
    size: int
    data_offset: int = 0  # CSV: byte offset of the first record after the header
    first_line: int = 2  # CSV: the physical line that record starts on
    rows: int | None = None  # Parquet: known up front
    cr_lines: bool = False  # CSV: lines end with a lone CR (Excel's "CSV (Macintosh)"): read exactly
    unusable: tuple[tuple[int, str], ...] = ()  # Parquet: columns of a type no field can read, and that type

    @property
    def name(self) -> str:
        return self.path.name

    def cell(self, index: int) -> str:
        """The frame column holding the file's column ``index``."""
        return f"c{index}"


@dataclass(frozen=True)
class Batch:
    """Some records of a file: ``frame`` has c0..cN (text), LINE, FIELDS and RAW."""

    frame: pl.DataFrame
    bytes_done: int  # of the file, so far; the last batch of a file has bytes_done == size
    padded: bool = True  # whether a cell may start or end with whitespace (False: none does)


# --- looking at a file ---------------------------------------------------------


def open_table(path: Path | str, fmt: str = "auto", encoding: str = "auto") -> Table:
    """Say what ``path`` is, or raise :class:`InputError` naming the file and the problem."""
    path = Path(path)
    name = path.name
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a file")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(SNIFF_BYTES)
            tail = b""
            if size >= 8:
                handle.seek(max(0, size - 4))
                tail = handle.read(4)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError(f"{name}: the file is empty")
    if head.startswith(b"PAR1"):
        if fmt not in ("auto", "parquet"):
            raise InputError(f"{name}: is a Parquet file, not {fmt}; leave out --format")
        if tail != b"PAR1":
            raise InputError(f"{name}: a Parquet file that is cut short or damaged")
        return _open_parquet(path, size)
    if fmt == "parquet":
        raise InputError(f"{name}: not a Parquet file (it does not start with PAR1)")
    _refuse_binary(name, head)
    chosen = _choose_encoding(name, head, encoding, whole=size <= len(head))
    return _open_csv(path, size, head, chosen)


def _refuse_binary(name: str, head: bytes) -> None:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{name}: UTF-16 text; save it as UTF-8 (or GB18030) CSV")
    if head.startswith(b"PK\x03\x04"):
        raise InputError(f"{name}: a zip or Excel file, not CSV; export the sheet as CSV")
    if b"\x00" in head[:8192]:
        raise InputError(f"{name}: a binary file, not CSV or Parquet")


def _choose_encoding(name: str, head: bytes, requested: str, whole: bool) -> str:
    """BOM -> utf-8-sig; strict UTF-8; else GB18030; else ask."""
    requested = (requested or "auto").lower().replace("_", "-")
    if requested in ("utf-8", "utf8"):
        if not _decodes(head, "utf-8", whole):
            raise InputError(f"{name}: cannot be read as UTF-8; try --encoding gb18030")
        return "utf-8-sig" if head.startswith(BOM) else "utf-8"
    if requested == "gb18030":
        if not _decodes(head, "gb18030", whole):
            raise InputError(f"{name}: cannot be read as GB18030; try --encoding utf-8")
        return "gb18030"
    if requested != "auto":
        raise InputError(f"unknown encoding {requested!r} (use auto, utf-8 or gb18030)")
    if head.startswith(BOM):
        return "utf-8-sig"
    if _decodes(head, "utf-8", whole):
        return "utf-8"
    if _decodes(head, "gb18030", whole):
        return "gb18030"
    raise InputError(f"{name}: cannot tell the encoding; pass --encoding utf-8 or --encoding gb18030")


def _decodes(data: bytes, encoding: str, whole: bool) -> bool:
    try:
        # A sample may end inside a character: only the whole file must end cleanly.
        codecs.getincrementaldecoder(encoding)().decode(data, final=whole)
    except UnicodeDecodeError:
        return False
    return True


def _open_csv(path: Path, size: int, head: bytes, encoding: str) -> Table:
    name = path.name
    skip = len(BOM) if encoding == "utf-8-sig" else 0
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    text = codecs.getincrementaldecoder(codec)(errors="replace").decode(head[skip:], final=size <= len(head))
    sample_lines = text.splitlines()[:50]
    if not any(line.strip() for line in sample_lines):
        raise InputError(f"{name}: no header line (the file is blank)")
    delimiter = sniff_delimiter(sample_lines)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        header_lines = reader.line_num
    except (StopIteration, csv.Error):
        raise InputError(f"{name}: no readable header line") from None
    if not any(cell.strip() for cell in header):
        raise InputError(f"{name}: the first line is not a header (it is empty)")
    # Lines that end with a lone CR: no LF anywhere in the first megabyte.
    cr_lines = b"\r" in head and b"\n" not in head
    # The record after the header starts after the header's last line break.
    offset = skip
    for _ in range(header_lines):
        newline = head.find(b"\r" if cr_lines else b"\n", offset)
        if newline < 0:
            offset = size
            break
        offset = newline + 1
    if offset >= size:
        raise InputError(f"{name}: has a header but no rows")
    return Table(
        path=path, format="csv", encoding=encoding, delimiter=delimiter, columns=_unique(header),
        size=size, data_offset=offset, first_line=header_lines + 1, cr_lines=cr_lines,
    )


def sniff_delimiter(lines: list[str]) -> str:
    """The delimiter (, ; tab |) that splits the header and the lines below it most consistently."""
    lines = [_QUOTED.sub("", line) for line in lines if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        in_header = lines[0].count(delimiter)
        if in_header == 0:
            continue
        agreeing = sum(1 for line in lines[1:] if line.count(delimiter) == in_header)
        score = (agreeing, in_header)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _unique(header: list[str]) -> tuple[str, ...]:
    names: list[str] = []
    seen: set[str] = set()
    for position, raw in enumerate(header, start=1):
        name = raw.strip().lstrip("\ufeff") or f"column {position}"
        candidate, suffix = name, 2
        while candidate.lower() in seen:
            candidate, suffix = f"{name} ({suffix})", suffix + 1
        seen.add(candidate.lower())
        names.append(candidate)
    return tuple(names)


def _open_parquet(path: Path, size: int) -> Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(path)
        names = meta.schema_arrow.names
        rows = meta.metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path.name}: cannot be read as Parquet ({exc})") from None
    if not names:
        raise InputError(f"{path.name}: a Parquet file without columns")
    if rows == 0:
        raise InputError(f"{path.name}: a Parquet file without rows")
    try:
        dtypes = pl.from_arrow(meta.schema_arrow.empty_table()).dtypes
    except Exception:  # a type polars cannot hold at all: say so only if a field needs that column
        dtypes = [pl.Object] * len(names)
    unusable = tuple((index, str(dtype)) for index, dtype in enumerate(dtypes)
                     if not (_readable(dtype) or dtype == pl.Null))
    return Table(path=path, format="parquet", encoding=None, delimiter=None, columns=_unique(names),
                 size=size, rows=rows, unusable=unusable)


def _readable(dtype: pl.DataType) -> bool:
    """A Parquet type that becomes text the cell parsers read back to the same value."""
    return isinstance(dtype, (pl.Datetime, pl.Categorical, pl.Enum)) or dtype in (pl.Date, pl.String, pl.Boolean) \
        or dtype.is_numeric()


# --- reading records -------------------------------------------------------------


def read_batches(table: Table, chunk_bytes: int | None = None) -> Iterator[Batch]:
    """The file's records in order, in batches of about ``chunk_bytes`` (default :data:`CHUNK_BYTES`)."""
    if table.format == "parquet":
        yield from _parquet_batches(table)
    else:
        yield from _csv_batches(table, chunk_bytes or CHUNK_BYTES)


def _csv_batches(table: Table, chunk_bytes: int) -> Iterator[Batch]:
    codec = "utf-8" if table.encoding == "utf-8-sig" else table.encoding
    width = len(table.columns)
    line = table.first_line
    offset = table.data_offset
    if table.cr_lines:  # the fast path splits lines at LF only
        yield from _exact_batches(table, codec, offset, line, width)
        return
    with open(table.path, "rb") as handle:
        handle.seek(offset)
        carry = b""
        # Small batches at both ends: the writer starts on the first sooner, and the last,
        # which it writes with nothing left to read alongside, takes less time.
        small = max(chunk_bytes // 4, 1)
        size = small
        while True:
            left = table.size - handle.tell()
            if small < left <= size + small:
                size = left - small
            block = handle.read(size)
            size = chunk_bytes
            data = carry + block
            if not data:
                return
            if block:
                cut = data.rfind(b"\n") + 1
                if cut == 0:  # one line longer than a block: read on
                    carry = data
                    continue
            else:
                cut = len(data)
            piece, carry = data[:cut], data[cut:]
            block = _fast_frame(table, piece, codec, line, width)
            if block is None:
                # A quoted field spans lines somewhere in this block: from its
                # start (a record boundary) on, follow the quotes exactly.
                yield from _exact_batches(table, codec, offset, line, width)
                return
            offset += len(piece)
            line += block.lines
            yield Batch(block.frame, offset, block.padded)


def _nul_error(table: Table, line: int) -> InputError:
    return InputError(f"{table.name}: line {line} holds a NUL byte: binary data, not CSV text")


def _utf8_error(table: Table, piece: bytes, codec: str, line: int) -> InputError:
    """Name the first line that does not decode (the whole piece failed somewhere)."""
    try:
        piece.decode(codec)
    except UnicodeDecodeError as exc:
        line += piece.count(b"\n", 0, exc.start)
    other = "gb18030" if codec == "utf-8" else "utf-8"
    return InputError(f"{table.name}: line {line} is not valid {codec.upper()}; pass --encoding {other}")


class _Block(NamedTuple):
    frame: pl.DataFrame  # the records, blank lines left out
    lines: int  # physical lines read, blank ones included
    padded: bool  # see Batch


def _fast_frame(table: Table, piece: bytes, codec: str, line: int, width: int) -> _Block | None:
    """The records of ``piece`` (whole lines), or None if a quoted field spans lines in it."""
    if codec == "utf-8":
        utf8 = piece
    else:
        try:
            utf8 = piece.decode(codec).encode("utf-8")
        except UnicodeDecodeError:
            raise _utf8_error(table, piece, codec, line) from None
    delimiter = table.delimiter or ","
    if b"\x00" in utf8:
        raise _nul_error(table, line + utf8.count(b"\n", 0, utf8.index(b"\x00")))
    try:
        # Each physical line as one string: no quoting, and a separator that text never holds.
        lines = pl.read_csv(
            io.BytesIO(utf8), has_header=False, separator="\x00", quote_char=None, schema={RAW: pl.String},
            truncate_ragged_lines=True, empty_string_is_null=False, raise_if_empty=False,
        )[RAW].fill_null("")
    except pl.exceptions.ComputeError:
        raise _utf8_error(table, piece, codec, line) from None
    quoted = b'"' in utf8
    unquoted = lines
    if quoted:
        quotes = lines.str.count_matches('"', literal=True)
        if (quotes % 2 == 1).any():
            return None
        unquoted = lines.zip_with(quotes == 0, lines.str.replace_all(_QUOTED.pattern, ""))
    try:
        cells = pl.read_csv(
            io.BytesIO(utf8), has_header=False, separator=delimiter, quote_char='"',
            schema={table.cell(index): pl.String for index in range(width)}, missing_columns="insert",
            extra_columns="ignore", truncate_ragged_lines=True, empty_string_is_null=True, raise_if_empty=False,
        )
    except pl.exceptions.ComputeError:  # a quote polars will not read (`"1"x`): the csv module reads it
        return None
    if cells.height != len(lines):  # a layout the line split and the parser read differently
        return None
    if quoted:
        fields = _count_fields(unquoted, delimiter)
    else:
        fields = _vouched_fields(lines, cells[table.cell(width - 1)], utf8, delimiter, width)
    crlf = b"\r" in utf8
    padded = quoted or crlf or _spaces_touch_edges(utf8, delimiter)
    if padded:
        blank = lines.str.strip_chars(f'{WHITESPACE}"{delimiter}').str.len_bytes() == 0
    else:  # no whitespace next to a delimiter or a line end: a blank line holds only delimiters
        blank = lines.str.len_bytes() == (fields - 1).cast(pl.UInt32)
    del utf8
    frame = cells.with_columns(
        pl.int_range(line, line + cells.height, dtype=pl.Int64).alias(LINE), fields,
        lines.str.strip_suffix("\r") if crlf else lines,
    )
    return _Block(frame.filter(~blank) if blank.any() else frame, cells.height, padded)


def _spaces_touch_edges(piece: bytes, delimiter: str) -> bool:
    """Whether whitespace touches a delimiter or a line's end in ``piece`` (whole lines, no quotes, LF ends).

    If not, no cell starts or ends with whitespace, so nothing need strip
    each cell (most exports pad none). Only plain ASCII is looked at; any
    other text counts as touching.
    """
    if not piece.isascii():
        return True
    spaces = [byte for byte in b" \t\x0b\x0c" if byte != ord(delimiter) and bytes([byte]) in piece]
    if not spaces:
        return False
    data = np.frombuffer(piece, dtype=np.uint8)  # a pass or two over the bytes: far less than stripping
    space = data == spaces[0] if len(spaces) == 1 else np.isin(data, spaces)
    edge = (data == ord(delimiter)) | (data == ord("\n"))
    return bool(space[0] or space[-1] or (space[1:] & edge[:-1]).any() or (space[:-1] & edge[1:]).any())


def _count_fields(lines: pl.Series, delimiter: str) -> pl.Series:
    """The fields on each line (quoted parts already taken out): one more than its delimiters."""
    return (lines.str.count_matches(delimiter, literal=True) + 1).cast(pl.Int32).alias(FIELDS)


def _vouched_fields(lines: pl.Series, last: pl.Series, utf8: bytes, delimiter: str, width: int) -> pl.Series:
    """The fields on each line of a block without quotes, counted line by line only where needed.

    Counting a delimiter line by line costs more than parsing the block; one
    count over its bytes can vouch for most lines instead. A line whose last
    cell (``last``) is filled has at least ``width`` fields; the others are
    counted. If the block holds just the delimiters those numbers need, no
    line has more, so the filled ones have exactly ``width``. If not, every
    line is counted.
    """
    fields = pl.repeat(width, len(lines), dtype=pl.Int32, eager=True).alias(FIELDS)
    short = last.is_null()  # too few fields, or the last one empty
    if short.any():
        where = short.arg_true()
        fields = fields.scatter(where, _count_fields(lines.gather(where), delimiter))
    delimiters = int(np.count_nonzero(np.frombuffer(utf8, dtype=np.uint8) == ord(delimiter)))
    if fields.sum() - len(fields) == delimiters:
        return fields
    return _count_fields(lines, delimiter)


class _Tap:
    """Iterates a text stream's lines for csv.reader and keeps what one record consumed."""

    def __init__(self, stream: io.TextIOBase) -> None:
        self.stream = stream
        self.taken: list[str] = []

    def __iter__(self) -> "_Tap":
        return self

    def __next__(self) -> str:
        text = next(self.stream)
        self.taken.append(text)
        return text

    def record_text(self) -> str:
        raw = "".join(self.taken)
        self.taken.clear()
        return raw


def _exact_batches(table: Table, codec: str, offset: int, line: int, width: int) -> Iterator[Batch]:
    binary = open(table.path, "rb")
    binary.seek(offset)
    stream = io.TextIOWrapper(binary, encoding=codec, newline="")
    tap = _Tap(stream)
    reader = csv.reader(tap, delimiter=table.delimiter or ",", strict=False)
    columns: list[list[str | None]] = [[] for _ in range(width)]
    lines: list[int] = []
    counts: list[int] = []
    raws: list[str] = []
    done = offset
    try:
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except UnicodeDecodeError:
                other = "gb18030" if codec == "utf-8" else "utf-8"
                raise InputError(
                    f"{table.name}: text after line {line} is not valid {codec.upper()}; pass --encoding {other}"
                ) from None
            except csv.Error as exc:
                raise InputError(f"{table.name}: line {line}: {exc}") from None
            raw = tap.record_text()
            if "\x00" in raw:
                raise _nul_error(table, line + raw.count("\n", 0, raw.index("\x00")))
            start = line
            # Line breaks as csv reads them (LF, CRLF or a lone CR), so a CR-only file counts too.
            line += raw.count("\n") + raw.count("\r") - raw.count("\r\n") or 1
            done += len(raw.encode(codec))
            if not any(cell.strip(WHITESPACE) for cell in record):
                continue  # a blank line, or one of only delimiters
            for index in range(width):
                columns[index].append(record[index] if index < len(record) else None)
            lines.append(start)
            counts.append(len(record))
            raws.append(raw.rstrip("\r\n"))
            if len(lines) >= EXACT_BATCH_ROWS:
                yield Batch(_exact_frame(table, columns, lines, counts, raws), done)
                columns = [[] for _ in range(width)]
                lines, counts, raws = [], [], []
    finally:
        stream.close()
    # Always a last batch, even an empty one: it is how the reader learns the file has ended.
    yield Batch(_exact_frame(table, columns, lines, counts, raws), table.size)


def _exact_frame(table: Table, columns: list[list[str | None]], lines: list[int], counts: list[int],
                 raws: list[str]) -> pl.DataFrame:
    data = {table.cell(index): pl.Series(values, dtype=pl.String) for index, values in enumerate(columns)}
    # csv gives "" for an empty field; the fast path gives null: make them agree.
    frame = pl.DataFrame(data).with_columns(pl.all().replace("", None))
    return frame.with_columns(
        pl.Series(LINE, lines, dtype=pl.Int64),
        pl.Series(FIELDS, counts, dtype=pl.Int32),
        pl.Series(RAW, raws, dtype=pl.String),
    )


def _parquet_batches(table: Table) -> Iterator[Batch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    width = len(table.columns)
    done = 0
    total = table.rows or 1
    try:
        source = pq.ParquetFile(table.path)
        for record_batch in source.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            frame = pl.from_arrow(record_batch)
            assert isinstance(frame, pl.DataFrame)
            frame.columns = [table.cell(index) for index in range(width)]
            frame = frame.select(_as_text(frame, table, index) for index in range(width))
            frame = frame.with_columns(
                pl.int_range(done + 1, done + 1 + frame.height, dtype=pl.Int64).alias(LINE),
                pl.lit(width, dtype=pl.Int32).alias(FIELDS),
                pl.lit(None, dtype=pl.String).alias(RAW),
            )
            done += frame.height
            yield Batch(frame, int(table.size * done / total))
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{table.name}: cannot be read as Parquet ({exc})") from None


def _as_text(frame: pl.DataFrame, table: Table, index: int) -> pl.Expr:
    """A Parquet column as text that the cell parsers read back to the same value."""
    name = table.cell(index)
    column = pl.col(name)
    dtype = frame.schema[name]
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone:
            return column.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        return column.dt.strftime("%Y-%m-%d %H:%M:%S")
    if dtype == pl.Date:
        return column.dt.strftime("%Y-%m-%d")
    if dtype == pl.String:
        return column
    if dtype.is_numeric() or dtype == pl.Boolean or dtype in (pl.Categorical, pl.Enum):
        return column.cast(pl.String)
    # All blank (pl.Null), or a type no field reads: plan_import refused it if a field uses it.
    return pl.lit(None, dtype=pl.String).alias(name)


def parquet_raw(frame: pl.DataFrame, table: Table) -> pl.Series:
    """Raw text for Parquet records (which have none): the row as JSON with the file's column names."""
    names = {table.cell(index): column for index, column in enumerate(table.columns)}
    return frame.select(pl.struct(pl.col(list(names)).name.map(lambda c: names[c])).struct.json_encode()).to_series()
