"""Group evidence for series: too many deaths at one place, with one clinician, or together
in space and time, where no pair of them is remarkable alone.

Two scans, each with a false-alarm rate set by Monte Carlo on the data's own shape:

- :func:`excess_groups`: runs of deaths at one institution, with one attending clinician,
  or both (medical examiner data), compared with a Poisson count at the entity's usual rate.
  Finds the care home where residents die faster than its size explains, while a large
  hospital, whose usual rate is high, stays quiet.
- :func:`space_time_groups`: the space-time permutation scan
  (:class:`~homicide_assets.lib.series_stats.SpaceTimeScan`) within deaths sharing a
  substance, a method, a kind of place, or youth: nitazene overdoses within a few
  kilometres and a fortnight, young people at one railway line within weeks. Its
  expectation multiplies "how many such deaths ever happen here" by "how many happen in
  this spell anywhere", so a busy place or a busy month is not a series by itself.

Both return groups in one shape (:data:`GROUP_SCHEMA`); :func:`group_links` turns a group
into links between its consecutive members that carry its evidence in words, so series are
still "connected groups of links above threshold".
"""

from __future__ import annotations

import numpy as np
import polars as pl

from homicide_assets.lib.series import (
    COMMON_LOCATION_TYPES,
    SUBSTANCE_WORDS,
    UNINFORMATIVE_METHODS,
    UNINFORMATIVE_SUBSTANCES,
    Background,
    SeriesParams,
    _fmt_distance,
    _UnionFind,
    _words,
)
from homicide_assets.lib.series_stats import SpaceTimeScan, parent_share, poisson_mean_at, poisson_tail, project_m

GROUP_SCHEMA = {
    "scan": pl.String,  # excess | unexpected | space_time
    "group": pl.String,  # what the members share, e.g. "substance:nitazene", "institution:V1234"
    "members": pl.List(pl.Int64),  # profile idx, in date order
    "kinds": pl.List(pl.String),
    "text": pl.String,
    "p_value": pl.Float64,
    "p_threshold": pl.Float64,
    "flag_day": pl.Int64,  # the day the group could first have been seen (last death of the first alarm)
}
#: weight given to a group's evidence when ordering a series' reasons
GROUP_EVIDENCE_BITS = 20.0
#: places whose repeated deaths are an institution's (tested by :func:`excess_groups`), not a cluster
INSTITUTION_LOCATION_TYPES = ("care_home", "hospital", "custody")
EXCESS_WORDS = {
    "clinician": "attending clinician",
    "institution": "place of death",
    "institution_clinician": "place of death and attending clinician",
}


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema=GROUP_SCHEMA)


#: For k further deaths, the expected count above which an excess has p >= 0.01.
_MU_FOR_P01 = dict(zip(range(1, 40), poisson_mean_at(0.01, np.arange(1, 40)).tolist()))


def _threshold_from_minima(minima: np.ndarray, allowed_per_run: float, runs: int) -> float:
    """The p-value that null runs reach ``allowed_per_run`` times per run on average."""
    if not len(minima):
        # the null never produced a run that could be tested: the chance of one is below about
        # 1 / runs, so a p-value at most allowed_per_run / runs keeps the stated rate
        return float(min(allowed_per_run, 1.0) / max(runs, 1))
    values = np.sort(minima)
    allowed = allowed_per_run * runs
    if allowed >= 1:
        return float(values[min(int(allowed) - 1, len(values) - 1)])
    return float(values[0] * allowed)


# ----------------------------------------------------------------------------------------
# Excess at an institution or with a clinician


