"""The chat's side of memory, part of `TurnEngine`: automatic recall before a turn, the index
drain after it, and memory warnings shown once per session.

A mixin so that `turn.py` keeps the turn itself (prepare, query, record) while everything that
talks to the memory service off the event loop lives here; it uses the engine's `config`,
`memory`, `stats`, `tools`, `log`, `instance` and the two fields set in its `__init__`
(`_memory_notes_shown`, `_drainer`).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MnemaraError
from ..lock import InstanceLock
from .events import Notice, Recalled

if TYPE_CHECKING:
    from ..config import Config
    from ..debuglog import DebugLog
    from ..instance import Instance
    from ..memory.service import MemoryService
    from .events import SessionStats
    from .tools import ToolContext


class MemoryBridge:
    config: "Config"
    memory: "MemoryService"
    stats: "SessionStats"
    tools: "ToolContext"
    log: "DebugLog"
    instance: "Instance"
    _memory_notes_shown: set[str]
    _drainer: "asyncio.Task[None] | None"

    def _recall_reserve(self) -> int:
        if self.config.recall != "auto" or not self.memory.enabled:
            return 0
        from ..memory.recall import budget_tokens
        return budget_tokens(self.config)

    async def _recall(self, text: str, emit: Callable[[Any], Any]) -> dict[str, Any] | None:
        """Automatic recall for this message: the recall block to store in the user's turn, or
        None. Runs in a worker thread; a memory failure is a notice, never a failed turn."""
        self.stats.last_recall = None
        self.tools.last_recall = None
        if self.config.recall != "auto" or not self.memory.enabled:
            return None
        from ..memory import recall
        from ..memory.service import MemoryUnavailable
        def work() -> Any:
            with self.memory.locked_store() as store:
                picked = recall.pick(self.memory, store, self.config, text)
                status = self.memory.status()
                if status.mode is not None or status.failing:  # the index is in use: show it
                    self.stats.memory = status
                return picked

        try:
            picked = await asyncio.to_thread(work)
        except (MemoryUnavailable, OSError, RuntimeError, ValueError) as exc:
            # LanceDB reports I/O and format trouble with these; the turn goes on without recall.
            await self._memory_note(f"recall skipped: {exc}", emit)
            self.log.write("recall_failed", error=f"{type(exc).__name__}: {exc}")
            return None
        if picked.note:
            await self._memory_note(f"memory: {picked.note}", emit)
        self.tools.last_recall = picked
        if picked.block is None:
            return None
        from ..views import recall_summary
        event = Recalled(picked.block["items"], picked.tokens, picked.mode, recall_summary(picked.block))
        self.stats.last_recall = event
        self.log.write("recall", ids=[i["id"] for i in picked.block["items"]], tokens=picked.tokens,
                       considered=picked.considered)
        await emit(event)
        return picked.block

    async def _memory_note(self, text: str, emit: Callable[[Any], Any]) -> None:
        """A memory warning, shown once per session (it would repeat every turn otherwise)."""
        if text in self._memory_notes_shown:
            return
        self._memory_notes_shown.add(text)
        await emit(Notice("warning", text))

    def drain_in_background(self, on_done: Callable[[], Any] | None = None, *,
                            warm: bool = False) -> None:
        """Index what the outbox holds in a worker thread (one at a time), so the next recall
        finds it indexed; `stats.memory` is refreshed after, then `on_done` runs. `warm` also
        opens the index and loads the embedder (the TUI does it after its first paint)."""
        if not self.memory.enabled or (self._drainer is not None and not self._drainer.done()):
            return

        def work() -> Any:
            from ..memory.recall import anything_to_recall
            with self.memory.locked_store() as store:
                if not anything_to_recall(self.memory, store):
                    # The whole history is in the window: nothing can be recalled yet, so the
                    # index (LanceDB, the embedder) need not be loaded. Recall drains the outbox
                    # before its first query, once something has left the window.
                    return None
            if warm:
                self.memory.warm()
            # Index writes hold the lock shared, like a turn; while a backup or an import holds
            # it, this drain is skipped (the outbox keeps the work for the next one).
            lock = InstanceLock(self.instance.root, self.instance.name, exclusive=False,
                                purpose="index drain")
            if not lock.try_acquire():
                return None
            try:
                # New window turns may wait for a larger write (memory/service.py, WINDOW_BATCH)
                report = self.memory.drain(hold=True)
                self.memory.feed_graph()  # the graph's queue (auto-edges): one bounded batch
            finally:
                lock.release()
            self.stats.memory = self.memory.status()
            return report

        async def drain() -> None:
            try:
                report = await asyncio.to_thread(work)
            except (OSError, RuntimeError, ValueError, MnemaraError) as exc:
                self.log.write("index_drain_failed", error=f"{type(exc).__name__}: {exc}")
            else:
                if report is not None and report.error:
                    self.log.write("index_drain_failed", error=report.error)
            if on_done is not None:
                on_done()

        self._drainer = asyncio.get_running_loop().create_task(drain())
