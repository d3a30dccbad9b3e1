"""The declared expectations of each feed, run with Great Expectations on staged frames.

``expectations/<feed>.json`` (written by ``scripts/write_expectations.py`` from the contract
in ``lib/feeds.py``) is the reviewed statement of what a staged feed must satisfy. This
module prepares a staged polars frame for it (:func:`prepare_frame`: derived ``_check_*``
columns for rules that need more than one frame, lists joined with ``;``), hands it to GX
through ``to_pandas`` on an ephemeral context (GX 1.x has no polars support), and returns a
:class:`QualityReport`: verdict per severity, one :class:`RuleOutcome` per expectation with
a few unexpected values (personal columns masked), the GX result JSON and a self-contained
HTML page an analyst can open without network access.

No Dagster import here; ``defs/quality`` wraps it in asset checks. GX itself (seconds to
import) is imported on first validation, not when this module is imported, or while a
caller that knows a validation is coming waits anyway (:func:`load_great_expectations`).
"""

from __future__ import annotations

import html
import json
import math
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.geography import in_force_area
from homicide_assets.lib.registry import Registry, default_registry
from homicide_assets.lib.settings import EXPECTATIONS_DIR
from homicide_assets.lib.staging import FREE_TEXT

LOCAL_TZ = "Europe/London"
SEVERITIES = ("ERROR", "WARN")
#: our severities and GX's own ``severity`` field
GX_SEVERITY = {"ERROR": "critical", "WARN": "warning"}
#: UK postcode as the stager normalises it: upper case, one space before the inward code.
POSTCODE_PATTERN = r"^[A-Z]{1,2}[0-9][A-Z0-9]? [0-9][A-Z]{2}$"
#: Columns the ingest adds to every staged row, with their contract-style types.
METADATA_COLUMNS: dict[str, str] = {
    "_delivery_id": "text", "_partner_id": "text", "_source_file": "text", "_source_line": "int",
    "_extract_date": "date", "_seq": "int", "record_key": "text",
}
#: contract type -> the ``type_`` GX sees for it after :func:`to_pandas`
PANDAS_TYPE: dict[str, str] = {
    "text": "str", "enum": "str", "nhs_number": "str", "postcode": "str", "list": "str",
    "int": "int64", "float": "float64", "bool": "bool", "date": "datetime64", "timestamp": "Timestamp",
}
#: values supplied at validation time (named ``{"$PARAMETER": ...}`` in the suites)
SUITE_PARAMETERS: dict[str, str] = {
    "now": "the validation time (timestamps must not be later)",
    "today": "the validation date in Europe/London (past-event dates must not be later)",
    "permitted_partners": "partners whose data sharing agreement permits the feed (from seeds/)",
}
#: Columns whose values never leave this module unmasked (names, dates of birth, postcodes,
#: pseudonyms, free text, officers' and clinicians' references).
MASK = "<masked>"
_ALSO_MASKED = {"officer_in_case", "attending_officers", "attending_clinician_ref"}


def masked_columns(feed_name: str) -> frozenset[str]:
    """Staged columns of ``feed_name`` whose values are personal or free text."""
    out = set()
    for c in FEEDS[feed_name].columns:
        if c.pseudonymise:
            out.add(f"{c.name}_key")
        if c.personal or c.name in FREE_TEXT or c.name in _ALSO_MASKED:
            out.add(c.name)
    return frozenset(out)


def staged_columns(feed_name: str) -> dict[str, str]:
    """Every column of ``staged/<feed>`` (as the stager writes them) with its contract type."""
    feed = FEEDS[feed_name]
    cols = {c.name: c.type for c in feed.columns if not c.pseudonymise}
    cols.update({f"{c.name}_key": "text" for c in feed.columns if c.pseudonymise})
    cols.update(METADATA_COLUMNS)
    return cols


# ---------------------------------------------------------------------------------------
# Derived columns: rules GX cannot state on one frame, computed here, expected true there.
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Derived:
    """A ``_check_*`` column added before validation."""

    description: str
    inputs: tuple[str, ...]
    #: the rule the suite expects of it (``None``: a helper other expectations compare)
    rule_id: str | None = None
    rule: str = ""


