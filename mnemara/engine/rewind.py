"""Take back the last exchange and run it again: `/edit` (a changed message) and `/regen` (the
same message, a new reply). Nothing is deleted: the old question and everything after it go to
the archive (reason "edited" or "regenerated"), where search and recall still find them.

The history before the last question is untouched, so the request repeats the cached prefix of
the previous one byte for byte; only the last block changes. No UI imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

from .events import Event, Notice, TurnFinished, Usage

if TYPE_CHECKING:
    from ..store.turns import Turn
    from .turn import TurnEngine


def last_question(engine: "TurnEngine") -> "Turn | None":
    """The newest user turn of the window, the one /edit and /regen take back, or None."""
    for turn in reversed(engine.store.window()):
        if turn.role == "user":
            return turn
    return None


async def resend(engine: "TurnEngine", question_id: int, text: str, *,
                 reason: str) -> AsyncIterator[Event]:
    """Archive user turn `question_id` and every later turn, then run `text` as a new turn.

    Refused (nothing archived) when `question_id` is no longer the last question (a turn ran
    meanwhile, or it left the window) or when `text` would be refused as too large: the old
    exchange stays in the window in both cases."""
    current = last_question(engine)
    if current is None or current.id != question_id:
        yield Notice("warning", f"message #{question_id} is no longer the last one in the window; "
                                "nothing was changed")
        return
    refusal = engine.refusal(text)
    if refusal is not None:
        yield TurnFinished(status="refused", user_turn_id=None, assistant_turn_id=None,
                           usage=Usage(), cost_usd=None, duration_ms=0, api_calls=0,
                           error=f"{refusal}; the earlier exchange stays in the window")
        return
    # A /compress summary made after the question stands for turns already archived: it stays.
    later = [t.id for t in engine.store.window() if t.id >= question_id
             and not any(b.get("type") == "summary" for b in t.blocks)]
    eviction = engine.store.evict(later, reason)
    if eviction is not None:
        engine.log.write(reason, ids=eviction.ids)
        n = len(eviction.ids)
        yield Notice("info", f"the earlier exchange ({n} turn{'s' if n != 1 else ''}: "
                             f"#{', #'.join(str(i) for i in eviction.ids)}) is in the archive "
                             "(search and recall find it)", {"ids": eviction.ids})
    async for event in engine.run(text):
        yield event
