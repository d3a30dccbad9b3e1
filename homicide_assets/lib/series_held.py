"""What the series search holds between builds (``models/series/`` in the data directory),
and the incremental search that uses it.

The search (:func:`homicide_assets.lib.series.search_links`) is a function of two frames it
derives from its inputs, the death profiles and the entities deaths share (people,
officers, clinicians, institutions, substances), of its parameters and code, and of its
*basis* (:class:`homicide_assets.lib.series.SearchBasis`): how common each kind of death,
place and thing is, the police-reported deaths a kind of death is counted among, the group
scans' alarm thresholds and the Knox test.

Three ways a build can search, in the order tried:

- **held**: the profiles and entities are the same, row for row, with the same parameters and
  code (a police extract that only corrects a narrative). The held links and groups come back.
- **incremental**: the same parameters and code, and the deaths new, changed or gone since the
  last whole search are fewer than ``SeriesParams.reestimate_fraction`` of that search's deaths.
  The basis of the last whole search is kept, as linkage keeps its trained model, and only what
  changed is weighed again against it:
  - a pair's first weighing depends on its two deaths, the entities they share and the basis,
    so it is weighed again if either death is new or changed, if it shares an entity whose
    rows changed (a finder in one more death, an officer's area with one more death), or if
    it is a new candidate;
  - its cluster-left-out weighing also depends on the first weighing's links of its two deaths,
    so it is also weighed again if either death's links changed.
  Every other pair keeps its held weighing. The candidate pairs themselves are updated
  (:func:`incremental_pairs`), not found again over every death. The group scans run on
  today's deaths with the held thresholds, and the held Knox test is kept. The result equals a whole search of today's
  deaths against the held basis (``homicide_assets_tests/test_series_held.py``).
- **whole**: anything else (nothing held, other parameters or code, too much changed, a scan
  group the held thresholds lack, deaths earlier than the held basis begins). The basis is
  measured again on today's deaths.

The held links carry the evidence in words, which may name people, and the held basis
holds the deaths' profiles: the folder is as sensitive as ``warehouse/series/`` (SECURITY.md)
and goes with it when data is deleted. Deleting it makes the next build search whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from homicide_assets.lib.series_stats import DENSITY_RADII_M, KnoxResult, cKDTree, project_m

#: Bump when the held files change shape.
STATE_FORMAT = 3
#: The modules whose code defines the search's result.
_CODE_MODULES = ("series", "series_scan", "series_stats", "geography", "series_held")
_FRAMES = (
    "links",
    "groups",
    "keys",
    "population",
    "density",
    "profile_hash",
    "entity_hash",
    "pairs",
    "first",
    "scored",
    "rank_groups",
    "entity_pairs",
)
#: Frames an incremental search leaves as the whole search wrote them.
_BASIS_FRAMES = ("population", "density")


def series_code_version() -> str:
    """sha256 of the modules that define the search and the versions of the libraries whose
    numbers it relies on (a held search from other code is not reused)."""
    import importlib
    from importlib.metadata import version

    digest = hashlib.sha256()
    for name in _CODE_MODULES:
        module = importlib.import_module(f"homicide_assets.lib.{name}")
        digest.update(name.encode())
        digest.update(Path(module.__file__).read_bytes())
    for package in ("polars", "numpy", "scipy"):
        digest.update(f"{package}=={version(package)}".encode())
    return digest.hexdigest()


def search_code(params) -> str:
    """The code and parameters a held search was made with."""
    return hashlib.sha256((series_code_version() + repr(params)).encode()).hexdigest()


def _frame_digest(digest, name: str, frame: pl.DataFrame) -> None:
    digest.update(f"{name}:{frame.height}:{frame.schema}".encode())
    if frame.height:
        # two seeded 64-bit hashes per row, sorted: the frame's rows as a set, whatever order
        # they were built in (entities come out of unordered group-bys; both frames carry each
        # death's ``idx``). The same rows give the same bytes in any process of one polars
        # version, which the code version names.
        for seed in (11, 1_000_003):
            digest.update(np.sort(frame.hash_rows(seed=seed).to_numpy()).tobytes())


def search_digest(profiles: pl.DataFrame, entities: pl.DataFrame, params) -> str:
    """What a search's result is a function of: its profiles and entities row for row, its
    parameters and its code."""
    digest = hashlib.sha256()
    digest.update(series_code_version().encode())
    digest.update(repr(params).encode())
    _frame_digest(digest, "profiles", profiles)
    _frame_digest(digest, "entities", entities)
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------
# Row hashes: what changed since the held search


def _profile_hashes(profiles: pl.DataFrame, key_of_idx: np.ndarray) -> pl.DataFrame:
    """(key, h): each death's profile row, hashed without its position."""
    return pl.DataFrame(
        {"key": key_of_idx, "h": profiles.drop("idx").hash_rows(seed=11).to_numpy()},
        schema={"key": pl.Int64, "h": pl.UInt64},
    )


