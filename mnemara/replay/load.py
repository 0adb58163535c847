"""Replay's first phase: the memory atoms of the last `--days` days, read from their sources.

The sources, not the index, are the truth (the index may lag behind the outbox): notes from
`memory/*.md`, notes replay archived earlier (`memory/archive/`, so a second run sees the same
patterns as the first), the turns of the window and the archive, and the wiki's sections (not
clustered: they are what a pattern may already be covered by). Superseded notes are left out:
they were corrected, and their correction is loaded instead.

The period is whole UTC days: from midnight `days` days before today, so two runs on one day
read the same atoms (and write the same digest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from ..index.atoms import Atom
from ..memory.archive import ArchivedNote, archived_atom, iter_archived, text_digest
from ..memory.notes import iter_notes
from ..memory.sources import note_atom, note_id, turn_atom

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore

SELF_OBSERVATION = "self_observation"


@dataclass
class Loaded:
    """What replay works on."""

    since: str                                   # ISO-8601 UTC, the start of the period
    today: str                                   # YYYY-MM-DD (UTC), names the digest
    notes: list[Atom] = field(default_factory=list)       # active notes
    archived: list[Atom] = field(default_factory=list)    # archived earlier, kept for patterns
    turns: list[Atom] = field(default_factory=list)
    wiki: list[Atom] = field(default_factory=list)        # every section, whatever its age
    archived_entries: dict[str, ArchivedNote] = field(default_factory=dict)  # by original id
    interrupted: list[ArchivedNote] = field(default_factory=list)  # in the archive and still in a day file
    archived_turn_ids: set[int] = field(default_factory=set)  # turns that left the window
    superseded: set[str] = field(default_factory=set)

    @property
    def members(self) -> list[Atom]:
        """The atoms patterns are made of, oldest first."""
        return sorted([*self.notes, *self.archived, *self.turns], key=order)

    def counts(self) -> dict[str, int]:
        return {"notes": len(self.notes), "archived_notes": len(self.archived),
                "turns": len(self.turns), "wiki_sections": len(self.wiki)}


def order(atom: Atom) -> tuple[str, int, str, int]:
    """Oldest first; within one second, notes in file and line order, then turns in order.

    A note is placed by its id (the day file and line it was written at), not by where it is
    now: archiving a note must not change the order, or ties in clustering could fall another
    way on the next run, and a second replay would find other patterns in the same memory."""
    if atom.kind == "note":
        _, name, line = (atom.id.split(":") + ["", "", ""])[:3]
        return (atom.created_at, 0, name, int(line) if line.isdigit() else 0)
    if atom.turn_id is not None:
        return (atom.created_at, 1, "", atom.turn_id)
    return (atom.created_at, 2, atom.id, 0)


def period(days: int, now: datetime | None = None) -> tuple[str, str]:
    """(since, today): midnight UTC `days` days before today, and today's date."""
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = (now - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), now.strftime("%Y-%m-%d")


def load(instance: "Instance", config: "Config", store: "TurnStore | None", days: int,
         now: datetime | None = None) -> Loaded:
    since, today = period(days, now)
    out = Loaded(since, today)
    if store is not None:
        out.superseded = {r[0] for r in store.conn.execute("SELECT atom_id FROM superseded")}
    active_digests: dict[str, str] = {}
    for note in iter_notes(instance.memory_dir):
        if not note.body.strip():
            continue
        atom = note_atom(note)
        active_digests[atom.id] = text_digest(note.body)
        if atom.created_at >= since and atom.id not in out.superseded:
            out.notes.append(atom)
    for entry in iter_archived(instance.memory_dir):
        out.archived_entries[entry.original_id] = entry
        if entry.original_id in active_digests:
            if active_digests[entry.original_id] == entry.digest:
                out.interrupted.append(entry)  # the move was cut short: finish it
            continue  # the day file's note wins (a hand edit since): it is the one loaded
        atom = archived_atom(entry)
        if atom.created_at >= since and atom.id not in out.superseded:
            out.archived.append(atom)
    if store is not None:
        out.archived_turn_ids = {r[0] for r in store.conn.execute(
            "SELECT id FROM archive WHERE created_at >= ?", (since,))}
        for turn in store.iter_all():
            if turn.created_at < since:
                continue
            atom = turn_atom(turn)
            if atom is not None:
                out.turns.append(atom)
    if instance.wiki_dir.is_dir():
        from ..memory.wiki import Wiki, WikiError, page_atoms
        wiki = Wiki(instance.wiki_dir)
        for entry in wiki.list():
            try:
                out.wiki.extend(page_atoms(wiki.read(entry.slug)))
            except WikiError:
                continue  # an unreadable page covers nothing
    return out


def is_self_observation(atom: Atom) -> bool:
    return atom.kind == "note" and atom.category == SELF_OBSERVATION


__all__ = ["Loaded", "SELF_OBSERVATION", "is_self_observation", "load", "note_id", "period"]
