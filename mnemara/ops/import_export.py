"""Importing a `mnemara export` (jsonl) file: the other half of `ops/export.py`.

An export is imported into an EMPTY instance only (no turns, notes, wiki pages or index entries;
`mnemara import` creates the instance when it does not exist). Turn ids, times, blocks, usage,
pins, status and archive placement are kept exactly, notes keep their file and line (so note ids
and corrections that name them still hold), wiki pages keep their text and modification time:
export, import into a fresh instance, export again gives the same records apart from the
instance name and the export time. Merging an export into an instance that already holds
something would have to renumber turns and notes and could collide with pages, so it is refused
with one line; the plain conversation format (`{"role", "text", "ts"}` lines) is the way to add
turns to an existing instance.

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
import re
import secrets
import shutil
from calendar import timegm
from dataclasses import dataclass, field
from pathlib import Path
from time import strptime
from typing import TYPE_CHECKING, Any

from ..errors import MnemaraError
from ..timestamps import parse_timestamp, shown as _shown
from .export import (ARCHIVED_NOTE_KEYS, ENTRY_KEYS, FORMAT, HEADER_KEYS, NOTE_KEYS, SLOT_KEYS,
                     SUPERSEDED_KEYS, TURN_KEYS, VERSION, WIKI_KEYS)

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore

STAGING_PREFIX = ".import-"
META_KEY = "import_staging"
STATUSES = ("pending", "complete", "failed", "interrupted")
# A plain file name (no directory part, no control characters) ending in .md, as `iter_notes` finds.
_NOTE_FILE = re.compile(r"[^/\\\x00-\x1f\x7f]{1,200}\.md")
_NOTE_HEADER = re.compile(r"^## \[", re.M)
_NOTE_ID = re.compile(r"note:(?P<file>[^/\\\s]{1,200}\.md):(?P<line>[1-9][0-9]{0,8})")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class ExportBundle:
    """A checked export file, ready to import."""

    source: str
    header: dict[str, Any]
    turns: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    archived: list[dict[str, Any]] = field(default_factory=list)  # notes replay archived
    wiki: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    superseded: list[dict[str, Any]] = field(default_factory=list)
    slots: list[dict[str, Any]] = field(default_factory=list)  # every slot version, in id order
    graph: dict[str, Any] | None = None  # the knowledge graph's export (ops/graph.py)
    proposals: list[dict[str, Any]] = field(default_factory=list)  # ops/proposals.py records
    read_seconds: float = 0.0


def is_export_header(line: bytes) -> bool:
    """Whether the first non-blank line of a file is an export's header record."""
    try:
        data = json.loads(line.decode("utf-8").lstrip("\ufeff"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("type") == "header" and data.get("format") == FORMAT


# -- checking ---------------------------------------------------------------------------------------

def _keys(record: dict[str, Any], keys: tuple[str, ...]) -> None:
    unknown = [k for k in record if k not in keys]
    if unknown:
        raise ValueError(f"unknown key {_shown(unknown[0])} in a {record['type']} record")
    missing = [k for k in keys if k not in record]
    if missing:
        raise ValueError(f"missing {_shown(missing[0])} in a {record['type']} record")


def _str(record: dict[str, Any], key: str, *, optional: bool = False, nonempty: bool = False) -> None:
    value = record[key]
    if value is None and optional:
        return
    if not isinstance(value, str):
        raise ValueError(f"{_shown(key)} must be a string, got {type(value).__name__}")
    if nonempty and not value.strip():
        raise ValueError(f"{_shown(key)} is empty")


def _stamp(record: dict[str, Any], key: str, *, optional: bool = False) -> None:
    """A timestamp field, normalised to the store's `YYYY-MM-DDTHH:MM:SSZ` in place."""
    if record[key] is None and optional:
        return
    try:
        record[key] = parse_timestamp(record[key])
    except ValueError as exc:
        raise ValueError(f"{_shown(key)} {exc}") from None


def _check_turn(r: dict[str, Any], seen: set[int]) -> None:
    _keys(r, TURN_KEYS)
    if isinstance(r["id"], bool) or not isinstance(r["id"], int) or r["id"] < 1:
        raise ValueError(f"\"id\" must be a positive integer, got {_shown(r['id'])}")
    if r["id"] in seen:
        raise ValueError(f"turn id {r['id']} appears twice")
    seen.add(r["id"])
    if r["where"] not in ("window", "archive"):
        raise ValueError(f"\"where\" must be \"window\" or \"archive\", got {_shown(r['where'])}")
    if r["role"] not in ("user", "assistant"):
        raise ValueError(f"role must be \"user\" or \"assistant\", got {_shown(r['role'])}")
    if r["status"] not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {_shown(r['status'])}")
    if not isinstance(r["pinned"], bool):
        raise ValueError("\"pinned\" must be true or false")
    _stamp(r, "created_at")
    _str(r, "model", optional=True)
    if r["usage"] is not None and not isinstance(r["usage"], dict):
        raise ValueError("\"usage\" must be an object or null")
    cost = r["cost_usd"]
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float))):
        raise ValueError("\"cost_usd\" must be a number or null")
    blocks = r["blocks"]
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and isinstance(b.get("type"), str)
                                               for b in blocks):
        raise ValueError("\"blocks\" must be a list of content blocks, each with a \"type\"")
    archived = r["where"] == "archive"
    _stamp(r, "archived_at", optional=not archived)
    _str(r, "archive_reason", optional=not archived, nonempty=archived)
    if not archived and (r["archived_at"] is not None or r["archive_reason"] is not None):
        raise ValueError("a window turn has no \"archived_at\" or \"archive_reason\"")