def _derived_columns() -> dict[str, dict[str, Derived]]:
    out: dict[str, dict[str, Derived]] = {}
    for feed in FEEDS.values():
        derived: dict[str, Derived] = {}
        for earlier, later in feed.date_order:
            types = feed.column(earlier).type, feed.column(later).type
            if types == ("date", "timestamp"):
                derived[f"_check_{later}_date"] = Derived(
                    f"the Europe/London calendar date of {later}, to compare with {earlier}", (later,))
            elif types == ("timestamp", "date"):  # pragma: no cover - not in the contract today
                derived[f"_check_{earlier}_date"] = Derived(
                    f"the Europe/London calendar date of {earlier}, to compare with {later}", (earlier,))
        if {"incident_lat", "incident_lon"} <= set(feed.column_names):
            derived["_check_incident_in_force_area"] = Derived(
                "lib.geography.in_force_area(incident_lat, incident_lon): inside the seven authorities "
                "or within the 2 km margin; null when a coordinate is missing",
                ("incident_lat", "incident_lon"), "incident.force_area",
                "incident_lat, incident_lon lie inside the force area (plus a small margin)")
        if feed.name == "death_report_persons":
            derived["_check_report_id_in_death_reports"] = Derived(
                "report_id is among the report ids of staged/death_reports (every delivery so far)",
                ("report_id",), "report_id.exists",
                "report_id exists in death_reports (checked across deliveries)")
        for column, what in (("trust_code", "the partner id's trust"), ("la_code", "the partner's own GSS code")):
            if column in feed.column_names:
                derived[f"_check_{column}_is_partners_own"] = Derived(
                    f"{column} equals the delivering partner's id or its organisation code in seeds/partners.csv",
                    (column, "_partner_id"), f"{column}.own",
                    f"{column} is {what}")
        if derived:
            out[feed.name] = derived
    return out


DERIVED_COLUMNS: dict[str, dict[str, Derived]] = _derived_columns()


@dataclass(frozen=True)
class ValidationInputs:
    """What a suite needs beyond the frame itself."""

    registry: Registry | None = None
    #: report ids staged in death_reports (required for death_report_persons)
    known_report_ids: Iterable[str] | pl.Series | None = None
    now: datetime | None = None


def _own_codes(registry: Registry) -> list[str]:
    """``<partner_id>|<code>`` for each partner's own codes (its id and its organisation code)."""
    return sorted({f"{p.partner_id}|{code.strip().lower()}" for p in registry.partners.values()
                   for code in (p.partner_id, p.org_code) if code})


def prepare_frame(feed_name: str, frame: pl.DataFrame, inputs: ValidationInputs | None = None) -> pl.DataFrame:
    """The staged frame as the suite sees it: ``_check_*`` columns added, lists joined by ``;``."""
    inputs = inputs or ValidationInputs()
    feed = FEEDS[feed_name]
    out = frame
    for name, d in DERIVED_COLUMNS.get(feed_name, {}).items():
        if name.endswith("_date") and d.rule_id is None:
            src = d.inputs[0]
            if src in out.columns:
                out = out.with_columns(_local_date(out, src).alias(name))
        elif name == "_check_incident_in_force_area":
            if {"incident_lat", "incident_lon"} <= set(out.columns):
                out = out.with_columns(_force_area_column(out))
        elif name == "_check_report_id_in_death_reports":
            if inputs.known_report_ids is None:
                raise ValueError(
                    "death_report_persons needs the report ids of staged/death_reports (known_report_ids) "
                    "to check that every person refers to an existing death report")
            known = pl.Series("k", list(inputs.known_report_ids) if not isinstance(inputs.known_report_ids, pl.Series)
                              else inputs.known_report_ids, dtype=pl.String)
            if "report_id" in out.columns:
                report_id = pl.col("report_id").cast(pl.String, strict=False)
                out = out.with_columns(
                    pl.when(report_id.is_null()).then(None).otherwise(report_id.is_in(known.implode())).alias(name))
        elif name.endswith("_is_partners_own"):
            column = d.inputs[0]
            if column in out.columns and "_partner_id" in out.columns:
                allowed = _own_codes(inputs.registry or default_registry())
                code = pl.col(column).cast(pl.String, strict=False)
                pair = pl.concat_str([pl.col("_partner_id").cast(pl.String, strict=False), pl.lit("|"),
                                      code.str.strip_chars().str.to_lowercase()])
                out = out.with_columns(
                    pl.when(pl.col(column).is_null()).then(None).otherwise(pair.is_in(allowed)).alias(name))
    list_cols = [c.name for c in feed.columns if c.type == "list" and c.name in out.columns]
    if list_cols:
        out = out.with_columns([
            pl.when(pl.col(c).list.len() > 0).then(pl.col(c).list.join(";")).otherwise(None).alias(c)
            if out.schema[c] == pl.List(pl.String) else pl.col(c)
            for c in list_cols
        ])
    return out


