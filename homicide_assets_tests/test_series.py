"""Series detection on frames built here: link evidence, discounting, Knox, excess, backtest."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from homicide_assets.lib.series import (
    KINDS,
    SeriesParams,
    backtest_flag,
    find_series,
    naive_baseline,
)
from homicide_assets.lib.series_stats import SpaceTimeScan, knox_test, poisson_mean_at, poisson_tail, project_m

START = date(2025, 1, 1)
#: A quiet residential point (metres offsets are added to it) and the city centre.
SUBURB = (52.445, -1.935)
CENTRE = (52.479, -1.899)
METHODS = [
    "hanging",
    "fall",
    "poisoning_drugs",
    "sharp_instrument",
    "motor_vehicle",
    "not_known",
    "hitting_kicking",
]


def _offset(lat: float, lon: float, north_m: float, east_m: float) -> tuple[float, float]:
    return lat + north_m / 111_132.0, lon + east_m / (111_132.0 * np.cos(np.radians(lat)))


class World:
    """A small force: background deaths and whatever a test plants, as the linkage and
    staged frames the series assets read."""

    def __init__(self, seed: int = 0, n_police: int = 300, n_hospital: int = 200):
        self.rng = np.random.default_rng(seed)
        self.deaths: list[dict] = []
        self.persons: list[dict] = []  # death_report_persons rows with a person_key
        self.contacts: list[dict] = []
        officers = [str(1000 + i) for i in range(150)]
        methods = {
            "not_known": 0.45,
            "hanging": 0.1,
            "fall": 0.1,
            "poisoning_drugs": 0.1,
            "motor_vehicle": 0.08,
            "sharp_instrument": 0.05,
            "hitting_kicking": 0.02,
            "drowning": 0.03,
            "other": 0.07,
        }
        for i in range(n_police):
            rng = self.rng
            lat, lon = _offset(*CENTRE, rng.normal(0, 4000), rng.normal(0, 5000))
            method = str(rng.choice(list(methods), p=list(methods.values())))
            subs = []
            if method == "poisoning_drugs":
                subs = [
                    str(x)
                    for x in rng.choice(
                        ["heroin", "cocaine", "benzodiazepine", "alcohol"],
                        size=int(rng.integers(1, 3)),
                        replace=False,
                    )
                ]
            elif rng.random() < 0.15:
                subs = ["alcohol"]
            self.add_police_death(
                day=int(rng.integers(0, 365)),
                lat=lat,
                lon=lon,
                method=method,
                substances=subs,
                sex=str(rng.choice(["m", "f"])),
                age=int(rng.integers(18, 95)),
                officers=[str(o) for o in rng.choice(officers, size=2, replace=False)],
                location_type=str(rng.choice(["dwelling", "street", "public_open_space"], p=[0.7, 0.2, 0.1])),
            )
            # next of kin who is nobody else's
            self.add_person(len(self.deaths) - 1, "next_of_kin", f"nok-{i}", "Pat", f"Relative{i}")
        for _ in range(n_hospital):
            self.add_me_death(
                day=int(self.rng.integers(0, 365)),
                institution="RRK02",
                clinician=f"HC{int(self.rng.integers(0, 8)):02d}",
                age=int(self.rng.integers(60, 99)),
            )

    # -- builders -----------------------------------------------------------------------
    def add_police_death(
        self,
        day: int,
        lat: float,
        lon: float,
        method: str | None,
        substances: list[str],
        sex: str = "m",
        age: int = 30,
        officers: list[str] | None = None,
        location_type: str = "dwelling",
        domestic: bool = False,
        gang: bool = False,
        classification: str = "unexplained",
        forename: str = "Alex",
        surname: str | None = None,
        person_key: str | None = None,
    ) -> int:
        n = len(self.deaths)
        report_id = f"DR-2025-{n + 1:06d}"
        self.deaths.append(
            {
                "death_id": f"D{n:05d}",
                "person_key": person_key or f"pk-deceased-{n}",
                "police_report_id": report_id,
                "date_of_death": START + timedelta(days=day),
                "la_code": "E08000025",
                "sex": sex,
                "age_at_death": age,
                "police_classification": classification,
                "source_records": [f"death_reports:wmp:{report_id}"],
                "known_to_services": [],
                "_report": {
                    "report_id": report_id,
                    "reported_at": datetime.combine(START + timedelta(days=day), datetime.min.time()),
                    "date_of_death": START + timedelta(days=day),
                    "classification": classification,
                    "forename": forename,
                    "surname": surname or f"Surname{n}",
                    "sex": sex,
                    "incident_lat": lat,
                    "incident_lon": lon,
                    "incident_postcode": "B15 2TT",
                    "location_type": location_type,
                    "method": method,
                    "substances": substances,
                    "domestic_abuse_related": domestic,
                    "gang_related": gang,
                    "officer_in_case": None,
                    "attending_officers": officers or [],
                    "record_key": f"death_reports:wmp:{report_id}",
                    "_partner_id": "wmp",
                },
            }
        )
        return n

    def add_me_death(
        self,
        day: int,
        institution: str,
        clinician: str,
        age: int = 85,
        sex: str = "f",
        icd10: str = "I25.1",
    ) -> int:
        n = len(self.deaths)
        rk = f"me_deaths:uhb:ME{n:06d}"
        self.deaths.append(
            {
                "death_id": f"D{n:05d}",
                "person_key": f"pk-deceased-{n}",
                "police_report_id": None,
                "date_of_death": START + timedelta(days=day),
                "la_code": "E08000025",
                "sex": sex,
                "age_at_death": age,
                "police_classification": None,
                "source_records": [rk],
                "known_to_services": [],
                "_me": {
                    "record_key": rk,
                    "me_case_id": f"ME{n:06d}",
                    "trust_code": "uhb",
                    "forename": "Sam",
                    "surname": f"Patient{n}",
                    "date_of_death": START + timedelta(days=day),
                    "place_of_death_type": "hospital" if institution.startswith("R") else "care_home",
                    "place_of_death_org": institution,
                    "attending_clinician_ref": clinician,
                    "icd10_underlying": icd10,
                    "me_concern": False,
                    "home_postcode": "B15 2TT",
                },
            }
        )
        return n

    def add_person(self, death: int, role: str, person_key: str, forename: str, surname: str) -> None:
        report_id = self.deaths[death]["police_report_id"]
        seq = 1 + sum(1 for p in self.persons if p["report_id"] == report_id)
        self.persons.append(
            {
                "report_id": report_id,
                "person_seq": seq,
                "role": role,
                "forename": forename,
                "surname": surname,
                "record_key": f"death_report_persons:wmp:{report_id}|{seq}",
                "person_key": person_key,
            }
        )

    def add_contact(self, person_key: str, service: str, concerns: list[str]) -> None:
        n = len(self.contacts)
        self.contacts.append(
            {
                "record_key": f"safeguarding_contacts:bham:C{n}",
                "service": service,
                "concerns": concerns,
                "first_contact_date": START - timedelta(days=300),
                "person_key": person_key,
            }
        )

    # -- frames -------------------------------------------------------------------------
    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, pl.DataFrame]]:
        register = pl.DataFrame(
            [{k: v for k, v in d.items() if not k.startswith("_")} for d in self.deaths],
            schema_overrides={"police_report_id": pl.String, "police_classification": pl.String},
        )
        reports = pl.DataFrame(
            [d["_report"] for d in self.deaths if "_report" in d],
            schema_overrides={"officer_in_case": pl.String, "method": pl.String},
        )
        me = pl.DataFrame([d["_me"] for d in self.deaths if "_me" in d])
        persons = pl.DataFrame(self.persons) if self.persons else None
        contacts = pl.DataFrame(self.contacts) if self.contacts else None
        clusters = [
            {"record_key": d["source_records"][0], "person_key": d["person_key"], "role": "deceased"}
            for d in self.deaths
        ]
        clusters += [
            {"record_key": p["record_key"], "person_key": p["person_key"], "role": p["role"]}
            for p in self.persons
        ]
        clusters += [
            {"record_key": c["record_key"], "person_key": c["person_key"], "role": "subject"}
            for c in self.contacts
        ]
        staged = {
            "death_reports": reports,
            "me_deaths": me,
            "death_report_persons": persons.drop("person_key") if persons is not None else None,
            "safeguarding_contacts": contacts.drop("person_key") if contacts is not None else None,
        }
        return register, pl.DataFrame(clusters), staged

    def run(self, params: SeriesParams | None = None):
        register, clusters, staged = self.frames()
        return find_series(register, clusters, staged, params)


def _members(result, death_ids: list[str]) -> pl.DataFrame:
    return result.linked_series.filter(pl.col("death_ids").list.set_intersection(death_ids).list.len() >= 2)


def _link(result, x: str, y: str) -> dict | None:
    a, b = sorted((x, y))
    rows = result.case_links.filter((pl.col("death_id_a") == a) & (pl.col("death_id_b") == b))
    return rows.row(0, named=True) if rows.height else None


# -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def port_world():
    """Two young men dead of GHB 300 m apart, 40 days apart, found by the same man recorded
    under two spellings (one person key from linkage); plus a busy hospital."""
    w = World(seed=1)
    lat1, lon1 = _offset(*SUBURB, 0, 0)
    lat2, lon2 = _offset(*SUBURB, 200, 220)
    first = w.add_police_death(
        100, lat1, lon1, "poisoning_drugs", ["ghb"], sex="m", age=23, location_type="public_open_space"
    )
    second = w.add_police_death(
        140,
        lat2,
        lon2,
        "poisoning_drugs",
        ["ghb", "alcohol"],
        sex="m",
        age=25,
        location_type="public_open_space",
    )
    w.add_person(first, "finder", "pk-finder", "Stephen", "Smith")
    w.add_person(second, "finder", "pk-finder", "Steve", "Smyth")
    return w, w.deaths[first]["death_id"], w.deaths[second]["death_id"], w.run()


def test_port_like_pair_links_through_person_key_with_plain_evidence(port_world):
    w, first, second, result = port_world
    link = _link(result, first, second)
    assert link is not None and link["linked"], "the Port-like pair must link"
    evidence = " | ".join(link["evidence"])
    assert "same finder: S. Smith / S. Smyth" in evidence
    assert "both GHB" in evidence
    assert "m apart, 40 days" in evidence
    assert {"shared_person", "shared_substance"} <= set(link["kinds"])
    series = _members(result, [first, second])
    assert series.height == 1
    row = series.row(0, named=True)
    assert row["death_ids"] == [first, second]  # date order
    assert row["flagged_at_member"] == 2
    assert row["first_flagged_on"] == START + timedelta(days=140)
    assert set(row["kinds"]) <= set(KINDS) and "shared_person" in row["kinds"]
    assert "same finder" in row["reason"] and "2 deaths" in row["reason"]


def test_finder_is_what_links_the_pair(port_world):
    """Without the shared finder the same two deaths score lower: the person key carries weight."""
    w, first, second, result = port_world
    w2 = World(seed=1)
    lat1, lon1 = _offset(*SUBURB, 0, 0)
    lat2, lon2 = _offset(*SUBURB, 200, 220)
    a = w2.add_police_death(
        100, lat1, lon1, "poisoning_drugs", ["ghb"], sex="m", age=23, location_type="public_open_space"
    )
    b = w2.add_police_death(
        140,
        lat2,
        lon2,
        "poisoning_drugs",
        ["ghb", "alcohol"],
        sex="m",
        age=25,
        location_type="public_open_space",
    )
    w2.add_person(a, "finder", "pk-finder-1", "Stephen", "Smith")
    w2.add_person(b, "finder", "pk-finder-2", "Steve", "Smyth")  # linkage did not join them
    without = _link(w2.run(), w2.deaths[a]["death_id"], w2.deaths[b]["death_id"])
    with_finder = _link(result, first, second)
    assert without is None or without["score"] < with_finder["score"]
    assert without is None or not any("finder" in e for e in without["evidence"])


def test_busy_hospital_and_its_clinicians_do_not_link(port_world):
    w, _, _, result = port_world
    hospital = {d["death_id"] for d in w.deaths if d.get("_me", {}).get("place_of_death_org") == "RRK02"}
    linked = result.case_links.filter(pl.col("linked"))
    assert not linked.filter(
        pl.col("death_id_a").is_in(hospital) & pl.col("death_id_b").is_in(hospital)
    ).height
    assert not any(set(ids) & hospital for ids in result.linked_series["death_ids"].to_list())


def test_port_like_pair_ranks_first(port_world):
    """Background coincidences may reach the threshold at the stated false-alarm rate, but
    none is as strong as two GHB deaths found by the same man."""
    _, first, second, result = port_world
    port = result.linked_series.filter(pl.col("death_ids").list.contains(first))
    assert port["death_ids"].to_list() == [[first, second]]
    assert port["score"][0] == result.linked_series["score"].max()
    others = result.linked_series.filter(~pl.col("death_ids").list.contains(first))
    assert others.height <= 2


def test_common_substance_weighs_less_than_rare_one():
    """Two deaths sharing heroin (common here) link less strongly than the same two sharing GHB."""
    scores = {}
    for substance in ("heroin", "ghb"):
        w = World(seed=4)
        lat1, lon1 = _offset(*SUBURB, 0, 0)
        lat2, lon2 = _offset(*SUBURB, 300, 0)
        a = w.add_police_death(50, lat1, lon1, "poisoning_drugs", [substance], age=40)
        b = w.add_police_death(60, lat2, lon2, "poisoning_drugs", [substance], age=44)
        link = _link(w.run(SeriesParams(report_floor=0.0)), w.deaths[a]["death_id"], w.deaths[b]["death_id"])
        scores[substance] = link["score"]
    # Weighed in odds (the score is a posterior probability and saturates near 1): GHB, in
    # none of this force's other police reports, gives at least four times the odds heroin does.
    odds = {k: v / (1 - v) for k, v in scores.items()}
    assert scores["ghb"] > scores["heroin"]
    assert odds["ghb"] >= 4 * odds["heroin"]


def test_same_distance_weighs_less_in_the_city_centre():
    """300 m apart among many deaths (city centre) is weaker evidence than in a quiet suburb."""
    weights = {}
    for name, where in (("centre", CENTRE), ("suburb", (52.60, -1.70))):
        w = World(seed=5)
        lat1, lon1 = _offset(*where, 0, 0)
        lat2, lon2 = _offset(*where, 300, 0)
        a = w.add_police_death(10, lat1, lon1, "fall", [], age=40)
        b = w.add_police_death(20, lat2, lon2, "fall", [], age=70, sex="f")
        result = w.run(SeriesParams(report_floor=0.0))
        link = _link(result, w.deaths[a]["death_id"], w.deaths[b]["death_id"])
        weights[name] = link["score"]
    assert weights["suburb"] > weights["centre"]


def test_suspect_of_one_is_victim_of_the_next():
    w = World(seed=2)
    lat1, lon1 = _offset(*CENTRE, 2000, 2000)
    lat2, lon2 = _offset(*CENTRE, -3000, 1000)
    a = w.add_police_death(
        30, lat1, lon1, "sharp_instrument", [], age=19, location_type="street", classification="homicide"
    )
    b = w.add_police_death(
        95,
        lat2,
        lon2,
        "sharp_instrument",
        [],
        age=20,
        location_type="street",
        classification="homicide",
        forename="Kyle",
        surname="Brown",
        person_key="pk-kyle",
    )
    w.add_person(a, "suspect", "pk-kyle", "Kyle", "Browne")
    result = w.run()
    link = _link(result, w.deaths[a]["death_id"], w.deaths[b]["death_id"])
    assert link is not None and link["linked"]
    assert any(
        "suspect in one (K. Browne), the deceased in the other (K. Brown)" in e for e in link["evidence"]
    )


def test_shared_next_of_kin_alone_does_not_make_a_series():
    """Families bury more than one member: a shared next of kin is weak evidence."""
    w = World(seed=3)
    lat1, lon1 = _offset(*CENTRE, 5000, 0)
    lat2, lon2 = _offset(*CENTRE, -5000, 0)
    a = w.add_police_death(30, lat1, lon1, "fall", [], age=88, sex="f")
    b = w.add_police_death(200, lat2, lon2, "not_known", [], age=90, sex="m")
    w.add_person(a, "next_of_kin", "pk-daughter", "Ann", "Lee")
    w.add_person(b, "next_of_kin", "pk-daughter", "Ann", "Lee")
    link = _link(w.run(), w.deaths[a]["death_id"], w.deaths[b]["death_id"])
    assert link is None or not link["linked"]


def test_excess_deaths_at_a_care_home_with_one_clinician_are_flagged_by_the_third():
    """Six residents of one care home certified by one GP within ten days, where that GP
    certifies two a year there: an excess. Forty other homes with their usual deaths: none."""
    w = World(seed=6, n_police=50, n_hospital=50)
    rng = np.random.default_rng(6)
    for h in range(40):  # ~6 deaths a year per home, three GPs per home
        for _ in range(6):
            w.add_me_death(int(rng.integers(0, 365)), f"V{h:03d}", f"GP{h:03d}{int(rng.integers(0, 3))}")
    planted = [w.add_me_death(d, "V007", "GP0071") for d in (200, 202, 204, 205, 207, 209)]
    result = w.run()
    ids = [w.deaths[i]["death_id"] for i in planted]
    series = _members(result, ids)
    assert series.height == 1
    row = series.row(0, named=True)
    assert set(ids) <= set(row["death_ids"])
    # flagged long before the run ends: by the fourth planted death (three in five days is
    # not yet beyond the stated false-alarm rate over forty homes and their GPs)
    dates = sorted(w.deaths[i]["date_of_death"] for i in planted)
    assert row["first_flagged_on"] is not None and row["first_flagged_on"] <= dates[3]
    assert {"shared_institution", "shared_clinician"} <= set(row["kinds"])
    assert "V007 with GP0071" in row["reason"] and "Poisson p" in row["reason"]
    # and no other care home is flagged
    assert result.linked_series.height == 1


def _care_homes(w: World, rng: np.random.Generator, sudden_share: float = 0.08) -> None:
    """Forty care homes, ~6 deaths a year each under three GPs; a few certified "old age"."""
    for h in range(40):
        for _ in range(6):
            icd = "R54" if rng.random() < sudden_share else str(rng.choice(["I25.1", "F03", "J18.0", "I64"]))
            w.add_me_death(
                int(rng.integers(0, 365)), f"V{h:03d}", f"GP{h:03d}{int(rng.integers(0, 3))}", icd10=icd
            )


def test_sudden_certificates_from_one_clinician_at_one_home_are_an_alarm():
    """Four residents of one home certified "old age" / cardiac arrest by one GP within three
    weeks, where about 8% of care-home deaths are certified so: the unexpected-certificate scan
    flags them, says why in words, and flags no other home."""
    from homicide_assets.lib.series_scan import unexpected_groups

    w = World(seed=8, n_police=50, n_hospital=50)
    _care_homes(w, np.random.default_rng(8))
    planted = [
        w.add_me_death(d, "V007", "GP0071", icd10=c)
        for d, c in ((150, "R54"), (156, "I46.9"), (163, "R54"), (170, "R54"))
    ]
    result = w.run()
    ids = [w.deaths[i]["death_id"] for i in planted]
    groups = unexpected_groups(result.profiles, result.background, SeriesParams())
    assert groups.height == 1, groups
    g = groups.row(0, named=True)
    assert g["group"] == "unexpected:V007 with GP0071"
    assert "sudden or ill-defined" in g["text"] and "false alarms a year" in g["text"]
    assert g["p_value"] <= g["p_threshold"]
    series = _members(result, ids)
    assert series.height == 1 and set(ids) <= set(series.row(0, named=True)["death_ids"])


def test_the_same_deaths_with_ordinary_causes_are_no_unexpected_alarm():
    from homicide_assets.lib.series_scan import unexpected_groups

    w = World(seed=8, n_police=50, n_hospital=50)
    _care_homes(w, np.random.default_rng(8))
    for d in (150, 156, 163, 170):
        w.add_me_death(d, "V007", "GP0071", icd10="I25.1")
    result = w.run()
    assert unexpected_groups(result.profiles, result.background, SeriesParams()).is_empty()


def test_unexpected_scan_false_alarm_rate_is_near_its_level():
    """Null data (wording at the usual share everywhere, no plant): over many worlds the scan
    alarms about as often as its stated rate allows (0.1 a year), not more than a few times it."""
    from homicide_assets.lib.series_scan import unexpected_groups

    alarms = 0
    runs = 20
    for t in range(runs):
        w = World(seed=100 + t, n_police=0, n_hospital=0)
        _care_homes(w, np.random.default_rng(100 + t), sudden_share=0.1)
        result = w.run()
        alarms += unexpected_groups(result.profiles, result.background, SeriesParams()).height
    assert alarms <= 4, alarms  # 0.1 a year x 20 worlds = 2 expected; Monte Carlo thresholds are noisy


def test_naive_baseline_needs_same_district_method_and_month():
    w = World(seed=7, n_police=0, n_hospital=0)
    lat, lon = _offset(*SUBURB, 0, 0)
    a = w.add_police_death(10, lat, lon, "hanging", [])
    b = w.add_police_death(25, lat, lon, "hanging", [])
    w.add_police_death(80, lat, lon, "hanging", [])  # 55 days later: not within 30
    register, clusters, staged = w.frames()
    result = find_series(register, clusters, staged)
    base = naive_baseline(result.profiles)
    assert base.height == 1
    assert base["death_ids"][0].to_list() == [w.deaths[a]["death_id"], w.deaths[b]["death_id"]]


# -- statistics ---------------------------------------------------------------------------


def test_knox_statistic_on_a_known_configuration():
    """Four events: two pairs close in space; only one of them also close in time."""
    pts = np.array([[0.0, 0.0], [100.0, 0.0], [10_000.0, 0.0], [10_100.0, 0.0]])
    days = np.array([0.0, 3.0, 0.0, 200.0])
    result = knox_test(days, pts, space_m=500, time_days=7, permutations=99, seed=1)
    assert result.close_in_space == 2
    # pairs within 7 days: (0,1) 3 days and (0,2) 0 days and (1,2) 3 days
    assert result.close_in_time == 3
    assert result.observed == 1
    assert result.expected == pytest.approx(2 * 3 / 6)


@pytest.mark.parametrize("time_days", [0, 7, 14.5])
def test_knox_counts_whole_days_as_in_floating_point(time_days):
    """Whole days are counted in integers (the fast path): every permutation's count, and so
    the p-value, is the one floating point gives, days at the window's edge included."""
    from homicide_assets.lib.series_stats import _close_in_time

    rng = np.random.default_rng(5)
    days = np.concatenate([rng.integers(20_000, 20_400, 300), [20_000, 20_007, 20_014]]).astype(float)
    pairs = np.array([(i, j) for i in range(len(days)) for j in range(i + 1, len(days)) if (i + j) % 7 == 0])
    i, j = pairs[:, 0], pairs[:, 1]
    fast = _close_in_time(days, i, j, time_days)
    for _ in range(5):
        d = days[rng.permutation(len(days))]
        assert fast(d) == int((np.abs(d[i] - d[j]) <= time_days).sum())
    halves = days + 0.5 * (np.arange(len(days)) % 2)  # not whole: the floating-point count
    assert _close_in_time(halves, i, j, time_days)(halves) == int((np.abs(halves[i] - halves[j]) <= time_days).sum())


