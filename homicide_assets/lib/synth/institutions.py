"""The people and places many deaths share: trusts, hospital sites, care homes, clinicians, officers.

These shared entities are what makes series detection honest: every large hospital sees
hundreds of deaths, a care home's GP signs many certificates, and a sudden-death officer
attends dozens of unrelated deaths. Planted series must stand out against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from homicide_assets.lib.synth import geo
from homicide_assets.lib.synth.names import zipf_weights

#: Medical examiner office (acute trust) serving each authority's community deaths. Birmingham
#: is split: the west of the city is served by Sandwell and West Birmingham.
TRUSTS_BY_LA: dict[str, dict[str, float]] = {
    "E08000025": {"uhb": 0.75, "swbh": 0.25},
    "E08000026": {"uhcw": 1.0},
    "E08000027": {"dgft": 1.0},
    "E08000028": {"swbh": 1.0},
    "E08000029": {"uhb": 1.0},
    "E08000030": {"wht": 1.0},
    "E08000031": {"rwt": 1.0},
}
#: Coroner area (partner id and name) for deaths in each authority.
CORONER_BY_LA: dict[str, str] = {
    "E08000025": "coroner_bs",
    "E08000029": "coroner_bs",
    "E08000026": "coroner_cov",
    "E08000027": "coroner_bc",
    "E08000028": "coroner_bc",
    "E08000030": "coroner_bc",
    "E08000031": "coroner_bc",
}
CORONER_AREA_NAME: dict[str, str] = {
    "coroner_bs": "Birmingham and Solihull",
    "coroner_bc": "Black Country",
    "coroner_cov": "Coventry",
}
#: Local authority partner id for each GSS code.
LA_PARTNER: dict[str, str] = {
    "E08000025": "bham",
    "E08000026": "cov",
    "E08000027": "dudley",
    "E08000028": "sandwell",
    "E08000029": "solihull",
    "E08000030": "walsall",
    "E08000031": "wolves",
}
#: Care homes per 100,000 residents: England has ~15,000 CQC-registered care homes for ~56
#: million people, ~27 per 100,000 (CQC, State of Care 2022/23).
CARE_HOMES_PER_100K = 27.0
#: Hospital clinicians whose name goes on death records, per acute site and force-year volume.
CLINICIANS_PER_SITE = 60
#: GPs per district who certify community deaths.
GPS_PER_DISTRICT = 8
#: Response officers per local policing area (one per authority), and detectives force-wide.
RESPONSE_OFFICERS_PER_100K = 22
MAJOR_CRIME_DETECTIVES = 45


def _refs(rng: np.random.Generator, prefix: str, n: int, width: int = 6) -> np.ndarray:
    """``n`` distinct pseudonymous references ``<prefix><hex>``."""
    numbers = rng.choice(16**width, size=n, replace=False)
    return np.array([f"{prefix}{x:0{width}X}" for x in numbers], dtype=object)


@dataclass
class Institutions:
    """Shared entities for one generation run; ``volume`` scales their counts."""

    rng: np.random.Generator
    volume: float

    @cached_property
    def care_homes(self) -> pl.DataFrame:
        """Care homes: ``care_home_code`` (ODS-style ``V`` code), district, location, aligned GPs."""
        d = geo.districts()
        n = max(12, int(round(d["residents"].sum() / 1e5 * CARE_HOMES_PER_100K * self.volume)))
        district = geo.sample_districts(self.rng, "residents", n)
        lat, lon = geo.points_in_districts(self.rng, district)
        codes = _refs(self.rng, "V", n, width=4)
        return pl.DataFrame(
            {
                "care_home_code": codes.tolist(),
                "district_idx": district,
                "la_code": d["la_code"].to_numpy()[district].tolist(),
                "lat": lat,
                "lon": lon,
                # bigger homes see more deaths (CQC: beds per home range from under 10 to over 100)
                "size_weight": self.rng.lognormal(0, 0.6, n),
            }
        )

    @cached_property
    def gps(self) -> pl.DataFrame:
        """GP clinician references by district (they certify deaths at home and in care homes)."""
        d = geo.districts()
        per = int(round(GPS_PER_DISTRICT * max(self.volume, 1.0)))
        district = np.repeat(np.arange(d.height), per)
        return pl.DataFrame(
            {"clinician_ref": _refs(self.rng, "GP", len(district)).tolist(), "district_idx": district}
        )

    @cached_property
    def hospital_clinicians(self) -> pl.DataFrame:
        """Hospital clinician references by site, with Zipf weights (acute physicians sign many)."""
        sites = geo.hospital_sites()
        per = int(round(CLINICIANS_PER_SITE * max(self.volume, 0.25)))
        site = np.repeat(sites["site_code"].to_numpy(), per)
        weight = np.tile(zipf_weights(per, 0.7), sites.height)
        return pl.DataFrame(
            {
                "clinician_ref": _refs(self.rng, "HC", len(site)).tolist(),
                "site_code": site.tolist(),
                "weight": weight,
            }
        )

    @cached_property
    def officers(self) -> pl.DataFrame:
        """Police collar numbers: response officers by authority, and force major crime detectives.

        Collar numbers are 4-5 digit strings; each officer attends many deaths over a year
        (the "realistic reuse" that makes a shared officer weak evidence on its own).
        """
        rows = []
        # Collar numbers 1000-99999, each issued once (a permutation, so any volume fits).
        numbers = self.rng.permutation(np.arange(1000, 100_000))
        used = 0
        for a in (
            geo.districts()
            .group_by("la_code", maintain_order=True)
            .agg(pl.col("la_population").first())
            .iter_rows()
        ):
            n = max(4, int(round(a[1] / 1e5 * RESPONSE_OFFICERS_PER_100K * max(self.volume, 0.2))))
            for x in numbers[used : used + n]:
                rows.append((str(x), a[0], "response"))
            used += n
        n = max(6, int(round(MAJOR_CRIME_DETECTIVES * max(self.volume, 0.2))))
        for x in numbers[used : used + n]:
            rows.append((str(x), None, "major_crime"))
        return pl.DataFrame(
            rows, schema={"collar": pl.String, "la_code": pl.String, "unit": pl.String}, orient="row"
        )
