"""The analytical report on death investigations: full and partner editions, HTML and CSV.

Pure library code (no Dagster). :func:`build_report` turns the platform's tables into
report tables (:class:`Table`), renders one self-contained HTML file per edition (inline
CSS and SVG, no script, no font, no remote request; a Content-Security-Policy forbids
them) and writes a CSV extract of every table beside it, under
``reports/<YYYY-MM-DD>/`` (outputs.md):

- ``death_investigations_report.html`` and ``<table>.csv``: the full edition,
  OFFICIAL-SENSITIVE, may name people;
- ``partner_edition.html`` and ``partner_edition__<table>.csv``: no names, dates of birth,
  NHS numbers, report ids, person keys, death ids or exact locations; counts of people
  and events from 1 to 4 shown ``<5``, with secondary suppression (``lib/disclosure.py``)
  so that none can be worked out from the totals; rates, shares and intervals of a
  suppressed count suppressed with it.

Sections whose input is missing (``None``) say "not yet available" instead of failing.
Every number in the report comes from a table row, and the HTML carries the raw value of
each cell in ``data-value`` so tests can check the page against the tables.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from homicide_assets.lib import disclosure
from homicide_assets.lib.feeds import LA_CODES
from homicide_assets.lib.patterns import (
    CONTROL_TAIL,
    DIMENSIONS,
    MEASURE_LABELS,
    NO_POLICE_REPORT,
    PER,
    investigations,
)
from homicide_assets.lib.report_charts import choropleth_svg, control_chart_svg, funnel_svg

LONDON = ZoneInfo("Europe/London")
TEMPLATES_DIR = Path(__file__).parent / "templates"
FULL_FILE = "death_investigations_report.html"
PARTNER_FILE = "partner_edition.html"
PARTNER_CSV_PREFIX = "partner_edition__"
#: Postcode districts listed by name in the ED table (the rest are one row).
TOP_DISTRICTS = 15
#: Rows of a per-death list shown in the HTML (the CSV has them all).
LIST_ROWS = 200
NUMERIC_KINDS = ("count", "rate", "share", "ci", "share_ci", "number", "pvalue")
TITLE = "Death investigations: patterns, linked series and the partners' view"
NOT_AVAILABLE = "Not yet available: {what} has not been produced for this run."
POLICE_ONLY_DIMENSIONS = ("classification", "method", "ethnicity", "location_type", "domestic_abuse")
DIMENSION_TITLES = {
    "local_authority": "local authority",
    "classification": "police classification",
    "method": "method",
    "sex": "sex",
    "age_band": "age band",
    "ethnicity": "ethnicity",
    "location_type": "location type",
    "domestic_abuse": "domestic abuse",
}


def run_date_today() -> date:
    """Today in Europe/London: the report folder's name."""
    return datetime.now(LONDON).date()


# --------------------------------------------------------------------------------------
# Inputs


@dataclass
class ReportInputs:
    """Everything the report reads; any frame but ``death_patterns`` may be ``None``."""

    death_patterns: pl.DataFrame
    violence_hotspots: pl.DataFrame | None = None
    death_register: pl.DataFrame | None = None
    death_reports: pl.DataFrame | None = None
    case_links: pl.DataFrame | None = None
    linked_series: pl.DataFrame | None = None
    recommendations: pl.DataFrame | None = None
    lessons_in_days: pl.DataFrame | None = None
    compliance: pl.DataFrame | None = None
    quarantine: pl.DataFrame | None = None  # rows of the QuarantineEntry table
    deliveries: pl.DataFrame | None = None  # rows of the Delivery ledger
    run_date: date = field(default_factory=run_date_today)
    generated_at: datetime = field(default_factory=lambda: datetime.now(LONDON))


# --------------------------------------------------------------------------------------
# Report tables


@dataclass(frozen=True)
class Col:
    """One column of a report table.

    ``kind``: text | count | rate | share | ci | number | date | list | flag | pvalue.
    ``of``: the count column a derived value (rate, share, interval) comes from; it is
    suppressed with it. ``pair``: the upper bound column of a ``ci``. ``partner``: shown
    in the partner edition. ``protect``: a count of people or events (suppressed in the
    partner edition); counts of recommendations, files or extracts are not.
    """

    key: str
    label: str
    kind: str = "text"
    of: str | None = None
    pair: str | None = None
    partner: bool = True
    protect: bool = True
    words: bool = False  # an enumeration value: show "in_progress" as "in progress"
    full: bool = True  # shown in the full edition


@dataclass
class Table:
    """A table of the report: its rows as a frame, and how it adds up.

    ``total_row``: the last row is the total of the rows above it for every protected
    count column (the rows partition one population). Count columns not marked as the
    ``row_total`` are separate lines unless ``row_total`` names the column that sums them.
    ``additive=False``: the rows overlap (a person known to two services), so only
    primary suppression applies.
    """

    name: str
    title: str
    columns: list[Col]
    frame: pl.DataFrame
    total_row: bool = False
    row_total: str | None = None
    additive: bool = True
    note: str = ""
    partner: bool = True
    bar: str | None = None
    #: (part, whole) count columns: in every row the reader knows part <= whole
    subsets: tuple[tuple[str, str], ...] = ()

    def column(self, key: str) -> Col:
        return next(c for c in self.columns if c.key == key)


def with_total_row(
    frame: pl.DataFrame, label_col: str, count_cols: Sequence[str], label: str = "Total"
) -> pl.DataFrame:
    """``frame`` with a last row summing ``count_cols`` (other columns null)."""
    sums = {c: frame.get_column(c).sum() if frame.height else 0 for c in count_cols}
    row = {c: None for c in frame.columns}
    row.update({label_col: label, **sums})
    total = pl.DataFrame([row], schema=frame.schema)
    return pl.concat([frame, total], how="vertical_relaxed")


@dataclass
class RenderedCell:
    key: str
    html: str
    value: object
    css: str


@dataclass
class RenderedTable:
    name: str
    title: str
    columns: list[dict]
    rows: list[dict]
    note: str
    csv: pl.DataFrame
    protection: dict[str, disclosure.ProtectedTable] = field(default_factory=dict)


