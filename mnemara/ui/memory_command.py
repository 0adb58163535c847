"""`/memory`: what mnemara remembers, for the REPL and the TUI alike.

    /memory          the count of each tab (notes, wiki, slots, archive, recalls) and the newest
                     few entries of each; the TUI opens the memory browser instead (also Ctrl+O)
    /memory QUERY    the hybrid search recall uses, each hit with kind, source, time, score and
                     the signals that matched; the TUI opens the browser on those hits

The outcome's view is "memory" ({query, found} for a search), so the TUI opens its screen and
the REPL prints the text. The data side is `ops/memory_browser.py`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..errors import MnemaraError
from ..ops import memory_browser as browser
from .commands import Outcome, command, display_width

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine


@command("memory", "/memory [QUERY]",
         "Memory browser: notes, wiki, slots, archive, recalls (TUI: a screen, Ctrl+O); with "
         "QUERY, search memory as recall does.")
async def _memory(engine: "TurnEngine", arg: str) -> Outcome:
    width = display_width()
    if not arg:
        try:
            text = browser.summary_text(engine.instance, engine.store, engine.config, width)
        except MnemaraError as exc:  # a damaged store, an unreadable wiki: its one line
            return Outcome(f"memory: {exc}", "error")
        return Outcome(text, view="memory", data={"query": "", "found": None})
    try:
        # The index may open now (seconds on first use): never on the event loop.
        found = await asyncio.to_thread(browser.search, engine.memory, arg)
    except MnemaraError as exc:
        return Outcome(f"memory search: {exc}", "error")
    return Outcome(browser.hits_text(found, width), view="memory",
                   data={"query": arg, "found": found})
