"""Good rows of every feed, as partners send them (text), for the quality and bad-input tests.

``good_rows(feed, n)`` returns ``n`` rows that honour the contract exactly, with distinct
keys, from a partner whose agreement permits the feed (``PARTNER_OF``). Tests break them
one rule at a time.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import polars as pl

from homicide_assets.lib.feeds import FEEDS

#: a partner whose agreement permits each feed
PARTNER_OF = {
    "death_reports": "wmp", "death_report_persons": "wmp", "me_deaths": "uhb", "ed_assaults": "uhb",
    "safeguarding_contacts": "bham", "inquests": "coroner_bs", "review_recommendations": "wmp",
}
#: NHS numbers with valid modulus-11 check digits
NHS_NUMBERS = ("9434765919", "9434765870", "4010232137", "9990000018")
BASE = date(2025, 3, 10)


def _d(days: int) -> str:
    return (BASE + timedelta(days=days)).isoformat()


def _uk(days: int) -> str:
    return (BASE + timedelta(days=days)).strftime("%d/%m/%Y")


def good_row(feed: str, i: int) -> dict[str, str]:
    """Row ``i`` of ``feed``: every rule of the contract honoured."""
    k = i % 7
    if feed == "death_reports":
        return {
            "report_id": f"DR-2025-{i + 1:06d}", "reported_at": f"{_d(k + 1)}T10:1{k}", "date_of_death": _uk(k),
            "classification": ("homicide", "Suspected_Suicide", "natural", "drug_related")[i % 4],
            "investigation_status": "open", "forename": "Alex", "surname": f"Testperson{i}",
            "date_of_birth": "1990-02-03", "sex": "mfxu"[i % 4].upper(), "ethnicity": "white",
            "nhs_number": NHS_NUMBERS[i % 4] if i % 3 else "", "home_postcode": "b23 6tj",
            "incident_postcode": "B5 4TD", "incident_lat": f"{52.47 + k * 0.002:.4f}",
            "incident_lon": f"{-1.899 + k * 0.002:.4f}", "location_type": "street", "method": "hanging",
            "substances": "alcohol;Cocaine" if i % 2 else "", "domestic_abuse_related": "N", "gang_related": "0",
            "suspects_count": str(k % 3), "officer_in_case": "4821", "attending_officers": "4821;5530",
            "narrative": 'Found by "J", near the canal,\nno note.',
        }
    if feed == "death_report_persons":
        return {
            "report_id": f"DR-2025-{i // 2 + 1:06d}", "person_seq": str(i % 2 + 1),
            "role": ("finder", "suspect", "witness")[i % 3], "nominal_id": f"N{1000 + i}" if i % 2 else "",
            "forename": "Sam", "surname": f"Finder{i}", "date_of_birth": "1985-07-01", "postcode": "B5 4TD",
            "phone": "+44 7700 900123" if i % 2 else "",
        }
    if feed == "me_deaths":
        return {
            "me_case_id": f"ME-{i + 1:05d}", "trust_code": "RRK" if i % 2 else "uhb",
            "nhs_number": NHS_NUMBERS[i % 4], "forename": "Pat", "surname": f"Patient{i}",
            "date_of_birth": "1941-11-30", "sex": "f", "home_postcode": "B15 2TT", "date_of_death": _d(k),
            "place_of_death_type": "hospital", "place_of_death_org": "RRK02", "cause_1a": "Pneumonia",
            "cause_1b": "", "cause_2": "", "icd10_underlying": ("J18.9", "X42", "I21")[i % 3],
            "attending_clinician_ref": f"CL{i % 5}", "referred_to_coroner": "N", "me_concern": "false",
        }
    if feed == "ed_assaults":
        return {
            "attendance_id": f"ED-{i + 1:06d}", "trust_code": "uhb", "arrived_at": f"{_d(k)} 23:4{k}",
            "patient_age": str(18 + i % 60), "patient_sex": "m", "assault_at": f"{_d(k)}T22:0{k}",
            "assault_location_type": "street", "assault_location_text": "outside the chip shop, Soho Road",
            "assault_postcode": "B21 9NH", "weapon": "knife", "assailant_relationship": "stranger",
            "disposal": "discharged",
        }
    if feed == "safeguarding_contacts":
        return {
            "contact_id": f"SC-{i + 1:06d}", "la_code": "E08000025", "service": "housing", "forename": "Jo",
            "surname": f"Client{i}", "date_of_birth": "2001-05-06", "nhs_number": NHS_NUMBERS[i % 4],
            "postcode": "B12 9QP", "first_contact_date": _d(-100 + k), "last_contact_date": _d(k),
            "open_case": "true", "concerns": "homelessness;Mental_Health" if i % 2 else "",
        }
    if feed == "inquests":
        return {
            "inquest_ref": f"INQ-{i + 1:05d}", "coroner_area": "Birmingham and Solihull",
            "police_report_id": f"DR-2025-{i + 1:06d}" if i % 2 else "", "forename": "Chris",
            "surname": f"Deceased{i}", "date_of_birth": "1970-01-01", "date_of_death": _d(k),
            "opened_on": _d(k + 5), "concluded_on": _d(k + 90) if i % 2 else "",
            "conclusion": "narrative" if i % 2 else "pending", "pfd_issued": "N",
        }
    if feed == "review_recommendations":
        return {
            "review_id": f"DARDR-{i // 3 + 1:03d}", "recommendation_id": f"R{i % 3 + 1}",
            "review_type": ("dardr", "pfd", "owhr")[i % 3], "review_title": "Review of a death",
            "linked_report_ids": f"DR-2025-{i + 1:06d};DR-2025-{i + 2:06d}" if i % 2 else "",
            "published_on": _d(k), "recommendation_text": "Share information earlier.",
            "owner_organisation": "wmp", "governance_board": "Community Safety Partnership",
            "accepted": "Y", "due_on": "" if i % 3 == 1 else _d(k + 180), "status": "in_progress",
            "status_updated_on": _d(k + 30), "evidence": "",
        }
    raise KeyError(feed)


def good_rows(feed: str, n: int) -> list[dict[str, str]]:
    return [good_row(feed, i) for i in range(n)]


def raw_frame(feed: str, rows: list[dict[str, str]], partner_id: str | None = None,
              delivery_id: str = "d1", extract_date: date = date(2025, 4, 1), seq: int = 0) -> pl.DataFrame:
    """The raw (text) frame the parser makes of ``rows`` delivered in one file."""
    partner_id = partner_id or PARTNER_OF[feed]
    columns = FEEDS[feed].column_names
    data = {c: [r.get(c) or None for r in rows] for c in columns}
    frame = pl.DataFrame(data, schema={c: pl.String for c in columns})
    return frame.with_columns(
        pl.lit(delivery_id).alias("_delivery_id"),
        pl.lit(partner_id).alias("_partner_id"),
        pl.lit(f"{partner_id}__{feed}__{extract_date:%Y%m%d}.csv").alias("_source_file"),
        pl.Series("_source_line", list(range(2, len(rows) + 2)), dtype=pl.Int64),
        pl.lit(extract_date, dtype=pl.Date).alias("_extract_date"),
        pl.lit(seq, dtype=pl.Int64).alias("_seq"),
    )


def csv_bytes(feed: str, rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    """A CSV delivery of ``rows`` with the contract header (or ``header``)."""
    header = header or FEEDS[feed].column_names
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in header})
    return buf.getvalue().encode("utf-8")