def _scan_runs(
    codes: np.ndarray,
    days: np.ndarray,
    n_e: np.ndarray,
    prior_rate: np.ndarray,
    span_days: float,
    params: SeriesParams,
    fixed_rate: np.ndarray | None = None,
    least: int | None = None,
):
    """Every run i..j of consecutive deaths of one entity (rows sorted by code, day) with
    ``excess_min_deaths`` to ``excess_max_members`` deaths within ``excess_max_days``:
    (i, j, expected further deaths mu, P(at least j - i further deaths | mu)).

    The entity's usual rate is measured *outside* the run (its other deaths over the rest of
    the period), shrunk towards the usual rate of entities of its type with the weight of
    ``excess_prior_days`` of data (a Gamma-Poisson posterior mean): a run cannot make itself
    look usual, which is what a rate that counts the run's own deaths would do to a small
    care home whose deaths doubled in a month. With ``fixed_rate`` (per row) the usual rate
    is given instead (:func:`unexpected_groups`).

    With ``least`` (the number of codes), only each code's least p (1 where it has no run):
    at a given number of further deaths p grows with mu, so it is the least over run lengths
    of p at the code's least mu, without a p for every run."""
    out_i, out_j, out_mu, out_p = [], [], [], []
    best = None if least is None else np.ones(least)
    n = len(codes)
    t0 = params.excess_prior_days
    for off in range(params.excess_min_deaths - 1, params.excess_max_members):
        if off >= n:
            break
        i = np.arange(n - off)
        j = i + off
        ok = (codes[j] == codes[i]) & (days[j] - days[i] < params.excess_max_days)
        i, j = i[ok], j[ok]
        width = (days[j] - days[i] + 1).astype(float)
        outside = np.maximum(n_e[i] - (off + 1), 0)
        if fixed_rate is None:
            rate = (outside + prior_rate[i] * t0) / (np.maximum(span_days - width, 1.0) + t0)
        else:
            # a rate per death of the entity (all causes) times its deaths other than the run's,
            # and one more so an entity seen only in the run is not assumed never to die
            rate = fixed_rate[i] * (outside + 1) / np.maximum(span_days - width, 30.0)
        mu = rate * width
        plausible = mu < _MU_FOR_P01[off]  # beyond it P >= 0.01: never an alarm
        i, j, mu = i[plausible], j[plausible], mu[plausible]
        if best is not None:
            if len(i):
                # rows are sorted by code, so each code's runs of this length are one segment
                code = codes[i]
                starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
                seg = code[starts]
                best[seg] = np.minimum(best[seg], poisson_tail(off, np.minimum.reduceat(mu, starts)))
            continue
        out_i.append(i)
        out_j.append(j)
        out_mu.append(mu)
        out_p.append(poisson_tail(np.full(len(i), off), mu))
    if best is not None:
        return best
    if not out_i:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty.astype(np.int64), empty, empty
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_mu), np.concatenate(out_p)


def excess_threshold(
    codes: np.ndarray, n_e: np.ndarray, prior_rate: np.ndarray, span_days: float, params: SeriesParams
) -> float:
    """The p-value below which a run is an excess, set by Monte Carlo so that data with no
    excess anywhere (each entity's deaths spread uniformly over the period, its count kept)
    would give ``excess_false_alarms_per_year`` alarms a year on average."""
    rng = np.random.default_rng(params.seed)
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    minima = []
    days = max(int(span_days), 1)
    for _ in range(params.excess_simulations):
        sim = rng.integers(0, days, len(codes))
        # by code, then simulated day (a stable sort of one key: the order np.lexsort gives)
        order = np.argsort(codes * days + sim, kind="stable")
        best = _scan_runs(
            codes[order], sim[order], n_e[order], prior_rate[order], span_days, params, least=n_codes
        )
        minima.append(best[best < 1])
    return _threshold_from_minima(
        np.concatenate(minima) if minima else np.ones(1),
        params.excess_false_alarms_per_year * span_days / 365.25,
        params.excess_simulations,
    )


