"""Asset checks on every ``staged/<feed>``: the declared suite (Great Expectations) and row conservation.

One op per feed evaluates three checks on one read of the staged frame:

- ``contract`` (blocking, ERROR): every ERROR rule of ``expectations/<feed>.json``. A failure
  stops everything downstream of the staged asset in that run.
- ``advisory`` (WARN): the suite's WARN rules; shown to analysts, blocks nothing.
- ``row_conservation`` (blocking, ERROR): for every delivery of the feed, rows read = rows
  staged + rows quarantined + rows superseded in the ledger, and the ledger agrees with the
  staged frame and the quarantine table.

Each validation is written as a self-contained HTML page (and the masked GX result as JSON)
under ``<data dir>/reports/quality/<feed>/``; the check metadata carries the summary, the
failed rules and the page's path.
"""


from collections.abc import Iterator

import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    AssetKey,
    AssetsDefinition,
    MetadataValue,
    multi_asset_check,
)
from sqlmodel import select

from homicide_assets.lib.feeds import FEED_NAMES
from homicide_assets.lib.quality import QualityReport, ValidationInputs, validate_staged
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.ingest import Delivery, QuarantineEntry
from homicide_assets.resources import PlatformResource

CONTRACT, ADVISORY, CONSERVATION = "contract", "advisory", "row_conservation"
QUALITY_REPORTS_SUBDIR = ("reports", "quality")


def staged_key(feed: str) -> AssetKey:
    return AssetKey(["staged", feed])


def _failed_table(failures: list[dict]) -> MetadataValue:
    if not failures:
        return MetadataValue.md("_every rule holds_")
    lines = ["| rule id | rule | rows | examples (masked) |", "|---|---|---|---|"]
    for f in failures:
        sample = ", ".join(f.get("unexpected_sample", [])) or f.get("exception", "")
        count = f.get("unexpected_count")
        lines.append(f"| `{f['rule_id']}` | {f['rule']} | {'' if count is None else count} | "
                     f"{sample.replace('|', '/')} |")
    return MetadataValue.md("\n".join(lines))


def _suite_result(report: QualityReport, severity: str, check_name: str, feed: str, paths: dict) -> AssetCheckResult:
    summary = report.summary(severity)
    failures = summary["failed"]
    gx = dict(report.gx_result)
    gx["results"] = [r for r in gx.get("results", [])
                     if r["expectation_config"].get("meta", {}).get("severity") == severity]
    passed = not failures
    return AssetCheckResult(
        asset_key=staged_key(feed),
        check_name=check_name,
        passed=passed,
        severity=AssetCheckSeverity.ERROR if severity == "ERROR" else AssetCheckSeverity.WARN,
        description=(f"{summary['passed']} of {summary['expectations']} {severity} rules hold"
                     + ("" if passed else f"; broken: {', '.join(f['rule_id'] for f in failures[:5])}")),
        metadata={
            "feed": feed,
            "rows": report.rows,
            "rules": summary["expectations"],
            "rules_passed": summary["passed"],
            "failed_rules": MetadataValue.json(failures),
            "failed_rules_table": _failed_table(failures),
            "report_html": MetadataValue.path(str(paths["html"])),
            "report_json": MetadataValue.path(str(paths["json"])),
            "validation_seconds": round(sum(report.timings.values()), 3),
            "suite": MetadataValue.path(f"expectations/{feed}.json"),
            "gx_result": MetadataValue.json(gx),
        },
    )


def row_conservation(url: str, feed: str, staged: pl.DataFrame) -> tuple[list[dict], dict]:
    """Deliveries of ``feed`` whose row counts do not add up, and totals over the feed.

    For every delivery the ledger staged: ``rows_read == rows_staged + rows_quarantined +
    rows_superseded``; ``rows_staged`` equals the delivery's rows in the staged frame; and
    ``rows_quarantined`` equals the distinct lines of the delivery in the quarantine table.
    """
    from sqlalchemy import func

    with session_scope(url) as s:
        deliveries = list(s.exec(select(Delivery).where(Delivery.feed == feed)))
        quarantined_lines = dict(s.exec(
            select(QuarantineEntry.delivery_id, func.count(func.distinct(QuarantineEntry.line)))
            .where(QuarantineEntry.kind == "row", QuarantineEntry.feed == feed)
            .group_by(QuarantineEntry.delivery_id)
        ).all())
    in_frame = (dict(staged.group_by("_delivery_id").len().iter_rows())
                if staged.height and "_delivery_id" in staged.columns else {})
    problems: list[dict] = []
    totals = {"deliveries": 0, "rows_read": 0, "rows_staged": 0, "rows_quarantined": 0, "rows_superseded": 0,
              "deliveries_pending": 0, "files_quarantined": 0}
    for d in deliveries:
        if d.status == "quarantined":
            totals["files_quarantined"] += 1
            if (d.rows_staged or 0) or in_frame.get(d.delivery_id):
                problems.append({"delivery_id": d.delivery_id, "problem": "a quarantined file has staged rows"})
            continue
        if d.status != "staged":
            totals["deliveries_pending"] += 1
            continue
        totals["deliveries"] += 1
        read, st, qu, su = (d.rows_read, d.rows_staged, d.rows_quarantined, d.rows_superseded)
        for name, value in (("rows_read", read), ("rows_staged", st), ("rows_quarantined", qu),
                            ("rows_superseded", su)):
            totals[name] += value or 0
        if None in (read, st, qu, su):
            problems.append({"delivery_id": d.delivery_id, "problem": "ledger counts missing"})
            continue
        if read != st + qu + su:
            problems.append({"delivery_id": d.delivery_id, "problem":
                             f"rows read {read} != staged {st} + quarantined {qu} + superseded {su} "
                             f"({read - st - qu - su:+d} rows unaccounted for)"})
        if in_frame.get(d.delivery_id, 0) != st:
            problems.append({"delivery_id": d.delivery_id, "problem":
                             f"ledger says {st} rows staged, the staged table holds {in_frame.get(d.delivery_id, 0)}"})
        if quarantined_lines.get(d.delivery_id, 0) != qu:
            problems.append({"delivery_id": d.delivery_id, "problem":
                             f"ledger says {qu} rows quarantined, the quarantine table holds "
                             f"{quarantined_lines.get(d.delivery_id, 0)} lines"})
    known = {d.delivery_id for d in deliveries}
    for delivery_id in sorted(set(in_frame) - known):
        problems.append({"delivery_id": delivery_id, "problem": "staged rows from a delivery missing from the ledger"})
    return problems, totals


