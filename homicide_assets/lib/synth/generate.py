"""The generator's entry point: :func:`generate` writes landing deliveries and ground truth."""

from __future__ import annotations

import re
import resource
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.feeds import FEEDS
from homicide_assets.lib.geography import la_of_points
from homicide_assets.lib.registry import Registry, load_registry
from homicide_assets.lib.synth import deliver, geo, truth
from homicide_assets.lib.synth.config import PERIOD_END, SCALES, ComplianceScenario, NoiseParams, Scale
from homicide_assets.lib.synth.coroner import build_inquests
from homicide_assets.lib.synth.council import build_safeguarding
from homicide_assets.lib.synth.deaths import background_deaths, birth_dates, complete_planted, conform
from homicide_assets.lib.synth.health import build_ed_assaults, build_me_deaths
from homicide_assets.lib.synth.institutions import Institutions
from homicide_assets.lib.synth.people import PersonIds, new_persons, plant_namesakes
from homicide_assets.lib.synth.police import build_police
from homicide_assets.lib.synth.rand import stream
from homicide_assets.lib.synth.reviews import build_reviews
from homicide_assets.lib.synth.series import SERIES_KINDS, plant_controls, plant_series


@dataclass
class SynthSummary:
    """What a generation run wrote, and what it cost.

    ``peak_rss_mb`` is the process's peak resident set size when the run finished (``getrusage``):
    it covers everything the process did before, so measure one scale per process
    (:func:`homicide_assets.lib.synth.bench.measure_scale` does).
    """

    scale: str
    seed: int
    out: str
    period_start: date
    period_end: date
    delivery_window_start: date
    deaths: int
    persons: int
    police_reports: int
    files: int
    bytes: int
    rows_by_feed: dict[str, int]
    records_by_feed: dict[str, int]
    files_by_feed: dict[str, int]
    series_by_kind: dict[str, int]
    deaths_by_la: dict[str, int]
    faults: int
    seconds: float
    peak_rss_mb: float
    noise: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def generate(
    scale: str | Scale = "tiny",
    seed: int = 1,
    out: Path | str = "synth_out",
    faults: bool = False,
    compliance: ComplianceScenario | None = None,
    registry: Registry | None = None,
    **noise_params: float,
) -> SynthSummary:
    """Generate a synthetic West Midlands into ``out``.

    Writes partner deliveries to ``out/landing/<partner_id>/`` (exactly per the feed contract)
    and the truth to ``out/ground_truth/``: ``persons``, ``deaths``, ``source_records``,
    ``series``, ``negative_controls``, ``recommendation_themes``, ``deliveries``,
    ``compliance_findings`` (Parquet), ``faults.parquet`` with ``faults=True``, and
    ``summary.json``. Existing ``landing`` and ``ground_truth`` folders under ``out`` are
    replaced. Output is byte-identical for the same ``scale``, ``seed`` and parameters.

    ``scale``: one of :data:`SCALES` (``tiny``, ``force-year``, ``force-decade``,
    ``national-year``) or a :class:`Scale`. ``noise_params``: overrides of
    :class:`NoiseParams` fields (e.g. ``typo_rate=0.1``).
    """
    started = time.perf_counter()
    sc = SCALES[scale] if isinstance(scale, str) else scale
    noise = NoiseParams.from_kwargs(**noise_params)
    compliance = compliance or ComplianceScenario()
    registry = registry or load_registry()
    out = Path(out)
    for sub in ("landing", truth.GROUND_TRUTH_DIR):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    landing = out / "landing"
    gt = out / truth.GROUND_TRUTH_DIR

    inst = Institutions(stream(seed, "institutions"), sc.volume)
    ids = PersonIds()
    planted = plant_series(stream(seed, "series"), sc, inst, ids, noise)
    plant_controls(stream(seed, "controls"), sc, inst, ids, noise, planted)
    planted_deaths = complete_planted(stream(seed, "planted"), planted.deaths_frame(), inst)
    background = background_deaths(stream(seed, "deaths"), sc, inst)

    # Deaths in date order get their ids; background deaths get their people.
    deaths = (
        pl.concat([conform(planted_deaths), background])
        .sort(["date_of_death", "minute_of_day", "lat", "lon"])
        .with_columns(death_id=pl.format("D{}", (pl.int_range(pl.len()) + 1).cast(pl.String).str.zfill(8)))
    )
    # The authority of a death is the one containing its point (planted points may cross a boundary).
    deaths = deaths.with_columns(
        la_code=pl.Series(
            la_of_points(deaths["lat"].to_numpy(), deaths["lon"].to_numpy()).tolist(), dtype=pl.String
        )
    )
    rng = stream(seed, "people")
    unnamed = deaths.filter(pl.col("person_id").is_null())
    dob = birth_dates(
        rng, unnamed["date_of_death"].to_numpy().astype("datetime64[D]"), unnamed["age"].to_numpy()
    )
    background_people = new_persons(
        rng,
        ids,
        unnamed["sex"].to_numpy().astype(object),
        dob,
        unnamed["home_district_idx"].to_numpy(),
        mover_share=noise.mover_share,
    )
    background_people = plant_namesakes(rng, background_people, noise.namesake_rate)
    deaths = pl.concat(
        [
            deaths.filter(pl.col("person_id").is_not_null()),
            unnamed.with_columns(person_id=background_people["person_id"]),
        ]
    ).sort("death_id")
    persons = pl.concat([*planted.persons, background_people], how="diagonal_relaxed")
    nhs_pool = persons["nhs_number"].to_numpy().astype(object)

    planted_rp = (
        pl.DataFrame(planted.report_persons, infer_schema_length=None)
        if planted.report_persons
        else pl.DataFrame(schema={"plant_ref": pl.String})
    )
    if planted_rp.height:
        planted_rp = planted_rp.join(
            deaths.select("plant_ref", "death_id"), on="plant_ref", how="inner", maintain_order="left"
        )
    reports, report_persons, police_people, decoys = build_police(
        stream(seed, "police"), deaths, persons, planted_rp, inst, ids, noise, nhs_pool, sc.force_years
    )
    persons = pl.concat([persons, police_people], how="diagonal_relaxed")
    report_ids = reports.filter(pl.col("_version") == 1).select(
        pl.col("_death_id").alias("death_id"), "report_id"
    )
    me = build_me_deaths(stream(seed, "me"), deaths, persons, registry, noise, nhs_pool)
    ed = build_ed_assaults(stream(seed, "ed"), sc, deaths, registry)
    contacts, cohort = build_safeguarding(
        stream(seed, "council"), sc, deaths, report_persons, persons, planted.contacts, ids, noise, nhs_pool
    )
    persons = pl.concat([persons, cohort], how="diagonal_relaxed")
    inquests = build_inquests(stream(seed, "coroner"), deaths, report_ids, persons, noise)
    series_rows = _series_with_death_ids(planted.series, deaths)
    recommendations, themes = build_reviews(
        stream(seed, "reviews"), sc, deaths, report_ids, inquests, series_rows
    )

    feeds = {
        "death_reports": reports,
        "death_report_persons": report_persons,
        "me_deaths": me,
        "ed_assaults": ed,
        "safeguarding_contacts": contacts,
        "inquests": inquests,
        "review_recommendations": recommendations,
    }
    del reports, report_persons, me, ed, contacts, inquests, recommendations
    delivered, manifest, findings, templates = _deliver_all(
        seed, sc, registry, feeds, landing, noise, compliance
    )
    fault_rows = 0
    if faults:
        from homicide_assets.lib.synth.faults import write_faults

        fault_frame = write_faults(stream(seed, "faults"), out, registry, templates)
        truth.write_parquet(fault_frame, gt / "faults.parquet")
        fault_rows = fault_frame.height

    # Ground truth.
    sources = truth.source_records(delivered)
    delivered_reports = sources.filter(pl.col("feed") == "death_reports").select(
        pl.col("record_key").str.split(":").list.get(2).alias("police_report_id"), "death_id"
    )
    deaths_truth = deaths.join(delivered_reports, on="death_id", how="left", maintain_order="left")
    truth.write_parquet(_persons_truth(persons, deaths), gt / "persons.parquet")
    truth.write_parquet(_deaths_truth(deaths_truth), gt / "deaths.parquet")
    truth.write_parquet(sources, gt / "source_records.parquet")
    series_frame = _series_frame(series_rows, deaths_truth)
    truth.write_parquet(series_frame, gt / "series.parquet")
    controls = _controls_frame(planted.controls, deaths_truth, delivered, decoys, series_rows)
    truth.write_parquet(controls, gt / "negative_controls.parquet")
    if themes.height:
        truth.write_parquet(themes, gt / "recommendation_themes.parquet")
    truth.write_parquet(manifest, gt / "deliveries.parquet")
    truth.write_parquet(findings, gt / "compliance_findings.parquet")

    files = manifest.height + fault_rows
    size = int(manifest["bytes"].sum()) if manifest.height else 0
    delivered_rows = {f: int(manifest.filter(pl.col("feed") == f)["rows"].sum()) for f in FEEDS}
    records = {f: sources.filter(pl.col("feed") == f).height for f in FEEDS}
    file_counts = {f: manifest.filter(pl.col("feed") == f).height for f in FEEDS}
    by_kind = {k: series_frame.filter(pl.col("kind") == k).height for k in SERIES_KINDS}
    by_la = dict(sorted(deaths.group_by("la_code").len().iter_rows()))
    summary = SynthSummary(
        scale=sc.name,
        seed=seed,
        out=str(out),
        period_start=sc.period_start,
        period_end=PERIOD_END,
        delivery_window_start=sc.window_start,
        deaths=deaths.height,
        persons=persons.height,
        police_reports=records["death_reports"],
        files=files,
        bytes=size,
        rows_by_feed=delivered_rows,
        records_by_feed=records,
        files_by_feed=file_counts,
        series_by_kind=by_kind,
        deaths_by_la=by_la,
        faults=fault_rows,
        seconds=0.0,
        peak_rss_mb=0.0,
        noise=noise.as_dict(),
    )
    deterministic = summary.as_dict()
    deterministic.pop("seconds")
    deterministic.pop("peak_rss_mb")
    deterministic.pop("out")
    deterministic["deaths_by_category"] = dict(sorted(deaths.group_by("true_category").len().iter_rows()))
    deterministic["negative_controls_by_kind"] = (
        dict(sorted(controls.group_by("kind").len().iter_rows())) if controls.height else {}
    )
    deterministic["compliance_findings"] = findings.height
    deterministic["scale_description"] = sc.description
    deterministic["compliance_scenario"] = asdict(compliance)
    district_la = geo.districts()["la_code"].to_list()
    residence = [district_la[i] for i in deaths["home_district_idx"].to_list()]
    deterministic["deaths_by_residence_la"] = dict(sorted(pl.Series(residence).value_counts().iter_rows()))
    truth.write_json(deterministic, gt / "summary.json")
    summary.seconds = round(time.perf_counter() - started, 2)
    summary.peak_rss_mb = round(_peak_rss_mb(), 1)
    return summary


