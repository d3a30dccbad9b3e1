"""Statistics behind series detection: local density, the Knox test, Poisson excess.

Pure numpy/scipy; no Dagster. Used by :mod:`homicide_assets.lib.series`.

- :func:`project_m` turns WGS84 points into metres on a local plane (good to well under
  1% over a force area), so distances and k-d trees work in metres.
- :func:`local_density` counts, for every point, how many other points lie within a ladder
  of radii; :func:`share_within` interpolates that count at any distance. That share is
  the chance a random death falls that close to this one: a busy city-centre street has a
  large share, a quiet suburb a small one, so the same distance is weaker evidence in town.
- :func:`knox_test` is the Knox (1964) space-time interaction test with a Monte Carlo
  p-value from permuted dates (Mantel-style permutation keeps both marginal
  distributions). :func:`knox_pairs` gives the closeness counts it is built on.
- :func:`poisson_tail` is P(N >= k) for N ~ Poisson(mu), the chance of an excess count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Days by which a group's own dates are jittered in the scan's null (keeps seasons, breaks bursts).
NULL_JITTER_DAYS = 30
#: Metres per degree of latitude (WGS84, mid-latitudes).
M_PER_DEG_LAT = 111_132.0
#: Radii (metres) at which :func:`local_density` counts neighbours; :func:`share_within`
#: interpolates between them on a log-log scale.
DENSITY_RADII_M: tuple[float, ...] = (100.0, 200.0, 400.0, 800.0, 1_600.0, 3_200.0, 6_400.0)


def cKDTree(*args, **kwargs):  # noqa: N802 - scipy's name, imported on first use
    """``scipy.spatial.cKDTree``, imported on first use (scipy costs seconds at import in
    every Dagster run worker)."""
    from scipy.spatial import cKDTree as tree

    return tree(*args, **kwargs)


def pdtrc(k, mu):
    """``scipy.special.pdtrc`` (Poisson upper tail), imported on first use."""
    from scipy.special import pdtrc as upper

    return upper(k, mu)


def project_m(lat, lon, lat0: float | None = None) -> np.ndarray:
    """(n, 2) array of x, y metres on an equirectangular plane centred at ``lat0``."""
    lat = np.asarray(lat, dtype=float)
    lon = np.asarray(lon, dtype=float)
    if lat0 is None:
        lat0 = float(np.nanmean(lat)) if lat.size else 52.5
    k = np.cos(np.radians(lat0))
    return np.column_stack([lon * M_PER_DEG_LAT * k, lat * M_PER_DEG_LAT])


def local_density(points_m: np.ndarray, radii_m: tuple[float, ...] = DENSITY_RADII_M) -> np.ndarray:
    """(n, len(radii)) counts of *other* points within each radius of every point."""
    if len(points_m) == 0:
        return np.zeros((0, len(radii_m)))
    tree = cKDTree(points_m)
    out = np.empty((len(points_m), len(radii_m)))
    for j, r in enumerate(radii_m):
        out[:, j] = tree.query_ball_point(points_m, r, return_length=True) - 1
    return out


def share_within(
    density: np.ndarray,
    distance_m: np.ndarray,
    n_points: int,
    radii_m: tuple[float, ...] = DENSITY_RADII_M,
    floor: float = 0.5,
) -> np.ndarray:
    """Share of all points lying within ``distance_m`` of each point (rows of ``density``).

    Log-log interpolation between the ladder radii; below the smallest radius the count
    scales with area; ``floor`` (a fraction of a point) keeps an empty neighbourhood from
    giving a share of zero. ``density`` and ``distance_m`` are aligned row by row.
    """
    distance_m = np.maximum(np.asarray(distance_m, dtype=float), 1.0)
    radii = np.asarray(radii_m)
    logc = np.log(np.maximum(density, floor))
    logr = np.log(radii)
    x = np.log(np.clip(distance_m, radii[0], radii[-1]))
    idx = np.clip(np.searchsorted(logr, x) - 1, 0, len(radii) - 2)
    rows = np.arange(len(distance_m))
    lo, hi = logc[rows, idx], logc[rows, idx + 1]
    t = (x - logr[idx]) / (logr[idx + 1] - logr[idx])
    count = np.exp(lo + t * (hi - lo))
    below = distance_m < radii[0]
    count = np.where(below, np.exp(logc[:, 0]) * (distance_m / radii[0]) ** 2, count)
    return np.clip(np.maximum(count, floor * 0.1) / max(n_points - 1, 1), 0.0, 1.0)


def poisson_tail(k, mu) -> np.ndarray:
    """P(N >= k) for N ~ Poisson(mu) (vectorised; k <= 0 gives 1)."""
    k = np.asarray(k, dtype=float)
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-300)
    return np.where(k <= 0, 1.0, pdtrc(np.maximum(k - 1, 0), mu))


def poisson_mean_at(p: float, k):
    """Poisson means at or just above the ones where P(N >= k) = p, for each ``k`` (bisection,
    vectorised over ``k``): P(N >= k) grows with the mean, so a count of ``k`` has a p-value
    of at most ``p`` only at a mean of at most this one."""
    k = np.asarray(k, dtype=float)
    lo, hi = np.zeros(k.shape), k + 10.0
    for _ in range(64):
        short = poisson_tail(k, hi) < p
        if not short.any():
            break
        lo, hi = np.where(short, hi, lo), np.where(short, hi * 2, hi)
    for _ in range(60):
        mid = (lo + hi) / 2
        below = poisson_tail(k, mid) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return hi


@dataclass(frozen=True)
class KnoxResult:
    """The Knox statistic (pairs close in both space and time) and its significance."""

    n_events: int
    space_m: float
    time_days: float
    close_in_space: int
    close_in_time: int
    observed: int
    expected: float
    p_value: float
    permutations: int

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else float("nan")

    def describe(self) -> str:
        return (
            f"Knox test on {self.n_events:,} deaths: {self.observed:,} pairs within {self.space_m:,.0f} m and "
            f"{self.time_days:g} days where {self.expected:,.1f} would be expected if place and time were "
            f"unrelated (ratio {self.ratio:.2f}; Monte Carlo p = {self.p_value:.3f}, "
            f"{self.permutations} permutations of the dates)"
        )


def knox_pairs(
    days: np.ndarray, points_m: np.ndarray, space_m: float, time_days: float
) -> tuple[np.ndarray, int, int]:
    """Pairs close in space (index array (m, 2)), and the counts close in space and in time."""
    days = np.asarray(days, dtype=float)
    n = len(days)
    if n < 2:
        return np.zeros((0, 2), dtype=np.int64), 0, 0
    pairs = cKDTree(points_m).query_pairs(space_m, output_type="ndarray")
    order = np.sort(days)
    # pairs with |dt| <= time_days: for each i, count j > i in sorted order within the window
    close_time = int((np.searchsorted(order, order + time_days, side="right") - np.arange(1, n + 1)).sum())
    return pairs, len(pairs), close_time


def _close_in_time(days: np.ndarray, i: np.ndarray, j: np.ndarray, time_days: float):
    """A function of an assignment of ``days`` (the same values in any order) counting the
    pairs ``(i, j)`` within ``time_days``. Whole days are counted as 32-bit integers from
    the first (the same count as in floating point, at half the memory traffic per
    permutation); other days in floating point."""
    first = float(days.min())
    whole = bool(np.all(days == np.floor(days))) and float(days.max()) - first < 2**30
    if not whole:
        return lambda d: int((np.abs(d[i] - d[j]) <= time_days).sum())
    i32, j32 = i.astype(np.int32), j.astype(np.int32)
    limit = math.floor(time_days)  # |a - b| <= t for whole a, b exactly when |a - b| <= floor(t)

    def close(d: np.ndarray) -> int:
        d = (d - first).astype(np.int32)
        diff = d[i32]
        diff -= d[j32]
        np.abs(diff, out=diff)
        return int(np.count_nonzero(diff <= limit))

    return close


def knox_test(
    days, points_m, space_m: float = 1_000.0, time_days: float = 14.0, permutations: int = 999, seed: int = 0
) -> KnoxResult:
    """Knox test for space-time interaction among events (days since an epoch, points in metres).

    The statistic is the number of pairs within ``space_m`` and ``time_days`` of each other.
    Its expectation under no interaction is ``close_in_space * close_in_time / all_pairs``;
    the p-value is the share of ``permutations`` random re-assignments of the dates to the
    places (plus the observed one) whose statistic is at least the observed one. At level
    alpha the test raises a false alarm with probability alpha when there is no interaction.
    """
    days = np.asarray(days, dtype=float)
    n = len(days)
    pairs, n_space, n_time = knox_pairs(days, points_m, space_m, time_days)
    total_pairs = n * (n - 1) / 2
    if n < 2 or n_space == 0:
        return KnoxResult(n, space_m, time_days, n_space, n_time, 0, 0.0, 1.0, 0)
    i, j = pairs[:, 0], pairs[:, 1]
    close = _close_in_time(days, i, j, time_days)
    observed = close(days)
    expected = n_space * n_time / total_pairs
    rng = np.random.default_rng(seed)
    at_least = 1
    for _ in range(permutations):
        if close(days[rng.permutation(n)]) >= observed:
            at_least += 1
    return KnoxResult(
        n,
        space_m,
        time_days,
        n_space,
        n_time,
        observed,
        float(expected),
        at_least / (permutations + 1),
        permutations,
    )


# ----------------------------------------------------------------------------------------
# Space-time permutation scan


@dataclass(frozen=True)
class ScanHit:
    """A cylinder (a circle around one event, a window of days) with too many events."""

    group: int
    centre: int  # row of the event the circle is drawn around
    members: tuple[int, ...]  # rows inside the cylinder, in time order
    radius_m: float
    days: int  # from the window's first event to its last
    observed: int  # events in the cylinder
    expected: float  # expected events after the window's first
    p_value: float
    threshold: float
    end_day: int


def _group_pairs(
    points_m: np.ndarray, rows: np.ndarray, r_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs of ``rows`` within ``r_max`` of each other: (i, j, distance)."""
    if len(rows) < 2:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0)
    pairs = cKDTree(points_m[rows]).query_pairs(r_max, output_type="ndarray")
    i, j = rows[pairs[:, 0]], rows[pairs[:, 1]]
    d = np.hypot(*(points_m[i] - points_m[j]).T)
    return i, j, d


