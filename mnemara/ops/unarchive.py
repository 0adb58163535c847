"""Pin an archived turn back into the window (the memory browser's `p`).

The archived row moves back into `turns` as it was (same id, same stored rendering), pinned, so
the model sees it again exactly as it was sent before and eviction takes it last. The window is
ordered by id, so the turn returns to its place in time: the next request changes from that turn
on and the prompt cache re-reads from there, once (as after `/compress undo`); requests after
that repeat it byte for byte.

Nothing is deleted and nothing else moves now. If the window is over its budget with the turn
back, the next message's usual eviction moves the oldest unpinned turns to the archive; the
move is refused only when the pinned turns alone, with this one and room for the next exchange,
would not fit (eviction would then take a pinned turn, perhaps this one, straight back out).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MnemaraError
from ..store.window import Budget

if TYPE_CHECKING:
    from ..config import Config
    from ..store.turns import TurnStore

UNARCHIVABLE = ("complete", "interrupted")  # a failed turn is never sent: it stays archived
NEXT_EXCHANGE_TURNS = 2                      # room for the next message and its reply
_COLUMNS = ("id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd, status,"
            " pinned")


class UnarchiveRefused(MnemaraError):
    """The turn cannot come back (no such archived turn, a failed one, no room): one line."""


def unarchive(store: "TurnStore", config: "Config", turn_id: int, *, system_tokens: int = 0) -> str:
    """Move archived turn `turn_id` back into the window, pinned; the sentence to show."""
    with store.transaction():
        row = store.conn.execute("SELECT rendered, status FROM archive WHERE id = ?",
                                 (turn_id,)).fetchone()
        if row is None:
            if store.conn.execute("SELECT 1 FROM turns WHERE id = ?", (turn_id,)).fetchone():
                store.set_pinned([turn_id])
                return f"turn #{turn_id} is in the window already; it is pinned now"
            raise UnarchiveRefused(f"there is no archived turn #{turn_id}")
        if row["status"] not in UNARCHIVABLE:
            raise UnarchiveRefused(f"turn #{turn_id} {row['status']}: it is never sent to the "
                                   "model, so it stays in the archive")
        tokens = store.estimator.estimate_chars(len(row["rendered"]))
        budget = Budget(config.max_window_turns, max(1, config.max_window_tokens - system_tokens))
        pinned = [c for c in store.costs() if c.pinned]
        pinned_tokens = sum(c.est_tokens for c in pinned) + tokens
        if not budget.fits(len(pinned) + 1 + NEXT_EXCHANGE_TURNS, pinned_tokens):
            raise UnarchiveRefused(
                f"turn #{turn_id} (~{tokens:,} tokens) does not fit beside the {len(pinned)} pinned "
                f"turn{'s' if len(pinned) != 1 else ''} (~{pinned_tokens - tokens:,} tokens) within "
                f"the budget of {budget.max_turns} turns, ~{budget.max_tokens:,} tokens; unpin a "
                "turn or raise the budget (/tokens) first, or read it with read_turns")
        store.conn.execute(f"INSERT INTO turns ({_COLUMNS}) SELECT {_COLUMNS} FROM archive"
                           " WHERE id = ?", (turn_id,))
        store.conn.execute("DELETE FROM archive WHERE id = ?", (turn_id,))
        store.conn.execute("UPDATE turns SET est_tokens = ?, pinned = 1 WHERE id = ?",
                           (tokens, turn_id))
        costs = store.costs()
    over = not budget.fits(len(costs) + NEXT_EXCHANGE_TURNS, sum(c.est_tokens for c in costs))
    room = (" The window is over its budget now: the next message moves its oldest unpinned turns "
            "to the archive." if over else "")
    return (f"turn #{turn_id} is back in the window, pinned (~{tokens:,} tokens); the next request "
            f"re-caches from it, once.{room}")
