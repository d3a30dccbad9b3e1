"""From raw text rows to typed, normalised, pseudonymised staged tables.

:func:`stage_feed` applies the contract in ``lib/feeds.py`` column by column with polars
expressions: UK day-first and ISO dates, ``Y/N``/``1/0``/``true/false`` booleans,
case-insensitive enumerations, ``;`` lists, postcodes, the NHS number check digit, the
force area, date order. A row that breaks any rule is kept out of the staged table and
returned in ``rejects`` with its file, line, column, rule and (masked) value. Identifiers
(NHS number, police nominal id, phone) are replaced by keyed pseudonyms. Within a feed
the newest extract wins per record key; the losers are counted as superseded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS, Column, Feed
from homicide_assets.lib.geography import in_force_area
from homicide_assets.lib.pseudonym import pseudonym, pseudonymise_series
from homicide_assets.lib.registry import Registry

LOCAL_TZ = "Europe/London"
TIMESTAMP_DTYPE = pl.Datetime("us", LOCAL_TZ)

#: Free-text columns: their content is never copied into quarantine, only its length.
FREE_TEXT = frozenset(
    {"narrative", "assault_location_text", "recommendation_text", "evidence", "cause_1a", "cause_1b",
     "cause_2", "review_title"}
)
POSTCODE_RE = r"^[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}$"  # without the space
TRUE_VALUES = ("true", "y", "1")
FALSE_VALUES = ("false", "n", "0")

REJECT_SCHEMA = {
    "_delivery_id": pl.String, "_partner_id": pl.String, "_source_file": pl.String,
    "_source_line": pl.Int64, "column": pl.String, "rule": pl.String, "value": pl.String,
    "reason": pl.String,
}


@dataclass
class StageResult:
    """A staged table, the rows refused with why, and the rows an extract superseded."""

    staged: pl.DataFrame
    rejects: pl.DataFrame  # one row per broken rule (a row can break several)
    superseded: pl.DataFrame  # _delivery_id, _source_line of rows replaced by a newer extract
    #: how the table was made: every row staged ("whole", with why) or held rows kept ("held")
    how: str = "whole"
    #: the deliveries whose raw partitions were staged (set by ``lib.ingest.stage_feed_held``)
    deliveries: tuple[str, ...] = ()

    def counts_by_delivery(self, raw: pl.DataFrame) -> pl.DataFrame:
        """rows_read, rows_staged, rows_quarantined, rows_superseded per delivery."""
        return self.counts(rows_read(raw))

    def counts(self, read: pl.DataFrame) -> pl.DataFrame:
        """:meth:`counts_by_delivery` from the rows read per delivery (:func:`rows_read`)."""
        staged = self.staged.group_by("_delivery_id").agg(pl.len().alias("rows_staged"))
        quarantined = (
            self.rejects.unique(["_delivery_id", "_source_line"])
            .group_by("_delivery_id").agg(pl.len().alias("rows_quarantined"))
        )
        superseded = self.superseded.group_by("_delivery_id").agg(pl.len().alias("rows_superseded"))
        out = read
        for part in (staged, quarantined, superseded):
            out = out.join(part, on="_delivery_id", how="left")
        return out.with_columns(pl.exclude("_delivery_id").fill_null(0).cast(pl.Int64))


def rows_read(raw: pl.DataFrame) -> pl.DataFrame:
    """Raw rows per delivery (``_delivery_id``, ``rows_read``)."""
    return raw.group_by("_delivery_id").agg(pl.len().alias("rows_read"))


# ---------------------------------------------------------------------------------------
# Value parsers: each returns (typed expression, failure condition) over a text column.
# ---------------------------------------------------------------------------------------

def _clean(name: str) -> pl.Expr:
    """Trim and collapse internal runs of spaces; blank becomes null."""
    e = pl.col(name).str.strip_chars().str.replace_all(r"[ \t]+", " ")
    return pl.when(e == "").then(None).otherwise(e)


def parse_date_expr(e: pl.Expr) -> pl.Expr:
    """ISO ``2026-01-05`` (optionally with a zero time) or UK day-first ``05/01/2026``."""
    iso = e.str.extract(r"^(\d{4}-\d{2}-\d{2})(?:[ T]00:00(?::00(?:\.0+)?)?)?$", 1).str.to_date("%Y-%m-%d", strict=False)
    parts = e.str.extract_groups(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
    day_first = pl.concat_str(
        [parts.struct.field("3"), parts.struct.field("2").str.zfill(2), parts.struct.field("1").str.zfill(2)],
        separator="-",
    ).str.to_date("%Y-%m-%d", strict=False)
    return pl.coalesce(iso, day_first)


def parse_timestamp_expr(e: pl.Expr) -> pl.Expr:
    """ISO 8601 with ``T`` or space, optional seconds and fraction, optional offset; or UK
    day-first ``05/01/2026 14:30``. Without an offset the time is local (Europe/London)."""
    e = e.str.strip_chars()
    has_offset = e.str.contains(r"(Z|[+-]\d{2}:?\d{2})$")
    iso_norm = e.str.replace(" ", "T").str.replace(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})$", "${1}:00")
    with_offset = (
        iso_norm.str.replace(r"Z$", "+00:00")
        .str.replace(r"([+-]\d{2})(\d{2})$", "${1}:${2}")
        .str.to_datetime("%Y-%m-%dT%H:%M:%S%.f%:z", strict=False, time_unit="us")
        .dt.convert_time_zone(LOCAL_TZ)
    )
    naive_iso = iso_norm.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", strict=False, time_unit="us")
    parts = e.str.extract_groups(r"^(\d{1,2})/(\d{1,2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?$")
    naive_uk = pl.concat_str(
        [
            parts.struct.field("3"), pl.lit("-"), parts.struct.field("2").str.zfill(2), pl.lit("-"),
            parts.struct.field("1").str.zfill(2), pl.lit("T"), parts.struct.field("4").str.zfill(2), pl.lit(":"),
            parts.struct.field("5"), pl.lit(":"), parts.struct.field("6").fill_null("00"),
        ]
    ).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False, time_unit="us")
    local = pl.coalesce(naive_iso, naive_uk).dt.replace_time_zone(
        LOCAL_TZ, ambiguous="earliest", non_existent="null"
    )
    return pl.when(has_offset).then(with_offset).otherwise(local)


def parse_bool_expr(e: pl.Expr) -> pl.Expr:
    low = e.str.strip_chars().str.to_lowercase()
    return pl.when(low.is_in(TRUE_VALUES)).then(True).when(low.is_in(FALSE_VALUES)).then(False).otherwise(None)


def normalise_postcode_expr(e: pl.Expr) -> pl.Expr:
    """Upper case, one space before the inward code; null when not a UK postcode shape."""
    compact = e.str.to_uppercase().str.replace_all(r"\s+", "")
    return pl.when(compact.str.contains(POSTCODE_RE)).then(
        pl.concat_str([compact.str.slice(0, compact.str.len_chars() - 3), pl.lit(" "), compact.str.slice(-3)])
    ).otherwise(None)


def nhs_number_is_valid(digits: pl.Expr) -> pl.Expr:
    """Modulus 11 check digit over a 10-digit string (NHS Data Dictionary)."""
    weights = range(10, 1, -1)
    total = sum(digits.str.slice(i, 1).cast(pl.Int64, strict=False) * w for i, w in enumerate(weights))
    check = (11 - total % 11) % 11
    return (
        digits.str.contains(r"^\d{10}$")
        & (check != 10)
        & (check == digits.str.slice(9, 1).cast(pl.Int64, strict=False))
    )


def nhs_digits_expr(e: pl.Expr) -> pl.Expr:
    return e.str.replace_all(r"[\s-]", "")


def normalise_phone_expr(e: pl.Expr) -> pl.Expr:
    """UK numbers in any common format to national form ``07700900123``; null if not UK-shaped."""
    digits = e.str.replace_all(r"[\s\-().]", "")
    national = (
        pl.when(digits.str.starts_with("+44")).then(pl.concat_str([pl.lit("0"), digits.str.slice(3)]))
        .when(digits.str.starts_with("0044")).then(pl.concat_str([pl.lit("0"), digits.str.slice(4)]))
        .otherwise(digits)
    )
    national = national.str.replace(r"^0\(?0\)?", "0")
    return pl.when(national.str.contains(r"^0\d{9,10}$")).then(national).otherwise(None)


def enum_expr(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars().str.to_lowercase().str.replace_all(r"[ \-]+", "_")


def split_list_expr(e: pl.Expr, lower: bool) -> pl.Expr:
    items = e.str.split(";").list.eval(pl.element().str.strip_chars())
    if lower:
        items = items.list.eval(pl.element().str.to_lowercase().str.replace_all(r"[ \-]+", "_"))
    return items.list.eval(pl.element().filter(pl.element() != ""))


# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Parsed:
    value: pl.Expr
    failures: list[tuple[str, pl.Expr, str]]  # (rule, failed condition, plain description)


def _column_rules(col: Column, feed: Feed, registry: Registry | None) -> _Parsed:
    raw = _clean(col.name)
    present = raw.is_not_null()
    fails: list[tuple[str, pl.Expr, str]] = []
    if col.type in ("text", "nhs_number"):
        value = raw
        if col.type == "nhs_number":
            value = nhs_digits_expr(raw)
            fails.append(("nhs_check_digit", present & ~nhs_number_is_valid(value).fill_null(False),
                          "NHS number must be 10 digits with a valid modulus-11 check digit"))
        if col.name == "phone":
            value = normalise_phone_expr(raw)
            fails.append(("phone_format", present & value.is_null(), "phone must be a UK telephone number"))
        if col.pattern:
            fails.append(("pattern", present & ~raw.str.contains(col.pattern).fill_null(False),
                          f"must match {col.pattern}"))
        if col.values:
            value = raw.str.to_uppercase() if col.name == "la_code" else raw
            fails.append(("enum", present & ~value.is_in(list(col.values)).fill_null(False),
                          f"must be one of {', '.join(col.values)}"))
        if col.max_length:
            fails.append(("max_length", present & (raw.str.len_chars() > col.max_length).fill_null(False),
                          f"at most {col.max_length} characters"))
    elif col.type == "enum":
        value = enum_expr(raw)
        fails.append(("enum", present & ~value.is_in(list(col.values)).fill_null(False),
                      f"must be one of {', '.join(col.values)}"))
    elif col.type == "postcode":
        value = normalise_postcode_expr(raw)
        fails.append(("postcode_format", present & value.is_null(), "must be a UK postcode"))
    elif col.type == "date":
        value = parse_date_expr(raw)
        fails.append(("date_format", present & value.is_null(),
                      "must be an ISO 8601 date (2026-01-05) or UK day-first (05/01/2026)"))
    elif col.type == "timestamp":
        value = parse_timestamp_expr(raw)
        fails.append(("timestamp_format", present & value.is_null(),
                      "must be an ISO 8601 timestamp, local time Europe/London unless an offset is given"))
    elif col.type == "bool":
        value = parse_bool_expr(raw)
        fails.append(("bool_format", present & value.is_null(), "must be true/false, Y/N or 1/0"))
    elif col.type == "int":
        value = raw.str.replace(r"^\+", "").cast(pl.Int64, strict=False)
        fails.append(("int_format", present & value.is_null(), "must be a whole number"))
    elif col.type == "float":
        value = raw.cast(pl.Float64, strict=False)
        fails.append(("float_format", present & (value.is_null() | value.is_nan()), "must be a number"))
    elif col.type == "list":
        value = split_list_expr(raw, lower=bool(col.values))
        if col.values:
            fails.append(("enum", present & ~value.list.eval(pl.element().is_in(list(col.values))).list.all().fill_null(True),
                          f"each item must be one of {', '.join(col.values)}"))
        if col.pattern:
            fails.append(("pattern", present & ~value.list.eval(pl.element().str.contains(col.pattern)).list.all().fill_null(True),
                          f"each item must match {col.pattern}"))
    else:  # pragma: no cover - the contract has no other types
        raise ValueError(col.type)
    if col.min_value is not None and col.type in ("int", "float"):
        fails.append(("range", (value < col.min_value).fill_null(False), f"must be >= {col.min_value:g}"))
    if col.max_value is not None and col.type in ("int", "float"):
        fails.append(("range", (value > col.max_value).fill_null(False), f"must be <= {col.max_value:g}"))
    if col.required:
        fails.insert(0, ("required", raw.is_null(), "is required"))
    return _Parsed(value=value, failures=fails)


def _masked_value(col: Column, key: bytes) -> pl.Expr:
    raw = pl.col(col.name)
    if col.name in FREE_TEXT:
        return pl.concat_str([pl.lit("<"), raw.str.len_chars().cast(pl.String), pl.lit(" characters>")])
    if col.personal or col.pseudonymise:
        return pl.concat_str([pl.lit("pseudonym:"), raw.map_elements(lambda v: pseudonym(v, key, col.name),
                                                                      return_dtype=pl.String)])
    return raw.str.slice(0, 120)


def stage_feed(
    feed_name: str,
    raw: pl.DataFrame,
    key: bytes,
    registry: Registry | None = None,
    known_report_ids: pl.Series | None = None,
    now: datetime | None = None,
) -> StageResult:
    """Type, check, pseudonymise and de-duplicate every raw row of one feed.

    ``raw`` holds the text rows of any number of deliveries with the metadata columns
    ``_delivery_id``, ``_partner_id``, ``_source_file``, ``_source_line``, ``_extract_date``
    and ``_seq``. ``known_report_ids`` are the report ids staged in ``death_reports``
    (for ``death_report_persons``). ``now`` bounds "not in the future".
    """
    good, rejects = stage_rows(feed_name, raw, key, registry, known_report_ids, now)
    newest, superseded = newest_per_record(good)
    return StageResult(staged=newest, rejects=sort_rejects(rejects), superseded=superseded)


#: Rules whose verdict on a row can change with nothing about the row changing: the clock
#: (``not_in_future``) and the report ids staged in death_reports (``report_exists``). Every
#: other rule reads the row alone (and the key, the registry and the code).
RULES_BEYOND_THE_ROW = ("not_in_future", "report_exists")
#: The order of staged rows within a record key: the newest extract wins (the last).
EXTRACT_ORDER = ["_extract_date", "_seq", "_delivery_id", "_source_line"]
#: Identifies a raw row (a delivery's file and line).
ROW_ID = ["_delivery_id", "_source_line"]


def sort_rejects(rejects: pl.DataFrame) -> pl.DataFrame:
    """Rejects by delivery, line and column; rule and reason order two broken rules of one
    column, so the order is the same however the rows were gathered."""
    return rejects.sort(["_delivery_id", "_source_line", "column", "rule", "reason"])


def newest_per_record(good: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The staged table (the newest extract's row per record key, sorted by record key) and
    the rows it superseded (``_delivery_id``, ``_source_line``), from rows that broke no rule."""
    ordered = good.sort(EXTRACT_ORDER)
    newest = ordered.unique("record_key", keep="last", maintain_order=True)
    superseded = ordered.join(newest.select(ROW_ID), on=ROW_ID, how="anti").select(ROW_ID)
    return newest.sort("record_key"), superseded


