"""The rolling-window budget: which rows to move to the archive, and why.

Pure functions over (id, est_tokens, pinned) so the policy is easy to test and reason about.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RowCost:
    id: int
    est_tokens: int
    pinned: bool = False


@dataclass(frozen=True)
class Budget:
    max_turns: int
    max_tokens: int

    def fits(self, turns: int, tokens: int) -> bool:
        return turns <= self.max_turns and tokens <= self.max_tokens


def plan_eviction(rows: list[RowCost], budget: Budget, *, incoming_turns: int = 0,
                  incoming_tokens: int = 0, low_water: float = 1.0) -> list[int]:
    """Ids to evict, oldest first, so the window plus what is incoming fits `budget`.

    Nothing is evicted while everything fits. Once something must go, rows go until the total is
    at or below `low_water` x budget, so a cache-friendly engine evicts in one chunk and then keeps
    a stable prefix for many turns. Unpinned rows go first (FIFO); pinned rows go last (FIFO)
    and only if the budget cannot be met without them.
    """
    turns = len(rows) + incoming_turns
    tokens = sum(r.est_tokens for r in rows) + incoming_tokens
    if budget.fits(turns, tokens):
        return []
    target = Budget(max(0, math.floor(budget.max_turns * low_water)),
                    max(0, math.floor(budget.max_tokens * low_water)))
    evicted: list[int] = []
    # Unpinned rows, oldest first, down to the low-water mark; pinned rows only as far as the
    # hard budget needs (a pinned row is never sacrificed just to reach the low-water mark).
    for group, goal in (([r for r in rows if not r.pinned], target),
                        ([r for r in rows if r.pinned], budget)):
        for row in sorted(group, key=lambda r: r.id):
            if goal.fits(turns, tokens):
                break
            evicted.append(row.id)
            turns -= 1
            tokens -= row.est_tokens
    return sorted(evicted)
