"""Drive a TurnEngine turn the way a front end does, answering permission requests in order."""

from __future__ import annotations

from typing import Any

from mnemara.engine.events import PermissionRequest


async def run_turn(engine: Any, text: str, answers: str = "") -> list[Any]:
    """All events of one turn; each PermissionRequest gets the next letter of `answers`."""
    events, pending = [], list(answers)
    async for event in engine.run(text):
        events.append(event)
        if isinstance(event, PermissionRequest):
            event.answer(pending.pop(0))
    return events