def _local_date(frame: pl.DataFrame, column: str) -> pl.Expr:
    """The Europe/London calendar date of a timestamp column (null when it is not a timestamp)."""
    dtype = frame.schema[column]
    if isinstance(dtype, pl.Datetime):
        e = pl.col(column)
        return (e.dt.convert_time_zone(LOCAL_TZ) if dtype.time_zone else e).dt.date()
    if dtype == pl.Date:
        return pl.col(column)
    return pl.lit(None, dtype=pl.Date)


def _force_area_column(frame: pl.DataFrame) -> pl.Series:
    name = "_check_incident_in_force_area"
    if frame.height == 0:
        return pl.Series(name, [], dtype=pl.Boolean)
    coords = frame.select(pl.col("incident_lat").cast(pl.Float64, strict=False),
                          pl.col("incident_lon").cast(pl.Float64, strict=False))
    # Many deaths share a location (a hospital, a street): test each distinct point once.
    distinct = coords.drop_nulls().unique()
    inside = in_force_area(distinct.get_column("incident_lat").to_numpy(),
                           distinct.get_column("incident_lon").to_numpy())
    lookup = distinct.with_columns(pl.Series("__inside", inside, dtype=pl.Boolean))
    joined = coords.with_row_index("__i").join(lookup, on=["incident_lat", "incident_lon"], how="left").sort("__i")
    return joined.get_column("__inside").alias(name)


def to_pandas(frame: pl.DataFrame):
    """The hand-over to GX, shaped for GX's fast (vectorised) pandas paths.

    Dates become ``datetime64[ns]`` (GX compares only nanosecond datetimes without a Python
    loop); integer and boolean columns without nulls stay NumPy, those with nulls become
    pandas' nullable ``Int64`` / ``boolean`` (so an integer column never turns into floats).
    """
    import pandas as pd

    casts = [pl.col(c).cast(pl.Datetime("ns")) for c, t in frame.schema.items() if t == pl.Date]
    if casts:
        frame = frame.with_columns(casts)
    pdf = frame.to_pandas()
    nulls = frame.null_count().row(0, named=True) if frame.width else {}
    for c, t in frame.schema.items():
        if (t.is_integer() or t == pl.Boolean) and (nulls[c] or frame.height == 0):
            series = frame.get_column(c)
            mask = series.is_null().to_numpy()
            if t == pl.Boolean:
                pdf[c] = pd.arrays.BooleanArray(series.fill_null(False).to_numpy(), mask)
            else:
                pdf[c] = pd.arrays.IntegerArray(series.cast(pl.Int64).fill_null(0).to_numpy(), mask)
    return pdf


# ---------------------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------------------

def suite_path(feed_name: str, directory: Path = EXPECTATIONS_DIR) -> Path:
    return Path(directory) / f"{feed_name}.json"


def load_suite(feed_name: str, directory: Path = EXPECTATIONS_DIR) -> dict:
    """The committed suite of ``feed_name`` as a dict (``expectations/<feed>.json``)."""
    return json.loads(suite_path(feed_name, directory).read_text(encoding="utf-8"))


def suite_parameter_values(feed_name: str, registry: Registry | None = None, now: datetime | None = None) -> dict:
    """Values for the suite's ``$PARAMETER`` references at validation time."""
    registry = registry or default_registry()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    today = now.astimezone(ZoneInfo(LOCAL_TZ)).date()
    permitted = sorted(a.partner_id for a in registry.agreements.values() if feed_name in a.permitted_feeds)
    return {"now": now, "today": datetime.combine(today, dtime()), "permitted_partners": permitted}


# ---------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------

@dataclass
class RuleOutcome:
    """How one expectation fared."""

    rule_id: str
    rule: str
    severity: str
    expectation_type: str
    columns: list[str]
    success: bool
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    unexpected_sample: list[str] = field(default_factory=list)
    observed_value: Any = None
    exception: str | None = None

    def summary(self) -> dict:
        out = {"rule_id": self.rule_id, "severity": self.severity, "success": self.success, "rule": self.rule,
               "columns": self.columns, "unexpected_count": self.unexpected_count}
        if self.unexpected_sample:
            out["unexpected_sample"] = self.unexpected_sample
        if self.exception:
            out["exception"] = self.exception
        return out


