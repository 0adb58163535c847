"""Window operations shared by the CLI and the chat: clear, and the request preview that
`show --prompt` prints (built with the same functions the engine sends with)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import Turn, TurnStore


def clear(store: "TurnStore") -> str:
    """Move every window turn to the archive; the sentence to show."""
    ev = store.clear()
    n = len(ev.ids) if ev else 0
    return f"moved {n} turn{'s' if n != 1 else ''} to the archive; the window is empty"


@dataclass(frozen=True)
class RequestPreview:
    system_prompt: str
    role_warning: str | None
    turns: list["Turn"]               # the window turns that will be sent, oldest first
    blocks: list[dict[str, Any]]      # one text block per turn, exactly as sent
    next_slots: dict[str, Any] | None = None  # the slots block the next message ends with, if any
    slots_line: str = ""              # the slots and what they take (ops.slots.totals); "" if none

    def recalled(self, turn: "Turn") -> int:
        """How many memories were recalled into `turn` (re-sent with it)."""
        return sum(len(b.get("items") or []) for b in turn.blocks if b.get("type") == "recall")


def request_preview(instance: "Instance", config: "Config") -> RequestPreview:
    from ..engine.prompt import read_role_doc, window_blocks
    from ..store import TurnStore
    role = read_role_doc(config.role_doc_path)
    from ..memory.slots import SlotBook, pending_block
    from .slots import totals
    turns: list[Turn] = []
    slots, line = None, ""
    if instance.turns_path.exists():
        with TurnStore(instance.turns_path, readonly=True) as store:
            turns = store.sendable()
            book = SlotBook(store, config)
            slots, line = pending_block(store, config), totals(book) if book.current() else ""
    return RequestPreview(role.text, role.warning, turns, window_blocks([t.rendered for t in turns]),
                          slots, line)
