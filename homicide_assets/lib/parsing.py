"""Reading partner deliveries: file names, bytes to text rows with source line numbers.

Every cell is read as text (typing happens in :mod:`homicide_assets.lib.staging`), and
every row keeps the file and the line it came from, so a refusal can name both. A file
that cannot be read at all raises :class:`DeliveryRefused` with the rule it broke.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date

import polars as pl

from homicide_assets.lib.feeds import FEEDS, FILE_NAME_PATTERN

#: Names a partner's tools leave behind while writing or editing; never taken.
TEMPORARY_NAME = re.compile(r"(^\.|^~\$|\.part$|\.partial$|\.tmp$|\.crdownload$|\.filepart$)", re.I)

META_COLUMNS = ("_delivery_id", "_partner_id", "_source_file", "_source_line", "_extract_date", "_seq")

_XLSX_MAGIC = b"PK\x03\x04"
_PARQUET_MAGIC = b"PAR1"


class DeliveryRefused(Exception):
    """A whole file is refused; ``rule`` is machine-readable, ``reason`` is for people."""

    def __init__(self, rule: str, reason: str, line: int | None = None):
        super().__init__(reason)
        self.rule = rule
        self.reason = reason
        self.line = line


@dataclass(frozen=True)
class DeliveryName:
    """The parts of a delivery file name ``<partner>__<feed>__<YYYYMMDD>[__<seq>].<ext>``."""

    partner_id: str
    feed: str
    extract_date: date
    seq: int
    extension: str

    @property
    def stem(self) -> str:
        base = f"{self.partner_id}__{self.feed}__{self.extract_date:%Y%m%d}"
        return f"{base}__{self.seq}" if self.seq else base


def is_temporary_name(name: str) -> bool:
    """True for names of files still being written or editor lock files."""
    return bool(TEMPORARY_NAME.search(name))


def parse_delivery_name(name: str) -> DeliveryName:
    """Parse a delivery file name or raise :class:`DeliveryRefused` saying what is wrong."""
    if "/" in name or "\\" in name or ".." in name or "\x00" in name:
        raise DeliveryRefused("file_name", f"file name {name!r} contains a path separator or '..'")
    m = FILE_NAME_PATTERN.match(name)
    if not m:
        raise DeliveryRefused(
            "file_name",
            f"file name {name!r} does not follow <partner_id>__<feed>__<YYYYMMDD>[__<seq>].<csv|xlsx|parquet>",
        )
    if m["feed"] not in FEEDS:
        raise DeliveryRefused("unknown_feed", f"file name {name!r} names unknown feed {m['feed']!r}")
    raw_date = m["extract_date"]
    try:
        extract_date = date(int(raw_date[:4]), int(raw_date[4:6]), int(raw_date[6:]))
    except ValueError:
        raise DeliveryRefused("file_name", f"file name {name!r} has an impossible extract date {raw_date}") from None
    return DeliveryName(m["partner_id"], m["feed"], extract_date, int(m["seq"] or 0), m["extension"])


def sniff_format(data: bytes) -> str:
    """What the bytes are, whatever the name says: ``xlsx``, ``parquet`` or ``csv``."""
    if data.startswith(_XLSX_MAGIC):
        return "xlsx"
    if data.startswith(_PARQUET_MAGIC) and data.rstrip(b"\x00").endswith(_PARQUET_MAGIC):
        return "parquet"
    return "csv"


@dataclass
class ParsedDelivery:
    """The rows of one file, all text, with their source line numbers."""

    frame: pl.DataFrame  # contract columns present in the file + ``_source_line``
    header: list[str]
    dropped_columns: list[str] = field(default_factory=list)  # not permitted by the agreement


def _normalise_header(names: list[str]) -> list[str]:
    return [str(n).replace("\ufeff", "").strip().lower() for n in names]


def _read_csv(data: bytes, file_name: str) -> tuple[list[str], list[list[str | None]], list[int]]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DeliveryRefused(
            "encoding", f"{file_name}: not valid UTF-8 at byte {exc.start} (line {line})", line=line
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise DeliveryRefused("encoding", f"{file_name}: contains NUL bytes (line {line})", line=line)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise DeliveryRefused("empty_file", f"{file_name}: the file is empty (no header row)") from None
    except csv.Error as exc:
        raise DeliveryRefused("csv_syntax", f"{file_name}: line 1: {exc}", line=1) from None
    records: list[tuple[int, list[str]]] = []
    start = reader.line_num + 1
    try:
        for record in reader:
            if record and not (len(record) == 1 and record[0] == ""):
                records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DeliveryRefused(
            "truncated", f"{file_name}: line {start}: {exc} (unterminated quoted field: file truncated?)",
            line=start,
        ) from None
    width = len(header)
    for i, (line, record) in enumerate(records):
        if len(record) != width:
            last = i == len(records) - 1
            raise DeliveryRefused(
                "truncated" if last and len(record) < width else "ragged_row",
                f"{file_name}: line {line}: {len(record)} fields where the header has {width}"
                + (" (last row cut short: file truncated)" if last and len(record) < width else ""),
                line=line,
            )
    rows = [[v if v != "" else None for v in record] for _, record in records]
    lines = [line for line, _ in records]
    return header, rows, lines


def _read_xlsx(data: bytes, file_name: str) -> tuple[list[str], list[list[str | None]], list[int]]:
    try:
        frame = pl.read_excel(io.BytesIO(data), sheet_id=1, engine="calamine", infer_schema_length=0,
                              raise_if_empty=False)
    except Exception as exc:  # calamine raises its own error types
        raise DeliveryRefused("xlsx_unreadable", f"{file_name}: not a readable XLSX workbook ({type(exc).__name__})") from None
    header = list(frame.columns)
    frame = frame.select(pl.all().cast(pl.String))
    rows = [list(r) for r in frame.iter_rows()]
    rows = [[(v if v is None or v.strip() != "" else None) for v in r] for r in rows]
    return header, rows, list(range(2, len(rows) + 2))


def _read_parquet(data: bytes, file_name: str) -> tuple[list[str], list[list[str | None]], list[int]]:
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:
        raise DeliveryRefused("parquet_unreadable", f"{file_name}: not a readable Parquet file ({type(exc).__name__})") from None
    header = list(frame.columns)
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if dtype == pl.Date:
            col = col.dt.strftime("%Y-%m-%d")
        elif isinstance(dtype, pl.Datetime):
            col = col.dt.to_string("iso")
        elif isinstance(dtype, pl.List):
            col = col.cast(pl.List(pl.String)).list.join(";")
        exprs.append(col.cast(pl.String).alias(name))
    frame = frame.select(exprs) if exprs else frame
    rows = [list(r) for r in frame.iter_rows()]
    rows = [[(v if v is None or v.strip() != "" else None) for v in r] for r in rows]
    return header, rows, list(range(1, len(rows) + 1))


def parse_delivery(data: bytes, name: DeliveryName, file_name: str) -> ParsedDelivery:
    """Read one delivery's bytes into text rows, refusing the whole file when it must be.

    Refusals: empty file, wrong extension for the content, undecodable text, malformed
    CSV (unterminated quotes, ragged rows), header missing contract columns or repeating a
    column. A header with no rows is a valid extract (nothing new since the last). Columns outside the contract are dropped here,
    before anything is stored, and listed in ``dropped_columns``.
    """
    if not data:
        raise DeliveryRefused("empty_file", f"{file_name}: the file is empty (0 bytes)")
    actual = sniff_format(data)
    if actual != name.extension:
        raise DeliveryRefused(
            "wrong_extension", f"{file_name}: named .{name.extension} but the content is {actual.upper()}"
        )
    reader = {"csv": _read_csv, "xlsx": _read_xlsx, "parquet": _read_parquet}[actual]
    raw_header, rows, lines = reader(data, file_name)
    header = _normalise_header(raw_header)
    if not header or all(h == "" for h in header):
        raise DeliveryRefused("empty_file", f"{file_name}: no header row")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise DeliveryRefused("header_mismatch", f"{file_name}: header repeats column(s) {', '.join(dupes)}", line=1)
    contract = FEEDS[name.feed].column_names
    missing = [c for c in contract if c not in header]
    if missing:
        raise DeliveryRefused(
            "header_mismatch",
            f"{file_name}: header lacks contract column(s) {', '.join(missing)} for feed {name.feed}",
            line=1,
        )
    dropped = [h for h in header if h not in contract]
    positions = [header.index(c) for c in contract]
    columns = {c: [r[i] for r in rows] for c, i in zip(contract, positions)}
    frame = pl.DataFrame(columns, schema={c: pl.String for c in contract})
    frame = frame.with_columns(pl.Series("_source_line", lines, dtype=pl.Int64))
    return ParsedDelivery(frame=frame, header=header, dropped_columns=dropped)


def empty_raw_frame(feed: str) -> pl.DataFrame:
    """A raw frame with the feed's columns and the metadata columns, no rows."""
    schema = {c: pl.String for c in FEEDS[feed].column_names}
    schema.update(
        {"_delivery_id": pl.String, "_partner_id": pl.String, "_source_file": pl.String,
         "_source_line": pl.Int64, "_extract_date": pl.Date, "_seq": pl.Int64}
    )
    return pl.DataFrame(schema=schema)