def _check_note(r: dict[str, Any]) -> None:
    _keys(r, NOTE_KEYS)
    _check_note_fields(r)


def _check_note_fields(r: dict[str, Any]) -> None:
    """The fields a note record and an archived note record share."""
    _str(r, "file")
    if not _NOTE_FILE.fullmatch(r["file"]):
        raise ValueError(f"note file {_shown(r['file'])} is not a plain name ending in .md")
    if isinstance(r["line"], bool) or not isinstance(r["line"], int) or r["line"] < 1:
        raise ValueError(f"\"line\" must be a positive integer, got {_shown(r['line'])}")
    _str(r, "at", nonempty=True)
    if "]" in r["at"] or len(r["at"].splitlines()) != 1:
        raise ValueError(f"note time {_shown(r['at'])} must be one line without ']'")
    _str(r, "category")
    if len(r["category"].splitlines()) > 1:
        raise ValueError("a note category is one line")
    _str(r, "text")


def _check_archived_note(r: dict[str, Any]) -> None:
    """A note in `memory/archive/<file>`: a note record, plus the id it keeps (a note of the day
    file of the same name), the note that kept it and the day it was archived."""
    _keys(r, ARCHIVED_NOTE_KEYS)
    _check_note_fields(r)
    for key in ("id", "kept", "archived_on"):
        _str(r, key, nonempty=True)
    m = _NOTE_ID.fullmatch(r["id"])
    if not m or m["file"] != r["file"]:
        raise ValueError(f"archived note id {_shown(r['id'])} is not a note of {_shown(r['file'])}")
    if not _NOTE_ID.fullmatch(r["kept"]):
        raise ValueError(f"\"kept\" {_shown(r['kept'])} is not a note id")
    if not _DAY.fullmatch(r["archived_on"]):
        raise ValueError(f"\"archived_on\" {_shown(r['archived_on'])} is not a YYYY-MM-DD date")


def _check_wiki(r: dict[str, Any]) -> None:
    from ..memory.wiki import WikiError, validate_slug
    _keys(r, WIKI_KEYS)
    _str(r, "slug")
    try:
        if validate_slug(r["slug"]) != r["slug"]:
            raise ValueError(f"wiki slug {_shown(r['slug'])} is not in its plain form")
    except WikiError as exc:
        raise ValueError(str(exc)) from None
    _stamp(r, "updated_at")
    _str(r, "text")


def _check_entry(r: dict[str, Any]) -> None:
    from ..index.atoms import Atom
    _keys(r, ENTRY_KEYS)
    atom = r["atom"]
    if not isinstance(atom, dict) or not all(isinstance(atom.get(k), str) and atom.get(k)
                                             for k in ("id", "kind", "text", "created_at")):
        raise ValueError("an entry's \"atom\" needs string \"id\", \"kind\", \"text\" and \"created_at\"")
    unknown = [k for k in atom if k not in Atom.__dataclass_fields__]
    if unknown:
        raise ValueError(f"unknown key {_shown(unknown[0])} in an entry's atom")


def _check_superseded(r: dict[str, Any]) -> None:
    _keys(r, SUPERSEDED_KEYS)
    _str(r, "atom_id", nonempty=True)
    _str(r, "by_id", nonempty=True)
    _str(r, "reason", optional=True)
    _stamp(r, "at")


def _check_slot(r: dict[str, Any], seen: set[int]) -> None:
    from ..memory.slots import AUTHORS, NAME_RE
    _keys(r, SLOT_KEYS)
    if isinstance(r["id"], bool) or not isinstance(r["id"], int) or r["id"] < 1 or r["id"] in seen:
        raise ValueError(f"slot version \"id\" must be a new positive integer, got {_shown(r['id'])}")
    seen.add(r["id"])
    _str(r, "name")
    _str(r, "text")
    if not NAME_RE.fullmatch(r["name"]):
        raise ValueError(f"slot name {_shown(r['name'])} is not valid")
    if r["action"] not in ("set", "append", "clear", "undo") or r["author"] not in AUTHORS:
        raise ValueError("a slot record's \"action\" or \"author\" is not one mnemara writes")
    if r["reverts"] is not None and (isinstance(r["reverts"], bool) or not isinstance(r["reverts"], int)):
        raise ValueError(f"slot \"reverts\" must be an id or null, got {_shown(r['reverts'])}")
    _stamp(r, "created_at")