def _entity_rows(entities: pl.DataFrame, key_of_idx: np.ndarray) -> pl.DataFrame:
    """(idx, he, h, etype): each entity row, hashed with its death's key for its position;
    ``he`` names the entity (etype and entity)."""
    keyed = entities.with_columns(pl.Series("idx", key_of_idx[entities["idx"].to_numpy()], dtype=pl.Int64))
    return pl.DataFrame(
        {
            "idx": entities["idx"],
            "he": entities.select("etype", "entity").hash_rows(seed=13),
            "h": keyed.hash_rows(seed=11),
            "etype": entities["etype"],
        }
    )


def _dirty_entities(now: pl.DataFrame, then: pl.DataFrame) -> pl.Series:
    """Entities (``he``) with a row added, changed or gone. Substances are left out: a pair's
    weight reads shared substances from the profiles, never from the entity rows (which only
    make candidate pairs, compared separately)."""
    a = now.select("he", "h", "etype").join(then, on=["he", "h"], how="anti")
    b = then.join(now.select("he", "h"), on=["he", "h"], how="anti")
    changed = pl.concat([a.select("he", "etype"), b.select("he", "etype")])
    return changed.filter(pl.col("etype") != "substance")["he"].unique()


# ----------------------------------------------------------------------------------------
# The held basis


def member_density(population: pl.DataFrame, density: np.ndarray, profiles: pl.DataFrame) -> np.ndarray:
    """(profiles, radii) neighbour counts of today's deaths among the held search's deaths
    (``population``, whose own counts are ``density``): a death at the place it had there
    keeps its count; a new or moved one is counted against the population's points (less
    itself where its old place is within the radius, as a whole search counts *other* deaths)."""
    out = np.full((profiles.height, len(DENSITY_RADII_M)), np.nan)
    at = (
        profiles.select("death_id", "lat", "lon", pl.int_range(pl.len(), dtype=pl.Int64).alias("_m"))
        .join(
            population.select(
                "death_id",
                pl.col("lat").alias("_lat0"),
                pl.col("lon").alias("_lon0"),
                pl.int_range(pl.len(), dtype=pl.Int64).alias("_p"),
            ),
            on="death_id",
            how="left",
        )
        .filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    )
    same = at.filter((pl.col("lat") == pl.col("_lat0")) & (pl.col("lon") == pl.col("_lon0")))
    out[same["_m"].to_numpy()] = density[same["_p"].to_numpy()]
    other = at.join(same.select("_m"), on="_m", how="anti")
    if other.height:
        has = (population["lat"].is_not_null() & population["lon"].is_not_null()).to_numpy()
        lat_p = population["lat"].to_numpy()[has]
        lon_p = population["lon"].to_numpy()[has]
        lat0 = float(np.nanmean(lat_p)) if len(lat_p) else 52.5
        q = project_m(other["lat"].to_numpy(), other["lon"].to_numpy(), lat0)
        old_lat, old_lon = other["_lat0"].to_numpy(), other["_lon0"].to_numpy()
        was = np.isfinite(old_lat.astype(float)) & np.isfinite(old_lon.astype(float))
        old = project_m(np.where(was, old_lat, 0.0), np.where(was, old_lon, 0.0), lat0)
        moved = np.hypot(*(q - old).T)
        counts = np.zeros((other.height, len(DENSITY_RADII_M)))
        if len(lat_p):
            tree = cKDTree(project_m(lat_p, lon_p, lat0))
            for j, r in enumerate(DENSITY_RADII_M):
                counts[:, j] = tree.query_ball_point(q, r, return_length=True) - (was & (moved <= r))
        out[other["_m"].to_numpy()] = counts
    return out


