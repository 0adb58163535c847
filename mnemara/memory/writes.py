"""Memory writes: every note, wiki page, manual entry and correction goes through here, and each
queues its index atoms in the index outbox in the same SQLite transaction as the write.

The store's write lock is held around the file write, so an outbox row exists exactly when its
write happened; a process killed between the file write and the commit leaves a note the index
has not seen, which `mnemara reindex` (a rebuild from the sources) picks up.
Callers pass an open `TurnStore`; nothing here imports LanceDB or an embedder.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..index.atoms import Atom
from ..store.turns import utc_now
from .notes import parse_notes, write_note_block
from .outbox import enqueue
from .sources import note_atom, note_id

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore
    from .wiki import WikiPage

WIKI_CATEGORY_PREFIX = "wiki/"


class MemoryWriteError(ValueError):
    """A write refused for a reason the writer can fix (bad id, empty text, ...): one line."""


@dataclass(frozen=True)
class NoteWritten:
    id: str
    path: Path
    line: int
    wiki: "WikiPage | None" = None  # the page a `wiki/<slug>` category also wrote


def write_note(instance: "Instance", store: "TurnStore", config: "Config", text: str,
               category: str = "note", payload: dict[str, Any] | None = None) -> NoteWritten:
    """Append a note to today's memory file and queue it for the index.

    A `wiki/<slug>` category also appends the text to that wiki page. With `redact` on (the
    default), secrets in the text and payload are replaced by markers before anything is written.
    """
    if config.redact:
        from ..redact import redact, redact_value
        text = redact(text)
        payload = redact_value(payload) if payload else payload
    wiki_page = None
    if category.startswith(WIKI_CATEGORY_PREFIX):
        slug = category[len(WIKI_CATEGORY_PREFIX):]
        wiki_page = write_wiki(instance, store, config, slug, text, mode="append")
    with store.transaction():
        path, line, _ = write_note_block(instance.memory_dir, text, category, payload)
        if config.rag_auto_index_memory:
            note = next(n for n in parse_notes(path) if n.line == line)
            enqueue(store.conn, "upsert", note_id(path, line), note_atom(note))
    return NoteWritten(note_id(path, line), path, line, wiki_page)


def write_wiki(instance: "Instance", store: "TurnStore", config: "Config", slug: str,
               content: str, mode: str = "replace") -> "WikiPage":
    """Write a wiki page and queue its sections (and the removal of sections it no longer has).
    With `redact` on, secrets in `content` are replaced by markers before it is written."""
    from .wiki import Wiki, WikiError, page_atoms
    if config.redact:
        from ..redact import redact
        content = redact(content)
    wiki = Wiki(instance.wiki_dir)
    try:
        before = len(page_atoms(wiki.read(slug)))
    except WikiError:
        before = 0  # a new page (a bad slug fails again, with its reason, in write)
    with store.transaction():
        page = wiki.write(slug, content, mode)
        if config.rag_auto_index_wiki:
            atoms = page_atoms(page)
            for atom in atoms:
                enqueue(store.conn, "upsert", atom.id, atom)
            for n in range(len(atoms) + 1, before + 1):
                enqueue(store.conn, "delete", f"wiki:{page.slug}#{n}")
    return page


def add_manual(store: "TurnStore", text: str, *, kind: str = "manual", source_path: str = "",
               category: str = "", redact: bool = True) -> Atom:
    """An entry the model (or a script) put into the index by hand; kept in turns.sqlite so a
    rebuild of the index keeps it. `redact` (the config's `redact`): secrets become markers
    before the entry is stored."""
    if not text.strip():
        raise MemoryWriteError("nothing to index: the text is empty")
    if redact:
        from ..redact import redact as redact_text
        text = redact_text(text)
    atom = Atom(id=f"{kind}:{secrets.token_hex(6)}", kind=kind, text=text.strip(),
                created_at=utc_now(), source=source_path, category=category)
    with store.transaction():
        store.conn.execute("INSERT INTO manual_atoms (id, atom, created_at) VALUES (?, ?, ?)",
                           (atom.id, json.dumps(atom.to_json(), ensure_ascii=False), atom.created_at))
        enqueue(store.conn, "upsert", atom.id, atom)
    return atom


def supersede(instance: "Instance", store: "TurnStore", config: "Config", old_id: str,
              text: str, reason: str = "") -> tuple[Atom, str]:
    """Replace a note or manual entry by a corrected one. The old one is kept, marked superseded,
    and no longer recalled. Returns (the old atom, the new atom's id)."""
    old = find_atom(instance, store, old_id)
    if old.superseded:
        raise MemoryWriteError(f"{old_id} was already superseded; update the newer entry instead")
    if config.redact:  # the reason is kept with the mark below and goes into the new note
        from ..redact import redact
        reason = redact(reason)
    if old.kind == "note":
        body = text.strip() + (f"\n\n(corrects {old_id}" + (f": {reason.strip()}" if reason.strip() else "") + ")")
        new_id = write_note(instance, store, config, body, old.category or "note").id
    else:
        new_id = add_manual(store, text, kind=old.kind, source_path=old.source,
                            category=old.category, redact=config.redact).id
    marked = Atom(**{**old.__dict__, "superseded": True})
    with store.transaction():
        store.conn.execute("INSERT OR REPLACE INTO superseded (atom_id, by_id, reason, at)"
                           " VALUES (?, ?, ?, ?)", (old_id, new_id, reason.strip() or None, utc_now()))
        if old.kind != "note":
            store.conn.execute("UPDATE manual_atoms SET atom = ? WHERE id = ?",
                               (json.dumps(marked.to_json(), ensure_ascii=False), old_id))
        enqueue(store.conn, "upsert", old_id, marked)
    return old, new_id


def find_atom(instance: "Instance", store: "TurnStore", atom_id: str) -> Atom:
    """A note or manual entry by id, read from its source (not the index)."""
    kind, _, rest = atom_id.partition(":")
    superseded = store.conn.execute("SELECT 1 FROM superseded WHERE atom_id = ?", (atom_id,)).fetchone()
    if kind == "note":
        name, _, line = rest.rpartition(":")
        path = instance.memory_dir / name
        if not line.isdigit() or Path(name).name != name or not path.is_file():
            raise MemoryWriteError(f"no note {atom_id!r}; note ids look like note:2026-05-01.md:14")
        for note in parse_notes(path):
            if note.line == int(line):
                atom = note_atom(note)
                return Atom(**{**atom.__dict__, "superseded": bool(superseded)})
        raise MemoryWriteError(f"no note starts at line {line} of {name}")
    row = store.conn.execute("SELECT atom FROM manual_atoms WHERE id = ?", (atom_id,)).fetchone()
    if row is None:
        raise MemoryWriteError(f"no note or index entry {atom_id!r}; only notes (note:...) and "
                               "entries added with rag_index can be updated")
    return Atom.from_json(json.loads(row[0]))


__all__ = ["MemoryWriteError", "NoteWritten", "add_manual", "find_atom", "supersede",
           "write_note", "write_wiki"]