def parse_export(data: bytes, name: str) -> ExportBundle:
    """Every record of an export file, checked; MnemaraError names the first bad line."""
    bundle: ExportBundle | None = None
    turn_ids: set[int] = set()
    places: set[tuple[str, int]] = set()
    archived_places: set[tuple[str, int]] = set()
    archived_ids: set[str] = set()
    slugs: set[str] = set()
    entry_ids: set[str] = set()
    slot_ids: set[int] = set()
    for number, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            raise MnemaraError(f"{name}:{number}: not valid UTF-8 (byte 0x{raw[exc.start]:02x}); "
                               "nothing was imported") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                raise ValueError("expected a JSON object with a \"type\"")
            kind = record["type"]
            if bundle is None:
                bundle = _header(record, name)
                continue
            if kind == "turn":
                _check_turn(record, turn_ids)
                bundle.turns.append(record)
            elif kind == "note":
                _check_note(record)
                place = (record["file"], record["line"])
                if place in places:
                    raise ValueError(f"two notes at {record['file']}:{record['line']}")
                places.add(place)
                bundle.notes.append(record)
            elif kind == "archived_note":
                _check_archived_note(record)
                place = (record["file"], record["line"])
                if place in archived_places or record["id"] in archived_ids:
                    raise ValueError(f"two archived notes at archive/{record['file']}:"
                                     f"{record['line']} or with the id {record['id']}")
                archived_places.add(place)
                archived_ids.add(record["id"])
                bundle.archived.append(record)
            elif kind == "wiki":
                _check_wiki(record)
                if record["slug"] in slugs:
                    raise ValueError(f"wiki page {record['slug']!r} appears twice")
                slugs.add(record["slug"])
                bundle.wiki.append(record)
            elif kind == "entry":
                _check_entry(record)
                if record["atom"]["id"] in entry_ids:
                    raise ValueError(f"index entry {record['atom']['id']!r} appears twice")
                entry_ids.add(record["atom"]["id"])
                bundle.entries.append(record)
            elif kind == "superseded":
                _check_superseded(record)
                bundle.superseded.append(record)
            elif kind == "slot":
                _check_slot(record, slot_ids)
                bundle.slots.append(record)
            elif kind == "graph":
                from .graph import check_record
                if bundle.graph is not None:
                    raise ValueError("a second graph record (an export holds one)")
                check_record(record)
                bundle.graph = record["graph"]
            elif kind == "proposal":
                from .proposals import check_record as check_proposal
                pid = check_proposal(record).id
                if any(r["proposal"]["id"] == pid for r in bundle.proposals):
                    raise ValueError(f"proposal {pid} appears twice")
                bundle.proposals.append(record)
            else:
                raise ValueError(f"unknown record type {_shown(kind)}")
        except json.JSONDecodeError as exc:
            raise MnemaraError(f"{name}:{number}: not JSON ({exc.msg} at column {exc.colno}); "
                               "nothing was imported") from None
        except ValueError as exc:
            raise MnemaraError(f"{name}:{number}: {exc}; nothing was imported") from None
    if bundle is None:
        raise MnemaraError(f"{name} holds no export header; nothing was imported")
    _check_note_layout(bundle.notes, name)
    _check_note_layout(bundle.archived, name, extra=1)  # each block ends with its marker line
    return bundle


def _header(record: dict[str, Any], name: str) -> ExportBundle:
    if record.get("type") != "header" or record.get("format") != FORMAT:
        raise ValueError("the first record of an export must be its header")
    _keys(record, HEADER_KEYS)
    version = record["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise ValueError("\"version\" must be an integer")
    if version > VERSION:
        raise ValueError(f"export format version {version} is newer than this mnemara reads "
                         f"({VERSION}); upgrade mnemara")
    return ExportBundle(name, record)


def note_body(text: str) -> str:
    """A note's text as it reads back from its file: lines joined by "\\n", stripped, and a line
    that would read as a note header escaped (as `notes.format_note` does)."""
    return _NOTE_HEADER.sub(r"\\## [", "\n".join(text.splitlines()).strip())


def _check_note_layout(notes: list[dict[str, Any]], name: str, extra: int = 0) -> None:
    """Notes of one file must not overlap: each starts after the lines of the one before (and
    after the `extra` lines each one is followed by)."""
    cursor: dict[str, tuple[int, int]] = {}
    for note in sorted(notes, key=lambda n: (n["file"], n["line"])):
        end, line = cursor.get(note["file"], (1, 0))
        if note["line"] < end:
            raise MnemaraError(f"{name}: the note at {note['file']}:{note['line']} overlaps the "
                               f"one at line {line}; nothing was imported")
        body = note_body(note["text"])
        cursor[note["file"]] = (note["line"] + 1 + extra + (len(body.split("\n")) if body else 0),
                                note["line"])


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
