"""Reading cells and sniffing files: the small parsers the importers stand on."""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import cells
from core import csvread
from core.csvread import open_table, read_batches, sniff_delimiter
from core.errors import InputError

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(*parts) -> int:
    return int(datetime(*parts, tzinfo=timezone.utc).timestamp())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-05", utc(2025, 1, 4, 16)),  # midnight in Shanghai
        ("2025-01-05 10:00", utc(2025, 1, 5, 2)),
        ("2025-01-05 10:00:30", utc(2025, 1, 5, 2, 0, 30)),
        ("2025-01-05T10:00:00", utc(2025, 1, 5, 2)),
        ("2025/01/05 10:00:00", utc(2025, 1, 5, 2)),
        ("2025/1/5 9:03", utc(2025, 1, 5, 1, 3)),
        ("2025-01-05T10:00:00Z", utc(2025, 1, 5, 10)),
        ("2025-01-05T10:00:00+08:00", utc(2025, 1, 5, 2)),
        ("2024-09-03 10:14:00 -0400", utc(2024, 9, 3, 14, 14)),  # Shopify
        ("2025-01-05 10:00:00.250", utc(2025, 1, 5, 2)),
        ("1736071200", 1736071200),
        ("1736071200123", 1736071200),
        ("2025-02-30", None),
        ("05/01/2025", None),
        ("soon", None),
        ("2024-01-05T10:00:00+24:00", None),  # no offset is a day or more
        ("2024-01-05 10:00:00 +9900", None),
        ("2024-01-05T10:00:00+08:60", None),
    ],
)
def test_instants_in_every_layout_agree_with_the_reference_parser(text, expected):
    vectorised = cells.read_column(pl.Series([text]), cells.instant_reading(SHANGHAI))[0]
    assert vectorised == expected
    assert cells.parse_instant_text(text, SHANGHAI) == expected


def test_a_local_time_skipped_by_daylight_saving_is_unreadable():
    new_york = ZoneInfo("America/New_York")
    assert cells.read_column(pl.Series(["2024-03-10 02:30:00"]), cells.instant_reading(new_york))[0] is None
    assert cells.parse_instant_text("2024-03-10 02:30", new_york) is None


@pytest.mark.parametrize(
    ("text", "comma", "expected"),
    [
        ("12.50", False, 1250),
        ("12", False, 1200),
        ("1,234.56", False, 123456),
        ("¥1234.5", False, 123450),
        ("￥88", False, 8800),
        ("$12", False, 1200),
        ("USD 4.10", False, 410),
        ("12,50", False, 1250),
        ("12,345", False, 1234500),
        ("1.234,56", False, 123456),
        ("12,50", True, 1250),
        ("1.234,56", True, 123456),
        ("0.125", False, 13),  # half away from zero
        ("0.124", False, 12),
        ("1.005", False, 101),
        ("-5", False, -500),
        ("(3.00)", False, -300),
        ("abc", False, None),
        ("abc12", False, None),
        ("1e5", False, None),
        ("12.3.4", False, None),
        ("99999999999999", False, None),  # more digits than any order
    ],
)
def test_amounts_become_exact_cents(text, comma, expected):
    assert cells.read_column(pl.Series([text]), cells.amount_reading(comma))[0] == expected
    assert cells.parse_amount_text(text, decimal_comma=comma) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(
    st.from_regex(r"\A\d{1,13}(\.\d{0,2})?\Z"),  # what the vectorised path reads (by float, then whole cents)
    st.from_regex(r"\A[\d.,]{1,18}\Z"),
    st.text(max_size=8),
), min_size=1, max_size=40), st.booleans())
def test_vectorised_amounts_agree_with_the_reference_parser(texts, comma):
    expected = [cells.parse_amount_text(text, decimal_comma=comma) if text.strip() else None for text in texts]
    blank_as_null = [text if text.strip() else None for text in texts]
    read = cells.read_column(pl.Series(blank_as_null, dtype=pl.String), cells.amount_reading(comma))
    assert read.to_list() == expected


def test_blank_cells_stay_null():
    assert cells.read_column(pl.Series([None], dtype=pl.String), cells.amount_reading()).to_list() == [None]
    assert cells.read_column(pl.Series([None], dtype=pl.String), cells.instant_reading(SHANGHAI)).to_list() == [None]


def test_consent_words():
    words = pl.Series(["Yes", "no", "TRUE", "0", "Subscribed", "unsubscribed", "opted out", "Opted-Out", "maybe", None])
    read = cells.read_column(words, cells.word_reading(cells.CONSENT_WORDS, pl.Int64))
    assert read.to_list() == [1, 0, 1, 0, 1, -1, -1, -1, None, None]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["a,b,c", "1,2,3"], ","),
        (["a;b;c", "1;2,5;3"], ";"),
        (["a\tb\tc", "1\t2\t3"], "\t"),
        (["a|b|c", "1|2|3"], "|"),
        (['name;note', '"Smith, John";"a, b, c"'], ";"),
        (["single"], ","),
    ],
)
def test_delimiter_sniffing(lines, expected):
    assert sniff_delimiter(lines) == expected


