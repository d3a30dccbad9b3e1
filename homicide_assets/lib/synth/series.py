"""Planted linked series of deaths, and decoys that must not link.

Six kinds, each modelled on a real failure to link deaths (HMICFRS, *An inspection of the
police response to deaths*, after the Stephen Port murders):

- ``port_like``: young men poisoned with GHB and left within a few hundred metres of one
  address over ~15 months; the killer "finds" two of them and is recorded under name
  variants; first classified drug-related or unexplained.
- ``institution``: excess deaths of elderly residents of one care home under the same
  attending clinician, all certified natural.
- ``drug_batch``: nitazene overdoses within a few kilometres and a fortnight.
- ``violence_network``: stabbings where the suspect in one is the victim of the next, with
  gang association recorded by the council.
- ``suicide_cluster``: young people at one railway or bridge location within weeks.
- ``serial_domestic``: the same man named in the deaths of partners years apart; the first
  often passed off as suicide or an accident.

Each series has a strength (``strong``, ``moderate``, ``weak``) that sets its size, how
tight it is in space and time and how much shared evidence the feeds carry, so a detector is
scored on easy and hard cases alike. Decoys (:func:`plant_controls`) put unrelated deaths
close together or give unrelated people the same name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from homicide_assets.lib.synth import geo
from homicide_assets.lib.synth.config import PERIOD_END, NoiseParams, Scale
from homicide_assets.lib.synth.deaths import birth_dates, conform
from homicide_assets.lib.synth.institutions import Institutions
from homicide_assets.lib.synth.noise import name_variant
from homicide_assets.lib.synth.people import PersonIds, new_persons
from homicide_assets.lib.synth.text import SUDDEN_CAUSES

SERIES_KINDS = (
    "port_like",
    "institution",
    "drug_batch",
    "violence_network",
    "suicide_cluster",
    "serial_domestic",
)
#: Planted series per force-year of data (a decade gets several of each; a force-year at least one).
SERIES_PER_FORCE_YEAR: dict[str, float] = {
    "port_like": 0.3,
    "institution": 0.5,
    "drug_batch": 0.8,
    "violence_network": 0.6,
    "suicide_cluster": 0.5,
    "serial_domestic": 0.3,
}
#: Series size (inclusive range) by strength.
SIZES: dict[str, dict[str, tuple[int, int]]] = {
    "port_like": {"strong": (4, 5), "moderate": (3, 4), "weak": (2, 3)},
    # at least three: two deaths of elderly residents under one clinician are not a pattern any
    # examiner's data can show (see benchmarks/series.md)
    "institution": {"strong": (5, 7), "moderate": (4, 5), "weak": (3, 4)},
    "drug_batch": {"strong": (4, 6), "moderate": (3, 4), "weak": (2, 3)},
    "violence_network": {"strong": (3, 4), "moderate": (2, 3), "weak": (2, 2)},
    "suicide_cluster": {"strong": (4, 5), "moderate": (3, 3), "weak": (2, 2)},
    "serial_domestic": {"strong": (3, 3), "moderate": (2, 3), "weak": (2, 2)},
}
STRENGTHS = ("strong", "moderate", "weak")
#: Decoys per force-year (at least one of each at any scale).
COMMON_NAME_PAIRS_PER_FORCE_YEAR = 3
CITY_CENTRE_COINCIDENCES_PER_FORCE_YEAR = 1


@dataclass
class Planted:
    """Everything planted: death rows, the people in them, police persons, council contacts, truth rows."""

    deaths: list[dict] = field(default_factory=list)
    persons: list[pl.DataFrame] = field(default_factory=list)
    report_persons: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    controls: list[dict] = field(default_factory=list)

    def deaths_frame(self) -> pl.DataFrame:
        return (
            conform(pl.DataFrame(self.deaths, infer_schema_length=None))
            if self.deaths
            else conform(pl.DataFrame())
        )


@dataclass
class _Context:
    rng: np.random.Generator
    scale: Scale
    inst: Institutions
    ids: PersonIds
    noise: NoiseParams
    out: Planted

    @property
    def period_days(self) -> int:
        return (PERIOD_END - self.scale.period_start).days + 1

    def window(self, span_days: int) -> tuple[date, int]:
        """A start date and a span (compressed if the period is short) that fit inside the period."""
        span = int(min(span_days, max(self.period_days - 20, 10)))
        latest = self.period_days - span - 10
        offset = int(self.rng.integers(5, max(latest, 6)))
        return self.scale.period_start + timedelta(days=offset), span

    def people(self, sex, ages, death_days, home_district, surname=None) -> pl.DataFrame:
        sex = np.asarray(sex, dtype=object)
        ages = np.asarray(ages, dtype=np.int64)
        days = np.asarray(death_days, dtype="datetime64[D]")
        frame = new_persons(
            self.rng,
            self.ids,
            sex,
            birth_dates(self.rng, days, ages),
            np.asarray(home_district, dtype=np.int64),
            mover_share=self.noise.mover_share,
            surname=None if surname is None else np.asarray(surname, dtype=object),
        )
        self.out.persons.append(frame)
        return frame


def _death(
    ref: str,
    person: dict,
    category: str,
    day: date,
    minute: int,
    district: int,
    lat: float,
    lon: float,
    place: str,
    location: str,
    method: str | None,
    substances: list[str],
    **extra,
) -> dict:
    row = {
        "plant_ref": ref,
        "person_id": person["person_id"],
        "true_category": category,
        "sex": person["sex"],
        "age": (day - person["date_of_birth"]).days // 365,
        "date_of_death": day,
        "minute_of_day": minute,
        "home_district_idx": person["home_district_idx"],
        "district_idx": district,
        "la_code": geo.districts()["la_code"][district],
        "lat": lat,
        "lon": lon,
        "place_of_death_type": place,
        "location_type": location,
        "method": method,
        "substances": substances,
        "domestic": False,
        "gang": False,
        "police": True,
        "me": False,
        "inquest": True,
        "ed_died": False,
        "date_unknown": False,
    }
    row.update(extra)
    return row


def _sorted_days(rng: np.random.Generator, start: date, span: int, n: int, min_gap: int = 1) -> list[date]:
    offsets = np.sort(
        rng.choice(np.arange(0, span + 1, max(min_gap, 1)), size=n, replace=span // max(min_gap, 1) + 1 < n)
    )
    offsets[0] = 0
    return [start + timedelta(days=int(o)) for o in offsets]


def _port_like(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(rng.integers(SIZES["port_like"][strength][0], SIZES["port_like"][strength][1] + 1))
    start, span = ctx.window(450)  # ~15 months
    days = _sorted_days(rng, start, span, size, min_gap=21)
    district = geo.sample_districts(rng, "violence", 1)[0]
    alat, alon = geo.points_in_districts(rng, np.array([district]), spread_factor=0.5)
    killer = ctx.people(["m"], [int(rng.integers(33, 46))], [np.datetime64(days[0])], [district]).row(
        0, named=True
    )
    radius = {"strong": 350, "moderate": 600, "weak": 850}[strength]
    lat, lon = geo.points_near(rng, float(alat[0]), float(alon[0]), radius, size)
    places = geo.nearest_district(lat, lon)
    victims = ctx.people(
        ["m"] * size,
        rng.integers(20, 31, size),
        np.array(days, dtype="datetime64[D]"),
        geo.sample_districts(rng, "residents", size),
    )
    officers = ctx.inst.officers.filter(pl.col("la_code") == geo.districts()["la_code"][int(district)])[
        "collar"
    ].to_list()
    shared = [officers[int(i)] for i in rng.choice(len(officers), size=2, replace=False)]
    n_shared = {"strong": 2, "moderate": 1, "weak": 0}[strength]
    refs = []
    for i, victim in enumerate(victims.iter_rows(named=True)):
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        location = str(rng.choice(["public_open_space", "street", "dwelling"], p=[0.55, 0.25, 0.2]))
        initial = str(rng.choice(["drug_related", "unexplained"]))
        substances = ["ghb"] + (["alcohol"] if rng.random() < 0.4 else [])
        # Officer A attends the first two deaths; officer B (strong only) the second and third.
        attending = ([shared[0]] if n_shared >= 1 and i in (0, 1) else []) + (
            [shared[1]] if n_shared == 2 and i in (1, 2) else []
        )
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "homicide",
                days[i],
                int(rng.integers(5 * 60, 9 * 60)),
                int(places[i]),
                float(lat[i]),
                float(lon[i]),
                "home" if location == "dwelling" else "public_place",
                location,
                "poisoning_drugs",
                substances,
                apparent_category="drug",
                initial_classification=initial,
                final_classification="drug_related"
                if initial == "drug_related" or rng.random() < 0.5
                else "unexplained",
                attending_officers=attending or None,
                series_id=sid,
            )
        )
    # The killer "finds" two (strong: three) of the bodies, under name variants.
    finds = (
        [0, 1]
        if size == 2
        else sorted(
            rng.choice(size, size=min(size, 3 if strength == "strong" else 2), replace=False).tolist()
        )
    )
    for j, i in enumerate(finds):
        fore, sur = (
            (killer["forename"], killer["surname"])
            if j == 0
            else name_variant(rng, killer["forename"], killer["surname"])
        )
        ctx.out.report_persons.append(
            {
                "plant_ref": refs[i],
                "role": "finder" if j < 2 else "reporting_person",
                "person_id": killer["person_id"],
                "recorded_forename": fore,
                "recorded_surname": sur,
                "with_nominal": False,
                "with_dob": j == 0,
            }
        )
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "port_like",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [killer["person_id"]],
            "shared_entity": f"finder {killer['forename']} {killer['surname']}",
            "description": (
                f"{size} young men found dead within {radius} m of {killer['forename']} {killer['surname']}'s "
                f"address ({killer['home_postcode']}) over {(days[-1] - days[0]).days} days; GHB in all; "
                f"he finds or reports {len(finds)} of them, recorded under name variants; "
                f"{n_shared} officer(s) attended more than one"
            ),
        }
    )


def _care_home_gp(ctx: _Context, care_home_row: int) -> str:
    """One of the three GPs aligned to a care home (as deaths.assign_clinicians assigns them)."""
    homes = ctx.inst.care_homes
    gps = ctx.inst.gps
    per = gps.filter(pl.col("district_idx") == 0).height
    district = int(homes["district_idx"][care_home_row])
    slot = (care_home_row * 3 + int(ctx.rng.integers(0, 3))) % per
    return gps["clinician_ref"][district * per + slot]


def _institution(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(rng.integers(SIZES["institution"][strength][0], SIZES["institution"][strength][1] + 1))
    start, span = ctx.window({"strong": 42, "moderate": 70, "weak": 90}[strength])
    days = _sorted_days(rng, start, span, size)
    homes = ctx.inst.care_homes
    w = homes["size_weight"].to_numpy() ** 2
    row = int(rng.choice(homes.height, p=w / w.sum()))
    home = homes.row(row, named=True)
    clinician = _care_home_gp(ctx, row)
    # The certifier's own wording for residents who were not expected to die (Shipman: "old
    # age", a sudden cardiac event, no disease leading to it): a habitual phrase, sometimes
    # another sudden one, and now and then an ordinary natural cause.
    habit = int(rng.integers(0, len(SUDDEN_CAUSES)))
    wording = [
        None
        if rng.random() < 0.1
        else (habit if rng.random() < 0.7 else int(rng.integers(0, len(SUDDEN_CAUSES))))
        for _ in range(size)
    ]
    sexes = np.where(rng.random(size) < 0.65, "f", "m")
    victims = ctx.people(
        sexes,
        rng.integers(80, 98, size),
        np.array(days, dtype="datetime64[D]"),
        [home["district_idx"]] * size,
    )
    refs = []
    for i, victim in enumerate(victims.iter_rows(named=True)):
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "homicide",
                days[i],
                int(rng.integers(0, 1440)),
                home["district_idx"],
                home["lat"],
                home["lon"],
                "care_home",
                "care_home",
                None,
                [],
                police=False,
                me=True,
                inquest=False,
                apparent_category="natural",
                care_home_code=home["care_home_code"],
                clinician_ref=clinician,
                certified_as=wording[i],
                series_id=sid,
            )
        )
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "institution",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [],
            "shared_entity": f"care home {home['care_home_code']}; clinician {clinician}",
            "description": (
                f"{size} elderly residents of care home {home['care_home_code']} died within "
                f"{(days[-1] - days[0]).days} days with the same attending clinician {clinician}; all "
                f"certified natural, {sum(w is not None for w in wording)} with sudden or ill-defined "
                f"wording (old age, a sudden cardiac event)"
            ),
        }
    )


def _drug_batch(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(rng.integers(SIZES["drug_batch"][strength][0], SIZES["drug_batch"][strength][1] + 1))
    start, span = ctx.window({"strong": 7, "moderate": 12, "weak": 16}[strength])
    days = _sorted_days(rng, start, span, size)
    district = geo.sample_districts(rng, "drug", 1)[0]
    clat, clon = geo.points_in_districts(rng, np.array([district]), spread_factor=0.3)
    radius = {"strong": 1500, "moderate": 2500, "weak": 4000}[strength]
    lat, lon = geo.points_near(rng, float(clat[0]), float(clon[0]), radius, size)
    places = geo.nearest_district(lat, lon)
    sexes = np.where(rng.random(size) < 0.75, "m", "f")
    victims = ctx.people(sexes, rng.integers(25, 56, size), np.array(days, dtype="datetime64[D]"), places)
    refs = []
    for i, victim in enumerate(victims.iter_rows(named=True)):
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        substances = ["nitazene"] + [
            s for s, p in (("heroin", 0.7), ("benzodiazepine", 0.3), ("alcohol", 0.2)) if rng.random() < p
        ]
        if strength == "weak" and i == size - 1:
            substances = ["heroin"]  # toxicology not back when the police recorded it
        location = str(rng.choice(["dwelling", "street", "public_open_space"], p=[0.6, 0.2, 0.2]))
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "drug",
                days[i],
                int(rng.integers(0, 1440)),
                int(places[i]),
                float(lat[i]),
                float(lon[i]),
                "home" if location == "dwelling" else "public_place",
                location,
                "poisoning_drugs",
                substances,
                me=bool(rng.random() < 0.3),
                initial_classification=str(rng.choice(["drug_related", "unexplained"], p=[0.8, 0.2])),
                final_classification="drug_related",
                series_id=sid,
            )
        )
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "drug_batch",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [],
            "shared_entity": "nitazene",
            "description": (
                f"{size} nitazene overdoses within {radius / 1000:.1f} km of a point in "
                f"{geo.districts()['district'][int(district)]} over {(days[-1] - days[0]).days + 1} days"
                + ("; the last recorded as heroin only" if strength == "weak" else "")
            ),
        }
    )


def _violence_network(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(
        rng.integers(SIZES["violence_network"][strength][0], SIZES["violence_network"][strength][1] + 1)
    )
    gap_lo, gap_hi = {"strong": (5, 60), "moderate": (30, 150), "weak": (60, 300)}[strength]
    gaps = rng.integers(gap_lo, gap_hi + 1, size - 1)
    start, span = ctx.window(int(gaps.sum()) + 1)
    if gaps.sum() > span:
        gaps = np.maximum(1, (gaps * span / gaps.sum()).astype(int))
    days = [start] + [start + timedelta(days=int(x)) for x in np.cumsum(gaps)]
    d = geo.districts()
    deprived = d.filter(pl.col("deprivation") >= 4)["district_idx"].to_numpy()
    home_district = int(rng.choice(deprived))
    # Members live in the same or the nearest districts.
    dlat, dlon = d["lat"].to_numpy(), d["lon"].to_numpy()
    dist = np.hypot(dlat - dlat[home_district], (dlon - dlon[home_district]) * 0.61)
    nearby = np.argsort(dist)[:3]
    homes = rng.choice(nearby, size + 1)
    people = ctx.people(
        ["m"] * (size + 1),
        rng.integers(16, 26, size + 1),
        np.array(days + [days[-1]], dtype="datetime64[D]"),
        homes,
    )
    rows = list(people.iter_rows(named=True))
    refs = []
    for i in range(size):
        victim, suspect = rows[i], rows[i + 1]
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        district = int(rng.choice(nearby))
        lat, lon = geo.points_in_districts(rng, np.array([district]), spread_factor=0.6)
        method = "shooting" if rng.random() < 0.15 else "sharp_instrument"
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "homicide",
                days[i],
                int(rng.integers(19 * 60, 24 * 60 + 3 * 60)) % 1440,
                district,
                float(lat[0]),
                float(lon[0]),
                "hospital" if rng.random() < 0.4 else "public_place",
                str(rng.choice(["street", "public_open_space"], p=[0.8, 0.2])),
                method,
                [],
                gang=strength != "weak" or rng.random() < 0.5,
                me=False,
                initial_classification=str(rng.choice(["homicide", "suspected_homicide"])),
                final_classification="homicide",
                series_id=sid,
            )
        )
        variant = rng.random() < 0.5
        fore, sur = name_variant(rng, suspect["forename"], suspect["surname"]) if variant else (None, None)
        ctx.out.report_persons.append(
            {
                "plant_ref": ref,
                "role": "suspect",
                "person_id": suspect["person_id"],
                "recorded_forename": fore,
                "recorded_surname": sur,
                "with_nominal": strength == "strong" or rng.random() < 0.5,
                "with_dob": True,
            }
        )
    # Gang association known to the council for (strong) all, (moderate) most, (weak) one of them.
    share = {"strong": 1.0, "moderate": 0.7, "weak": 0.0}[strength]
    for k, person in enumerate(rows):
        if rng.random() < share or (strength == "weak" and k == 0):
            first = days[0] - timedelta(days=int(rng.integers(200, 1100)))
            ctx.out.contacts.append(
                {
                    "person_id": person["person_id"],
                    "service": str(rng.choice(["youth_justice", "childrens_social_care", "early_help"])),
                    "concerns": ["gang_association"]
                    + (["criminal_exploitation"] if rng.random() < 0.6 else []),
                    "first_contact_date": max(first, ctx.scale.period_start - timedelta(days=3650)),
                    "last_contact_date": days[0] - timedelta(days=int(rng.integers(5, 120))),
                    "open_case": True,
                }
            )
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "violence_network",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [r["person_id"] for r in rows[1:size]],
            "shared_entity": "suspect in one death is the victim of the next",
            "description": (
                f"{size} stabbings/shootings of young men around {d['district'][home_district]} over "
                f"{(days[-1] - days[0]).days} days; each victim after the first was the suspect in the death "
                f"before; gang association recorded by the council for {'all' if share == 1 else 'some'}"
            ),
        }
    )


def _suicide_cluster(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(rng.integers(SIZES["suicide_cluster"][strength][0], SIZES["suicide_cluster"][strength][1] + 1))
    start, span = ctx.window({"strong": 28, "moderate": 56, "weak": 100}[strength])
    days = _sorted_days(rng, start, span, size)
    district = geo.sample_districts(rng, "residents", 1)[0]
    plat, plon = geo.points_in_districts(rng, np.array([district]), spread_factor=0.6)
    railway = rng.random() < 0.6
    radius = {"strong": 100, "moderate": 200, "weak": 400}[strength]
    lat, lon = geo.points_near(rng, float(plat[0]), float(plon[0]), radius, size)
    near = np.argsort(
        np.hypot(geo.districts()["lat"].to_numpy() - plat[0], geo.districts()["lon"].to_numpy() - plon[0])
    )[:4]
    victims = ctx.people(
        np.where(rng.random(size) < 0.6, "m", "f"),
        rng.integers(15, 25, size),
        np.array(days, dtype="datetime64[D]"),
        rng.choice(near, size),
    )
    refs = []
    for i, victim in enumerate(victims.iter_rows(named=True)):
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "suicide",
                days[i],
                int(rng.integers(0, 1440)),
                int(district),
                float(lat[i]),
                float(lon[i]),
                "public_place",
                "transport" if railway else "other",
                "other" if railway else "fall",
                [],
                initial_classification="suspected_suicide" if rng.random() < 0.85 else "unexplained",
                final_classification="suspected_suicide",
                series_id=sid,
            )
        )
        if rng.random() < 0.5:
            ctx.out.contacts.append(
                {
                    "person_id": victim["person_id"],
                    "service": str(rng.choice(["mental_health", "early_help", "childrens_social_care"])),
                    "concerns": ["mental_health"] + (["self_neglect"] if rng.random() < 0.2 else []),
                    "first_contact_date": days[i] - timedelta(days=int(rng.integers(60, 700))),
                    "last_contact_date": days[i] - timedelta(days=int(rng.integers(3, 60))),
                    "open_case": True,
                }
            )
    place = "railway line" if railway else "bridge"
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "suicide_cluster",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [],
            "shared_entity": f"{place} in {geo.districts()['district'][int(district)]}",
            "description": f"{size} young people died at one {place} (within {radius} m) over {(days[-1] - days[0]).days} days",
        }
    )


def _serial_domestic(ctx: _Context, sid: str, strength: str) -> None:
    rng = ctx.rng
    size = int(rng.integers(SIZES["serial_domestic"][strength][0], SIZES["serial_domestic"][strength][1] + 1))
    # Years apart where the period allows; compressed to fit shorter periods.
    gaps = rng.integers(700, 1500, size - 1)
    start, span = ctx.window(int(gaps.sum()) + 1)
    if gaps.sum() > span:
        gaps = np.maximum(20, (gaps * span / gaps.sum()).astype(int))
    days = [start] + [start + timedelta(days=int(x)) for x in np.cumsum(gaps)]
    killer_age = int(rng.integers(28, 46))
    homes = geo.sample_districts(rng, "violence", size)
    killer = ctx.people(["m"], [killer_age], [np.datetime64(days[0])], [homes[0]]).row(0, named=True)
    victims = ctx.people(
        ["f"] * size,
        np.clip(killer_age + rng.integers(-6, 4, size), 19, 70),
        np.array(days, dtype="datetime64[D]"),
        homes,
    )
    refs = []
    disguised_first = strength != "strong"
    for i, victim in enumerate(victims.iter_rows(named=True)):
        ref = f"{sid}#{i + 1}"
        refs.append(ref)
        lat, lon = geo.points_in_districts(rng, np.array([homes[i]]), spread_factor=0.8)
        disguised = disguised_first and i == 0
        if disguised:
            looks = str(rng.choice(["suspected_suicide", "accidental"]))
            method = "hanging" if looks == "suspected_suicide" else "fall"
            extra = dict(
                apparent_category="suicide" if looks == "suspected_suicide" else "accident",
                initial_classification=looks,
                final_classification=looks,
                domestic=False,
            )
        else:
            method = str(rng.choice(["strangulation_asphyxiation", "sharp_instrument", "hitting_kicking"]))
            extra = dict(
                initial_classification="suspected_homicide", final_classification="homicide", domestic=True
            )
        ctx.out.deaths.append(
            _death(
                ref,
                victim,
                "homicide",
                days[i],
                int(rng.integers(0, 1440)),
                int(homes[i]),
                float(lat[0]),
                float(lon[0]),
                "home",
                "dwelling",
                method,
                [],
                series_id=sid,
                **extra,
            )
        )
        fore, sur = (
            (killer["forename"], killer["surname"])
            if i == 0
            else name_variant(rng, killer["forename"], killer["surname"])
        )
        ctx.out.report_persons.append(
            {
                "plant_ref": ref,
                "role": "reporting_person" if disguised else "suspect",
                "person_id": killer["person_id"],
                "recorded_forename": fore,
                "recorded_surname": sur,
                "with_nominal": not disguised and rng.random() < 0.6,
                "with_dob": True,
            }
        )
        if rng.random() < 0.6:
            ctx.out.contacts.append(
                {
                    "person_id": victim["person_id"],
                    "service": str(rng.choice(["adult_social_care", "housing"])),
                    "concerns": ["domestic_abuse"],
                    "first_contact_date": days[i] - timedelta(days=int(rng.integers(90, 900))),
                    "last_contact_date": days[i] - timedelta(days=int(rng.integers(5, 80))),
                    "open_case": True,
                }
            )
    ctx.out.contacts.append(
        {
            "person_id": killer["person_id"],
            "service": "substance_misuse",
            "concerns": ["domestic_abuse", "substance_misuse"],
            "first_contact_date": days[0] - timedelta(days=400),
            "last_contact_date": days[0] - timedelta(days=30),
            "open_case": False,
        }
    )
    ctx.out.series.append(
        {
            "series_id": sid,
            "kind": "serial_domestic",
            "strength": strength,
            "member_refs": refs,
            "shared_person_ids": [killer["person_id"]],
            "shared_entity": f"suspect {killer['forename']} {killer['surname']}",
            "description": (
                f"{killer['forename']} {killer['surname']} is named in the deaths of {size} partners "
                f"{', '.join(str((b - a).days) for a, b in zip(days, days[1:]))} days apart"
                + (
                    "; the first was recorded as a suicide or accident with him as reporting person"
                    if disguised_first
                    else ""
                )
            ),
        }
    )


PLANTERS = {
    "port_like": _port_like,
    "institution": _institution,
    "drug_batch": _drug_batch,
    "violence_network": _violence_network,
    "suicide_cluster": _suicide_cluster,
    "serial_domestic": _serial_domestic,
}


def series_counts(scale: Scale) -> dict[str, int]:
    """How many series of each kind a scale gets (at least one of each)."""
    return {
        kind: max(1, int(round(rate * scale.force_years))) for kind, rate in SERIES_PER_FORCE_YEAR.items()
    }


def plant_series(
    rng: np.random.Generator,
    scale: Scale,
    inst: Institutions,
    ids: PersonIds,
    noise: NoiseParams,
    out: Planted | None = None,
) -> Planted:
    """Plant every series for ``scale``; strengths cycle strong, moderate, weak from a random start."""
    out = out or Planted()
    ctx = _Context(rng, scale, inst, ids, noise, out)
    for kind, count in series_counts(scale).items():
        first = int(rng.integers(0, 3))
        for i in range(count):
            # A lone series (tiny, force-year) is strong or moderate; several cycle through all three.
            strength = STRENGTHS[(first + i) % 3] if count > 1 else STRENGTHS[first % 2]
            PLANTERS[kind](ctx, f"{kind}-{i + 1:02d}", strength)
    return out


def plant_controls(
    rng: np.random.Generator,
    scale: Scale,
    inst: Institutions,
    ids: PersonIds,
    noise: NoiseParams,
    out: Planted,
) -> Planted:
    """Decoys that must not link: city-centre coincidences and namesakes who both die.

    (Busy hospitals, busy clinicians and a sudden-death officer on many cases arise from the
    background and are listed after generation by :func:`homicide_assets.lib.synth.truth.busy_entity_controls`.)
    """
    ctx = _Context(rng, scale, inst, ids, noise, out)
    d = geo.districts()
    centres = d.filter(pl.col("night_time_economy") >= 4)["district_idx"].to_numpy()
    for c in range(max(1, int(round(CITY_CENTRE_COINCIDENCES_PER_FORCE_YEAR * scale.force_years)))):
        cid = f"city_centre-{c + 1:02d}"
        start, span = ctx.window(21)
        district = int(rng.choice(centres))
        clat, clon = geo.points_in_districts(rng, np.array([district]), spread_factor=0.3)
        kinds = [
            ("natural", None, [], "street", 60, 85),
            ("road_traffic", "motor_vehicle", [], "street", 18, 80),
            ("drug", "poisoning_drugs", ["heroin"], "public_open_space", 35, 55),
            ("accident", "fall", ["alcohol"], "licensed_premises", 20, 40),
        ]
        order = rng.permutation(len(kinds))[: int(rng.integers(3, 5))]
        days = _sorted_days(rng, start, span, len(order))
        lat, lon = geo.points_near(rng, float(clat[0]), float(clon[0]), 300, len(order))
        refs = []
        for j, k in enumerate(order):
            category, method, substances, location, lo, hi = kinds[k]
            person = ctx.people(
                [str(rng.choice(["m", "f"]))],
                [int(rng.integers(lo, hi))],
                [np.datetime64(days[j])],
                geo.sample_districts(rng, "residents", 1),
            ).row(0, named=True)
            ref = f"{cid}#{j + 1}"
            refs.append(ref)
            out.deaths.append(
                _death(
                    ref,
                    person,
                    category,
                    days[j],
                    int(rng.integers(0, 1440)),
                    district,
                    float(lat[j]),
                    float(lon[j]),
                    "public_place",
                    location,
                    method,
                    substances,
                    control_id=cid,
                    inquest=category != "natural",
                )
            )
        out.controls.append(
            {
                "control_id": cid,
                "kind": "city_centre",
                "member_refs": refs,
                "entity": d["district"][district],
                "description": f"{len(refs)} unrelated deaths (different causes, people and methods) "
                f"within 300 m in {d['district'][district]} over {span} days",
            }
        )
    common = [
        ("John", "Smith", "m"),
        ("Mohammed", "Khan", "m"),
        ("Margaret", "Jones", "f"),
        ("David", "Williams", "m"),
        ("Patricia", "Brown", "f"),
        ("Mohammed", "Hussain", "m"),
        ("Gurpreet", "Kaur", "f"),
        ("James", "Taylor", "m"),
    ]
    pairs = max(2, int(round(COMMON_NAME_PAIRS_PER_FORCE_YEAR * scale.force_years)))
    for p in range(pairs):
        cid = f"common_name-{p + 1:02d}"
        fore, sur, sex = common[p % len(common)]
        day_a = scale.period_start + timedelta(days=int(rng.integers(5, ctx.period_days - 5)))
        day_b = scale.period_start + timedelta(days=int(rng.integers(5, ctx.period_days - 5)))
        age = int(rng.integers(25, 85))
        homes = rng.choice(d.height, size=2, replace=False)
        people = ctx.people(
            [sex, sex],
            [age, age + int(rng.integers(-2, 3))],
            np.array([day_a, day_b], dtype="datetime64[D]"),
            homes,
            surname=[sur, sur],
        )
        people = people.with_columns(forename=pl.lit(fore), surname=pl.lit(sur), birth_surname=pl.lit(sur))
        out.persons[-1] = people
        refs = []
        for j, person in enumerate(people.iter_rows(named=True)):
            ref = f"{cid}#{j + 1}"
            refs.append(ref)
            lat, lon = geo.points_in_districts(rng, np.array([homes[j]]))
            category = ("natural", "suicide")[j] if rng.random() < 0.5 else "natural"
            out.deaths.append(
                _death(
                    ref,
                    person,
                    category,
                    (day_a, day_b)[j],
                    int(rng.integers(0, 1440)),
                    int(homes[j]),
                    float(lat[0]),
                    float(lon[0]),
                    "home",
                    "dwelling",
                    "hanging" if category == "suicide" else None,
                    [],
                    control_id=cid,
                    inquest=category != "natural",
                    me=True,
                )
            )
        out.controls.append(
            {
                "control_id": cid,
                "kind": "common_name",
                "member_refs": refs,
                "entity": f"{fore} {sur}",
                "description": f"two different people named {fore} {sur}, born within two years, "
                "who both died: not the same person and not a series",
            }
        )
    return out
