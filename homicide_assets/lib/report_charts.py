"""Inline SVG charts for the report, drawn here: no chart library, no script, no remote asset.

Every function returns an ``<svg>`` string sized by ``viewBox`` (it scales with the page)
with a ``<title>`` and ``role="img"`` for screen readers. Colours are from a colour-blind
safe palette and every mark that matters carries a ``<title>`` tooltip with its number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from html import escape

import numpy as np

#: Sequential blues (ColorBrewer, colour-blind safe), light to dark.
BLUES = ("#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c")
INK = "#1f2933"
MUTED = "#7b8794"
ALERT = "#c81e1e"
ACCENT = "#0b6e99"
SUPPRESSED_FILL = "#d9d9d9"

MONTHS = "JFMAMJJASOND"


def _f(x: float) -> str:
    """A coordinate with one decimal, no trailing zeros."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: float, height: float, title: str, body: list[str], css_class: str = "chart") -> str:
    return (
        f'<svg class="{css_class}" viewBox="0 0 {_f(width)} {_f(height)}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def nice_step(value: float, n: int = 4) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``n`` steps up to ``value``."""
    if value <= 0:
        return 1.0
    raw = value / n
    exp = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * exp >= raw:
            return m * exp
    return 10 * exp


def nice_max(value: float, n: int = 4) -> float:
    """A round axis top at or above ``value`` (a whole number of :func:`nice_step`)."""
    step = nice_step(value, n)
    return max(step, math.ceil(value / step - 1e-9) * step)


def ticks(top: float, n: int = 4) -> list[float]:
    step = nice_step(top, n)
    out, v = [], 0.0
    while v <= top + 1e-9:
        out.append(v)
        v += step
    return out


def _fmt_tick(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 or float(v).is_integer() else f"{v:.1f}"


def control_chart_svg(
    months: Sequence[date],
    counts: Sequence[float | None],
    expected: Sequence[float],
    lower: Sequence[float],
    upper: Sequence[float],
    monitored: Sequence[bool],
    exceedance: Sequence[str | None],
    title: str,
    labels: Sequence[str] | None = None,
    width: float = 720,
    height: float = 230,
    compact: bool = False,
) -> str:
    """A Poisson c-chart: monthly counts, centre line, exact upper and lower limits.

    ``counts[i]`` may be ``None`` (suppressed in the partner edition): the month is then
    marked by a hollow square on the axis with ``labels[i]`` (``<5`` or ``[c]``) as its
    tooltip. Exceedances are red and labelled.
    """
    n = len(months)
    left, right, top, bottom = (34, 8, 18, 22) if compact else (44, 12, 26, 34)
    pw, ph = width - left - right, height - top - bottom
    values = [c for c in counts if c is not None]
    ymax = nice_max(max([*values, *upper, 1]) * 1.05, 3 if compact else 4)
    body: list[str] = []

    def x(i: float) -> float:
        return left + (i + 0.5) * pw / max(n, 1)

    def y(v: float) -> float:
        return top + ph - v / ymax * ph

    body.append(f'<text x="{_f(left)}" y="{_f(top - 9)}" class="ct">{escape(title)}</text>')
    first_mon = next((i for i, m in enumerate(monitored) if m), None)
    if first_mon is not None:
        x0 = left + first_mon * pw / max(n, 1)
        body.append(
            f'<rect x="{_f(x0)}" y="{_f(top)}" width="{_f(left + pw - x0)}" height="{_f(ph)}" '
            f'fill="#f4f8fb"><title>reporting period</title></rect>'
        )
    for t in ticks(ymax, 3 if compact else 4):
        body.append(
            f'<line x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(y(t))}" y2="{_f(y(t))}" '
            f'stroke="#e4e7eb" stroke-width="1"/>'
        )
        body.append(
            f'<text x="{_f(left - 5)}" y="{_f(y(t) + 3.5)}" class="ax" text-anchor="end">{_fmt_tick(t)}</text>'
        )

    def step_path(vals: Sequence[float]) -> str:
        pts = []
        for i, v in enumerate(vals):
            xa, xb = left + i * pw / n, left + (i + 1) * pw / n
            pts.append(f"{'M' if i == 0 else 'L'}{_f(xa)},{_f(y(v))}L{_f(xb)},{_f(y(v))}")
        return "".join(pts)

    if n:
        body.append(
            f'<path d="{step_path(upper)}" fill="none" stroke="{ALERT}" stroke-width="1.2" '
            f'stroke-dasharray="4 3"><title>upper control limit</title></path>'
        )
        if any(v > 0 for v in lower):
            body.append(
                f'<path d="{step_path(lower)}" fill="none" stroke="{ALERT}" stroke-width="1" '
                f'stroke-dasharray="2 3" opacity="0.7"><title>lower control limit</title></path>'
            )
        body.append(
            f'<path d="{step_path(expected)}" fill="none" stroke="{MUTED}" stroke-width="1.2">'
            f"<title>expected (centre line)</title></path>"
        )
        line_pts = [(x(i), y(c)) for i, c in enumerate(counts) if c is not None]
        segs, prev = [], None
        for i, c in enumerate(counts):
            if c is None:
                prev = None
                continue
            segs.append(f"{'L' if prev is not None else 'M'}{_f(x(i))},{_f(y(c))}")
            prev = i
        if line_pts:
            body.append(f'<path d="{"".join(segs)}" fill="none" stroke="{ACCENT}" stroke-width="1.6"/>')
    r = 2.2 if compact else 3
    for i, (m, c) in enumerate(zip(months, counts)):
        label = f"{m:%b %Y}"
        if c is None:
            tip = labels[i] if labels else "suppressed"
            body.append(
                f'<rect x="{_f(x(i) - r)}" y="{_f(y(0) - r)}" width="{_f(2 * r)}" height="{_f(2 * r)}" '
                f'fill="#fff" stroke="{MUTED}"><title>{label}: {escape(tip)}</title></rect>'
            )
            continue
        ex = exceedance[i]
        colour = ALERT if ex else ACCENT
        tip = f"{label}: {c:,.0f} (expected {expected[i]:.1f}, limits {lower[i]:.0f}-{upper[i]:.0f})"
        if ex:
            tip += f" - {ex} the control limit"
        body.append(
            f'<circle cx="{_f(x(i))}" cy="{_f(y(c))}" r="{_f(r * (1.5 if ex else 1))}" fill="{colour}">'
            f"<title>{escape(tip)}</title></circle>"
        )
        if ex and not compact:
            body.append(
                f'<text x="{_f(x(i))}" y="{_f(y(c) - 7)}" class="ex" text-anchor="middle">{c:,.0f}</text>'
            )
    # x axis: a label at every January (and the first month), month initials when short
    for i, m in enumerate(months):
        if n <= 24 and not compact:
            body.append(
                f'<text x="{_f(x(i))}" y="{_f(top + ph + 12)}" class="ax" text-anchor="middle">'
                f"{MONTHS[m.month - 1]}</text>"
            )
        if m.month == 1 or i == 0:
            body.append(
                f'<text x="{_f(left + i * pw / n)}" y="{_f(top + ph + (24 if n <= 24 and not compact else 13))}" '
                f'class="ax">{m.year}</text>'
            )
    body.append(
        f'<line x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(y(0))}" y2="{_f(y(0))}" stroke="{MUTED}"/>'
    )
    return _svg(width, height, title, body)


def funnel_svg(
    names: Sequence[str],
    populations: Sequence[float],
    rates: Sequence[float | None],
    force_rate: float,
    years: float,
    title: str,
    flagged: Sequence[str | None] | None = None,
    width: float = 720,
    height: float = 300,
) -> str:
    """Funnel plot: each authority's rate against its population, with exact Poisson limits.

    A ``None`` rate (suppressed) is left out and named in the tooltip of the title.
    """
    from homicide_assets.lib.patterns import FUNNEL_INNER_TAIL, FUNNEL_OUTER_TAIL, PER, poisson_limits

    left, right, top, bottom = 52, 20, 26, 40
    pw, ph = width - left - right, height - top - bottom
    pops = np.asarray(populations, dtype=float)
    pmin, pmax = 0.0, nice_max(pops.max() * 1.05) if len(pops) else 1.0
    grid = np.linspace(max(pmax / 200, 1000), pmax, 120)
    exposure = grid * years / PER
    expected = force_rate * exposure
    lo99, hi99, _ = poisson_limits(expected, FUNNEL_OUTER_TAIL)
    lo95, hi95, _ = poisson_limits(expected, FUNNEL_INNER_TAIL)
    shown = [r for r in rates if r is not None]
    ymax = nice_max(
        max([*shown, float(np.nanmax(hi99 / exposure)) if force_rate > 0 else 1, force_rate * 1.5, 0.1])
        if len(grid)
        else 1
    )
    ymax = min(ymax, nice_max(max([*shown, force_rate * 3, 0.1]) * 1.3))

    def x(p: float) -> float:
        return left + (p - pmin) / (pmax - pmin) * pw

    def y(v: float) -> float:
        return top + ph - min(max(v, 0), ymax) / ymax * ph

    body = [f'<text x="{_f(left)}" y="{_f(top - 9)}" class="ct">{escape(title)}</text>']
    for t in ticks(ymax):
        body.append(
            f'<line x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(y(t))}" y2="{_f(y(t))}" stroke="#e4e7eb"/>'
        )
        body.append(
            f'<text x="{_f(left - 5)}" y="{_f(y(t) + 3.5)}" class="ax" text-anchor="end">{_fmt_tick(t)}</text>'
        )
    for t in ticks(pmax):
        body.append(
            f'<text x="{_f(x(t))}" y="{_f(top + ph + 14)}" class="ax" text-anchor="middle">'
            f"{t / 1000:,.0f}k</text>"
        )
    body.append(
        f'<text x="{_f(left + pw / 2)}" y="{_f(height - 6)}" class="ax" text-anchor="middle">'
        f"population</text>"
    )
    for lim, dash, tip in (
        (hi99, "4 3", "99.8% limit"),
        (lo99, "4 3", "99.8% limit"),
        (hi95, "1 3", "95% limit"),
        (lo95, "1 3", "95% limit"),
    ):
        path = "".join(
            f"{'M' if i == 0 else 'L'}{_f(x(p))},{_f(y(v / e if e > 0 else 0))}"
            for i, (p, v, e) in enumerate(zip(grid, lim, exposure))
        )
        body.append(
            f'<path d="{path}" fill="none" stroke="{ALERT}" stroke-width="1" stroke-dasharray="{dash}">'
            f"<title>{tip}</title></path>"
        )
    body.append(
        f'<line x1="{_f(left)}" x2="{_f(left + pw)}" y1="{_f(y(force_rate))}" y2="{_f(y(force_rate))}" '
        f'stroke="{MUTED}"><title>force rate {force_rate:.2f}</title></line>'
    )
    placed = []
    for i, (name, p, r) in enumerate(zip(names, pops, rates)):
        if r is None:
            continue
        flag = flagged[i] if flagged else None
        colour = ALERT if flag else ACCENT
        body.append(
            f'<circle cx="{_f(x(p))}" cy="{_f(y(r))}" r="4.5" fill="{colour}">'
            f"<title>{escape(name)}: {r:.2f} per 100,000"
            f"{' - ' + flag + ' the 99.8% limit' if flag else ''}</title></circle>"
        )
        placed.append([y(r), x(p), y(r), name])
    # labels to the right of the points, nudged apart vertically so none overlap
    placed.sort()
    label_x = {}
    for item in placed:
        label_x[item[3]] = item[1]
    for a, b in zip(placed, placed[1:]):
        if b[0] - a[0] < 12 and abs(b[1] - a[1]) < 110:
            b[0] = a[0] + 12
    for ly, px, py, name in placed:
        lx = px + 9
        if abs(ly - py) > 1:
            body.append(
                f'<line x1="{_f(px + 4)}" y1="{_f(py)}" x2="{_f(lx - 1)}" y2="{_f(ly - 3)}" '
                f'stroke="{MUTED}" stroke-width="0.6"/>'
            )
        body.append(f'<text x="{_f(lx)}" y="{_f(ly + 0.5)}" class="lbl">{escape(name)}</text>')
    return _svg(width, height, title, body)


def _project_rings(rings_by_area: dict[str, list[np.ndarray]], width: float, height: float, pad: float = 8):
    """Fit lon/lat rings into the box with an equirectangular projection at the mean latitude."""
    allpts = np.vstack([r for rings in rings_by_area.values() for r in rings])
    lat0 = float(allpts[:, 1].mean())
    k = math.cos(math.radians(lat0))
    x0, x1 = allpts[:, 0].min() * k, allpts[:, 0].max() * k
    y0, y1 = allpts[:, 1].min(), allpts[:, 1].max()
    scale = min((width - 2 * pad) / (x1 - x0), (height - 2 * pad) / (y1 - y0))
    offx = pad + ((width - 2 * pad) - (x1 - x0) * scale) / 2
    offy = pad + ((height - 2 * pad) - (y1 - y0) * scale) / 2

    def proj(lon, lat):
        lon = np.asarray(lon, dtype=float)
        lat = np.asarray(lat, dtype=float)
        return offx + (lon * k - x0) * scale, offy + (y1 - lat) * scale

    return proj, scale


def choropleth_svg(
    areas: Sequence[tuple[str, str, list[np.ndarray]]],
    values: dict[str, float | None],
    value_labels: dict[str, str],
    title: str,
    legend_title: str,
    cells: Sequence[tuple[float, float, float, str]] = (),
    points: Sequence[tuple[float, float, str]] = (),
    width: float = 720,
    height: float = 430,
) -> str:
    """Choropleth of the authorities: ``areas`` are (code, name, rings of lon/lat).

    ``values`` shade each area in five equal classes from 0 to the largest value
    (``None``: hatched grey, suppressed); ``cells`` (lat, lon, half-size in degrees of
    latitude, tooltip) draw hotspot squares; ``points`` (lat, lon, tooltip) draw dots.
    """
    map_w = width - 170
    proj, _ = _project_rings({code: rings for code, _, rings in areas}, map_w, height - 24)
    shown = [v for v in values.values() if v is not None]
    vmax = nice_max(max(shown)) if shown else 1.0
    body = [
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
        f'<rect width="6" height="6" fill="{SUPPRESSED_FILL}"/><line x1="0" y1="0" x2="0" y2="6" stroke="#fff" '
        'stroke-width="2"/></pattern></defs>',
        f'<text x="8" y="16" class="ct">{escape(title)}</text>',
        '<g transform="translate(0,22)">',
    ]

    def colour(v: float | None) -> str:
        if v is None:
            return "url(#hatch)"
        idx = min(int(v / vmax * len(BLUES)), len(BLUES) - 1) if vmax > 0 else 0
        return BLUES[idx]

    centres = {}
    for code, name, rings in areas:
        d = []
        for ring in rings:
            xs, ys = proj(ring[:, 0], ring[:, 1])
            d.append("M" + "L".join(f"{_f(a)},{_f(b)}" for a, b in zip(xs, ys)) + "Z")
        v = values.get(code)
        tip = f"{name}: {value_labels.get(code, '')}"
        body.append(
            f'<path d="{"".join(d)}" fill="{colour(v)}" stroke="#fff" stroke-width="1.5" '
            f'fill-rule="evenodd" data-la="{code}"><title>{escape(tip)}</title></path>'
        )
        outer = max(rings, key=len)
        xs, ys = proj(outer[:, 0], outer[:, 1])
        centres[code] = (float(np.mean(xs)), float(np.mean(ys)), name)
    for lat, lon, half, tip in cells:
        (xa, xb), (ya, yb) = proj([lon - half * 1.64, lon + half * 1.64], [lat + half, lat - half])
        body.append(
            f'<rect x="{_f(xa)}" y="{_f(ya)}" width="{_f(max(xb - xa, 2))}" height="{_f(max(yb - ya, 2))}" '
            f'fill="{ALERT}" fill-opacity="0.55" stroke="{ALERT}"><title>{escape(tip)}</title></rect>'
        )
    for lat, lon, tip in points:
        px, py = proj([lon], [lat])
        body.append(
            f'<circle cx="{_f(px[0])}" cy="{_f(py[0])}" r="2.6" fill="{INK}" fill-opacity="0.75" '
            f'stroke="#fff" stroke-width="0.6"><title>{escape(tip)}</title></circle>'
        )
    for code, (cx, cy, name) in centres.items():
        half = len(name) * 3.9
        cx = min(max(cx, half + 4), map_w - half - 4)
        label = value_labels.get(code, "")
        v = values.get(code)
        dark = v is not None and vmax > 0 and v / vmax >= 0.6
        fill = "#fff" if dark else INK
        body.append(
            f'<text x="{_f(cx)}" y="{_f(cy)}" class="ml" text-anchor="middle" fill="{fill}">{escape(name)}</text>'
        )
        body.append(
            f'<text x="{_f(cx)}" y="{_f(cy + 12)}" class="mv" text-anchor="middle" fill="{fill}">'
            f"{escape(label.split(' ')[0])}</text>"
        )
    body.append("</g>")
    lx = map_w + 16
    body.append(f'<text x="{_f(lx)}" y="44" class="lt">{escape(legend_title)}</text>')
    step = vmax / len(BLUES)
    for i, c in enumerate(BLUES):
        yy = 54 + i * 22
        body.append(f'<rect x="{_f(lx)}" y="{_f(yy)}" width="18" height="16" fill="{c}" stroke="#cbd2d9"/>')
        body.append(
            f'<text x="{_f(lx + 24)}" y="{_f(yy + 12)}" class="ax">{_fmt_tick(step * i)} to '
            f"{_fmt_tick(step * (i + 1))}</text>"
        )
    yy = 54 + len(BLUES) * 22
    body.append(
        f'<rect x="{_f(lx)}" y="{_f(yy)}" width="18" height="16" fill="url(#hatch)" stroke="#cbd2d9"/>'
    )
    body.append(f'<text x="{_f(lx + 24)}" y="{_f(yy + 12)}" class="ax">suppressed</text>')
    if cells:
        yy += 22
        body.append(
            f'<rect x="{_f(lx + 3)}" y="{_f(yy + 2)}" width="12" height="12" fill="{ALERT}" fill-opacity="0.55" '
            f'stroke="{ALERT}"/><text x="{_f(lx + 24)}" y="{_f(yy + 12)}" class="ax">1 km hotspot</text>'
        )
    if points:
        yy += 22
        body.append(
            f'<circle cx="{_f(lx + 9)}" cy="{_f(yy + 8)}" r="3" fill="{INK}"/>'
            f'<text x="{_f(lx + 24)}" y="{_f(yy + 12)}" class="ax">homicide</text>'
        )
    return _svg(width, height, title, body, css_class="chart map")


def bar_cell(value: float | None, vmax: float) -> str:
    """A thin inline bar for a table cell (pure CSS width, no script)."""
    if value is None or vmax <= 0:
        return ""
    pct = max(0.0, min(100.0, value / vmax * 100))
    return f'<span class="bar" style="width:{pct:.1f}%"></span>'
