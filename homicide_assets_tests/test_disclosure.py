"""Primary and secondary suppression: no count from 1 to 4 shown, none derivable from totals."""

from __future__ import annotations

import numpy as np
import pytest

from homicide_assets.lib import disclosure as D


def shown(table: D.ProtectedTable) -> list[list[str]]:
    return table.display().tolist()


def test_primary_suppression_hides_one_to_four_and_shows_zero_and_five():
    t = D.protect_counts([0, 1, 4, 5, 40])
    assert [row[0] for row in shown(t)][:5] == ["0", "<5", "<5", "5", "40"]
    assert D.suppress_value(3) == "<5" and D.suppress_value(0) == "0" and D.suppress_value(12) == "12"


def test_a_single_small_cell_is_protected_by_a_second_cell():
    # 3 + 50 + 20 = 73: with only the 3 hidden, 73 - 50 - 20 gives it away
    t = D.protect_counts([3, 50, 20])
    assert [row[0] for row in shown(t)] == ["<5", "50", "[c]", "73"]
    lo, hi = t.intervals()[(0, 0)]
    assert (lo, hi) == (1, 4)  # the reader learns nothing beyond "<5"


def test_the_audit_catches_a_pair_that_still_pins_the_small_count():
    # [1, 5, 30] total 36: hiding 1 and 5 leaves x + y = 6 with y >= 5, so x = 1: the audit adds 30
    t = D.protect_counts([1, 5, 30])
    assert [row[0] for row in shown(t)] == ["<5", "[c]", "[c]", "36"]
    lo, hi = t.intervals()[(0, 0)]
    assert hi - lo >= 1


def test_naive_suppression_is_shown_to_be_disclosive():
    # the audit itself must be able to fail: a line with one hidden cell is exact
    values = D.with_margins(np.array([3, 50, 20]), row_totals=False, col_totals=True)
    status = np.zeros(values.shape, dtype=np.int8)
    status[0, 0] = D.PRIMARY
    naive = D.ProtectedTable(values, status, row_totals=False, col_totals=True)
    assert naive.intervals()[(0, 0)] == (3, 3)
    assert D.is_disclosive(naive) == [(0, 0)]


def test_two_way_table_rows_and_columns_are_all_protected():
    interior = np.array([[2, 10, 7], [8, 9, 30], [12, 3, 25]])
    t = D.protect_table(interior)
    assert t.values[-1, -1] == interior.sum()
    assert (t.values[:-1, -1] == interior.sum(axis=1)).all()
    for line in t.lines():
        assert sum(t.status[c] != D.PUBLISHED for c in line) != 1, line
    assert D.is_disclosive(t) == []
    # every small cell is hidden, every published cell is 0 or 5+
    published = t.values[t.status == D.PUBLISHED]
    assert not ((published >= 1) & (published <= 4)).any()


def test_small_total_with_only_small_cells_says_less_than_five_may_be_zero():
    # 1 + 1 + 1 + 1 = 4 = "<5": four cells each at least 1 would pin every cell to 1
    t = D.protect_counts([1, 1, 1, 1])
    assert t.small_may_be_zero
    assert all(lo == 0 and hi == 4 for lo, hi in t.intervals().values())
    assert D.is_disclosive(t) == []


def test_zeros_are_hidden_only_when_nothing_else_protects():
    t = D.protect_counts([0, 1, 1, 0, 9, 0])
    assert D.is_disclosive(t) == []
    hidden_zeros = [i for i in range(6) if t.status[i, 0] == D.HIDDEN_ZERO]
    assert t.status[5, 0] == D.PUBLISHED or not t.small_may_be_zero  # unrelated zeros stay zero
    assert len(hidden_zeros) <= 3


@pytest.mark.parametrize("seed", range(4))
def test_random_tables_are_never_disclosive(seed):
    rng = np.random.default_rng(seed)
    for _ in range(12):
        rows, cols = int(rng.integers(1, 8)), int(rng.integers(1, 5))
        interior = rng.poisson(rng.uniform(0.3, 9), size=(rows, cols))
        t = D.protect_table(interior)
        assert D.is_disclosive(t) == [], (interior, shown(t))
        assert (t.status[(t.values >= 1) & (t.values <= 4)] != D.PUBLISHED).all()


def test_closed_form_single_line_audit_agrees_with_linear_programming():
    rng = np.random.default_rng(11)
    for _ in range(60):
        t = D.protect_counts(rng.poisson(rng.uniform(0.2, 10), size=int(rng.integers(1, 10))))
        closed = t.intervals()
        lp = D.lp_intervals(t.values, t.status, t.lines(), small_may_be_zero=t.small_may_be_zero)
        assert closed.keys() == lp.keys()
        for cell in closed:
            assert closed[cell] == pytest.approx(lp[cell]), (t.values.ravel(), cell)


def test_columns_without_a_row_total_are_separate_lines():
    # two periods side by side, each with its own total: hiding in one column does not
    # force hiding in the other
    t = D.protect_table(np.array([[3, 40], [50, 41], [20, 42]]), row_totals=False, col_totals=True)
    assert shown(t)[0] == ["<5", "40"] and shown(t)[2] == ["[c]", "42"]
    assert D.is_disclosive(t) == []


def test_a_subset_shown_beside_its_whole_cannot_give_a_small_count_away():
    # deaths and homicides by classification: the homicide row's 6 homicides tell the reader
    # that its hidden deaths are at least 6, which would pin road traffic's 1 (7 - 6)
    deaths, homicides = [53, 16, 9, 7, 6, 1], [0, 0, 0, 0, 6, 0]
    interior = np.column_stack([deaths, homicides])
    leq = [((r, 1), (r, 0)) for r in range(len(deaths) + 1)]
    naive = D.protect_table(interior, row_totals=False, col_totals=True)
    assert D.is_disclosive(naive) == []  # safe if the reader ignored the relation ...
    naive.leq = tuple(leq)
    assert D.is_disclosive(naive) == [(5, 0)]  # ... but not once the reader uses it
    t = D.protect_table(interior, row_totals=False, col_totals=True, leq=leq)
    assert D.is_disclosive(t) == []
    assert t.status[5, 0] == D.PRIMARY and (t.status[:, 0] == D.SECONDARY).sum() >= 2