def _fmt(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if kind == "count":
        return f"{int(value):,}"
    if kind == "rate":
        return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    if kind == "number":
        if isinstance(value, float):
            return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"
        return f"{value:,}"
    if kind == "share":
        return f"{value * 100:.1f}%"
    if kind == "pvalue":
        return "<0.001" if value < 0.001 else f"{value:.3f}"
    if kind == "list":
        return ", ".join(str(v).replace("_", " ") for v in value) if value is not None else ""
    if kind == "flag":
        return "yes" if value else ""
    if kind == "date":
        return value.isoformat() if hasattr(value, "isoformat") else str(value)
    return str(value)


def _raw(value) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def protect_table_counts(table: Table) -> dict[str, np.ndarray]:
    """Status (``disclosure.PUBLISHED``...) of every protected count cell, by column."""
    counts = [c for c in table.columns if c.kind == "count" and c.protect and c.partner]
    if not counts or table.frame.is_empty():
        return {}
    frame = table.frame
    n = frame.height - (1 if table.total_row else 0)
    status: dict[str, np.ndarray] = {}
    if not table.additive:
        for c in counts:
            vals = frame.get_column(c.key).fill_null(0).to_numpy()
            status[c.key] = np.where(
                (vals >= disclosure.PRIMARY_LOW) & (vals <= disclosure.PRIMARY_HIGH),
                disclosure.PRIMARY,
                disclosure.PUBLISHED,
            )
        return status
    interior_cols = [c.key for c in counts if c.key != table.row_total]
    interior = np.column_stack(
        [frame.get_column(k).fill_null(0).to_numpy()[:n] for k in interior_cols]
    ).astype(np.int64)
    rows_with_total = interior.shape[0] + (1 if table.total_row else 0)
    leq = [
        ((r, interior_cols.index(part)), (r, interior_cols.index(whole)))
        for part, whole in table.subsets
        if part in interior_cols and whole in interior_cols
        for r in range(rows_with_total)
    ]
    protected = disclosure.protect_table(
        interior, row_totals=table.row_total is not None, col_totals=table.total_row, leq=leq
    )
    values = protected.values
    if table.total_row:
        for j, k in enumerate(interior_cols):
            given = frame.get_column(k).fill_null(0).to_numpy()[n]
            if int(given) != int(values[-1, j]):
                raise ValueError(f"table {table.name}: total of {k} is {given}, rows add to {values[-1, j]}")
    for j, k in enumerate(interior_cols):
        status[k] = protected.status[:, j] if table.total_row else protected.status[:n, j]
    if table.row_total is not None:
        status[table.row_total] = protected.status[:, -1]
    table_status = protected
    status["__table__"] = table_status  # type: ignore[assignment]
    return status


def render_table(table: Table, edition: str, html_rows: int | None = None) -> RenderedTable:
    """Cells as displayed in ``edition`` (``full`` or ``partner``) and the CSV frame.

    ``html_rows``: the page shows only the first so many rows (a long list; the CSV has them
    all), so only those rows' cells are rendered."""
    partner = edition == "partner"
    columns = [c for c in table.columns if (c.partner if partner else c.full)]
    status = protect_table_counts(table) if partner else {}
    protected_table = status.pop("__table__", None)
    suppressed = {k: v != disclosure.PUBLISHED for k, v in status.items()}
    symbols: dict[str, list[str]] = {}
    for k, st in status.items():
        symbols[k] = [
            disclosure.PRIMARY_SYMBOL
            if s in (disclosure.PRIMARY, disclosure.HIDDEN_ZERO)
            else disclosure.SECONDARY_SYMBOL
            if s == disclosure.SECONDARY
            else ""
            for s in st
        ]
    bar_max = None
    if table.bar:
        vals = table.frame.get_column(table.bar)
        n = table.frame.height - (1 if table.total_row else 0)
        bar_max = float(vals.head(n).max() or 0) if n else 0
    def csv_row(record: dict, i: int) -> dict:
        """The row as the CSV has it: raw values, suppressed cells as their symbols."""
        out = {}
        for c in columns:
            value = record.get(c.key)
            source = c.key if c.kind == "count" else c.of
            if source and source in suppressed and suppressed[source][i]:
                out[c.key] = symbols[source][i] if c.kind == "count" else ""
                if c.kind in ("ci", "share_ci"):
                    out[c.pair] = ""
            elif c.kind in ("ci", "share_ci"):
                out[c.key], out[c.pair] = _raw(value), _raw(record.get(c.pair))
            elif partner and c.kind == "count":
                out[c.key] = int(value) if value is not None else None
            else:
                out[c.key] = _raw(value)
        return out

    rows, csv_rows = [], []
    n_rows = table.frame.height
    for i, record in enumerate(table.frame.iter_rows(named=True)):
        is_total = table.total_row and i == n_rows - 1
        csv_rows.append(csv_row(record, i))
        if html_rows is not None and i >= html_rows and not is_total:
            continue  # beyond what the page shows: the CSV row alone
        cells = []
        for c in columns:
            value = record.get(c.key)
            source = c.key if c.kind == "count" else c.of
            hidden = bool(source and source in suppressed and suppressed[source][i])
            css = "num" if c.kind in NUMERIC_KINDS else ""
            if c.kind == "text" and isinstance(value, str) and len(value) > 80:
                css = "long"
            if hidden:
                text = html.escape(symbols[source][i]) if c.kind == "count" else "&ndash;"
                cells.append(RenderedCell(c.key, text, None, css + " sup"))
                continue
            if c.kind in ("ci", "share_ci"):
                hi = record.get(c.pair)
                if value is None or hi is None or (isinstance(value, float) and math.isnan(value)):
                    text = ""
                elif c.kind == "ci":
                    text = f"{value:,.2f}&ndash;{hi:,.2f}"
                else:
                    text = f"{value * 100:.1f}&ndash;{hi * 100:.1f}%"
                cells.append(RenderedCell(c.key, text, _raw(value), css))
                continue
            shown = _fmt(value, c.kind)
            if c.words:
                shown = shown.replace("_", " ")
            text = html.escape(shown)
            if c.kind == "flag" and value:
                css += " flag"
            if table.bar == c.key and bar_max and not is_total and value:
                text = f'<span class="cell-bar">{text}<span class="bar" style="width:{max(2, 60 * value / bar_max):.0f}px"></span></span>'
            cells.append(RenderedCell(c.key, text, _raw(value), css))
        rows.append({"cells": cells, "total": is_total})
    csv_columns = []
    for c in columns:
        csv_columns.append(c.key)
        if c.kind in ("ci", "share_ci"):
            csv_columns.append(c.pair)
    csv = (
        pl.DataFrame(
            [{k: (None if r.get(k) is None else str(r.get(k))) for k in csv_columns} for r in csv_rows],
            schema={k: pl.String for k in csv_columns},
        )
        if csv_rows
        else pl.DataFrame(schema={k: pl.String for k in csv_columns})
    )
    note = table.note
    if partner and status:
        note = (note + " " if note else "") + (
            "Counts from 1 to 4 are shown <5; [c] hides a count from which a small one could be worked out."
        )
        if protected_table is not None and protected_table.small_may_be_zero:
            note += " In this table <5 may also stand for 0."
    rendered_cols = [
        {"key": c.key, "label": c.label, "css": "num" if c.kind in NUMERIC_KINDS else ""} for c in columns
    ]
    return RenderedTable(
        table.name,
        table.title,
        rendered_cols,
        rows,
        note,
        csv,
        {"table": protected_table} if protected_table is not None else {},
    )


# --------------------------------------------------------------------------------------
# Building the tables


@dataclass
class Block:
    kind: str  # table | html | charts
    table: Table | None = None
    html: str = ""
    charts: list[str] = field(default_factory=list)
    css: str = "charts"
    editions: tuple[str, ...] = ("full", "partner")


@dataclass
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    intro: str = ""
    missing: str = ""


def _current(patterns: pl.DataFrame, measure: str, dimension: str, note: str = "current") -> pl.DataFrame:
    return patterns.filter(
        (pl.col("section") == "breakdown")
        & (pl.col("measure") == measure)
        & (pl.col("dimension") == dimension)
        & (pl.col("note") == note)
    )


def _la_order() -> list[str]:
    return list(LA_CODES.values())


def breakdown_table(patterns: pl.DataFrame, dimension: str) -> Table:
    """One dimension: deaths, share, rate and interval now; the year before; homicides."""
    cur = _current(patterns, "all", dimension)
    prev = _current(patterns, "all", dimension, "previous").select(
        "category", pl.col("deaths").alias("previous")
    )
    hom = _current(patterns, "homicide", dimension).select(
        "category",
        pl.col("deaths").alias("homicides"),
        pl.col("rate_per_100k").alias("homicide_rate"),
        pl.col("rate_ci_low").alias("homicide_ci_low"),
        pl.col("rate_ci_high").alias("homicide_ci_high"),
    )
    frame = (
        cur.select("category", "deaths", "share", "rate_per_100k", "rate_ci_low", "rate_ci_high")
        .join(prev, on="category", how="full", coalesce=True)
        .join(hom, on="category", how="full", coalesce=True)
    )
    excluded = 0
    if dimension in POLICE_ONLY_DIMENSIONS:
        excluded = int(
            frame.filter(pl.col("category") == NO_POLICE_REPORT).get_column("deaths").fill_null(0).sum()
        )
        frame = frame.filter(pl.col("category") != NO_POLICE_REPORT)
    frame = frame.with_columns(pl.col("deaths", "previous", "homicides").fill_null(0).cast(pl.Int64))
    if dimension == "local_authority":
        order = {name: i for i, name in enumerate(_la_order())}
        frame = (
            frame.with_columns(pl.col("category").replace_strict(order, default=99).alias("_o"))
            .sort("_o", "category")
            .drop("_o")
        )
    else:
        frame = frame.sort("deaths", "category", descending=[True, False])
    # shares of the rows shown (police-only dimensions: of deaths with a police report)
    total = frame.get_column("deaths").sum()
    frame = frame.with_columns(
        (pl.col("deaths") / total if total else pl.lit(None, pl.Float64)).alias("share")
    )
    covered = previous_covered(patterns)
    counts = ["deaths", "previous", "homicides"] if covered else ["deaths", "homicides"]
    if not covered:
        frame = frame.drop("previous")
    frame = with_total_row(frame, "category", counts)
    pop_note = (
        "Rates per 100,000 residents of each authority a year."
        if dimension == "local_authority"
        else "Rates per 100,000 residents of the whole force area a year (no population by "
        f"{DIMENSION_TITLES[dimension]} is held), so they compare kinds of death, not risks within groups."
    )
    note = pop_note
    if dimension in POLICE_ONLY_DIMENSIONS:
        note += (
            (
                f" Deaths with a police report only; the {excluded:,} known only to partners are in "
                "'Police and partners'."
            )
            if excluded
            else " Deaths with a police report only."
        )
    note += " Exact Poisson 95% confidence intervals."
    if not covered:
        note += " The data do not reach back over the previous 12 months, so there is no comparison."
    return Table(
        name=f"by_{dimension}",
        title=f"Death investigations by {DIMENSION_TITLES[dimension]}",
        columns=[
            Col("category", DIMENSION_TITLES[dimension].capitalize()),
            Col("deaths", "Deaths (12 months)", "count"),
            Col("share", "Share", "share", of="deaths"),
            Col("rate_per_100k", "Rate per 100,000", "rate", of="deaths"),
            Col("rate_ci_low", "95% CI", "ci", of="deaths", pair="rate_ci_high"),
            *([Col("previous", "Previous 12 months", "count")] if covered else []),
            Col("homicides", "Homicides", "count"),
            Col("homicide_rate", "Homicide rate", "rate", of="homicides"),
            Col("homicide_ci_low", "95% CI", "ci", of="homicides", pair="homicide_ci_high"),
        ],
        frame=frame,
        total_row=True,
        note=note,
        bar="deaths",
        subsets=(("homicides", "deaths"),),
    )


def previous_covered(patterns: pl.DataFrame) -> bool:
    """True when the data cover the 12 months before the reporting period (a comparison is fair)."""
    force = patterns.filter((pl.col("section") == "change") & (pl.col("dimension") == "force"))
    return bool(force.height) and force.get_column("expected").is_not_null().all()


def trend_blocks(patterns: pl.DataFrame, edition: str) -> tuple[list[str], list[str], Table, Table]:
    """Control charts (force, then each authority in the full edition) and their tables."""
    trend = patterns.filter(pl.col("section") == "trend")
    big, small = [], []
    force = {
        m: trend.filter((pl.col("measure") == m) & (pl.col("dimension") == "force")).sort("period_start")
        for m in ("all", "homicide")
    }
    force = {m: f for m, f in force.items() if f.height}
    protected = _protect_monthly(force) if edition == "partner" and force else {}
    for measure, series in force.items():
        counts: list[float | None] = [float(v) for v in series.get_column("deaths")]
        labels = None
        if edition == "partner":
            counts, labels = protected[measure]
        big.append(
            control_chart_svg(
                series.get_column("period_start").to_list(),
                counts,
                series.get_column("expected").to_list(),
                series.get_column("lower_limit").to_list(),
                series.get_column("upper_limit").to_list(),
                series.get_column("monitored").to_list(),
                series.get_column("exceedance").to_list(),
                f"West Midlands: {MEASURE_LABELS[measure]} per month",
                labels=labels,
            )
        )
    if edition == "full":
        for la in _la_order():
            series = trend.filter((pl.col("measure") == "all") & (pl.col("category") == la)).sort(
                "period_start"
            )
            if series.is_empty():
                continue
            small.append(
                control_chart_svg(
                    series.get_column("period_start").to_list(),
                    [float(v) for v in series.get_column("deaths")],
                    series.get_column("expected").to_list(),
                    series.get_column("lower_limit").to_list(),
                    series.get_column("upper_limit").to_list(),
                    series.get_column("monitored").to_list(),
                    series.get_column("exceedance").to_list(),
                    f"{la}: death investigations",
                    width=420,
                    height=170,
                    compact=True,
                )
            )
    monitored = trend.filter(pl.col("monitored"))
    per_area = monitored.group_by("category", maintain_order=True).agg(
        pl.col("period_start").n_unique().cast(pl.Int64).alias("months"),
        (pl.col("exceedance").is_not_null() & (pl.col("measure") == "all"))
        .sum()
        .cast(pl.Int64)
        .alias("exceedances_all"),
        (pl.col("exceedance").is_not_null() & (pl.col("measure") == "homicide"))
        .sum()
        .cast(pl.Int64)
        .alias("exceedances_homicide"),
        pl.col("false_alarm_rate").sum().alias("expected_false_alarms"),
        pl.col("note").first().alias("baseline"),
    )
    per_area = (
        per_area.with_columns(
            pl.col("category")
            .replace_strict({n: i for i, n in enumerate(["West Midlands", *_la_order()])}, default=99)
            .alias("_o")
        )
        .sort("_o")
        .drop("_o")
    )
    baseline = per_area.get_column("baseline")[0] if per_area.height else ""
    summary_table = Table(
        name="control_chart_summary",
        title="Control charts: months checked, exceedances and false alarms expected by chance",
        columns=[
            Col("category", "Area"),
            Col("months", "Months checked", "number"),
            Col("exceedances_all", "Exceedances: death investigations", "number"),
            Col("exceedances_homicide", "Exceedances: homicides", "number"),
            Col("expected_false_alarms", "False alarms expected by chance (both)", "rate"),
        ],
        frame=per_area.drop("baseline"),
        note=(
            f"Exact Poisson limits with at most {CONTROL_TAIL:.1%} in each tail ({baseline}); the expected false "
            "alarms are the sum over the months checked of each month's exact probability of crossing a limit "
            "by chance."
        ),
    )
    funnel = patterns.filter((pl.col("section") == "funnel") & pl.col("exceedance").is_not_null())
    ex = monitored.filter(pl.col("exceedance").is_not_null()).with_columns(
        pl.col("measure").replace_strict(MEASURE_LABELS, default=None).alias("series"),
        pl.lit("monthly control chart").alias("method"),
        pl.col("period_start").dt.strftime("%B %Y").alias("when"),
    )
    fx = funnel.with_columns(
        pl.col("measure").replace_strict(MEASURE_LABELS, default=None).alias("series"),
        pl.lit("funnel plot (12 months)").alias("method"),
        pl.concat_str(
            [
                pl.col("period_start").dt.strftime("%b %Y"),
                pl.lit(" to "),
                pl.col("period_end").dt.strftime("%b %Y"),
            ]
        ).alias("when"),
    )
    both = pl.concat([ex, fx], how="diagonal_relaxed") if (ex.height or fx.height) else ex
    ex_table = Table(
        name="exceedances",
        title="Exceedances: counts outside their control limits in the reporting period",
        columns=[
            Col("series", "Series"),
            Col("category", "Area"),
            Col("method", "Method"),
            Col("when", "When"),
            Col("deaths", "Deaths", "count", partner=False),
            Col("expected", "Expected", "rate"),
            Col("upper_limit", "Upper limit", "number"),
            Col("exceedance", "Direction", words=True),
            Col("false_alarm_rate", "False-alarm probability", "pvalue"),
        ],
        frame=both.select(
            "series",
            "category",
            "method",
            "when",
            "deaths",
            "expected",
            "upper_limit",
            "exceedance",
            "false_alarm_rate",
        )
        if both.height
        else pl.DataFrame(
            schema={
                "series": pl.String,
                "category": pl.String,
                "method": pl.String,
                "when": pl.String,
                "deaths": pl.Int64,
                "expected": pl.Float64,
                "upper_limit": pl.Float64,
                "exceedance": pl.String,
                "false_alarm_rate": pl.Float64,
            }
        ),
        additive=False,
        note="The false-alarm probability is the exact chance that this count would cross its limit with no change.",
    )
    return big, small, summary_table, ex_table


def _protect_monthly(
    series_by_measure: dict[str, pl.DataFrame],
) -> dict[str, tuple[list[float | None], list[str]]]:
    """Monthly counts for the partner edition, protected together in 12-month blocks.

    Each block ends at a reporting-period boundary; its total is published (the tables'
    current and previous columns) or assumed known, so each block is a line. The homicide
    series is protected with the all-deaths series, with the reader assumed to know that
    each month's homicides are no more than its deaths.
    """
    measures = list(series_by_measure)
    n = series_by_measure[measures[0]].height
    blocks = math.ceil(n / 12)
    pad = blocks * 12 - n
    rows = []
    for m in measures:
        padded = np.zeros(blocks * 12, dtype=np.int64)
        padded[pad:] = series_by_measure[m].get_column("deaths").to_numpy().astype(np.int64)
        rows.append(padded.reshape(blocks, 12))
    interior = np.vstack(rows)
    leq = []
    if "all" in measures and "homicide" in measures:
        a, h = measures.index("all"), measures.index("homicide")
        leq = [((h * blocks + b, j), (a * blocks + b, j)) for b in range(blocks) for j in range(13)]
    protected = disclosure.protect_table(interior, row_totals=True, col_totals=False, leq=leq)
    out = {}
    for k, m in enumerate(measures):
        status = protected.status[k * blocks : (k + 1) * blocks, :12].reshape(-1)[pad:]
        counts = series_by_measure[m].get_column("deaths").to_list()
        values: list[float | None] = []
        labels: list[str] = []
        for v, s in zip(counts, status):
            if s == disclosure.PUBLISHED:
                values.append(float(v))
                labels.append("")
            else:
                values.append(None)
                labels.append(
                    disclosure.PRIMARY_SYMBOL
                    if s in (disclosure.PRIMARY, disclosure.HIDDEN_ZERO)
                    else disclosure.SECONDARY_SYMBOL
                )
        out[m] = (values, labels)
    return out


def map_block(
    patterns: pl.DataFrame, inputs: ReportInputs, edition: str, la_table: RenderedTable | None
) -> str:
    from homicide_assets.lib.geography import boundaries

    cur = _current(patterns, "all", "local_authority")
    rates = {r["la_code"]: r["rate_per_100k"] for r in cur.iter_rows(named=True) if r["la_code"]}
    counts = {r["la_code"]: r["deaths"] for r in cur.iter_rows(named=True) if r["la_code"]}
    hidden: set[str] = set()
    if edition == "partner" and la_table is not None:
        for row in la_table.rows:
            cells = {c.key: c for c in row["cells"]}
            name = cells["category"].html
            code = next((c for c, n in LA_CODES.items() if html.escape(n) == name), None)
            if code and "sup" in cells["deaths"].css:
                hidden.add(code)
    values = {c: (None if c in hidden else rates.get(c)) for c in LA_CODES}
    labels = {
        c: (
            "suppressed"
            if c in hidden
            else f"{rates.get(c, 0):.1f} per 100,000 ({counts.get(c, 0):,} deaths)"
        )
        for c in LA_CODES
    }
    areas = [(b.la_code, b.name, list(b.rings)) for b in boundaries()]
    cells, points = [], []
    if edition == "full":
        hs = inputs.violence_hotspots
        period = _period(patterns)
        if hs is not None and hs.height and period:
            recent = hs.filter(
                (pl.col("source") == "death")
                & pl.col("hotspot")
                & (pl.col("period_end") >= period[0])
                & pl.col("centre_lat").is_not_null()
            )
            for r in recent.iter_rows(named=True):
                cells.append(
                    (
                        r["centre_lat"],
                        r["centre_lon"],
                        0.0045,
                        f"1 km cell {r['area_id']}: {r['events']} deaths in the quarter from "
                        f"{r['period_start']} (expected {r['expected']:.1f})",
                    )
                )
        if inputs.death_register is not None and period:
            inv = _investigations(inputs)
            hom = inv.filter(
                pl.col("homicide") & pl.col("date_of_death").is_between(*period) & pl.col("lat").is_not_null()
            )
            for r in hom.select("lat", "lon", "date_of_death", "police_report_id").iter_rows(named=True):
                points.append(
                    (r["lat"], r["lon"], f"homicide {r['date_of_death']} {r['police_report_id'] or ''}")
                )
    period = _period(patterns)
    label = f"{period[0]:%b %Y} to {period[1]:%b %Y}" if period else ""
    return choropleth_svg(
        areas,
        values,
        labels,
        f"Death investigations per 100,000 residents a year, {label}",
        "per 100,000 a year",
        cells=cells,
        points=points,
    )


def _period(patterns: pl.DataFrame) -> tuple[date, date] | None:
    from homicide_assets.lib.patterns import period_of

    return period_of(patterns)


_INV_CACHE: dict[int, pl.DataFrame] = {}


def _investigations(inputs: ReportInputs) -> pl.DataFrame:
    key = id(inputs)
    if key not in _INV_CACHE:
        _INV_CACHE.clear()
        _INV_CACHE[key] = investigations(inputs.death_register, inputs.death_reports)
    return _INV_CACHE[key]


def funnel_chart(
    patterns: pl.DataFrame, measure: str, la_rendered: RenderedTable | None, edition: str
) -> str:
    rows = patterns.filter((pl.col("section") == "funnel") & (pl.col("measure") == measure))
    if rows.is_empty():
        return ""
    hidden = set()
    if edition == "partner" and la_rendered is not None:
        key = "deaths" if measure == "all" else "homicides"
        for row in la_rendered.rows:
            cells = {c.key: c for c in row["cells"]}
            if "sup" in cells[key].css:
                hidden.add(cells["category"].html)
    names = rows.get_column("category").to_list()
    rates = [
        None if html.escape(n) in hidden else r
        for n, r in zip(names, rows.get_column("rate_per_100k").to_list())
    ]
    k = rows.get_column("deaths").sum()
    pops = rows.get_column("denominator").to_numpy()
    years = rows.get_column("years")[0]
    force_rate = k / (pops.sum() * years) * PER if pops.sum() else 0.0
    return funnel_svg(
        names,
        pops,
        rates,
        force_rate,
        years,
        f"Funnel plot: {MEASURE_LABELS[measure]} per 100,000 a year by authority",
        flagged=rows.get_column("exceedance").to_list(),
    )


def police_partner_tables(patterns: pl.DataFrame, inputs: ReportInputs) -> list[Block]:
    pp = patterns.filter((pl.col("section") == "police_partner") & (pl.col("measure") == "all"))
    blocks: list[Block] = []

    def rows(dimension: str) -> pl.DataFrame:
        return pp.filter(pl.col("dimension") == dimension).select(
            "category", "deaths", "share", "share_ci_low", "share_ci_high"
        )

    share_cols = [
        Col("share", "Share", "share", of="deaths"),
        Col("share_ci_low", "95% CI", "share_ci", of="deaths", pair="share_ci_high"),
    ]

    source = rows("reporting_source").with_columns(pl.col("deaths").cast(pl.Int64))
    blocks.append(
        Block(
            "table",
            Table(
                "reporting_source",
                "Who knew of each death: police and partners",
                [Col("category", "Known to"), Col("deaths", "Deaths", "count"), *share_cols],
                with_total_row(source, "category", ["deaths"]),
                total_row=True,
                note="Of the death investigations in the reporting period. 95% CI: exact (Clopper-Pearson).",
            ),
        )
    )
    by_la = rows("no_police_report_by_local_authority").with_columns(pl.col("deaths").cast(pl.Int64))
    order = {name: i for i, name in enumerate(_la_order())}
    by_la = (  # every authority, then deaths whose authority is not recorded
        pl.DataFrame({"category": _la_order()})
        .join(by_la.select("category", "deaths"), on="category", how="full", coalesce=True)
        .with_columns(
            pl.col("deaths").fill_null(0), pl.col("category").replace_strict(order, default=99).alias("_o")
        )
        .sort("_o", "category")
        .drop("_o")
    )
    blocks.append(
        Block(
            "table",
            Table(
                "no_police_report_by_local_authority",
                "Deaths known to the NHS or a coroner with no police report, by authority",
                [Col("category", "Local authority"), Col("deaths", "Deaths", "count")],
                with_total_row(by_la.select("category", "deaths"), "category", ["deaths"]),
                total_row=True,
                bar="deaths",
            ),
        )
    )
    by_reason = rows("no_police_report_by_reason").with_columns(pl.col("deaths").cast(pl.Int64))
    blocks.append(
        Block(
            "table",
            Table(
                "no_police_report_by_reason",
                "Why a death without a police report is counted",
                [Col("category", "Partner record shows"), Col("deaths", "Deaths", "count")],
                with_total_row(by_reason.select("category", "deaths"), "category", ["deaths"]),
                total_row=True,
                note="An inquest conclusion other than natural causes, or an external, drug-poisoning or unknown "
                "underlying cause of death (ICD-10).",
            ),
        )
    )
    dis = (
        rows("classification_disagreement")
        .filter(pl.col("category") != "any classification disagreement")
        .with_columns(pl.col("deaths").cast(pl.Int64))
    )
    blocks.append(
        Block(
            "table",
            Table(
                "classification_disagreements",
                "Police classification contradicted by the inquest or the cause of death",
                [Col("category", "Disagreement"), Col("deaths", "Deaths", "count")],
                with_total_row(dis.select("category", "deaths"), "category", ["deaths"]),
                total_row=True,
                note="Open, narrative and pending conclusions never count as disagreement; suspicious and unexplained "
                "police classifications are still open and are not contradicted by an assault cause.",
            ),
        )
    )
    known = rows("known_to_services").with_columns(pl.col("deaths").cast(pl.Int64))
    blocks.append(
        Block(
            "table",
            Table(
                "known_to_services",
                "Known to local authority services before death",
                [Col("category", "Service"), Col("deaths", "Deaths", "count"), *share_cols],
                known,
                additive=False,
                note="Share of all death investigations in the period; one person can be known to several services.",
            ),
        )
    )
    if inputs.death_register is not None:
        inv = _investigations(inputs)
        period = _period(patterns)
        if period:
            window = inv.filter(pl.col("date_of_death").is_between(*period))
            nopol = (
                window.filter(~pl.col("has_police_report"))
                .select(
                    "death_id",
                    "date_of_death",
                    "la_name",
                    "scope_reason",
                    "icd10_underlying",
                    "inquest_conclusion",
                    pl.col("source_records")
                    .list.eval(pl.element().str.split(":").list.first())
                    .list.unique()
                    .list.sort()
                    .alias("sources"),
                )
                .sort("date_of_death", "death_id", nulls_last=True)
            )
            blocks.append(
                Block(
                    "table",
                    Table(
                        "deaths_without_police_report",
                        "Deaths without a police report (list)",
                        [
                            Col("death_id", "Death"),
                            Col("date_of_death", "Date of death", "date"),
                            Col("la_name", "Authority"),
                            Col("scope_reason", "Counted because"),
                            Col("icd10_underlying", "ICD-10"),
                            Col("inquest_conclusion", "Inquest conclusion"),
                            Col("sources", "Sources", "list"),
                        ],
                        nopol,
                        partner=False,
                        note=_list_note(nopol.height),
                    ),
                    editions=("full",),
                )
            )
            dlist = (
                window.filter(
                    pl.col("classification_disagreement").is_not_null()
                    | (pl.col("disagreements").list.len() > 0)
                )
                .select(
                    "death_id",
                    "police_report_id",
                    "date_of_death",
                    "la_name",
                    "police_classification",
                    "inquest_conclusion",
                    "icd10_underlying",
                    "classification_disagreement",
                    "disagreements",
                )
                .sort("date_of_death", "death_id", nulls_last=True)
            )
            blocks.append(
                Block(
                    "table",
                    Table(
                        "disagreements_list",
                        "Deaths on which sources disagree (list)",
                        [
                            Col("death_id", "Death"),
                            Col("police_report_id", "Police report"),
                            Col("date_of_death", "Date of death", "date"),
                            Col("la_name", "Authority"),
                            Col("police_classification", "Police classification"),
                            Col("inquest_conclusion", "Inquest"),
                            Col("icd10_underlying", "ICD-10"),
                            Col("classification_disagreement", "Classification"),
                            Col("disagreements", "Recorded disagreements", "list"),
                        ],
                        dlist,
                        partner=False,
                        note=_list_note(dlist.height),
                    ),
                    editions=("full",),
                )
            )
    return blocks


def _list_note(n: int) -> str:
    return (
        f"{n:,} rows; the first {LIST_ROWS} are shown, all are in the CSV extract."
        if n > LIST_ROWS
        else f"{n:,} rows."
    )


def hotspot_tables(inputs: ReportInputs, patterns: pl.DataFrame) -> list[Block]:
    hs = inputs.violence_hotspots
    if hs is None:
        return []
    period = _period(patterns)
    blocks: list[Block] = []
    ed = hs.filter(pl.col("source") == "ed_assault")
    if period:
        ed_recent = ed.filter(pl.col("period_start").is_between(period[0], period[1]))
    else:
        ed_recent = ed
    if ed.height:
        by_district = (
            ed_recent.group_by("area_id")
            .agg(
                pl.col("la_code").first(),
                pl.col("events").sum().cast(pl.Int64).alias("events"),
                pl.col("hotspot").sum().cast(pl.Int64).alias("hotspot_quarters"),
                pl.col("ratio").max().alias("max_ratio"),
            )
            .with_columns(pl.col("la_code").replace_strict(LA_CODES, default="").alias("authority"))
            .sort("events", "area_id", descending=[True, False])
            .select("area_id", "authority", "events", "hotspot_quarters", "max_ratio")
        )
        if by_district.height > TOP_DISTRICTS:  # the rest in one row, so the total still adds up
            rest = by_district.slice(TOP_DISTRICTS)
            other = pl.DataFrame(
                {
                    "area_id": [f"other districts ({rest.height})"],
                    "authority": [""],
                    "events": [int(rest["events"].sum())],
                    "hotspot_quarters": [int(rest["hotspot_quarters"].sum())],
                    "max_ratio": [None],
                },
                schema=by_district.schema,
            )
            by_district = pl.concat([by_district.head(TOP_DISTRICTS), other])
        blocks.append(
            Block(
                "table",
                Table(
                    "ed_assaults_by_district",
                    "Emergency department assault attendances by postcode district (12 months)",
                    [
                        Col("area_id", "District"),
                        Col("authority", "Authority"),
                        Col("events", "Attendances", "count"),
                        Col("hotspot_quarters", "Hotspot quarters", "number"),
                        Col("max_ratio", "Highest observed/expected", "rate"),
                    ],
                    with_total_row(by_district, "area_id", ["events"]),
                    total_row=True,
                    bar="events",
                    note="Placed by the assault postcode, else a district written in the location text; attendances that "
                    "could not be placed are left out.",
                ),
            )
        )
    flagged = hs.filter(pl.col("hotspot"))
    if period:
        flagged = flagged.filter(pl.col("period_end") >= period[0].replace(year=period[0].year - 1))
    flagged = flagged.with_columns(
        pl.col("la_code").replace_strict(LA_CODES, default="").alias("authority"),
        pl.col("source")
        .replace_strict({"ed_assault": "ED assaults", "death": "death investigations"}, default=None)
        .alias("what"),
        pl.concat_str(
            [
                pl.col("period_start").dt.year().cast(pl.String),
                pl.lit(" Q"),
                ((pl.col("period_start").dt.month() - 1) // 3 + 1).cast(pl.String),
            ]
        ).alias("quarter"),
    ).sort("period_start", "p_value", descending=[True, False])
    blocks.append(
        Block(
            "table",
            Table(
                "hotspots",
                "Hotspots: area-quarters well above what the force-wide pattern predicts",
                [
                    Col("what", "Events"),
                    Col("area_type", "Area"),
                    Col("area_id", "Area id", partner=False),
                    Col("authority", "Authority"),
                    Col("quarter", "Quarter"),
                    Col("events", "Events", "count"),
                    Col("expected", "Expected", "rate"),
                    Col("ratio", "Observed/expected", "rate"),
                    Col("p_value", "p", "pvalue"),
                    Col("false_alarm_rate", "False-alarm probability", "pvalue"),
                ],
                flagged.select(
                    "what",
                    "area_type",
                    "area_id",
                    "authority",
                    "quarter",
                    "events",
                    "expected",
                    "ratio",
                    "p_value",
                    "false_alarm_rate",
                ),
                additive=False,
                note=f"Last eight quarters. Expected = area total x quarter total / all events (space-time permutation); "
                f"flagged when P(X >= observed) < 0.001 with at least 3 events. About "
                f"{float(hs.get_column('false_alarm_rate').sum()):.2f} false hotspots are expected by chance over all "
                f"{hs.height:,} area-quarters tested.",
            ),
        )
    )
    return blocks


def series_tables(inputs: ReportInputs) -> list[Block]:
    series = inputs.linked_series
    if series is None:
        return []
    names: dict[str, str] = {}
    if inputs.death_reports is not None and {"forename", "surname"} <= set(inputs.death_reports.columns):
        names = dict(
            inputs.death_reports.select(
                "report_id",
                pl.concat_str([pl.col("forename"), pl.col("surname")], separator=" ", ignore_nulls=True),
            ).iter_rows()
        )
    s = series.sort(["score", "series_id"], descending=[True, False])
    rows = []
    for r in s.iter_rows(named=True):
        ids = r.get("death_ids") or []
        pids = r.get("police_report_ids") or []
        members = []
        for i, d in enumerate(ids):
            pid = pids[i] if i < len(pids) else None
            label = d + (f" ({pid}" + (f", {names[pid]}" if pid in names else "") + ")" if pid else "")
            members.append(label)
        first = r.get("first_flagged_on")
        rows.append(
            {
                **{
                    k: r.get(k)
                    for k in ("series_id", "size", "score", "kinds", "reason", "flagged_at_member")
                },
                "first_flagged_on": first,
                "first_flagged_month": f"{first:%B %Y}" if first else None,
                "members": members,
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={
            "series_id": pl.String,
            "size": pl.Int64,
            "score": pl.Float64,
            "kinds": pl.List(pl.String),
            "reason": pl.String,
            "flagged_at_member": pl.Int64,
            "first_flagged_on": pl.Date,
            "first_flagged_month": pl.String,
            "members": pl.List(pl.String),
        },
    )
    return [
        Block(
            "table",
            Table(
                "linked_series",
                "Linked series of deaths",
                [
                    Col("series_id", "Series"),
                    Col("size", "Deaths", "count"),
                    Col("score", "Strength", "rate"),
                    Col("kinds", "Linked by", "list"),
                    Col("first_flagged_on", "First flagged", "date", partner=False),
                    Col("first_flagged_month", "First flagged (month)", full=False),
                    Col("flagged_at_member", "Seen at death no.", "number", partner=False),
                    Col("reason", "Why (for the analyst to check)", partner=False),
                    Col("members", "Members (death, police report, name)", "list", partner=False),
                ],
                frame,
                additive=False,
                note="Strength is the series score (0-1). 'First flagged' is the date of the death at which the series "
                "first crossed the threshold; 'seen at death no.' how many members it had then.",
            ),
        ),
        *case_link_blocks(inputs),
    ]


def case_link_blocks(inputs: ReportInputs) -> list[Block]:
    """The strongest pairwise links, with their evidence (full edition: evidence can name people)."""
    links = inputs.case_links
    if links is None or links.is_empty():
        return []
    cols = [c for c in ("death_id_a", "death_id_b", "score", "evidence") if c in links.columns]
    top = links.sort(["score", "death_id_a", "death_id_b"], descending=[True, False, False]).select(cols)
    return [
        Block(
            "table",
            Table(
                "case_links",
                "Strongest links between two deaths, with the evidence",
                [
                    Col("death_id_a", "Death"),
                    Col("death_id_b", "Linked death"),
                    Col("score", "Strength", "rate"),
                    Col("evidence", "Evidence", "list"),
                ],
                top,
                partner=False,
                note=_list_note(top.height),
            ),
            editions=("full",),
        )
    ]


def lessons_tables(inputs: ReportInputs) -> list[Block]:
    recs = inputs.recommendations
    blocks: list[Block] = []
    if recs is not None:
        by_status = (
            recs.group_by("status")
            .agg(
                pl.len().cast(pl.Int64).alias("recommendations"),
                pl.col("overdue").sum().cast(pl.Int64).alias("overdue"),
            )
            .sort(["recommendations", "status"], descending=[True, False])
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "recommendations_by_status",
                    "Review recommendations by status",
                    [
                        Col("status", "Status", words=True),
                        Col("recommendations", "Recommendations", "count", protect=False),
                        Col("overdue", "Overdue", "count", protect=False),
                    ],
                    with_total_row(by_status, "status", ["recommendations", "overdue"]),
                    total_row=True,
                    note="Overdue: due date passed and not implemented or verified (PFD responses due 56 days after "
                    "publication when no date is given).",
                ),
            )
        )
        themes = (
            recs.select("review_id", "overdue", "themes")
            .explode("themes")
            .drop_nulls("themes")
            .group_by("themes")
            .agg(
                pl.len().cast(pl.Int64).alias("recommendations"),
                pl.col("review_id").n_unique().cast(pl.Int64).alias("reviews"),
                pl.col("overdue").sum().cast(pl.Int64).alias("overdue"),
            )
            .with_columns((pl.col("reviews") > 1).alias("repeated"))
            .sort(["recommendations", "themes"], descending=[True, False])
            .rename({"themes": "theme"})
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "recommendations_by_theme",
                    "Themes of recommendations (a theme in several reviews is a lesson learned twice)",
                    [
                        Col("theme", "Theme", words=True),
                        Col("recommendations", "Recommendations", "count", protect=False),
                        Col("reviews", "Reviews", "count", protect=False),
                        Col("overdue", "Overdue", "count", protect=False),
                        Col("repeated", "Repeated across reviews", "flag"),
                    ],
                    themes,
                    additive=False,
                ),
            )
        )
        owners = (
            recs.group_by("owner_organisation")
            .agg(
                pl.len().cast(pl.Int64).alias("recommendations"),
                (~pl.col("status").is_in(["implemented", "verified", "closed_not_implemented"]))
                .sum()
                .cast(pl.Int64)
                .alias("open"),
                pl.col("overdue").sum().cast(pl.Int64).alias("overdue"),
                pl.col("days_open").median().alias("median_days_open"),
            )
            .sort(["overdue", "recommendations", "owner_organisation"], descending=[True, True, False])
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "recommendations_by_owner",
                    "Recommendations by owning organisation",
                    [
                        Col("owner_organisation", "Owner"),
                        Col("recommendations", "Recommendations", "count", protect=False),
                        Col("open", "Open", "count", protect=False),
                        Col("overdue", "Overdue", "count", protect=False),
                        Col("median_days_open", "Median days open", "number"),
                    ],
                    owners,
                    additive=False,
                ),
            )
        )
        overdue = recs.filter(pl.col("overdue")).sort(
            [c for c in ("days_overdue", "review_id", "recommendation_id") if c in recs.columns],
            descending=[True, False, False][
                : len([c for c in ("days_overdue", "review_id", "recommendation_id") if c in recs.columns])
            ],
        )
        cols = [
            Col("review_id", "Review"),
            Col("recommendation_id", "Recommendation"),
            Col("review_type", "Type", words=True),
            Col("review_title", "Title", partner=False),
            Col("owner_organisation", "Owner"),
            Col("governance_board", "Board"),
            Col("status", "Status", words=True),
            Col("due_on", "Due", "date"),
            Col("days_overdue", "Days overdue", "number"),
            Col("themes", "Themes", "list"),
        ]
        cols = [c for c in cols if c.key in recs.columns]
        blocks.append(
            Block(
                "table",
                Table(
                    "overdue_recommendations",
                    "Overdue recommendations",
                    cols,
                    overdue.select([c.key for c in cols]),
                    additive=False,
                ),
            )
        )
    lid = inputs.lessons_in_days
    if lid is not None:
        flagged = lid.filter(pl.col("flagged"))
        with_lesson = lid.filter(pl.col("first_lesson_on").is_not_null())
        median = with_lesson.get_column("days_to_first_lesson").median() if with_lesson.height else None
        summary = pl.DataFrame(
            {
                "measure": [
                    "homicides and serious-violence deaths",
                    "with a recorded lesson",
                    "flagged: no lesson after the allowed period",
                ],
                "deaths": [lid.height, with_lesson.height, flagged.height],
            },
            schema={"measure": pl.String, "deaths": pl.Int64},
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "lessons_in_days_summary",
                    "Lessons in days: from death to first recorded lesson",
                    [Col("measure", "Deaths"), Col("deaths", "Number", "count")],
                    summary,
                    additive=False,
                    note=(
                        f"Median days from death to the first lesson: {median:.0f}."
                        if median is not None
                        else "No lesson recorded yet."
                    ),
                ),
            )
        )
        cols = [
            Col("death_id", "Death"),
            Col("police_report_id", "Police report"),
            Col("date_of_death", "Date of death", "date"),
            Col("days_since_death", "Days since death", "number"),
            Col("flag_reason", "Why flagged"),
        ]
        cols = [c for c in cols if c.key in lid.columns]
        blocks.append(
            Block(
                "table",
                Table(
                    "lessons_flagged",
                    "Homicides with no lesson recorded (list)",
                    cols,
                    flagged.select([c.key for c in cols]),
                    partner=False,
                    note=_list_note(flagged.height),
                ),
                editions=("full",),
            )
        )
    return blocks