def _merge_runs(codes, days, i, j, mu, p) -> list[dict]:
    """Overlapping alarm runs of one entity as one group: its rows i..j, its best run (bi..bj,
    p, mu) and the first day any of its runs alarmed."""
    runs: list[dict] = []
    for r in np.lexsort((j, i, codes[i])):
        cur = runs[-1] if runs else None
        if cur is not None and codes[i[r]] == cur["code"] and i[r] <= cur["j"]:
            cur["j"] = max(cur["j"], j[r])
            cur["flag"] = min(cur["flag"], days[j[r]])
            if p[r] < cur["p"]:
                cur.update(p=p[r], mu=mu[r], bi=i[r], bj=j[r])
            continue
        runs.append(
            {"code": codes[i[r]], "i": i[r], "j": j[r], "p": p[r], "mu": mu[r], "flag": days[j[r]],
             "bi": i[r], "bj": j[r]}
        )
    return runs


def excess_groups(
    profiles: pl.DataFrame,
    entities: pl.DataFrame,
    bg: Background,
    params: SeriesParams,
    threshold: float | None = None,
    used: dict | None = None,
) -> pl.DataFrame:
    """Runs of deaths at one institution, with one clinician, or both, that are too many too soon.

    For every entity and every run of its consecutive deaths (``excess_min_deaths`` to
    ``excess_max_members`` deaths within ``excess_max_days``), the deaths after the first
    are compared with a Poisson count at the entity's average rate over the period. Runs at
    or below the Monte Carlo threshold (:func:`excess_threshold`) are excesses; overlapping
    runs of one entity merge into one group.
    """
    ent = entities.filter(pl.col("etype").is_in(["clinician", "institution"])).select(
        "idx", "day", "etype", "entity"
    )
    combo = profiles.filter(pl.col("institution").is_not_null() & pl.col("clinician").is_not_null()).select(
        "idx",
        "day",
        pl.lit("institution_clinician").alias("etype"),
        pl.concat_str([pl.col("institution"), pl.lit(" with "), pl.col("clinician")]).alias("entity"),
    )
    ent = pl.concat([ent, combo]).unique(["etype", "entity", "idx"])
    ent = ent.with_columns(n_e=pl.len().over("etype", "entity"))
    # the usual rate of an entity of each type: the median over all entities of that type
    usual = ent.unique(["etype", "entity"]).group_by("etype").agg(pl.col("n_e").median().alias("m"))
    usual_rate = dict(zip(usual["etype"].to_list(), (usual["m"] / bg.span_days).to_list()))
    ent = ent.filter(pl.col("n_e") >= params.excess_min_deaths)
    if ent.is_empty():
        return _empty()
    ent = ent.with_columns(code=(pl.struct("etype", "entity").rank("dense") - 1).cast(pl.Int64)).sort(
        "code", "day", "idx"
    )
    codes = ent["code"].to_numpy()
    days = (ent["day"].to_numpy() - bg.first_day).astype(np.int64)
    n_e = ent["n_e"].to_numpy().astype(float)
    prior_rate = np.array([usual_rate[e] for e in ent["etype"].to_list()], dtype=float)
    if threshold is None:
        threshold = excess_threshold(codes, n_e, prior_rate, bg.span_days, params)
    if used is not None:
        used["excess"] = threshold
    i, j, mu, p = _scan_runs(codes, days, n_e, prior_rate, bg.span_days, params)
    hit = p <= threshold
    i, j, mu, p = i[hit], j[hit], mu[hit], p[hit]
    if not len(i):
        return _empty()
    idx, etype, entity = ent["idx"].to_numpy(), ent["etype"].to_numpy(), ent["entity"].to_numpy()
    runs = _merge_runs(codes, days, i, j, mu, p)
    rows = []
    for c in runs:
        kind = str(etype[c["i"]])
        members = [int(x) for x in idx[c["i"] : c["j"] + 1]]
        best_n = int(c["bj"] - c["bi"] + 1)
        width = int(days[c["bj"]] - days[c["bi"]] + 1)
        text = (
            f"{best_n} deaths with the same {EXCESS_WORDS[kind]} ({entity[c['i']]}) within {width} days where "
            f"{c['mu'] + 1:.1f} would be usual (Poisson p = {c['p']:.1g}; alarm threshold {threshold:.1g}, "
            f"{params.excess_false_alarms_per_year:g} false alarms a year)"
        )
        kinds = {
            "clinician": ["shared_clinician"],
            "institution": ["shared_institution"],
            "institution_clinician": ["shared_clinician", "shared_institution"],
        }[kind]
        rows.append(
            (
                "excess",
                f"{kind}:{entity[c['i']]}",
                members,
                kinds,
                text,
                float(c["p"]),
                threshold,
                int(c["flag"] + bg.first_day),
            )
        )
    return pl.DataFrame(rows, schema=GROUP_SCHEMA, orient="row")


