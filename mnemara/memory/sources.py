"""Memory atoms built from their sources: turns, notes, wiki pages and manual entries.

The index is derived data: everything in it can be rebuilt from these (`iter_source_atoms`).
Every atom enters the index through `for_index` (here for a rebuild, in the service's drain for
the outbox), which redacts secrets when the config's `redact` is on: a turn stays verbatim in
`turns.sqlite` while its indexed copy does not hold the API key pasted into it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..index.atoms import Atom
from ..store.render import plain_text
from ..timestamps import parse_timestamp
from .notes import Note, iter_notes

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import Turn, TurnStore

INDEXED_STATUSES = ("complete", "interrupted")  # pending turns are indexed when they finish


def iso_utc(stamp: str) -> str:
    """A note header's timestamp as `YYYY-MM-DDTHH:MM:SSZ` (an unreadable one kept as written)."""
    try:
        return parse_timestamp(stamp)
    except ValueError:
        return stamp


def turn_atom(turn: "Turn") -> Atom | None:
    """The atom of a stored turn, or None when the turn is not (or no longer) indexable."""
    if turn.status not in INDEXED_STATUSES:
        return None
    text = plain_text(turn.blocks)  # recall blocks excluded: they copy other atoms
    if not text.strip():
        return None
    return Atom(id=f"turn:{turn.id}", kind="turn", text=text, created_at=turn.created_at,
                turn_id=turn.id, role=turn.role)


def note_id(path: Path, line: int) -> str:
    return f"note:{Path(path).name}:{line}"


def note_atom(note: Note) -> Atom:
    return Atom(id=note_id(note.path, note.line), kind="note", text=note.body,
                created_at=iso_utc(note.at), source=f"memory/{note.path.name}", line=note.line,
                category=note.category)


def for_index(atom: Atom, config: "Config") -> Atom:
    """The atom as the index stores it: its text redacted when `config.redact` is on. The same
    atom always gives the same text (redaction is idempotent), so rewriting an atom is a no-op."""
    if not config.redact:
        return atom
    from ..redact import redact
    text = redact(atom.text)
    return atom if text is atom.text else Atom(**{**atom.__dict__, "text": text})


def iter_source_atoms(instance: "Instance", store: "TurnStore", config: "Config") -> Iterator[Atom]:
    """Every atom the index should hold, superseded ones marked, secrets redacted."""
    superseded = {r[0] for r in store.conn.execute("SELECT atom_id FROM superseded")}

    def mark(atom: Atom) -> Atom:
        atom = for_index(atom, config)
        if atom.id in superseded:
            return Atom(**{**atom.__dict__, "superseded": True})
        return atom

    for turn in store.iter_all():
        atom = turn_atom(turn)
        if atom is not None:
            yield mark(atom)
    if config.rag_auto_index_memory:
        active: set[str] = set()
        for note in iter_notes(instance.memory_dir):
            if note.body.strip():
                active.add(note_id(note.path, note.line))
                yield mark(note_atom(note))
        # Notes replay archived stay searchable (never recalled: see memory/archive.py); one
        # whose move was interrupted is still in its day file, and indexed from there.
        from .archive import archived_atom, iter_archived
        for entry in iter_archived(instance.memory_dir):
            if entry.original_id not in active and entry.note.body.strip():
                yield mark(archived_atom(entry))
    if config.rag_auto_index_wiki and instance.wiki_dir.is_dir():
        from .wiki import Wiki, page_atoms
        wiki = Wiki(instance.wiki_dir)
        for entry in wiki.list():
            for atom in page_atoms(wiki.read(entry.slug)):
                yield mark(atom)
    for (data,) in store.conn.execute("SELECT atom FROM manual_atoms ORDER BY created_at"):
        yield mark(Atom.from_json(json.loads(data)))
