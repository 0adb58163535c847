"""Reading an export file (`mnemara export`'s jsonl) and checking every record before anything
is written: `parse_export` gives an `ExportBundle` or raises one line naming the file and the
record. The writing half, all or nothing, is `import_export.py`."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import MnemaraError
from ..timestamps import parse_timestamp, shown as _shown
from .export import (ARCHIVED_NOTE_KEYS, ENTRY_KEYS, FORMAT, HEADER_KEYS, NOTE_KEYS, SLOT_KEYS,
                     SUPERSEDED_KEYS, TURN_KEYS, VERSION, WIKI_KEYS)

STATUSES = ("pending", "complete", "failed", "interrupted")
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
