"""The memory index in a child process that is replaced before it grows: `RemoteIndex`.

Why: LanceDB's write path keeps native memory it never gives back (about 0.15 MB per write,
lance-format/lance#1983; capping its caches and reopening the table do not help; fewer malloc
arenas and trimming slow it, see CHILD_MALLOC_ARENAS). A chat session writes the index after every turn, so over a long session it would grow by
hundreds of MB. Here LanceDB and the embedder live in a child process (`python -m
mnemara.index.remote`) that the session talks to over a socket; after RECYCLE_AFTER_WRITES
writes, or once it has grown RECYCLE_GROWTH_MB past what it held after its first writes, the
child finishes the call in hand, exits (returning all its memory to the system) and a fresh one
takes over. The session process never imports LanceDB or loads the embedder's model.

`RemoteIndex` has the `MemoryIndex` methods the memory service uses (upsert, delete,
set_superseded, relocate, get, count, rebuild, backfill_vectors, optimize, search, text_only_reason, and
`embedder` / `needs_reindex`), so `MemoryService.index()` stays the one seam. Atoms, hits and
`SearchResult`s are dataclasses and cross the socket pickled; errors come back as the builtin
exception type they derive from (or `EmbedderUnavailable`), so the service's handlers for
`OSError`, `RuntimeError` and `ValueError` work unchanged and messages stay one line.

Lifecycle:
- the child starts on the first call (the chat warms it in a worker thread after its first
  paint), not at construction;
- a child that died (killed, crashed, out of memory) is found dead at the next call and replaced,
  and a call it died during is sent once more to a new one (requests are idempotent); a call
  that kills that one too raises `IndexProcessDied` (a RuntimeError: the outbox keeps the write
  queued, recall skips one turn with a notice);
- `close()` asks it to exit and waits (then kills). If the session dies without closing (SIGKILL),
  the child notices: its socket reaches end of file, and a watchdog thread sees its parent change
  (`getppid`), whichever comes first, even in the middle of a long write. It ignores SIGINT, so a
  Ctrl+C at the terminal interrupts the session's turn, not an index write in flight;
- only this child writes the index for its session, one call at a time (a lock here, the
  service's lock above it), and a recycled child has exited before the next one starts: the
  index directory never has two writers from one session. The instance lock is held by the
  session around each turn and drain, so it covers the child's work too; the child inherits no
  descriptor but its socket (close_fds), so it can never keep the session's flock alive.

Which process runs the index is the service's choice (`index_process` below, from the
`rag_index_process` config field): the TUI and the REPL use a child, short commands stay in
process (no spawn, no model loaded twice).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Collection, Iterable, Sequence

from .atoms import Atom

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .lance import MemoryIndex, SearchResult

# LanceDB's writes retain memory, and more per write as the table grows. So the child is replaced
# when it has grown RECYCLE_GROWTH_MB past its RSS after WARM_WRITES writes (by then the model,
# the table and the search caches are loaded, so their one-time cost never triggers a replacement
# by itself, which would replace every new child again), or after RECYCLE_AFTER_WRITES writes
# whatever its size. Each child costs ~2.5 s of CPU (LanceDB's import, the model) in the
# background drain after a turn. Measured in the 2,000-turn soak (README, benchmarks), where the
# chat writes new window turns ten atoms at a time (memory/service.py, WINDOW_BATCH): with
# glibc's default arenas and a trim after writes only, 15 MB after 3 writes ran 57 children and
# still peaked +92-103 MB over turn 100. With two arenas and a trim after every request (below,
# `serve`) the children grow far more slowly: 15 MB ran 32-38 children and peaked +20-31 MB;
# 25 MB runs 21 and peaks +21 MB, with less of the session's CPU spent starting children.
RECYCLE_AFTER_WRITES = 250
# glibc gives each thread that allocates its own malloc arena (up to 8 per core); LanceDB's many
# runtime threads then leave freed memory scattered over arenas it can't return. Two arenas
# (set in the child's environment, unless the user set their own) measured, for a fresh process
# writing and searching a 3,300-atom table: +110 MB instead of +160 after 12 writes, +126 instead
# of +215 after 60, at the same speed.
CHILD_MALLOC_ARENAS = "2"
RECYCLE_GROWTH_MB = 25.0
WARM_WRITES = 3
EXIT_WAIT_SECONDS = 10.0
PARENT_POLL_SECONDS = 0.5
WRITES = frozenset({"upsert", "delete", "set_superseded", "relocate", "rebuild", "backfill_vectors",
                    "optimize"})
CALLS = WRITES | {"get", "count", "search"}

EmbedderSpec = tuple[Any, ...]  # ("config", kind, url, model) or ("object", an embedder or None)


class IndexProcessDied(RuntimeError):
    """The index child exited during a call; the next call starts a new one."""


def index_process(config: Any, front_end: str, embedder: Any = "config") -> str:
    """"child" or "inline" for a session's MemoryService.

    `rag_index_process` "auto" (the default) gives the long-lived chat front ends (TUI, REPL) a
    child and keeps everything else in process; "child" also gives `ask` one; "inline" never
    spawns. An embedder object handed in by code (tests, benchmarks) stays in process: it may
    not survive pickling.
    """
    setting = getattr(config, "rag_index_process", "auto")
    if setting == "inline" or embedder != "config":
        return "inline"
    if setting == "child" or front_end == "chat":
        return "child"
    return "inline"


def rss_mb(pid: int | str = "self") -> float | None:
    """Resident memory of a process in MB (Linux /proc), or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except (OSError, ValueError, IndexError):
        return None


