"""Malformed deliveries for the quality checks: a parameterised catalogue (``--faults``).

Each :class:`FaultSpec` says what is wrong (``kind``), which rule the platform must apply
(``expected_rule``), at what level (``file``, ``row`` or ``column``) and with what outcome
(``quarantine_file``, ``quarantine_rows``, ``drop_columns``, ``no_op``). Its builder makes the
file from a real delivery, so everything but the fault is valid. Row-level faults reuse rows of a
delivered extract under the same extract date and a high sequence number (``__9001``...), so
the rows that stage carry exactly the values already delivered and the ground truth is unchanged.

Another engineer can reuse the catalogue: :data:`FAULT_CATALOGUE` lists the specs;
:func:`write_faults` writes every spec (or a chosen subset) and returns the manifest
``ground_truth/faults.parquet`` (``file``, ``partner_folder``, ``kind``, ``level``,
``expected_rule``, ``expected_outcome``, ``line``, ``column``, ``description``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.registry import Registry
from homicide_assets.lib.synth.deliver import PartnerStyle, csv_bytes, file_name, render_strings

PLAIN = PartnerStyle()


@dataclass
class FaultFile:
    """One malformed file: where it goes, its bytes, and the row/column at fault (if any)."""

    partner_folder: str
    name: str
    data: bytes
    line: int | None = None  # 1-based data row (the header is line 0)
    column: str | None = None


@dataclass
class FaultContext:
    """What builders draw from: delivered rows per feed, a safe extract date per partner feed, sequence numbers."""

    rng: np.random.Generator
    registry: Registry
    templates: dict[tuple[str, str], tuple[date, pl.DataFrame]]
    landing: Path
    next_seq: int = 9001
    rows: int = 5

    def template(self, partner_id: str, feed: str) -> tuple[date, pl.DataFrame]:
        """A delivered extract's date and its first rows (as the contract's columns, typed)."""
        extract_date, frame = self.templates[(partner_id, feed)]
        return extract_date, frame.head(self.rows)

    def seq(self) -> int:
        self.next_seq += 1
        return self.next_seq

    def csv(self, frame: pl.DataFrame, feed: str) -> pl.DataFrame:
        return render_strings(frame, feed, PLAIN, self.rng)

    def name(self, partner_id: str, feed: str, extract_date: date, ext: str = "csv") -> str:
        return file_name(partner_id, feed, extract_date, self.seq(), ext)


@dataclass(frozen=True)
class FaultSpec:
    kind: str
    level: str
    expected_rule: str
    expected_outcome: str
    description: str
    build: Callable[[FaultContext], FaultFile]


def _bytes(strings: pl.DataFrame) -> bytes:
    return csv_bytes(strings, PLAIN)


def _set_cell(
    ctx: FaultContext, partner: str, feed: str, column: str, value: str | None, row: int = 1, ext: str = "csv"
) -> FaultFile:
    """A copy of a delivered extract with one cell replaced (as text)."""
    day, frame = ctx.template(partner, feed)
    strings = ctx.csv(frame, feed)
    row = min(row, strings.height - 1)
    strings = strings.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.lit(value, pl.String))
        .otherwise(pl.col(column))
        .alias(column)
    )
    return FaultFile(partner, ctx.name(partner, feed, day, ext), _bytes(strings), line=row + 1, column=column)


def _whole(ctx: FaultContext, partner: str, feed: str) -> tuple[date, pl.DataFrame]:
    day, frame = ctx.template(partner, feed)
    return day, ctx.csv(frame, feed)


# -- file-level faults -------------------------------------------------------------------


def _bad_file_name(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("wmp", f"wmp_death_reports_{day:%Y-%m-%d}.csv", _bytes(strings))


def _unknown_feed(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("wmp", file_name("wmp", "deaths", day, ctx.seq(), "csv"), _bytes(strings))


def _bad_extract_date(ctx: FaultContext) -> FaultFile:
    _, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("wmp", f"wmp__death_reports__20261341__{ctx.seq()}.csv", _bytes(strings))


def _future_extract_date(ctx: FaultContext) -> FaultFile:
    _, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("wmp", f"wmp__death_reports__20991231__{ctx.seq()}.csv", _bytes(strings))


def _unknown_partner(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("acme", file_name("acme", "death_reports", day, ctx.seq(), "csv"), _bytes(strings))


def _partner_folder_mismatch(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("uhb", ctx.name("wmp", "death_reports", day), _bytes(strings))


def _feed_not_permitted(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile("uhb", ctx.name("uhb", "death_reports", day), _bytes(strings))


def _empty_file(ctx: FaultContext) -> FaultFile:
    day, _ = ctx.template("wmp", "death_reports")
    return FaultFile("wmp", ctx.name("wmp", "death_reports", day), b"")


def _undecodable(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "swbh", "me_deaths")
    strings = strings.with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit("Zo\u00eb"))
        .otherwise(pl.col("forename"))
        .alias("forename")
    )
    data = _bytes(strings).replace("Zo\u00eb".encode("utf-8"), "Zo\u00eb".encode("cp1252"))
    return FaultFile("swbh", ctx.name("swbh", "me_deaths", day), data, line=2, column="forename")


def _header_renamed(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile(
        "wmp",
        ctx.name("wmp", "death_reports", day),
        _bytes(strings.rename({"surname": "last_name"})),
        column="surname",
    )


def _header_missing_column(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "dudley", "safeguarding_contacts")
    return FaultFile(
        "dudley",
        ctx.name("dudley", "safeguarding_contacts", day),
        _bytes(strings.drop("open_case")),
        column="open_case",
    )


def _truncated(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    data = _bytes(strings)
    # Cut inside the last row's narrative, leaving an unterminated quoted field.
    cut = data.rfind(b',"') + 12
    return FaultFile("wmp", ctx.name("wmp", "death_reports", day), data[:cut], line=strings.height)


def _wrong_extension(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "uhb", "me_deaths")
    return FaultFile("uhb", ctx.name("uhb", "me_deaths", day, "xlsx"), _bytes(strings))


def _corrupt_xlsx(ctx: FaultContext) -> FaultFile:
    day, _ = ctx.template("uhcw", "me_deaths")
    return FaultFile(
        "uhcw",
        ctx.name("uhcw", "me_deaths", day, "xlsx"),
        b"PK\x03\x04" + bytes(ctx.rng.integers(0, 256, 300).astype(np.uint8)),
    )


def _identical_redelivery(ctx: FaultContext) -> FaultFile:
    day, _ = ctx.template("wht", "ed_assaults")
    original = ctx.landing / "wht" / file_name("wht", "ed_assaults", day, 0, "csv")
    return FaultFile("wht", ctx.name("wht", "ed_assaults", day), original.read_bytes())


def _extra_column(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    return FaultFile(
        "wmp",
        ctx.name("wmp", "death_reports", day),
        _bytes(strings.with_columns(religion=pl.lit("not recorded"))),
        column="religion",
    )


def _ed_personal_column(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wht", "ed_assaults")
    return FaultFile(
        "wht",
        ctx.name("wht", "ed_assaults", day),
        _bytes(strings.with_columns(patient_name=pl.lit("Jane Doe"))),
        column="patient_name",
    )


# -- row-level faults --------------------------------------------------------------------


def _duplicate_key(ctx: FaultContext) -> FaultFile:
    day, strings = _whole(ctx, "wmp", "death_reports")
    doubled = pl.concat([strings, strings.slice(1, 1)])
    return FaultFile(
        "wmp", ctx.name("wmp", "death_reports", day), _bytes(doubled), line=doubled.height, column="report_id"
    )


def _row_fault(
    partner: str, feed: str, column: str, value: str | None
) -> Callable[[FaultContext], FaultFile]:
    """A builder that sets one cell (row 2) of a delivered extract to ``value``."""
    return lambda ctx: _set_cell(ctx, partner, feed, column, value)


def _bad_nhs(ctx: FaultContext) -> FaultFile:
    day, frame = ctx.template("wht", "me_deaths")
    strings = ctx.csv(frame, "me_deaths")
    valid = strings["nhs_number"].drop_nulls()
    number = valid[0] if len(valid) else "4010232137"
    wrong = number[:9] + str((int(number[9]) + 1) % 10)
    return _set_cell(ctx, "wht", "me_deaths", "nhs_number", wrong)


def _coordinates_outside(ctx: FaultContext) -> FaultFile:
    day, frame = ctx.template("wmp", "death_reports")
    strings = ctx.csv(frame, "death_reports").with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit("51.507400"))
        .otherwise(pl.col("incident_lat"))
        .alias("incident_lat"),
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit("-0.127800"))
        .otherwise(pl.col("incident_lon"))
        .alias("incident_lon"),
    )
    return FaultFile(
        "wmp", ctx.name("wmp", "death_reports", day), _bytes(strings), line=2, column="incident_lat"
    )


FAULT_CATALOGUE: tuple[FaultSpec, ...] = (
    FaultSpec(
        "bad_file_name",
        "file",
        "file_name_pattern",
        "quarantine_file",
        "name does not follow <partner>__<feed>__<YYYYMMDD>[__<seq>].<ext>",
        _bad_file_name,
    ),
    FaultSpec(
        "unknown_feed",
        "file",
        "unknown_feed",
        "quarantine_file",
        "feed name not in the contract",
        _unknown_feed,
    ),
    FaultSpec(
        "bad_extract_date",
        "file",
        "extract_date",
        "quarantine_file",
        "extract date 2026-13-41 does not exist",
        _bad_extract_date,
    ),
    FaultSpec(
        "future_extract_date",
        "file",
        "extract_date_not_in_future",
        "quarantine_file",
        "extract dated 2099-12-31",
        _future_extract_date,
    ),
    FaultSpec(
        "unknown_partner",
        "file",
        "unknown_partner",
        "quarantine_file",
        "partner acme is not in the registry",
        _unknown_partner,
    ),
    FaultSpec(
        "partner_folder_mismatch",
        "file",
        "partner_folder_mismatch",
        "quarantine_file",
        "a wmp file dropped in landing/uhb/",
        _partner_folder_mismatch,
    ),
    FaultSpec(
        "feed_not_permitted",
        "file",
        "feed_not_permitted",
        "quarantine_file",
        "uhb's agreement does not permit death_reports",
        _feed_not_permitted,
    ),
    FaultSpec("empty_file", "file", "empty_file", "quarantine_file", "zero bytes", _empty_file),
    FaultSpec(
        "undecodable_bytes",
        "file",
        "encoding_utf8",
        "quarantine_file",
        "a Windows-1252 byte (0xEB) in a UTF-8 CSV",
        _undecodable,
    ),
    FaultSpec(
        "header_renamed",
        "file",
        "header_mismatch",
        "quarantine_file",
        "surname renamed last_name",
        _header_renamed,
    ),
    FaultSpec(
        "header_missing_column",
        "file",
        "header_mismatch",
        "quarantine_file",
        "required column open_case missing",
        _header_missing_column,
    ),
    FaultSpec(
        "truncated", "file", "truncated", "quarantine_file", "file cut inside a quoted narrative", _truncated
    ),
    FaultSpec(
        "wrong_extension",
        "file",
        "extension_mismatch",
        "quarantine_file",
        "CSV bytes in a .xlsx file",
        _wrong_extension,
    ),
    FaultSpec("corrupt_xlsx", "file", "unreadable", "quarantine_file", "not a valid workbook", _corrupt_xlsx),
    FaultSpec(
        "identical_redelivery",
        "file",
        "duplicate_content",
        "no_op",
        "byte-identical copy of this fault set's ed_assaults template under a new sequence number",
        _identical_redelivery,
    ),
    FaultSpec(
        "extra_column",
        "column",
        "column_not_permitted",
        "drop_columns",
        "a column (religion) the agreement does not allow",
        _extra_column,
    ),
    FaultSpec(
        "ed_personal_column",
        "column",
        "column_not_permitted",
        "drop_columns",
        "a patient name in the anonymous ED feed",
        _ed_personal_column,
    ),
    FaultSpec(
        "duplicate_key",
        "row",
        "duplicate_key",
        "quarantine_rows",
        "the same report_id twice in one file",
        _duplicate_key,
    ),
    FaultSpec(
        "bad_enum",
        "row",
        "enum",
        "quarantine_rows",
        "classification 'murder' is not in the enumeration",
        _row_fault("wmp", "death_reports", "classification", "murder"),
    ),
    FaultSpec(
        "bad_nhs_check_digit",
        "row",
        "nhs_number",
        "quarantine_rows",
        "NHS number fails the modulus-11 check",
        _bad_nhs,
    ),
    FaultSpec(
        "coordinates_outside_area",
        "row",
        "force_area",
        "quarantine_rows",
        "incident in central London",
        _coordinates_outside,
    ),
    FaultSpec(
        "month_first_date",
        "row",
        "date_format",
        "quarantine_rows",
        "date of death 12/25/2025 (month first)",
        _row_fault("wmp", "death_reports", "date_of_death", "12/25/2025"),
    ),
    FaultSpec(
        "required_null",
        "row",
        "required",
        "quarantine_rows",
        "forename empty",
        _row_fault("wmp", "death_reports", "forename", None),
    ),
    FaultSpec(
        "future_timestamp",
        "row",
        "not_in_future",
        "quarantine_rows",
        "reported_at in 2099",
        _row_fault("wmp", "death_reports", "reported_at", "2099-03-01T10:00:00"),
    ),
    FaultSpec(
        "report_id_pattern",
        "row",
        "pattern",
        "quarantine_rows",
        "report id DR-26-12 does not match DR-YYYY-NNNNNN",
        _row_fault("wmp", "death_reports", "report_id", "DR-26-12"),
    ),
    FaultSpec(
        "bad_boolean",
        "row",
        "boolean",
        "quarantine_rows",
        "domestic_abuse_related 'maybe'",
        _row_fault("wmp", "death_reports", "domestic_abuse_related", "maybe"),
    ),
    FaultSpec(
        "negative_count",
        "row",
        "range",
        "quarantine_rows",
        "suspects_count -1",
        _row_fault("wmp", "death_reports", "suspects_count", "-1"),
    ),
    FaultSpec(
        "narrative_too_long",
        "row",
        "max_length",
        "quarantine_rows",
        "narrative of 4,500 characters",
        _row_fault("wmp", "death_reports", "narrative", "x" * 4500),
    ),
    FaultSpec(
        "orphan_person",
        "row",
        "referential_integrity",
        "quarantine_rows",
        "death_report_persons row for report DR-2026-999999, never delivered",
        _row_fault("wmp", "death_report_persons", "report_id", "DR-2026-999999"),
    ),
    FaultSpec(
        "date_order",
        "row",
        "date_order",
        "quarantine_rows",
        "date of birth after date of death",
        _row_fault("wht", "me_deaths", "date_of_birth", "2026-09-29"),
    ),
    FaultSpec(
        "trust_code_mismatch",
        "row",
        "trust_code",
        "quarantine_rows",
        "wht file carrying Coventry's trust code",
        _row_fault("wht", "me_deaths", "trust_code", "RKB"),
    ),
    FaultSpec(
        "la_code_mismatch",
        "row",
        "la_code",
        "quarantine_rows",
        "dudley file carrying Coventry's GSS code",
        _row_fault("dudley", "safeguarding_contacts", "la_code", "E08000026"),
    ),
    FaultSpec(
        "age_out_of_range",
        "row",
        "range",
        "quarantine_rows",
        "patient_age 150",
        _row_fault("wht", "ed_assaults", "patient_age", "150"),
    ),
    FaultSpec(
        "assault_after_arrival",
        "row",
        "date_order",
        "quarantine_rows",
        "assault_at after arrived_at",
        _row_fault("wht", "ed_assaults", "assault_at", "2026-09-30T23:59:00"),
    ),
    FaultSpec(
        "bad_list_value",
        "row",
        "enum",
        "quarantine_rows",
        "concerns include 'gangs' (not in the list)",
        _row_fault("dudley", "safeguarding_contacts", "concerns", "gangs;mental_health"),
    ),
)


def write_faults(
    rng: np.random.Generator,
    out: Path,
    registry: Registry,
    templates: dict[tuple[str, str], tuple[date, pl.DataFrame]],
    kinds: list[str] | None = None,
) -> pl.DataFrame:
    """Write the catalogue's faults (all, or ``kinds``) into ``out/landing`` and return their manifest.

    ``templates``: for each (partner_id, feed), an uncorrected delivered extract's date and a few
    of its rows with the contract's columns (the generator keeps the latest one per partner feed).
    """
    ctx = FaultContext(rng, registry, templates, out / "landing")
    rows = []
    for spec in FAULT_CATALOGUE:
        if kinds is not None and spec.kind not in kinds:
            continue
        try:
            fault = spec.build(ctx)
        except (KeyError, FileNotFoundError):  # a partner feed with no delivery to copy at this scale
            continue
        folder = out / "landing" / fault.partner_folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fault.name).write_bytes(fault.data)
        rows.append(
            {
                "file": f"landing/{fault.partner_folder}/{fault.name}",
                "partner_folder": fault.partner_folder,
                "kind": spec.kind,
                "level": spec.level,
                "expected_rule": spec.expected_rule,
                "expected_outcome": spec.expected_outcome,
                "line": fault.line,
                "column": fault.column,
                "description": spec.description,
            }
        )
    schema = {
        "file": pl.String,
        "partner_folder": pl.String,
        "kind": pl.String,
        "level": pl.String,
        "expected_rule": pl.String,
        "expected_outcome": pl.String,
        "line": pl.Int64,
        "column": pl.String,
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema)


def row_fault(
    kind: str, rule: str, partner_id: str, feed: str, column: str, value: str | None, description: str
) -> FaultSpec:
    """A new row-level spec: one cell of a delivered ``feed`` extract from ``partner_id`` set to ``value``."""
    return FaultSpec(
        kind, "row", rule, "quarantine_rows", description, _row_fault(partner_id, feed, column, value)
    )
