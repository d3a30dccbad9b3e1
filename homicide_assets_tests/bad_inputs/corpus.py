"""The bad-input corpus: malformed partner deliveries and what the platform must do with each.

Every case is one file dropped into ``landing/<folder>/`` on top of a good baseline. The
expected outcome names the level at which it is refused (``name``: at receipt, by its name
or the agreement; ``file``: the whole file, when read; ``row``: the offending rows only;
``columns``: unpermitted columns dropped), the machine-readable rule, the column for row
rules, and the alert analysts get. ``homicide_assets_tests/test_bad_inputs.py`` runs them
all; ``README.md`` beside this file lists them.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets_tests.bad_inputs.rows import csv_bytes, good_row

#: the baseline: (partner folder, file name, rows) delivered and staged before each case
BASELINE_ROWS = 6
BASELINE = (
    ("wmp", "wmp__death_reports__20250401.csv", "death_reports", range(0, BASELINE_ROWS)),
    ("wmp", "wmp__death_report_persons__20250401.csv", "death_report_persons", range(0, BASELINE_ROWS)),
    ("uhb", "uhb__me_deaths__20250401.csv", "me_deaths", range(0, BASELINE_ROWS)),
    ("bham", "bham__safeguarding_contacts__20250401.csv", "safeguarding_contacts", range(0, BASELINE_ROWS)),
)
#: a surname planted in every bad row: it must never reach an alert
MARKER_SURNAME = "Zzyzxmarker"


@dataclass(frozen=True)
class BadInput:
    kind: str
    description: str
    folder: str
    file_name: str
    make: Callable[[], bytes]
    level: str  # name | file | row | columns
    rule: str
    feed: str | None = None
    column: str | None = None
    #: number of rows of the file that must still be staged (row and columns levels)
    rows_staged: int = 0
    #: number of rows that must be quarantined (row level)
    rows_quarantined: int = 0
    alert_kind: str = "file_quarantined"
    symlink: bool = False
    extra: dict = field(default_factory=dict)


def rows_of(feed: str, start: int, n: int, **overrides_by_index) -> list[dict[str, str]]:
    """``n`` good rows of ``feed`` with keys from ``start`` (not clashing with the baseline)."""
    rows = [good_row(feed, start + i) for i in range(n)]
    if feed == "death_report_persons":  # persons of baseline reports, with new sequence numbers
        for i, r in enumerate(rows):
            r["report_id"] = f"DR-2025-{i % 3 + 1:06d}"
            r["person_seq"] = str(10 + i)
    return rows


def _with_bad(feed: str, column: str, value: str, n: int = 4, bad_index: int = 2, start: int = 100,
              **more) -> Callable[[], bytes]:
    def make() -> bytes:
        rows = rows_of(feed, start, n)
        rows[bad_index][column] = value
        for k, v in more.items():
            rows[bad_index][k] = v
        if "surname" in FEEDS[feed].column_names and column != "surname":
            rows[bad_index]["surname"] = MARKER_SURNAME
        return csv_bytes(feed, rows)
    return make


def _good(feed: str, n: int = 3, start: int = 100) -> Callable[[], bytes]:
    return lambda: csv_bytes(feed, rows_of(feed, start, n))


def _parquet(feed: str) -> bytes:
    rows = rows_of(feed, 100, 3)
    buf = io.BytesIO()
    pl.DataFrame(rows).write_parquet(buf)
    return buf.getvalue()


def _latin1() -> bytes:
    rows = rows_of("death_reports", 100, 3)
    rows[1]["surname"] = "Zoë Müller"
    return csv_bytes("death_reports", rows).decode("utf-8").encode("latin-1")


def _utf16() -> bytes:
    return csv_bytes("death_reports", rows_of("death_reports", 100, 3)).decode("utf-8").encode("utf-16")


def _unterminated_quote() -> bytes:
    data = csv_bytes("death_reports", rows_of("death_reports", 100, 3))
    return data.rstrip(b"\r\n") + b',"the narrative was cut off mid'


def _last_row_short() -> bytes:
    rows = rows_of("death_reports", 100, 3)
    header = FEEDS["death_reports"].column_names
    data = csv_bytes("death_reports", rows[:-1])
    cut = ",".join(rows[-1][c] for c in header[:10])  # the transfer stopped after ten fields
    return data + cut.encode() + b"\r\n"


def _ragged_middle_row() -> bytes:
    lines = csv_bytes("me_deaths", rows_of("me_deaths", 100, 3)).split(b"\r\n")
    lines[2] = lines[2] + b",surplus,fields"
    return b"\r\n".join(lines)


def _missing_column() -> bytes:
    header = [c for c in FEEDS["me_deaths"].column_names if c != "date_of_death"]
    return csv_bytes("me_deaths", rows_of("me_deaths", 100, 3), header=header)


def _repeated_column() -> bytes:
    text = csv_bytes("me_deaths", rows_of("me_deaths", 100, 2)).decode()
    header, *lines = text.split("\r\n")
    return "\r\n".join([header + ",sex", *(ln + ",f" if ln else ln for ln in lines)]).encode()


def _duplicate_keys() -> bytes:
    rows = rows_of("death_reports", 100, 4)
    rows[3]["report_id"] = rows[1]["report_id"]
    return csv_bytes("death_reports", rows)


def _extra_columns() -> bytes:
    rows = rows_of("safeguarding_contacts", 100, 3)
    for r in rows:
        r["religion"] = "none recorded"
        r["gp_practice"] = "M85001"
    header = FEEDS["safeguarding_contacts"].column_names + ["religion", "gp_practice"]
    return csv_bytes("safeguarding_contacts", rows, header=header)


def _corrupt_xlsx() -> bytes:
    return b"PK\x03\x04" + b"\x00not really a workbook\x00" * 20


def _corrupt_parquet() -> bytes:
    return b"PAR1" + b"garbage pages" * 30 + b"PAR1"


DR = "death_reports"
CASES: tuple[BadInput, ...] = (
    # ---- refused by name or agreement, at receipt ------------------------------------------
    BadInput("name_not_the_pattern", "a file named by hand (a person's name and date of birth), not partner__feed__date", "wmp",
             "deaths for Jane Doe 01-02-1980.csv", _good(DR), "name", "file_name"),
    BadInput("name_dot_dot", "a name containing '..'", "wmp", "wmp__death_reports__20250402..csv",
             _good(DR), "name", "file_name"),
    BadInput("name_unknown_feed", "a feed the contract does not define", "wmp", "wmp__deaths__20250402.csv",
             _good(DR), "name", "unknown_feed"),
    BadInput("name_impossible_date", "an extract date that does not exist (13th month)", "wmp",
             "wmp__death_reports__20251341.csv", _good(DR), "name", "file_name"),
    BadInput("name_wrong_extension_type", "an extension outside csv/xlsx/parquet", "wmp",
             "wmp__death_reports__20250402.txt", _good(DR), "name", "file_name"),
    BadInput("wrong_partner_folder", "another partner's file dropped in this partner's folder", "wmp",
             "uhb__me_deaths__20250402.csv", _good("me_deaths"), "name", "wrong_partner_folder"),
    BadInput("unknown_partner", "a folder and partner not in the registry", "acme",
             "acme__death_reports__20250402.csv", _good(DR), "name", "unknown_partner"),
    BadInput("feed_not_permitted", "a feed the partner's agreement does not permit", "wmp",
             "wmp__me_deaths__20250402.csv", _good("me_deaths"), "name", "feed_not_permitted"),
    BadInput("no_agreement", "a registered partner whose data sharing agreement was withdrawn", "vrp",
             "vrp__review_recommendations__20250402.csv", _good("review_recommendations"), "name",
             "no_agreement", extra={"withdraw_agreement": "vrp"}),
    BadInput("extract_after_agreement_expiry", "an extract dated after the agreement expires", "wolves",
             "wolves__safeguarding_contacts__20270301.csv", _good("safeguarding_contacts"), "name",
             "agreement_expired"),
    BadInput("extract_before_agreement", "an extract dated before the agreement was signed", "bham",
             "bham__safeguarding_contacts__20140101.csv", _good("safeguarding_contacts"), "name",
             "agreement_expired"),
    BadInput("name_reused_other_bytes", "a file reusing an extract's name with other content", "wmp",
             "wmp__death_reports__20250401.csv", _good(DR), "name", "name_reused"),
    BadInput("symlink_out_of_landing", "a symbolic link pointing outside the data directory", "wmp",
             "wmp__death_reports__20250402.csv", _good(DR), "name", "symlink", symlink=True),
    # ---- refused whole when read ------------------------------------------------------------
    BadInput("empty_file", "zero bytes", "wmp", "wmp__death_reports__20250402.csv", lambda: b"", "file",
             "empty_file", feed=DR),
    BadInput("blank_lines_only", "line breaks and no header", "wmp", "wmp__death_reports__20250402.csv",
             lambda: b"\r\n\r\n", "file", "empty_file", feed=DR),
    BadInput("parquet_named_csv", "Parquet content behind a .csv name", "wmp",
             "wmp__death_reports__20250402.csv", lambda: _parquet(DR), "file", "wrong_extension", feed=DR),
    BadInput("csv_named_xlsx", "CSV text behind a .xlsx name", "wmp", "wmp__death_reports__20250402.xlsx",
             _good(DR), "file", "wrong_extension", feed=DR),
    BadInput("latin1_encoding", "Windows-1252/Latin-1 text instead of UTF-8", "wmp",
             "wmp__death_reports__20250402.csv", _latin1, "file", "encoding", feed=DR),
    BadInput("utf16_encoding", "UTF-16 text (NUL bytes)", "wmp", "wmp__death_reports__20250402.csv", _utf16,
             "file", "encoding", feed=DR),
    BadInput("unterminated_quote", "a quoted narrative never closed: the file was cut off", "wmp",
             "wmp__death_reports__20250402.csv", _unterminated_quote, "file", "truncated", feed=DR),
    BadInput("last_row_cut_short", "the last row has fewer fields than the header", "wmp",
             "wmp__death_reports__20250402.csv", _last_row_short, "file", "truncated", feed=DR),
    BadInput("ragged_row", "a row in the middle with more fields than the header", "uhb",
             "uhb__me_deaths__20250402.csv", _ragged_middle_row, "file", "ragged_row", feed="me_deaths"),
    BadInput("header_missing_column", "a contract column absent from the header", "uhb",
             "uhb__me_deaths__20250402.csv", _missing_column, "file", "header_mismatch", feed="me_deaths"),
    BadInput("header_repeated_column", "a column named twice in the header", "uhb",
             "uhb__me_deaths__20250402.csv", _repeated_column, "file", "header_mismatch", feed="me_deaths"),
    BadInput("duplicate_keys_in_file", "the same report_id twice in one extract", "wmp",
             "wmp__death_reports__20250402.csv", _duplicate_keys, "file", "duplicate_keys", feed=DR),
    BadInput("corrupt_xlsx", "a zip header but no readable workbook", "wmp",
             "wmp__death_reports__20250402.xlsx", _corrupt_xlsx, "file", "xlsx_unreadable", feed=DR),
    BadInput("corrupt_parquet", "Parquet magic bytes around garbage", "wmp",
             "wmp__death_reports__20250402.parquet", _corrupt_parquet, "file", "parquet_unreadable", feed=DR),
    # ---- columns the agreement does not permit ------------------------------------------------
    BadInput("unpermitted_columns", "extra columns (religion, GP practice) outside the agreement", "bham",
             "bham__safeguarding_contacts__20250402.csv", _extra_columns, "columns", "columns_dropped",
             feed="safeguarding_contacts", rows_staged=3, alert_kind="columns_dropped"),
    # ---- rows refused, the rest of the file loaded ------------------------------------------------
    *(
        BadInput(kind, description, folder, f"{folder}__{feed}__20250402.csv", _with_bad(feed, column, value, **more),
                 "row", rule, feed=feed, column=rule_column or column, rows_staged=3, rows_quarantined=1,
                 alert_kind="rows_quarantined")
        for kind, description, folder, feed, column, value, rule, rule_column, more in (
            ("bad_enum", "a sex outside m/f/x/u", "wmp", DR, "sex", "q", "enum", None, {}),
            ("required_missing", "a required classification left blank", "wmp", DR, "classification", "", "required",
             None, {}),
            ("impossible_date", "30 February", "wmp", DR, "date_of_death", "2025-02-30", "date_format", None, {}),
            ("month_first_date", "a US month-first date (12/31/2025)", "uhb", "me_deaths", "date_of_death",
             "12/31/2025", "date_format", None, {}),
            ("timestamp_in_future", "reported in 2099", "wmp", DR, "reported_at", "2099-01-01T10:00", "not_in_future",
             None, {}),
            ("bad_timestamp", "a time that is not a time", "wmp", DR, "reported_at", "yesterday teatime",
             "timestamp_format", None, {}),
            ("nhs_check_digit", "an NHS number failing the modulus-11 check", "uhb", "me_deaths", "nhs_number",
             "9434765918", "nhs_check_digit", None, {}),
            ("bad_postcode", "a postcode that is not a UK postcode", "bham", "safeguarding_contacts", "postcode",
             "NOT A PC", "postcode_format", None, {}),
            ("report_id_pattern", "a report id not DR-YYYY-NNNNNN", "wmp", DR, "report_id", "DR-25-77",
             "pattern", None, {}),
            ("outside_force_area", "incident coordinates in London", "wmp", DR, "incident_lat", "51.5074",
             "force_area", None, {"incident_lon": "-0.1278"}),
            ("latitude_out_of_range", "a latitude of 152", "wmp", DR, "incident_lat", "152.47", "range", None, {}),
            ("date_order", "date of birth after date of death", "uhb", "me_deaths", "date_of_birth", "2025-12-01",
             "date_order", "date_of_death", {}),
            ("bad_boolean", "a yes/no answered 'maybe'", "wmp", DR, "domestic_abuse_related", "maybe",
             "bool_format", None, {}),
            ("bad_integer", "a count written in words", "wmp", DR, "suspects_count", "two", "int_format", None, {}),
            ("negative_count", "a negative number of suspects", "wmp", DR, "suspects_count", "-1", "range", None, {}),
            ("bad_list_item", "a substance outside the list", "wmp", DR, "substances", "ghb;unicorn dust", "enum",
             None, {}),
            ("narrative_too_long", "a narrative over 4000 characters", "wmp", DR, "narrative", "x" * 4001,
             "max_length", None, {}),
            ("unknown_death_report", "a person recorded against a report the force never sent", "wmp",
             "death_report_persons", "report_id", "DR-2025-999999", "report_exists", None, {}),
            ("bad_phone", "a phone number that is not a UK number", "wmp", "death_report_persons", "phone",
             "12345", "phone_format", None, {}),
            ("other_trusts_code", "an ME case carrying another trust's code", "uhb", "me_deaths", "trust_code",
             "RXK", "own_code", None, {}),
            ("other_authoritys_code", "a contact carrying another authority's GSS code", "bham",
             "safeguarding_contacts", "la_code", "E08000026", "own_code", None, {}),
            ("icd10_pattern", "an ICD-10 code in the wrong shape", "uhb", "me_deaths", "icd10_underlying", "X4",
             "pattern", None, {}),
        )
    ),
)

CASES_BY_KIND = {c.kind: c for c in CASES}
assert len(CASES_BY_KIND) == len(CASES), "corpus kinds must be unique"


_LEVELS = (
    ("name", "Refused by name or agreement",
     "Refused at receipt (name, partner folder, agreement, or an extract name reused with other bytes): moved to "
     "`quarantine/files/<folder>/` with a `.reason.json`; no delivery recorded, a `quarantined` receipt is.",
     "`file_quarantined` (ERROR)"),
    ("file", "Refused whole when read",
     "Archived (bytes kept), the delivery marked `quarantined` with its reason, a copy in `quarantine/files/`; "
     "no row staged.", "`file_quarantined` (ERROR)"),
    ("columns", "Columns outside the agreement",
     "Loaded, with the columns the agreement does not permit dropped before anything is stored "
     "(`deliveries.columns_dropped`).", "`columns_dropped` (WARN)"),
    ("row", "Rows refused, the rest loaded",
     "The offending row kept out of `staged/<feed>` and stored in the `quarantine` table with file, line, column, "
     "rule and a masked value; the rest of the file loads.", "`rows_quarantined` (WARN)"),
)


def readme_text() -> str:
    """``README.md`` of this folder: the corpus as a table (``python -m ...bad_inputs.corpus`` writes it)."""
    out = ["# Bad-input corpus (data quality)", "",
           "Malformed partner deliveries and what the platform does with each. Every case is one file",
           "dropped into `landing/<folder>/` on top of a good baseline (four feeds delivered and staged);",
           "`homicide_assets_tests/test_bad_inputs.py` runs each through the same ingest functions the",
           "delivery sensor and the assets use and asserts: the machine-readable **rule** and the reason;",
           "the **quarantine entry** (file or row, with line and column for rows); exactly one **alert**",
           "of the expected kind, naming the rule and carrying no personal data; and that **nothing else",
           "changed or was lost** (baseline ledger rows, receipts, archive, staged rows unchanged; the",
           "refused bytes kept; for partly loaded files, rows read = staged + quarantined + superseded).",
           "Further tests: an identical re-delivery changes nothing and raises no alert; the same broken",
           "file sent twice alerts once; a header-only extract is a valid nil return, not a refusal.", "",
           "The cases live in `corpus.py`; good rows come from `rows.py`.", ""]
    for level, title, what, alert in _LEVELS:
        cases = [c for c in CASES if c.level == level]
        row = level == "row"
        out += [f"## {title} ({len(cases)})", "", f"{what} Alert: {alert}.", "",
                "| kind | what was delivered | rule" + (" | column" if row else "") + " |",
                "|---|---|---" + ("|---" if row else "") + "|"]
        out += [f"| `{c.kind}` | {c.description} | `{c.rule}`" + (f" | `{c.column}`" if row else "") + " |"
                for c in cases]
        out.append("")
    out.append(f"{len(CASES)} kinds in all.")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    from pathlib import Path

    (Path(__file__).parent / "README.md").write_text(readme_text(), encoding="utf-8")
