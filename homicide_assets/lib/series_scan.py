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
from homicide_assets.lib.series_stats import SpaceTimeScan, parent_share, poisson_tail, project_m

GROUP_SCHEMA = {
    "scan": pl.String,  # excess | space_time
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


def _mu_at(p: float, k: int) -> float:
    """The Poisson mean at which P(N >= k) = p (bisection)."""
    lo, hi = 0.0, float(k) + 10.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(poisson_tail(k, mid)) < p:
            lo = mid
        else:
            hi = mid
    return hi


#: For k further deaths, the expected count above which an excess has p >= 0.01.
_MU_FOR_P01 = {k: _mu_at(0.01, k) for k in range(1, 40)}


def _threshold_from_minima(minima: np.ndarray, allowed_per_run: float, runs: int) -> float:
    """The p-value that null runs reach ``allowed_per_run`` times per run on average."""
    values = np.sort(minima) if len(minima) else np.ones(1)
    allowed = allowed_per_run * runs
    if allowed >= 1:
        return float(values[min(int(allowed) - 1, len(values) - 1)])
    return float(values[0] * allowed)


# ----------------------------------------------------------------------------------------
# Excess at an institution or with a clinician


def _scan_runs(codes: np.ndarray, days: np.ndarray, rate: np.ndarray, params: SeriesParams):
    """Every run i..j of consecutive deaths of one entity (rows sorted by code, day) with
    ``excess_min_deaths`` to ``excess_max_members`` deaths within ``excess_max_days``:
    (i, j, expected further deaths mu, P(at least j - i further deaths | mu))."""
    out_i, out_j, out_mu, out_p = [], [], [], []
    n = len(codes)
    for off in range(params.excess_min_deaths - 1, params.excess_max_members):
        if off >= n:
            break
        i = np.arange(n - off)
        j = i + off
        ok = (codes[j] == codes[i]) & (days[j] - days[i] < params.excess_max_days)
        i, j = i[ok], j[ok]
        mu = rate[i] * (days[j] - days[i] + 1)
        plausible = mu < _MU_FOR_P01[off]  # beyond it P >= 0.01: never an alarm
        i, j, mu = i[plausible], j[plausible], mu[plausible]
        out_i.append(i)
        out_j.append(j)
        out_mu.append(mu)
        out_p.append(poisson_tail(np.full(len(i), off), mu))
    if not out_i:
        empty = np.zeros(0)
        return empty.astype(np.int64), empty.astype(np.int64), empty, empty
    return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_mu), np.concatenate(out_p)


def excess_threshold(codes: np.ndarray, n_e: np.ndarray, span_days: float, params: SeriesParams) -> float:
    """The p-value below which a run is an excess, set by Monte Carlo so that data with no
    excess anywhere (each entity's deaths spread uniformly over the period, its count kept)
    would give ``excess_false_alarms_per_year`` alarms a year on average."""
    rng = np.random.default_rng(params.seed)
    n_codes = int(codes.max()) + 1 if len(codes) else 0
    rate = n_e / span_days
    minima = []
    for _ in range(params.excess_simulations):
        sim = rng.integers(0, max(int(span_days), 1), len(codes))
        order = np.lexsort((sim, codes))
        i, _j, _mu, p = _scan_runs(codes[order], sim[order], rate[order], params)
        best = np.ones(n_codes)
        np.minimum.at(best, codes[order][i], p)
        minima.append(best[best < 1])
    return _threshold_from_minima(
        np.concatenate(minima) if minima else np.ones(1),
        params.excess_false_alarms_per_year * span_days / 365.25,
        params.excess_simulations,
    )


def excess_groups(
    profiles: pl.DataFrame, entities: pl.DataFrame, bg: Background, params: SeriesParams
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
    ent = ent.with_columns(n_e=pl.len().over("etype", "entity")).filter(
        pl.col("n_e") >= params.excess_min_deaths
    )
    if ent.is_empty():
        return _empty()
    ent = ent.with_columns(code=(pl.struct("etype", "entity").rank("dense") - 1).cast(pl.Int64)).sort(
        "code", "day", "idx"
    )
    codes = ent["code"].to_numpy()
    days = (ent["day"].to_numpy() - bg.first_day).astype(np.int64)
    n_e = ent["n_e"].to_numpy().astype(float)
    threshold = excess_threshold(codes, n_e, bg.span_days, params)
    i, j, mu, p = _scan_runs(codes, days, n_e / bg.span_days, params)
    hit = p <= threshold
    i, j, mu, p = i[hit], j[hit], mu[hit], p[hit]
    if not len(i):
        return _empty()
    idx, etype, entity = ent["idx"].to_numpy(), ent["etype"].to_numpy(), ent["entity"].to_numpy()
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
            {
                "code": codes[i[r]],
                "i": i[r],
                "j": j[r],
                "p": p[r],
                "mu": mu[r],
                "flag": days[j[r]],
                "bi": i[r],
                "bj": j[r],
            }
        )
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


def space_time_groups(profiles: pl.DataFrame, bg: Background, params: SeriesParams) -> pl.DataFrame:
    """Space-time permutation scan within each group of :func:`scan_groups`; overlapping
    alarms of one group merge into one cluster."""
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
    thresholds = scan.thresholds(
        params.scan_permutations, params.scan_false_alarms_per_year * bg.years, params.seed
    )
    hits = scan.hits(thresholds)
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