def compliance_tables(inputs: ReportInputs) -> list[Block]:
    comp = inputs.compliance
    if comp is None:
        return []
    cols = [
        Col("organisation", "Partner"),
        Col("feed", "Feed", words=True),
        Col("cadence_days", "Every (days)", "number"),
        Col("extracts_owed", "Owed", "count", protect=False),
        Col("extracts_received", "Received", "count", protect=False),
        Col("last_extract_date", "Last extract", "date"),
        Col("days_late", "Days late", "number"),
        Col("quality_pass_rate", "Quality pass rate", "share"),
        Col("agreement_expires_on", "Agreement expires", "date"),
        Col("days_to_expiry", "Days to expiry", "number"),
        Col("non_responder", "Non-responder", "flag"),
        Col("escalation_reason", "Escalation"),
    ]
    cols = [c for c in cols if c.key in comp.columns]
    blocks = [
        Block(
            "table",
            Table(
                "partner_compliance",
                "Partner compliance: extracts owed and received",
                cols,
                comp.select([c.key for c in cols]),
                additive=False,
            ),
        )
    ]
    nr = comp.filter(pl.col("non_responder")) if "non_responder" in comp.columns else comp.head(0)
    ncols = [
        c
        for c in cols
        if c.key
        in (
            "organisation",
            "feed",
            "last_extract_date",
            "days_late",
            "extracts_owed",
            "extracts_received",
            "escalation_reason",
        )
    ]
    blocks.append(
        Block(
            "table",
            Table(
                "non_responders",
                "Partners not responding: for escalation",
                ncols,
                nr.select([c.key for c in ncols]),
                additive=False,
                note="Named for the Violence Reduction Partnership board, as the Police and "
                "Crime Commissioner undertook.",
            ),
        )
    )
    return blocks