# ----------------------------------------------------------------------------------------
# The held search


@dataclass
class HeldSearch:
    """A search's links and group evidence, what they were computed from, and the basis and
    weighings an incremental search continues from. Pairs and deaths are held by ``key`` (a
    death's number in ``keys``, stable while the state is continued; ``idx`` moves when a
    death is inserted)."""

    digest: str
    code: str
    links: pl.DataFrame
    groups: pl.DataFrame
    candidate_pairs: int
    knox: KnoxResult | None
    #: death_id -> key
    keys: pl.DataFrame
    #: the profiles of the last whole search (its deaths in its ``idx`` order) and their
    #: neighbour counts (one column per radius)
    population: pl.DataFrame
    density: pl.DataFrame
    thresholds: dict
    #: deaths new, changed or gone since the last whole search
    changed: int
    #: today's rows, by key: profile hashes, entity hashes, candidate pairs, the first
    #: weighing (pairs at or above the lowest floor any later step reads) and the scored links
    profile_hash: pl.DataFrame
    entity_hash: pl.DataFrame
    pairs: pl.DataFrame
    first: pl.DataFrame
    scored: pl.DataFrame
    #: the groups candidate pairs pair by rank: (g: group code, key, pos: place in the group),
    #: and their pairs (a < b by key) with how many groups pair them (n)
    rank_groups: pl.DataFrame
    entity_pairs: pl.DataFrame
    #: the basis frames are the ones already in the folder (an incremental search's save)
    basis_unchanged: bool = False

    @classmethod
    def from_whole(cls, search, entities: pl.DataFrame, digest: str, code: str, params) -> HeldSearch:
        """The state a whole search leaves: its deaths are the basis, keyed by ``idx``."""
        profiles = search.profiles
        key_of_idx = np.arange(profiles.height, dtype=np.int64)
        basis = search.basis
        bg = basis.background
        density = pl.DataFrame(
            {f"r{j}": bg.density[:, j] for j in range(bg.density.shape[1])},
            schema={f"r{j}": pl.Float64 for j in range(bg.density.shape[1])},
        )
        return cls(
            digest=digest,
            code=code,
            links=search.links,
            groups=search.groups,
            candidate_pairs=search.candidate_pairs,
            knox=basis.knox,
            keys=profiles.select("death_id", key=pl.col("idx")),
            population=profiles,
            density=density,
            thresholds=_thresholds(basis),
            changed=0,
            profile_hash=_profile_hashes(profiles, key_of_idx),
            entity_hash=_entity_rows(entities, key_of_idx).select("he", "h", "etype"),
            pairs=search.pairs.select("a", "b"),
            first=_first_kept(search.first, params)
            if search.first is not None
            else pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "score": pl.Float64}),
            scored=_scored_columns(search.scored),
            rank_groups=_rank_groups(search.candidates.groups, key_of_idx),
            entity_pairs=search.candidates.entity_pairs,
        )

    def basis(self, profiles: pl.DataFrame, params):
        """The held basis, for weighing today's ``profiles`` against it."""
        from homicide_assets.lib.series import SearchBasis, measure_background

        background = measure_background(self.population, params, with_density=False)
        density = member_density(self.population, self.density.to_numpy(), profiles)
        t = self.thresholds
        return SearchBasis(
            replace(background, density=density),
            population=self.population,
            scan_thresholds=t.get("scan"),
            excess_threshold=t.get("excess"),
            unexpected_threshold=t.get("unexpected"),
            knox=self.knox,
            knox_measured=True,
        )

    def save(self, folder: Path) -> None:
        from homicide_assets.lib.held import save_frames

        meta = {
            "format": STATE_FORMAT,
            "digest": self.digest,
            "code": self.code,
            "candidate_pairs": self.candidate_pairs,
            "knox": None if self.knox is None else asdict(self.knox),
            "thresholds": self.thresholds,
            "changed": self.changed,
        }
        frames = {name: getattr(self, name) for name in _FRAMES}
        keep = _BASIS_FRAMES if self.basis_unchanged else ()
        save_frames(folder, {k: v for k, v in frames.items() if k not in keep}, meta, keep=keep)

    @classmethod
    def load(cls, folder: Path, result_only: bool = False) -> HeldSearch | None:
        """The held search, or None when there is none (or it is unreadable or of another
        format: the search then runs whole). ``result_only`` reads only its links and groups
        (what reusing it needs; the other frames are then None)."""
        from homicide_assets.lib.held import load_frames

        names = _FRAMES[:2] if result_only else _FRAMES
        got = load_frames(folder, names, STATE_FORMAT)
        if got is None:
            return None
        frames, meta = got
        frames = {name: frames.get(name) for name in _FRAMES}
        try:
            knox = None if meta["knox"] is None else KnoxResult(**meta["knox"])
            return cls(
                digest=str(meta["digest"]),
                code=str(meta["code"]),
                candidate_pairs=int(meta["candidate_pairs"]),
                knox=knox,
                thresholds=dict(meta["thresholds"]),
                changed=int(meta["changed"]),
                **frames,
            )
        except (KeyError, TypeError, ValueError):
            return None