#: Underlying causes that say a death was sudden or ill-defined rather than the end of a
#: disease (ICD-10 R54 senility / "old age", R96-R99 sudden or unknown cause, I46 cardiac
#: arrest, which registrars query as a mode of dying): what the Shipman Inquiry found on the
#: certificates of his victims, who had not been expected to die.
UNEXPECTED_ICD10_PREFIXES = ("R54", "R96", "R97", "R98", "R99", "I46")


def is_unexpected(icd10: pl.Expr) -> pl.Expr:
    code = icd10.str.strip_chars().str.to_uppercase()
    return pl.any_horizontal([code.str.starts_with(p) for p in UNEXPECTED_ICD10_PREFIXES]).fill_null(False)


def unexpected_groups(
    profiles: pl.DataFrame,
    bg: Background,
    params: SeriesParams,
    threshold: float | None = None,
    used: dict | None = None,
) -> pl.DataFrame:
    """Too many sudden or ill-defined certificates from one clinician at one institution.

    For each place of death and attending clinician (medical examiner data), the deaths
    certified with a sudden or ill-defined underlying cause (:data:`UNEXPECTED_ICD10_PREFIXES`)
    are scanned in runs as in :func:`excess_groups`, against the rate that pair would show if
    its deaths were certified like everyone's: its natural deaths other than the run's own
    (spread over the rest of the period) times the share of such certificates among natural
    deaths at that type of place. The alarm threshold is set by Monte Carlo under exactly that
    null (each of the pair's natural deaths independently sudden or ill-defined at the share
    of its type of place; days kept), for
    ``unexpected_false_alarms_per_year``. Neither a busy home (many deaths, so a high usual
    rate) nor a clinician who often writes "old age" over years (the share is the place
    type's, but the runs must be tight) is an alarm by itself.

    Only deaths outside hospital (``unexpected_place_types``: care homes, the person's home,
    hospices), where one doctor who knew the patient certifies: in hospital the recorded
    clinician is the consultant of a ward whose certificates are written by rotating doctors,
    and on the generator's force-decade data the scan's hospital alarms ran at about five
    times its stated rate (benchmarks/series.md); hospital excesses are left to
    :func:`excess_groups`.
    """
    # natural deaths only (ICD-10 chapters A-R and U): the share of "old age" among all hospital
    # deaths is diluted by overdoses and injuries, so a clinician on an elderly ward would
    # look excessive against it; against the natural deaths it is not
    natural = pl.col("icd10").str.strip_chars().str.to_uppercase().str.contains(r"^[A-RU]")
    base = profiles.filter(
        pl.col("institution").is_not_null()
        & pl.col("clinician").is_not_null()
        & pl.col("icd10").is_not_null()
        & natural
        & pl.col("place_of_death_type").is_in(list(params.unexpected_place_types))
    ).select(
        "idx",
        "day",
        pl.col("place_of_death_type").fill_null("other").alias("ptype"),
        pl.concat_str([pl.col("institution"), pl.lit(" with "), pl.col("clinician")]).alias("entity"),
        is_unexpected(pl.col("icd10")).alias("unexpected"),
    )
    if base.is_empty() or not base["unexpected"].any():
        return _empty()
    base = base.with_columns(
        share=pl.col("unexpected").mean().over("ptype"),
        n_all=pl.len().over("entity"),
        code=(pl.col("entity").rank("dense") - 1).cast(pl.Int64),
    ).sort("code", "day", "idx")
    span = bg.span_days
    codes_all = base["code"].to_numpy()
    days_all = (base["day"].to_numpy() - bg.first_day).astype(np.int64)
    share = base["share"].to_numpy()
    # the pair's usual rate of such certificates per death it certifies; the run's own
    # deaths are left out of the pair's deaths (see _scan_runs)
    rate_all = share
    n_codes = int(codes_all.max()) + 1
    dummy = np.zeros(len(codes_all))
    n_all = base["n_all"].to_numpy()

    def scan(mask: np.ndarray):
        codes, days, rate = codes_all[mask], days_all[mask], rate_all[mask]
        n_e = np.bincount(codes, minlength=n_codes)[codes]
        keep = n_e >= params.excess_min_deaths
        rows = np.flatnonzero(mask)[keep]
        i, j, mu, p = _scan_runs(
            codes[keep], days[keep], n_all[rows].astype(float), dummy[: keep.sum()], span, params,
            fixed_rate=rate[keep],
        )
        return rows, i, j, mu, p

    if threshold is None:
        rng = np.random.default_rng(params.seed + 1)
        minima = []
        for _ in range(params.unexpected_simulations):
            rows, i, _j, _mu, p = scan(rng.random(len(share)) < share)
            best = np.ones(n_codes)
            np.minimum.at(best, codes_all[rows][i], p)
            minima.append(best[best < 1])
        threshold = _threshold_from_minima(
            np.concatenate(minima) if minima else np.ones(1),
            params.unexpected_false_alarms_per_year * span / 365.25,
            params.unexpected_simulations,
        )
    if used is not None:
        used["unexpected"] = threshold
    rows, i, j, mu, p = scan(base["unexpected"].to_numpy())
    hit = p <= threshold
    i, j, mu, p = i[hit], j[hit], mu[hit], p[hit]
    if not len(i):
        return _empty()
    codes, days = codes_all[rows], days_all[rows]
    idx, entity = base["idx"].to_numpy()[rows], base["entity"].to_numpy()[rows]
    ptype, share_r = base["ptype"].to_numpy()[rows], share[rows]
    n_all = n_all[rows]
    out = []
    for c in _merge_runs(codes, days, i, j, mu, p):
        members = [int(x) for x in idx[c["i"] : c["j"] + 1]]
        best_n = int(c["bj"] - c["bi"] + 1)
        width = int(days[c["bj"]] - days[c["bi"]] + 1)
        text = (
            f"{best_n} deaths certified with a sudden or ill-defined cause (old age, cardiac arrest, sudden "
            f"death) by the same clinician at the same place ({entity[c['i']]}) within {width} days, where "
            f"{c['mu'] + 1:.2f} would be usual for its {int(n_all[c['i']])} deaths over the period at "
            f"{_pct_words(share_r[c['i']])} of natural {_words(str(ptype[c['i']]))} deaths certified so (Poisson p = "
            f"{c['p']:.1g}; alarm threshold {threshold:.1g}, {params.unexpected_false_alarms_per_year:g} "
            f"false alarms a year)"
        )
        out.append(
            (
                "unexpected",
                f"unexpected:{entity[c['i']]}",
                members,
                ["shared_clinician", "shared_institution"],
                text,
                float(c["p"]),
                threshold,
                int(c["flag"] + bg.first_day),
            )
        )
    return pl.DataFrame(out, schema=GROUP_SCHEMA, orient="row")


