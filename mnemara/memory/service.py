"""The memory index as the rest of mnemara uses it: opened lazily, fed from the outbox, searched.

One `MemoryService` per process and instance. It holds its own SQLite connection (it runs in
worker threads, never on the event loop) and serialises its work with a lock. Opening the index
imports LanceDB (~2 s) and the embedder, so nothing opens it until memory is first used; a failure
to open is one line (`MemoryUnavailable`) and is retried on the next use, never cached.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterator, Sequence

from ..errors import MnemaraError
from ..index.atoms import Atom
from ..store.turns import TurnStore
from .outbox import Outbox, OutboxState
from .sources import for_index, iter_source_atoms, turn_atom

if TYPE_CHECKING:
    from ..config import Config
    from ..index.embedders import Embedder
    from ..index.lance import MemoryIndex, SearchResult
    from ..instance import Instance

DRAIN_BATCH = 2_000
OPTIMIZE_AFTER = 200  # atoms indexed in one drain that call for an optimize() at its end
# The chat's drains (the one after each turn, the one before each recall) let new turns that are
# still in the window wait until WINDOW_BATCH atoms (a message and its reply are two) are queued,
# then write them in one go. Why: LanceDB keeps native memory for every write, and more per write
# as the table grows (lance-format/lance#1983), so fewer, larger writes keep the session's index
# process small; and window turns can wait, since recall excludes what the window holds. Anything
# else queued (a note, a wiki section, a correction, a deletion, a turn that has left the window)
# is written at once, together with what waits; so is everything at close() and for every other
# caller of drain() and search(). Measured in the 2,000-turn soak (benchmarks/bench_soak.py,
# README), with the index process's replacement rule tightened to match (index/remote.py): the
# session ends 12-22 MB above turn 100 instead of 74 MB, with 57 index processes instead of 86.
# Ten atoms (five exchanges) stay below the 15-20 rows the default window holds, so new turns are
# written before they leave it and a turn leaving the window rarely forces a write.
WINDOW_BATCH = 10


def _release_freed_memory() -> None:
    """Hand memory freed after a batch of embeddings back to the system. glibc keeps freed heap
    pages for reuse; after a large batch that is ~50 MB the chat no longer needs."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


class MemoryUnavailable(MnemaraError):
    """Memory is turned off, or the index cannot be opened: one line saying why and what to do."""


@dataclass(frozen=True)
class DrainReport:
    indexed: int = 0
    deleted: int = 0
    error: str | None = None   # the failure that left operations in the outbox
    held: int = 0              # window turns left queued for a larger write (see WINDOW_BATCH)


@dataclass(frozen=True)
class MemoryStatus:
    enabled: bool
    pending: int               # operations waiting in the outbox
    failing: int
    last_error: str | None
    mode: str | None           # "hybrid" | "text" once the index is open, else None
    note: str | None           # why retrieval is full-text only, or that a reindex is needed
    batched: int = 0           # window turns waiting for a larger write: not a backlog, not in `pending`

    def line(self) -> str:
        if not self.enabled:
            return "memory off (rag_enabled is false)"
        parts = [f"memory {self.mode or 'not opened yet'}"]
        if self.pending:
            parts.append(f"{self.pending} to index" + (f", {self.failing} failing" if self.failing else ""))
        if self.note:
            parts.append(self.note)
        if self.failing and self.last_error:
            parts.append(f"last error: {self.last_error}")
        return "; ".join(parts)