# --- the session's side ---------------------------------------------------------------------------

class RemoteEmbedder:
    """The child's embedder as the service sees it: its name, and `embed` done over there (the
    service's warm-up); `dim` is asked of the child only when someone needs it."""

    def __init__(self, index: "RemoteIndex", name: str) -> None:
        self._index = index
        self.name = name

    @property
    def dim(self) -> int:
        return int(self._index._request(("dim",)))

    def embed(self, texts: Sequence[str]) -> Any:
        return self._index._request(("embed", list(texts)))


class RemoteIndex:
    """A `MemoryIndex` served by a child process, replaced after `recycle_writes` writes or
    `recycle_growth_mb` of growth (see the module docstring)."""

    def __init__(self, directory: Path, embedder: EmbedderSpec, *,
                 recycle_writes: int | None = None,
                 recycle_growth_mb: float | None = None) -> None:
        self.directory = Path(directory)
        self._spec = embedder
        # the module's limits as they are when the index opens (the soak benchmark varies them)
        self.recycle_writes = RECYCLE_AFTER_WRITES if recycle_writes is None else recycle_writes
        self.recycle_growth_mb = RECYCLE_GROWTH_MB if recycle_growth_mb is None else recycle_growth_mb
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: "Connection | None" = None
        self._state: dict[str, Any] = {}
        self._writes = 0                   # by the current child
        self._baseline: float | None = None
        self.started = 0                   # children started so far (for the soak benchmark)
        self.recycled = 0                  # ... of which replaced for their growth

    @classmethod
    def open(cls, directory: Path, embedder: EmbedderSpec, **limits: Any) -> "RemoteIndex":
        """Start the child and open the index there; raises what `MemoryIndex.open` raised."""
        index = cls(directory, embedder, **limits)
        with index._lock:
            index._ensure()
        return index

    # -- MemoryIndex's surface -----------------------------------------------------------------

    @property
    def embedder(self) -> RemoteEmbedder | None:
        name = self._state.get("embedder")
        return None if name is None else RemoteEmbedder(self, name)

    @property
    def needs_reindex(self) -> str | None:
        return self._state.get("needs_reindex")

    @property
    def pid(self) -> int | None:
        """The running child's process id (None between children)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def text_only_reason(self) -> str | None:
        # The child's answer as of its last reply: it only changes during a call.
        return self._state.get("text_only")

    # Empty writes are no-ops in MemoryIndex: skipped here, they cost no round trip and do not
    # count toward the recycle.
    def upsert(self, atoms: Sequence[Atom]) -> None:
        if atoms:
            self._call("upsert", list(atoms))

    def delete(self, ids: Collection[str]) -> None:
        if ids:
            self._call("delete", list(ids))

    def set_superseded(self, ids: Collection[str], flag: bool = True) -> None:
        if ids:
            self._call("set_superseded", list(ids), flag)

    def relocate(self, places: dict[str, tuple[str, int]]) -> list[str]:
        return self._call("relocate", dict(places)) if places else []  # type: ignore[no-any-return]

    def get(self, ids: Sequence[str]) -> list[Atom]:
        return self._call("get", list(ids))  # type: ignore[no-any-return]

    def count(self) -> int:
        return int(self._call("count"))

    def rebuild(self, atoms: Iterable[Atom], progress: Callable[[int, int], None] | None = None) -> None:
        self._call("rebuild", list(atoms), progress=progress)

    def backfill_vectors(self, progress: Callable[[int, int], None] | None = None) -> int:
        return int(self._call("backfill_vectors", progress=progress))

    def optimize(self) -> None:
        self._call("optimize")

    def search(self, query: str, **kwargs: Any) -> "SearchResult":
        return self._call("search", query, **kwargs)  # type: ignore[no-any-return]

    def warm(self) -> None:
        """Load the embedder's model and read the search indexes in the child now, so the first
        recall does not wait for them (a model that fails is reported by the next search)."""
        self._request(("warm",))

    def close(self) -> None:
        """Ask the child to exit and wait for it (killed if it does not within a few seconds)."""
        with self._lock:
            self._stop()

    # -- plumbing --------------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, progress: Callable[[int, int], None] | None = None,
              **kwargs: Any) -> Any:
        with self._lock:
            result = self._request(("call", method, args, kwargs, progress is not None), progress)
            if method in WRITES:
                self._after_write()
            return result

    def _request(self, message: tuple[Any, ...],
                 progress: Callable[[int, int], None] | None = None) -> Any:
        """Send one request and return its answer. A child that died before or while serving it
        (killed between two turns: a SIGKILLed process can still take a request while its
        threads exit) is replaced and the request sent once more: every request is idempotent
        (writes are by id). A second death is an error."""
        with self._lock:
            for attempt in (1, 2):
                self._ensure()
                assert self._conn is not None
                try:
                    self._conn.send(message)
                except (BrokenPipeError, ConnectionResetError):
                    why = self._discard()
                    if attempt == 2:
                        raise IndexProcessDied(f"the memory index process {why}") from None
                    continue
                try:
                    return self._receive(message, progress)
                except IndexProcessDied:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    def _receive(self, message: tuple[Any, ...], progress: Callable[[int, int], None] | None) -> Any:
        assert self._conn is not None
        what = message[1] if message[0] == "call" else message[0]
        try:
            while True:
                reply = self._conn.recv()
                if reply[0] != "progress":
                    break
                if progress is not None:
                    progress(reply[1], reply[2])
        except (EOFError, OSError):
            why = self._discard()
            raise IndexProcessDied(f"the memory index process {why} during {what}; "
                                   "it restarts on the next use") from None
        except BaseException:
            # Interrupted mid-reply (Ctrl+C in the calling thread): the stream is out of step.
            self._discard(kill=True)
            raise
        self._state = reply[-1]
        if reply[0] == "err":
            raise _error(reply[1], reply[2])
        return reply[1]

    def _ensure(self) -> None:
        """A live child with the index open: the current one, or a new one if it is gone."""
        if self._proc is not None and self._proc.poll() is None and self._conn is not None:
            return
        if self._proc is not None:
            self._discard()  # found dead between calls: replaced, silently
        self._spawn()
        try:
            assert self._conn is not None
            self._conn.send(("open", str(self.directory), self._spec))
            self._receive(("open",), None)
        except BaseException:
            self._discard(kill=True)
            raise

    def _spawn(self) -> None:
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        env.setdefault("MALLOC_ARENA_MAX", CHILD_MALLOC_ARENAS)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "mnemara.index.remote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                # LanceDB logs from Rust to stderr, which would land on the chat's screen.
                stderr=subprocess.DEVNULL, env=env, close_fds=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._conn = Connection(ours.detach())
        self._writes = 0
        self._baseline = None
        self.started += 1

    def _after_write(self) -> None:
        """Count the write; replace the child when it has done enough of them or grown too much,
        and start the next one at once, so the next recall does not wait for it."""
        self._writes += 1
        rss = self._state.get("rss_mb")
        if self._baseline is None and self._writes >= WARM_WRITES:
            self._baseline = rss
        grown = (rss is not None and self._baseline is not None
                 and rss - self._baseline >= self.recycle_growth_mb)
        if self._writes >= self.recycle_writes or grown:
            self._stop()
            self.recycled += 1
            try:
                self._ensure()
                self.warm()
            except (OSError, RuntimeError, ValueError):
                pass  # the call that needs it next will say why

    def _stop(self) -> None:
        if self._proc is None:
            return
        if self._conn is not None and self._proc.poll() is None:
            try:
                self._conn.send(("exit",))
            except OSError:
                pass
        self._discard()

    def _discard(self, kill: bool = False) -> str:
        """Forget the child: close the socket (which also tells it to exit), reap it; returns
        how it ended, for messages."""
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if conn is not None:
            conn.close()
        if proc is None:
            return "is not running"
        if kill and proc.poll() is None:
            proc.kill()
        try:
            code = proc.wait(EXIT_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        if code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return f"exited (status {code})"


def _portable(exc: BaseException) -> tuple[str, tuple[Any, ...]]:
    """An exception as (builtin class name, args) that unpickles without LanceDB: the nearest
    builtin base of its type (LanceDB's errors derive from OSError, ValueError, RuntimeError)."""
    from .embedders import EmbedderUnavailable
    if isinstance(exc, EmbedderUnavailable):
        return "EmbedderUnavailable", (str(exc),)
    import builtins
    for cls in type(exc).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception):
            if isinstance(exc, OSError) and exc.errno is not None:
                return cls.__name__, (exc.errno, exc.strerror or str(exc),
                                      *([exc.filename] if exc.filename else []))
            name = cls.__name__ if getattr(builtins, cls.__name__, None) is cls else "RuntimeError"
            return name, (str(exc),)
    return "RuntimeError", (f"{type(exc).__name__}: {exc}",)