#: order statistic of the null ratios the scan's alarm level is read from (see thresholds)
SCAN_TAIL_ORDER = 10


class SpaceTimeScan:
    """Space-time scan within groups of events, calibrated by permuting dates.

    A cylinder is a circle of ``radius`` metres around an event of the group (its centre)
    and a window of days from one event inside the circle to a later one (at most
    ``max_days``). Its expected count of events after the window's first is
    the group's events expected in the window at its average rate times the share of the
    group's events that fall within the radius. That share is measured on the group's
    events *at other times* (more than ``max_days`` away, so a cluster does not explain
    itself) and shrunk towards the share of a parent population (``parent_share``, e.g. all
    police-reported deaths) with weight ``prior_events``: a small group (a rare drug)
    borrows its geography from the parent, a large one (hangings) uses its own. So a busy
    place (many such deaths there at other times) is not a cluster by itself. A cylinder's
    p-value is the Poisson chance of at least its count.

    :meth:`thresholds` sets each group's alarm level by Monte Carlo: every event keeps its
    place and gets a new date, one of its group's dates permuted and jittered by up to
    :data:`NULL_JITTER_DAYS` (with weight ``n / (n + prior_events)`` for a group of ``n``)
    or else one drawn from ``null_days`` (the calendar of a parent population, e.g. all
    police-reported deaths); the thresholds are the p-values such data reaches
    ``false_alarms`` times per run in all. That is the stated false-alarm rate. A large
    group keeps its own seasons (summer drownings); a small one borrows the parent's
    calendar, so a real burst (a nitazene batch) is not carried into its own null.
    """

    def __init__(
        self,
        days: np.ndarray,
        points_m: np.ndarray,
        groups: np.ndarray,
        radii_m: tuple[float, ...] = (250.0, 1_000.0, 2_500.0, 5_000.0),
        max_days: int = 100,
        min_events: int = 3,
        max_events: int = 12,
        parent_share: np.ndarray | None = None,
        prior_events: float = 20.0,
        span_days: float | None = None,
        null_days: np.ndarray | None = None,
    ):
        self.days = np.asarray(days, dtype=np.int64)
        self.points = np.asarray(points_m, dtype=float)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.radii = tuple(sorted(radii_m))
        self.max_days = int(max_days)
        self.min_events = int(min_events)
        self.max_events = int(max_events)
        self.prior_events = float(prior_events)
        self.null_days = None if null_days is None else np.asarray(null_days, dtype=np.int64)
        self.span_days = float(
            span_days or max(int(self.days.max() - self.days.min()) + 1, 1) if len(self.days) else 1
        )
        n = len(self.days)
        self.parent_share = (
            np.zeros((n, len(self.radii))) if parent_share is None else np.asarray(parent_share, dtype=float)
        )
        self._spatial: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._local: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        #: per event and radius: events of its group within the radius at any time
        self._counts = np.zeros((n, len(self.radii)))
        for g in np.unique(self.groups):
            rows = np.flatnonzero(self.groups == g)
            if len(rows) < self.min_events:
                continue
            i, j, d = _group_pairs(self.points, rows, self.radii[-1])
            if not len(i):
                continue
            tree = cKDTree(self.points[rows])
            self._counts[rows] = np.column_stack(
                [tree.query_ball_point(self.points[rows], r, return_length=True) - 1 for r in self.radii]
            )
            self._spatial[int(g)] = (
                rows,
                np.concatenate([i, j]),
                np.concatenate([j, i]),
                np.concatenate([d, d]),
            )
            # the same pairs in the group's own positions (rows are in ascending order)
            local = np.full(n, -1, dtype=np.int64)
            local[rows] = np.arange(len(rows))
            self._local[int(g)] = (local[self._spatial[int(g)][1]], local[self._spatial[int(g)][2]])

    def _cylinders(self, days: np.ndarray, group: int, least: bool = False, at_most: float | None = None):
        """Every cylinder of ``group`` under the dates ``days``: a circle around an event
        (the centre) and a window from one event in the circle to a later one.

        Returns (centre, radius index, first row, last row, further events c, window days,
        mu, p) where ``c`` counts the events in the window after its first, ``mu`` their
        expectation and ``p`` = P(at least ``c`` | ``mu``). With ``least``, only the least
        ``p`` (1.0 when there is no cylinder): for a given ``c``, ``p`` grows with ``mu``, so
        it is the least over ``c`` of ``p`` at the least ``mu``, without a ``p`` per cylinder.
        With ``at_most`` (a p-value above 0), only the cylinders whose ``mu`` could give a
        ``p`` that small: the same cylinders a caller keeping ``p <= at_most`` keeps, without
        a ``p`` for the many that cannot be.

        Worked in the group's own positions (0 .. its events - 1), which keep the order of
        its rows; rows are mapped back on return.
        """
        rows, _i, _j, d_all = self._spatial[group]
        i_all, j_all = self._local[group]
        n_group = len(rows)
        t = days[rows]
        group_days = np.sort(t)
        gap_all = t[j_all] - t[i_all]
        near_time = np.abs(gap_all) <= self.max_days
        # the group's events around each centre at other times, and how many events that is
        near_in_r = np.zeros((n_group, len(self.radii)))
        for k, r in enumerate(self.radii):
            sel = near_time & (d_all <= r)
            near_in_r[:, k] = np.bincount(i_all[sel], minlength=n_group)
        near_all = (
            np.searchsorted(group_days, t + self.max_days, side="right")
            - np.searchsorted(group_days, t - self.max_days, side="left")
            - 1
        ).astype(float)
        counts, parent = self._counts[rows], self.parent_share[rows]
        # each centre's neighbours near in time, the centre itself included
        own = np.arange(n_group)
        centre = np.concatenate([i_all[near_time], own])
        other = np.concatenate([j_all[near_time], own])
        dist = np.concatenate([d_all[near_time], np.zeros(n_group)])
        out = []
        least_p = 1.0
        at_most = at_most if at_most is not None and 0 < at_most < 1 else None
        if at_most is not None:
            mu_bound = poisson_mean_at(at_most, np.arange(self.min_events - 1, self.max_events))
        for k, r in enumerate(self.radii):
            sel = dist <= r
            c_, o_ = centre[sel], other[sel]
            order = np.lexsort((o_, t[o_], c_))
            c_, o_ = c_[order], o_[order]
            m = len(c_)
            for off in range(self.min_events - 1, self.max_events):
                if off >= m:
                    break
                first = np.arange(m - off)
                last = first + off
                ok = c_[last] == c_[first]
                window = t[o_[last]] - t[o_[first]]
                ok &= window <= self.max_days
                first, last, window = first[ok], last[ok], window[ok]
                cc = c_[first]
                # the group's events expected in the window at its average rate, times the share
                # of them that fall within the radius of the centre
                in_window = (n_group - 1) * np.minimum((window + 1) / self.span_days, 1.0)
                other_here = counts[cc, k] - near_in_r[cc, k]
                other_all = n_group - 1 - near_all[cc]
                share = (other_here + self.prior_events * parent[cc, k]) / (other_all + self.prior_events)
                mu = in_window * share
                if least:
                    if len(mu):
                        least_p = min(least_p, float(poisson_tail(off, mu.min())))
                    continue
                if at_most is not None:
                    keep = mu <= mu_bound[off - self.min_events + 1]
                    cc, first, last, window, mu = cc[keep], first[keep], last[keep], window[keep], mu[keep]
                out.append(
                    (
                        rows[cc],
                        np.full(len(cc), k),
                        rows[o_[first]],
                        rows[o_[last]],
                        np.full(len(cc), off),
                        window,
                        mu,
                        poisson_tail(np.full(len(cc), off), mu),
                    )
                )
        if least:
            return least_p
        if not out:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, z, z, z, np.zeros(0), np.zeros(0)
        return tuple(np.concatenate(x) for x in zip(*out))

    def tested_groups(self) -> list[int]:
        """The groups with any cylinder to test (the ones :meth:`thresholds` sets)."""
        return list(self._spatial)

    def thresholds(self, permutations: int, false_alarms: float, seed: int = 0) -> dict[int, float]:
        """Per group, the p-value at which it raises ``false_alarms / groups`` alarms per run.

        For each group the smallest p-value of each of ``permutations`` date permutations is
        recorded. Among the permutations that give any cylinder (a share ``reach`` of them),
        the smallest of M independent uniform p-values has mean ``1 / (M + 1)``, so
        ``M = 1 / mean - 1`` is the group's effective number of tests (after Dudbridge and
        Koeleman 2004), and a p-value below ``(false_alarms / groups) / (reach M)`` happens by
        chance ``false_alarms / groups`` times per run (a group no permutation reached gets
        ``false_alarms / groups`` itself). A rare drug (few events, few cylinders) gets a lenient threshold; a
        broad group (hangings, the young) a strict one; the total is ``false_alarms``.
        """
        rng = np.random.default_rng(seed)
        minima: dict[int, list[float]] = {g: [] for g in self._spatial}
        for _ in range(permutations):
            days = self.days.copy()
            for rows, *_rest in self._spatial.values():
                own = days[rows][rng.permutation(len(rows))]
                own = own + rng.integers(-NULL_JITTER_DAYS, NULL_JITTER_DAYS + 1, len(rows))
                if self.null_days is not None and len(self.null_days):
                    # a group's own calendar (jittered) with weight n / (n + prior_events), the
                    # parent's otherwise: a large group keeps its seasons, a small one cannot
                    # carry a burst of its own into its null
                    use_own = rng.random(len(rows)) < len(rows) / (len(rows) + self.prior_events)
                    parent = rng.choice(self.null_days, size=len(rows), replace=True)
                    own = np.where(use_own, own, parent)
                days[rows] = np.clip(own, self.days.min(), self.days.max())
            for g in self._spatial:
                minima[g].append(self._cylinders(days, g, least=True))
        per_group = false_alarms / max(len(self._spatial), 1)
        out = {}
        for g, values in minima.items():
            tested = np.asarray([v for v in values if v < 1.0])
            if not len(tested):
                out[g] = per_group
                continue
            reach = len(tested) / len(values)
            effective_tests = max(1.0 / float(tested.mean()) - 1.0, 1.0)
            out[g] = min(per_group / (reach * effective_tests), 1.0)
        if not out or not permutations:
            return out
        # The extrapolation above shares the budget between groups; its level is then set on
        # the permutations themselves: one factor for all groups, so that these null runs
        # raise ``false_alarms`` alarms per run in all. (Extrapolating from the mean of 30
        # minima alone gave about four times the stated rate on the scan's own null.)
        ratios = np.sort(np.concatenate([np.asarray(minima[g]) / max(out[g], 1e-300) for g in out]))
        allowed = false_alarms * permutations  # alarms allowed over all null runs
        # Near zero the count of null alarms grows in proportion to the factor (the least
        # of many p-values), so the factor is read off the j-th least ratio, j at least
        # ``SCAN_TAIL_ORDER`` (a steadier estimate than the very least when few alarms are
        # allowed, as in a year of data), and scaled to the alarms allowed.
        j = min(max(int(np.ceil(allowed)), SCAN_TAIL_ORDER), len(ratios))
        factor = float(ratios[j - 1]) * allowed / j
        factor = max(factor, 1e-12)
        return {g: min(t * factor, 1.0) for g, t in out.items()}

    def hits(self, thresholds: dict[int, float]) -> list[ScanHit]:
        """Every cylinder at or below its group's threshold under the real dates."""
        out = []
        for g, (_rows, i_all, j_all, d_all) in self._spatial.items():
            threshold = thresholds.get(g, 0.0)
            centre, k, first, last, _c, window, mu, p = self._cylinders(self.days, g, at_most=threshold)
            for n in np.flatnonzero(p <= threshold):
                ce, radius = int(centre[n]), self.radii[int(k[n])]
                t0, t1 = self.days[first[n]], self.days[last[n]]
                near = j_all[(i_all == ce) & (d_all <= radius)]
                inside = [x for x in [ce, *near.tolist()] if t0 <= self.days[x] <= t1]
                members = tuple(sorted(set(inside), key=lambda x: (self.days[x], x)))
                out.append(
                    ScanHit(
                        group=int(g),
                        centre=ce,
                        members=members,
                        radius_m=radius,
                        days=int(window[n]),
                        observed=len(members),
                        expected=float(mu[n]),
                        p_value=float(p[n]),
                        threshold=float(thresholds[g]),
                        end_day=int(t1),
                    )
                )
        return out


def parent_share(points_m: np.ndarray, parent_points_m: np.ndarray, radii_m: tuple[float, ...]) -> np.ndarray:
    """(n, radii) share of a parent population's points within each radius of each point."""
    if len(parent_points_m) == 0:
        return np.zeros((len(points_m), len(radii_m)))
    tree = cKDTree(parent_points_m)
    # each distinct place once (a death in several groups appears several times)
    places, inverse = np.unique(np.asarray(points_m, dtype=float), axis=0, return_inverse=True)
    counts = np.column_stack([tree.query_ball_point(places, r, return_length=True) for r in radii_m])
    return counts[np.asarray(inverse).reshape(-1)] / max(len(parent_points_m) - 1, 1)