def quality_tables(inputs: ReportInputs) -> list[Block]:
    blocks: list[Block] = []
    q = inputs.quarantine
    if q is not None and q.height:
        files = (
            q.filter(pl.col("kind") == "file")
            .group_by("partner_id", "feed", "rule")
            .agg(pl.len().cast(pl.Int64).alias("files"))
            .sort("files", "partner_id", descending=[True, False])
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "quarantined_files",
                    "Files quarantined whole",
                    [
                        Col("partner_id", "Partner"),
                        Col("feed", "Feed", words=True),
                        Col("rule", "Rule broken", words=True),
                        Col("files", "Files", "count", protect=False),
                    ],
                    files,
                    additive=False,
                ),
            )
        )
        rows = (
            q.filter(pl.col("kind") == "row")
            .group_by("partner_id", "feed", "column", "rule")
            .agg(pl.struct("delivery_id", "line").n_unique().cast(pl.Int64).alias("rows"))
            .sort(["rows", "partner_id", "feed", "column", "rule"], descending=[True, False, False, False, False])
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "quarantined_rows",
                    "Rows quarantined, by the rule they broke",
                    [
                        Col("partner_id", "Partner"),
                        Col("feed", "Feed", words=True),
                        Col("column", "Column"),
                        Col("rule", "Rule", words=True),
                        Col("rows", "Rows", "count", protect=False),
                    ],
                    rows,
                    additive=False,
                    note="A row breaking several rules is counted under each.",
                ),
            )
        )
    elif q is not None:
        blocks.append(Block("html", html="<p>Nothing was quarantined.</p>"))
    d = inputs.deliveries
    if d is not None and d.height:
        summary = (
            d.group_by("partner_id", "feed")
            .agg(
                pl.len().cast(pl.Int64).alias("deliveries"),
                (pl.col("status") == "quarantined").sum().cast(pl.Int64).alias("quarantined_files"),
                pl.col("rows_read").fill_null(0).sum().cast(pl.Int64).alias("rows_read"),
                pl.col("rows_staged").fill_null(0).sum().cast(pl.Int64).alias("rows_staged"),
                pl.col("rows_quarantined").fill_null(0).sum().cast(pl.Int64).alias("rows_quarantined"),
                pl.col("extract_date").max().alias("last_extract"),
            )
            .sort("partner_id", "feed")
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "deliveries",
                    "Deliveries received, by partner and feed",
                    [
                        Col("partner_id", "Partner"),
                        Col("feed", "Feed", words=True),
                        Col("deliveries", "Files", "count", protect=False),
                        Col("quarantined_files", "Quarantined", "count", protect=False),
                        Col("rows_read", "Rows read", "count", protect=False),
                        Col("rows_staged", "Rows staged", "count", protect=False),
                        Col("rows_quarantined", "Rows quarantined", "count", protect=False),
                        Col("last_extract", "Last extract", "date"),
                    ],
                    summary,
                    additive=False,
                ),
            )
        )
    comp = inputs.compliance
    if comp is not None and "days_late" in comp.columns:
        late = comp.filter((pl.col("days_late") > 0) | pl.col("non_responder")).select(
            "organisation", "feed", "cadence_days", "last_extract_date", "days_late"
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "late_partners",
                    "Partners late against their cadence",
                    [
                        Col("organisation", "Partner"),
                        Col("feed", "Feed", words=True),
                        Col("cadence_days", "Every (days)", "number"),
                        Col("last_extract_date", "Last extract", "date"),
                        Col("days_late", "Days late", "number"),
                    ],
                    late,
                    additive=False,
                ),
            )
        )
    elif d is not None and d.height:
        from homicide_assets.lib.registry import default_registry

        reg = default_registry()
        as_of = d.get_column("extract_date").max()
        last = (
            d.filter(pl.col("status") != "quarantined")
            .group_by("partner_id", "feed")
            .agg(pl.col("extract_date").max().alias("last_extract_date"))
        )
        owed = pl.DataFrame(
            [
                {"partner_id": f.partner_id, "feed": f.feed, "cadence_days": f.cadence_days}
                for f in reg.feeds
                if f.cadence_days
            ],
            schema={"partner_id": pl.String, "feed": pl.String, "cadence_days": pl.Int64},
        )
        late = (
            owed.join(last, on=["partner_id", "feed"], how="left")
            .with_columns(
                (
                    (pl.lit(as_of) - pl.col("last_extract_date")).dt.total_days() - pl.col("cadence_days")
                ).alias("days_late")
            )
            .filter(pl.col("days_late").is_null() | (pl.col("days_late") > 0))
            .sort(["days_late", "partner_id", "feed"], descending=[True, False, False], nulls_last=True)
        )
        blocks.append(
            Block(
                "table",
                Table(
                    "late_partners",
                    "Partners late against their cadence (from the ledger)",
                    [
                        Col("partner_id", "Partner"),
                        Col("feed", "Feed", words=True),
                        Col("cadence_days", "Every (days)", "number"),
                        Col("last_extract_date", "Last extract", "date"),
                        Col("days_late", "Days late", "number"),
                    ],
                    late,
                    additive=False,
                    note=f"Against the newest extract date received ({as_of}).",
                ),
            )
        )
    return blocks


