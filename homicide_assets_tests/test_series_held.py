"""The incremental series search (``lib/series_held.py``): after new, changed and gone deaths
it weighs again only what changed, and its tables equal a whole search of the same deaths
against the same held basis (background, counted population, scan thresholds, Knox test);
it searches whole when too much changed or a scan group is new."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from homicide_assets.lib import series
from homicide_assets.lib.series import SeriesParams, find_series, finish_series
from homicide_assets.lib.series_held import HeldSearch
from homicide_assets_tests.test_series import CENTRE, SUBURB, World, _members, _offset


def _same(x, y) -> None:
    for table in ("case_links", "linked_series", "groups"):
        # floats to 1e-9: a cluster's probabilities are summed in the order its links come
        assert_frame_equal(getattr(x, table), getattr(y, table), check_exact=False, rel_tol=1e-9, abs_tol=1e-9)
    assert x.candidate_pairs == y.candidate_pairs


def _against_held_basis(state: HeldSearch, w: World, params: SeriesParams):
    """A whole search of ``w``'s deaths today against ``state``'s basis."""
    register, clusters, staged = w.frames()
    profiles = series.death_profiles(register, clusters, staged)
    entities = series.death_entities(profiles, clusters, staged)
    return finish_series(series._search(profiles, entities, params, basis=state.basis(profiles, params)), params)


def _step(w: World, held, params: SeriesParams):
    """Search ``w`` with the held state; check it against a whole search on the held basis."""
    before = HeldSearch.load(held)
    result = find_series(*w.frames(), params, held=held)
    assert result.how == "incremental", result.searched_because
    whole = _against_held_basis(before, w, params)
    _same(result, whole)
    # the candidate pairs themselves, updated from the held ones, not only as many
    assert_frame_equal(result.search.pairs, whole.search.pairs)
    return result, before


def _ghb_port_world() -> tuple[World, list[str]]:
    w = World(seed=3)
    # GHB deaths in the centre over the year, so the scan tests a GHB group from the start
    for i, day in enumerate((10, 40, 70, 250)):
        w.add_police_death(day, *_offset(*CENTRE, 400 * i, -300 * i), "poisoning_drugs", ["ghb"], sex="m",
                           age=30 + 5 * i)
    a = w.add_police_death(100, *_offset(*SUBURB, 0, 0), "poisoning_drugs", ["ghb"], sex="m", age=23,
                           location_type="public_open_space", officers=["1001"])
    b = w.add_police_death(140, *_offset(*SUBURB, 200, 220), "poisoning_drugs", ["ghb", "alcohol"], sex="m",
                           age=25, location_type="public_open_space", officers=["1001"])
    w.add_person(a, "finder", "pk-finder", "Stephen", "Smith")
    w.add_person(b, "finder", "pk-finder", "Steve", "Smyth")
    return w, [w.deaths[a]["death_id"], w.deaths[b]["death_id"]]


def test_incremental_search_equals_a_whole_search_against_the_held_basis(tmp_path):
    """Four deliveries in turn, each continuing the held state: a third Port-like death found
    by the same man; a death's method corrected; a death gone; a week of new deaths after the
    held span. Each time only what changed is weighed again, and the tables equal a whole
    search of the same deaths against the held basis."""
    params = SeriesParams()
    w, port = _ghb_port_world()
    held = tmp_path / "series"
    built = find_series(*w.frames(), params, held=held)
    assert built.how == "whole" and built.searched_because == "no search held"
    assert _members(built, port).height == 1
    knox = built.search.knox

    # 1. a third young man dead of GHB nearby, found by the same man: the series grows
    third = w.add_police_death(175, *_offset(*SUBURB, 90, 60), "poisoning_drugs", ["ghb"], sex="m", age=24,
                               location_type="public_open_space")
    w.add_person(third, "finder", "pk-finder", "Stephen", "Smith")
    grown, before = _step(w, held, params)
    assert "1 deaths new or changed" in grown.searched_because
    weighed = int(grown.searched_because.split(" of ")[0].rsplit(" ", 1)[-1])
    assert 0 < weighed < grown.candidate_pairs / 2, grown.searched_because
    (row,) = _members(grown, [*port, w.deaths[third]["death_id"]]).rows(named=True)
    assert set(row["death_ids"]) == {*port, w.deaths[third]["death_id"]}
    assert grown.search.knox == knox  # the held Knox test
    # the held basis is the whole search's: the new death is not in its population
    assert before.population.height == len(w.deaths) - 1

    # 2. a background death's method corrected
    k = next(i for i, d in enumerate(w.deaths) if d.get("_report", {}).get("method") == "hanging")
    w.deaths[k]["_report"]["method"] = "fall"
    corrected, _ = _step(w, held, params)
    assert "1 deaths new or changed and 0 gone" in corrected.searched_because

    # 3. a week of deaths after the held span, with an officer the held search never saw
    for day in range(366, 373):
        w.add_police_death(day, *_offset(*SUBURB, 3000 + 40 * day, -2000), "hanging", [], sex="f", age=50,
                           officers=["9999"])
    week, _ = _step(w, held, params)
    assert "7 deaths new or changed" in week.searched_because

    # 4. a death withdrawn from the register (an ME record found to be a duplicate; last, as
    # the world numbers its deaths by count)
    gone = next(i for i, d in enumerate(w.deaths) if "_me" in d)
    w.deaths.pop(gone)
    withdrawn, _ = _step(w, held, params)
    assert "0 deaths new or changed and 1 gone" in withdrawn.searched_because
    # the deaths counted since the whole search accumulate
    assert HeldSearch.load(held).changed == 1 + 1 + 7 + 1


def test_unchanged_deaths_reuse_the_incrementally_held_search(tmp_path):
    """After an incremental search, the same deaths again reuse what it held."""
    params = SeriesParams()
    w, _ = _ghb_port_world()
    held = tmp_path / "series"
    find_series(*w.frames(), params, held=held)
    w.add_police_death(200, *_offset(*SUBURB, 5000, 0), "fall", [], sex="f", age=80)
    incremental = find_series(*w.frames(), params, held=held)
    assert incremental.how == "incremental"
    again = find_series(*w.frames(), params, held=held)
    assert again.how == "held" and again.searched_because is None
    _same(again, incremental)


def _changed_entities(result) -> int:
    # "..., N people, officers or places they share changed; ..." (the search's own account)
    return int(result.searched_because.split(" people, officers or places")[0].rsplit(" ", 1)[-1])


def test_a_new_death_changes_no_other_officer_of_its_area(tmp_path):
    """An officer's share of deaths is measured among the police-reported deaths of the area
    they work, and that count belongs to the held basis: a new death in the area changes its
    own entities only, not every officer working there (the world's 150 officers all work its
    one area), so only the pairs it can move are weighed again."""
    params = SeriesParams()
    w, _ = _ghb_port_world()
    held = tmp_path / "series"
    find_series(*w.frames(), params, held=held)
    w.add_police_death(200, *_offset(*CENTRE, 900, -700), "fall", [], sex="f", age=80, officers=["1003"])
    result, _ = _step(w, held, params)
    # the new deceased's person key and the officer who attended: nothing else changed
    assert _changed_entities(result) == 2, result.searched_because
    officer_deaths = sum("1003" in d.get("_report", {}).get("attending_officers", []) for d in w.deaths)
    assert officer_deaths > 1  # an officer with earlier deaths: their pairs are weighed again


def test_enough_change_measures_the_background_again(tmp_path):
    """Once the deaths new, changed or gone since the whole search reach
    ``reestimate_fraction`` of its deaths, the search runs whole (as from scratch)."""
    params = SeriesParams(reestimate_fraction=0.02)
    w, _ = _ghb_port_world()
    held = tmp_path / "series"
    find_series(*w.frames(), params, held=held)
    n = len(w.deaths)
    for i in range(int(0.02 * n) + 1):
        w.add_police_death(10 + i, *_offset(*SUBURB, -4000, 30 * i), "fall", [], sex="m", age=70)
    result = find_series(*w.frames(), params, held=held)
    assert result.how == "whole" and "the background is measured again" in result.searched_because
    _same(result, find_series(*w.frames(), params))
    assert HeldSearch.load(held).changed == 0


def test_a_new_scan_group_sets_the_thresholds_again(tmp_path):
    """Three deaths from a drug the held search never saw, close in space and time: the scan
    tests a group its held thresholds lack, so the search runs whole (thresholds share one
    budget between groups)."""
    params = SeriesParams()
    w, _ = _ghb_port_world()
    held = tmp_path / "series"
    find_series(*w.frames(), params, held=held)
    for i in range(3):
        w.add_police_death(300 + 2 * i, *_offset(*SUBURB, -1500 + 60 * i, 900), "poisoning_drugs", ["nitazene"],
                           sex="m", age=40 + i)
    result = find_series(*w.frames(), params, held=held)
    assert result.how == "whole", result.searched_because
    assert "substance:nitazene" in result.searched_because
    _same(result, find_series(*w.frames(), params))


@pytest.mark.parametrize("params", [SeriesParams(cluster_passes=0), SeriesParams(link_threshold=0.5)])
def test_other_parameters_search_whole(params, tmp_path):
    w, _ = _ghb_port_world()
    held = tmp_path / "series"
    find_series(*w.frames(), SeriesParams(), held=held)
    w.add_police_death(200, *_offset(*SUBURB, 5000, 0), "fall", [], sex="f", age=80)
    result = find_series(*w.frames(), params, held=held)
    assert result.how == "whole"
    _same(result, find_series(*w.frames(), params))
    if params.cluster_passes == 0:
        # held under these parameters: the next new death also searches whole
        w.add_police_death(201, *_offset(*SUBURB, 5100, 0), "fall", [], sex="f", age=81)
        again = find_series(*w.frames(), params, held=held)
        assert again.how == "whole" and "one cluster-left-out weighing" in again.searched_because


def test_new_candidates_and_changed_clusters_are_weighed_again(tmp_path):
    """Two changes that neither death of a pair nor what they share shows: a correction that
    takes a death out of the domestic abuse flag's window of deaths makes two other domestic
    deaths candidates; a correction that makes a death like the Port-like pair links it to
    both, which changes the pair's own cluster (weighed with it left out). Reported from a
    score of 0, so every weighed pair is compared."""
    params = SeriesParams(report_floor=0.0)
    w, port = _ghb_port_world()
    domestic = [
        w.add_police_death(5 + 9 * i, *_offset(*CENTRE, -3000 + 150 * i, 2500 - 130 * i), "sharp_instrument", [],
                           sex="f", age=20 + i, domestic=True)
        for i in range(params.entity_rank_window + 15)
    ]
    held = tmp_path / "series"
    built = find_series(*w.frames(), params, held=held)

    w.deaths[domestic[10]]["_report"]["domestic_abuse_related"] = False
    out_of_window, _ = _step(w, held, params)
    ids = [w.deaths[i]["death_id"] for i in domestic]

    def pair(result):
        a, b = ids[9], ids[9 + params.entity_rank_window + 1]
        return result.case_links.filter((pl.col("death_id_a") == a) & (pl.col("death_id_b") == b)).height

    assert (pair(built), pair(out_of_window)) == (0, 1)  # a candidate now, not before

    y = next(i for i, d in enumerate(w.deaths) if d.get("_report", {}).get("method") == "hanging")
    lat, lon = _offset(*SUBURB, 120, 100)
    w.deaths[y].update(sex="m", age_at_death=24)
    w.deaths[y]["_report"].update(method="poisoning_drugs", substances=["ghb"], location_type="public_open_space",
                                  incident_lat=lat, incident_lon=lon, sex="m")
    relinked, _ = _step(w, held, params)
    assert "1 deaths new or changed" in relinked.searched_because
    assert set(port) <= set(_members(relinked, port)["death_ids"].explode().to_list())


def test_member_density_counts_other_deaths_of_the_held_basis():
    """Neighbour counts of today's deaths among the held search's: for each death, the
    population's points of *other* deaths within each radius (a moved death is not its own
    neighbour at its old place; a new one is counted like any other)."""
    import numpy as np

    from homicide_assets.lib.series_held import member_density
    from homicide_assets.lib.series_stats import DENSITY_RADII_M, local_density, project_m

    rng = np.random.default_rng(4)
    n = 400
    lat = 52.45 + rng.normal(0, 0.02, n)
    lon = -1.9 + rng.normal(0, 0.03, n)
    population = pl.DataFrame({"death_id": [f"D{i}" for i in range(n)], "lat": lat, "lon": lon})
    population = population.with_columns(
        lat=pl.when(pl.col("death_id") == "D7").then(None).otherwise(pl.col("lat"))  # no place
    )
    has = population["lat"].is_not_null().to_numpy()
    density = np.full((n, len(DENSITY_RADII_M)), np.nan)
    density[has] = local_density(project_m(population["lat"].to_numpy()[has], lon[has]))
    today = pl.concat(
        [
            population.filter(pl.col("death_id") != "D3"),  # D3 gone
            pl.DataFrame({"death_id": ["N1"], "lat": [52.451], "lon": [-1.901]}),  # new
        ]
    ).with_columns(
        lat=pl.when(pl.col("death_id") == "D5").then(pl.col("lat") + 0.004).otherwise(pl.col("lat")),  # moved
    )
    got = member_density(population, density, today)
    lat0 = float(np.nanmean(population["lat"].to_numpy()[has]))
    pts = project_m(population["lat"].to_numpy()[has], lon[has], lat0)
    ids = population["death_id"].to_numpy()[has]
    for row, (death, la, lo) in enumerate(today.select("death_id", "lat", "lon").iter_rows()):
        if la is None:
            assert np.isnan(got[row]).all()
            continue
        q = project_m(np.array([la]), np.array([lo]), lat0)[0]
        d = np.hypot(*(pts - q).T)
        for j, r in enumerate(DENSITY_RADII_M):
            assert got[row, j] == np.sum((d <= r) & (ids != death)), (death, r)


def test_candidate_pairs_follow_groups_whose_order_changes(tmp_path):
    """With a rank window of 2: a new death between a finder's second and third moves his
    first and third out of each other's window; a reporting person withdrawn from one report
    leaves two deaths that nobody pairs but their closeness in space and time; a corrected
    death keeps the pairs its finder makes with his deaths far away. Each time the candidate
    pairs updated from the held ones equal today's from scratch (``_step``)."""
    params = SeriesParams(entity_rank_window=2)
    w = World(seed=5)
    found = []
    for i, day in enumerate((20, 80, 140, 200, 260, 320)):
        d = w.add_police_death(day, *_offset(*CENTRE, 4000 * (i % 3) - 4000, 3000 * (i // 3)), "hanging", [],
                               sex="m", age=40 + i)
        w.add_person(d, "finder", "pk-often", "Alan", "Brown")
        found.append(d)
    x = w.add_police_death(150, *_offset(*SUBURB, 0, 0), "fall", [], sex="f", age=70)
    y = w.add_police_death(160, *_offset(*SUBURB, 100, 0), "fall", [], sex="f", age=72)
    for d in (x, y):
        w.add_person(d, "reporting_person", "pk-rp", "Jo", "Kay")
    held = tmp_path / "series"
    built = find_series(*w.frames(), params, held=held)
    ids = {i: w.deaths[i]["death_id"] for i in (*found, x, y)}

    def has(result, i, j) -> bool:
        profiles = result.search.profiles
        at = dict(zip(profiles["death_id"], profiles["idx"]))
        a, b = sorted((at[ids[i]], at[ids[j]]))
        return result.search.pairs.filter((pl.col("a") == a) & (pl.col("b") == b)).height == 1

    assert has(built, found[0], found[2]) and has(built, x, y)

    # 1. the finder at a seventh death, between his second and third
    late = w.add_police_death(110, *_offset(*CENTRE, 8000, 8000), "hanging", [], sex="m", age=47)
    w.add_person(late, "finder", "pk-often", "Alan", "Brown")
    grown, _ = _step(w, held, params)
    assert not has(grown, found[0], found[2])  # 3 apart in his deaths now, and far apart

    # 2. the reporting person withdrawn from one report: x and y are still close
    y_report = w.deaths[y]["police_report_id"]
    w.persons = [p for p in w.persons if not (p["report_id"] == y_report and p["person_key"] == "pk-rp")]
    withdrawn, _ = _step(w, held, params)
    assert has(withdrawn, x, y)

    # 3. one of the finder's deaths corrected: its pairs with his other deaths stay
    w.deaths[found[4]]["_report"]["method"] = "fall"
    corrected, _ = _step(w, held, params)
    assert "1 deaths new or changed" in corrected.searched_because
    assert has(corrected, found[3], found[4]) and has(corrected, found[4], found[5])
