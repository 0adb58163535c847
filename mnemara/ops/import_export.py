"""Importing a `mnemara export` (jsonl) file: the other half of `ops/export.py`.

An export is imported into an EMPTY instance only (no turns, notes, wiki pages or index entries;
`mnemara import` creates the instance when it does not exist). Turn ids, times, blocks, usage,
pins, status and archive placement are kept exactly, notes keep their file and line (so note ids
and corrections that name them still hold), wiki pages keep their text and modification time:
export, import into a fresh instance, export again gives the same records apart from the
instance name and the export time. Merging an export into an instance that already holds
something would have to renumber turns and notes and could collide with pages, so it is refused
with one line; the plain conversation format (`{"role", "text", "ts"}` lines) is the way to add
turns to an existing instance. Reading and checking the file is `export_read.py`.

All or nothing, also against kill -9: every record is checked before anything is written; notes
and wiki pages are written into a hidden staging directory `<instance>/.import-<hex>/`; the turns,
index entries and outbox rows go into `turns.sqlite` in one transaction that also records the
staging directory's name in `meta`; that commit is the moment the import happens. Right after
it, the staged directories are renamed into place and the record removed. A process killed
before the commit leaves only the staging directory, which the next import or export removes; one
killed in the instant between the commit and the renames leaves the record, and the next import
or export finishes the renames (`finish_interrupted_import`).

The whole write runs under the exclusive instance lock, so a chat session never sees it half
done.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from calendar import timegm
from dataclasses import dataclass
from pathlib import Path
from time import strptime
from typing import TYPE_CHECKING, Any

from ..errors import MnemaraError
from .export import SLOT_KEYS
from .export_read import ExportBundle, note_body

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore

STAGING_PREFIX = ".import-"
META_KEY = "import_staging"
# A plain file name (no directory part, no control characters) ending in .md, as `iter_notes` finds.
# -- the target must be empty -----------------------------------------------------------------------

def check_empty(instance: "Instance") -> None:
    """MnemaraError unless the instance holds no turns, notes, wiki pages or index entries."""
    from ..memory.notes import iter_notes
    from ..memory.wiki import Wiki
    held: list[str] = []
    if instance.turns_path.exists():
        from ..store.turns import TurnStore
        with TurnStore(instance.turns_path) as store:
            turns = store.count() + store.archived_count()
            entries = store.conn.execute("SELECT count(*) FROM manual_atoms").fetchone()[0]
            slots = store.conn.execute("SELECT count(*) FROM slot_versions").fetchone()[0]
        if turns:
            held.append(f"{turns:,} turn{'s' if turns != 1 else ''}")
        if entries:
            held.append(f"{entries:,} index entr{'ies' if entries != 1 else 'y'}")
        if slots:
            held.append(f"{slots:,} slot version{'s' if slots != 1 else ''}")
    from ..memory.archive import archived_ids
    notes = sum(1 for _ in iter_notes(instance.memory_dir)) + len(archived_ids(instance.memory_dir))
    if notes:
        held.append(f"{notes:,} note{'s' if notes != 1 else ''}")
    pages = len(Wiki(instance.wiki_dir).list())
    if pages:
        held.append(f"{pages:,} wiki page{'s' if pages != 1 else ''}")
    if held:
        raise MnemaraError(
            f"instance {instance.name!r} already holds {', '.join(held)}; an export is imported "
            f"into a new or empty instance (e.g. `mnemara import -i {instance.name}-imported FILE`) "
            "so its turn ids and notes stay as they were; nothing was imported")


# -- staging and placing files ----------------------------------------------------------------------

def _stage(instance: "Instance", config: "Config", bundle: ExportBundle) -> Path:
    """Write the notes and wiki pages into a new hidden staging directory; returns it."""
    from ..fsutil import atomic_write_text, ensure_private_dir
    staging = ensure_private_dir(instance.root / f"{STAGING_PREFIX}{secrets.token_hex(6)}")
    files: dict[str, list[dict[str, Any]]] = {}
    for note in bundle.notes:
        files.setdefault(note["file"], []).append(note)
    # A day file keeps the (blank) lines its archived notes had, so no note appended to it
    # later takes the id an archived note keeps (memory/archive.py).
    ends: dict[str, int] = {}
    for note in bundle.archived:
        day, line = note["id"][len("note:"):].rsplit(":", 1)
        ends[day] = max(ends.get(day, 0), int(line) + len(note_body(note["text"]).split("\n")))
        files.setdefault(day, [])
    if files:
        memory = ensure_private_dir(staging / "memory")
        for name, notes in files.items():
            text = _note_file(notes) if notes else ""
            atomic_write_text(memory / name, text + "\n" * max(0, ends.get(name, 0) - text.count("\n")))
    archives: dict[str, list[dict[str, Any]]] = {}
    for note in bundle.archived:
        archives.setdefault(note["file"], []).append(note)
    if archives:
        folder = ensure_private_dir(staging / "memory" / "archive")
        for name, notes in archives.items():
            atomic_write_text(folder / name, _note_file(notes, archived=True))
    if bundle.wiki:
        wiki = ensure_private_dir(staging / "wiki")
        for page in bundle.wiki:
            path = wiki / f"{page['slug']}.md"
            for parent in reversed(path.parent.relative_to(wiki).parents):
                ensure_private_dir(wiki / parent)
            ensure_private_dir(path.parent)
            atomic_write_text(path, page["text"])
            stamp = timegm(strptime(page["updated_at"], "%Y-%m-%dT%H:%M:%SZ"))
            os.utime(path, (stamp, stamp))
    from .proposals import stage_records
    stage_records(bundle.proposals, staging)
    return staging


def _note_file(notes: list[dict[str, Any]], *, archived: bool = False) -> str:
    """A memory file with each note's header at its recorded line (blank lines fill the gaps);
    `archived`: an archive file, each note followed by its marker (memory/archive.py)."""
    from ..memory.archive import text_digest
    lines: list[str] = []
    for note in sorted(notes, key=lambda n: n["line"]):
        lines.extend([""] * (note["line"] - 1 - len(lines)))
        lines.append(f"## [{note['at']}] {note['category']}".rstrip())
        body = note_body(note["text"])
        if body:
            lines.extend(body.split("\n"))
        if archived:
            lines.append(f"<!-- mnemara-archived id={note['id']} kept={note['kept']} "
                         f"sha={text_digest(body)} on={note['archived_on']} -->")
    return "\n".join(lines) + "\n\n"


def _place(instance: "Instance", staging: Path) -> list[str]:
    """Move the staged memory and wiki directories into the instance; returns files left in the
    staging directory because a file of that name appeared meanwhile (never overwritten)."""
    kept: list[str] = []
    for sub, dest in (("memory", instance.memory_dir), ("wiki", instance.wiki_dir),
                      ("proposals", instance.proposals_dir)):
        src = staging / sub
        if not src.is_dir():
            continue
        if not os.path.lexists(dest):
            os.rename(src, dest)
            continue
        if dest.is_dir() and not dest.is_symlink():
            try:
                os.rmdir(dest)  # empty: the whole directory moves in one rename
                os.rename(src, dest)
                continue
            except OSError:
                pass
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            if os.path.lexists(target):
                kept.append(str(target))
                continue
            shutil.move(str(path), str(target))
    if not kept:
        shutil.rmtree(staging, ignore_errors=True)
    return kept


def _clear_meta(instance: "Instance") -> None:
    from ..store.turns import TurnStore
    with TurnStore(instance.turns_path) as store, store.transaction():
        store.conn.execute("DELETE FROM meta WHERE key = ?", (META_KEY,))


def finish_interrupted_import(instance: "Instance", *, locked: bool = False) -> None:
    """Settle an import killed part-way: a committed one has its staged files moved into place,
    one that never committed has its staging directory removed. Cheap when there is none."""
    if not instance.root.is_dir():
        return
    leftovers = [p for p in instance.root.glob(f"{STAGING_PREFIX}*") if p.is_dir() and not p.is_symlink()]
    if not leftovers:
        return
    if not locked:
        from ..lock import instance_lock
        with instance_lock(instance, exclusive=True, purpose="import recovery"):
            finish_interrupted_import(instance, locked=True)
        return
    committed = None
    if instance.turns_path.exists():
        from ..store.turns import TurnStore
        with TurnStore(instance.turns_path) as store:
            row = store.conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
            committed = row[0] if row else None
    for staging in leftovers:
        if staging.name == committed:
            _place(instance, staging)
            _clear_meta(instance)
        else:
            shutil.rmtree(staging, ignore_errors=True)


# -- writing ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Written:
    turn_ids: list[int]
    moved: set[int]      # window turns the budget sent to the archive
    kept: list[str]      # staged files not placed because the name was taken


def write_export(instance: "Instance", config: "Config", bundle: ExportBundle) -> Written:
    """Write a checked export into the (empty) instance; the caller holds the exclusive lock."""
    from ..engine.prompt import read_role_doc
    from ..store.turns import TurnStore
    from ..store.window import Budget
    check_empty(instance)
    if config.redact:
        _redact_memory(bundle)
    staging = _stage(instance, config, bundle)
    try:
        role_text = read_role_doc(config.role_doc_path).text
        with TurnStore(instance.turns_path, result_max_chars=config.tool_result_max_chars) as store:
            with store.transaction():
                _insert(store, config, bundle)
                store.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                   (META_KEY, staging.name))
                room = max(1, config.max_window_tokens - store.estimator.estimate(role_text))
                eviction = store.apply_budget(Budget(config.max_window_turns, room), reason="import")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    kept = _place(instance, staging)
    _clear_meta(instance)
    return Written([t["id"] for t in bundle.turns], set(eviction.ids) if eviction else set(), kept)


def _redact_memory(bundle: ExportBundle) -> None:
    """Notes, pages and entries written with `redact` on hold no secrets, whatever the export
    held (turns are stored as they are: the turn store keeps what was typed)."""
    from ..redact import redact
    for note in (*bundle.notes, *bundle.archived):
        note["text"] = redact(note["text"])
    for page in bundle.wiki:
        page["text"] = redact(page["text"])
    for entry in bundle.entries:
        entry["atom"]["text"] = redact(entry["atom"]["text"])
    from .proposals import redact_record
    for record in bundle.proposals:
        redact_record(record, redact)


def _insert(store: "TurnStore", config: "Config", bundle: ExportBundle) -> None:
    """Turns, entries, corrections and their outbox rows, inside the caller's transaction."""
    from ..index.atoms import Atom
    from ..memory.notes import Note
    from ..memory.outbox import enqueue
    from ..memory.sources import note_atom
    from ..memory.wiki import WikiPage, page_atoms, parse_frontmatter
    from ..store.render import plain_text, render_turn
    conn = store.conn
    for t in bundle.turns:
        rendered = render_turn(t["id"], t["role"], t["created_at"], t["blocks"], status=t["status"],
                               result_max_chars=config.tool_result_max_chars)
        values = [t["id"], t["role"], json.dumps(t["blocks"], ensure_ascii=False), rendered,
                  t["created_at"], t["model"], store.estimator.estimate_chars(len(rendered)),
                  None if t["usage"] is None else json.dumps(t["usage"], ensure_ascii=False),
                  t["cost_usd"], t["status"], int(t["pinned"])]
        columns = "id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd, status, pinned"
        if t["where"] == "window":  # the insert trigger queues it for the index
            conn.execute(f"INSERT INTO turns ({columns}) VALUES ({', '.join('?' * 11)})", values)
        else:
            conn.execute(f"INSERT INTO archive ({columns}, archived_at, archive_reason)"
                         f" VALUES ({', '.join('?' * 13)})", [*values, t["archived_at"], t["archive_reason"]])
            enqueue(conn, "upsert", f"turn:{t['id']}")
        conn.execute("INSERT INTO turn_fts (rowid, body) VALUES (?, ?)", (t["id"], plain_text(t["blocks"])))
    if bundle.turns:
        # New turns must never reuse an imported id, also one that sits in the archive.
        top = max(t["id"] for t in bundle.turns)
        if conn.execute("UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'turns'",
                        (top,)).rowcount == 0:
            conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('turns', ?)", (top,))
    for v in bundle.slots:  # every version, ids kept: undo and `reverts` work as before
        conn.execute("INSERT INTO slot_versions (id, name, text, action, author, reverts, created_at)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?)", tuple(v[k] for k in SLOT_KEYS[1:]))
    superseded = {s["atom_id"] for s in bundle.superseded}
    for s in bundle.superseded:
        conn.execute("INSERT OR REPLACE INTO superseded (atom_id, by_id, reason, at) VALUES (?, ?, ?, ?)",
                     (s["atom_id"], s["by_id"], s["reason"], s["at"]))

    def queue(atom: Atom) -> None:
        if atom.id in superseded:
            atom = Atom(**{**atom.__dict__, "superseded": True})
        enqueue(conn, "upsert", atom.id, atom)

    for e in bundle.entries:
        atom = Atom.from_json(e["atom"])
        conn.execute("INSERT INTO manual_atoms (id, atom, created_at) VALUES (?, ?, ?)",
                     (atom.id, json.dumps(e["atom"], ensure_ascii=False), atom.created_at))
        queue(atom)
    if config.rag_auto_index_memory:
        for n in bundle.notes:
            body = note_body(n["text"])
            if body:
                queue(note_atom(Note(Path(n["file"]), n["at"], n["category"].strip() or "note", body, n["line"])))
        from ..memory.archive import ArchivedNote, archived_atom, text_digest
        for n in bundle.archived:  # searchable as before, and never recalled (their source says so)
            body = note_body(n["text"])
            if body:
                note = Note(Path(n["file"]), n["at"], n["category"].strip() or "note", body, n["line"])
                queue(archived_atom(ArchivedNote(note, n["id"], n["kept"], text_digest(body),
                                                 n["archived_on"])))
    if config.rag_auto_index_wiki:
        for p in bundle.wiki:
            tags, body, body_line = parse_frontmatter(p["text"])
            page = WikiPage(p["slug"], Path(f"{p['slug']}.md"), p["text"], body, tags, p["updated_at"], body_line)
            for atom in page_atoms(page):
                queue(atom)
