"""Deliveries: which records go in which extract, and how each partner's files look.

Each partner feed is delivered on its cadence (``seeds/partner_feeds.csv``) over the scale's
delivery window; the first extract at the window start is the backfill of everything older.
An extract holds the latest version of every record that is new or changed since the one
before (the newest extract wins per record key). Reviews are delivered on publication and
in quarterly status updates. Some partners are late, skip an extract, or stop delivering
(:class:`ComplianceScenario`), and a few files are followed by a same-day corrected extract
(``__2``).

Each partner writes its files its own way (:data:`PARTNER_STYLES`): CSV (some with a BOM,
some with CRLF line ends), XLSX or Parquet; ISO or UK day-first dates; booleans as
true/false, Y/N or 1/0; enumerations in varied case with stray spaces.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.registry import Registry
from homicide_assets.lib.synth.config import PERIOD_END, ComplianceScenario, Scale

UTF8_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PartnerStyle:
    """How one partner's system writes its extracts."""

    fmt: str = "csv"  # csv | xlsx | parquet
    bom: bool = False
    crlf: bool = False
    date_style: str = "iso"  # iso | uk
    bool_style: str = "true_false"  # true_false | yn | 10
    enum_case: str = "lower"  # lower | upper | title | mixed
    #: share of enumeration cells with a stray leading or trailing space
    enum_padding: float = 0.0
    timestamp_style: str = "seconds"  # seconds | minutes


PARTNER_STYLES: dict[str, PartnerStyle] = {
    "wmp": PartnerStyle(crlf=True, bool_style="yn", enum_case="upper", enum_padding=0.02),
    "uhb": PartnerStyle(fmt="xlsx", bool_style="yn", enum_case="title"),
    "swbh": PartnerStyle(bom=True, crlf=True, date_style="uk", bool_style="yn"),
    "rwt": PartnerStyle(fmt="parquet"),
    "dgft": PartnerStyle(date_style="uk", bool_style="10", enum_case="upper"),
    "wht": PartnerStyle(timestamp_style="minutes", enum_case="mixed"),
    "uhcw": PartnerStyle(fmt="xlsx", date_style="uk"),
    "bham": PartnerStyle(bom=True, date_style="uk", bool_style="yn", enum_case="title", enum_padding=0.03),
    "cov": PartnerStyle(fmt="xlsx", bool_style="yn"),
    "dudley": PartnerStyle(bool_style="10"),
    "sandwell": PartnerStyle(date_style="uk", enum_case="mixed"),
    "solihull": PartnerStyle(fmt="parquet"),
    "walsall": PartnerStyle(bool_style="yn", crlf=True),
    "wolves": PartnerStyle(date_style="uk", bool_style="yn", enum_padding=0.05),
    "coroner_bs": PartnerStyle(fmt="xlsx", date_style="uk"),
    "coroner_bc": PartnerStyle(bom=True, date_style="uk", bool_style="yn", enum_case="title"),
    "coroner_cov": PartnerStyle(),
    "vrp": PartnerStyle(fmt="xlsx"),
}


# ---------------------------------------------------------------------------------------
# Schedules and assignment of record versions to extracts.
# ---------------------------------------------------------------------------------------


def cadence_schedule(
    rng: np.random.Generator,
    scale: Scale,
    partner_id: str,
    feed: str,
    cadence_days: int,
    compliance: ComplianceScenario,
) -> tuple[list[date], list[dict]]:
    """Extract dates for a cadence feed, with the compliance scenario applied, and the findings it plants."""
    due = []
    day = scale.window_start
    while day <= PERIOD_END:
        due.append(day)
        day += timedelta(days=cadence_days)
    findings: list[dict] = []
    dates = list(due)
    key = (partner_id, feed)
    if key in compliance.late:
        for k in range(compliance.late_every - 1, len(dates) - 1, compliance.late_every):
            late = dates[k] + timedelta(days=int(rng.integers(2, 7)))
            late = min(late, dates[k + 1] - timedelta(days=1), PERIOD_END)
            if late > dates[k]:
                findings.append(
                    {
                        "partner_id": partner_id,
                        "feed": feed,
                        "kind": "late",
                        "due_on": dates[k],
                        "delivered_on": late,
                    }
                )
                dates[k] = late
    if key in compliance.skipped and len(dates) > 3:
        k = len(dates) // 2
        findings.append(
            {
                "partner_id": partner_id,
                "feed": feed,
                "kind": "missed",
                "due_on": dates[k],
                "delivered_on": None,
            }
        )
        dates.pop(k)
    if key in compliance.non_responders:
        stop = scale.window_start + timedelta(days=int(scale.delivery_window_days * compliance.stop_fraction))
        for d in dates:
            if d > stop:
                findings.append(
                    {
                        "partner_id": partner_id,
                        "feed": feed,
                        "kind": "stopped",
                        "due_on": d,
                        "delivered_on": None,
                    }
                )
        dates = [d for d in dates if d <= stop]
    return dates, findings


