"""``homicide-assets``: build the graph from the landing folder, generate synthetic data, read the ledger."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from homicide_assets.lib.settings import DataDir, code_fingerprint

#: Seconds between the two looks at landing (a file must be unchanged across both).
BUILD_LOOK_INTERVAL_SECONDS = 1.0


def _ensure_pseudonym_key(data_dir: DataDir) -> None:
    """Without HOMICIDE_PSEUDONYM_KEY(_FILE), use a random key kept beside this data directory.

    Pseudonyms then stay stable across builds of the same data directory. It is for
    demonstrations and checks on synthetic data: production sets HOMICIDE_PSEUDONYM_KEY from
    the force's secret store (SECURITY.md), and this says so on every build that lacks it.
    """
    if os.environ.get("HOMICIDE_PSEUDONYM_KEY") or os.environ.get("HOMICIDE_PSEUDONYM_KEY_FILE"):
        return
    import secrets

    key_file = data_dir.root / ".pseudonym_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    os.environ["HOMICIDE_PSEUDONYM_KEY_FILE"] = str(key_file)
    print(f"warning: HOMICIDE_PSEUDONYM_KEY is not set; using the local key {key_file} "
          "(set the force's key in production)", file=sys.stderr)


#: What ``build`` wrote as the embedded ``dagster.yaml`` before the batching event log storage.
EARLIER_EMBEDDED_DAGSTER_YAML = "telemetry:\n  enabled: false\n"


def embedded_dagster_yaml() -> str:
    """The embedded default instance: SQLite in DAGSTER_HOME, with Dagster's SQLite event log
    writing a step's batch of materialisations in one transaction per shard
    (:mod:`homicide_assets.dagster_storage`); no usage statistics leave the force."""
    from homicide_assets.dagster_storage import DAGSTER_YAML_EVENT_LOG_STORAGE

    return ("# embedded default: SQLite storage in DAGSTER_HOME (deploy/dagster.postgres.yaml for a force)\n"
            + DAGSTER_YAML_EVENT_LOG_STORAGE + EARLIER_EMBEDDED_DAGSTER_YAML)


def _prepare_environment() -> DataDir:
    data_dir = DataDir.from_env().ensure()
    os.environ["HOMICIDE_DATA_DIR"] = str(data_dir.root)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(data_dir.dagster_home)))
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # The embedded default when there is none, or when it is the one an earlier build wrote (same
    # files, same layout: only the event log class changes); any other dagster.yaml is kept.
    if not config.exists() or config.read_text(encoding="utf-8") == EARLIER_EMBEDDED_DAGSTER_YAML:
        config.write_text(embedded_dagster_yaml(), encoding="utf-8")
    # A step's materialisations of many partitions (one per delivery) reach the event log
    # together, up to this many at once (Dagster's switch; the embedded SQLite storage and
    # Dagster's PostgreSQL storage each write such a batch in one transaction).
    from homicide_assets.dagster_storage import BUILD_EVENT_BATCH_SIZE

    os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", str(BUILD_EVENT_BATCH_SIZE))
    return data_dir


def take_landing(data_dir: DataDir, interval: float = BUILD_LOOK_INTERVAL_SECONDS, while_waiting=None):
    """Two looks at landing, as the sensor makes, then receive the files that held still.
    ``while_waiting``, when given, is called once between the looks, which are then at least
    ``interval`` apart (the time it took counts towards the wait)."""
    from homicide_assets.lib.landing import look, receive
    from homicide_assets.lib.registry import default_registry

    first = look(data_dir, {})
    if first.pending:
        started = time.monotonic()
        if while_waiting is not None:
            while_waiting()
        time.sleep(max(0.0, interval - (time.monotonic() - started)))
    second = look(data_dir, first.cursor)
    return receive(data_dir, default_registry(), second.ready), second.pending


def pending_deliveries(data_dir: DataDir, instance=None) -> dict[str, list[str]]:
    """Delivery ids per feed still to parse into raw partitions: received but not parsed, or
    parsed earlier whose raw partition never reached disk (a crash between the two), or (given
    the Dagster ``instance``) whose ``raw/<feed>`` partition has no materialisation recorded (a
    crash after the partition's file was written, before its event was)."""
    from sqlmodel import col, select

    from homicide_assets.lib.ingest import STAGEABLE
    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery

    with session_scope(data_dir.database_url()) as s:
        rows = s.exec(
            select(Delivery).where(col(Delivery.status).in_(("received", "quarantined", *STAGEABLE)))
            .order_by(Delivery.id)
        ).all()
    materialised: dict[str, set[str]] = {}
    if instance is not None:
        from dagster import AssetKey

        for feed in sorted({d.feed for d in rows}):
            materialised[feed] = instance.get_materialized_partitions(AssetKey(["raw", feed]))
    out: dict[str, list[str]] = {}
    for d in rows:
        if (d.status == "received"
                or (d.status in STAGEABLE and not data_dir.warehouse_file(["raw", d.feed], d.delivery_id).exists())
                or (instance is not None and d.delivery_id not in materialised[d.feed])):
            out.setdefault(d.feed, []).append(d.delivery_id)
    return out


#: The console shows INFO and above; every event is still kept in the instance's event log.
CONSOLE_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def run_build(quiet: bool = False) -> dict:
    """Take everything in landing, parse each new delivery, then materialise the whole graph."""
    data_dir = _prepare_environment()
    _ensure_pseudonym_key(data_dir)
    # One ASSET_MATERIALIZATION_PLANNED event per asset for a run over a range of deliveries,
    # not one per delivery (Dagster's own switch; ~13 ms per event on the SQLite instance).
    # Dagster's trade-off: the partitions of a run that fails are shown missing, not failed;
    # the ledger still records each delivery's status.
    os.environ.setdefault("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "1")
    from dagster import DagsterInstance

    from homicide_assets.definitions import defs
    from homicide_assets.defs.ingest.partitions import DELIVERY_PARTITIONS

    say = (lambda *a: None) if quiet else print
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    # Files waiting in landing mean checks to run in this process: Great Expectations is
    # imported during the wait between the two looks.
    from homicide_assets.lib.quality import load_great_expectations

    outcome, still_pending = take_landing(data_dir, while_waiting=load_great_expectations)
    timings["receive_seconds"] = time.perf_counter() - t0
    say(f"landing: {len(outcome.accepted)} new deliveries, {len(outcome.duplicates)} identical re-deliveries "
        f"(no-op), {len(outcome.quarantined)} quarantined by name or agreement"
        + (f", {still_pending} still being written (left for the next build)" if still_pending else ""))
    instance = DagsterInstance.get()
    t1 = time.perf_counter()
    failed: list[str] = []
    for feed, ids in pending_deliveries(data_dir, instance).items():
        partitions = DELIVERY_PARTITIONS[feed]
        known = set(instance.get_dynamic_partitions(partitions.name))
        new = [i for i in ids if i not in known]
        if new:
            instance.add_dynamic_partitions(partitions.name, new)
        order = instance.get_dynamic_partitions(partitions.name)
        positions = sorted(order.index(i) for i in ids)
        job = defs.resolve_job_def(f"ingest_{feed}")
        if len(positions) == 1:
            result = job.execute_in_process(instance=instance, partition_key=order[positions[0]],
                                            raise_on_error=False, run_config=CONSOLE_RUN_CONFIG)
        else:
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, run_config=CONSOLE_RUN_CONFIG,
                tags={"dagster/asset_partition_range_start": order[positions[0]],
                      "dagster/asset_partition_range_end": order[positions[-1]]},
            )
        if not result.success:
            failed.append(f"ingest_{feed}")
    timings["ingest_seconds"] = time.perf_counter() - t1
    t2 = time.perf_counter()
    fingerprint = code_fingerprint()
    selection, why = refresh_selection(instance, defs, fingerprint)
    say(f"refresh: {len(selection)} assets ({why})")
    if selection:
        result = defs.resolve_job_def("refresh_all").execute_in_process(
            instance=instance, raise_on_error=False, run_config=CONSOLE_RUN_CONFIG,
            asset_selection=selection, tags={CODE_FINGERPRINT_TAG: fingerprint})
        if not result.success:
            failed.append("refresh_all")
    timings["refresh_seconds"] = time.perf_counter() - t2
    timings["refreshed_assets"] = len(selection)
    alerts = _raise_alerts(instance, data_dir)
    if alerts:
        say(f"alerts: {alerts} raised to analysts (table `alerts`; channel from HOMICIDE_ALERT_*)")
    summary = {"data_dir": str(data_dir.root), "failed_jobs": failed, **timings,
               "accepted": len(outcome.accepted), "duplicates": len(outcome.duplicates),
               "quarantined_files": len(outcome.quarantined)}
    _print_outputs(data_dir, say)
    if failed:
        say(f"FAILED: {', '.join(failed)} (see the run logs in the Dagster UI: make ui)")
    return summary


#: Tag on every ``refresh_all`` run started by ``build``: a hash of the code and the rules it ran with.
CODE_FINGERPRINT_TAG = "homicide/code_fingerprint"

#: Assets that read the SQL store (the ledger, receipts, quarantine, operator updates): what they read
#: changes outside the asset graph, so ``build`` refreshes them every time (they take seconds).
STORE_READERS = frozenset({
    ("lessons", "recommendations"), ("lessons", "lessons_in_days"), ("partners", "compliance"),
    ("patterns", "death_patterns"), ("patterns", "violence_hotspots"),
    ("report", "death_investigations_report"), ("report", "partner_edition"),
})


def refresh_selection(instance, defs, fingerprint: str) -> tuple[list, str]:
    """The assets of ``refresh_all`` this build must materialise, and why.

    Everything, unless the last ``refresh_all`` run succeeded with the same code fingerprint.
    Then only: assets never materialised; assets with a parent materialised after them (a new
    ``raw/<feed>`` delivery makes ``staged/<feed>`` stale); the assets reading the SQL store
    (:data:`STORE_READERS`); and everything downstream of those, whole multi-assets included.
    An asset left out has inputs identical to its last materialisation, so its output would be too.
    """
    from dagster import DagsterRunStatus, RunsFilter

    graph = defs.resolve_asset_graph()
    keys = {k for k in graph.get_all_asset_keys() if k.path[0] != "raw" and graph.get(k).is_materializable}
    everything = sorted(keys)
    last = instance.get_runs(filters=RunsFilter(job_name="refresh_all"), limit=1)
    if not last:
        return everything, "first build: everything"
    if last[0].status != DagsterRunStatus.SUCCESS:
        return everything, "the last refresh did not succeed: everything"
    if last[0].tags.get(CODE_FINGERPRINT_TAG) != fingerprint:
        return everything, "code, suites or seeds changed since the last refresh: everything"
    records = {r.asset_entry.asset_key: r.asset_entry for r in
               instance.get_asset_records([*keys, *(p for k in keys for p in graph.get(k).parent_keys)])}

    def last_id(key):
        entry = records.get(key)
        record = entry.last_materialization_record if entry else None
        return record.storage_id if record else None

    stale: set = set()
    reasons: dict[str, int] = {}
    for key in graph.toposorted_asset_keys:
        if key not in keys:
            continue
        own = last_id(key)
        why = None
        if own is None:
            why = "never materialised"
        elif tuple(key.path) in STORE_READERS:
            why = "reads the SQL store"
        elif any(p in stale for p in graph.get(key).parent_keys):
            why = "downstream of a stale asset"
        elif any((last_id(p) or -1) > own for p in graph.get(key).parent_keys):
            why = "a parent materialised since"
        if why:
            for k in graph.get(key).execution_set_asset_keys:
                stale.add(k)
            reasons[why] = reasons.get(why, 0) + 1
    selection = sorted(k for k in stale if k in keys)
    return selection, "; ".join(f"{n} {w}" for w, n in reasons.items()) or "nothing changed"


def _raise_alerts(instance, data_dir: DataDir) -> int:
    """What the alert and overdue sensors would raise after this build (they do not run here)."""
    from datetime import datetime, timezone

    from homicide_assets.defs.quality import alert_channel_resource, raise_pending_alerts
    from homicide_assets.lib.alerts import alert_overdue_feeds
    from homicide_assets.lib.registry import default_registry

    channel = alert_channel_resource().process_config_and_initialize().channel()  # resolves EnvVar fields
    url = data_dir.database_url()
    _, raised = raise_pending_alerts(instance, url, channel)
    overdue = alert_overdue_feeds(url, default_registry(), datetime.now(timezone.utc).date(), channel)
    return len(raised) + len(overdue)


def _print_outputs(data_dir: DataDir, say) -> None:
    reports = sorted(data_dir.reports.glob("*/death_investigations_report.html"))
    say("outputs:")
    say(f"  data directory : {data_dir.root}")
    say(f"  warehouse      : {data_dir.warehouse}")
    say(f"  quarantine     : {data_dir.quarantine}")
    say(f"  ledger         : {data_dir.database_url()} (homicide-assets ledger)")
    if reports:
        say(f"  report         : {reports[-1]}")
        partner = reports[-1].with_name("partner_edition.html")
        if partner.exists():
            say(f"  partner edition: {partner}")
    say(f"  dagster home   : {os.environ['DAGSTER_HOME']} (make ui to browse runs)")


def print_ledger() -> int:
    data_dir = _prepare_environment()
    from sqlmodel import select

    from homicide_assets.lib.store import session_scope
    from homicide_assets.lib.store.ingest import Delivery, Receipt

    with session_scope(data_dir.database_url()) as s:
        deliveries = s.exec(select(Delivery).order_by(Delivery.id)).all()
        receipts = s.exec(select(Receipt).where(Receipt.outcome != "accepted").order_by(Receipt.id)).all()
    print(f"{'delivery_id':58} {'status':12} {'read':>7} {'staged':>7} {'quar.':>6} {'super.':>6}  sha256")
    for d in deliveries:
        print(f"{d.delivery_id:58} {d.status:12} {d.rows_read or 0:>7} {d.rows_staged or 0:>7} "
              f"{d.rows_quarantined or 0:>6} {d.rows_superseded or 0:>6}  {d.sha256[:16]}")
    for r in receipts:
        print(f"receipt {r.file_name}: {r.outcome} ({r.reason})")
    print(f"{len(deliveries)} deliveries, {len(receipts)} receipts not accepted")
    return 0


def record_series_decision(series_id: str, decision: str, by: str, note: str | None) -> int:
    """An analyst's decision on a flagged series, stored with who made it."""
    data_dir = _prepare_environment()
    from homicide_assets.lib.series_decisions import SERIES_DECISIONS, record_decision

    try:
        row = record_decision(data_dir.database_url(), series_id, decision, by, note)
    except ValueError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        print(f"decisions: {', '.join(SERIES_DECISIONS)}", file=sys.stderr)
        return 2
    print(f"recorded: series {row.series_id} {row.decision} by {row.decided_by} (size {row.size_at_decision})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="homicide-assets", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="take everything in $HOMICIDE_DATA_DIR/landing and materialise the whole graph")
    sub.add_parser("synth", help="generate synthetic partner deliveries (see: homicide-assets synth --help)",
                   add_help=False)
    sub.add_parser("ledger", help="list every delivery received, with row counts")
    sub.add_parser("recommendation-status", add_help=False,
                   help="record a review recommendation's status (see: homicide-assets recommendation-status --help)")
    decide = sub.add_parser("series-decision", help="record an analyst's decision on a flagged linked series")
    decide.add_argument("series_id")
    decide.add_argument("decision", help="linked, not_linked or under_review")
    decide.add_argument("--by", required=True, help="who decided (name or collar number)")
    decide.add_argument("--note")
    args, rest = parser.parse_known_args(argv)
    if args.command == "series-decision" and not rest:
        return record_series_decision(args.series_id, args.decision, args.by, args.note)
    if args.command == "recommendation-status":
        from homicide_assets.lessons_cli import main as lessons_main

        return lessons_main(rest)
    if args.command == "synth":
        from homicide_assets.synth import main as synth_main

        return synth_main(rest)
    if rest:
        parser.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.command == "ledger":
        return print_ledger()
    summary = run_build()
    return 1 if summary["failed_jobs"] else 0


if __name__ == "__main__":
    sys.exit(main())