def test_knox_detects_interaction_and_not_its_absence():
    rng = np.random.default_rng(0)
    n = 400
    pts = rng.uniform(0, 20_000, (n, 2))
    days = rng.uniform(0, 365, n)
    quiet = knox_test(days, pts, 1_000, 14, permutations=199, seed=2)
    assert quiet.p_value > 0.05
    # plant a cluster: 8 events within 300 m and 10 days
    pts[:8] = rng.normal(5_000, 150, (8, 2))
    days[:8] = rng.uniform(100, 110, 8)
    loud = knox_test(days, pts, 1_000, 14, permutations=199, seed=2)
    assert loud.observed > loud.expected * 1.3
    assert loud.p_value <= 0.01


def test_knox_false_alarm_rate_matches_its_level():
    """With no interaction, p <= 0.1 happens about 10% of the time (the stated false-alarm rate)."""
    rng = np.random.default_rng(11)
    alarms = 0
    trials = 60
    for t in range(trials):
        pts = rng.uniform(0, 10_000, (120, 2))
        days = rng.uniform(0, 365, 120)
        alarms += knox_test(days, pts, 1_000, 30, permutations=99, seed=t).p_value <= 0.1
    assert 1 <= alarms <= 14


def test_poisson_tail_and_projection():
    assert poisson_tail(0, 2.0) == pytest.approx(1.0)
    assert poisson_tail(1, 2.0) == pytest.approx(1 - np.exp(-2))
    assert poisson_tail(3, 0.5) == pytest.approx(1 - np.exp(-0.5) * (1 + 0.5 + 0.125))
    a = project_m([52.0, 52.0], [-1.9, -1.9 + 0.01])
    assert abs(a[1, 0] - a[0, 0] - 684) < 5  # 0.01 degrees of longitude at 52 N