def assign_extracts(rows: pl.DataFrame, dates: list[date], on_publication: bool) -> pl.DataFrame:
    """Give each record version the extract that carries it (``_extract_date``), keeping the latest
    version per record and extract. Cadence extracts carry what became available before their date;
    publication extracts carry what became available on or before it."""
    if rows.height == 0 or not dates:
        return rows.head(0).with_columns(_extract_date=pl.lit(None, pl.Date))
    arr = np.array(dates, dtype="datetime64[D]")
    avail = rows["_available_on"].to_numpy().astype("datetime64[D]")
    idx = np.searchsorted(arr, avail, side="left" if on_publication else "right")
    ok = idx < len(arr)
    extract = np.where(ok, arr[np.minimum(idx, len(arr) - 1)], np.datetime64("NaT"))
    return rows.with_columns(_extract_date=pl.Series(extract).cast(pl.Date)).filter(
        pl.col("_extract_date").is_not_null()
    )


def latest_per_extract(rows: pl.DataFrame, feed: str) -> pl.DataFrame:
    """One row per (extract, record key): the latest version."""
    key = list(FEEDS[feed].key)
    return rows.sort("_version").unique(
        subset=["_partner_id", "_extract_date", *key], keep="last", maintain_order=True
    )


# ---------------------------------------------------------------------------------------
# Rendering.
# ---------------------------------------------------------------------------------------


def _enum_expr(name: str, style: PartnerStyle, noise: pl.Series, case_pick: pl.Series) -> pl.Expr:
    col = pl.col(name)
    if style.enum_case == "upper":
        cased = col.str.to_uppercase()
    elif style.enum_case == "title":
        cased = col.str.to_titlecase()
    elif style.enum_case == "mixed":
        cased = (
            pl.when(case_pick == 0)
            .then(col)
            .when(case_pick == 1)
            .then(col.str.to_uppercase())
            .otherwise(col.str.to_titlecase())
        )
    else:
        cased = col
    return (
        pl.when(noise == 1)
        .then(pl.lit(" ") + cased)
        .when(noise == 2)
        .then(cased + pl.lit(" "))
        .otherwise(cased)
    )


def render_strings(
    frame: pl.DataFrame, feed: str, style: PartnerStyle, rng: np.random.Generator
) -> pl.DataFrame:
    """Every contract column as the text the partner's CSV would hold (null = empty cell)."""
    n = frame.height
    exprs = []
    date_fmt = "%Y-%m-%d" if style.date_style == "iso" else "%d/%m/%Y"
    ts_fmt = "%Y-%m-%dT%H:%M:%S" if style.timestamp_style == "seconds" else "%Y-%m-%dT%H:%M"
    true_false = {"true_false": ("true", "false"), "yn": ("Y", "N"), "10": ("1", "0")}[style.bool_style]
    pad = pl.Series(np.where(rng.random(n) < style.enum_padding, rng.integers(1, 3, n), 0))
    case_pick = pl.Series(rng.integers(0, 3, n))
    for column in FEEDS[feed].columns:
        c = pl.col(column.name)
        if column.name in frame.columns and frame.schema[column.name] == pl.Null:
            # a part whose values are all missing (e.g. no due date agreed yet) has no type
            c = c.cast({"date": pl.Date, "timestamp": pl.Datetime("us")}.get(column.type, pl.String))
        if column.type == "date":
            e = c.dt.strftime(date_fmt)
        elif column.type == "timestamp":
            e = c.dt.strftime(ts_fmt)
        elif column.type == "bool":
            e = pl.when(c).then(pl.lit(true_false[0])).when(~c).then(pl.lit(true_false[1])).otherwise(None)
        elif column.type == "list":
            e = pl.when(c.list.len() > 0).then(c.list.join(";")).otherwise(None)
        elif column.type == "enum":
            e = _enum_expr(column.name, style, pad, case_pick)
        elif column.type == "float":
            e = c.round(6).cast(pl.String)
        else:
            e = c.cast(pl.String)
        exprs.append(e.alias(column.name))
    return frame.select(exprs)