def _thresholds(basis) -> dict:
    return {
        "scan": None if basis.scan_thresholds is None else dict(basis.scan_thresholds),
        "excess": basis.excess_threshold,
        "unexpected": basis.unexpected_threshold,
    }


def _keep_floor(params) -> float:
    """The lowest first-weighing score any later step reads (a cluster, a report)."""
    return min(params.joint_kind_floor, params.report_floor, params.link_threshold)


def _first_kept(first: pl.DataFrame, params) -> pl.DataFrame:
    return first.filter(pl.col("score") >= _keep_floor(params)).select("a", "b", "score")


def _to_keys(frame: pl.DataFrame, key_of_idx: np.ndarray) -> pl.DataFrame:
    return frame.with_columns(
        a=pl.Series(key_of_idx[frame["a"].to_numpy()], dtype=pl.Int64),
        b=pl.Series(key_of_idx[frame["b"].to_numpy()], dtype=pl.Int64),
    )


def _to_idx(frame: pl.DataFrame, idx_of_key: np.ndarray) -> pl.DataFrame:
    """Held rows by key to today's ``idx`` (rows of a death gone today dropped)."""
    if frame.is_empty():
        return frame
    a = idx_of_key[frame["a"].to_numpy()]
    b = idx_of_key[frame["b"].to_numpy()]
    return (
        frame.with_columns(a=pl.Series(a, dtype=pl.Int64), b=pl.Series(b, dtype=pl.Int64))
        .filter((pl.col("a") >= 0) & (pl.col("b") >= 0))
    )


def _scored_columns(scored: pl.DataFrame) -> pl.DataFrame:
    """The columns of scored pair links that the links read (:data:`LINK_COLUMNS` but the
    visible day, which is today's)."""
    from homicide_assets.lib.series import LINK_COLUMNS, SCORED_SCHEMA

    cols = [c for c in LINK_COLUMNS if c != "visible_day"]
    return scored.select(cols).cast({c: SCORED_SCHEMA[c] for c in cols if c in SCORED_SCHEMA})