def test_encodings_are_told_apart(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfa,b\n1,2\n")
    assert open_table(bom).encoding == "utf-8-sig"
    assert open_table(bom).columns == ("a", "b")
    chinese = tmp_path / "gb.csv"
    chinese.write_bytes("订单号,金额\nA,1\n".encode("gb18030"))
    assert open_table(chinese).encoding == "gb18030"
    assert open_table(chinese).columns == ("订单号", "金额")
    plain = tmp_path / "plain.csv"
    plain.write_text("订单号,金额\nA,1\n", encoding="utf-8")
    assert open_table(plain).encoding == "utf-8"


def test_a_file_no_encoding_reads_is_refused(tmp_path):
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"a,b\n\x80\xff\x80\xff,1\n")
    with pytest.raises(InputError, match="junk.csv: cannot tell the encoding; pass --encoding"):
        open_table(junk)


def test_header_names_are_made_unique(tmp_path):
    path = tmp_path / "dupes.csv"
    path.write_text("id,ID, ,total\n1,2,3,4\n")
    assert open_table(path).columns == ("id", "ID (2)", "column 3", "total")


_CELL = st.text(alphabet="ab 1\t\x0b\x1c\xa0", max_size=3)


def test_cells_are_stripped_of_what_blank_lines_are_made_of():
    """The readers' WHITESPACE is exactly what polars strips from a cell."""
    chars = [chr(code) for code in range(0x3001)]
    stripped = pl.Series([char + "a" + char for char in chars]).str.strip_chars()
    assert "".join(char for char, cell in zip(chars, stripped) if cell == "a") == "".join(sorted(csvread.WHITESPACE))


def test_lines_may_end_with_lf_crlf_or_a_lone_cr(tmp_path):
    """Excel's "CSV (Macintosh)" ends lines with a lone CR: the same records, on the same lines."""
    rows = ["order_id,customer_id,placed_at,total", "A1,C1,2024-01-02,10.00", "", '"A2","C2', 'too",2024-01-03,x']
    read = {}
    for name, newline in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
        path = tmp_path / f"{name}.csv"
        path.write_bytes((newline.join(rows) + newline).encode())
        table = open_table(path)
        assert table.columns == ("order_id", "customer_id", "placed_at", "total") and table.first_line == 2
        frame = pl.concat([batch.frame for batch in read_batches(table)])
        # A quoted line break is kept as the file wrote it.
        frame = frame.with_columns(pl.col("c1").str.replace(newline, "/", literal=True))
        read[name] = frame.select(csvread.LINE, csvread.FIELDS, "c0", "c1", "c3").to_dicts()
    assert read["cr"] == read["crlf"] == read["lf"] == [
        {csvread.LINE: 2, csvread.FIELDS: 4, "c0": "A1", "c1": "C1", "c3": "10.00"},
        {csvread.LINE: 4, csvread.FIELDS: 4, "c0": "A2", "c1": "C2/too", "c3": "x"},
    ]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(_CELL, min_size=0, max_size=6).map(lambda cells: ",".join(cells)), min_size=1, max_size=30),
    st.sampled_from(["\n", "\r\n"]),
    st.integers(min_value=60, max_value=400),
)
def test_the_fast_reader_agrees_with_the_exact_one_on_ragged_and_blank_lines(tmp_path_factory, lines, newline,
                                                                             block):
    """Field counts, line numbers, raw text and cells, batch cuts aside, as Python's csv module reads them."""
    path = tmp_path_factory.mktemp("ragged") / "rows.csv"
    path.write_bytes(("a,b,c,d" + newline + newline.join(lines) + newline).encode())
    table = open_table(path)
    fast = pl.concat([batch.frame for batch in read_batches(table, block)])
    exact = pl.concat([batch.frame for batch in csvread._exact_batches(
        table, "utf-8", table.data_offset, table.first_line, len(table.columns))])
    columns = [csvread.LINE, csvread.FIELDS, csvread.RAW, *(table.cell(index) for index in range(4))]
    assert fast.select(columns).to_dicts() == exact.select(columns).to_dicts()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(alphabet="ab1 \t\x0b\x0c", max_size=4), min_size=4, max_size=4), min_size=1,
                max_size=12), st.sampled_from([",", ";", "\t", "|"]))
def test_a_block_said_to_be_unpadded_has_no_cell_to_strip(tmp_path_factory, rows, delimiter):
    """Skipping the strip is safe: no cell of such a block starts or ends with whitespace, or is only that."""
    path = tmp_path_factory.mktemp("padding") / "rows.csv"
    lines = [delimiter.join(cell.replace(delimiter, "") for cell in row) for row in rows]
    path.write_bytes((delimiter.join("abcd") + "\n" + "\n".join(lines) + "\n").encode())
    table = open_table(path)
    for batch in read_batches(table):
        if batch.padded:
            continue
        cells = batch.frame.select(table.cell(index) for index in range(4))
        stripped = cells.select(pl.all().str.strip_chars().replace("", None))
        assert cells.to_dicts() == stripped.to_dicts()