def test_poisson_mean_at_bounds_the_means_a_p_value_allows():
    k = np.arange(1, 12)
    for p in (0.5, 1e-3, 1e-9):
        mu = poisson_mean_at(p, k)
        assert np.all(poisson_tail(k, mu) >= p)
        assert np.all(poisson_tail(k, mu * (1 - 1e-6)) < p)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scan_cylinders_kept_by_p_are_the_same_with_the_mean_bound(seed):
    """``hits`` asks only for cylinders whose mean could reach its group's threshold; they are
    exactly the cylinders at or below it among all of them (in the same order)."""
    rng = np.random.default_rng(seed)
    n = 400
    days = rng.integers(0, 365, n)
    pts = rng.normal(0, 3_000, (n, 2))
    groups = rng.integers(0, 3, n)
    burst = np.arange(8)  # a burst in group 0: cylinders with small p
    days[burst], pts[burst], groups[burst] = 100 + burst, rng.normal(0, 150, (8, 2)), 0
    scan = SpaceTimeScan(days, pts, groups, parent_share=np.full((n, 4), 0.05))
    for g in scan.tested_groups():
        every = scan._cylinders(scan.days, g)
        for threshold in (1e-12, 1e-6, 1e-3, 0.2):
            keep = every[7] <= threshold
            bounded = scan._cylinders(scan.days, g, at_most=threshold)
            assert (bounded[7] <= threshold).sum() == keep.sum()
            for whole, part in zip(every, bounded):
                np.testing.assert_array_equal(whole[keep], part[bounded[7] <= threshold])
    thresholds = {g: 1e-3 for g in scan.tested_groups()}
    assert any(h.group == 0 and set(burst) <= set(h.members) for h in scan.hits(thresholds))


