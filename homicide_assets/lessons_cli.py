"""``recommendation-status``: the operator's path for recording a recommendation's status.

    homicide-assets recommendation-status set --review R --rec N --status S --by NAME
                                              [--evidence TEXT] [--on YYYY-MM-DD] [--allow-unknown]
    homicide-assets recommendation-status show --review R [--rec N]
    homicide-assets recommendation-status overdue

(also ``python -m homicide_assets.lessons_cli set ...``). ``set`` adds one row to the
``recommendation_status_updates`` table with who made the change and when; nothing is
overwritten. The next materialisation of ``lessons/recommendations`` merges it into the
recommendation's ``status_history`` beside the statuses partners delivered, and the latest
effective status becomes the current one. ``--on`` is the day the change took effect (the
board's decision date; default today). Statuses: not_started, in_progress, implemented,
verified, closed_not_implemented. The data directory and database come from
``HOMICIDE_DATA_DIR`` and ``HOMICIDE_DATABASE_URL`` as for every other command.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date

import polars as pl

from homicide_assets.lib.feeds import RECOMMENDATION_STATUS
from homicide_assets.lib.settings import DataDir

PROG = "homicide-assets recommendation-status"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Record or show the status of review recommendations.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set", help="record a status change (kept in the history with who and when)")
    s.add_argument("--review", required=True, help="review_id, as delivered")
    s.add_argument("--rec", required=True, help="recommendation_id within the review")
    s.add_argument("--status", required=True, choices=RECOMMENDATION_STATUS)
    s.add_argument("--by", required=True, help="who made the change (name and role)")
    s.add_argument("--evidence", help="what shows it was done (a document, a minute, a link)")
    s.add_argument("--on", type=date.fromisoformat, help="the day the change took effect (default today)")
    s.add_argument("--allow-unknown", action="store_true",
                   help="record it even though no delivery carried this recommendation yet")
    sh = sub.add_parser("show", help="a recommendation's current status and full history")
    sh.add_argument("--review", required=True)
    sh.add_argument("--rec")
    sub.add_parser("overdue", help="the overdue recommendations in the last lessons/recommendations")
    return parser


def _known_recommendations(data_dir: DataDir) -> pl.DataFrame | None:
    for key in (["lessons", "recommendations"], ["staged", "review_recommendations"]):
        path = data_dir.warehouse_file(key)
        if path.exists():
            return pl.read_parquet(path, columns=["review_id", "recommendation_id"])
    return None


def _set(args, data_dir: DataDir, out) -> int:
    from homicide_assets.lib.lessons_updates import StatusUpdateRefused, record_status_update

    known = None if args.allow_unknown else _known_recommendations(data_dir)
    if known is None and not args.allow_unknown:
        print(f"{PROG}: no recommendations have been built yet in {data_dir.warehouse} "
              "(run `homicide-assets build`), or pass --allow-unknown", file=sys.stderr)
        return 2
    try:
        row = record_status_update(data_dir.database_url(), args.review, args.rec, args.status, args.by,
                                   evidence=args.evidence, status_updated_on=args.on, known_recommendations=known)
    except StatusUpdateRefused as refused:
        print(f"{PROG}: refused: {refused}", file=sys.stderr)
        return 2
    print(f"recorded update #{row.id}: {row.review_id} rec {row.recommendation_id} -> {row.status} "
          f"(effective {row.status_updated_on}, by {row.changed_by}). It joins the status history at the next "
          "materialisation of lessons/recommendations.", file=out)
    return 0


def _show(args, data_dir: DataDir, out) -> int:
    from homicide_assets.lib.lessons_updates import read_operator_updates

    path = data_dir.warehouse_file(["lessons", "recommendations"])
    select = pl.col("review_id") == args.review
    if args.rec:
        select &= pl.col("recommendation_id") == args.rec
    if path.exists():
        recs = pl.read_parquet(path).filter(select)
        for r in recs.iter_rows(named=True):
            overdue = f", OVERDUE by {r['days_overdue']} days" if r["overdue"] else ""
            print(f"{r['review_id']} rec {r['recommendation_id']} ({r['review_type']}), owner {r['owner_organisation']}"
                  f": {r['status']} since {r['status_updated_on']}, due {r['due_on']}{overdue} (as of {r['as_of']})",
                  file=out)
            for h in r["status_history"]:
                where = f"delivery {h['delivery_id']} ({h['extract_date']})" if h["source"] == "delivery" else "operator"
                print(f"    {h['status_updated_on'] or '-':>10}  {h['status']:<24} by {h['changed_by']} via {where}",
                      file=out)
        if recs.is_empty():
            print(f"no recommendation matches in {path}", file=out)
    else:
        print(f"lessons/recommendations has not been built yet ({path})", file=out)
    updates = read_operator_updates(data_dir.database_url()).filter(select)
    if updates.height:
        print("operator updates recorded (all kept):", file=out)
        for u in updates.iter_rows(named=True):
            print(f"    #{u['update_id']} {u['review_id']} rec {u['recommendation_id']}: {u['status']} effective "
                  f"{u['status_updated_on']} by {u['changed_by']} (recorded {u['recorded_at']:%Y-%m-%d %H:%M} UTC)",
                  file=out)
    return 0


def _overdue(data_dir: DataDir, out) -> int:
    from homicide_assets.lib.lessons import overdue_list

    path = data_dir.warehouse_file(["lessons", "recommendations"])
    if not path.exists():
        print(f"lessons/recommendations has not been built yet ({path})", file=out)
        return 1
    overdue = overdue_list(pl.read_parquet(path))
    for r in overdue.iter_rows(named=True):
        print(f"{r['days_overdue']:>5} days  {r['review_id']} rec {r['recommendation_id']} ({r['review_type']}) "
              f"owner {r['owner_organisation']}: {r['status']}, due {r['due_on']}", file=out)
    print(f"{overdue.height} overdue", file=out)
    return 0


def main(argv: list[str] | None = None, out=None) -> int:
    """Run one ``recommendation-status`` subcommand; returns the exit code (0 ok, 2 refused)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "recommendation-status":
        argv = argv[1:]
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    data_dir = DataDir.from_env()
    if args.command == "set":
        return _set(args, data_dir, out)
    if args.command == "show":
        return _show(args, data_dir, out)
    return _overdue(data_dir, out)


if __name__ == "__main__":
    sys.exit(main())