def stage_rows(
    feed_name: str,
    raw: pl.DataFrame,
    key: bytes,
    registry: Registry | None = None,
    known_report_ids: pl.Series | None = None,
    now: datetime | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Every raw row on its own: the rows that break no rule (typed, pseudonymised, with their
    record key; before the newest extract wins) and one reject per rule broken (unsorted).

    Each row's outcome depends on the row, ``key``, ``registry``, the code, and for the rules
    in :data:`RULES_BEYOND_THE_ROW` on ``now`` and ``known_report_ids``, never on other rows.
    """
    feed = FEEDS[feed_name]
    now = now or datetime.now(UTC)
    parsed = {c.name: _column_rules(c, feed, registry) for c in feed.columns}
    frame = raw.with_row_index("_row")
    typed = frame.with_columns([p.value.alias(f"__v_{name}") for name, p in parsed.items()])

    checks: list[tuple[str, str, pl.Expr, str]] = []  # (column, rule, failed, description)
    for name, p in parsed.items():
        for rule, failed, text in p.failures:
            checks.append((name, rule, failed, f"{name} {text}"))
    v = lambda n: pl.col(f"__v_{n}")  # noqa: E731
    for earlier, later in feed.date_order:
        a, b = v(earlier), v(later)
        if FEEDS[feed_name].column(earlier).type == "timestamp" or FEEDS[feed_name].column(later).type == "timestamp":
            a = a.dt.date() if FEEDS[feed_name].column(earlier).type == "timestamp" else a
            b = b.dt.date() if FEEDS[feed_name].column(later).type == "timestamp" else b
        checks.append((later, "date_order", (a > b).fill_null(False), f"{earlier} must not be after {later}"))
    for c in feed.columns:
        if c.type == "timestamp":
            checks.append((c.name, "not_in_future", (v(c.name) > pl.lit(now).dt.convert_time_zone(LOCAL_TZ)).fill_null(False),
                           f"{c.name} must not be in the future"))
    if "incident_lat" in feed.column_names:
        lat = typed.get_column("__v_incident_lat").to_numpy()
        lon = typed.get_column("__v_incident_lon").to_numpy()
        lat = np.where(np.isnan(lat.astype(float)), np.nan, lat.astype(float)) if len(lat) else lat
        inside = in_force_area(lat, lon) if len(lat) else np.zeros(0, dtype=bool)
        typed = typed.with_columns(pl.Series("__inside", inside, dtype=pl.Boolean))
        checks.append(("incident_lat", "force_area",
                       v("incident_lat").is_not_null() & v("incident_lon").is_not_null() & ~pl.col("__inside"),
                       "incident coordinates must lie inside the force area (plus a 2 km margin)"))
    if registry is not None:
        own = {"trust_code": "health", "la_code": "local_authority"}
        for column, _sector in own.items():
            if column in feed.column_names:
                allowed = pl.struct(["_partner_id", f"__v_{column}"]).map_elements(
                    lambda s, c=column: _is_own_code(registry, s["_partner_id"], s[f"__v_{c}"]),
                    return_dtype=pl.Boolean,
                )
                checks.append((column, "own_code", v(column).is_not_null() & ~allowed.fill_null(False),
                               f"{column} must be the delivering partner's own code"))
    if known_report_ids is not None and feed_name == "death_report_persons":
        checks.append(("report_id", "report_exists",
                       v("report_id").is_not_null() & ~v("report_id").is_in(known_report_ids.implode()),
                       "report_id must exist in death_reports (across deliveries)"))

    flags = typed.with_columns([f.alias(f"__f{i}") for i, (_, _, f, _) in enumerate(checks)])
    reject_parts = []
    masks = {c.name: _masked_value(c, key) for c in feed.columns}
    for i, (column, rule, _, text) in enumerate(checks):
        bad = flags.filter(pl.col(f"__f{i}"))
        if bad.height:
            reject_parts.append(
                bad.select(
                    "_delivery_id", "_partner_id", "_source_file", "_source_line",
                    pl.lit(column).alias("column"), pl.lit(rule).alias("rule"),
                    masks[column].alias("value"),
                    pl.concat_str([pl.col("_source_file"), pl.lit(": line "), pl.col("_source_line").cast(pl.String),
                                   pl.lit(f": {text}")]).alias("reason"),
                )
            )
    rejects = pl.concat(reject_parts) if reject_parts else pl.DataFrame(schema=REJECT_SCHEMA)
    any_bad = pl.any_horizontal([pl.col(f"__f{i}") for i in range(len(checks))]) if checks else pl.lit(False)
    good = flags.filter(~any_bad)

    out_cols = []
    for c in feed.columns:
        val = pl.col(f"__v_{c.name}")
        if c.pseudonymise:
            continue
        if c.name == "la_code":
            val = val.str.to_uppercase()
        out_cols.append(val.alias(c.name))
    staged = good.select(
        *out_cols,
        *[pl.col(f"__v_{c.name}") for c in feed.columns if c.pseudonymise],
        "_delivery_id", "_partner_id", "_source_file", "_source_line", "_extract_date", "_seq", "_row",
    )
    for c in feed.columns:
        if c.pseudonymise:
            staged = staged.with_columns(
                pseudonymise_series(staged.get_column(f"__v_{c.name}"), key, c.name).alias(f"{c.name}_key")
            ).drop(f"__v_{c.name}")
    staged = staged.with_columns(record_key_expr(feed_name))
    if feed_name == "review_recommendations":
        staged = staged.with_columns(
            pl.when(pl.col("due_on").is_null() & (pl.col("review_type") == "pfd"))
            .then(pl.col("published_on") + pl.duration(days=56)).otherwise(pl.col("due_on")).alias("due_on")
        )
    return staged.drop("_row"), rejects


def record_key_expr(feed_name: str) -> pl.Expr:
    """``<feed>:<partner_id>:<key values joined by |>``: the source record reference."""
    key_cols = FEEDS[feed_name].key
    return pl.concat_str(
        [pl.lit(f"{feed_name}:"), pl.col("_partner_id"), pl.lit(":"),
         pl.concat_str([pl.col(k).cast(pl.String) for k in key_cols], separator="|")]
    ).alias("record_key")


def _is_own_code(registry: Registry, partner_id: str | None, code: str | None) -> bool:
    if partner_id is None or code is None:
        return False
    partner = registry.partner(partner_id)
    if partner is None:
        return False
    code_norm = code.strip().lower()
    return code_norm in {partner_id.lower(), (partner.org_code or "").lower()}


def duplicate_keys_in_file(feed_name: str, parsed: pl.DataFrame) -> pl.DataFrame:
    """Rows of one file whose record key repeats within that file (before typing)."""
    key_cols = list(FEEDS[feed_name].key)
    keys = parsed.select([_clean(k).alias(k) for k in key_cols] + ["_source_line"])
    return keys.filter(pl.struct(key_cols).is_duplicated() & pl.all_horizontal([pl.col(k).is_not_null() for k in key_cols]))