METHODOLOGY_HTML = """
<div class="method">
<p><strong>What is counted.</strong> A <em>death investigation</em> is a death in the linked death register
(one row per real death, whichever partners reported it) that the police reported, or that a partner's record
marks as unnatural or unexplained: an inquest whose conclusion is anything but natural causes (pending, open and
narrative included), or an underlying cause of death (ICD-10) that is external (V01-Y98), a drug-use disorder in
the ONS drug-poisoning definition (F11-F16, F18, F19) or ill-defined (R95-R99). A homicide is a death the police
classify as homicide or suspected homicide, an inquest concludes was an unlawful killing, or whose underlying
cause is assault (X85-Y09). The reporting period is the last 12 complete months of data; "previous" is the 12
months before.</p>
<p><strong>Rates and intervals.</strong> Rates are deaths per 100,000 residents a year (ONS Census 2021
populations, <code>seeds/local_authorities.csv</code>), with exact (Garwood) Poisson 95% confidence intervals.
Breakdowns other than by authority use the whole force population: no population by sex, age or ethnicity is
held, so those rates compare kinds of death, not risks within groups. Shares carry exact (Clopper-Pearson)
intervals. A change between periods is tested exactly (conditional binomial test of two Poisson counts).</p>
<p><strong>Trends: Poisson control charts (c-charts) with exact limits.</strong> Chosen because a monthly count
against a band is read at a glance; because monthly counts per authority are small, so normal 3-sigma limits
would be wrong and exact Poisson quantiles are used; and because each month's false-alarm probability can then
be stated exactly (a CUSUM would detect small sustained shifts sooner but states its false alarms only as an
average run length, and needs years of history to calibrate; it is left for later). The centre line is the
daily rate of the baseline (up to 36 months before the reporting period) times the days in each month; the
limits leave at most 0.1% in each tail (like 3-sigma's 0.135%). With under 12 months of history the limits come
from the whole series (a phase-I chart) and the chart summary says so. Every exceedance is listed with its exact
false-alarm probability, and the expected number of false alarms across all months checked is stated.</p>
<p><strong>Authorities compared: funnel plot.</strong> Each authority's count in the reporting period against
the force-wide rate times its population, with exact Poisson 95% and 99.8% limits (Spiegelhalter, 2005); outside
99.8% is an exceedance. A funnel plot avoids league tables: small authorities vary more by chance.</p>
<p><strong>Hotspots.</strong> ED assault attendances (anonymous, no coordinates) are placed by the postcode
district of the assault postcode (<code>seeds/postcode_districts.csv</code>), else a district written in the
location text; deaths by the police report's coordinates on a 1 km grid. For each area and quarter the expected
count is area total x quarter total / all events (the space-time permutation model, Kulldorff 2005), so a
force-wide rise does not make every area a hotspot; a hotspot has P(X >= observed) below 0.001 and at least
3 events.</p>
<p><strong>Police and partners.</strong> Deaths the NHS or a coroner know of with no police report; police
classifications contradicted by an inquest conclusion or an assault cause of death (open, narrative and pending
conclusions never contradict); disagreements the linkage recorded between sources (dates, sex, place); and the
share of deaths known to a local authority service before death (<code>safeguarding_contacts</code>). Linkage is
probabilistic: each register row carries the lowest match probability of the records joined.</p>
<p><strong>Partner edition.</strong> No names, dates of birth, NHS numbers, report ids, person keys, death ids or
exact locations, and no per-death lists. Counts of people and events from 1 to 4 are shown <code>&lt;5</code>;
where a hidden count could be worked out from a table's totals, another cell is hidden too (<code>[c]</code>),
chosen smallest first, and every table is audited by linear programming: the range a reader could narrow each
hidden small count to must hold at least two values. Rates, shares and intervals of a hidden count are hidden.
Monthly chart counts are protected in 12-month blocks whose totals appear in the tables. Counts of
recommendations, files and extracts describe organisations, not people, and are shown as they are.</p>
</div>
"""