def _pct_words(share: float) -> str:
    return f"{share * 100:.1f}%"


# ----------------------------------------------------------------------------------------
# Space-time clusters within kinds of death


def scan_groups(profiles: pl.DataFrame, params: SeriesParams) -> pl.DataFrame:
    """(idx, day, lat, lon, group) for deaths with coordinates, one row per group they belong to:
    each substance, each informative method, each uncommon kind of place, and the young
    (less those in ``scan_excluded_groups``: groups so broad that chance clusters in them
    would set the alarm threshold for all)."""
    geo = profiles.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    base = ["idx", "day", "lat", "lon"]
    parts = [
        geo.select(*base, pl.col("substances").alias("g"))
        .explode("g")
        .drop_nulls("g")
        .filter(~pl.col("g").is_in(UNINFORMATIVE_SUBSTANCES))
        .with_columns(pl.concat_str([pl.lit("substance:"), pl.col("g")]).alias("g")),
        geo.filter(pl.col("method").is_not_null() & ~pl.col("method").is_in(UNINFORMATIVE_METHODS)).select(
            *base, pl.concat_str([pl.lit("method:"), pl.col("method")]).alias("g")
        ),
        geo.filter(
            pl.col("location_type").is_not_null()
            & ~pl.col("location_type").is_in([*COMMON_LOCATION_TYPES, *INSTITUTION_LOCATION_TYPES])
        ).select(*base, pl.concat_str([pl.lit("place:"), pl.col("location_type")]).alias("g")),
        geo.filter(pl.col("age") < params.scan_young_age).select(*base, pl.lit("young").alias("g")),
    ]
    out = pl.concat(parts).unique(["idx", "g"])
    return out.filter(~pl.col("g").is_in(list(params.scan_excluded_groups))).sort("g", "day", "idx")