def _deliver_all(
    seed: int,
    sc: Scale,
    registry: Registry,
    feeds: dict[str, pl.DataFrame],
    landing: Path,
    noise: NoiseParams,
    compliance: ComplianceScenario,
) -> tuple[dict[str, pl.DataFrame], pl.DataFrame, pl.DataFrame, dict]:
    """Schedule, assign and write every partner feed's extracts; return delivered rows (keys and
    truth columns), the file manifest, the compliance findings planted and, per partner feed, a
    few rows of its latest uncorrected extract (templates for the fault catalogue). Each partner feed and each file draws from its
    own random stream, so one file's content never shifts another's."""
    delivered: dict[str, list[pl.DataFrame]] = {f: [] for f in FEEDS}
    manifest, findings = [], []
    templates: dict[tuple[str, str], tuple[date, pl.DataFrame]] = {}
    # Feed by feed, so each feed's rows can be freed once its partners' extracts are written.
    order = sorted(deliver.registry_cadences(registry), key=lambda pfc: list(FEEDS).index(pfc[1]))
    last_of_feed = {feed: i for i, (_, feed, _) in enumerate(order)}
    for i, (partner_id, feed, cadence) in enumerate(order):
        rng = stream(seed, f"deliver:{partner_id}:{feed}")
        rows = feeds.get(feed)
        if rows is None or rows.height == 0:
            rows_pf = None
        else:
            rows_pf = rows.filter(pl.col("_partner_id") == partner_id)
        style = deliver.PARTNER_STYLES.get(partner_id, deliver.PartnerStyle())
        if cadence is not None:
            dates, found = deliver.cadence_schedule(rng, sc, partner_id, feed, cadence, compliance)
            findings += found
            on_publication = False
        else:
            if rows_pf is None or rows_pf.height == 0:
                continue
            avail = rows_pf["_available_on"]
            dates = sorted(set(d for d in avail.to_list() if d >= sc.window_start))
            if (avail < sc.window_start).any():
                dates = sorted(set(dates) | {sc.window_start})
            on_publication = True
        if rows_pf is None:
            rows_pf = feeds[feed].head(0) if feed in feeds and feeds[feed].width else None
        assigned = (
            deliver.assign_extracts(rows_pf, dates, on_publication)
            if rows_pf is not None and rows_pf.width
            else None
        )
        if assigned is not None and assigned.height:
            assigned = deliver.latest_per_extract(assigned, feed)
        key = list(FEEDS[feed].key)
        by_date = {}
        if assigned is not None and assigned.height:
            by_date = {
                k[0]: v.sort(key) for k, v in assigned.partition_by("_extract_date", as_dict=True).items()
            }
        for extract_date in dates:
            frame = by_date.get(extract_date)
            if frame is None:
                if cadence is None or rows_pf is None:
                    continue
                frame = rows_pf.head(0)
            corrected = None
            if (
                feed in ("death_reports", "me_deaths")
                and frame.height
                and extract_date > sc.window_start
                and rng.random() < noise.corrected_extract_rate
            ):
                frame, corrected = _corrupt_for_correction(rng, frame)
            for seq, part in ((0, frame), (2, corrected)):
                if part is None:
                    continue
                name = deliver.file_name(partner_id, feed, extract_date, seq, style.fmt)
                data = deliver.encode(part, feed, style, extract_date, stream(seed, f"render:{name}"))
                deliver.write_file(landing, partner_id, name, data)
                manifest.append(
                    {
                        "file": f"landing/{partner_id}/{name}",
                        "partner_id": partner_id,
                        "feed": feed,
                        "extract_date": extract_date,
                        "seq": seq,
                        "format": style.fmt,
                        "rows": part.height,
                        "bytes": len(data),
                        "backfill": extract_date == sc.window_start and cadence is not None,
                    }
                )
                if part.height and seq == 0:
                    delivered[feed].append(part.select(_delivered_columns(feed)))
                    if corrected is None and part.height >= 2:
                        templates[(partner_id, feed)] = (extract_date, part.head(5))
        if last_of_feed[feed] == i:
            feeds.pop(feed, None)
    delivered_frames = {
        f: (pl.concat(v, how="vertical_relaxed") if v else pl.DataFrame()) for f, v in delivered.items()
    }
    manifest_frame = pl.DataFrame(
        manifest,
        schema={
            "file": pl.String,
            "partner_id": pl.String,
            "feed": pl.String,
            "extract_date": pl.Date,
            "seq": pl.Int64,
            "format": pl.String,
            "rows": pl.Int64,
            "bytes": pl.Int64,
            "backfill": pl.Boolean,
        },
    ).sort("file")
    findings_frame = pl.DataFrame(
        findings,
        schema={
            "partner_id": pl.String,
            "feed": pl.String,
            "kind": pl.String,
            "due_on": pl.Date,
            "delivered_on": pl.Date,
        },
    )
    return delivered_frames, manifest_frame, findings_frame, templates


