"""Statistical disclosure control for the partner edition: primary and secondary suppression.

The partner edition shows no count from 1 to 4 (*primary* suppression, shown ``<5``) and
no cell from which such a count could be worked out from the table's totals (*secondary*
suppression, shown ``[c]``, as the ONS marks a confidential cell).

:func:`protect_table` takes the interior of a table (categories by count columns) and
protects it together with its margins (row totals, column totals, grand total):

1. **Primary**: every cell, margins included, whose value is between ``low`` and ``high``
   (1 and 4).
2. **Secondary, by lines**: a *line* is a row or a column with its total. A line holding
   exactly one suppressed cell gives that cell away by subtraction, so the smallest
   published non-zero cell of the line is suppressed too (interior cells before totals,
   and among equals the cell that also completes another line). Repeated until no line
   holds exactly one suppressed cell.
3. **Audit**: lines with two suppressed cells can still give a count away (a line
   ``[<5, [c]]`` with total 6 pins the small cell to 1, since a secondary cell is at
   least 5). :func:`attacker_intervals` solves, for every suppressed cell, the smallest
   and largest value it can take given every published cell and total, every table
   equation, and what the symbols tell (``<5``: between 1 and 4; ``[c]``: 5 or more),
   by linear programming (``scipy.optimize.linprog``, HiGHS), including what the reader
   knows of a subset shown beside its whole (homicides <= deaths in the same row).
   Tables with margins are network matrices, so these bounds are whole numbers. A primary cell whose interval is
   narrower than ``min_width`` gets one more secondary cell on one of its lines, and the
   audit runs again.

Zeros are published as they are (a true zero discloses nobody) and are never chosen as
``[c]`` cells. Only when a small cell's lines hold nothing else to hide (``0, 1, 1, 0``
with total ``<5`` pins both ones) are the zeros of those lines shown ``<5`` as well (true:
0 is under 5); a table with nothing left to hide at all (four categories of one death
each, total ``<5``) is published with the same footnote, "``<5`` may be 0 here", and the
audit then assumes the reader reads ``<5`` as 0 to 4 in that table. Rates, shares and intervals that come from a suppressed
count are suppressed with it by the report (see ``lib/report.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PRIMARY_LOW = 1
PRIMARY_HIGH = 4
PUBLISHED, PRIMARY, SECONDARY, HIDDEN_ZERO = 0, 1, 2, 3
PRIMARY_SYMBOL = "<5"
SECONDARY_SYMBOL = "[c]"

Cell = tuple[int, int]


@dataclass
class ProtectedTable:
    """A table with its margins and the publication status of every cell.

    ``values`` and ``status`` have the interior in ``[:rows, :cols]``; when
    ``row_totals`` the last column holds the row totals, when ``col_totals`` the last
    row holds the column totals (and the corner the grand total).
    """

    values: np.ndarray
    status: np.ndarray
    row_totals: bool
    col_totals: bool
    low: int = PRIMARY_LOW
    high: int = PRIMARY_HIGH
    #: set when the table had to hide zeros (or had nothing left to hide): its footnote
    #: then says ``<5`` may be 0, and the audit assumes the reader knows it
    small_may_be_zero: bool = False
    #: pairs (a, b) of cells the reader knows satisfy a <= b (homicides <= deaths in a row)
    leq: tuple[tuple[Cell, Cell], ...] = ()

    @property
    def suppressed(self) -> np.ndarray:
        return self.status != PUBLISHED

    def display(self) -> np.ndarray:
        """Cell text as published: the number, ``<5`` or ``[c]``."""
        out = np.empty(self.values.shape, dtype=object)
        for idx, value in np.ndenumerate(self.values):
            s = self.status[idx]
            out[idx] = (
                PRIMARY_SYMBOL
                if s in (PRIMARY, HIDDEN_ZERO)
                else SECONDARY_SYMBOL
                if s == SECONDARY
                else f"{int(value):,}"
            )
        return out

    def lines(self) -> list[list[Cell]]:
        return table_lines(self.values.shape, self.row_totals, self.col_totals)

    def intervals(self, only_primary: bool = False) -> dict[Cell, tuple[float, float]]:
        return attacker_intervals(
            self.values,
            self.status,
            self.lines(),
            self.low,
            self.high,
            self.small_may_be_zero,
            only_primary,
            self.leq,
        )


def table_lines(shape: tuple[int, int], row_totals: bool, col_totals: bool) -> list[list[Cell]]:
    """Every additive line of a table: its cells, the total cell last."""
    n_rows, n_cols = shape
    r = n_rows - (1 if col_totals else 0)
    c = n_cols - (1 if row_totals else 0)
    lines: list[list[Cell]] = []
    if row_totals:
        for i in range(n_rows):
            lines.append([(i, j) for j in range(c)] + [(i, c)])
    if col_totals:
        for j in range(n_cols):
            lines.append([(i, j) for i in range(r)] + [(r, j)])
    return lines


def with_margins(interior: np.ndarray, row_totals: bool, col_totals: bool) -> np.ndarray:
    values = np.asarray(interior, dtype=np.int64)
    if values.ndim == 1:
        values = values[:, None]
    if row_totals:
        values = np.hstack([values, values.sum(axis=1, keepdims=True)])
    if col_totals:
        values = np.vstack([values, values.sum(axis=0, keepdims=True)])
    return values


def _is_margin(cell: Cell, shape: tuple[int, int], row_totals: bool, col_totals: bool) -> bool:
    return (row_totals and cell[1] == shape[1] - 1) or (col_totals and cell[0] == shape[0] - 1)


def attacker_intervals(
    values: np.ndarray,
    status: np.ndarray,
    lines: list[list[Cell]],
    low: int = PRIMARY_LOW,
    high: int = PRIMARY_HIGH,
    small_may_be_zero: bool = False,
    only_primary: bool = False,
    leq: Sequence[tuple[Cell, Cell]] = (),
) -> dict[Cell, tuple[float, float]]:
    """Smallest and largest value each suppressed cell can take, as a reader could work out.

    The reader knows every published cell, every line equation, that a primary cell is in
    ``[low, high]`` (``[0, high]`` when the table says ``<5`` may be 0), that a secondary
    cell is above ``high``, and every ``leq`` pair (a, b): a <= b (a subset counted beside
    its whole, as homicides beside all deaths). Lines that share no cell are solved in
    closed form; otherwise by linear programming (:func:`lp_intervals`).
    """
    unknown = [tuple(int(v) for v in idx) for idx in np.argwhere(status != PUBLISHED)]
    if not unknown:
        return {}
    bound = _reader_bounds(status, unknown, low, high, small_may_be_zero)
    coupled = _apply_published_pairs(values, bound, leq)
    if coupled:
        return lp_intervals(values, status, lines, low, high, small_may_be_zero, only_primary, leq)
    seen: set[Cell] = set()
    disjoint = True
    for line in lines:
        if seen.intersection(line):
            disjoint = False
            break
        seen.update(line)
    if disjoint:
        out: dict[Cell, tuple[float, float]] = {}
        for line in lines:
            if any(c in bound for c in line):
                out.update(_single_line_intervals(values, line, bound))
        for cell in unknown:  # a hidden cell in no line is bounded by its symbol alone
            out.setdefault(cell, bound[cell])
        if only_primary:
            out = {c: v for c, v in out.items() if status[c] == PRIMARY}
        return out
    return lp_intervals(values, status, lines, low, high, small_may_be_zero, only_primary, leq)


def _apply_published_pairs(
    values: np.ndarray, bound: dict[Cell, tuple[float, float]], leq: Sequence[tuple[Cell, Cell]]
) -> list[tuple[Cell, Cell]]:
    """Tighten ``bound`` in place with pairs that have one published side; return the pairs
    with both sides hidden (they couple cells, so need the linear programme)."""
    coupled = []
    for a, b in leq:
        if a in bound and b in bound:
            coupled.append((a, b))
        elif a in bound:  # a <= published b
            lo, hi = bound[a]
            bound[a] = (lo, min(hi, float(values[b])))
        elif b in bound:  # published a <= b
            lo, hi = bound[b]
            bound[b] = (max(lo, float(values[a])), hi)
    return coupled


def lp_intervals(
    values: np.ndarray,
    status: np.ndarray,
    lines: list[list[Cell]],
    low: int = PRIMARY_LOW,
    high: int = PRIMARY_HIGH,
    small_may_be_zero: bool = False,
    only_primary: bool = False,
    leq: Sequence[tuple[Cell, Cell]] = (),
) -> dict[Cell, tuple[float, float]]:
    """:func:`attacker_intervals` by linear programming (any number of lines).

    The hidden cells fall into independent groups (cells linked through the lines they
    share); each group is its own small programme. ``only_primary``: bound only the small
    cells (all the audit needs), skipping groups without one.
    """
    unknown = [tuple(int(v) for v in idx) for idx in np.argwhere(status != PUBLISHED)]
    if not unknown:
        return {}
    bound = _reader_bounds(status, unknown, low, high, small_may_be_zero)
    coupled = _apply_published_pairs(values, bound, leq)
    parent = {cell: cell for cell in unknown}

    def find(c: Cell) -> Cell:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    hidden_lines = []
    for line in lines:
        hidden = [c for c in line if c in parent]
        if hidden:
            hidden_lines.append((line, hidden))
            for c in hidden[1:]:
                parent[find(c)] = find(hidden[0])
    for a, b_cell in coupled:
        parent[find(a)] = find(b_cell)
    groups: dict[Cell, list[Cell]] = {}
    for cell in unknown:
        groups.setdefault(find(cell), []).append(cell)
    out: dict[Cell, tuple[float, float]] = {}
    for members in groups.values():
        targets = [c for c in members if status[c] == PRIMARY] if only_primary else members
        if not targets:
            continue
        col_of = {cell: k for k, cell in enumerate(members)}
        a_rows, b = [], []
        for line, hidden in hidden_lines:
            if hidden[0] not in col_of:
                continue
            *parts, total = line
            row = np.zeros(len(members))
            rhs = 0.0
            for cell in parts:
                if cell in col_of:
                    row[col_of[cell]] += 1
                else:
                    rhs -= values[cell]
            if total in col_of:
                row[col_of[total]] -= 1
            else:
                rhs += values[total]
            a_rows.append(row)
            b.append(rhs)
        bounds = [(bound[c][0], None if bound[c][1] == float("inf") else bound[c][1]) for c in members]
        a_eq = np.array(a_rows) if a_rows else None
        b_eq = np.array(b) if b else None
        ub_rows = []
        for a, b_cell in coupled:  # x_a - x_b <= 0
            if a in col_of:
                row = np.zeros(len(members))
                row[col_of[a]], row[col_of[b_cell]] = 1.0, -1.0
                ub_rows.append(row)
        a_ub = np.array(ub_rows) if ub_rows else None
        b_ub = np.zeros(len(ub_rows)) if ub_rows else None
        for cell in targets:
            cost = np.zeros(len(members))
            cost[col_of[cell]] = 1.0
            from scipy.optimize import linprog  # seconds to import: on first use

            lo = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            hi = linprog(-cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
            if lo.status != 0 or hi.status not in (0, 3):  # 3: unbounded above
                raise ValueError(f"disclosure audit infeasible for cell {cell}: {lo.message} / {hi.message}")
            out[cell] = (float(lo.fun), float("inf") if hi.status == 3 else float(-hi.fun))
    return out


def _reader_bounds(
    status: np.ndarray, unknown: list[Cell], low: int, high: int, small_may_be_zero: bool
) -> dict[Cell, tuple[float, float]]:
    """What the symbols tell a reader: ``<5`` is 1-4 (0-4 when the table says so), ``[c]`` is 5+."""
    small_low = 0 if small_may_be_zero else low
    return {
        cell: ((small_low, high) if status[cell] in (PRIMARY, HIDDEN_ZERO) else (high + 1, float("inf")))
        for cell in unknown
    }


def _single_line_intervals(
    values: np.ndarray, line: list[Cell], bound: dict[Cell, tuple[float, float]]
) -> dict[Cell, tuple[float, float]]:
    """The bounds of :func:`lp_intervals`, in closed form, for a table of one line."""
    *parts, total = line
    published = float(sum(values[c] for c in parts if c not in bound))
    hidden = [c for c in parts if c in bound]
    t_lo, t_hi = bound.get(total, (float(values[total]), float(values[total])))
    lo_sum = sum(bound[c][0] for c in hidden)
    hi_sum = sum(bound[c][1] for c in hidden)
    out: dict[Cell, tuple[float, float]] = {}
    for cell in hidden:
        own_lo, own_hi = bound[cell]
        others_hi = sum(bound[c][1] for c in hidden if c != cell)
        others_lo = sum(bound[c][0] for c in hidden if c != cell)
        lo = max(own_lo, t_lo - published - others_hi)
        hi = min(own_hi, t_hi - published - others_lo)
        out[cell] = (float(lo), float(hi))
    if total in bound:
        out[total] = (float(max(t_lo, published + lo_sum)), float(min(t_hi, published + hi_sum)))
    return out


def _secondary_by_lines(
    values: np.ndarray, status: np.ndarray, lines: list[list[Cell]], row_totals: bool, col_totals: bool
) -> None:
    shape = values.shape
    lines_of: dict[Cell, list[int]] = {}
    for n, line in enumerate(lines):
        for cell in line:
            lines_of.setdefault(cell, []).append(n)
    changed = True
    while changed:
        changed = False
        for line in lines:
            suppressed = [cell for cell in line if status[cell] != PUBLISHED]
            if len(suppressed) != 1:
                continue
            candidates = [cell for cell in line if status[cell] == PUBLISHED and values[cell] > 0]
            if not candidates:
                continue

            def single_lines(cell: Cell) -> int:
                return sum(1 for n in lines_of[cell] if sum(status[c] != PUBLISHED for c in lines[n]) == 1)

            best = min(
                candidates,
                key=lambda cell: (
                    _is_margin(cell, shape, row_totals, col_totals),
                    -single_lines(cell),
                    values[cell],
                    cell,
                ),
            )
            status[best] = SECONDARY
            changed = True


def protect_table(
    interior,
    row_totals: bool = True,
    col_totals: bool = True,
    low: int = PRIMARY_LOW,
    high: int = PRIMARY_HIGH,
    min_width: float = 1.0,
    leq: Sequence[tuple[Cell, Cell]] = (),
) -> ProtectedTable:
    """Primary and secondary suppression of a table of counts and its margins.

    ``interior`` is a 2-D array of counts (or 1-D: one column). The margins are computed
    here (so they always add up). ``min_width``: how wide the reader's interval for each
    primary cell must be (1: at least two values possible). ``leq``: pairs of cells (in
    the coordinates of the table with its margins) the reader knows satisfy a <= b.
    """
    values = with_margins(interior, row_totals, col_totals)
    if (values < 0).any():
        raise ValueError("counts must not be negative")
    status = np.where((values >= low) & (values <= high), PRIMARY, PUBLISHED).astype(np.int8)
    lines = table_lines(values.shape, row_totals, col_totals)
    _secondary_by_lines(values, status, lines, row_totals, col_totals)
    table = ProtectedTable(values, status, row_totals, col_totals, low, high, leq=tuple(leq))
    for _ in range(values.size):
        intervals = table.intervals(only_primary=True)
        exposed = [
            cell for cell, (lo, hi) in intervals.items() if status[cell] == PRIMARY and hi - lo < min_width
        ]
        if not exposed:
            break
        added = False
        for cell in exposed:
            in_lines = [c for line in lines if cell in line for c in line if status[c] == PUBLISHED]
            options = [c for c in in_lines if values[c] > 0]
            if options:
                best = min(
                    options, key=lambda c: (_is_margin(c, values.shape, row_totals, col_totals), values[c], c)
                )
                status[best] = SECONDARY
                added = True
                break
            if in_lines:  # only zeros left: hide them as <5 too, so <5 may mean 0
                for c in in_lines:
                    status[c] = HIDDEN_ZERO
                table.small_may_be_zero = True
                added = True
                break
            if not table.small_may_be_zero:  # nothing left to hide: say that <5 may be 0
                table.small_may_be_zero = True
                added = True
                break
        if not added:
            break
        _secondary_by_lines(values, status, lines, row_totals, col_totals)
    return table


def protect_counts(counts: Sequence[int], with_total: bool = True, **kw) -> ProtectedTable:
    """A single column of counts with (by default) its total as the last row."""
    return protect_table(
        np.asarray(list(counts), dtype=np.int64)[:, None], row_totals=False, col_totals=with_total, **kw
    )


def is_disclosive(table: ProtectedTable, min_width: float = 1.0) -> list[Cell]:
    """Cells whose published value is in ``[low, high]``, or primary cells a reader can
    narrow below ``min_width``: empty for a safe table."""
    bad = [
        tuple(int(v) for v in idx)
        for idx in np.argwhere(
            (table.status == PUBLISHED) & (table.values >= table.low) & (table.values <= table.high)
        )
    ]
    for cell, (lo, hi) in table.intervals(only_primary=True).items():
        if table.status[cell] == PRIMARY and hi - lo < min_width:
            bad.append(cell)
    return bad


def suppress_value(count: int | None, low: int = PRIMARY_LOW, high: int = PRIMARY_HIGH) -> str:
    """One stand-alone count as published (no table around it to protect)."""
    if count is None:
        return ""
    return PRIMARY_SYMBOL if low <= count <= high else f"{int(count):,}"
