"""Small hand-written deliveries for ingest tests (the generator makes the big ones)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from homicide_assets.lib.feeds import FEEDS


def csv_bytes(feed: str, rows: list[dict], bom: bool = False, extra_columns: tuple[str, ...] = ()) -> bytes:
    """A CSV delivery of ``feed`` with the contract header (plus ``extra_columns``)."""
    header = FEEDS[feed].column_names + list(extra_columns)
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in header})
    data = buf.getvalue().encode("utf-8")
    return (b"\xef\xbb\xbf" + data) if bom else data


def death_report(n: int, **overrides) -> dict:
    row = {
        "report_id": f"DR-2026-{n:06d}", "reported_at": "2026-01-05T10:15", "date_of_death": "04/01/2026",
        "classification": "Suspected_Suicide", "investigation_status": "open", "forename": "Alex",
        "surname": f"Testperson{n}", "date_of_birth": "1990-02-03", "sex": "M", "ethnicity": "white",
        "nhs_number": "943 476 5919", "home_postcode": "b23 6tj", "incident_postcode": "B5 4TD",
        "incident_lat": "52.4770", "incident_lon": "-1.8990", "location_type": "street",
        "method": "hanging", "substances": "alcohol;Cocaine", "domestic_abuse_related": "N",
        "gang_related": "0", "suspects_count": "0", "officer_in_case": "4821",
        "attending_officers": "4821;5530", "narrative": 'Found by "J", near the canal,\nno note.',
    }
    row.update(overrides)
    return row


def person(report_n: int, seq: int, **overrides) -> dict:
    row = {
        "report_id": f"DR-2026-{report_n:06d}", "person_seq": str(seq), "role": "finder",
        "nominal_id": f"NOM{report_n:04d}X{seq}Q", "forename": "Sam", "surname": "Finder",
        "date_of_birth": "", "postcode": "B5 4TD", "phone": "+44 7700 900123",
    }
    row.update(overrides)
    return row


def drop(landing: Path, partner: str, file_name: str, data: bytes) -> Path:
    folder = landing / partner
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    path.write_bytes(data)
    return path
