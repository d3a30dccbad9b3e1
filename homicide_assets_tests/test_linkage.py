"""Person linkage (``lib/linkage.py``) and the death register (``lib/linkage_register.py``).

Frames are built here: a population that is not from the West Midlands (American and
French names, five-digit ZIP codes or none) for ``link_people``, and small staged feeds
for the register. Ground truth is known by construction and only used to score outputs.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from itertools import combinations

import polars as pl
import pytest

from homicide_assets.lib.linkage import (
    DEFAULT_THRESHOLD,
    cluster_pairs,
    dedupe_people,
    link_people,
    load_nicknames,
    standardise_people,
)
from homicide_assets.lib.linkage_eval import pairwise_scores
from homicide_assets.lib.linkage_register import (
    DEATH_REGISTER_COLUMNS,
    build_death_register,
    cluster_people,
    person_records,
)

FORENAMES = [
    "james",
    "robert",
    "john",
    "michael",
    "david",
    "william",
    "richard",
    "joseph",
    "thomas",
    "christopher",
    "daniel",
    "matthew",
    "jean",
    "pierre",
    "louis",
    "nicolas",
    "mathieu",
    "antoine",
    "marie",
    "camille",
    "chloé",
    "léa",
    "manon",
    "emma",
    "olivia",
    "sophia",
    "isabella",
    "mia",
    "charlotte",
    "amelia",
    "harper",
    "evelyn",
    "abigail",
    "elizabeth",
    "margaret",
    "susan",
    "jennifer",
    "patricia",
    "hélène",
    "stéphane",
    "nathalie",
    "françois",
    "brittany",
    "tyler",
    "dakota",
    "jamal",
    "deshawn",
    "latoya",
    "carlos",
    "guadalupe",
    "xochitl",
    "kenji",
]
SURNAMES = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "rodriguez",
    "martinez",
    "hernandez",
    "lopez",
    "gonzalez",
    "wilson",
    "anderson",
    "taylor",
    "moore",
    "jackson",
    "martin",
    "bernard",
    "dubois",
    "durand",
    "lefebvre",
    "leroy",
    "moreau",
    "simon",
    "laurent",
    "michel",
    "fournier",
    "girard",
    "bonnet",
    "dupont",
    "lambert",
    "fontaine",
    "rousseau",
    "vincent",
    "nguyen",
    "kowalski",
    "o'brien",
    "washington",
    "begay",
    "yamamoto",
    "okafor",
    "schmidt",
    "rossi",
    "haddad",
    "cohen",
    "ivanova",
    "da silva",
    "van der berg",
]


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(1, len(text))
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1 :]  # dropped letter
    if kind == 1 and i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]  # transposed letters
    return text[:i] + rng.choice("aeioulnrst") + text[i:]  # extra letter


def non_uk_people(n_people: int = 250, seed: int = 11) -> pl.DataFrame:
    """American and French people, some recorded two or three times with realistic noise.

    Columns: id, forename, surname, date_of_birth, postcode (US ZIP or null), sex,
    nhs_number (a national id, present for some), person (the truth, for scoring only).
    """
    rng = random.Random(seed)
    rows = []
    for person in range(n_people):
        truth = {
            "forename": rng.choice(FORENAMES),
            "surname": rng.choice(SURNAMES),
            "date_of_birth": date(1935, 1, 1) + timedelta(days=rng.randrange(80 * 365)),
            "sex": rng.choice("mf"),
            "postcode": f"{rng.randrange(10000, 99999)}",
            "nhs_number": f"{rng.randrange(10**9):09d}" if rng.random() < 0.4 else None,
        }
        copies = 1 + (rng.random() < 0.35) + (rng.random() < 0.12)
        for copy in range(copies):
            rec = dict(truth, person=person)
            if copy:
                noise = rng.random()
                if noise < 0.2:
                    rec["forename"] = _typo(rng, rec["forename"])
                elif noise < 0.35:
                    rec["surname"] = _typo(rng, rec["surname"])
                elif noise < 0.45 and rec["date_of_birth"].day <= 12:
                    d = rec["date_of_birth"]
                    rec["date_of_birth"] = date(d.year, d.day, d.month)
                elif noise < 0.55:
                    rec["forename"] = rec["forename"].upper()
                    rec["surname"] = f" {rec['surname'].title()} "
                if rng.random() < 0.3:
                    rec["postcode"] = None
                if rng.random() < 0.5:
                    rec["nhs_number"] = None
            rows.append(rec)
    rng.shuffle(rows)
    for i, rec in enumerate(rows):
        rec["id"] = f"US-{i:05d}"
    return pl.DataFrame(rows).select(
        "id", "forename", "surname", "date_of_birth", "postcode", "sex", "nhs_number", "person"
    )


def true_pairs(frame: pl.DataFrame, id_col: str = "id", entity_col: str = "person") -> set[tuple]:
    out = set()
    for ids in frame.group_by(entity_col).agg(pl.col(id_col))[id_col].to_list():
        out.update(combinations(sorted(ids), 2))
    return out


@pytest.fixture(scope="module")
def people() -> pl.DataFrame:
    return non_uk_people()


@pytest.fixture(scope="module")
def deduped(people: pl.DataFrame) -> pl.DataFrame:
    return link_people(people.drop("person"), threshold=0.5, with_evidence=True)


# --------------------------------------------------------------------------------------
# link_people


def test_link_people_dedupes_non_uk_people_with_high_precision_and_recall(people, deduped):
    at_default = deduped.filter(pl.col("match_probability") >= DEFAULT_THRESHOLD)
    predicted = {tuple(sorted(p)) for p in at_default.select("id_l", "id_r").iter_rows()}
    scores = pairwise_scores(predicted, true_pairs(people))
    assert scores["precision"] >= 0.97, scores
    assert scores["recall"] >= 0.9, scores
    assert set(deduped.columns) == {"id_l", "id_r", "match_probability", "match_weight", "evidence"}


def test_threshold_keyword_filters_and_is_validated(people, deduped):
    assert deduped["match_probability"].min() >= 0.5
    strict = link_people(people.drop("person"), threshold=0.999)
    assert strict.columns == ["id_l", "id_r", "match_probability"]
    assert strict["match_probability"].min() >= 0.999
    assert 0 < strict.height < deduped.height
    strict_pairs = set(strict.select("id_l", "id_r").iter_rows())
    assert strict_pairs <= set(deduped.select("id_l", "id_r").iter_rows())
    with pytest.raises(ValueError, match="threshold"):
        link_people(people.drop("person"), threshold=1.5)


def test_nickname_typo_hyphenated_surname_and_swapped_birth_date_are_found(people):
    base = people.drop("person", "nhs_number")
    hard = pl.DataFrame(
        {
            "id": ["H1", "H2", "H3", "H4", "H5", "H6", "H7", "H8"],
            "forename": ["William", "Bill", "Margaret", "Peggy", "Zoé", "Zoe", "Stéphane", "Stephane"],
            "surname": [
                "Kowalczyk",
                "Kowalczyk",
                "Achterberg-Lindqvist",
                "Lindqvist",
                "Okonkwo",
                "Okonkow",
                "Marchetti",
                "Marchetti",
            ],
            "date_of_birth": [
                date(1961, 3, 9),
                date(1961, 3, 9),
                date(1948, 11, 2),
                date(1948, 11, 2),
                date(1990, 4, 7),
                date(1990, 4, 7),
                date(1975, 2, 11),
                date(1975, 11, 2),
            ],
            "postcode": [None, "60614", "75011", None, None, None, "13001", "13001"],
            "sex": ["m", "m", "f", "f", "f", "f", "m", "m"],
        }
    )
    found = link_people(pl.concat([base, hard]), threshold=DEFAULT_THRESHOLD, with_evidence=True)
    pairs = {tuple(sorted(p)): e for *p, e in found.select("id_l", "id_r", "evidence").iter_rows()}
    assert ("H1", "H2") in pairs, "nickname Bill ~ William"
    assert "nickname" in pairs[("H1", "H2")]
    assert ("H3", "H4") in pairs, "double-barrelled surname ~ one part"
    assert ("H5", "H6") in pairs, "accent and typo"
    assert ("H7", "H8") in pairs, "day and month of birth swapped"
    assert "swapped" in pairs[("H7", "H8")]
    assert not any(
        k[0].startswith("H")
        and k[1].startswith("H")
        and k[0][1] != k[1][1]
        and {k[0], k[1]} not in ({"H1", "H2"}, {"H3", "H4"}, {"H5", "H6"}, {"H7", "H8"})
        for k in pairs
    )


def test_nhs_number_matches_exactly_and_a_different_one_separates_namesakes(people):
    base = people.drop("person")
    special = pl.DataFrame(
        {
            "id": ["N1", "N2", "N3", "N4"],
            # N1/N2: same number, forename recorded differently, birth date keyed wrong
            "forename": ["Anneliese", "Annie", "Gunther", "Gunther"],
            "surname": ["Brandvold", "Brandvold", "Oyelaran", "Oyelaran"],
            "date_of_birth": [date(1970, 5, 20), date(1971, 8, 20), date(1984, 1, 30), date(1984, 1, 31)],
            "postcode": [None, None, "02139", "02139"],
            "sex": ["f", "f", "m", "m"],
            # N3/N4: same name and ZIP, birth dates a keystroke apart, different national
            # numbers: two people (identical name and birth date would be a mis-keyed number)
            "nhs_number": ["4857773456", "4857773456", "9434765919", "9434765870"],
        }
    )
    found = link_people(pl.concat([base, special]), threshold=0.0)
    prob = {tuple(sorted(p[:2])): p[2] for p in found.iter_rows()}
    assert prob[("N1", "N2")] >= DEFAULT_THRESHOLD
    assert prob.get(("N3", "N4"), 0.0) < DEFAULT_THRESHOLD


def test_link_two_frames_keeps_left_ids_on_the_left(people):
    left = people.filter(pl.col("id") < "US-00200").drop("person")
    right = people.filter(pl.col("id") >= "US-00200").drop("person")
    found = link_people(left, right)
    assert found.height > 0
    assert found["id_l"].is_in(left["id"].implode()).all()
    assert found["id_r"].is_in(right["id"].implode()).all()
    truth = {(a, b) for a, b in true_pairs(people) if (a < "US-00200") != (b < "US-00200")}
    truth = {tuple(sorted(p)) for p in truth}
    predicted = {tuple(sorted(p)) for p in found.select("id_l", "id_r").iter_rows()}
    scores = pairwise_scores(predicted, truth)
    assert scores["precision"] >= 0.95 and scores["recall"] >= 0.85, scores


def test_dedupe_people_clusters_and_cluster_ids_are_stable(people):
    clustered = dedupe_people(people.drop("person"))
    assert clustered.height == people.height
    again = cluster_pairs(
        people["id"],
        pl.DataFrame({"id_l": ["US-00003"], "id_r": ["US-00001"], "match_probability": [0.95]}),
    )
    row = again.filter(pl.col("id") == "US-00003").row(0, named=True)
    assert row["cluster_id"] == "US-00001" and row["cluster_size"] == 2
    # clusters agree with the truth far more than by chance
    joined = clustered.join(people.select("id", "person"), on="id")
    predicted = true_pairs(joined, entity_col="cluster_id")
    scores = pairwise_scores(predicted, true_pairs(people))
    assert scores["f1"] >= 0.9, scores


def test_standardise_people_folds_names_and_expands_nicknames():
    frame = pl.DataFrame(
        {
            "forename": ["  Zoë ", "BILL", "unknown"],
            "surname": ["O'Brien-Smith", "de la Cruz", "UNKNOWN"],
            "date_of_birth": ["1980-02-03", None, "1999-12-31"],
        }
    )
    out = standardise_people(frame)
    assert out["forename"].to_list() == ["zoe", "bill", None]
    assert out["surname"].to_list() == ["obrien smith", "de la cruz", None]
    assert out["surname_tokens"][0].to_list() == ["obrien", "smith"]
    assert "william" in out["forename_names"][1].to_list()
    assert out["date_of_birth_swapped"][0] == date(1980, 3, 2)
    assert "william" in load_nicknames()["bill"]


def test_link_people_rejects_frames_without_ids():
    with pytest.raises(ValueError, match="id"):
        link_people(pl.DataFrame({"forename": ["a"], "surname": ["b"], "date_of_birth": [date(2000, 1, 1)]}))
    dup = pl.DataFrame(
        {"id": [1, 1], "forename": ["a", "b"], "surname": ["c", "d"], "date_of_birth": [date(2000, 1, 1)] * 2}
    )
    with pytest.raises(ValueError, match="duplicate ids"):
        link_people(dup)


# --------------------------------------------------------------------------------------
# The death register on small staged feeds built by hand

KEY = b"test-pseudonym-key-0123456789abcdef"
BIRMINGHAM, COVENTRY, WOLVERHAMPTON = (52.4862, -1.8904), (52.4068, -1.5197), (52.5862, -2.1286)


def _staged(
    feed: str, partner: str, key_col: str, rows: list[dict], extract: date = date(2025, 6, 1)
) -> pl.DataFrame:
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(
        pl.lit(partner).alias("_partner_id"),
        pl.lit(extract).alias("_extract_date"),
        pl.concat_str([pl.lit(f"{feed}:{partner}:"), pl.col(key_col).cast(pl.String)]).alias("record_key"),
    )


def _report(report_id, forename, surname, dob, sex, dod, classification, place, nhs=None, postcode=None):
    return {
        "report_id": report_id,
        "forename": forename,
        "surname": surname,
        "date_of_birth": dob,
        "sex": sex,
        "date_of_death": dod,
        "classification": classification,
        "incident_lat": place[0],
        "incident_lon": place[1],
        "nhs_number_key": nhs,
        "home_postcode": postcode,
    }


def _me(
    case, forename, surname, dob, sex, dod, icd10, nhs=None, postcode=None, referred=False, concern=False
):
    return {
        "me_case_id": case,
        "forename": forename,
        "surname": surname,
        "date_of_birth": dob,
        "sex": sex,
        "date_of_death": dod,
        "icd10_underlying": icd10,
        "nhs_number_key": nhs,
        "home_postcode": postcode,
        "referred_to_coroner": referred,
        "me_concern": concern,
    }


def _inquest(ref, forename, surname, dob, dod, conclusion, police_report_id=None):
    return {
        "inquest_ref": ref,
        "forename": forename,
        "surname": surname,
        "date_of_birth": dob,
        "date_of_death": dod,
        "conclusion": conclusion,
        "police_report_id": police_report_id,
    }


def _contact(contact, forename, surname, dob, service, first, nhs=None):
    return {
        "contact_id": contact,
        "forename": forename,
        "surname": surname,
        "date_of_birth": dob,
        "service": service,
        "first_contact_date": first,
        "nhs_number_key": nhs,
    }


def hand_built_staged() -> dict[str, pl.DataFrame]:
    """Five deaths: police natural vs inquest unlawful killing with dates four days apart;
    a death only the NHS and a coroner know; a homicide known to housing before the death
    (and to youth justice after it); a suicide known to adult social care; a natural death
    only the medical examiner knows. One finder appears in two reports."""
    d = date
    reports = _staged(
        "death_reports",
        "wmp",
        "report_id",
        [
            _report(
                "DR-2025-000101",
                "John",
                "Smith",
                d(1980, 3, 4),
                "m",
                d(2025, 1, 10),
                "natural",
                BIRMINGHAM,
                nhs="nhsA",
                postcode="B23 6TJ",
            ),
            _report(
                "DR-2025-000102", "Aisha", "Khan", d(1999, 11, 12), "f", d(2025, 3, 3), "homicide", COVENTRY
            ),
            _report(
                "DR-2025-000103",
                "Robert",
                "Brown",
                d(1950, 6, 7),
                "m",
                d(2025, 4, 4),
                "suspected_suicide",
                WOLVERHAMPTON,
            ),
        ],
    )
    persons = _staged(
        "death_report_persons",
        "wmp",
        "report_id",
        [
            {
                "report_id": "DR-2025-000102",
                "person_seq": 1,
                "role": "finder",
                "forename": "Peter",
                "surname": "Green",
                "date_of_birth": d(1985, 1, 1),
                "phone_key": "phone1",
            },
            {
                "report_id": "DR-2025-000103",
                "person_seq": 1,
                "role": "finder",
                "forename": "Pete",
                "surname": "Green",
                "date_of_birth": d(1985, 1, 1),
                "phone_key": "phone1",
            },
        ],
    ).with_columns(
        record_key=pl.concat_str([pl.col("record_key"), pl.lit("|"), pl.col("person_seq").cast(pl.String)])
    )
    me = pl.concat(
        [
            _staged(
                "me_deaths",
                "uhb",
                "me_case_id",
                [
                    _me("ME1", "John", "Smith", d(1980, 3, 4), "m", d(2025, 1, 14), "I21.9", nhs="nhsA"),
                    _me(
                        "ME2",
                        "Mary",
                        "Jones",
                        d(1950, 7, 8),
                        "f",
                        d(2025, 2, 1),
                        "X42",
                        nhs="nhsB",
                        postcode="WS1 1AA",
                        referred=True,
                    ),
                ],
            ),
            _staged(
                "me_deaths",
                "rwt",
                "me_case_id",
                [
                    _me(
                        "ME3",
                        "Doris",
                        "Ollerenshaw",
                        d(1930, 2, 2),
                        "f",
                        d(2025, 2, 20),
                        "I50.0",
                        nhs="nhsC",
                        referred=True,
                    ),
                ],
            ),
            _staged(
                "me_deaths",
                "uhcw",
                "me_case_id",
                [
                    _me("ME4", "Aisha", "Khan", d(1999, 11, 12), "f", d(2025, 3, 3), "X99", nhs="nhsD"),
                ],
            ),
        ]
    )
    inquests = _staged(
        "inquests",
        "coroner_bs",
        "inquest_ref",
        [
            _inquest(
                "INQ1", "Jon", "Smith", d(1980, 3, 4), d(2025, 1, 10), "unlawful_killing", "DR-2025-000101"
            ),
            _inquest("INQ2", "Mary", "Jones", d(1950, 7, 8), d(2025, 2, 1), "pending"),
        ],
    )
    contacts = pl.concat(
        [
            _staged(
                "safeguarding_contacts",
                "bham",
                "contact_id",
                [
                    _contact("SC1", "Aisha", "Khan", d(1999, 11, 12), "housing", d(2024, 5, 1), nhs="nhsD"),
                    _contact("SC3", "Robert", "Brown", d(1950, 6, 7), "adult_social_care", d(2023, 1, 1)),
                ],
            ),
            _staged(
                "safeguarding_contacts",
                "cov",
                "contact_id",
                [
                    _contact("SC2", "Aisha", "Khan", d(1999, 11, 12), "youth_justice", d(2025, 4, 1)),
                ],
            ),
        ]
    )
    return {
        "death_reports": reports,
        "death_report_persons": persons,
        "me_deaths": me,
        "inquests": inquests,
        "safeguarding_contacts": contacts,
    }


HAND_LINKS = [  # the pairs a correct matcher finds in hand_built_staged()
    ("death_reports:wmp:DR-2025-000101", "me_deaths:uhb:ME1", 0.97),
    ("death_reports:wmp:DR-2025-000101", "inquests:coroner_bs:INQ1", 1.0),
    ("inquests:coroner_bs:INQ2", "me_deaths:uhb:ME2", 0.95),
    ("death_reports:wmp:DR-2025-000102", "me_deaths:uhcw:ME4", 0.99),
    ("death_reports:wmp:DR-2025-000102", "safeguarding_contacts:bham:SC1", 0.93),
    ("death_reports:wmp:DR-2025-000102", "safeguarding_contacts:cov:SC2", 0.92),
    ("death_reports:wmp:DR-2025-000103", "safeguarding_contacts:bham:SC3", 0.96),
    ("death_report_persons:wmp:DR-2025-000102|1", "death_report_persons:wmp:DR-2025-000103|1", 0.98),
]


def _hand_matches() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "record_key_l": [a for a, _, _ in HAND_LINKS],
            "record_key_r": [b for _, b, _ in HAND_LINKS],
            "match_probability": [p for _, _, p in HAND_LINKS],
            "linked": [True] * len(HAND_LINKS),
        }
    )


@pytest.fixture(scope="module")
def hand_register() -> pl.DataFrame:
    staged = hand_built_staged()
    records = person_records(staged)
    clusters = cluster_people(records, _hand_matches(), KEY)
    return build_death_register(staged, records, clusters, _hand_matches(), KEY)


def _death(register: pl.DataFrame, record_key: str) -> dict:
    rows = register.filter(pl.col("source_records").list.contains(record_key))
    assert rows.height == 1, f"{record_key} is in {rows.height} deaths"
    return rows.row(0, named=True)


def test_death_register_has_exactly_the_contract_columns(hand_register):
    assert tuple(hand_register.columns) == DEATH_REGISTER_COLUMNS
    assert DEATH_REGISTER_COLUMNS == (
        "death_id",
        "person_key",
        "police_report_id",
        "source_records",
        "date_of_death",
        "la_code",
        "sex",
        "age_at_death",
        "police_classification",
        "inquest_conclusion",
        "icd10_underlying",
        "known_to_services",
        "disagreements",
        "match_probability",
    )
    assert hand_register.height == 5
    assert hand_register["death_id"].n_unique() == 5
    assert hand_register["death_id"].str.contains(r"^D[0-9a-f]{16}$").all()


def test_death_register_joins_sources_and_names_the_disagreements(hand_register):
    smith = _death(hand_register, "death_reports:wmp:DR-2025-000101")
    assert smith["source_records"] == sorted(
        ["death_reports:wmp:DR-2025-000101", "me_deaths:uhb:ME1", "inquests:coroner_bs:INQ1"]
    )
    assert smith["police_report_id"] == "DR-2025-000101"
    assert smith["police_classification"] == "natural" and smith["inquest_conclusion"] == "unlawful_killing"
    assert smith["icd10_underlying"] == "I21.9"
    assert smith["la_code"] == "E08000025"  # from the incident coordinates
    assert smith["match_probability"] == pytest.approx(0.97)
    assert (
        "Police classified the death as natural but the inquest concluded unlawful killing"
        in smith["disagreements"]
    )
    assert any(t.startswith("Dates of death differ by 4 days") for t in smith["disagreements"])
    # two sources agree on 10 January against one on the 14th
    assert smith["date_of_death"] == date(2025, 1, 10)

    jones = _death(hand_register, "me_deaths:uhb:ME2")
    assert jones["police_report_id"] is None
    assert jones["disagreements"] == [
        "Known to the inquest (coroner_bs) and the medical examiner (uhb) with no police death report"
    ]
    assert jones["la_code"] == "E08000030"  # home postcode district WS1

    natural = _death(hand_register, "me_deaths:rwt:ME3")
    assert natural["disagreements"] == []  # a natural death needs no police, even referred to a coroner
    assert natural["la_code"] == "E08000031" and natural["match_probability"] == 1.0


def test_known_to_services_counts_only_contacts_before_the_death(hand_register):
    khan = _death(hand_register, "death_reports:wmp:DR-2025-000102")
    assert khan["known_to_services"] == ["housing"]
    assert khan["age_at_death"] == 25 and khan["sex"] == "f" and khan["la_code"] == "E08000026"
    assert (
        "safeguarding_contacts:bham:SC1" not in khan["source_records"]
    )  # contacts are not the death's records
    brown = _death(hand_register, "death_reports:wmp:DR-2025-000103")
    assert brown["known_to_services"] == ["adult_social_care"] and brown["age_at_death"] == 74


def test_person_keys_and_death_ids_are_stable_and_keyed():
    staged = hand_built_staged()
    records = person_records(staged)
    clusters = cluster_people(records, _hand_matches(), KEY)
    finders = clusters.filter(pl.col("role") == "finder")
    assert finders["person_key"].n_unique() == 1 and finders["cluster_size"].to_list() == [2, 2]
    assert set(clusters.filter(pl.col("feed") == "safeguarding_contacts")["role"]) == {"subject"}
    again = build_death_register(
        staged, records, cluster_people(records, _hand_matches(), KEY), _hand_matches(), KEY
    )
    first = build_death_register(staged, records, clusters, _hand_matches(), KEY)
    assert first.equals(again)
    other_key = build_death_register(
        staged,
        records,
        cluster_people(records, _hand_matches(), b"another-key-0123456789"),
        _hand_matches(),
        b"another-key-0123456789",
    )
    assert set(other_key["death_id"]).isdisjoint(set(first["death_id"]))


def test_two_police_reports_in_one_person_stay_two_deaths():
    """Records of two reports that linkage wrongly joins still give one death per report."""
    staged = hand_built_staged()
    records = person_records(staged)
    matches = pl.concat(
        [
            _hand_matches(),
            pl.DataFrame(
                {
                    "record_key_l": ["death_reports:wmp:DR-2025-000102"],
                    "record_key_r": ["death_reports:wmp:DR-2025-000103"],
                    "match_probability": [0.91],
                    "linked": [True],
                }
            ),
        ]
    )
    register = build_death_register(staged, records, cluster_people(records, matches, KEY), matches, KEY)
    assert register.height == 5
    assert _death(register, "me_deaths:uhcw:ME4")["police_report_id"] == "DR-2025-000102"


# --------------------------------------------------------------------------------------
# Evaluation against ground truth


def test_cluster_scores_count_pairs_from_cluster_sizes():
    from homicide_assets.lib.linkage_eval import cluster_scores

    frame = pl.DataFrame({"pred": ["a", "a", "a", "b", "c"], "true": [1, 1, 2, 2, 3]})
    s = cluster_scores(frame, "pred", "true")
    # predicted pairs: 3 (a); true pairs: (1,1) and (2,2) -> 2; shared: 1
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (1, 2, 1)
    assert s["precision"] == pytest.approx(1 / 3, abs=1e-4) and s["recall"] == pytest.approx(0.5)


def test_worst_death_errors_name_false_merges_and_missed_links(hand_register):
    from homicide_assets.lib.linkage_eval import score_death_clusters, worst_death_errors

    staged = hand_built_staged()
    records = person_records(staged)
    # Truth that disagrees with the register twice: ME1 is somebody else's death, and
    # police report 103 and the rwt examiner's record are one death.
    truth_death = {
        "death_reports:wmp:DR-2025-000101": "t1",
        "inquests:coroner_bs:INQ1": "t1",
        "me_deaths:uhb:ME1": "t9",
        "inquests:coroner_bs:INQ2": "t2",
        "me_deaths:uhb:ME2": "t2",
        "me_deaths:rwt:ME3": "t5",
        "death_reports:wmp:DR-2025-000102": "t3",
        "me_deaths:uhcw:ME4": "t3",
        "death_reports:wmp:DR-2025-000103": "t5",
    }
    truth = pl.DataFrame(
        {
            "record_key": list(truth_death),
            "death_id": list(truth_death.values()),
            "person_id": list(truth_death.values()),
        }
    )
    scores = score_death_clusters(hand_register, truth)
    assert scores["false_positives"] == 2 and scores["false_negatives"] == 1
    errors = worst_death_errors(
        hand_register, truth, records, _hand_matches().with_columns(evidence=pl.lit("x")), threshold=0.9
    )
    kinds = errors.group_by("kind").len().sort("kind").rows()
    assert kinds == [("false_merge", 2), ("missed_link", 1)]
    merge = errors.filter(pl.col("record_key_r") == "me_deaths:uhb:ME1").row(0, named=True)
    assert "linked at 0.970" in merge["cause"] and "date of death 2025-01-10 vs 2025-01-14" in merge["cause"]
    missed = errors.filter(pl.col("kind") == "missed_link").row(0, named=True)
    assert "not a candidate pair" in missed["cause"] and "forename Robert vs Doris" in missed["cause"]


def test_deaths_more_than_a_month_apart_stay_two_deaths_in_one_person():
    """Namesakes joined into one person (through a third record) still die twice."""
    staged = hand_built_staged()
    records = person_records(staged)
    matches = pl.concat(
        [
            _hand_matches(),
            pl.DataFrame(
                {
                    "record_key_l": ["me_deaths:rwt:ME3"],
                    "record_key_r": ["safeguarding_contacts:bham:SC3"],
                    "match_probability": [0.93],
                    "linked": [True],
                }
            ),
        ]
    )
    clusters = cluster_people(records, matches, KEY)
    same_person = clusters.filter(
        pl.col("record_key").is_in(["me_deaths:rwt:ME3", "death_reports:wmp:DR-2025-000103"])
    )
    assert same_person["person_key"].n_unique() == 1  # one person cluster ...
    register = build_death_register(staged, records, clusters, matches, KEY)
    assert register.height == 5  # ... but 20 February and 4 April are two deaths
    assert _death(register, "me_deaths:rwt:ME3")["source_records"] == ["me_deaths:rwt:ME3"]


def test_keyed_pseudonyms_equal_the_platform_pseudonym():
    from homicide_assets.lib.linkage_register import keyed_pseudonyms
    from homicide_assets.lib.pseudonym import pseudonym

    values = pl.Series(["death_reports:wmp:DR-2025-000101", " me_deaths:uhb:ME1 ", None, ""])
    assert keyed_pseudonyms(values, KEY, "person").to_list() == [pseudonym(v, KEY, "person") for v in values]


def test_backend_is_selectable(people):
    """Only the two backends exist; Spark itself is exercised in test_linkage_spark.py."""
    frame = people.drop("person").head(50)
    with pytest.raises(ValueError, match="backend"):
        link_people(frame, backend="sqlite")


def test_one_medical_examiner_record_per_death():
    """Two examiners' records joined into one person (19 days apart) are two deaths."""
    staged = hand_built_staged()
    records = person_records(staged)
    matches = pl.concat(
        [
            _hand_matches(),
            pl.DataFrame(
                {
                    "record_key_l": ["me_deaths:rwt:ME3"],
                    "record_key_r": ["me_deaths:uhb:ME2"],
                    "match_probability": [0.92],
                    "linked": [True],
                }
            ),
        ]
    )
    register = build_death_register(staged, records, cluster_people(records, matches, KEY), matches, KEY)
    assert register.height == 5
    assert _death(register, "me_deaths:uhb:ME2")["source_records"] == [
        "inquests:coroner_bs:INQ2",
        "me_deaths:uhb:ME2",
    ]
    assert _death(register, "me_deaths:rwt:ME3")["source_records"] == ["me_deaths:rwt:ME3"]
