"""What mnemara remembers, as the memory browser shows it: the data side of `/memory`.

Five listings (notes by day, wiki pages, slots, the archive, recent recalls), the hybrid search
recall uses, the full text of one entry, and the two changes the browser makes besides pinning a
turn back (`ops/unarchive.py`): a wiki page saved through the wiki writer (so it is re-indexed by
section) and a note superseded through the correction path the model's `update_memory` uses.

Shared by the TUI's screen and the REPL's text form of `/memory`; no UI imports. Text here is
as stored: the front ends make it inert before it reaches a terminal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import MnemaraError
from ..termsafe import one_line

if TYPE_CHECKING:
    from ..config import Config
    from ..index.atoms import Hit
    from ..instance import Instance
    from ..memory.service import MemoryService
    from ..store.turns import Turn, TurnStore

TABS = ("notes", "wiki", "slots", "archive", "recalls")
TAB_TITLES = {"notes": "Notes", "wiki": "Wiki", "slots": "Slots", "archive": "Archive",
              "recalls": "Recalls", "search": "Search"}
ARCHIVE_SHOWN = 200   # newest archived turns listed; search reaches the rest
RECALLS_SHOWN = 50    # newest turns with a recall block listed
SEARCH_K = 20         # hits a search returns
SUMMARY_NEWEST = 3    # items per listing in the REPL's summary
SIGNAL_SHORT = {"text": "txt", "vector": "vec", "time": "time", "when": "when", "neighbour": "nbr",
                "words": "wrd"}
RECALL_MARK = '"type": "recall"'  # how a recall block starts in a turn's stored JSON
_TURN_COLUMNS = ("id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd,"
                 " status, pinned")


@dataclass(frozen=True)
class Entry:
    """One row of a listing or of the search results."""

    kind: str                 # note | wiki | slot | turn | recall | manual | fact
    id: str                   # note:2026-05-01.md:14 · wiki:deploy/staging · slot:todo · turn:12 · recall:12
    time: str                 # ISO-8601 UTC as stored ("" when unknown)
    source: str               # where it lives: memory/2026-05-01.md:14, wiki/x.md, archive (budget), ...
    label: str                # the short column: category, page title, slot name, role, memories
    text: str                 # the whole text ("" for a wiki page until opened: `full_text` reads it)
    superseded: bool = False  # a note replaced by a correction: kept, never recalled
    score: float | None = None
    signals: dict[str, float] = field(default_factory=dict)
    turn_id: int | None = None
    slug: str | None = None   # wiki pages (and wiki search hits)

    @property
    def day(self) -> str:
        return self.time[:10]

    def signals_line(self, short: bool = False) -> str:
        """`text 0.62 · vector 0.41` (the full form) or `text+vec` (a table column)."""
        on = [(k, v) for k, v in self.signals.items() if v > 0]
        if short:
            return "+".join(SIGNAL_SHORT.get(k, k) for k, _ in on) or "-"
        return " · ".join(f"{k} {v:.2f}" for k, v in on) or "-"


@dataclass(frozen=True)
class Found:
    """A search: its hits, and how it ran (hybrid or full-text only, and why)."""

    query: str
    hits: list[Entry]
    mode: str
    note: str | None = None

    def how(self) -> str:
        text = "hybrid: full text + vectors" if self.mode == "hybrid" else "full-text only"
        return text + (f"; {self.note}" if self.note else "")


# --- the listings ---------------------------------------------------------------------------------

def notes(instance: "Instance", store: "TurnStore") -> list[Entry]:
    """Every memory note, newest first (so grouped by day, the newest day on top)."""
    from ..memory.notes import iter_notes
    from ..memory.sources import iso_utc, note_id
    superseded = _superseded(store)
    out = []
    for note in iter_notes(instance.memory_dir):
        ident = note_id(note.path, note.line)
        out.append(Entry("note", ident, iso_utc(note.at), f"memory/{note.path.name}:{note.line}",
                         note.category, note.body, superseded=ident in superseded))
    out.sort(key=lambda e: (e.time, e.id), reverse=True)
    return out


def wiki_pages(instance: "Instance") -> list[Entry]:
    from ..memory.wiki import Wiki
    return [Entry("wiki", f"wiki:{e.slug}", e.updated_at, f"wiki/{e.slug}.md",
                  e.title or "(no title)", "", slug=e.slug)
            for e in Wiki(instance.wiki_dir).list()]


def slots(store: "TurnStore", config: "Config") -> list[Entry]:
    from ..memory.slots import SlotBook
    return [Entry("slot", f"slot:{name}", v.created_at, f"slot, {v.action} by {v.author}", name, v.text)
            for name, v in SlotBook(store, config).current().items()]


def archive(store: "TurnStore", limit: int = ARCHIVE_SHOWN) -> list[Entry]:
    """The newest archived turns, newest first."""
    from ..store.turns import Turn
    rows = store.conn.execute(f"SELECT {_TURN_COLUMNS}, archived_at, archive_reason FROM archive"
                              " ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    out = []
    for row in rows:
        try:
            turn = Turn.from_row(row)
        except (ValueError, TypeError, KeyError):  # a changed byte on disk: say so, list the rest
            out.append(Entry("turn", f"turn:{row['id']}", row["created_at"],
                             f"archive ({row['archive_reason']})", row["role"],
                             "(this turn cannot be read: `mnemara doctor` checks the store)",
                             turn_id=row["id"]))
            continue
        out.append(Entry("turn", f"turn:{turn.id}", turn.created_at,
                         f"archive ({row['archive_reason']})", turn.role, _turn_preview(turn),
                         turn_id=turn.id))
    return out


def recalls(store: "TurnStore", limit: int = RECALLS_SHOWN) -> list[Entry]:
    """The newest turns (window or archive) that carried a recall block, newest first: what
    automatic recall brought back, and why. Each table is walked newest first and stops at
    `limit` matches, so a large archive is not read through."""
    import json

    from ..views import recall_item_label
    rows = []
    for table, place in (("turns", "window"), ("archive", "archive")):
        rows += [(place, r) for r in store.conn.execute(
            f"SELECT id, content, created_at FROM {table} WHERE instr(content, ?)"
            " ORDER BY id DESC LIMIT ?", (RECALL_MARK, limit))]
    rows.sort(key=lambda pr: pr[1]["id"], reverse=True)
    out = []
    for place, row in rows[:limit]:
        try:
            blocks = json.loads(row["content"])
        except ValueError:
            continue  # a damaged row: the store reports it where it reads turns
        items = [i for b in blocks if b.get("type") == "recall" for i in b.get("items") or []]
        if not items:
            continue
        names = ", ".join(recall_item_label(i) for i in items)
        out.append(Entry("recall", f"recall:{row['id']}", row["created_at"],
                         f"turn #{row['id']} ({place})",
                         f"{len(items)} memor{'y' if len(items) == 1 else 'ies'}: {names}",
                         _recall_text(items), turn_id=row["id"]))
    return out


def listing(tab: str, instance: "Instance", store: "TurnStore", config: "Config") -> list[Entry]:
    if tab == "notes":
        return notes(instance, store)
    if tab == "wiki":
        return wiki_pages(instance)
    if tab == "slots":
        return slots(store, config)
    if tab == "archive":
        return archive(store)
    if tab == "recalls":
        return recalls(store)
    raise ValueError(f"no memory tab {tab!r}")


def counts(instance: "Instance", store: "TurnStore", config: "Config") -> dict[str, int]:
    """How many entries each tab holds: the archive in full, the recalls as listed (at most
    RECALLS_SHOWN: counting them all would read every stored turn; `count_text` shows "50+")."""
    from ..memory.notes import iter_notes
    return {"notes": sum(1 for _ in iter_notes(instance.memory_dir)),
            "wiki": len(wiki_pages(instance)), "slots": len(slots(store, config)),
            "archive": store.archived_count(), "recalls": len(recalls(store))}


def count_text(tab: str, n: int) -> str:
    """`1,234`, or `50+` for a tab whose count stops at what is listed."""
    return f"{n:,}+" if tab == "recalls" and n >= RECALLS_SHOWN else f"{n:,}"


# --- search ----------------------------------------------------------------------------------------

def search(service: "MemoryService", query: str, k: int = SEARCH_K) -> Found:
    """The hybrid retrieval recall uses (through the ops layer), superseded entries included as
    the index returns them. Blocking: opens the index on first use (run it in a thread)."""
    from .memory import recall
    query = query.strip()
    if not query:
        raise MnemaraError("type something to search for")
    result = recall(service, [query], k=k)[0]
    return Found(query, [hit_entry(h) for h in result.hits], result.mode, result.note)


def hit_entry(hit: "Hit") -> Entry:
    """A search hit as an entry; its `source` says where it is without repeating its kind
    (`#412`, `deploy/staging#2`, `2026-05-01.md:14`)."""
    a = hit.atom
    rest = a.id.partition(":")[2]
    if a.kind == "turn":
        source, label = f"#{a.turn_id}", a.role
    else:
        source, label = rest, a.category
    slug = rest.partition("#")[0] if a.kind == "wiki" else None
    return Entry(a.kind, a.id, a.created_at, source, label, a.text, superseded=a.superseded,
                 score=hit.score, signals=dict(hit.signals), turn_id=a.turn_id, slug=slug)


# --- one entry in full ----------------------------------------------------------------------------

def where_turn(store: "TurnStore", turn_id: int) -> str | None:
    """"window" or "archive" for a stored turn; None when there is no such turn."""
    found = store.get_any(turn_id)
    return found[1] if found else None


def full_text(instance: "Instance", store: "TurnStore", entry: Entry, width: int = 100) -> str:
    """Everything the entry holds, as stored (the front end makes it inert)."""
    if entry.kind == "turn" and entry.turn_id is not None:
        from ..store.window_edits import stripped_outputs
        from ..views import format_turn
        found = store.get_any(entry.turn_id)
        if found is None:
            return entry.text + "\n\n(this turn is no longer stored)"
        turn, where = found
        return f"[{where}] " + format_turn(turn, width) + stripped_outputs(turn)
    if entry.kind == "wiki" and entry.slug:
        from ..memory.wiki import Wiki, WikiError
        try:
            return Wiki(instance.wiki_dir).read(entry.slug).text
        except WikiError as exc:
            return f"{entry.text}\n\n({exc})" if entry.text else str(exc)
    if entry.kind == "note":
        from ..memory.writes import MemoryWriteError, find_atom
        try:  # from its file: a search hit holds the index's (redacted) copy
            text = find_atom(instance, store, entry.id).text
        except MemoryWriteError:
            text = entry.text
        by = store.conn.execute("SELECT by_id, reason FROM superseded WHERE atom_id = ?",
                                (entry.id,)).fetchone()
        if by is not None:
            why = f" ({by['reason']})" if by["reason"] else ""
            return f"{text}\n\n[superseded by {by['by_id']}{why}]"
        return text
    return entry.text


# --- the browser's changes --------------------------------------------------------------------------

def save_wiki(instance: "Instance", store: "TurnStore", config: "Config", slug: str, text: str) -> str:
    """Replace a wiki page by `text` through the wiki writer (secrets redacted, sections queued
    for the index in the same transaction); the sentence to show."""
    from .memory import wiki_write
    if not text.strip():
        raise MnemaraError(f"wiki page {slug!r} not saved: the text is empty")
    page = wiki_write(instance, slug, text, "replace", store=store, config=config)
    return (f"saved wiki page {page.slug} ({len(page.text.encode('utf-8')):,} bytes); "
            "it is re-indexed by section")


def supersede_note(instance: "Instance", store: "TurnStore", config: "Config", note_id: str,
                   text: str, reason: str = "") -> str:
    """Correct a note the way the model's update_memory does: the correction is a new note, the
    old one is kept, marked superseded and no longer recalled. The sentence to show."""
    from ..memory.writes import MemoryWriteError, supersede
    if not text.strip():
        raise MnemaraError("the correction is empty; nothing was changed")
    try:
        old, new_id = supersede(instance, store, config, note_id, text, reason)
    except MemoryWriteError as exc:
        raise MnemaraError(str(exc)) from None
    return f"saved the correction as {new_id}; {old.id} is kept, marked superseded, no longer recalled"


# --- the REPL's text form -------------------------------------------------------------------------

def summary_text(instance: "Instance", store: "TurnStore", config: "Config", width: int = 100,
                 newest: int = SUMMARY_NEWEST) -> str:
    """`/memory` without the TUI: the count of each tab and its newest few entries."""
    n = counts(instance, store, config)
    names = (("notes", "note", "notes"), ("wiki", "wiki page", "wiki pages"),
             ("slots", "slot", "slots"), ("archive", "archived turn", "archived turns"),
             ("recalls", "turn with recalls", "turns with recalls"))
    head = " · ".join(f"{count_text(tab, n[tab])} {one if n[tab] == 1 else many}"
                      for tab, one, many in names)
    lines = [one_line(head, width)]
    for tab in TABS:
        entries = listing(tab, instance, store, config)[:newest]
        if not entries:
            continue
        lines.append(f"{TAB_TITLES[tab].lower()} (newest {len(entries)} of {count_text(tab, n[tab])}):"
                     if n[tab] > len(entries) else f"{TAB_TITLES[tab].lower()}:")
        lines.extend("  " + row_line(e, width - 2) for e in entries)
    lines.append(one_line("/memory QUERY searches it as recall does (the TUI opens a browser: Ctrl+O)",
                          width))
    return "\n".join(lines)


def row_line(entry: Entry, width: int) -> str:
    """One entry on one line: time, where, label and the start of its text."""
    when = entry.time.replace("T", " ").rstrip("Z")[:16]
    if entry.kind == "wiki":
        what = f"{entry.slug} · {entry.label}"
    elif entry.kind == "slot":
        what = f"{entry.label}: {entry.text}"
    elif entry.kind == "recall":
        what = f"{entry.source} · {entry.label}"
    elif entry.kind == "turn":
        what = f"#{entry.turn_id} {_role(entry.label)} · {entry.source} · {entry.text}"
    else:
        flag = " (superseded)" if entry.superseded else ""
        what = f"{entry.label}{flag} · {entry.text}"
    return one_line(f"{when} · {what}", width)


def hits_text(found: Found, width: int = 100) -> str:
    """`/memory QUERY` without the TUI: each hit with its kind, source, time, score and signals."""
    if not found.hits:
        return one_line(f"nothing in memory matches {found.query!r} ({found.how()})", width)
    lines = [one_line(f"{len(found.hits)} hit{'s' if len(found.hits) != 1 else ''} for "
                      f"{found.query!r} ({found.how()}):", width)]
    for n, hit in enumerate(found.hits, 1):
        flag = " · superseded" if hit.superseded else ""
        lines.append(f"{n:>2}. " + one_line(f"{hit.kind} {hit.source} · {hit.time} · score "
                                            f"{hit.score or 0:.2f} · {hit.signals_line()}{flag}",
                                            width - 4))
        lines.append("    " + one_line(hit.text, width - 4))
    return "\n".join(lines)


# --- helpers ------------------------------------------------------------------------------------

def _superseded(store: "TurnStore") -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT atom_id FROM superseded")}


def _role(role: str) -> str:
    from ..views import ROLE_LABEL
    return ROLE_LABEL.get(role, role)


def _turn_preview(turn: "Turn") -> str:
    if turn.text.strip():
        return turn.text
    from ..store.render import plain_text
    return plain_text(turn.blocks) or "(no text)"


def _recall_text(items: Iterable[dict[str, Any]]) -> str:
    """A recall block's memories, each with its score and the signals that found it."""
    parts = []
    for item in items:
        signals = " · ".join(f"{k} {v:.2f}" for k, v in (item.get("signals") or {}).items() if v) or "-"
        where = item.get("source") or item.get("id", "?")
        parts.append(f"{item.get('id', '?')} · {where} · {item.get('time', '')} · score "
                     f"{float(item.get('score') or 0):.2f} · {signals}\n{item.get('text', '')}")
    return "\n\n".join(parts)