def _group_words(group: str, params: SeriesParams) -> tuple[str, list[str]]:
    kind, _, value = group.partition(":")
    if kind == "substance":
        return f"with {SUBSTANCE_WORDS.get(value, value)}", ["space_time", "shared_substance"]
    if kind == "method":
        return f"by {_words(value)}", ["space_time", "same_method"]
    if kind == "place":
        return f"at a {_words(value)} location", ["space_time", "shared_place"]
    return f"of people under {params.scan_young_age}", ["space_time", "similar_victims"]


class ScanGroupsChanged(Exception):
    """Held alarm thresholds lack a group today's deaths scan (a new drug, say): the
    thresholds share one budget between groups, so they are set again on all of them."""


def space_time_groups(
    profiles: pl.DataFrame,
    bg: Background,
    params: SeriesParams,
    thresholds: dict[str, float] | None = None,
    used: dict | None = None,
) -> pl.DataFrame:
    """Space-time permutation scan within each group of :func:`scan_groups`; overlapping
    alarms of one group merge into one cluster.

    ``thresholds`` (group -> alarm threshold, a held search's) are used instead of setting
    them on the scan's own permutations; a group the scan tests that they lack raises
    :class:`ScanGroupsChanged`. The thresholds used are put in ``used["scan"]``.
    """
    rows = scan_groups(profiles, params)
    if rows.height < 2:
        return _empty()
    codes = (rows["g"].rank("dense") - 1).cast(pl.Int64).to_numpy()
    names = dict(zip(codes.tolist(), rows["g"].to_list()))
    geo = profiles.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    lat0 = float(geo["lat"].mean())
    points = project_m(rows["lat"].to_numpy(), rows["lon"].to_numpy(), lat0)
    population = project_m(geo["lat"].to_numpy(), geo["lon"].to_numpy(), lat0)
    scan = SpaceTimeScan(
        rows["day"].to_numpy(),
        points,
        codes,
        radii_m=params.scan_radii_m,
        max_days=params.scan_max_days,
        min_events=params.scan_min_deaths,
        parent_share=parent_share(points, population, params.scan_radii_m),
        prior_events=params.scan_prior_deaths,
        span_days=bg.span_days,
        null_days=geo["day"].to_numpy(),
    )
    if thresholds is None:
        by_code = scan.thresholds(
            params.scan_permutations, params.scan_false_alarms_per_year * bg.years, params.seed
        )
        thresholds = {names[g]: t for g, t in by_code.items()}
    else:
        missing = sorted(names[g] for g in scan.tested_groups() if names[g] not in thresholds)
        if missing:
            raise ScanGroupsChanged(", ".join(missing))
        codes_of = {v: k for k, v in names.items()}
        by_code = {codes_of[g]: t for g, t in thresholds.items() if g in codes_of}
    if used is not None:
        used["scan"] = dict(thresholds)
    hits = scan.hits(by_code)
    if not hits:
        return _empty()
    idx = rows["idx"].to_numpy()
    day = rows["day"].to_numpy()
    uf = _UnionFind()
    for h in hits:
        for m in h.members[1:]:
            uf.union(h.members[0], m)
    clusters: dict[int, list] = {}
    for h in hits:
        clusters.setdefault(uf.find(h.members[0]), []).append(h)
    out = []
    for group_hits in clusters.values():
        members = sorted({m for h in group_hits for m in h.members}, key=lambda r: (day[r], r))
        best = min(group_hits, key=lambda h: h.p_value)
        what, kinds = _group_words(names[best.group], params)
        text = (
            f"{best.observed} deaths {what} within {_fmt_distance(best.radius_m)} and {best.days + 1} days where "
            f"{best.expected:.2f} would be expected besides the first at the usual rate and place of such deaths "
            f"(space-time scan p = {best.p_value:.1g}; alarm threshold for this group {best.threshold:.1g}, "
            f"{params.scan_false_alarms_per_year:g} false alarms a year over all groups)"
        )
        out.append(
            (
                "space_time",
                names[best.group],
                [int(idx[m]) for m in members],
                kinds,
                text,
                float(best.p_value),
                float(best.threshold),
                int(min(h.end_day for h in group_hits)),
            )
        )
    return pl.DataFrame(out, schema=GROUP_SCHEMA, orient="row")


