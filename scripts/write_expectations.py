"""Write ``expectations/<feed>.json``: the Great Expectations 1.x suite of every partner feed.

The suites are generated from the contract as code (``homicide_assets/lib/feeds.py``) and
committed, so a change to the contract shows up in review as a change to the suites. A test
(``homicide_assets_tests/test_quality.py``) fails when the committed JSON differs from what
this script writes.

    python scripts/write_expectations.py           # (re)write expectations/*.json
    python scripts/write_expectations.py --check   # exit 1 if any committed suite is stale

Each suite applies to the *staged* frame of a feed (``staged/<feed>``) as prepared by
``homicide_assets.lib.quality.prepare_frame``: contract columns typed, identifiers replaced
by keyed pseudonyms (``nhs_number`` -> ``nhs_number_key``), the ingest metadata columns, and
the derived ``_check_*`` columns that carry rules GX cannot express on one frame (the force
area, a report existing in another feed, a partner's own code). Every expectation carries
``meta.rule`` (the contract's words), ``meta.rule_id``, ``meta.severity`` (ERROR blocks the
graph, WARN informs analysts) and GX's own ``severity`` (critical / warning).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as a plain script from any folder
    sys.path.insert(0, str(REPO_ROOT))

from homicide_assets.lib.feeds import FEEDS, Column, Feed  # noqa: E402
from homicide_assets.lib.pseudonym import PSEUDONYM_HEX  # noqa: E402
from homicide_assets.lib.quality import (  # noqa: E402
    DERIVED_COLUMNS,
    GX_SEVERITY,
    METADATA_COLUMNS,
    PANDAS_TYPE,
    POSTCODE_PATTERN,
    SUITE_PARAMETERS,
    staged_columns,
)
from homicide_assets.lib.settings import EXPECTATIONS_DIR  # noqa: E402

CONTRACT = "shared/design/partner-feeds.md v1"
PSEUDONYM_PATTERN = rf"^[0-9a-f]{{{PSEUDONYM_HEX}}}$"
#: Date columns that record something that has already happened (WARN when in the future).
PAST_EVENT_DATES = {
    "date_of_birth", "date_of_death", "first_contact_date", "last_contact_date", "opened_on",
    "concluded_on", "published_on", "status_updated_on",
}
#: Feeds whose NHS number the contract says is "usually present".
NHS_USUALLY_PRESENT = {"me_deaths": 0.5}


def _non_capturing(pattern: str) -> str:
    """The same regex with plain groups made non-capturing (pandas warns about capture groups)."""
    return re.sub(r"(?<!\\)\((?!\?)", "(?:", pattern)


def _strip_anchors(pattern: str) -> str:
    return pattern.removeprefix("^").removesuffix("$")


def _list_regex(items: str) -> str:
    """A regex for a ``;``-joined list whose every item matches ``items``."""
    return rf"^(?:{items})(?:;(?:{items}))*$"


class _SuiteBuilder:
    def __init__(self, feed: Feed):
        self.feed = feed
        self.expectations: list[dict] = []

    def add(self, type_: str, kwargs: dict, *, rule_id: str, rule: str, severity: str = "ERROR",
            columns: list[str], contract_column: str | None = None) -> None:
        meta = {
            "rule_id": f"{self.feed.name}.{rule_id}",
            "rule": rule,
            "severity": severity,
            "columns": columns,
            "contract": f"{CONTRACT} > {self.feed.name}" + (f" > {contract_column}" if contract_column else ""),
        }
        self.expectations.append(
            {"type": type_, "kwargs": kwargs, "meta": meta, "severity": GX_SEVERITY[severity], "description": rule}
        )


def _staged_name(col: Column) -> str:
    return f"{col.name}_key" if col.pseudonymise else col.name


def build_suite(feed_name: str) -> dict:
    """The suite of one feed as a JSON-ready dict (what ``expectations/<feed>.json`` holds)."""
    feed = FEEDS[feed_name]
    b = _SuiteBuilder(feed)
    columns = staged_columns(feed_name)
    derived = DERIVED_COLUMNS.get(feed_name, {})

    # -- the frame as a whole ------------------------------------------------------------
    b.add("expect_table_columns_to_match_set",
          {"column_set": sorted([*columns, *derived]), "exact_match": True},
          rule_id="table.columns",
          rule=("exactly the contract's columns (identifiers as keyed pseudonyms), the ingest metadata and "
                "the derived check columns; columns the data sharing agreement does not permit are never staged"),
          columns=[])
    for name, ctype in columns.items():
        b.add("expect_column_values_to_be_of_type", {"column": name, "type_": PANDAS_TYPE[ctype]},
              rule_id=f"{name}.type", rule=f"{name} is of type {ctype}", columns=[name],
              contract_column=name if not name.startswith("_") and name != "record_key" else None)

    # -- ingest metadata -------------------------------------------------------------------
    for name in METADATA_COLUMNS:
        b.add("expect_column_values_to_not_be_null", {"column": name}, rule_id=f"{name}.required",
              rule=f"every staged row records {name} (nothing is staged without its source)", columns=[name])
    b.add("expect_column_values_to_be_unique", {"column": "record_key"}, rule_id="record_key.unique",
          rule="one staged row per record key: the newest extract wins", columns=["record_key"])
    b.add("expect_column_values_to_match_regex", {"column": "record_key", "regex": rf"^{feed_name}:[a-z][a-z0-9_]*:.+$"},
          rule_id="record_key.format", rule=f"record_key reads {feed_name}:<partner_id>:<key values joined by |>",
          columns=["record_key"])
    b.add("expect_column_values_to_be_in_set", {"column": "_partner_id", "value_set": {"$PARAMETER": "permitted_partners"}},
          rule_id="_partner_id.permitted",
          rule=f"every row comes from a partner whose data sharing agreement permits {feed_name}",
          columns=["_partner_id"])
    b.add("expect_column_values_to_be_between", {"column": "_source_line", "min_value": 1},
          rule_id="_source_line.range", rule="source line numbers start at 1", columns=["_source_line"])
    b.add("expect_column_values_to_be_between", {"column": "_extract_date", "max_value": {"$PARAMETER": "today"}},
          rule_id="_extract_date.not_in_future", rule="an extract is not dated in the future",
          severity="WARN", columns=["_extract_date"])

    # -- column rules --------------------------------------------------------------------
    for col in feed.columns:
        name = _staged_name(col)
        if col.required:
            b.add("expect_column_values_to_not_be_null", {"column": name}, rule_id=f"{name}.required",
                  rule=f"{col.name} is required (req)", columns=[name], contract_column=col.name)
        if col.pseudonymise:
            b.add("expect_column_values_to_match_regex", {"column": name, "regex": PSEUDONYM_PATTERN},
                  rule_id=f"{name}.pseudonym",
                  rule=(f"{col.name} is stored only as its keyed pseudonym ({PSEUDONYM_HEX} hex characters)"
                        + ("; a value that fails the NHS number modulus-11 check digit is never staged"
                           if col.type == "nhs_number" else "")),
                  columns=[name], contract_column=col.name)
            mostly = NHS_USUALLY_PRESENT.get(feed_name) if col.type == "nhs_number" else None
            if mostly:
                b.add("expect_column_values_to_not_be_null", {"column": name, "mostly": mostly},
                      rule_id=f"{name}.usually_present",
                      rule=f"{col.name} is usually present (at least {mostly:.0%} of rows)", severity="WARN",
                      columns=[name], contract_column=col.name)
        if col.type == "enum" or (col.type == "text" and col.values):
            b.add("expect_column_values_to_be_in_set", {"column": name, "value_set": list(col.values)},
                  rule_id=f"{name}.enum", rule=f"{col.name} is one of {', '.join(col.values)}",
                  columns=[name], contract_column=col.name)
        if col.type == "list" and col.values:
            items = "|".join(col.values)
            b.add("expect_column_values_to_match_regex", {"column": name, "regex": _list_regex(f"{items}")},
                  rule_id=f"{name}.enum",
                  rule=f"each item of {col.name} is one of {', '.join(col.values)}",
                  columns=[name], contract_column=col.name)
        if col.type == "list" and col.pattern:
            b.add("expect_column_values_to_match_regex",
                  {"column": name, "regex": _list_regex(_non_capturing(_strip_anchors(col.pattern)))},
                  rule_id=f"{name}.pattern", rule=f"each item of {col.name} matches {col.pattern}",
                  columns=[name], contract_column=col.name)
        if col.type == "text" and col.pattern and not col.pseudonymise:
            b.add("expect_column_values_to_match_regex", {"column": name, "regex": _non_capturing(col.pattern)},
                  rule_id=f"{name}.pattern", rule=f"{col.name} matches {col.pattern}",
                  columns=[name], contract_column=col.name)
        if col.type == "postcode":
            b.add("expect_column_values_to_match_regex", {"column": name, "regex": POSTCODE_PATTERN},
                  rule_id=f"{name}.postcode",
                  rule=f"{col.name} is a UK postcode, upper case with one space", columns=[name],
                  contract_column=col.name)
        if col.type in ("int", "float") and (col.min_value is not None or col.max_value is not None):
            kw = {"column": name}
            if col.min_value is not None:
                kw["min_value"] = col.min_value
            if col.max_value is not None:
                kw["max_value"] = col.max_value
            bounds = (f"between {col.min_value:g} and {col.max_value:g}" if col.min_value is not None
                      and col.max_value is not None else
                      f">= {col.min_value:g}" if col.min_value is not None else f"<= {col.max_value:g}")
            b.add("expect_column_values_to_be_between", kw, rule_id=f"{name}.range",
                  rule=f"{col.name} is {bounds}", columns=[name], contract_column=col.name)
        if col.max_length:
            b.add("expect_column_value_lengths_to_be_between", {"column": name, "max_value": col.max_length},
                  rule_id=f"{name}.max_length", rule=f"{col.name} is at most {col.max_length} characters",
                  columns=[name], contract_column=col.name)
        if col.type == "timestamp":
            b.add("expect_column_values_to_be_between", {"column": name, "max_value": {"$PARAMETER": "now"}},
                  rule_id=f"{name}.not_in_future", rule=f"{col.name} is not in the future",
                  columns=[name], contract_column=col.name)
        if col.type == "date" and col.name in PAST_EVENT_DATES:
            b.add("expect_column_values_to_be_between", {"column": name, "max_value": {"$PARAMETER": "today"}},
                  rule_id=f"{name}.not_in_future", rule=f"{col.name} records a past event: not in the future",
                  severity="WARN", columns=[name], contract_column=col.name)

    # -- rules across columns and rows ---------------------------------------------------------
    key_cols = [*feed.key, "_partner_id"]
    b.add("expect_compound_columns_to_be_unique", {"column_list": key_cols}, rule_id="key.unique",
          rule=f"({', '.join(feed.key)}) is unique within the partner", columns=key_cols,
          contract_column=", ".join(feed.key))
    for earlier, later in feed.date_order:
        later_col = later
        if feed.column(later).type == "timestamp" and feed.column(earlier).type == "date":
            later_col = f"_check_{later}_date"
        b.add("expect_column_pair_values_a_to_be_greater_than_b",
              {"column_A": later_col, "column_B": earlier, "or_equal": True, "ignore_row_if": "either_value_is_missing"},
              rule_id=f"date_order.{earlier}.{later}",
              rule=f"{earlier} is not after {later} (when both are present)",
              columns=[earlier, later_col], contract_column=f"{earlier}, {later}")
    for name, d in derived.items():
        if d.rule_id is None:
            continue
        b.add("expect_column_values_to_be_in_set", {"column": name, "value_set": [True]}, rule_id=d.rule_id,
              rule=d.rule, columns=[name, *d.inputs], contract_column=", ".join(d.inputs))
    if feed_name == "review_recommendations":
        b.add("expect_column_values_to_not_be_null",
              {"column": "due_on", "row_condition": {"type": "comparison", "column": {"name": "review_type"},
                                                     "operator": "==", "parameter": "pfd"}},
              rule_id="due_on.pfd_default",
              rule="a pfd recommendation always has due_on (when empty: 56 days after published_on)",
              columns=["due_on", "review_type"], contract_column="due_on")

    return {
        "name": feed_name,
        "meta": {
            "contract": CONTRACT,
            "feed": feed_name,
            "applies_to": f"staged/{feed_name} after homicide_assets.lib.quality.prepare_frame",
            "generated_by": "scripts/write_expectations.py (do not edit by hand)",
            "severities": {"ERROR": "blocks everything downstream of the staged asset",
                           "WARN": "shown to analysts; does not block"},
            "suite_parameters": SUITE_PARAMETERS,
            "derived_columns": {name: d.description for name, d in derived.items()},
            "list_columns": "multi-valued columns are validated joined with ';'",
        },
        "expectations": b.expectations,
    }


def suite_text(feed_name: str) -> str:
    return json.dumps(build_suite(feed_name), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed suite is out of date")
    parser.add_argument("--out", type=Path, default=EXPECTATIONS_DIR)
    args = parser.parse_args(argv)
    stale = []
    for feed_name in FEEDS:
        path = args.out / f"{feed_name}.json"
        text = suite_text(feed_name)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"stale suites (run python scripts/write_expectations.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
