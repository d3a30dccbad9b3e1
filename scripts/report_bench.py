"""Time the report build: patterns, hotspots and both editions (HTML and CSV).

Two modes:

- ``--data DIR``: a built data directory (``homicide-assets build`` has run): reads the
  warehouse and the ledger exactly as the report asset does
  (:func:`homicide_assets.lib.report.time_report_build`).
- ``--scale force-decade`` (default): frames constructed at that scale's volume without
  running the generator and linkage first: a death register of ~28,000 deaths a year
  (one police report in eight, medical examiner records for most, inquests for some,
  safeguarding contacts for a quarter), the staged police reports and ~15,000 ED assault
  attendances a year with postcodes. Linkage at force-decade takes far longer than the
  report; this measures the report alone, on the volume it would get.

Prints one JSON line. ``make bench`` can call ``time_report_build`` on its build instead.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import LOCATION_TYPE, METHOD
from homicide_assets.lib.registry import local_authorities, postcode_districts

DEATHS_PER_FORCE_YEAR = 28_000
POLICE_SHARE = 0.125
ED_PER_FORCE_YEAR = 15_000
YEARS = {"tiny": 1, "force-year": 1, "force-decade": 10}
VOLUME = {"tiny": 0.018, "force-year": 1.0, "force-decade": 1.0}
PERIOD_END = date(2026, 9, 30)


def constructed_inputs(scale: str, seed: int = 1):
    """(death_register, death_reports, ed_assaults) at ``scale``'s volume."""
    rng = np.random.default_rng(seed)
    years = YEARS[scale]
    n = int(DEATHS_PER_FORCE_YEAR * VOLUME[scale] * years)
    start = date(PERIOD_END.year - years, PERIOD_END.month, PERIOD_END.day) + timedelta(days=1)
    span = (PERIOD_END - start).days + 1
    dod = np.array([start + timedelta(days=int(d)) for d in rng.integers(0, span, n)])
    pops = np.array([la.population for la in local_authorities()], dtype=float)
    la = rng.choice([la.la_code for la in local_authorities()], n, p=pops / pops.sum())
    police = rng.random(n) < POLICE_SHARE
    report_ids = np.array(
        [f"DR-{d.year}-{i:06d}" if p else None for i, (d, p) in enumerate(zip(dod, police))], dtype=object
    )
    classes = np.array(
        [
            "homicide",
            "suspected_homicide",
            "suspicious",
            "unexplained",
            "suspected_suicide",
            "drug_related",
            "road_traffic",
            "accidental",
            "natural",
            "other",
        ]
    )
    cls_p = np.array([0.02, 0.01, 0.03, 0.12, 0.12, 0.1, 0.05, 0.1, 0.43, 0.02])
    police_cls = np.where(police, rng.choice(classes, n, p=cls_p), None)
    inquest = rng.random(n) < np.where(police, 0.5, 0.04)
    conclusions = np.array(
        [
            "unlawful_killing",
            "suicide",
            "accident_misadventure",
            "drug_related",
            "natural_causes",
            "open",
            "narrative",
            "pending",
            "road_traffic_collision",
            "alcohol_related",
        ]
    )
    conclusion = np.where(inquest, rng.choice(conclusions, n), None)
    icd = rng.choice(
        np.array(["I21.9", "C34.9", "J44.9", "X42", "X70", "V89.2", "X99.1", "R99", "F11.2", "W19"]),
        n,
        p=[0.35, 0.25, 0.25, 0.03, 0.03, 0.02, 0.005, 0.02, 0.02, 0.025],
    )
    me = rng.random(n) < 0.9
    services = np.array(["housing", "adult_social_care", "mental_health", "substance_misuse"])
    known = [[str(rng.choice(services))] if k else [] for k in rng.random(n) < 0.25]
    source = [
        ([f"death_reports:wmp:{r}"] if r else [])
        + ([f"me_deaths:uhb:ME{i}"] if m else [])
        + ([f"inquests:coroner_bs:I{i}"] if q else [])
        for i, (r, m, q) in enumerate(zip(report_ids, me, inquest))
    ]
    register = pl.DataFrame(
        {
            "death_id": [f"D{i:08d}" for i in range(n)],
            "person_key": [f"P{i:08d}" for i in range(n)],
            "police_report_id": report_ids.tolist(),
            "source_records": source,
            "date_of_death": dod.tolist(),
            "la_code": la.tolist(),
            "sex": rng.choice(["m", "f"], n).tolist(),
            "age_at_death": rng.integers(0, 100, n).tolist(),
            "police_classification": police_cls.tolist(),
            "inquest_conclusion": conclusion.tolist(),
            "icd10_underlying": icd.tolist(),
            "known_to_services": known,
            "disagreements": [[] for _ in range(n)],
            "match_probability": rng.uniform(0.9, 1, n).tolist(),
        },
        schema_overrides={
            "police_classification": pl.String,
            "inquest_conclusion": pl.String,
            "police_report_id": pl.String,
            "known_to_services": pl.List(pl.String),
            "disagreements": pl.List(pl.String),
        },
    )
    pol = register.filter(pl.col("police_report_id").is_not_null())
    k = pol.height
    reports = pol.select(
        pl.col("police_report_id").alias("report_id"),
        "date_of_death",
        pl.col("police_classification").alias("classification"),
    ).with_columns(
        pl.Series("forename", rng.choice(["Alex", "Sam", "Jo"], k)),
        pl.Series("surname", rng.choice(["Smith", "Khan"], k)),
        pl.Series("ethnicity", rng.choice(["white", "asian", "black", "mixed", "other"], k)),
        pl.Series("location_type", rng.choice(list(LOCATION_TYPE), k)),
        pl.Series("method", rng.choice(list(METHOD), k)),
        pl.Series("domestic_abuse_related", rng.random(k) < 0.1),
        pl.Series("incident_lat", rng.normal(52.48, 0.05, k)),
        pl.Series("incident_lon", rng.normal(-1.90, 0.08, k)),
        pl.lit(PERIOD_END).alias("_extract_date"),
    )
    m = int(ED_PER_FORCE_YEAR * VOLUME[scale] * years)
    districts = [d for ds in postcode_districts().values() for d in ds]
    arrived = [
        datetime.combine(start, datetime.min.time()) + timedelta(minutes=int(x))
        for x in rng.integers(0, span * 1440, m)
    ]
    has_pc = rng.random(m) < 0.8
    pcs = rng.choice(districts, m)
    ed = pl.DataFrame(
        {
            "attendance_id": [f"A{i}" for i in range(m)],
            "arrived_at": arrived,
            "assault_at": [None] * m,
            "assault_postcode": [f"{d} 1AA" if h else None for d, h in zip(pcs, has_pc)],
            "assault_location_text": [
                f"near {d}" if i % 7 == 0 else "in the street" for i, d in enumerate(pcs)
            ],
        }
    ).with_columns(
        pl.col("arrived_at").dt.replace_time_zone("Europe/London", ambiguous="earliest", non_existent="null"),
        pl.col("assault_at").cast(pl.Datetime("us", "Europe/London")),
    )
    return register, reports, ed


