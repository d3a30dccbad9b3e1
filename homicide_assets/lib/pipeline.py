"""The asset graph's work as plain function calls, without Dagster.

Used by the benchmark to measure Dagster's overhead: every stage here calls the same
``lib`` functions the assets and their quality checks call, in dependency order, on the
same data directory. (``row_conservation`` lives beside the check op in ``defs.quality``;
the benchmark imports it before it starts the clock, so Dagster's import is not counted.)
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl

from homicide_assets.lib.compliance import build_compliance, ledger_as_of, read_ledger
from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.ingest import parse_archived_delivery, read_raw, stage_and_record
from homicide_assets.lib.landing import look, receive
from homicide_assets.lib.lessons import build_lessons_in_days, build_recommendations, recommendation_history
from homicide_assets.lib.lessons_updates import read_operator_updates
from homicide_assets.lib.linkage_register import (
    build_death_register,
    cluster_people,
    match_people,
    person_records,
)
from homicide_assets.lib.pseudonym import load_key
from homicide_assets.lib.quality import ValidationInputs, validate_staged
from homicide_assets.lib.registry import default_registry
from homicide_assets.lib.report import time_report_build
from homicide_assets.lib.series import CASE_LINKS_SCHEMA, LINKED_SERIES_SCHEMA, SeriesParams, find_series
from homicide_assets.lib.series_decisions import record_series
from homicide_assets.lib.settings import DataDir
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.themes import load_theme_rules


def _write(data_dir: DataDir, key_path: list[str], frame, partition: str | None = None) -> None:
    path = data_dir.warehouse_file(key_path, partition)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)


def run_plain(root: Path) -> dict[str, float]:
    """Receive, parse, stage (and the later stages as they exist); seconds per stage."""
    from sqlmodel import select

    from homicide_assets.lib.store.ingest import Delivery

    data_dir = DataDir(Path(root).resolve()).ensure()
    registry = default_registry()
    key = load_key()
    stages: dict[str, float] = {}

    t = time.perf_counter()
    first = look(data_dir, {})
    second = look(data_dir, first.cursor)
    receive(data_dir, registry, second.ready)
    stages["receive"] = time.perf_counter() - t

    t = time.perf_counter()
    with session_scope(data_dir.database_url()) as s:
        received = list(s.exec(select(Delivery).where(Delivery.status == "received")))
    for d in received:
        outcome = parse_archived_delivery(data_dir, d.delivery_id)
        _write(data_dir, ["raw", d.feed], outcome.frame, d.delivery_id)
    stages["raw"] = time.perf_counter() - t

    t = time.perf_counter()
    staged = {}
    for feed in FEED_NAMES:
        known = staged["death_reports"].get_column("report_id") if feed == "death_report_persons" else None
        result, _, _ = stage_and_record(data_dir, feed, key, registry, known_report_ids=known)
        staged[feed] = result.staged
        _write(data_dir, ["staged", feed], result.staged)
    stages["staged"] = time.perf_counter() - t

    # The graph's blocking checks on every staged feed: the same functions its check op calls
    # (the GX suite's ERROR and WARN rules, the HTML/JSON validation pages, row conservation).
    from homicide_assets.defs.quality.checks import QUALITY_REPORTS_SUBDIR, row_conservation

    t = time.perf_counter()
    for feed in FEED_NAMES:
        known = staged["death_reports"].get_column("report_id") if feed == "death_report_persons" else None
        report = validate_staged(feed, staged[feed], ValidationInputs(registry=registry, known_report_ids=known),
                                 severities=["ERROR", "WARN"])
        report.write(data_dir.root.joinpath(*QUALITY_REPORTS_SUBDIR, feed),
                     stem=f"{report.validated_at:%Y%m%dT%H%M%S}_plain")
        row_conservation(data_dir.database_url(), feed, staged[feed])
    stages["checks"] = time.perf_counter() - t

    t = time.perf_counter()
    records = person_records(staged)
    matches = match_people(records).matches
    clusters = cluster_people(records, matches, key)
    register = build_death_register(staged, records, clusters, matches.filter(pl.col("linked")), key)
    for name, frame in (("person_matches", matches), ("person_clusters", clusters), ("death_register", register)):
        _write(data_dir, ["linkage", name], frame)
    stages["linkage"] = time.perf_counter() - t

    t = time.perf_counter()
    result = find_series(register, clusters, staged, SeriesParams())
    changes = record_series(data_dir.database_url(), result.linked_series, channel=None, alert=True)
    _write(data_dir, ["series", "case_links"], result.case_links.select(list(CASE_LINKS_SCHEMA)))
    _write(data_dir, ["series", "linked_series"],
           changes.series.select(list(LINKED_SERIES_SCHEMA)).cast(LINKED_SERIES_SCHEMA))
    stages["series"] = time.perf_counter() - t

    t = time.perf_counter()
    ledger = read_ledger(data_dir.database_url())
    as_of = ledger_as_of(ledger)
    raw, _ = read_raw(data_dir, "review_recommendations")
    recommendations = build_recommendations(
        recommendation_history(raw), as_of, read_operator_updates(data_dir.database_url()), register,
        registry, load_theme_rules(),
    )
    _write(data_dir, ["lessons", "recommendations"], recommendations)
    _write(data_dir, ["lessons", "lessons_in_days"], build_lessons_in_days(register, recommendations, as_of, 28))
    _write(data_dir, ["partners", "compliance"], build_compliance(ledger, registry, as_of))
    stages["lessons_and_compliance"] = time.perf_counter() - t

    t = time.perf_counter()
    time_report_build(data_dir)  # patterns, hotspots and both editions from the warehouse
    stages["patterns_and_report"] = time.perf_counter() - t
    return stages