class MemoryService:
    def __init__(self, instance: "Instance", config: "Config", *,
                 embedder: "Embedder | None | str" = "config", process: str = "inline") -> None:
        self.instance = instance
        self.config = config
        self._embedder_choice = embedder  # "config": build from config; else this object (or None)
        # "inline": LanceDB and the embedder in this process (short commands); "child": in a
        # child process replaced before LanceDB's retained memory adds up (long sessions; see
        # index/remote.py). `index.remote.index_process` picks it for a front end.
        self.process = process
        self._lock = threading.RLock()
        self._store: TurnStore | None = None
        self._index: "MemoryIndex | None" = None
        self._backfill_due = True  # atoms written while the embedder was down need vectors

    # --- plumbing ------------------------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.config.rag_enabled)

    def store(self) -> TurnStore:
        with self._lock:
            if self._store is None:
                self._store = TurnStore(self.instance.turns_path)
            return self._store

    @contextmanager
    def locked_store(self) -> Iterator[TurnStore]:
        """The service's own store connection, for writes from a worker thread."""
        with self._lock:
            yield self.store()

    def make_embedder(self) -> "Embedder | None":
        if self._embedder_choice != "config":
            return self._embedder_choice  # type: ignore[return-value]
        from ..index.embedders import make_embedder
        kind = self.config.rag_embedder
        if kind == "none":
            return None
        return make_embedder(kind, url=self.config.rag_embed_url, model=self.config.rag_embed_model)

    def index(self) -> "MemoryIndex":
        """The open index (opened on first use; a failure is retried next time)."""
        if not self.enabled:
            raise MemoryUnavailable("memory is turned off for this instance (rag_enabled is false)")
        with self._lock:
            if self._index is None:
                from ..index.embedders import EmbedderUnavailable
                try:
                    self._index = self._open_index()
                except EmbedderUnavailable as exc:
                    raise MemoryUnavailable(f"the embedder is unavailable: {exc}") from None
                except (OSError, RuntimeError, ValueError) as exc:
                    raise MemoryUnavailable(
                        f"cannot open the memory index at {self.instance.index_dir} "
                        f"({type(exc).__name__}: {exc}); `mnemara reindex` rebuilds it") from None
            return self._index

    def _open_index(self) -> "MemoryIndex":
        """Open the index in this process or in a child, as `self.process` says."""
        if self.process == "child":
            from ..index.remote import RemoteIndex
            if self._embedder_choice == "config":
                spec: tuple[Any, ...] = ("config", self.config.rag_embedder,
                                         self.config.rag_embed_url, self.config.rag_embed_model)
            else:
                spec = ("object", self._embedder_choice)
            return RemoteIndex.open(self.instance.index_dir, spec)  # type: ignore[return-value]
        from ..index.lance import MemoryIndex
        return MemoryIndex.open(self.instance.index_dir, self.make_embedder())

    def _drop_index(self) -> None:
        """Forget the open index; a child process serving it exits."""
        index, self._index = self._index, None
        close = getattr(index, "close", None)  # RemoteIndex: stop its child
        if close is not None:
            close()

    def close(self) -> None:
        """End the session's use: what waits for a larger write is written now (a session
        leaves nothing behind that it could have indexed), then the index is let go."""
        with self._lock:
            self._write_held()
            if self._store is not None:
                self._store.close()
                self._store = None
            self._drop_index()

    def _write_held(self) -> None:
        """Drain everything at close, if the index is open (opening it just for this would cost
        seconds at exit; the outbox keeps the work for the next session or command either way).
        Under the instance lock, shared, like the chat's drains; a backup or an import holding it
        leaves the work queued. Failures leave it queued too: closing never raises for them."""
        if not self.enabled or self._index is None or self._store is None:
            return
        if Outbox(self._store.conn).state().pending == 0:
            return
        from ..lock import InstanceLock
        lock = InstanceLock(self.instance.root, self.instance.name, exclusive=False,
                            purpose="index drain")
        try:
            if not lock.try_acquire():
                return
            self.drain()
        except (MnemaraError, OSError, RuntimeError, ValueError):
            pass  # still queued: drained by the next session, recall or reindex
        finally:
            lock.release()

    def warm(self) -> None:
        """Open the index and load the embedder now, so the first recall does not wait for them."""
        with self._lock:
            index = self.index()
            warm_child = getattr(index, "warm", None)
            if warm_child is not None:
                # A child process (index/remote.py) loads its model and search caches over
                # there; this process never receives a vector (nor imports numpy for one).
                warm_child()
                if index.text_only_reason() is None:
                    self._backfill(index)
                return
            if index.embedder is not None and index.needs_reindex is None:
                from ..index.embedders import EmbedderUnavailable
                try:
                    index.embedder.embed(["warm up"])
                except EmbedderUnavailable:
                    return  # the index says so on the first search (full-text only)
                self._backfill(index)

    # --- the outbox ----------------------------------------------------------------------------
    def feed_graph(self) -> None:
        """Apply a bounded batch of the graph's outbox (auto-edges, mnemara/graph/feed.py), on
        a connection of its own so recall never waits for it. A graph that cannot be opened
        keeps its queue and fails nothing here."""
        from ..graph.feed import feed
        feed(self.instance, self.config)

    def drain(self, limit: int = DRAIN_BATCH,
              progress: Callable[[int, int], None] | None = None, *,
              hold: bool | Collection[str] = False) -> DrainReport:
        """Apply what the outbox holds to the index. A failure leaves it queued for a retry.
        `progress(done, total)` is called after each batch.

        `hold` lets new window turns wait for a larger write (WINDOW_BATCH): True for the chat's
        drain after a turn (any window turn may wait), a set of atom ids for a search that
        excludes them anyway (only those may wait). False, the default, writes everything."""
        if not self.enabled:
            return DrainReport()
        with self._lock:
            store = self.store()
            outbox = Outbox(store.conn)
            if hold is not False:
                held = self._may_wait(store, outbox, hold)
                if held is not None:
                    return DrainReport(held=held)
            total = DrainReport()
            expected = outbox.state().pending if progress else 0
            while True:
                items = outbox.take(limit)
                if not items:
                    return total
                try:
                    index = self.index()
                except MemoryUnavailable as exc:
                    outbox.failed(items, str(exc))
                    return DrainReport(total.indexed, total.deleted, str(exc))
                upserts, deletes = self._resolve(store, items)
                upserts = [for_index(a, self.config) for a in upserts]  # secrets never indexed
                try:
                    index.upsert(upserts)
                    index.delete(deletes)
                except (OSError, RuntimeError, ValueError) as exc:
                    # LanceDB surfaces I/O and format problems as these; the writes stay queued.
                    error = f"indexing failed ({type(exc).__name__}: {exc})"
                    outbox.failed(items, error)
                    return DrainReport(total.indexed, total.deleted, error)
                outbox.done(items)
                self._backfill(index)
                total = DrainReport(total.indexed + len(upserts), total.deleted + len(deletes))
                _release_freed_memory()
                if progress:
                    progress(total.indexed + total.deleted, max(expected, total.indexed + total.deleted))
                if len(items) < limit:
                    if total.indexed >= OPTIMIZE_AFTER:
                        # Rows added since the last optimize are searched without the full-text
                        # index: after a large batch, bring it up to date now (~50 ms).
                        self._optimize(index)
                    return total

    @staticmethod
    def _waiting(store: TurnStore, ops: Sequence[tuple[str, str, bool]],
                 hold: bool | Collection[str]) -> int | None:
        """How many of `ops` are window turns that may wait, or None when one of them may not
        (which makes the drain write them all now).

        A turn may wait while it is in the window (recall excludes the window, so its absence
        from the index changes no candidate; only BM25's corpus statistics lack those few
        turns until they are written) and more than SEARCH_REACH turns after the newest
        archived one: an archived turn's full-text entry includes the turns up to SEARCH_REACH
        after it (index/fusion.py), and it must hold them as soon as it can be recalled."""
        from ..index.fusion import SEARCH_REACH
        if not ops:
            return 0
        turn_ids: list[int] = []
        for atom_id, op, has_atom in ops:
            if (op != "upsert" or has_atom or not atom_id.startswith("turn:")
                    or not atom_id[5:].isdigit() or (hold is not True and atom_id not in hold)):
                return None
            turn_ids.append(int(atom_id[5:]))
        newest_archived = store.conn.execute("SELECT max(id) FROM archive").fetchone()[0]
        if newest_archived is not None and min(turn_ids) <= newest_archived + SEARCH_REACH:
            return None
        marks = ",".join("?" * len(turn_ids))
        in_window = store.conn.execute(f"SELECT count(*) FROM turns WHERE id IN ({marks})",
                                       turn_ids).fetchone()[0]
        return len(turn_ids) if in_window == len(turn_ids) else None

    def _may_wait(self, store: TurnStore, outbox: Outbox, hold: bool | Collection[str]) -> int | None:
        """The number of queued operations this drain leaves for a larger write, or None when
        it must write everything now: WINDOW_BATCH or more are due, or one of them may not
        wait (`_waiting`)."""
        ops = outbox.due_ops(WINDOW_BATCH - 1)
        if ops is None:
            return None
        if hold is not True and not isinstance(hold, (set, frozenset)):
            hold = frozenset(hold)
        return self._waiting(store, ops, hold)

    @staticmethod
    def _resolve(store: TurnStore, items: Sequence[Any]) -> tuple[list[Atom], list[str]]:
        """Turn the queued operations into atoms to write and ids to delete."""
        superseded = {r[0] for r in store.conn.execute("SELECT atom_id FROM superseded")}
        upserts: list[Atom] = []
        deletes: list[str] = []
        for item in items:
            if item.op == "delete":
                deletes.append(item.atom_id)
            elif item.atom is not None:
                upserts.append(item.atom)
            elif item.atom_id.startswith("turn:"):
                found = store.get_any(int(item.atom_id[5:]))
                atom = turn_atom(found[0]) if found else None
                if atom is not None:
                    upserts.append(Atom(**{**atom.__dict__, "superseded": atom.id in superseded}))
                elif found is None or found[0].status != "pending":
                    deletes.append(item.atom_id)  # failed, emptied or purged
                # a pending turn is indexed when it completes (that update queues it again)
        return upserts, deletes

    @staticmethod
    def _optimize(index: "MemoryIndex") -> None:
        try:
            index.optimize()
        except (OSError, RuntimeError, ValueError):
            pass  # searches stay correct, only slower; the next optimize tries again

    def _backfill(self, index: "MemoryIndex") -> None:
        """Give vectors to atoms stored full-text only while the embedder was down, once it
        works again (checked once per session and after each outage, not on every write)."""
        if index.text_only_reason() is not None:
            self._backfill_due = True
            return
        if self._backfill_due:
            try:
                index.backfill_vectors()
                self._backfill_due = False
            except (OSError, RuntimeError, ValueError):
                pass  # LanceDB trouble: the atoms keep full-text search; tried again next drain

    def status(self) -> MemoryStatus:
        """Cheap: reads the outbox; reports the index's mode only if it is already open."""
        if not self.enabled:
            return MemoryStatus(False, 0, 0, None, None, None)
        with self._lock:
            store = self.store()
            outbox = Outbox(store.conn)
            state: OutboxState = outbox.state()
            mode = note = None
            if self._index is not None:
                note = self._index.text_only_reason()
                mode = "text" if note else "hybrid"
            # Window turns waiting for a larger write are not a backlog: not shown as "to index".
            batched = 0
            if 0 < state.pending < WINDOW_BATCH and not state.failing:
                batched = self._may_wait(store, outbox, True) or 0
            return MemoryStatus(True, state.pending - batched, state.failing, state.last_error,
                                mode, note, batched)

    # --- retrieval -----------------------------------------------------------------------------
    def search(self, query: str, *, k: int = 10, kinds: Sequence[str] | None = None,
               since: str | None = None, until: str | None = None,
               exclude_ids: Collection[str] = (), now: datetime | None = None,
               config: "Config | None" = None) -> "SearchResult":
        """Drain first (a note written a moment ago is found), then hybrid retrieval, its hits
        re-ranked by the graph signal (graph_recall_weight). Only what the search excludes
        anyway (recall: the window) may wait for a larger write. Every retrieval goes through
        here: automatic recall, rag_query, `mnemara recall`, the memory browser. `config`: the
        caller's, for the graph signal's weight (default: the service's)."""
        from ..graph.signal import lift_for_recall
        with self._lock:
            report = self.drain(hold=exclude_ids if exclude_ids else False)
            self._backfill(self.index())
            result = self.index().search(query, k=k, kinds=kinds, since=since, until=until,
                                         exclude_ids=exclude_ids, now=now)
            result.hits = lift_for_recall(self.instance, config or self.config, query, result.hits,
                                          self.store().conn)
            if report.error and not result.note:
                result.note = f"some recent memory is not indexed yet: {report.error}"
            return result

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the index from the sources with the configured embedder."""
        from ..index.embedders import EmbedderUnavailable
        with self._lock:
            store = self.store()
            outbox = Outbox(store.conn)
            covered = outbox.last_seq()  # what was queued before the sources are read
            atoms = list(iter_source_atoms(self.instance, store, self.config))
            self._drop_index()  # a child serving the old table must not outlive its drop
            index = None
            try:
                index = self._open_index()
                index.rebuild(atoms, progress)
            except EmbedderUnavailable as exc:
                raise MemoryUnavailable(f"the embedder is unavailable, nothing was rebuilt: {exc}") from None
            except (OSError, RuntimeError, ValueError) as exc:
                raise MemoryUnavailable(f"rebuilding the index failed ({type(exc).__name__}: {exc})") from None
            finally:
                self._index = index
                self._drop_index()  # reopen: the embedder recorded in the index changed
            outbox.clear(covered)  # the rebuild took it all in
            return len(atoms)