def test_backtest_flags_at_first_visible_strong_link():
    day = np.array([0, 10, 20, 30])
    # (a, b, score as known then, day visible): the 0-2 link is seen when death 2 happens;
    # the 1-3 link is group evidence raised only on day 30
    edges = [(0, 2, 0.9, 20), (1, 2, 0.2, 20), (2, 3, 0.95, 30), (0, 1, 0.9, 30)]
    flag_day, at_member, pair = backtest_flag([0, 1, 2, 3], day, edges, 0.5)
    assert flag_day == 20 and at_member == 3 and pair == (0, 2)
    assert backtest_flag([0, 1], day, [(0, 1, 0.1, 10)], 0.5) == (None, None, None)
    # a link visible later than its deaths (group evidence) flags later
    assert backtest_flag([0, 1, 2], day, [(0, 1, 0.9, 25)], 0.5)[:2] == (25, 3)


def _ghb_world(linked: bool):
    """A small force (80 police reports) with five young men dead of GHB; ``linked``: within
    400 m over nine months, three of them found by one man (a series); else spread over the
    force and the year, found by strangers (GHB simply being used here)."""
    w = World(seed=7, n_police=80, n_hospital=20)
    ids = []
    for i, (day, north, east) in enumerate(
        [(10, 0, 0), (70, 100, 20), (110, -150, 80), (230, 250, -100), (270, 60, 250)]
    ):
        if not linked:
            north, east = north * 40, east * 40
        lat, lon = _offset(*SUBURB, north, east)
        d = w.add_police_death(
            day, lat, lon, "poisoning_drugs", ["ghb"], sex="m", age=22 + i, location_type="public_open_space"
        )
        ids.append(d)
    for d in ids[2:]:
        w.add_person(
            d, "finder", "pk-finder" if linked else f"pk-finder-{d}", "Mo", "Khan" if linked else f"X{d}"
        )
    return w, [w.deaths[d]["death_id"] for d in ids]


