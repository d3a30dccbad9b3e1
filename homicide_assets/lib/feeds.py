"""The partner feed contract (``shared/design/partner-feeds.md`` v1) as data.

This module is the single place the platform reads the feed specification from: the
parser, the stager, the synthetic generator, the expectation suites and the tests all
take column names, types, enumerations and rules from here. Change the contract here and
in the design document together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

ColumnType = Literal[
    "text", "timestamp", "date", "enum", "bool", "int", "float", "list", "nhs_number",
    "postcode",
]

LA_CODES: dict[str, str] = {
    "E08000025": "Birmingham",
    "E08000026": "Coventry",
    "E08000027": "Dudley",
    "E08000028": "Sandwell",
    "E08000029": "Solihull",
    "E08000030": "Walsall",
    "E08000031": "Wolverhampton",
}

SEX = ("m", "f", "x", "u")
ETHNICITY = ("white", "mixed", "asian", "black", "other", "not_stated")
CLASSIFICATION = (
    "homicide", "suspected_homicide", "suspicious", "unexplained", "suspected_suicide",
    "drug_related", "road_traffic", "accidental", "natural", "other",
)
INVESTIGATION_STATUS = (
    "open", "charged", "awaiting_inquest", "closed_nfa", "closed_convicted", "transferred",
)
LOCATION_TYPE = (
    "dwelling", "street", "public_open_space", "licensed_premises", "retail", "hospital",
    "care_home", "custody", "transport", "waterway", "other",
)
METHOD = (
    "sharp_instrument", "blunt_instrument", "hitting_kicking", "strangulation_asphyxiation",
    "shooting", "poisoning_drugs", "burning", "motor_vehicle", "fall", "drowning", "hanging",
    "other", "not_known",
)
SUBSTANCES = (
    "ghb", "heroin", "cocaine", "crack", "nitazene", "fentanyl", "benzodiazepine", "ketamine",
    "alcohol", "spice", "other",
)
PERSON_ROLE = (
    "suspect", "finder", "reporting_person", "last_seen_with", "witness", "associate",
    "next_of_kin",
)
PLACE_OF_DEATH_TYPE = ("hospital", "home", "care_home", "hospice", "public_place", "other")
WEAPON = ("knife", "firearm", "blunt_object", "body_part", "glass_bottle", "other", "not_known")
ASSAILANT_RELATIONSHIP = ("stranger", "acquaintance", "partner_ex_partner", "family", "not_known")
DISPOSAL = ("discharged", "admitted", "transferred", "died")
SERVICE = (
    "adult_social_care", "childrens_social_care", "early_help", "housing", "youth_justice",
    "substance_misuse", "mental_health",
)
CONCERNS = (
    "domestic_abuse", "criminal_exploitation", "sexual_exploitation", "mental_health",
    "substance_misuse", "homelessness", "self_neglect", "gang_association", "missing_episodes",
)
CONCLUSION = (
    "unlawful_killing", "lawful_killing", "suicide", "accident_misadventure", "drug_related",
    "alcohol_related", "natural_causes", "road_traffic_collision", "open", "narrative", "pending",
)
REVIEW_TYPE = ("dardr", "owhr", "sar", "cspr", "pfd", "iopc", "inspectorate", "mir_debrief", "other")
RECOMMENDATION_STATUS = (
    "not_started", "in_progress", "implemented", "verified", "closed_not_implemented",
)

REPORT_ID_PATTERN = r"^DR-\d{4}-\d{6}$"
#: Days a coroner's Prevention of Future Deaths report allows for a response
#: (Coroners (Investigations) Regulations 2013, reg. 29(4)(b)).
PFD_RESPONSE_DAYS = 56


@dataclass(frozen=True)
class Column:
    """One column of a feed as the contract states it."""

    name: str
    type: ColumnType
    required: bool = False
    key: bool = False
    values: tuple[str, ...] = ()  # allowed values for enum and list columns
    pattern: str | None = None  # regular expression a text value must match
    min_value: float | None = None
    max_value: float | None = None
    max_length: int | None = None
    #: identifiers replaced by a keyed pseudonym in staged tables (column ``<name>_key``)
    pseudonymise: bool = False
    #: personal data (names, dates of birth, postcodes): never logged, masked in quarantine
    personal: bool = False


@dataclass(frozen=True)
class Feed:
    """One partner feed: its columns, key and the rules that span columns or rows."""

    name: str
    sector: str
    columns: tuple[Column, ...]
    #: columns that identify a record; uniqueness is within a partner (trust, authority...)
    key: tuple[str, ...]
    #: (earlier, later) pairs that must be in order when both are present
    date_order: tuple[tuple[str, str], ...] = ()
    description: str = ""
    extra_rules: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"feed {self.name} has no column {name!r}")


def _c(name: str, type_: ColumnType, **kw) -> Column:
    return Column(name=name, type=type_, **kw)


_NAME = {"personal": True}

FEEDS: dict[str, Feed] = {
    "death_reports": Feed(
        name="death_reports",
        sector="police",
        description="Every death the force records.",
        key=("report_id",),
        date_order=(("date_of_birth", "date_of_death"), ("date_of_death", "reported_at")),
        columns=(
            _c("report_id", "text", required=True, key=True, pattern=REPORT_ID_PATTERN),
            _c("reported_at", "timestamp", required=True),
            _c("date_of_death", "date"),
            _c("classification", "enum", required=True, values=CLASSIFICATION),
            _c("investigation_status", "enum", required=True, values=INVESTIGATION_STATUS),
            _c("forename", "text", required=True, **_NAME),
            _c("surname", "text", required=True, **_NAME),
            _c("date_of_birth", "date", **_NAME),
            _c("sex", "enum", required=True, values=SEX),
            _c("ethnicity", "enum", values=ETHNICITY),
            _c("nhs_number", "nhs_number", pseudonymise=True),
            _c("home_postcode", "postcode", **_NAME),
            _c("incident_postcode", "postcode"),
            _c("incident_lat", "float", required=True, min_value=-90, max_value=90),
            _c("incident_lon", "float", required=True, min_value=-180, max_value=180),
            _c("location_type", "enum", required=True, values=LOCATION_TYPE),
            _c("method", "enum", values=METHOD),
            _c("substances", "list", values=SUBSTANCES),
            _c("domestic_abuse_related", "bool", required=True),
            _c("gang_related", "bool"),
            _c("suspects_count", "int", min_value=0),
            _c("officer_in_case", "text"),
            _c("attending_officers", "list"),
            _c("narrative", "text", max_length=4000),
        ),
        extra_rules=("incident coordinates inside the force area (plus a small margin)",),
    ),
    "death_report_persons": Feed(
        name="death_report_persons",
        sector="police",
        description="People recorded against a death report other than the deceased.",
        key=("report_id", "person_seq"),
        columns=(
            _c("report_id", "text", required=True, key=True, pattern=REPORT_ID_PATTERN),
            _c("person_seq", "int", required=True, key=True, min_value=1),
            _c("role", "enum", required=True, values=PERSON_ROLE),
            _c("nominal_id", "text", pseudonymise=True),
            _c("forename", "text", required=True, **_NAME),
            _c("surname", "text", required=True, **_NAME),
            _c("date_of_birth", "date", **_NAME),
            _c("postcode", "postcode", **_NAME),
            _c("phone", "text", pseudonymise=True),
        ),
        extra_rules=("report_id exists in death_reports (across deliveries)",),
    ),
    "me_deaths": Feed(
        name="me_deaths",
        sector="health",
        description="Deaths scrutinised by NHS medical examiner offices.",
        key=("me_case_id",),
        date_order=(("date_of_birth", "date_of_death"),),
        columns=(
            _c("me_case_id", "text", required=True, key=True),
            _c("trust_code", "text", required=True),
            _c("nhs_number", "nhs_number", pseudonymise=True),
            _c("forename", "text", required=True, **_NAME),
            _c("surname", "text", required=True, **_NAME),
            _c("date_of_birth", "date", required=True, **_NAME),
            _c("sex", "enum", required=True, values=SEX),
            _c("home_postcode", "postcode", **_NAME),
            _c("date_of_death", "date", required=True),
            _c("place_of_death_type", "enum", required=True, values=PLACE_OF_DEATH_TYPE),
            _c("place_of_death_org", "text"),
            _c("cause_1a", "text"),
            _c("cause_1b", "text"),
            _c("cause_2", "text"),
            _c("icd10_underlying", "text", pattern=r"^[A-Z]\d{2}(\.\d{1,2})?$"),
            _c("attending_clinician_ref", "text"),
            _c("referred_to_coroner", "bool", required=True),
            _c("me_concern", "bool", required=True),
        ),
        extra_rules=("trust_code is the delivering partner's own trust",),
    ),
    "ed_assaults": Feed(
        name="ed_assaults",
        sector="health",
        description="Emergency department assault attendances (ISTV); anonymous by design.",
        key=("attendance_id",),
        date_order=(("assault_at", "arrived_at"),),
        columns=(
            _c("attendance_id", "text", required=True, key=True),
            _c("trust_code", "text", required=True),
            _c("arrived_at", "timestamp", required=True),
            _c("patient_age", "int", min_value=0, max_value=120),
            _c("patient_sex", "enum", values=SEX),
            _c("assault_at", "timestamp"),
            _c("assault_location_type", "enum", values=LOCATION_TYPE),
            _c("assault_location_text", "text"),
            _c("assault_postcode", "postcode"),
            _c("weapon", "enum", values=WEAPON),
            _c("assailant_relationship", "enum", values=ASSAILANT_RELATIONSHIP),
            _c("disposal", "enum", required=True, values=DISPOSAL),
        ),
        extra_rules=("trust_code is the delivering partner's own trust",),
    ),
    "safeguarding_contacts": Feed(
        name="safeguarding_contacts",
        sector="local_authority",
        description="Local authority service contacts for people named in death notifications.",
        key=("contact_id",),
        date_order=(("first_contact_date", "last_contact_date"),),
        columns=(
            _c("contact_id", "text", required=True, key=True),
            _c("la_code", "text", required=True, values=tuple(LA_CODES)),
            _c("service", "enum", required=True, values=SERVICE),
            _c("forename", "text", required=True, **_NAME),
            _c("surname", "text", required=True, **_NAME),
            _c("date_of_birth", "date", **_NAME),
            _c("nhs_number", "nhs_number", pseudonymise=True),
            _c("postcode", "postcode", **_NAME),
            _c("first_contact_date", "date"),
            _c("last_contact_date", "date"),
            _c("open_case", "bool", required=True),
            _c("concerns", "list", values=CONCERNS),
        ),
        extra_rules=("la_code is the delivering authority's own GSS code",),
    ),
    "inquests": Feed(
        name="inquests",
        sector="coroner",
        description="Inquests opened and concluded by HM Coroners.",
        key=("inquest_ref",),
        date_order=(("opened_on", "concluded_on"), ("date_of_birth", "date_of_death")),
        columns=(
            _c("inquest_ref", "text", required=True, key=True),
            _c("coroner_area", "text", required=True),
            _c("police_report_id", "text", pattern=REPORT_ID_PATTERN),
            _c("forename", "text", required=True, **_NAME),
            _c("surname", "text", required=True, **_NAME),
            _c("date_of_birth", "date", **_NAME),
            _c("date_of_death", "date", required=True),
            _c("opened_on", "date"),
            _c("concluded_on", "date"),
            _c("conclusion", "enum", values=CONCLUSION),
            _c("pfd_issued", "bool"),
        ),
    ),
    "review_recommendations": Feed(
        name="review_recommendations",
        sector="any",
        description="One row per recommendation of a published learning review.",
        key=("review_id", "recommendation_id"),
        date_order=(("published_on", "status_updated_on"),),
        columns=(
            _c("review_id", "text", required=True, key=True),
            _c("recommendation_id", "text", required=True, key=True),
            _c("review_type", "enum", required=True, values=REVIEW_TYPE),
            _c("review_title", "text", required=True),
            _c("linked_report_ids", "list", pattern=REPORT_ID_PATTERN),
            _c("published_on", "date", required=True),
            _c("recommendation_text", "text", required=True),
            _c("owner_organisation", "text", required=True),
            _c("governance_board", "text"),
            _c("accepted", "bool"),
            _c("due_on", "date"),
            _c("status", "enum", required=True, values=RECOMMENDATION_STATUS),
            _c("status_updated_on", "date"),
            _c("evidence", "text"),
        ),
        extra_rules=("pfd due_on defaults to published_on + 56 days",),
    ),
}

FEED_NAMES: tuple[str, ...] = tuple(FEEDS)

#: ``<partner_id>__<feed>__<YYYYMMDD>[__<seq>].<csv|xlsx|parquet>``
FILE_NAME_PATTERN = re.compile(
    r"^(?P<partner_id>[a-z][a-z0-9_]*?)__(?P<feed>[a-z_]+?)__(?P<extract_date>\d{8})"
    r"(?:__(?P<seq>\d{1,4}))?\.(?P<extension>csv|xlsx|parquet)$"
)
FILE_EXTENSIONS = ("csv", "xlsx", "parquet")


def record_key_columns(feed: str) -> tuple[str, ...]:
    """Columns that identify one record of ``feed`` within one partner."""
    return FEEDS[feed].key