def _error(name: str, args: tuple[Any, ...]) -> Exception:
    if name == "EmbedderUnavailable":
        from .embedders import EmbedderUnavailable
        return EmbedderUnavailable(*args)
    import builtins
    cls = getattr(builtins, name, RuntimeError)
    try:
        return cls(*args) if isinstance(cls, type) and issubclass(cls, Exception) else RuntimeError(*args)
    except TypeError:
        return RuntimeError(str(args[-1]))


# --- the child's side -----------------------------------------------------------------------------

def _watch_parent(parent: int) -> None:
    """Exit as soon as the session is gone, even in the middle of a long call (its socket's end
    of file is only seen between calls). LanceDB commits a write atomically, so exiting between
    or during writes leaves the index consistent."""
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def _make_embedder(spec: EmbedderSpec) -> Any:
    if spec[0] == "object":
        return spec[1]
    _, kind, url, model = spec
    if kind == "none":
        return None
    from .embedders import make_embedder
    return make_embedder(kind, url=url, model=model)


def _state(index: "MemoryIndex | None") -> dict[str, Any]:
    if index is None:
        return {"rss_mb": rss_mb()}
    return {"embedder": index.embedder.name if index.embedder is not None else None,
            "needs_reindex": index.needs_reindex, "text_only": index.text_only_reason(),
            "rss_mb": rss_mb()}


