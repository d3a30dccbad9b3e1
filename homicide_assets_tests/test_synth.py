"""The synthetic generator honours the feed contract and plants what its ground truth says.

Everything runs at the tiny scale (about a second per generation). Files are read back the way
a partner's file would be read (CSV bytes with an optional BOM, the first sheet of a workbook,
a Parquet table) and checked against ``homicide_assets.lib.feeds``, not against the generator's
own code.
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from homicide_assets.lib.feeds import FEEDS, FILE_NAME_PATTERN, LA_CODES, REPORT_ID_PATTERN
from homicide_assets.lib.geography import in_force_area, la_of_points
from homicide_assets.lib.registry import load_registry, local_authorities
from homicide_assets.lib.settings import SEEDS_DIR
from homicide_assets.lib.synth import SERIES_KINDS, generate
from homicide_assets.lib.synth.people import is_valid_nhs_number

SEED = 3
LATEST_ALLOWED = date(2026, 11, 26)
UK_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{4})$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:\d{2}|Z)?$")
BOOLEANS = {"true", "false", "y", "n", "1", "0"}


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate("tiny", SEED, out)
    return out


def read_delivery(path: Path) -> pl.DataFrame:
    """A delivered file as text columns (null = empty cell), as a parser would see it."""
    if path.suffix == ".csv":
        data = path.read_bytes()
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        return pl.read_csv(io.BytesIO(data), infer_schema=False)
    if path.suffix == ".xlsx":
        frame = pl.read_excel(path)
    else:
        frame = pl.read_parquet(path)
    return frame.select(
        [
            pl.col(c).dt.strftime("%Y-%m-%d")
            if frame.schema[c] == pl.Date
            else pl.col(c).dt.strftime("%Y-%m-%dT%H:%M:%S")
            if isinstance(frame.schema[c], pl.Datetime)
            else pl.col(c).cast(pl.String)
            for c in frame.columns
        ]
    )


def parse_date(value: str) -> date:
    """ISO or UK day-first, as the contract accepts; anything else raises."""
    if ISO_DATE.match(value):
        return date.fromisoformat(value)
    m = UK_DATE.match(value)
    if not m:
        raise ValueError(f"not an ISO or day-first date: {value!r}")
    return date(int(m[3]), int(m[2]), int(m[1]))


@pytest.fixture(scope="module")
def deliveries(synth_dir: Path) -> list[tuple[Path, dict, pl.DataFrame]]:
    out = []
    for path in sorted((synth_dir / "landing").rglob("*")):
        if path.is_file():
            m = FILE_NAME_PATTERN.match(path.name)
            assert m, f"{path.name}: file name does not follow the contract"
            out.append((path, m.groupdict(), read_delivery(path)))
    return out


def test_every_file_is_named_and_placed_per_contract(synth_dir: Path, deliveries) -> None:
    registry = load_registry()
    assert len(deliveries) > 100
    extensions = set()
    for path, parts, _ in deliveries:
        partner = parts["partner_id"]
        assert path.parent.name == partner, f"{path}: in the wrong partner folder"
        assert parts["feed"] in registry.feeds_of(partner), f"{path.name}: feed not owed by {partner}"
        agreement = registry.agreement(partner)
        assert parts["feed"] in agreement.permitted_feeds
        extract = datetime.strptime(parts["extract_date"], "%Y%m%d").date()
        assert agreement.in_force_on(extract) and extract <= LATEST_ALLOWED
        extensions.add(parts["extension"])
    assert extensions == {"csv", "xlsx", "parquet"}


def test_headers_are_exactly_the_contract_columns(deliveries) -> None:
    for path, parts, frame in deliveries:
        assert frame.columns == FEEDS[parts["feed"]].column_names, (
            f"{path.name}: header differs from the contract"
        )


def test_values_honour_the_column_rules(deliveries) -> None:
    checked = {"enum": 0, "date": 0, "nhs": 0, "bool": 0}
    for path, parts, frame in deliveries:
        feed = FEEDS[parts["feed"]]
        for column in feed.columns:
            values = frame[column.name]
            present = [v for v in values.to_list() if v is not None]
            if column.required:
                assert values.null_count() == 0, f"{path.name}: required {column.name} is empty"
            if column.type == "enum":
                allowed = set(column.values)
                bad = {v for v in present if v.strip().lower() not in allowed}
                assert not bad, f"{path.name}: {column.name} values outside the enumeration: {bad}"
                checked["enum"] += len(present)
            elif column.type == "list" and column.values:
                bad = {x for v in present for x in v.split(";") if x.strip().lower() not in column.values}
                assert not bad, f"{path.name}: {column.name} list values outside the enumeration: {bad}"
            elif column.type == "date":
                for v in present:
                    assert parse_date(v) <= LATEST_ALLOWED, f"{path.name}: {column.name} {v} in the future"
                checked["date"] += len(present)
            elif column.type == "timestamp":
                for v in present:
                    assert ISO_TIMESTAMP.match(v), f"{path.name}: {column.name} {v!r} is not ISO 8601"
                    assert date.fromisoformat(v[:10]) <= LATEST_ALLOWED
            elif column.type == "bool":
                assert {v.lower() for v in present} <= BOOLEANS, f"{path.name}: {column.name} not a boolean"
                checked["bool"] += len(present)
            elif column.type == "nhs_number":
                bad = [v for v in present if not is_valid_nhs_number(v)]
                assert not bad, f"{path.name}: invalid NHS numbers {bad[:3]}"
                checked["nhs"] += len(present)
            if column.pattern:
                for v in present:
                    items = v.split(";") if column.type == "list" else [v]
                    assert all(re.match(column.pattern, x) for x in items), (
                        f"{path.name}: {column.name} {v!r}"
                    )
            if column.max_length:
                assert all(len(v) <= column.max_length for v in present)
            if column.min_value is not None and column.type in ("int", "float"):
                assert all(float(v) >= column.min_value for v in present)
            if column.max_value is not None and column.type in ("int", "float"):
                assert all(float(v) <= column.max_value for v in present)
    assert min(checked.values()) > 50, checked


def test_keys_are_unique_within_each_file(deliveries) -> None:
    for path, parts, frame in deliveries:
        key = list(FEEDS[parts["feed"]].key)
        assert frame.select(key).is_duplicated().sum() == 0, f"{path.name}: duplicate keys"


def test_cross_column_rules(deliveries) -> None:
    registry = load_registry()
    for path, parts, frame in deliveries:
        feed = FEEDS[parts["feed"]]
        for earlier, later in feed.date_order:
            for a, b in frame.select(earlier, later).drop_nulls().iter_rows():
                assert parse_date(a[:10]) <= parse_date(b[:10]), (
                    f"{path.name}: {earlier} {a} after {later} {b}"
                )
        if parts["feed"] == "death_reports":
            lat = frame["incident_lat"].cast(pl.Float64).to_numpy()
            lon = frame["incident_lon"].cast(pl.Float64).to_numpy()
            assert in_force_area(lat, lon).all(), f"{path.name}: incident outside the force area"
        if parts["feed"] in ("me_deaths", "ed_assaults"):
            assert set(frame["trust_code"].to_list()) <= {registry.partner(parts["partner_id"]).org_code}
        if parts["feed"] == "safeguarding_contacts":
            assert set(frame["la_code"].to_list()) <= {registry.partner(parts["partner_id"]).org_code}
            assert set(frame["la_code"].to_list()) <= set(LA_CODES)
        if parts["feed"] == "ed_assaults":
            assert not {"forename", "surname", "nhs_number", "date_of_birth"} & set(frame.columns)


def test_person_rows_refer_to_delivered_reports(deliveries) -> None:
    reports = set()
    persons = set()
    for _, parts, frame in deliveries:
        if parts["feed"] == "death_reports":
            reports |= set(frame["report_id"].to_list())
        elif parts["feed"] == "death_report_persons":
            persons |= set(frame["report_id"].to_list())
    assert persons and persons <= reports
    assert all(re.match(REPORT_ID_PATTERN, r) for r in reports)


def test_formats_vary_as_partners_do(synth_dir: Path, deliveries) -> None:
    csvs = [p.read_bytes() for p, _, _ in deliveries if p.suffix == ".csv"]
    assert any(b.startswith(b"\xef\xbb\xbf") for b in csvs), "no CSV with a BOM"
    assert any(b"\r\n" in b for b in csvs) and any(b"\r\n" not in b and b"\n" in b for b in csvs)
    texts = [f for p, parts, f in deliveries if parts["feed"] == "death_reports" and f.height]
    narratives = pl.concat([f.select("narrative") for f in texts])["narrative"].drop_nulls()
    assert (
        narratives.str.contains("\n").any()
        and narratives.str.contains('"').any()
        and narratives.str.contains(",").any()
    )
    dates = [
        v for _, parts, f in deliveries if parts["feed"] == "me_deaths" for v in f["date_of_death"].to_list()
    ]
    assert any(UK_DATE.match(v) for v in dates) and any(ISO_DATE.match(v) for v in dates)
    booleans = {
        v
        for _, parts, f in deliveries
        if parts["feed"] == "me_deaths"
        for v in f["me_concern"].drop_nulls().to_list()
    }
    assert {"Y", "N"} & booleans and {"1", "0"} & booleans


def test_ground_truth_is_complete_and_never_in_landing(synth_dir: Path) -> None:
    gt = synth_dir / "ground_truth"
    for name in ("persons", "deaths", "source_records", "series", "negative_controls"):
        assert (gt / f"{name}.parquet").exists()
    assert (gt / "summary.json").exists()
    landing_files = [p for p in (synth_dir / "landing").rglob("*") if p.is_file()]
    assert not any("ground_truth" in p.parts or p.name.endswith(".json") for p in landing_files)
    persons = pl.read_parquet(gt / "persons.parquet")
    deaths = pl.read_parquet(gt / "deaths.parquet")
    assert {"person_id", "forename", "surname", "date_of_birth", "sex", "nhs_number"} <= set(persons.columns)
    assert {
        "death_id",
        "person_id",
        "date_of_death",
        "la_code",
        "true_category",
        "police_report_id",
        "lat",
        "lon",
    } <= set(deaths.columns)
    assert persons["nhs_number"].map_elements(is_valid_nhs_number, return_dtype=pl.Boolean).all()
    assert deaths["person_id"].is_in(persons["person_id"].implode()).all()
    assert (
        deaths["la_code"].to_numpy() == la_of_points(deaths["lat"].to_numpy(), deaths["lon"].to_numpy())
    ).all()
    assert deaths["date_of_death"].max() <= date(2026, 9, 30)


def test_source_records_are_exactly_what_landed(synth_dir: Path, deliveries) -> None:
    keys = set()
    for _, parts, frame in deliveries:
        cols = list(FEEDS[parts["feed"]].key)
        joined = frame.select(pl.concat_str([pl.col(c) for c in cols], separator="|")).to_series().to_list()
        keys |= {f"{parts['feed']}:{parts['partner_id']}:{k}" for k in joined}
    sources = pl.read_parquet(synth_dir / "ground_truth" / "source_records.parquet")
    assert set(sources["record_key"].to_list()) == keys
    deaths = pl.read_parquet(synth_dir / "ground_truth" / "deaths.parquet")
    reports = sources.filter(pl.col("feed") == "death_reports")
    assert reports["role"].unique().to_list() == ["deceased"]
    # Every delivered police report is the report of the death the truth says.
    expected = deaths.drop_nulls("police_report_id").select(
        pl.format("death_reports:wmp:{}", "police_report_id").alias("record_key"), "death_id"
    )
    assert reports.select("record_key", "death_id").sort("record_key").equals(expected.sort("record_key"))
    assert sources.filter(pl.col("feed") == "safeguarding_contacts")["role"].unique().to_list() == ["subject"]


def test_same_people_recorded_with_noise_across_partners(synth_dir: Path, deliveries) -> None:
    gt = synth_dir / "ground_truth"
    persons = pl.read_parquet(gt / "persons.parquet")
    sources = pl.read_parquet(gt / "source_records.parquet")
    frames = []
    for _, parts, frame in deliveries:
        if parts["feed"] in ("death_reports", "me_deaths", "inquests", "safeguarding_contacts"):
            cols = list(FEEDS[parts["feed"]].key)
            frames.append(
                frame.select(
                    pl.format(
                        f"{parts['feed']}:{parts['partner_id']}:{{}}",
                        pl.concat_str([pl.col(c) for c in cols], separator="|"),
                    ).alias("record_key"),
                    "forename",
                    "surname",
                )
            )
    recorded = (
        pl.concat(frames)
        .unique("record_key")
        .join(sources, on="record_key")
        .join(
            persons.select(
                "person_id",
                pl.col("forename").alias("true_forename"),
                pl.col("surname").alias("true_surname"),
            ),
            on="person_id",
        )
    )
    exact = (recorded["forename"] == recorded["true_forename"]) & (
        recorded["surname"] == recorded["true_surname"]
    )
    share = exact.mean()
    assert 0.5 < share < 0.95, f"share of records with the exact true name: {share:.2f}"
    per_person = recorded.group_by("person_id").agg(
        pl.col("record_key").str.split(":").list.first().n_unique().alias("feeds")
    )
    assert (per_person["feeds"] >= 2).sum() > 50, "few people appear in more than one partner's data"
    assert persons["namesake_of"].drop_nulls().len() > 0


def test_counts_per_authority_track_population(synth_dir: Path) -> None:
    deaths = pl.read_parquet(synth_dir / "ground_truth" / "deaths.parquet")
    counts = dict(deaths.group_by("residence_la_code").len().iter_rows())
    pops = {a.la_code: a.population for a in local_authorities()}
    x = np.array([pops[k] for k in sorted(pops)], dtype=float)
    y = np.array([counts.get(k, 0) for k in sorted(pops)], dtype=float)
    assert np.corrcoef(x, y)[0, 1] > 0.95
    ratio = (y / y.sum()) / (x / x.sum())
    assert ratio.min() > 0.5 and ratio.max() < 1.6, dict(zip(sorted(pops), ratio.round(2)))


def test_every_series_kind_is_planted_with_sizes_two_to_seven(synth_dir: Path) -> None:
    gt = synth_dir / "ground_truth"
    series = pl.read_parquet(gt / "series.parquet")
    deaths = pl.read_parquet(gt / "deaths.parquet")
    assert set(series["kind"].to_list()) == set(SERIES_KINDS)
    assert series["size"].is_between(2, 7).all()
    # two deaths of elderly residents are no pattern any examiner's data could show
    assert series.filter(pl.col("kind") == "institution")["size"].min() >= 3
    assert (series["death_ids"].list.len() == series["size"]).all()
    members = series.explode("death_ids").join(deaths, left_on="death_ids", right_on="death_id")
    assert members.height == series["size"].sum()
    assert (members["series_id"] == members["series_id_right"]).all()
    reports = set(deaths["police_report_id"].drop_nulls().to_list())
    assert set(series.explode("police_report_ids")["police_report_ids"].drop_nulls().to_list()) <= reports


def test_institution_series_carry_the_certifiers_sudden_or_ill_defined_wording(
    synth_dir: Path, deliveries
) -> None:
    """The realistic trace of a Shipman-like series in medical examiner data: most members
    certified "old age" or a sudden cardiac event by the same clinician at one home; the same
    wording is on a minority of genuine natural deaths too, so it marks no death by itself."""
    gt = synth_dir / "ground_truth"
    series = pl.read_parquet(gt / "series.parquet").filter(pl.col("kind") == "institution")
    members = set(series.explode("death_ids")["death_ids"].to_list())
    sources = pl.read_parquet(gt / "source_records.parquet").filter(pl.col("feed") == "me_deaths")
    me = pl.concat(
        [f for _, p, f in deliveries if p["feed"] == "me_deaths"], how="diagonal_relaxed"
    ).with_columns(
        pl.format("me_deaths:{}|{}", "trust_code", "me_case_id").alias("k"),
    )
    key_of = dict(zip(sources["record_key"].to_list(), sources["death_id"].to_list()))
    # record keys are me_deaths:<partner>:<case id>; match on the case id
    by_case = {k.rsplit(":", 1)[-1]: d for k, d in key_of.items()}
    me = me.with_columns(
        death_id=pl.col("me_case_id").replace_strict(by_case, default=None),
        sudden=pl.col("icd10_underlying").str.contains(r"^(R54|I46)").fill_null(False),
    ).drop_nulls("death_id")
    planted = me.filter(pl.col("death_id").is_in(list(members)))
    others = me.filter(~pl.col("death_id").is_in(list(members)) & pl.col("place_of_death_type").eq("care_home"))
    assert planted.height >= 3
    assert planted["sudden"].mean() >= 0.6
    assert 0.02 < others["sudden"].mean() < 0.2
    assert planted["attending_clinician_ref"].n_unique() == 1


def test_port_like_finder_appears_in_two_reports_under_name_variants(synth_dir: Path, deliveries) -> None:
    gt = synth_dir / "ground_truth"
    series = pl.read_parquet(gt / "series.parquet").filter(pl.col("kind") == "port_like").row(0, named=True)
    killer = series["shared_person_ids"][0]
    sources = pl.read_parquet(gt / "source_records.parquet")
    finder_keys = sources.filter((pl.col("person_id") == killer) & (pl.col("role") == "finder"))[
        "record_key"
    ].to_list()
    assert len(finder_keys) >= 2
    persons = pl.concat(
        [
            f.with_columns(pl.format("death_report_persons:wmp:{}|{}", "report_id", "person_seq").alias("k"))
            for _, p, f in deliveries
            if p["feed"] == "death_report_persons"
        ]
    )
    names = (
        persons.filter(pl.col("k").is_in(finder_keys))
        .select(pl.concat_str("forename", "surname", separator=" "))
        .to_series()
    )
    assert names.n_unique() >= 2, "the finder should be recorded under name variants"
    victims = pl.read_parquet(gt / "deaths.parquet").filter(pl.col("death_id").is_in(series["death_ids"]))
    assert (victims["sex"] == "m").all() and victims["age_at_death"].is_between(18, 31).all()
    assert victims["substances"].list.contains("ghb").all()


def test_violence_network_suspect_is_next_victim(synth_dir: Path) -> None:
    gt = synth_dir / "ground_truth"
    series = (
        pl.read_parquet(gt / "series.parquet").filter(pl.col("kind") == "violence_network").row(0, named=True)
    )
    deaths = (
        pl.read_parquet(gt / "deaths.parquet")
        .filter(pl.col("death_id").is_in(series["death_ids"]))
        .sort("date_of_death")
    )
    sources = pl.read_parquet(gt / "source_records.parquet")
    suspects = sources.filter((pl.col("role") == "suspect") & pl.col("death_id").is_in(series["death_ids"]))
    victims = deaths["person_id"].to_list()
    for earlier, later in zip(deaths["death_id"].to_list(), victims[1:]):
        assert later in suspects.filter(pl.col("death_id") == earlier)["person_id"].to_list()
    gang = sources.filter((pl.col("feed") == "safeguarding_contacts") & pl.col("person_id").is_in(victims))
    assert gang.height >= 1


def test_generation_is_deterministic_by_seed(tmp_path: Path, synth_dir: Path) -> None:
    again = tmp_path / "again"
    generate("tiny", SEED, again)
    other = tmp_path / "other"
    generate("tiny", SEED + 1, other)

    def digest(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    assert digest(again) == digest(synth_dir)
    assert digest(other) != digest(synth_dir)


def test_committed_sample_is_the_documented_command_output(synth_dir: Path) -> None:
    """``seeds/sample_deliveries`` is ``homicide-assets synth --scale tiny --seed 3`` (``make sample``)."""
    sample = SEEDS_DIR / "sample_deliveries"
    if not sample.exists():
        pytest.skip("no committed sample yet")
    for sub in ("landing", "ground_truth"):
        committed = {
            str(p.relative_to(sample / sub)): p.read_bytes() for p in (sample / sub).rglob("*") if p.is_file()
        }
        fresh = {
            str(p.relative_to(synth_dir / sub)): p.read_bytes()
            for p in (synth_dir / sub).rglob("*")
            if p.is_file()
        }
        assert committed.keys() == fresh.keys(), f"{sub}: run `make sample` to refresh the committed sample"
        stale = [k for k in committed if committed[k] != fresh[k]]
        assert not stale, f"{sub}: {len(stale)} stale files, e.g. {stale[:3]}; run `make sample`"


def test_district_profile_centroids_lie_in_their_authority() -> None:
    profile = pl.read_csv(SEEDS_DIR / "synth" / "postcode_district_profile.csv")
    got = la_of_points(profile["lat"].to_numpy(), profile["lon"].to_numpy())
    assert (got == profile["la_code"].to_numpy()).all()
    districts = pl.read_csv(SEEDS_DIR / "postcode_districts.csv")
    assert set(profile["district"].to_list()) == set(districts["district"].to_list())