@dataclass
class QualityReport:
    """The outcome of one suite on one staged frame."""

    feed: str
    rows: int
    outcomes: list[RuleOutcome]
    gx_result: dict
    validated_at: datetime
    timings: dict[str, float]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def passed(self, severity: str) -> bool:
        return all(o.success for o in self.outcomes if o.severity == severity)

    def failures(self, severity: str | None = None) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.success and (severity is None or o.severity == severity)]

    def outcome(self, rule_id: str) -> RuleOutcome:
        for o in self.outcomes:
            if o.rule_id == rule_id or o.rule_id == f"{self.feed}.{rule_id}":
                return o
        raise KeyError(rule_id)

    def summary(self, severity: str | None = None) -> dict:
        chosen = [o for o in self.outcomes if severity is None or o.severity == severity]
        return {
            "feed": self.feed,
            "severity": severity or "ALL",
            "rows": self.rows,
            "expectations": len(chosen),
            "passed": sum(o.success for o in chosen),
            "failed": [o.summary() for o in chosen if not o.success],
            "validated_at": self.validated_at.isoformat(timespec="seconds"),
            "seconds": round(sum(self.timings.values()), 3),
        }

    def to_html(self) -> str:
        return render_html(self)

    def write(self, folder: Path, stem: str | None = None, keep: int = 100) -> dict[str, Path]:
        """Write ``<stem>.html`` and ``<stem>.json`` (masked GX result) into ``folder``; also ``latest.*``.

        Only the newest ``keep`` validations are kept (stems sort by time)."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = stem or self.validated_at.strftime("%Y%m%dT%H%M%S")
        html_path, json_path = folder / f"{stem}.html", folder / f"{stem}.json"
        page = self.to_html()
        doc = json.dumps({"summary": self.summary(), "gx_result": self.gx_result}, indent=1, default=str)
        for path, text in ((html_path, page), (json_path, doc), (folder / "latest.html", page),
                           (folder / "latest.json", doc)):
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
        older = sorted(p for p in folder.glob("*.html") if p.stem != "latest")[:-keep]
        for old in older:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return {"html": html_path, "json": json_path}


# ---------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------

_GX_LOCK = threading.Lock()
_GX_STATE: dict[str, Any] = {}


def load_great_expectations() -> None:
    """Import Great Expectations and make this process's context now, in this thread.

    Importing GX takes seconds (pandas, scipy.stats, altair and GX's own modules); a caller
    that must wait anyway before validating (``build``, between its two looks at landing) loads
    it here, so the wait and the import overlap. Not in a thread of its own: two threads
    importing the same packages at once can meet in a circular import, which Python reports as
    a deadlock error in one of them. If the import fails here, the first validation imports GX
    again and fails in its own check.
    """
    with _GX_LOCK:
        try:
            _gx_context()
        except Exception:  # noqa: BLE001 - validation repeats the import and reports it
            pass


def _gx_context() -> None:
    """The ephemeral GX context and pandas data source of this process (made once; hold ``_GX_LOCK``)."""
    if "context" not in _GX_STATE:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        _GX_STATE["gx"] = gx
        _GX_STATE["context"] = context
        _GX_STATE["datasource"] = context.data_sources.add_pandas("staged_frames")
        _GX_STATE["batch_definitions"] = {}


def _gx_batch_definition(feed_name: str):
    """One ephemeral GX context per process, one pandas dataframe asset per feed (hold ``_GX_LOCK``)."""
    _gx_context()
    bds = _GX_STATE["batch_definitions"]
    if feed_name not in bds:
        asset = _GX_STATE["datasource"].add_dataframe_asset(f"staged_{feed_name}")
        bds[feed_name] = asset.add_batch_definition_whole_dataframe("whole_frame")
    return _GX_STATE["gx"], bds[feed_name]


def validate_staged(
    feed_name: str,
    frame: pl.DataFrame,
    inputs: ValidationInputs | None = None,
    suite: Mapping | None = None,
    severities: Iterable[str] = SEVERITIES,
    sample_size: int = 5,
) -> QualityReport:
    """Run the feed's suite (``expectations/<feed>.json`` unless ``suite`` is given) on a staged frame."""
    inputs = inputs or ValidationInputs()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    suite = dict(suite) if suite is not None else load_suite(feed_name)
    wanted = set(severities)
    expectations = [e for e in suite["expectations"] if e.get("meta", {}).get("severity", "ERROR") in wanted]
    prepared = prepare_frame(feed_name, frame, inputs)
    timings["prepare"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    pdf = to_pandas(prepared)
    timings["to_pandas"] = time.perf_counter() - t1
    params = suite_parameter_values(feed_name, inputs.registry, inputs.now)
    now = params["now"]
    with _GX_LOCK:
        t2 = time.perf_counter()
        gx, batch_definition = _gx_batch_definition(feed_name)
        timings["gx_setup"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        batch = batch_definition.get_batch(batch_parameters={"dataframe": pdf})
        # Pass 1 decides every rule cheaply; pass 2 describes only the rules that failed.
        first = batch.validate(
            gx.ExpectationSuite(name=suite["name"], expectations=expectations, meta=suite.get("meta")),
            result_format={"result_format": "BOOLEAN_ONLY"}, expectation_parameters=params,
        ).to_json_dict()
        failed_ids = {r["expectation_config"]["meta"].get("rule_id") for r in first["results"] if not r["success"]}
        result_doc = first
        if failed_ids:
            second = batch.validate(
                gx.ExpectationSuite(name=suite["name"], meta=suite.get("meta"), expectations=[
                    e for e in expectations if e["meta"]["rule_id"] in failed_ids]),
                result_format={"result_format": "SUMMARY", "partial_unexpected_count": sample_size},
                expectation_parameters=params,
            ).to_json_dict()
            described = {r["expectation_config"]["meta"].get("rule_id"): r for r in second["results"]}
            result_doc["results"] = [described.get(r["expectation_config"]["meta"].get("rule_id"), r)
                                     for r in first["results"]]
            result_doc["statistics"] = first["statistics"]
        timings["validate"] = time.perf_counter() - t3
    masked = masked_columns(feed_name)
    outcomes = []
    for res in result_doc["results"]:
        outcome = _outcome(res, masked, sample_size)
        outcomes.append(outcome)
    order = {e["meta"]["rule_id"]: i for i, e in enumerate(expectations)}
    outcomes.sort(key=lambda o: order.get(o.rule_id, len(order)))
    result_doc["results"].sort(key=lambda r: order.get(r["expectation_config"]["meta"].get("rule_id"), len(order)))
    return QualityReport(feed=feed_name, rows=frame.height, outcomes=outcomes, gx_result=result_doc,
                         validated_at=now, timings=timings)


def _mask_value(value: Any, columns: list[str], masked: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if k in masked else v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and len(columns) == len(value) and len(columns) > 1:
        return [MASK if c in masked else v for c, v in zip(columns, value)]
    return MASK if any(c in masked for c in columns) else value


def _outcome(res: dict, masked: frozenset[str], sample_size: int) -> RuleOutcome:
    """One GX expectation result as a :class:`RuleOutcome`; masks values in ``res`` in place."""
    config = res["expectation_config"]
    meta = config.get("meta", {})
    kwargs = config.get("kwargs", {})
    columns = [c for c in (kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B")) if c]
    columns += list(kwargs.get("column_list") or [])
    result = res.get("result") or {}
    for key in ("partial_unexpected_list", "unexpected_list"):
        if key in result:
            result[key] = [_mask_value(v, columns, masked) for v in result[key]]
    if "partial_unexpected_counts" in result:
        result["partial_unexpected_counts"] = [
            {**c, "value": _mask_value(c.get("value"), columns, masked)} for c in result["partial_unexpected_counts"]
        ]
    sample = [_display(v) for v in result.get("partial_unexpected_list", [])[:sample_size]]
    exception = None
    info = res.get("exception_info") or {}
    if isinstance(info, dict) and info.get("raised_exception"):
        exception = info.get("exception_message") or "exception while evaluating the expectation"
        info["exception_traceback"] = None  # tracebacks can quote data; the message is enough
    elif isinstance(info, dict):
        for v in info.values():  # GX 1.x keys exception info by metric id
            if isinstance(v, dict) and v.get("raised_exception"):
                exception = v.get("exception_message") or "exception while evaluating the expectation"
                v["exception_traceback"] = None
    count = result.get("unexpected_count")
    percent = result.get("unexpected_percent")
    return RuleOutcome(
        rule_id=meta.get("rule_id", config.get("type")),
        rule=meta.get("rule", config.get("description") or config.get("type")),
        severity=meta.get("severity", "ERROR"),
        expectation_type=config["type"],
        columns=meta.get("columns") or columns,
        success=bool(res.get("success")) and exception is None,
        unexpected_count=int(count) if count is not None else None,
        unexpected_percent=None if percent is None or (isinstance(percent, float) and math.isnan(percent))
        else round(float(percent), 4),
        unexpected_sample=sample,
        observed_value=result.get("observed_value"),
        exception=exception,
    )


def _display(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "null"
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(_display(v) for v in value) + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_display(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (datetime, date, np.datetime64)):
        return str(value)
    return str(value)


# ---------------------------------------------------------------------------------------
# HTML: one self-contained page per validation (no scripts, no network).
# ---------------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1b1b1b;max-width:75rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem}
.verdict{display:inline-block;padding:.25rem .6rem;border-radius:.3rem;font-weight:600;color:#fff}
.pass{background:#1d7a3a}.fail{background:#b3261e}.warn{background:#a05a00}
table{border-collapse:collapse;width:100%;font-size:.9rem}th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;
text-align:left;vertical-align:top}th{background:#f3f3f3}tr.failed td{background:#fff3f2}
code{font-size:.85rem;background:#f5f5f5;padding:0 .2rem}.muted{color:#666;font-size:.85rem}
details pre{white-space:pre-wrap;font-size:.75rem;background:#f8f8f8;padding:1rem;max-height:40rem;overflow:auto}
"""


def _setup_note(report: QualityReport) -> str:
    setup = report.timings.get("gx_setup", 0.0)
    return f" (plus {setup:.1f} s starting Great Expectations in this process)" if setup >= 0.5 else ""


def render_html(report: QualityReport) -> str:
    """A self-contained HTML page for one validation: verdicts, every rule, masked samples, the GX JSON."""
    e = html.escape
    error_ok, warn_ok = report.passed("ERROR"), report.passed("WARN")
    verdict = ('<span class="verdict pass">contract holds</span>' if error_ok
               else '<span class="verdict fail">contract broken: downstream blocked</span>')
    if error_ok and not warn_ok:
        verdict += ' <span class="verdict warn">warnings for analysts</span>'
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>Data quality: {e(report.feed)} ({e(report.validated_at.isoformat(timespec='seconds'))})</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Data quality: <code>staged/{e(report.feed)}</code></h1>",
        f"<p>{verdict}</p>",
        f"<p class=\"muted\">Suite <code>expectations/{e(report.feed)}.json</code> (Great Expectations), "
        f"validated {e(report.validated_at.isoformat(timespec='seconds'))} on {report.rows:,} rows in "
        f"{sum(v for k, v in report.timings.items() if k != 'gx_setup'):.2f} s"
        f"{_setup_note(report)}. ERROR rules block everything downstream; WARN rules inform. "
        f"Values of personal and free-text columns are shown as <code>{e(MASK)}</code>.</p>",
    ]
    for severity in SEVERITIES:
        chosen = [o for o in report.outcomes if o.severity == severity]
        if not chosen:
            continue
        failed = [o for o in chosen if not o.success]
        parts.append(f"<h2>{severity}: {len(chosen) - len(failed)} of {len(chosen)} rules hold</h2>")
        parts.append("<table><thead><tr><th>status</th><th>rule</th><th>columns</th><th>rows breaking it</th>"
                     "<th>examples</th><th>rule id / expectation</th></tr></thead><tbody>")
        for o in sorted(chosen, key=lambda o: o.success):
            count = "" if o.unexpected_count is None else f"{o.unexpected_count:,}"
            if o.unexpected_percent is not None and o.unexpected_count:
                count += f" ({o.unexpected_percent:.2f}%)"
            examples = e(", ".join(o.unexpected_sample))
            if o.exception:
                examples = f"<em>could not evaluate: {e(o.exception)}</em>"
            elif o.observed_value is not None and not o.unexpected_sample:
                examples = f"observed: {e(_display(o.observed_value))}"
            parts.append(
                f"<tr class=\"{'' if o.success else 'failed'}\"><td>{'holds' if o.success else 'BROKEN'}</td>"
                f"<td>{e(o.rule)}</td><td>{e(', '.join(o.columns))}</td><td>{count}</td><td>{examples}</td>"
                f"<td><code>{e(o.rule_id)}</code><br><span class=\"muted\">{e(o.expectation_type)}</span></td></tr>")
        parts.append("</tbody></table>")
    raw = json.dumps(report.gx_result, indent=1, default=str)
    parts.append(f"<details><summary>Great Expectations result (JSON, masked)</summary><pre>{e(raw)}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts)