# --------------------------------------------------------------------------------------
# Executive summary


def _pct(x: float | None) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x * 100:.0f}%"


def _cell(
    rendered: dict[str, RenderedTable], table: str, row_label: str, col: str, label_col: str = "category"
) -> tuple[str, object]:
    """(displayed text, raw value) of one cell of a rendered table ('' when absent)."""
    t = rendered.get(table)
    if t is None:
        return "", None
    for row in t.rows:
        cells = {c.key: c for c in row["cells"]}
        if label_col in cells and html.unescape(cells[label_col].html) == row_label and col in cells:
            c = cells[col]
            text = html.unescape(c.html)
            return text, c.value
    return "", None


def executive_summary(
    inputs: ReportInputs, rendered: dict[str, RenderedTable], edition: str
) -> tuple[list[str], list[dict]]:
    """Bullets a chief officer reads in two minutes, and the headline tiles.

    Every number is read from a rendered table cell (so the partner edition's numbers are
    the protected ones) or from ``death_patterns`` rows.
    """
    p = inputs.death_patterns
    partner = edition == "partner"
    bullets: list[str] = []
    tiles: list[dict] = []
    period = _period(p)
    change = p.filter(pl.col("section") == "change")
    force_all = change.filter((pl.col("measure") == "all") & (pl.col("dimension") == "force"))
    force_hom = change.filter((pl.col("measure") == "homicide") & (pl.col("dimension") == "force"))
    total_text, total = _cell(rendered, "by_local_authority", "Total", "deaths")
    prev_text, prev = _cell(rendered, "by_local_authority", "Total", "previous")
    hom_text, hom = _cell(rendered, "by_local_authority", "Total", "homicides")
    hom_prev = (
        int(force_hom.get_column("expected")[0])
        if force_hom.height and force_hom.get_column("expected")[0] is not None
        else None
    )
    if force_all.height and period:
        r = force_all.row(0, named=True)
        sentence = (
            f"In the 12 months {period[0]:%B %Y} to {period[1]:%B %Y}, {total_text} deaths were investigated "
            f"across the West Midlands"
        )
        if total is not None and (not partner or total_text not in ("<5", "[c]")):
            sentence += (
                f", {r['rate_per_100k']:.1f} per 100,000 residents a year "
                f"(95% CI {r['rate_ci_low']:.1f}-{r['rate_ci_high']:.1f})"
            )
        if prev is not None and total is not None and prev_text not in ("<5", "[c]") and int(prev) > 0:
            delta = (int(total) - int(prev)) / int(prev)
            direction = "unchanged" if round(delta * 100) == 0 else ("up" if delta > 0 else "down")
            sig = "a statistically significant change" if r["p_value"] < 0.05 else "within chance variation"
            pv = r["p_value"]
            p_text = "<0.001" if pv < 0.001 else f"= {pv:.2f}"
            sentence += (
                f"; {direction}{'' if direction == 'unchanged' else f' {abs(delta) * 100:.0f}%'} on the previous "
                f"12 months ({prev_text}), {sig} (p {p_text})"
            )
        bullets.append(sentence + ".")
        tiles.append({"key": "deaths", "value": total_text, "label": "death investigations, 12 months"})
    if force_hom.height:
        h = force_hom.row(0, named=True)
        s = f"{hom_text} were homicides"
        if hom is not None and hom_text not in ("<5", "[c]"):
            s += f" ({h['rate_per_100k']:.2f} per 100,000 a year)"
        if hom_prev is not None:
            s += f"; {disclosure.suppress_value(hom_prev) if partner else f'{hom_prev:,}'} the year before"
        bullets.append(s + ".")
        tiles.append({"key": "homicides", "value": hom_text, "label": "homicides, 12 months"})
    funnel = p.filter((pl.col("section") == "funnel") & (pl.col("measure") == "all"))
    if funnel.height:
        top = funnel.sort(["rate_per_100k", "category"], descending=[True, False]).row(0, named=True)
        hidden = partner and _cell(rendered, "by_local_authority", top["category"], "deaths")[0] in (
            "<5",
            "[c]",
        )
        above = funnel.filter(pl.col("exceedance") == "above").get_column("category").to_list()
        if not hidden:
            s = f"Highest rate: {top['category']} ({top['rate_per_100k']:.1f} per 100,000)."
        else:
            s = "Rates by authority are in the map and the breakdown tables."
        if above:
            s += f" Above the funnel plot's 99.8% limit: {', '.join(above)}."
        else:
            s += " No authority is outside the funnel plot's 99.8% limits."
        bullets.append(s)
    trend = p.filter((pl.col("section") == "trend") & pl.col("monitored"))
    if trend.height:
        ex = trend.filter(pl.col("exceedance").is_not_null())
        fa = float(trend.get_column("false_alarm_rate").sum())
        if ex.height:
            where = "; ".join(
                f"{r['category']} {MEASURE_LABELS[r['measure']]} in {r['period_start']:%B %Y} ({r['exceedance']})"
                for r in ex.sort("period_start", "category", "measure").head(6).iter_rows(named=True)
            )
            more = f" and {ex.height - 6} more" if ex.height > 6 else ""
            bullets.append(
                f"{ex.height} monthly count{'s' if ex.height != 1 else ''} crossed a control limit: {where}{more}. "
                f"About {fa:.1f} would be expected by chance across the {trend.height:,} monthly points checked."
            )
        else:
            bullets.append(
                f"No monthly count crossed its control limits ({trend.height:,} points checked; "
                f"{fa:.1f} false alarm{'s' if round(fa, 1) != 1 else ''} expected by chance)."
            )
        tiles.append(
            {
                "key": "exceedances",
                "value": f"{ex.height}",
                "label": "control-limit exceedances",
                "alert": ex.height > 0,
            }
        )
    series = inputs.linked_series
    if series is not None:
        n = series.height
        if n:
            new = (
                series.filter(pl.col("first_flagged_on") >= period[0]).height
                if period and "first_flagged_on" in series.columns
                else 0
            )
            best = series.sort(["score", "series_id"], descending=[True, False]).row(0, named=True)
            size = disclosure.suppress_value(best["size"]) if partner else f"{best['size']}"
            bullets.append(
                f"{n} linked series of deaths ({new} first flagged in the reporting period); the strongest has "
                f"{size} deaths linked by {', '.join(k.replace('_', ' ') for k in (best.get('kinds') or []))}."
            )
        else:
            bullets.append("No linked series of deaths crossed the threshold.")
        tiles.append({"key": "series", "value": f"{n}", "label": "linked series", "alert": n > 0})
    else:
        bullets.append("Linked series: not yet available for this run.")
    nopol_text, nopol = _cell(rendered, "no_police_report_by_local_authority", "Total", "deaths")
    dis_text, dis = _cell(rendered, "classification_disagreements", "Total", "deaths")
    if nopol_text:
        pp = p.filter((pl.col("section") == "police_partner") & (pl.col("measure") == "all"))
        uk = pp.filter(
            (pl.col("dimension") == "classification_disagreement")
            & pl.col("category").str.contains("inquest: unlawful killing|cause of death: assault")
        )
        uk_n = int(uk.get_column("deaths").sum()) if uk.height else 0
        s = (
            f"{nopol_text} deaths known to the NHS or a coroner had no police report; {dis_text or 0} police "
            f"classifications are contradicted by an inquest conclusion or cause of death"
        )
        # in the partner edition the sum is printed only when every row it adds up is published,
        # so it adds nothing a reader could not already add up from the table
        hidden_rows = partner and any(
            _cell(rendered, "classification_disagreements", c, "deaths")[0] in ("<5", "[c]", "")
            for c in uk.get_column("category").to_list()
        )
        if uk_n and not hidden_rows:
            s += (
                f", {disclosure.suppress_value(uk_n) if partner else uk_n} of them an unlawful killing or assault "
                "the police had not classified as homicide"
            )
        elif uk_n:
            s += ", some of them an unlawful killing or assault the police had not classified as homicide"
        bullets.append(s + ".")
        tiles.append(
            {
                "key": "no_police_report",
                "value": nopol_text,
                "label": "deaths partners knew of, no police report",
                "alert": bool(nopol),
            }
        )
    known_text, _ = _cell(rendered, "known_to_services", "any service", "share")
    if known_text:
        bullets.append(
            f"{known_text} of the deaths were of people known to a local authority service before they died."
        )
    hs = inputs.violence_hotspots
    if hs is not None and hs.height and period:
        recent = hs.filter(
            pl.col("hotspot") & (pl.col("period_end") >= period[0]) & (pl.col("source") == "ed_assault")
        )
        if recent.height:
            areas = ", ".join(sorted(set(recent.get_column("area_id").to_list()))[:8])
            bullets.append(f"ED assault hotspots in the reporting period: {areas}.")
        else:
            bullets.append("No ED assault hotspot in the reporting period.")
    recs = inputs.recommendations
    if recs is not None:
        overdue = int(recs.get_column("overdue").sum()) if recs.height else 0
        s = f"{overdue} of {recs.height} review recommendations are overdue"
        lid = inputs.lessons_in_days
        if lid is not None:
            f = lid.filter(pl.col("flagged")).height
            s += (
                f"; {disclosure.suppress_value(f) if partner else f} homicide{'s' if f != 1 else ''} "
                "have no lesson recorded after the allowed period"
            )
        bullets.append(s + ".")
        tiles.append(
            {
                "key": "overdue",
                "value": f"{overdue}",
                "label": "overdue recommendations",
                "alert": overdue > 0,
            }
        )
    else:
        bullets.append("Lessons and recommendations: not yet available for this run.")
    comp = inputs.compliance
    if comp is not None:
        nr = comp.filter(pl.col("non_responder")) if comp.height else comp
        names = sorted({(r["organisation"], r["feed"]) for r in nr.iter_rows(named=True)})
        orgs: dict[str, list[str]] = {}
        for org, feed in names:
            orgs.setdefault(org, []).append(feed.replace("_", " "))
        listed = [
            f"{org} ({', '.join(feeds)})" for org, feeds in sorted(orgs.items(), key=lambda kv: -len(kv[1]))
        ]
        shown = "; ".join(listed[:5]) + (f"; and {len(listed) - 5} more" if len(listed) > 5 else "")
        bullets.append(
            f"{len(names)} partner feed{'s' if len(names) != 1 else ''} not responding, to escalate"
            + (f": {shown} (see Partner compliance)." if names else ".")
        )
        tiles.append(
            {
                "key": "non_responders",
                "value": f"{len(names)}",
                "label": "partner feeds not responding",
                "alert": bool(names),
            }
        )
    else:
        bullets.append("Partner compliance: not yet available for this run.")
    q = inputs.quarantine
    if q is not None:
        files = q.filter(pl.col("kind") == "file").height
        rows = q.filter(pl.col("kind") == "row").select("delivery_id", "line").unique().height
        bullets.append(
            f"Data quality: {files} file{'s' if files != 1 else ''} and {rows:,} rows quarantined "
            "(see Data quality)."
        )
    return bullets, tiles


