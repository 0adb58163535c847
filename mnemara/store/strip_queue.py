"""Strips held until the window changes anyway: strip_tool_output's default.

Why: a strip rewrites the stripped turns' renderings, so the next request differs from the
previous one from the first stripped turn on and the prompt cache re-reads everything after it.
Done on its own, that is one more cache break than the session would have had. Held until the
budget has to make room (an eviction or an auto_compress is due before the next turn), the strip
rides on the break that happens then anyway, and the room it frees may spare the eviction
(turns stay in the window, shortened, instead of leaving it).

The queue is a list of turn ids in the store's `meta` table (key `strip_queue`), so it outlives
the session. Applying it is `window_edits.strip_results` on those ids still in the window, with
no threshold: the batch costs no extra break, however small it is.
"""

from __future__ import annotations

import json
import sys

from .turns import TurnStore
from .window import Budget, plan_eviction
from .window_edits import Strip, strip_results

KEY = "strip_queue"


def queued(store: TurnStore) -> list[int]:
    """Turn ids whose large tool results wait for the next time the window must make room."""
    row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (KEY,)).fetchone()
    if row is None:
        return []
    try:
        ids = json.loads(row[0])
    except ValueError:  # unreadable: a strip is an optimisation, never worth failing a turn
        return []
    return sorted({int(i) for i in ids if isinstance(i, int)}) if isinstance(ids, list) else []


def preview(store: TurnStore, turn_ids: list[int]) -> Strip:
    """What stripping `turn_ids` would change, changing nothing (`applied` is False)."""
    return strip_results(store, turn_ids, min_total_chars=sys.maxsize)


def hold(store: TurnStore, turn_ids: list[int]) -> list[int]:
    """Add `turn_ids` to the queue; returns the whole queue."""
    with store.transaction():
        ids = sorted(set(queued(store)) | set(turn_ids))
        store.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                           (KEY, json.dumps(ids)))
    return ids


def apply_if_due(store: TurnStore, budget: Budget, *, incoming_tokens: int,
                 low_water: float) -> Strip | None:
    """Before a turn: when the budget is about to evict (the request's history changes at its
    front anyway), strip what the queue holds, all at once, and empty the queue. Returns the
    strip when something was stripped, else None (nothing queued, nothing due, or nothing left
    to strip: queued turns may have left the window meanwhile)."""
    ids = queued(store)
    if not ids:
        return None
    due = plan_eviction(store.costs(), budget, incoming_turns=2, incoming_tokens=incoming_tokens,
                        low_water=low_water)
    if not due:
        return None
    with store.transaction():
        strip = strip_results(store, ids, min_total_chars=0)
        store.conn.execute("DELETE FROM meta WHERE key = ?", (KEY,))
    return strip if strip.applied and strip.items else None


def applied_notice(strip: Strip, chars_per_token: float) -> str:
    """What the user is told when a held strip is applied."""
    n = len(strip.items)
    where = ", ".join(f"#{i}" for i in strip.turn_ids)
    tokens = int(strip.freed_chars / chars_per_token)
    return (f"the model stripped {n} tool output{'s' if n != 1 else ''} from {where} "
            f"(~{tokens:,} tokens), held until the window had to make room; they stay in the "
            "store, read_turns shows them")