@pytest.mark.parametrize("linked", [True, False])
def test_a_series_is_not_its_own_background(linked):
    """The other members of a series do not make its kind of death or its finder look common
    (each pair is weighed with the deaths linked to it left out); GHB deaths not linked to a
    pair still count in its background in full."""
    w, ids = _ghb_world(linked)
    params = SeriesParams(report_floor=0.0)
    once = w.run(params.with_(cluster_passes=0))
    left_out = w.run(params)
    pair = ids[3], ids[4]
    before, after = _link(once, *pair), _link(left_out, *pair)
    if linked:
        assert after["score"] > before["score"] + 0.05, (before, after)
    else:
        assert after is None or before is None or abs(after["score"] - before["score"]) < 0.01, (
            before,
            after,
        )


# -- the held search (models/series/) ----------------------------------------------------


def _same_result(x, y) -> None:
    from polars.testing import assert_frame_equal

    for table in ("case_links", "linked_series", "groups"):
        assert_frame_equal(getattr(x, table), getattr(y, table))
    assert x.candidate_pairs == y.candidate_pairs


def test_held_search_is_reused_only_while_its_inputs_are_unchanged(port_world, tmp_path):
    """The held search comes back (the same tables as searching again) while the deaths and
    what they share are unchanged; a new scan group or other parameters make it search whole,
    and that search equals one with nothing held."""
    w, first, second, scratch = port_world
    register, clusters, staged = w.frames()
    held = tmp_path / "series"
    built = find_series(register, clusters, staged, held=held)
    assert built.searched_because == "no search held"
    _same_result(built, scratch)

    # A narrative corrected in the police extract is nothing the search reads: reused.
    reports = staged["death_reports"].with_columns(narrative=pl.lit("Update: next of kin informed."))
    again = find_series(register, clusters, {**staged, "death_reports": reports}, held=held)
    assert again.searched_because is None
    _same_result(again, scratch)
    assert again.background.n_deaths == scratch.background.n_deaths  # measured on first use

    # The same finder in a third GHB death (a person key shared): searched again. A third GHB
    # death gives the space-time scan a GHB group to test, which the held thresholds lack, so
    # it searches whole, as from scratch (test_series_held.py: what changes incrementally).
    third = w.add_police_death(180, *_offset(*SUBURB, 100, 50), "poisoning_drugs", ["ghb"], sex="m", age=24)
    w.add_person(third, "finder", "pk-finder", "Stephen", "Smith")
    register3, clusters3, staged3 = w.frames()
    w.deaths.pop()
    w.persons.pop()
    grown = find_series(register3, clusters3, staged3, held=held)
    assert grown.how == "whole" and "substance:ghb" in grown.searched_because, grown.searched_because
    _same_result(grown, find_series(register3, clusters3, staged3))
    assert grown.case_links.height != scratch.case_links.height

    # Back to the first deaths, with another link threshold: not the held search either.
    params = SeriesParams(link_threshold=0.5)
    other = find_series(register, clusters, staged, params, held=held)
    assert other.searched_because is not None
    _same_result(other, find_series(register, clusters, staged, params))


def test_unreadable_held_search_means_a_whole_search(port_world, tmp_path):
    w, _, _, scratch = port_world
    register, clusters, staged = w.frames()
    held = tmp_path / "series"
    find_series(register, clusters, staged, held=held)
    (held / "links.parquet").write_bytes(b"not parquet")
    result = find_series(register, clusters, staged, held=held)
    assert result.searched_because == "no search held"
    _same_result(result, scratch)
    assert find_series(register, clusters, staged, held=held).searched_because is None