# ----------------------------------------------------------------------------------------


def group_links(groups: pl.DataFrame, profiles: pl.DataFrame, params: SeriesParams) -> pl.DataFrame:
    """Links between consecutive members of each group, carrying the group's evidence.

    The score maps the group's p-value onto the link scale so that the alarm threshold gives
    exactly ``link_threshold``: ``1 / (1 + (p / p*) (1 / threshold - 1))``. In the backtest a
    link is visible from the group's ``flag_day`` (or its later death, if later).
    """
    schema = {
        "a": pl.Int64,
        "b": pl.Int64,
        "score": pl.Float64,
        "score_then": pl.Float64,
        "visible_day": pl.Int64,
        "evidence": pl.List(pl.String),
        "evidence_bits": pl.List(pl.Float64),
        "kinds": pl.List(pl.String),
        "days_apart": pl.Int64,
        "metres_apart": pl.Float64,
    }
    if groups.is_empty():
        return pl.DataFrame(schema=schema)
    day = profiles["day"].to_numpy()
    rows = []
    for g in groups.iter_rows(named=True):
        members = sorted(g["members"], key=lambda x: (day[x], x))
        ratio = g["p_value"] / max(g["p_threshold"], 1e-300)
        score = 1 / (1 + ratio * (1 / params.link_threshold - 1))
        for x, y in zip(members[:-1], members[1:]):
            visible = max(int(day[x]), int(day[y]), int(g["flag_day"]))
            rows.append(
                (
                    min(x, y),
                    max(x, y),
                    float(score),
                    float(score),
                    visible,
                    [g["text"]],
                    [GROUP_EVIDENCE_BITS],
                    list(g["kinds"]),
                    int(abs(day[y] - day[x])),
                    None,
                )
            )
    return pl.DataFrame(rows, schema=schema, orient="row")