def summary_markdown(bullets: Sequence[str], edition: str, path: Path | None = None) -> str:
    head = "**Death investigations report**" + (" (partner edition)" if edition == "partner" else "")
    lines = [head, ""] + [f"- {b}" for b in bullets]
    if path is not None:
        lines += ["", f"Report: `{path}`"]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Assembly


@dataclass(frozen=True)
class Edition:
    key: str
    name: str
    marking: str
    marking_colour: str
    footer: str
    file_name: str
    csv_prefix: str
    asset: str


EDITIONS = {
    "full": Edition(
        "full",
        "Full edition",
        "OFFICIAL-SENSITIVE: may name people. Not for sharing outside the force.",
        "#a4262c",
        "Full edition. Handle as OFFICIAL-SENSITIVE: it may carry names, report ids and locations. Share the "
        "partner edition instead.",
        FULL_FILE,
        "",
        "death_investigations_report",
    ),
    "partner": Edition(
        "partner",
        "Partner edition",
        "OFFICIAL: partner edition. No names, dates of birth, NHS numbers, report ids "
        "or exact locations; counts 1-4 shown <5.",
        "#2f5f8a",
        "Partner edition for the Violence Reduction Partnership and its members: identifiers removed, small "
        "numbers suppressed with secondary suppression (see Methodology).",
        PARTNER_FILE,
        PARTNER_CSV_PREFIX,
        "partner_edition",
    ),
}


@dataclass
class EditionOutput:
    edition: str
    html_path: Path
    csv_paths: dict[str, Path]
    summary: list[str]
    summary_md: str
    tables: dict[str, RenderedTable]
    pdf_path: Path | None = None
    pdf_note: str = ""


@dataclass
class ReportResult:
    folder: Path
    editions: dict[str, EditionOutput]
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)


def build_sections(inputs: ReportInputs) -> list[Section]:
    """Every section and its blocks (editions choose which blocks they show)."""
    p = inputs.death_patterns
    sections: list[Section] = [Section("summary", "Executive summary")]
    la = breakdown_table(p, "local_authority")
    sections.append(
        Section(
            "map",
            "Across the force area",
            blocks=[Block("table", la)],
            intro="Rates of death investigation by local authority in the reporting period.",
        )
    )
    sections.append(Section("trends", "Trends and control limits"))
    ser = series_tables(inputs)
    sections.append(
        Section(
            "series",
            "Linked series",
            blocks=ser,
            missing="" if ser else NOT_AVAILABLE.format(what="series/linked_series"),
        )
    )
    sections.append(
        Section(
            "partners",
            "Police and partners: who knew, and where they disagree",
            blocks=police_partner_tables(p, inputs),
        )
    )
    sections.append(
        Section(
            "breakdowns",
            "Breakdowns",
            blocks=[
                Block("table", breakdown_table(p, dim)) for dim, _ in DIMENSIONS if dim != "local_authority"
            ],
        )
    )
    hot = hotspot_tables(inputs, p)
    sections.append(
        Section(
            "hotspots",
            "Violence hotspots",
            blocks=hot,
            missing="" if hot else NOT_AVAILABLE.format(what="patterns/violence_hotspots"),
        )
    )
    les = lessons_tables(inputs)
    sections.append(
        Section(
            "lessons",
            "Lessons and recommendations",
            blocks=les,
            missing="" if les else NOT_AVAILABLE.format(what="lessons/recommendations"),
        )
    )
    com = compliance_tables(inputs)
    sections.append(
        Section(
            "compliance",
            "Partner compliance",
            blocks=com,
            missing="" if com else NOT_AVAILABLE.format(what="partners/compliance"),
        )
    )
    qual = quality_tables(inputs)
    sections.append(
        Section(
            "quality",
            "Data quality",
            blocks=qual,
            missing="" if qual else NOT_AVAILABLE.format(what="the deliveries ledger"),
        )
    )
    sections.append(Section("methodology", "Methodology", blocks=[Block("html", html=METHODOLOGY_HTML)]))
    return sections


