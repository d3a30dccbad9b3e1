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
    link_platform,
    person_records,
)

FORENAMES = [
    "james", "robert", "john", "michael", "david", "william", "richard", "joseph", "thomas",
    "christopher", "daniel", "matthew", "jean", "pierre", "louis", "nicolas", "mathieu", "antoine",
    "marie", "camille", "chloé", "léa", "manon", "emma", "olivia", "sophia", "isabella", "mia",
    "charlotte", "amelia", "harper", "evelyn", "abigail", "elizabeth", "margaret", "susan",
    "jennifer", "patricia", "hélène", "stéphane", "nathalie", "françois", "brittany", "tyler",
    "dakota", "jamal", "deshawn", "latoya", "carlos", "guadalupe", "xochitl", "kenji",
]
SURNAMES = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "taylor", "moore",
    "jackson", "martin", "bernard", "dubois", "durand", "lefebvre", "leroy", "moreau", "simon",
    "laurent", "michel", "fournier", "girard", "bonnet", "dupont", "lambert", "fontaine",
    "rousseau", "vincent", "nguyen", "kowalski", "o'brien", "washington", "begay", "yamamoto",
    "okafor", "schmidt", "rossi", "haddad", "cohen", "ivanova", "da silva", "van der berg",
]


def _typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(1, len(text))
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1:]  # dropped letter
    if kind == 1 and i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]  # transposed letters
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
            "surname": ["Kowalczyk", "Kowalczyk", "Achterberg-Lindqvist", "Lindqvist", "Okonkwo", "Okonkow",
                        "Marchetti", "Marchetti"],
            "date_of_birth": [date(1961, 3, 9), date(1961, 3, 9), date(1948, 11, 2), date(1948, 11, 2),
                              date(1990, 4, 7), date(1990, 4, 7), date(1975, 2, 11), date(1975, 11, 2)],
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
    assert not any(k[0].startswith("H") and k[1].startswith("H") and k[0][1] != k[1][1] and
                   {k[0], k[1]} not in ({"H1", "H2"}, {"H3", "H4"}, {"H5", "H6"}, {"H7", "H8"})
                   for k in pairs)


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
        {"forename": ["  Zoë ", "BILL", "unknown"], "surname": ["O'Brien-Smith", "de la Cruz", "UNKNOWN"],
         "date_of_birth": ["1980-02-03", None, "1999-12-31"]}
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
    dup = pl.DataFrame({"id": [1, 1], "forename": ["a", "b"], "surname": ["c", "d"],
                        "date_of_birth": [date(2000, 1, 1)] * 2})
    with pytest.raises(ValueError, match="duplicate ids"):
        link_people(dup)