def _release_freed_memory() -> None:
    try:
        import ctypes
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def serve(fd: int) -> None:
    """The child's loop: one request at a time until "exit" or the session's end of file."""
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the session's to handle
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True,
                     name="mnemara-parent-watch").start()
    conn = Connection(fd)
    index: "MemoryIndex | None" = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break  # the session closed its end or died
        op = message[0]
        if op == "exit":
            break
        try:
            result = _handle(message, index, conn)
            if op == "open":
                index, result = result, None
            reply: tuple[Any, ...] = ("ok", result)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller
            reply = ("err", *_portable(exc))
        # Give freed memory back after every request (~3 ms): left in glibc's free lists,
        # it shows as growth and brings the recycle early. After a write, before the reply,
        # whose RSS decides a recycle; after anything else, once the caller has its answer.
        write = op == "call" and message[1] in WRITES
        if write:
            _release_freed_memory()
        try:
            conn.send((*reply, _state(index)))
        except (OSError, ValueError):
            break
        if not write:
            _release_freed_memory()
    conn.close()
    os._exit(0)  # no interpreter teardown: LanceDB's threads have nothing left to finish


def _handle(message: tuple[Any, ...], index: "MemoryIndex | None", conn: "Connection") -> Any:
    op = message[0]
    if op == "open":
        from .lance import MemoryIndex
        return MemoryIndex.open(Path(message[1]), _make_embedder(message[2]))
    if index is None:
        raise RuntimeError("the memory index is not open")
    if op == "call":
        _, method, args, kwargs, wants_progress = message
        if method not in CALLS:
            raise ValueError(f"not an index call: {method!r}")
        if wants_progress:
            kwargs = {**kwargs, "progress": lambda done, total: conn.send(("progress", done, total))}
        return getattr(index, method)(*args, **kwargs)
    if op in ("embed", "dim", "warm"):
        from .embedders import EmbedderUnavailable
        if index.embedder is None and op != "warm":
            raise EmbedderUnavailable("no embedder configured")
        if op == "dim":
            return index.embedder.dim
        if op == "embed":
            return index.embedder.embed(message[1])
        if index.embedder is not None and index.needs_reindex is None:
            try:  # warm: load the model now, not at the next recall
                index.embedder.embed(["warm up"])
            except EmbedderUnavailable:
                pass  # the index says so on the next search
        # ... and the full-text and vector indexes: a new child's first search reads them cold
        index.search("warm up", k=1)
        # ... and the date parser (~0.3 s, and memory counted in the child's baseline, not as
        # growth): the first query or new atom with a calendar date would pay for it
        from .timephrase import warm_up
        warm_up()
        return None
    raise ValueError(f"unknown request {op!r}")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
