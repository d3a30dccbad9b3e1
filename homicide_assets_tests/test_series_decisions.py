"""Series across runs: stable ids, new and grown series, alerts once, analysts' decisions."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from sqlmodel import select

from homicide_assets.lib.alerts import AlertChannel, alerts
from homicide_assets.lib.series import LINKED_SERIES_SCHEMA
from homicide_assets.lib.series_decisions import match_to_seen, record_decision, record_series
from homicide_assets.lib.store import session_scope
from homicide_assets.lib.store.series import SeenSeries

STORE_ONLY = AlertChannel()  # no SMTP, no webhook: alerts are stored


def _series(*rows: tuple[str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "series_id": sid,
                "death_ids": ids,
                "police_report_ids": [],
                "size": len(ids),
                "score": 0.9,
                "kinds": ["shared_person"],
                "reason": "test",
                "first_flagged_on": date(2025, 5, 1),
                "flagged_at_member": 2,
            }
            for sid, ids in rows
        ],
        schema=LINKED_SERIES_SCHEMA,
    )


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'platform.db'}"


def test_a_series_keeps_its_id_as_it_grows_and_the_larger_part_keeps_it_when_split():
    seen = [("S-old", ["D1", "D2", "D3"])]
    grown = match_to_seen(_series(("S-new", ["D1", "D2", "D3", "D4"])), seen)
    row = grown.row(0, named=True)
    assert (row["series_id"], row["status"], row["previous_size"]) == ("S-old", "grown", 3)
    split = match_to_seen(_series(("S-a", ["D1", "D9"]), ("S-b", ["D2", "D3", "D8"])), seen)
    assert split["series_id"].to_list() == ["S-a", "S-old"]
    assert split["status"].to_list() == ["new", "unchanged"]
    # one shared death is not the same series
    assert match_to_seen(_series(("S-c", ["D1", "D7"])), seen)["status"].to_list() == ["new"]


def test_new_and_grown_series_alert_once_each(url):
    first = record_series(url, _series(("S-1", ["D1", "D2"])), channel=STORE_ONLY)
    assert first.new == ["S-1"] and first.alerted == ["S-1"]
    again = record_series(url, _series(("S-1", ["D1", "D2"])), channel=STORE_ONLY)
    assert again.alerted == [] and again.series["status"].to_list() == ["unchanged"]
    grown = record_series(url, _series(("S-x", ["D1", "D2", "D5"])), channel=STORE_ONLY)
    assert grown.grown == ["S-1"] and grown.alerted == ["S-1"]
    assert grown.series["series_id"].to_list() == ["S-1"]
    stored = alerts(url)
    assert sorted(a.kind for a in stored) == ["series_flagged", "series_grown"]
    grown_alert = next(a for a in stored if a.kind == "series_grown")
    assert "grown from 2 to 3 deaths" in grown_alert.subject
    assert "shared person" in grown_alert.body
    with session_scope(url) as s:
        row = s.exec(select(SeenSeries).where(SeenSeries.series_id == "S-1")).one()
    assert row.size == 3 and row.alerted_size == 3 and row.death_ids == "D1;D2;D5"
    gone = record_series(url, _series(("S-2", ["D7", "D8"])), channel=STORE_ONLY)
    assert gone.gone == ["S-1"] and gone.new == ["S-2"]


def test_a_dismissed_series_is_alerted_again_only_when_it_grows(url):
    record_series(url, _series(("S-1", ["D1", "D2"])), channel=STORE_ONLY)
    decision = record_decision(url, "S-1", "not_linked", "Analyst A", note="family members")
    assert decision.size_at_decision == 2
    # the same series found again after a rebuild that forgot it: no alert (dismissed at size 2)
    with session_scope(url) as s:
        s.delete(s.exec(select(SeenSeries)).one())
    quiet = record_series(url, _series(("S-1", ["D1", "D2"])), channel=STORE_ONLY)
    assert quiet.suppressed == ["S-1"] and quiet.alerted == []
    louder = record_series(url, _series(("S-1", ["D1", "D2", "D3"])), channel=STORE_ONLY)
    assert louder.alerted == ["S-1"]


def test_decisions_are_checked(url):
    record_series(url, _series(("S-1", ["D1", "D2"])), channel=STORE_ONLY)
    with pytest.raises(ValueError, match="decision must be one of"):
        record_decision(url, "S-1", "maybe", "Analyst A")
    with pytest.raises(ValueError, match="who made it"):
        record_decision(url, "S-1", "linked", " ")
    with pytest.raises(ValueError, match="no series 'S-9'"):
        record_decision(url, "S-9", "linked", "Analyst A")