def render_typed(frame: pl.DataFrame, feed: str) -> pl.DataFrame:
    """Contract columns with native types (Parquet): lists joined with ``;``, everything else typed."""
    exprs = []
    for column in FEEDS[feed].columns:
        c = pl.col(column.name)
        if column.type == "list":
            c = pl.when(c.list.len() > 0).then(c.list.join(";")).otherwise(None)
        exprs.append(c.alias(column.name))
    return frame.select(exprs)


def csv_bytes(strings: pl.DataFrame, style: PartnerStyle) -> bytes:
    """RFC 4180 CSV (quoted where needed), optional BOM and CRLF."""
    buffer = io.BytesIO()
    strings.write_csv(
        buffer, quote_style="necessary", null_value="", line_terminator="\r\n" if style.crlf else "\n"
    )
    data = buffer.getvalue()
    return (UTF8_BOM + data) if style.bom else data


def xlsx_bytes(frame: pl.DataFrame, strings: pl.DataFrame, feed: str, extract_date: date) -> bytes:
    """A one-sheet workbook: dates and timestamps as Excel date cells, numbers as numbers, the rest text.

    The workbook's creation time is the extract date so the bytes depend only on the content.
    """
    import xlsxwriter

    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
        },
    )
    workbook.set_properties({"created": datetime(extract_date.year, extract_date.month, extract_date.day)})
    sheet = workbook.add_worksheet("extract")
    date_format = workbook.add_format({"num_format": "dd/mm/yyyy"})
    ts_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    columns = FEEDS[feed].columns
    for j, column in enumerate(columns):
        sheet.write_string(0, j, column.name)
    typed_cols = {c.name for c in columns if c.type in ("date", "timestamp", "int", "float")}
    values = {
        c.name: (frame[c.name].to_list() if c.name in typed_cols else strings[c.name].to_list())
        for c in columns
    }
    for j, column in enumerate(columns):
        col_values = values[column.name]
        for i, v in enumerate(col_values, start=1):
            if v is None:
                continue
            if column.type == "date":
                sheet.write_datetime(i, j, datetime(v.year, v.month, v.day), date_format)
            elif column.type == "timestamp":
                sheet.write_datetime(i, j, v, ts_format)
            elif column.type in ("int", "float"):
                sheet.write_number(i, j, v)
            else:
                sheet.write_string(i, j, v)
    workbook.close()
    return buffer.getvalue()


def parquet_bytes(typed: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(typed.to_arrow(), buffer, compression="zstd")
    return buffer.getvalue()


def file_name(partner_id: str, feed: str, extract_date: date, seq: int, ext: str) -> str:
    """``<partner_id>__<feed>__<YYYYMMDD>[__<seq>].<ext>`` (seq omitted when 0)."""
    suffix = f"__{seq}" if seq else ""
    return f"{partner_id}__{feed}__{extract_date:%Y%m%d}{suffix}.{ext}"


def encode(
    frame: pl.DataFrame, feed: str, style: PartnerStyle, extract_date: date, rng: np.random.Generator
) -> bytes:
    """The bytes of one extract in the partner's style."""
    if style.fmt == "parquet":
        return parquet_bytes(render_typed(frame, feed))
    strings = render_strings(frame, feed, style, rng)
    if style.fmt == "xlsx":
        return xlsx_bytes(frame, strings, feed, extract_date)
    return csv_bytes(strings, style)


def write_file(landing: Path, partner_id: str, name: str, data: bytes) -> Path:
    folder = landing / partner_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def registry_cadences(registry: Registry) -> list[tuple[str, str, int | None]]:
    """(partner_id, feed, cadence_days) for every partner feed in the registry."""
    return [(f.partner_id, f.feed, f.cadence_days) for f in registry.feeds]
