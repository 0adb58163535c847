"""plan_eviction: the rolling-window budget (FIFO, pinned rows last, low-water chunks)."""

from __future__ import annotations

import random

import pytest

from mnemara.store import Budget, RowCost, plan_eviction


def rows(*sizes: int, pinned: set[int] = frozenset()) -> list[RowCost]:
    return [RowCost(i, size, i in pinned) for i, size in enumerate(sizes, 1)]


def test_nothing_is_evicted_while_everything_fits():
    assert plan_eviction(rows(10, 10, 10), Budget(3, 30)) == []
    assert plan_eviction([], Budget(1, 1)) == []


def test_budget_fits_is_inclusive():
    assert Budget(3, 30).fits(3, 30)
    assert not Budget(3, 30).fits(4, 30) and not Budget(3, 30).fits(3, 31)


def test_evicts_oldest_rows_to_meet_the_turn_limit():
    assert plan_eviction(rows(1, 1, 1, 1, 1), Budget(3, 1000)) == [1, 2]


def test_evicts_oldest_rows_to_meet_the_token_limit():
    assert plan_eviction(rows(50, 10, 10, 10), Budget(10, 30)) == [1]
    assert plan_eviction(rows(10, 10, 10, 50), Budget(10, 55)) == [1, 2, 3]


def test_order_of_input_does_not_matter():
    shuffled = list(reversed(rows(1, 1, 1, 1, 1)))
    assert plan_eviction(shuffled, Budget(3, 1000)) == [1, 2]


def test_pinned_rows_are_evicted_last():
    r = rows(1, 1, 1, 1, 1, pinned={1, 2})
    assert plan_eviction(r, Budget(3, 1000)) == [3, 4]
    # when only pinned rows are left to take, the oldest pinned row goes
    assert plan_eviction(r, Budget(1, 1000)) == [1, 3, 4, 5]


def test_pinned_rows_go_only_when_the_budget_cannot_be_met_without_them():
    r = rows(100, 5, 5, pinned={1})
    assert plan_eviction(r, Budget(10, 100)) == [2, 3]  # enough without the pinned giant
    assert plan_eviction(r, Budget(10, 105)) == [2]
    assert plan_eviction(r, Budget(10, 99)) == [1, 2, 3]  # only now must the pinned row go


def test_low_water_evicts_down_to_the_mark_in_one_chunk():
    r = rows(*[10] * 11)
    assert plan_eviction(r, Budget(10, 1000), low_water=0.5) == [1, 2, 3, 4, 5, 6]
    assert plan_eviction(r, Budget(100, 100), low_water=0.6) == [1, 2, 3, 4, 5]


def test_low_water_never_sacrifices_pinned_rows():
    r = rows(*[10] * 11, pinned={1, 2, 3, 4, 5, 6, 7, 8})
    # unpinned 9, 10, 11 go (they would go for the low-water mark); pinned rows only to fit 10
    assert plan_eviction(r, Budget(10, 1000), low_water=0.5) == [9, 10, 11]
    r = rows(*[10] * 11, pinned=set(range(1, 12)))
    assert plan_eviction(r, Budget(10, 1000), low_water=0.5) == [1]


def test_incoming_turn_and_tokens_are_counted():
    r = rows(10, 10, 10)
    assert plan_eviction(r, Budget(3, 1000), incoming_turns=1) == [1]
    assert plan_eviction(r, Budget(10, 40), incoming_tokens=25) == [1, 2]


def test_incoming_larger_than_the_budget_evicts_everything():
    assert plan_eviction(rows(1, 1, pinned={1}), Budget(5, 100), incoming_tokens=500) == [1, 2]


@pytest.mark.parametrize("seed", range(40))
def test_random_windows_obey_the_rules(seed):
    rng = random.Random(seed)
    r = [RowCost(i, rng.randint(1, 300), rng.random() < 0.25) for i in range(1, rng.randint(1, 60))]
    budget = Budget(rng.randint(1, 40), rng.randint(100, 5000))
    low_water = rng.choice([1.0, 0.9, 0.5])
    evicted = plan_eviction(r, budget, low_water=low_water)
    kept = [x for x in r if x.id not in set(evicted)]
    assert evicted == sorted(set(evicted))
    assert budget.fits(len(kept), sum(x.est_tokens for x in kept)) or not kept
    unpinned_out = [x.id for x in r if not x.pinned and x.id in set(evicted)]
    unpinned_in = [x.id for x in kept if not x.pinned]
    assert not unpinned_out or not unpinned_in or max(unpinned_out) < min(unpinned_in), "FIFO"
    if any(x.pinned for x in r if x.id in set(evicted)):
        assert not unpinned_in, "a pinned row went while an unpinned one stayed"
    if budget.fits(len(r), sum(x.est_tokens for x in r)):
        assert evicted == []