def render_edition(
    inputs: ReportInputs, sections: list[Section], edition_key: str, folder: Path, write_csv: bool = True
) -> EditionOutput:
    """Render one edition to ``folder``: its HTML and a CSV per table."""
    import jinja2

    edition = EDITIONS[edition_key]
    partner = edition_key == "partner"
    rendered: dict[str, RenderedTable] = {}
    out_sections = []
    for s in sections:
        blocks = []
        for b in s.blocks:
            if edition_key not in b.editions:
                continue
            if b.kind == "table":
                if partner and not b.table.partner:
                    continue
                long_list = not b.table.total_row
                rt = render_table(b.table, edition_key, html_rows=LIST_ROWS if long_list else None)
                rendered[rt.name] = rt
                shown = replace(rt, rows=rt.rows[:LIST_ROWS]) if len(rt.rows) > LIST_ROWS else rt
                blocks.append({"kind": "table", "table": shown})
            elif b.kind == "html":
                blocks.append({"kind": "html", "html": b.html})
            else:
                blocks.append({"kind": "charts", "charts": b.charts, "css": b.css})
        out_sections.append(
            {"key": s.key, "title": s.title, "intro": s.intro, "missing": s.missing, "blocks": blocks}
        )
    p = inputs.death_patterns
    # charts that depend on rendered (protected) tables
    for s in out_sections:
        if s["key"] == "map":
            charts = [map_block(p, inputs, edition_key, rendered.get("by_local_authority"))]
            funnel = funnel_chart(p, "all", rendered.get("by_local_authority"), edition_key)
            if funnel:
                charts.append(funnel)
            s["blocks"].insert(0, {"kind": "charts", "charts": charts, "css": "charts"})
        if s["key"] == "trends":
            big, small, summary_table, ex_table = trend_blocks(p, edition_key)
            blocks = [{"kind": "charts", "charts": big, "css": "charts"}]
            if small:
                blocks.append({"kind": "charts", "charts": small, "css": "small-multiples"})
            for t in (summary_table, ex_table):
                rt = render_table(t, edition_key)
                rendered[rt.name] = rt
                blocks.append({"kind": "table", "table": rt})
            s["blocks"] = blocks
    bullets, tiles = executive_summary(inputs, rendered, edition_key)
    period = _period(p)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    page = env.get_template("report.html.j2").render(
        title=TITLE,
        edition=edition,
        sections=out_sections,
        summary=bullets,
        tiles=tiles,
        period_label=f"{period[0]:%B %Y} to {period[1]:%B %Y}" if period else "no data",
        data_as_of=_data_as_of(inputs, period),
        generated_at=f"{inputs.generated_at:%Y-%m-%d %H:%M}",
        run_date=inputs.run_date,
        csv_prefix=edition.csv_prefix,
    )
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / edition.file_name
    _atomic_write(html_path, page)
    csv_paths = {}
    if write_csv:
        for name, rt in rendered.items():
            path = folder / f"{edition.csv_prefix}{name}.csv"
            tmp = path.with_name(f".{path.name}.tmp")
            rt.csv.write_csv(tmp)
            tmp.replace(path)
            csv_paths[name] = path
    return EditionOutput(
        edition_key,
        html_path,
        csv_paths,
        bullets,
        summary_markdown(bullets, edition_key, html_path),
        rendered,
    )


def _data_as_of(inputs: ReportInputs, period: tuple[date, date] | None) -> str:
    from homicide_assets.lib.patterns import default_data_as_of

    if inputs.death_reports is not None:
        return str(default_data_as_of(pl.DataFrame(schema={"date_of_death": pl.Date}), inputs.death_reports))
    return str(period[1]) if period else ""


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def report_folder(reports_dir: Path, run_date: date) -> Path:
    return Path(reports_dir) / run_date.isoformat()


def build_report(
    inputs: ReportInputs, reports_dir: Path, editions: Sequence[str] = ("full", "partner"), pdf: bool = False
) -> ReportResult:
    """Write the editions under ``reports_dir/<run date>/``; return paths, summaries, timings."""
    t0 = time.perf_counter()
    folder = report_folder(reports_dir, inputs.run_date)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    sections = build_sections(inputs)
    timings["tables"] = time.perf_counter() - t
    outputs = {}
    for key in editions:
        t = time.perf_counter()
        outputs[key] = render_edition(inputs, sections, key, folder)
        timings[f"render_{key}"] = time.perf_counter() - t
        if pdf:
            t = time.perf_counter()
            outputs[key].pdf_path, outputs[key].pdf_note = write_pdf(outputs[key].html_path)
            timings[f"pdf_{key}"] = time.perf_counter() - t
    _INV_CACHE.clear()
    return ReportResult(folder, outputs, time.perf_counter() - t0, timings)


def write_pdf(html_path: Path) -> tuple[Path | None, str]:
    """A PDF beside the HTML with WeasyPrint when it is installed; else (None, why not)."""
    try:
        import weasyprint  # type: ignore[import-not-found]
    except ImportError:
        return None, "no PDF: WeasyPrint is not installed (pip install weasyprint; needs Pango)"
    pdf_path = html_path.with_suffix(".pdf")
    tmp = pdf_path.with_name(f".{pdf_path.name}.tmp")
    weasyprint.HTML(filename=str(html_path)).write_pdf(str(tmp))
    tmp.replace(pdf_path)
    return pdf_path, f"PDF written with WeasyPrint {weasyprint.__version__}"


# --------------------------------------------------------------------------------------
# Reading inputs from a data directory (the bench, scripts, the plain pipeline)


def read_warehouse(data_dir, key_path: Sequence[str]) -> pl.DataFrame | None:
    """An asset's Parquet under ``warehouse/`` (the IO manager's layout), or ``None``."""
    path = data_dir.warehouse_file(list(key_path))
    return pl.read_parquet(path) if path.exists() else None


class StoreTables(NamedTuple):
    """What the report reads from the SQL store (each ``None`` when the store is unavailable)."""

    quarantine: pl.DataFrame | None
    deliveries: pl.DataFrame | None
    receipts: pl.DataFrame | None


def read_store_tables(database_url: str) -> StoreTables:
    """Quarantine entries, the deliveries ledger and every receipt (file name and outcome)."""
    try:
        from sqlmodel import select

        from homicide_assets.lib.store import session_scope
        from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry, Receipt

        with session_scope(database_url) as s:
            q = s.exec(
                select(
                    QuarantineEntry.kind,
                    QuarantineEntry.delivery_id,
                    QuarantineEntry.partner_id,
                    QuarantineEntry.feed,
                    QuarantineEntry.file_name,
                    QuarantineEntry.line,
                    QuarantineEntry.column,
                    QuarantineEntry.rule,
                )
            ).all()
            d = s.exec(
                select(
                    Delivery.delivery_id,
                    Delivery.partner_id,
                    Delivery.feed,
                    Delivery.extract_date,
                    Delivery.status,
                    Delivery.rows_read,
                    Delivery.rows_staged,
                    Delivery.rows_quarantined,
                    Delivery.rows_superseded,
                )
            ).all()
            r = s.exec(select(Receipt.file_name, Receipt.partner_folder, Receipt.outcome)).all()
    except Exception:  # noqa: BLE001 - the report still renders, and says the ledger is missing
        return StoreTables(None, None, None)
    quarantine = pl.DataFrame(
        [tuple(x) for x in q],
        schema={
            "kind": pl.String,
            "delivery_id": pl.String,
            "partner_id": pl.String,
            "feed": pl.String,
            "file_name": pl.String,
            "line": pl.Int64,
            "column": pl.String,
            "rule": pl.String,
        },
        orient="row",
    )
    deliveries = pl.DataFrame(
        [tuple(x) for x in d],
        schema={
            "delivery_id": pl.String,
            "partner_id": pl.String,
            "feed": pl.String,
            "extract_date": pl.Date,
            "status": pl.String,
            "rows_read": pl.Int64,
            "rows_staged": pl.Int64,
            "rows_quarantined": pl.Int64,
            "rows_superseded": pl.Int64,
        },
        orient="row",
    )
    receipts = pl.DataFrame(
        [tuple(x) for x in r],
        schema={"file_name": pl.String, "partner_folder": pl.String, "outcome": pl.String},
        orient="row",
    )
    return StoreTables(quarantine, deliveries, receipts)


UPSTREAM_KEYS: dict[str, tuple[str, ...]] = {
    "death_patterns": ("patterns", "death_patterns"),
    "violence_hotspots": ("patterns", "violence_hotspots"),
    "death_register": ("linkage", "death_register"),
    "death_reports": ("staged", "death_reports"),
    "case_links": ("series", "case_links"),
    "linked_series": ("series", "linked_series"),
    "recommendations": ("lessons", "recommendations"),
    "lessons_in_days": ("lessons", "lessons_in_days"),
    "compliance": ("partners", "compliance"),
}


def inputs_from_data_dir(
    data_dir, run_date: date | None = None, compute_patterns: bool = True
) -> ReportInputs:
    """Read every report input from a data directory; compute the patterns when asked
    (or when ``patterns/*`` are not in the warehouse)."""
    from homicide_assets.lib.hotspots import violence_hotspots
    from homicide_assets.lib.patterns import death_patterns, police_data_as_of, register_from_death_reports

    frames = {name: read_warehouse(data_dir, key) for name, key in UPSTREAM_KEYS.items()}
    register = frames["death_register"]
    reports = frames["death_reports"]
    if register is None and reports is not None:
        register = register_from_death_reports(reports)
    quarantine, deliveries, receipts = read_store_tables(data_dir.database_url())
    as_of = police_data_as_of(deliveries, receipts, reports)
    if compute_patterns or frames["death_patterns"] is None:
        frames["death_patterns"] = death_patterns(register, reports, data_as_of=as_of)
    if compute_patterns or frames["violence_hotspots"] is None:
        frames["violence_hotspots"] = violence_hotspots(
            read_warehouse(data_dir, ("staged", "ed_assaults")), register, reports, data_as_of=as_of
        )
    return ReportInputs(
        death_patterns=frames["death_patterns"],
        violence_hotspots=frames["violence_hotspots"],
        death_register=register,
        death_reports=reports,
        case_links=frames["case_links"],
        linked_series=frames["linked_series"],
        recommendations=frames["recommendations"],
        lessons_in_days=frames["lessons_in_days"],
        compliance=frames["compliance"],
        quarantine=quarantine,
        deliveries=deliveries,
        run_date=run_date or run_date_today(),
    )


def time_report_build(data_dir, run_date: date | None = None, pdf: bool = False) -> dict[str, float]:
    """For ``make bench``: seconds to compute the patterns and hotspots from the warehouse
    and write both editions (HTML and CSV) under ``reports/``."""
    t0 = time.perf_counter()
    inputs = inputs_from_data_dir(data_dir, run_date, compute_patterns=True)
    t_in = time.perf_counter() - t0
    result = build_report(inputs, data_dir.reports, pdf=pdf)
    return {
        "report_seconds": round(time.perf_counter() - t0, 2),
        "report_inputs_seconds": round(t_in, 2),
        **{f"report_{k}_seconds": round(v, 2) for k, v in result.timings.items()},
    }
