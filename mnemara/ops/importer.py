"""Import into an instance: a conversation kept elsewhere, or a `mnemara export` file; the turns
join the window and archive, and the memory index takes them in.

A file whose first record is an export header (`{"type": "header", "format": "mnemara-export",
...}`) is an export, imported losslessly into an empty instance by `import_export.py`. Any other
file is a conversation in JSON Lines, one turn per line, in conversation order:

    {"role": "user", "text": "how do I deploy?", "ts": "2026-01-02T10:00:00Z"}
    {"role": "assistant", "text": "Run make deploy.", "ts": "2026-01-02T10:00:05+01:00"}

`ts` is optional (ISO-8601; "Z" or an offset; a time without either is UTC; a turn without one
gets the time of the import). Blank lines are skipped; any other key is refused, so a typo such
as "txt" is caught instead of importing empty turns.

Every line is checked before anything is written: a bad line is one error naming FILE:LINE, and
the instance is left as it was. The turns are then written in one transaction (after any turns
the instance already has), the window is cut to its budget (the newest turns that fit stay, the
rest go to the archive), and the index outbox is drained. Indexing problems never undo the
import: what could not be indexed stays in the outbox for the next drain.

Both kinds write under the exclusive instance lock (a chat session's turn waits for the import,
and the import for the turn in flight); the indexing afterwards does not hold it.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Union

from ..errors import MnemaraError
from ..timestamps import parse_timestamp, shown as _shown

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..memory.service import MemoryService
    from .export_read import ExportBundle

ROLES = ("user", "assistant")
KEYS = ("role", "text", "ts")
# Outbox operations per index write while draining: the bar moves every few seconds with the
# local model (~65 turns/s on 2 cores), and 5,000 turns are 20 LanceDB versions (measured: 250 or
# 500 per write cost the same within 0.3 s).
INDEX_BATCH = 250


@dataclass(frozen=True)
class ImportedTurn:
    role: str
    text: str
    created_at: str | None  # "YYYY-MM-DDTHH:MM:SSZ", or None: the time of the import


@dataclass(frozen=True)
class ImportReport:
    source: str             # the file name as given ("<stdin>" for -)
    imported: int           # turns written
    in_window: int          # of those, still in the window
    archived: int           # of those, moved to the archive by the budget
    displaced: int          # turns the instance already had that the import pushed to the archive
    existing: int           # turns (window + archive) the instance held before the import
    indexed: int            # atoms the drain wrote to the index (0 with memory off)
    store_seconds: float    # reading, checking and writing the turns
    index_seconds: float
    note: str | None = None  # why indexing was partial or full-text only, or that memory is off
    kind: str = "conversation"  # or "export"
    notes: int = 0          # memory notes written (exports)
    wiki_pages: int = 0     # wiki pages written (exports)
    entries: int = 0        # manual index entries written (exports)

    @property
    def seconds(self) -> float:
        return self.store_seconds + self.index_seconds

    def line(self) -> str:
        s = "" if self.imported == 1 else "s"
        after = f" after {self.existing:,} existing turns" if self.existing else ""
        what = f"{self.imported:,} turn{s}"
        if self.kind == "export":
            what = (f"the export {self.source}: {what}, {self.notes:,} note{'s' if self.notes != 1 else ''}, "
                    f"{self.wiki_pages:,} wiki page{'s' if self.wiki_pages != 1 else ''}"
                    + (f", {self.entries:,} index entr{'ies' if self.entries != 1 else 'y'}"
                       if self.entries else ""))
            text = f"imported {what} ({self.in_window:,} in the window, {self.archived:,} archived)"
        else:
            text = (f"imported {what} from {self.source}{after}: "
                    f"{self.in_window:,} in the window, {self.archived:,} archived")
        if self.displaced:
            text += f" (and {self.displaced:,} older window turns archived to make room)"
        return text + f"; {self.indexed:,} indexed; {self.seconds:.1f} s"


# -- reading and checking -----------------------------------------------------------------------

def _parse_line(raw: bytes) -> ImportedTurn | None:
    """One turn from one line (None for a blank line); ValueError says what is wrong."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})") from None
    line = line.lstrip("\ufeff")  # a byte-order mark some editors put at the start of a file
    if not line.strip():
        return None
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object like {{\"role\": \"user\", \"text\": \"...\"}}, "
                         f"got a JSON {type(data).__name__}")
    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise ValueError(f"unknown key {_shown(unknown[0])}; a turn has only {', '.join(KEYS)}")
    if "role" not in data:
        raise ValueError("missing \"role\" (\"user\" or \"assistant\")")
    if data["role"] not in ROLES:
        raise ValueError(f"role must be \"user\" or \"assistant\", got {_shown(data['role'])}")
    if "text" not in data:
        raise ValueError("missing \"text\"")
    if not isinstance(data["text"], str):
        raise ValueError(f"\"text\" must be a string, got {type(data['text']).__name__}")
    if not data["text"].strip():
        raise ValueError("\"text\" is empty")
    created_at = None
    if data.get("ts") is not None:
        try:
            created_at = parse_timestamp(data["ts"])
        except ValueError as exc:
            raise ValueError(f"\"ts\" {exc}") from None
    return ImportedTurn(data["role"], data["text"], created_at)


def parse_conversation(data: bytes, name: str) -> list[ImportedTurn]:
    """Every turn of a JSONL conversation, or MnemaraError naming the first bad line."""
    turns: list[ImportedTurn] = []
    # JSON strings cannot hold a raw newline, so b"\n" always ends a record; "\r" before it is
    # whitespace to JSON.
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            turn = _parse_line(raw)
        except ValueError as exc:
            raise MnemaraError(f"{name}:{number}: {exc}; nothing was imported") from None
        if turn is not None:
            turns.append(turn)
    if not turns:
        raise MnemaraError(f"{name} holds no turns (expected JSON lines like "
                           "{\"role\": \"user\", \"text\": \"...\"}); nothing was imported")
    return turns


def read_source(path: str | Path) -> tuple[bytes, str]:
    """(bytes, name for messages) of a file, or of stdin for "-"."""
    if str(path) == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(path).read_bytes(), str(path)
    except FileNotFoundError:
        raise MnemaraError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise MnemaraError(f"{path} is a directory, not a conversation file") from None
    except OSError as exc:
        raise MnemaraError(f"cannot read {path}: {exc.strerror}") from None


# -- writing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Conversation:
    """A checked conversation file, ready to import."""

    source: str             # the file name as given ("<stdin>" for -)
    turns: list[ImportedTurn]
    read_seconds: float


Loaded = Union[Conversation, "ExportBundle"]


def load_conversation(path: str | Path) -> Loaded:
    """Read and check the file at `path` ("-": stdin): a JSONL conversation, or an export when
    its first record is an export header. MnemaraError names the first bad line. Touches no
    instance, so a caller can check a file before creating one."""
    from .export_read import is_export_header, parse_export
    started = time.perf_counter()
    data, name = read_source(path)
    first = next((line for line in data.split(b"\n", 50)[:50] if line.strip()), b"")
    if is_export_header(first):
        bundle = parse_export(data, name)
        bundle.read_seconds = time.perf_counter() - started
        return bundle
    turns = parse_conversation(data, name)
    return Conversation(name, turns, time.perf_counter() - started)


def import_conversation(instance: "Instance", config: "Config", path: str | Path, *,
                        progress: Callable[[int, int], None] | None = None,
                        service: "MemoryService | None" = None) -> ImportReport:
    """Import the conversation or export at `path` ("-": stdin); see the module docstring."""
    return import_turns(instance, config, load_conversation(path), progress=progress, service=service)


def import_turns(instance: "Instance", config: "Config", conversation: Loaded, *,
                 progress: Callable[[int, int], None] | None = None,
                 service: "MemoryService | None" = None) -> ImportReport:
    """Write a checked conversation (or export) into the instance, budget the window, index.

    `progress(done, total)` follows the indexing, the part that takes time. `service` is an
    already open memory service to drain with (one is opened and closed otherwise).
    """
    from ..lock import instance_lock
    from .export_read import ExportBundle
    from .import_export import finish_interrupted_import, write_export
    started = time.perf_counter()
    bundle = conversation if isinstance(conversation, ExportBundle) else None
    with instance_lock(instance, exclusive=True, purpose="import"):
        finish_interrupted_import(instance, locked=True)
        if bundle is not None:
            exported = write_export(instance, config, bundle)
            graph_note = None
            if bundle.graph is not None:  # model-made nodes and edges; notes' links come back too
                from .graph import import_record
                graph_note = import_record(instance, config, bundle.graph)
        else:
            ids, moved, before, existing = _write_conversation(instance, config, conversation)
    store_seconds = conversation.read_seconds + time.perf_counter() - started

    started = time.perf_counter()
    indexed, note = _index(instance, config, progress, service)
    graph_problem = _link_graph(instance, config)
    if graph_problem:
        note = f"{note}; {graph_problem}" if note else graph_problem
    index_seconds = time.perf_counter() - started
    if bundle is None:
        archived = sum(1 for i in ids if i in moved)
        return ImportReport(conversation.source, len(ids), len(ids) - archived, archived,
                            len(moved & before), existing, indexed, store_seconds, index_seconds, note)
    if graph_note:
        note = f"{note}; {graph_note}" if note else graph_note
    if exported.kept:
        kept = (f"{len(exported.kept)} file(s) appeared in the instance during the import and "
                f"were kept; the imported versions stay in {Path(exported.kept[0]).parent}")
        note = f"{note}; {kept}" if note else kept
    archived = sum(1 for t in bundle.turns if t["where"] == "archive") + len(exported.moved)
    return ImportReport(bundle.source, len(bundle.turns), len(bundle.turns) - archived, archived,
                        0, 0, indexed, store_seconds, index_seconds, note, kind="export",
                        notes=len(bundle.notes), wiki_pages=len(bundle.wiki),
                        entries=len(bundle.entries))


def _write_conversation(instance: "Instance", config: "Config",
                        conversation: Conversation) -> tuple[list[int], set[int], set[int], int]:
    """(ids written, ids the budget archived, ids held before, turns held before)."""
    from ..engine.prompt import read_role_doc
    from ..store.blocks import text_block
    from ..store.turns import TurnStore, utc_now
    from ..store.window import Budget

    now = utc_now()
    role_text = read_role_doc(config.role_doc_path).text
    with TurnStore(instance.turns_path, result_max_chars=config.tool_result_max_chars) as store:
        # One transaction: another process sees all the turns, already budgeted, or none.
        with store.transaction():
            existing = store.count() + store.archived_count()
            before = {r[0] for r in store.conn.execute("SELECT id FROM turns")}
            ids = [store.add_turn(t.role, [text_block(t.text)], created_at=t.created_at or now).id
                   for t in conversation.turns]
            # The window keeps as many of the newest turns as the budget allows; the role doc
            # is sent with every turn, so its tokens come off the room (as the engine does it).
            room = max(1, config.max_window_tokens - store.estimator.estimate(role_text))
            eviction = store.apply_budget(Budget(config.max_window_turns, room), reason="import")
        moved = set(eviction.ids) if eviction else set()
    return ids, moved, before, existing


def _index(instance: "Instance", config: "Config", progress: Callable[[int, int], None] | None,
           service: "MemoryService | None") -> tuple[int, str | None]:
    """Drain the outbox; (atoms indexed, a note when indexing was off, partial or text only)."""
    if not config.rag_enabled:
        return 0, ("memory is off (rag_enabled is false): the turns are not indexed for recall; "
                   "full-text `mnemara search` finds them")
    from ..memory.service import MemoryService
    own = service is None
    service = service or MemoryService(instance, config)
    try:
        report = service.drain(INDEX_BATCH, progress)
        if report.error:
            return report.indexed, (f"not everything was indexed ({report.error}); the rest stays "
                                    "queued and is indexed on the next use of memory")
        return report.indexed, _text_only_note(service)
    finally:
        if own:
            service.close()


def _link_graph(instance: "Instance", config: "Config") -> str | None:
    """Link what the import queued for the graph (people, projects, hosts the turns name), so
    recall's graph signal covers the imported turns at once rather than a batch per chat turn.
    A graph that cannot be opened keeps its queue (the chat links it later): a note, not a
    failure."""
    from ..graph import open_graph
    from ..graph.feed import drain
    from ..store.turns import TurnStore
    graph = open_graph(instance, config)
    if graph is None or not instance.turns_path.exists():
        return None
    with TurnStore(instance.turns_path) as store:
        report = drain(graph, store.conn, redact=bool(config.redact))
    if report.error:
        return (f"{report.pending:,} atom(s) not linked in the graph yet ({report.error}); "
                "the chat links them later, or `mnemara graph rebuild`")
    return None


def _text_only_note(service: "MemoryService") -> str | None:
    """Why the turns just indexed got no vectors, if they did not."""
    from ..index.embedders import EmbedderUnavailable
    from ..memory.service import MemoryUnavailable
    note = service.status().note
    if note:
        return note
    try:
        embedder = service.index().embedder
        if embedder is not None:
            # The index stores turns without vectors when the embedder fails; one probe tells.
            embedder.embed(["probe"])
    except EmbedderUnavailable as exc:
        return (f"indexed for full-text search only: the embedder is unavailable ({exc}); "
                "`mnemara reindex` adds the vectors once it works")
    except MemoryUnavailable as exc:
        return str(exc)
    return None