def _delivered_columns(feed: str) -> list[str]:
    """What the ground truth needs from delivered rows: keys, hidden truth, and the columns the
    busy-entity decoys are counted on."""
    extra = {
        "me_deaths": ["place_of_death_type", "place_of_death_org", "attending_clinician_ref"],
        "death_reports": ["attending_officers"],
    }.get(feed, [])
    return [*FEEDS[feed].key, *extra, "_partner_id", "_extract_date", "_person_id", "_death_id", "_role"]


def _corrupt_for_correction(
    rng: np.random.Generator, frame: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A keying error in 1-3 rows of an extract, and the same-day corrected extract holding the right values."""
    k = int(min(frame.height, rng.integers(1, 4)))
    pick = np.zeros(frame.height, dtype=bool)
    pick[rng.choice(frame.height, size=k, replace=False)] = True
    corrected = frame.filter(pl.Series(pick))
    wrong = frame.with_columns(
        date_of_death=pl.when(pl.Series(pick))
        .then(pl.col("date_of_death") - timedelta(days=1))
        .otherwise("date_of_death")
    )
    return wrong, corrected


def _series_with_death_ids(series: list[dict], deaths: pl.DataFrame) -> list[dict]:
    ref_to_id = dict(
        zip(
            deaths.filter(pl.col("plant_ref").is_not_null())["plant_ref"].to_list(),
            deaths.filter(pl.col("plant_ref").is_not_null())["death_id"].to_list(),
        )
    )
    return [{**s, "death_ids": [ref_to_id[r] for r in s["member_refs"]]} for s in series]


def _series_frame(series: list[dict], deaths: pl.DataFrame) -> pl.DataFrame:
    """``series.parquet``: members in date order, their delivered police report ids, size, description."""
    rows = []
    info = {r[0]: r[1:] for r in deaths.select("death_id", "date_of_death", "police_report_id").iter_rows()}
    for s in series:
        members = sorted(s["death_ids"], key=lambda d: (info[d][0], d))
        rows.append(
            {
                "series_id": s["series_id"],
                "kind": s["kind"],
                "death_ids": members,
                "police_report_ids": [info[d][1] for d in members if info[d][1] is not None],
                "size": len(members),
                "strength": s["strength"],
                "first_date": info[members[0]][0],
                "last_date": info[members[-1]][0],
                "shared_person_ids": s["shared_person_ids"],
                "shared_entity": s["shared_entity"],
                "description": s["description"],
            }
        )
    schema = {
        "series_id": pl.String,
        "kind": pl.String,
        "death_ids": pl.List(pl.String),
        "police_report_ids": pl.List(pl.String),
        "size": pl.Int64,
        "strength": pl.String,
        "first_date": pl.Date,
        "last_date": pl.Date,
        "shared_person_ids": pl.List(pl.String),
        "shared_entity": pl.String,
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("series_id")


def _controls_frame(
    controls: list[dict],
    deaths: pl.DataFrame,
    delivered: dict[str, pl.DataFrame],
    decoys: dict,
    series: list[dict],
) -> pl.DataFrame:
    """``negative_controls.parquet``: planted decoys plus the busy entities of the background
    (the busiest hospital site and clinician, the sudden-death officer, frequent finders), counted
    over deaths that belong to no planted series."""
    series_deaths = {d for s in series for d in s["death_ids"]}
    series_people = {p for s in series for p in s["shared_person_ids"]}
    series_entities = " ".join(s["shared_entity"] for s in series)
    ref = deaths.filter(pl.col("plant_ref").is_not_null()).select("plant_ref", "death_id", "police_report_id")
    ref_map = {r[0]: (r[1], r[2]) for r in ref.iter_rows()}
    rows = []
    for c in controls:
        ids = [ref_map[r][0] for r in c["member_refs"]]
        rows.append(
            {
                "control_id": c["control_id"],
                "kind": c["kind"],
                "entity": c["entity"],
                "death_ids": ids,
                "police_report_ids": [ref_map[r][1] for r in c["member_refs"] if ref_map[r][1]],
                "description": c["description"],
            }
        )
    me = delivered.get("me_deaths", pl.DataFrame())
    if me.height:
        me = me.filter(~pl.col("_death_id").is_in(list(series_deaths)))
        site = (
            me.filter(pl.col("place_of_death_type").str.to_lowercase().str.strip_chars() == "hospital")
            .group_by("place_of_death_org")
            .agg(pl.col("_death_id").unique().sort())
            .with_columns(n=pl.col("_death_id").list.len())
            .sort(["n", "place_of_death_org"], descending=True)
            .head(1)
        )
        if site.height:
            rows.append(
                {
                    "control_id": "big_hospital-01",
                    "kind": "big_hospital",
                    "entity": site["place_of_death_org"][0],
                    "death_ids": site["_death_id"][0].to_list(),
                    "police_report_ids": [],
                    "description": f"{site['n'][0]} unrelated deaths at hospital site {site['place_of_death_org'][0]}",
                }
            )
        clin = (
            me.filter(
                pl.col("attending_clinician_ref").is_not_null()
                & ~pl.col("attending_clinician_ref").is_in(re.findall(r"clinician (\S+)", series_entities))
            )
            .group_by("attending_clinician_ref")
            .agg(pl.col("_death_id").unique().sort())
            .with_columns(n=pl.col("_death_id").list.len())
            .sort(["n", "attending_clinician_ref"], descending=True)
            .head(1)
        )
        if clin.height:
            rows.append(
                {
                    "control_id": "busy_clinician-01",
                    "kind": "busy_clinician",
                    "entity": clin["attending_clinician_ref"][0],
                    "death_ids": clin["_death_id"][0].to_list(),
                    "police_report_ids": [],
                    "description": f"clinician {clin['attending_clinician_ref'][0]} attended {clin['n'][0]} unrelated deaths",
                }
            )
    dr = delivered.get("death_reports", pl.DataFrame())
    if dr.height:
        specialist = decoys["specialist_officer"]
        hit = (
            dr.filter(
                pl.col("attending_officers").list.contains(specialist)
                & ~pl.col("_death_id").is_in(list(series_deaths))
            )
            .unique("report_id", maintain_order=True)
            .sort("report_id")
        )
        rows.append(
            {
                "control_id": "shared_officer-01",
                "kind": "shared_officer",
                "entity": specialist,
                "death_ids": hit["_death_id"].to_list(),
                "police_report_ids": hit["report_id"].to_list(),
                "description": f"sudden-death officer {specialist} attended {hit.height} unrelated deaths",
            }
        )
    drp = delivered.get("death_report_persons", pl.DataFrame())
    if drp.height:
        finders = (
            drp.filter(
                pl.col("_role").is_in(["finder", "reporting_person"])
                & ~pl.col("_person_id").is_in(list(series_people))
            )
            .group_by("_person_id")
            .agg(pl.col("_death_id").unique().sort(), pl.col("report_id").unique().sort())
            .with_columns(n=pl.col("_death_id").list.len())
            .filter(pl.col("n") >= 3)
            .sort(["n", "_person_id"], descending=True)
            .head(5)
        )
        for i, row in enumerate(finders.iter_rows(named=True)):
            rows.append(
                {
                    "control_id": f"frequent_finder-{i + 1:02d}",
                    "kind": "frequent_finder",
                    "entity": row["_person_id"],
                    "death_ids": row["_death_id"],
                    "police_report_ids": row["report_id"],
                    "description": f"a professional (carer, hostel worker, security) who found or reported "
                    f"{row['n']} unrelated deaths",
                }
            )
    schema = {
        "control_id": pl.String,
        "kind": pl.String,
        "entity": pl.String,
        "death_ids": pl.List(pl.String),
        "police_report_ids": pl.List(pl.String),
        "description": pl.String,
    }
    return pl.DataFrame(rows, schema=schema).sort("control_id")


def _persons_truth(persons: pl.DataFrame, deaths: pl.DataFrame) -> pl.DataFrame:
    dead = deaths.select("person_id", pl.col("death_id"))
    cols = [
        "person_id",
        "forename",
        "surname",
        "birth_surname",
        "date_of_birth",
        "sex",
        "ethnicity",
        "nhs_number",
        "home_postcode",
        "previous_postcode",
        "la_code",
        "phone",
        "nominal_id",
        "namesake_of",
    ]
    frame = persons.unique("person_id", keep="first", maintain_order=True)
    for c in cols:
        if c not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(c))
    return frame.select(cols).join(dead, on="person_id", how="left", maintain_order="left").sort("person_id")


def _deaths_truth(deaths: pl.DataFrame) -> pl.DataFrame:
    """``deaths.parquet``: ``la_code`` is the authority containing (``lat``, ``lon``), where the death
    happened or the body was found; ``residence_la_code`` is the authority of the home address."""
    district_la = dict(enumerate(geo.districts()["la_code"].to_list()))
    deaths = deaths.with_columns(
        residence_la_code=pl.col("home_district_idx").replace_strict(district_la, return_dtype=pl.String)
    )
    return deaths.select(
        "death_id",
        "person_id",
        "date_of_death",
        "la_code",
        "true_category",
        "police_report_id",
        "lat",
        "lon",
        "residence_la_code",
        pl.col("apparent_category"),
        "sex",
        pl.col("age").alias("age_at_death"),
        "place_of_death_type",
        "location_type",
        "method",
        "substances",
        pl.col("domestic").alias("domestic_abuse_related"),
        pl.col("gang").alias("gang_related"),
        "hospital_site",
        "care_home_code",
        pl.col("clinician_ref").alias("attending_clinician_ref"),
        "series_id",
        "control_id",
    ).sort("death_id")