def _rank_groups(groups: pl.DataFrame, key_of_idx: np.ndarray) -> pl.DataFrame:
    return pl.DataFrame(
        {"g": groups["g"], "key": key_of_idx[groups["idx"].to_numpy()], "pos": groups["pos"]},
        schema={"g": pl.UInt64, "key": pl.Int64, "pos": pl.Int64},
    )


def _ordered(frame: pl.DataFrame) -> pl.DataFrame:
    """(a, b) with a < b."""
    return frame.with_columns(a=pl.min_horizontal("a", "b"), b=pl.max_horizontal("a", "b"))


def _windows(rows: pl.DataFrame, k: int) -> pl.DataFrame:
    """The rank window pairs (a < b by key) of some groups' rows (g, key, pos)."""
    from homicide_assets.lib.series import window_pairs

    rows = rows.sort("g", "pos")
    a, b = window_pairs(rows["g"].to_numpy(), rows["key"].to_numpy(), k)
    return _ordered(pl.DataFrame({"a": a, "b": b}, schema={"a": pl.Int64, "b": pl.Int64}))


def _geo(profiles: pl.DataFrame, lat0: float):
    """(idx, day, points) of the deaths with a place, projected at ``lat0``."""
    geo = profiles.filter(pl.col("lat").is_not_null() & pl.col("lon").is_not_null())
    return (
        geo["idx"].to_numpy(),
        geo["day"].to_numpy(),
        project_m(geo["lat"].to_numpy(), geo["lon"].to_numpy(), lat0),
    )


def _space_time_of(profiles: pl.DataFrame, deaths: np.ndarray, params, lat0: float) -> pl.DataFrame:
    """Every space-time candidate pair (``series.space_time_pairs``, both radii) with one of
    ``deaths`` (idx) in it."""
    from homicide_assets.lib.series import space_time_radii

    idx, day, pts = _geo(profiles, lat0)
    at = np.flatnonzero(np.isin(idx, deaths))
    out_a, out_b = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    if len(at):
        for metres, gap in space_time_radii(params):
            near = np.flatnonzero((day >= day[at].min() - gap) & (day <= day[at].max() + gap))
            found = cKDTree(pts[near]).query_ball_point(pts[at], metres)
            lengths = np.fromiter((len(f) for f in found), dtype=np.int64, count=len(found))
            i = np.repeat(at, lengths)
            j = near[np.concatenate([np.asarray(f, dtype=np.int64) for f in found])] if lengths.sum() else i[:0]
            keep = (i != j) & (np.abs(day[i] - day[j]) <= gap)
            out_a.append(idx[i[keep]])
            out_b.append(idx[j[keep]])
    return _ordered(pl.DataFrame({"a": np.concatenate(out_a), "b": np.concatenate(out_b)}, schema={"a": pl.Int64, "b": pl.Int64}))


def _space_time_kept(profiles: pl.DataFrame, pairs: pl.DataFrame, params, lat0: float) -> pl.DataFrame:
    """The ``pairs`` (idx) that are space-time candidate pairs (distance and days within
    either of ``series.space_time_radii``)."""
    from homicide_assets.lib.series import space_time_radii

    if pairs.is_empty():
        return pairs
    idx, day, pts = _geo(profiles, lat0)
    where = np.full(profiles.height, -1, dtype=np.int64)
    where[idx] = np.arange(len(idx))
    i, j = where[pairs["a"].to_numpy()], where[pairs["b"].to_numpy()]
    both = (i >= 0) & (j >= 0)
    i, j = np.where(both, i, 0), np.where(both, j, 0)
    d2 = ((pts[i] - pts[j]) ** 2).sum(axis=1)
    days = np.abs(day[i] - day[j])
    keep = np.zeros(pairs.height, dtype=bool)
    for metres, gap in space_time_radii(params):
        keep |= both & (days <= gap) & (d2 <= metres * metres)
    return pairs.filter(pl.Series(keep))