def bench_constructed(scale: str, seed: int, pdf: bool = False) -> dict:
    from homicide_assets.lib.hotspots import violence_hotspots
    from homicide_assets.lib.patterns import death_patterns
    from homicide_assets.lib.report import ReportInputs, build_report

    t = time.perf_counter()
    register, reports, ed = constructed_inputs(scale, seed)
    construct = time.perf_counter() - t
    t0 = time.perf_counter()
    patterns = death_patterns(register, reports, data_as_of=PERIOD_END)
    t_pat = time.perf_counter() - t0
    t = time.perf_counter()
    hotspots = violence_hotspots(ed, register, reports, data_as_of=PERIOD_END)
    t_hot = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        result = build_report(
            ReportInputs(
                death_patterns=patterns,
                violence_hotspots=hotspots,
                death_register=register,
                death_reports=reports,
                run_date=date(2026, 11, 30),
            ),
            Path(tmp),
            pdf=pdf,
        )
        t_rep = time.perf_counter() - t
        sizes = {e: o.html_path.stat().st_size for e, o in result.editions.items()}
    return {
        "bench": "report",
        "mode": "constructed",
        "scale": scale,
        "deaths": register.height,
        "police_reports": reports.height,
        "ed_assaults": ed.height,
        "report_build_seconds": round(time.perf_counter() - t0, 2),
        "patterns_seconds": round(t_pat, 2),
        "hotspots_seconds": round(t_hot, 2),
        "render_seconds": round(t_rep, 2),
        **{f"{k}_seconds": round(v, 2) for k, v in result.timings.items()},
        "html_bytes": sizes,
        "construct_seconds": round(construct, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scale", default="force-decade", choices=sorted(YEARS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", help="a built data directory: time the report from its warehouse")
    parser.add_argument("--pdf", action="store_true", help="also time the PDFs (needs WeasyPrint)")
    args = parser.parse_args(argv)
    if args.data:
        from homicide_assets.lib.report import time_report_build
        from homicide_assets.lib.settings import DataDir

        out = {
            "bench": "report",
            "mode": "data_dir",
            "data": args.data,
            **time_report_build(DataDir(Path(args.data).resolve()), pdf=args.pdf),
        }
    else:
        out = bench_constructed(args.scale, args.seed, pdf=args.pdf)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
