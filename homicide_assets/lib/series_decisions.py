"""Series across runs: stable ids, what is new or grown, alerts, and analysts' decisions.

No Dagster here. The ``series/linked_series`` asset calls :func:`record_series` after each
search: every series is matched to one seen before (the one sharing most deaths, at least
two), keeps that id, and is marked ``new``, ``grown`` or ``unchanged``; a new or grown series
raises one alert (:func:`homicide_assets.lib.alerts.raise_alert`, de-duplicated on series
and size, so re-running never alerts twice) unless an analyst has dismissed it
(``not_linked``) at that size or larger. Alerts carry no personal data: the series id, size,
kinds, score and dates only; names live in the OFFICIAL-SENSITIVE table and report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import polars as pl
from sqlmodel import select

from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.series import SERIES_DECISIONS, SeenSeries, SeriesDecision

SERIES_STATUS = ("new", "grown", "unchanged")


def match_to_seen(series: pl.DataFrame, seen: Iterable[tuple[str, list[str]]]) -> pl.DataFrame:
    """``series`` with each row's id replaced by the id of the seen series sharing most of its
    deaths (two or more; ties to the older id), and ``previous_size`` (null when new).

    Each seen id is given to one current series at most (the one sharing most deaths), so a
    series that splits keeps its id on the larger part.
    """
    seen = [(sid, set(ids), len(ids)) for sid, ids in seen]
    candidates = []
    for i, ids in enumerate(series["death_ids"].to_list()):
        members = set(ids)
        for order, (sid, old, size) in enumerate(seen):
            shared = len(members & old)
            if shared >= 2:
                candidates.append((-shared, order, i, sid, size))
    candidates.sort()
    taken_rows: dict[int, tuple[str, int]] = {}
    taken_ids: set[str] = set()
    for _neg, _order, i, sid, size in candidates:
        if i in taken_rows or sid in taken_ids:
            continue
        taken_rows[i] = (sid, size)
        taken_ids.add(sid)
    ids = [taken_rows.get(i, (sid, None))[0] for i, sid in enumerate(series["series_id"].to_list())]
    previous = [taken_rows.get(i, (None, None))[1] for i in range(series.height)]
    out = series.with_columns(
        pl.Series("series_id", ids, dtype=pl.String),
        pl.Series("previous_size", previous, dtype=pl.Int64),
    )
    return out.with_columns(
        status=pl.when(pl.col("previous_size").is_null())
        .then(pl.lit("new"))
        .when(pl.col("size") > pl.col("previous_size"))
        .then(pl.lit("grown"))
        .otherwise(pl.lit("unchanged"))
    )


@dataclass
class SeriesChanges:
    """What one run changed: the series with stable ids and status, and the alerts raised."""

    series: pl.DataFrame
    new: list[str] = field(default_factory=list)
    grown: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    alerted: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)


def _alert(url: str, row: dict, status: str, channel) -> None:
    from homicide_assets.lib.alerts import raise_alert

    kinds = ", ".join(k.replace("_", " ") for k in row["kinds"]) or "none recorded"
    first = row.get("first_flagged_on")
    what = (
        "newly flagged" if status == "new" else f"grown from {row['previous_size']} to {row['size']} deaths"
    )
    body = "\n".join(
        [
            f"Linked series {row['series_id']}: {row['size']} deaths, score {row['score']:.2f}.",
            f"What links them: {kinds}.",
            f"It could first have been flagged on {first} (at its death number {row.get('flagged_at_member')})."
            if first
            else "It has no backtest date.",
            "The series' members and its reason (which may name people) are in series/linked_series "
            "(OFFICIAL-SENSITIVE).",
        ]
    )
    raise_alert(
        url,
        "series_flagged" if status == "new" else "series_grown",
        f"Series {row['series_id']} {what}",
        body,
        f"series:{row['series_id']}:{row['size']}",
        severity="WARN",
        next_step=(
            "Review the series in series/linked_series (or the full report) with the investigating team, "
            "then record a decision on it in series_decisions (linked, not_linked or under_review; "
            "homicide_assets.lib.series_decisions.record_decision). A series dismissed as not_linked is "
            "alerted again only if it grows."
        ),
        channel=channel,
        count_repeat=False,
    )


def latest_decisions(url: str) -> dict[str, SeriesDecision]:
    """The newest decision per series id."""
    with session_scope(url) as s:
        rows = s.exec(select(SeriesDecision).order_by(SeriesDecision.decided_at, SeriesDecision.id)).all()
    out: dict[str, SeriesDecision] = {}
    for r in rows:
        out[r.series_id] = r
    return out


def record_series(
    url: str, series: pl.DataFrame, channel=None, alert: bool = True, now: datetime | None = None
) -> SeriesChanges:
    """Match ``series`` to those seen before, store them, and alert on new and grown ones.

    Returns the series with stable ids and a ``status`` column, and what changed.
    """
    now = now or datetime.now(UTC)
    with session_scope(url) as s:
        seen_rows = s.exec(select(SeenSeries).order_by(SeenSeries.first_seen_at, SeenSeries.id)).all()
        seen = [(r.series_id, r.death_ids.split(";") if r.death_ids else []) for r in seen_rows]
    matched = match_to_seen(series, seen)
    decisions = latest_decisions(url)
    changes = SeriesChanges(series=matched)
    current = set(matched["series_id"].to_list())
    with session_scope(url) as s:
        by_id = {r.series_id: r for r in s.exec(select(SeenSeries)).all()}
        for row in matched.iter_rows(named=True):
            record = by_id.get(row["series_id"])
            if record is None:
                record = SeenSeries(
                    series_id=row["series_id"], death_ids="", size=0, score=0.0, kinds="", first_seen_at=now
                )
            record.death_ids = ";".join(row["death_ids"])
            record.size = row["size"]
            record.score = float(row["score"])
            record.kinds = ";".join(row["kinds"])
            record.first_flagged_on = row.get("first_flagged_on")
            record.last_seen_at = now
            record.status = row["status"]
            if row["status"] == "grown":
                record.grown_at = now
            s.add(record)
        for sid, record in by_id.items():
            if sid not in current and record.status != "gone":
                record.status = "gone"
                s.add(record)
                changes.gone.append(sid)
    for row in matched.filter(pl.col("status") != "unchanged").iter_rows(named=True):
        (changes.new if row["status"] == "new" else changes.grown).append(row["series_id"])
        decision = decisions.get(row["series_id"])
        if (
            decision is not None
            and decision.decision == "not_linked"
            and row["size"] <= decision.size_at_decision
        ):
            changes.suppressed.append(row["series_id"])
            continue
        if alert:
            _alert(url, row, row["status"], channel)
            changes.alerted.append(row["series_id"])
    if alert and changes.alerted:
        with session_scope(url) as s:
            for r in s.exec(select(SeenSeries).where(SeenSeries.series_id.in_(changes.alerted))).all():
                r.alerted_size = r.size
                s.add(r)
    return changes


def record_decision(
    url: str, series_id: str, decision: str, decided_by: str, note: str | None = None
) -> SeriesDecision:
    """Store an analyst's decision on a series (raises ``ValueError`` naming what is wrong)."""
    if decision not in SERIES_DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(SERIES_DECISIONS)}, not {decision!r}")
    if not decided_by.strip():
        raise ValueError("a decision needs the name of who made it (decided_by)")
    with session_scope(url) as s:
        seen = s.exec(select(SeenSeries).where(SeenSeries.series_id == series_id)).first()
        if seen is None:
            raise ValueError(f"no series {series_id!r} has been flagged (see series/linked_series)")
        row = SeriesDecision(
            series_id=series_id,
            decision=decision,
            decided_by=decided_by.strip(),
            size_at_decision=seen.size,
            note=note,
        )
        s.add(row)
        s.flush()
        s.refresh(row)
    return row