def incremental_pairs(
    held: HeldSearch,
    profiles: pl.DataFrame,
    entities: pl.DataFrame,
    bg,
    params,
    key_of_idx: np.ndarray,
    idx_of_key: np.ndarray,
    dirty: np.ndarray,
):
    """Today's candidate pairs (idx, sorted), from the held ones and what changed: equal to
    ``series.candidate_pairs`` on today's deaths against the held basis.

    A pair is a candidate when its deaths are close in space and time (a function of the two
    deaths, ``dirty`` being those new or changed) or when a group paired by rank pairs them
    (the groups with a member added, gone or moved are paired again and the held count of
    groups pairing each pair updated). Returns (pairs, the pairs that may be new, the groups
    and counted pairs to hold)."""
    from homicide_assets.lib.series import pair_groups

    k = params.entity_rank_window
    pairs_schema = {"a": pl.Int64, "b": pl.Int64}
    now = _rank_groups(pair_groups(profiles, entities, bg, params), key_of_idx)
    then = held.rank_groups
    moved = pl.concat(
        [
            now.join(then, on=["g", "key", "pos"], how="anti")["g"],
            then.join(now, on=["g", "key", "pos"], how="anti")["g"],
        ]
    ).unique()
    delta = (
        pl.concat(
            [
                _windows(now.filter(pl.col("g").is_in(moved)), k).with_columns(d=pl.lit(1, pl.Int64)),
                _windows(then.filter(pl.col("g").is_in(moved)), k).with_columns(d=pl.lit(-1, pl.Int64)),
            ]
        )
        .group_by("a", "b")
        .agg(pl.col("d").sum())
        .filter(pl.col("d") != 0)
    )
    counted = held.entity_pairs.join(delta, on=["a", "b"], how="full", coalesce=True).with_columns(
        was=pl.col("n").fill_null(0), n=pl.col("n").fill_null(0) + pl.col("d").fill_null(0)
    )
    zeroed = _ordered(_to_idx(counted.filter((pl.col("was") > 0) & (pl.col("n") <= 0)), idx_of_key))
    added = _ordered(_to_idx(counted.filter((pl.col("was") <= 0) & (pl.col("n") > 0)), idx_of_key))
    entity_pairs = counted.filter(pl.col("n") > 0).select("a", "b", "n").sort("a", "b")

    # pairs as one sorted code each, a * n + b (today's idx)
    n = max(profiles.height, 1)
    is_dirty = np.zeros(n, dtype=bool)
    is_dirty[np.asarray(dirty, dtype=np.int64)] = True

    def codes(frame: pl.DataFrame) -> np.ndarray:
        return frame["a"].to_numpy().astype(np.int64) * n + frame["b"].to_numpy()

    def untouched(frame: pl.DataFrame) -> np.ndarray:
        return ~is_dirty[frame["a"].to_numpy()] & ~is_dirty[frame["b"].to_numpy()]

    def find(sorted_codes: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.searchsorted(sorted_codes, wanted)
        inside = at < len(sorted_codes)
        found = np.zeros(len(wanted), dtype=bool)
        found[inside] = sorted_codes[at[inside]] == wanted[inside]
        return at, found

    # the held pairs of deaths still here and unchanged (today's idx keeps their order), less
    # those no group pairs any more
    held_pairs = _to_idx(held.pairs, idx_of_key)
    kept = codes(held_pairs)
    if not (kept[1:] >= kept[:-1]).all():
        kept = np.sort(kept)
    keep = ~is_dirty[kept // n] & ~is_dirty[kept % n]
    gone_at, gone_found = find(kept, codes(zeroed))
    keep[gone_at[gone_found]] = False
    kept = kept[keep]
    # pairs no group pairs any more: candidates still if close in space and time
    recheck = zeroed.filter(pl.Series(untouched(zeroed)))
    dirty_keys = pl.Series(key_of_idx[np.asarray(dirty, dtype=np.int64)])
    with_dirty = _ordered(
        _to_idx(entity_pairs.filter(pl.col("a").is_in(dirty_keys) | pl.col("b").is_in(dirty_keys)), idx_of_key)
    )
    adds = np.unique(
        np.concatenate(
            [
                codes(_space_time_of(profiles, dirty, params, bg.lat0)),
                codes(with_dirty),
                codes(added),
                codes(_space_time_kept(profiles, recheck.select("a", "b"), params, bg.lat0)),
            ]
        )
    )
    at, found = find(kept, adds)
    adds, at = adds[~found], at[~found]
    merged = np.insert(kept, at, adds)
    pairs = pl.DataFrame({"a": merged // n, "b": merged % n}, schema=pairs_schema)
    adds = pl.DataFrame({"a": adds // n, "b": adds % n}, schema=pairs_schema)
    return pairs, adds, now, entity_pairs


def _touching(pairs: pl.DataFrame, deaths: pl.Series | np.ndarray) -> pl.DataFrame:
    deaths = pl.Series(np.asarray(deaths, dtype=np.int64))
    return pairs.filter(pl.col("a").is_in(deaths) | pl.col("b").is_in(deaths))


def incremental_search(held: HeldSearch, profiles: pl.DataFrame, entities: pl.DataFrame, params):
    """Weigh again only what changed since ``held`` (see the module's docstring).

    Returns (the :class:`~homicide_assets.lib.series.LinkSearch`, the state to hold next), or
    a string saying why the search must run whole instead.
    """
    from homicide_assets.lib.series import (
        link_search,
        reweighed_pairs,
        score_pairs,
    )
    from homicide_assets.lib.series_scan import ScanGroupsChanged

    if params.cluster_passes != 1:
        return "a held search continues with one cluster-left-out weighing only"
    population = held.population
    if profiles.height and population.height and int(profiles["day"].min()) < int(population["day"].min()):
        return "deaths earlier than the held search's first: the background is measured again"

    # Keys: the held ones, and new ones for deaths the held search never had.
    cur = profiles.select("idx", "death_id").join(held.keys, on="death_id", how="left").sort("idx")
    next_key = int(held.keys["key"].max()) + 1 if held.keys.height else 0
    missing = cur["key"].is_null().to_numpy()
    new_keys = np.arange(next_key, next_key + int(missing.sum()), dtype=np.int64)
    key_of_idx = cur["key"].fill_null(-1).to_numpy().astype(np.int64)
    key_of_idx[missing] = new_keys
    keys = pl.concat(
        [
            held.keys,
            pl.DataFrame(
                {"death_id": cur.filter(pl.Series(missing))["death_id"], "key": new_keys},
                schema=held.keys.schema,
            ),
        ]
    )
    idx_of_key = np.full(int(keys["key"].max()) + 1 if keys.height else 0, -1, dtype=np.int64)
    idx_of_key[key_of_idx] = np.arange(profiles.height, dtype=np.int64)

    # Deaths new, changed or gone since the held state.
    profile_hash = _profile_hashes(profiles, key_of_idx)
    changed_keys = profile_hash.join(held.profile_hash, on=["key", "h"], how="anti")["key"]
    gone = held.profile_hash.join(profile_hash, on="key", how="anti")["key"]
    changed = held.changed + changed_keys.len() + gone.len()
    if changed > params.reestimate_fraction * max(population.height, 1):
        return (
            f"{changed} deaths new, changed or gone since the last whole search, at least "
            f"{params.reestimate_fraction:.0%} of its {population.height}: the background is measured again"
        )
    dirty = pl.Series(idx_of_key[changed_keys.to_numpy()], dtype=pl.Int64)

    # Entities with a row added, changed or gone.
    entity_rows = _entity_rows(entities, key_of_idx)
    dirty_he = _dirty_entities(entity_rows, held.entity_hash)

    basis = held.basis(profiles, params)
    bg = basis.background
    pairs, new_candidates, rank_groups, entity_pairs = incremental_pairs(
        held, profiles, entities, bg, params, key_of_idx, idx_of_key, dirty.to_numpy()
    )
    if dirty_he.len():
        ent = entity_rows.filter(pl.col("he").is_in(dirty_he)).select("idx", "he").unique()
        sharing = (
            pairs.join(ent.rename({"idx": "a"}), on="a")
            .join(ent.rename({"idx": "b"}), on=["b", "he"], how="semi")
            .select("a", "b")
        )
    else:
        sharing = pairs.clear()
    weigh_first = pl.concat([_touching(pairs, dirty), sharing, new_candidates]).unique().sort("a", "b")

    # The first weighing: held for every pair but those.
    kw = {"population": basis.population}
    fresh = score_pairs(weigh_first, profiles, entities, bg, params, scores_only=True, **kw)
    if fresh.is_empty():
        fresh = pl.DataFrame(schema={"a": pl.Int64, "b": pl.Int64, "score": pl.Float64})
    kept_first = (
        _to_idx(held.first, idx_of_key)
        .join(pairs, on=["a", "b"], how="semi")
        .join(weigh_first, on=["a", "b"], how="anti")
    )
    first = pl.concat([kept_first, _first_kept(fresh, params)]).sort("a", "b")

    # Deaths whose links in the first weighing changed (their pairs' clusters did).
    floor = params.joint_kind_floor
    then = held.first.filter(pl.col("score") >= floor)
    now = _to_keys(first.filter(pl.col("score") >= floor), key_of_idx)
    moved = pl.concat(
        [then.join(now, on=["a", "b", "score"], how="anti"), now.join(then, on=["a", "b", "score"], how="anti")]
    )
    kin_changed = idx_of_key[np.unique(np.concatenate([moved["a"].to_numpy(), moved["b"].to_numpy()]))]
    kin_changed = kin_changed[kin_changed >= 0]

    # The cluster-left-out weighing: held for every pair it reads no change for.
    todo = reweighed_pairs(pairs, first, params)
    again_pairs = todo.join(
        pl.concat([weigh_first, _touching(todo, kin_changed)]).unique(), on=["a", "b"], how="semi"
    )
    again = _scored_columns(score_pairs(again_pairs, profiles, entities, bg, params, first=first, **kw))
    kept = (
        _to_idx(held.scored, idx_of_key)
        .join(todo, on=["a", "b"], how="semi")
        .join(again_pairs, on=["a", "b"], how="anti")
    )
    scored = pl.concat([kept, again]).sort("a", "b")

    try:
        search = link_search(scored, profiles, entities, basis, params, pairs.height)
    except ScanGroupsChanged as e:
        return f"a scan group the held thresholds lack ({e}): the thresholds are set again"
    search.how = "incremental"
    search.first, search.pairs, search.scored = first, pairs, scored
    search.searched_because = (
        f"incremental: {changed_keys.len()} deaths new or changed and {gone.len()} gone since the held "
        f"search, {dirty_he.len()} people, officers or places they share changed; "
        f"{weigh_first.height} of {pairs.height} candidate pairs weighed again "
        f"({again_pairs.height} with clusters left out), against the basis of the last whole search "
        f"({changed} deaths new, changed or gone since it)"
    )
    state = replace(
        held,
        links=search.links,
        groups=search.groups,
        candidate_pairs=pairs.height,
        keys=keys,
        thresholds=_thresholds(basis),
        changed=changed,
        profile_hash=profile_hash,
        entity_hash=entity_rows.select("he", "h", "etype"),
        pairs=_to_keys(pairs, key_of_idx),
        first=_to_keys(first, key_of_idx),
        scored=_to_keys(scored, key_of_idx),
        rank_groups=rank_groups,
        entity_pairs=entity_pairs,
        basis_unchanged=True,
    )
    return search, state