def _conservation_result(url: str, feed: str, staged: pl.DataFrame) -> AssetCheckResult:
    problems, totals = row_conservation(url, feed, staged)
    failures = [{"rule_id": f"{feed}.row_conservation", "rule": p["problem"], "delivery_id": p["delivery_id"],
                 "unexpected_count": None} for p in problems]
    return AssetCheckResult(
        asset_key=staged_key(feed),
        check_name=CONSERVATION,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description=(f"{totals['deliveries']} deliveries: {totals['rows_read']} rows read = "
                     f"{totals['rows_staged']} staged + {totals['rows_quarantined']} quarantined + "
                     f"{totals['rows_superseded']} superseded" if not problems
                     else f"{len(problems)} deliveries do not add up: nothing may be lost"),
        metadata={
            **{k: int(v) for k, v in totals.items()},
            "rows_in_staged_table": staged.height,
            "failed_rules": MetadataValue.json(failures),
            "problems": MetadataValue.md("\n".join(f"- `{p['delivery_id']}`: {p['problem']}" for p in problems[:50])
                                         or "_every delivery adds up_"),
        },
    )


def build_quality_checks(feed: str) -> AssetsDefinition:
    """The three checks of ``staged/<feed>`` in one op (one read of the frame, one GX run)."""
    key = staged_key(feed)
    persons = feed == "death_report_persons"
    reports_key = staged_key("death_reports")
    specs = [
        AssetCheckSpec(CONTRACT, asset=key, blocking=True,
                       additional_deps=[reports_key] if persons else None,
                       description=f"ERROR rules of expectations/{feed}.json (Great Expectations); "
                                   "a failure blocks everything downstream"),
        AssetCheckSpec(ADVISORY, asset=key,
                       description=f"WARN rules of expectations/{feed}.json, shown to analysts"),
        AssetCheckSpec(CONSERVATION, asset=key, blocking=True,
                       description="rows read = staged + quarantined + superseded for every delivery"),
    ]
    ins = {"staged": AssetIn(key=key)}
    if persons:
        ins["death_reports"] = AssetIn(key=reports_key)

    def _evaluate(context: AssetCheckExecutionContext, platform: PlatformResource, staged: pl.DataFrame,
                  death_reports: pl.DataFrame | None) -> Iterator[AssetCheckResult]:
        selected = {k.name for k in context.selected_asset_check_keys}
        wanted = [s for s, n in (("ERROR", CONTRACT), ("WARN", ADVISORY)) if n in selected]
        if wanted:
            inputs = ValidationInputs(
                registry=platform.registry(),
                known_report_ids=death_reports.get_column("report_id") if death_reports is not None else None,
            )
            report = validate_staged(feed, staged, inputs, severities=wanted)
            folder = platform.paths().root.joinpath(*QUALITY_REPORTS_SUBDIR, feed)
            paths = report.write(folder, stem=f"{report.validated_at:%Y%m%dT%H%M%S}_{context.run.run_id[:8]}")
            context.log.info(f"staged/{feed}: {report.rows} rows validated in "
                             f"{sum(report.timings.values()):.2f} s; report {paths['html']}")
            for severity in wanted:
                yield _suite_result(report, severity, CONTRACT if severity == "ERROR" else ADVISORY, feed, paths)
        if CONSERVATION in selected:
            yield _conservation_result(platform.database_url(), feed, staged)

    if persons:
        @multi_asset_check(name=f"quality_{feed}", specs=specs, ins=ins, can_subset=True,
                           description=f"Data quality checks of staged/{feed}")
        def _checks(context: AssetCheckExecutionContext, platform: PlatformResource, staged: pl.DataFrame,
                    death_reports: pl.DataFrame):
            yield from _evaluate(context, platform, staged, death_reports)
    else:
        @multi_asset_check(name=f"quality_{feed}", specs=specs, ins=ins, can_subset=True,
                           description=f"Data quality checks of staged/{feed}")
        def _checks(context: AssetCheckExecutionContext, platform: PlatformResource, staged: pl.DataFrame):
            yield from _evaluate(context, platform, staged, None)
    return _checks


quality_checks: list[AssetsDefinition] = [build_quality_checks(feed) for feed in FEED_NAMES]

#: every check key defined here (the alert sensor watches them)
QUALITY_CHECK_KEYS: list[AssetCheckKey] = [
    AssetCheckKey(staged_key(feed), name) for feed in FEED_NAMES for name in (CONTRACT, ADVISORY, CONSERVATION)
]
