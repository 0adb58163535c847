"""Archived notes: near-duplicates that `mnemara replay` moved out of `memory/YYYY-MM-DD.md`.

An archived note lives in `memory/archive/YYYY-MM-DD.md` (the day of the file it came from), as
the same Markdown block it was, followed by one marker line saying which note it was, which
kept note absorbed it, a digest of its text and the day it was archived:

    ## [2026-12-01T10:00:00+00:00] insight
    The staging host is stg-7.
    <!-- mnemara-archived id=note:2026-12-01.md:14 kept=note:2026-12-01.md:3 sha=0f3a... on=2026-12-05 -->

The note keeps its id (`note:2026-12-01.md:14`): proposals, recall blocks and the index keep
pointing at it. In its day file its lines become blank lines rather than disappearing, so every
later note of that file keeps its line number, hence its id (the redaction rewrite keeps lines
for the same reason), and a note appended later never takes the id of an archived one. Blank
lines between notes are nothing to the parser: they end the note before them, which strips them.

Moving is crash-safe without a journal: the archive file is written first (temp file, fsync,
rename), then the day file (likewise), both under the day file's flock, the lock every note
writer takes. Killed between the two renames, the note is in both places with the same digest;
the next replay sees that (`interrupted`) and finishes the move. At no moment is a note in
neither place.

Archived notes stay searchable (the index holds them, `source` naming the archive file) but are
no longer recalled automatically (`is_archived`).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from ..fsutil import atomic_output, ensure_private_dir, open_flocked
from ..index.atoms import Atom
from .notes import Note, parse_notes

ARCHIVE_DIR = "archive"
ARCHIVE_SOURCE_PREFIX = f"memory/{ARCHIVE_DIR}/"
_MARKER = re.compile(r"\n?<!-- mnemara-archived id=(?P<id>\S+) kept=(?P<kept>\S+) "
                     r"sha=(?P<sha>[0-9a-f]+) on=(?P<on>\S+) -->\s*$")


@dataclass(frozen=True)
class ArchivedNote:
    note: Note          # as parsed from the archive file (body without the marker)
    original_id: str    # the id it had, and keeps: note:<day file>:<line>
    kept_id: str        # the note that absorbed it
    digest: str         # text_digest(body)
    on: str             # YYYY-MM-DD it was archived


def text_digest(body: str) -> str:
    return hashlib.sha256(body.strip().encode("utf-8", errors="surrogateescape")).hexdigest()[:16]


def is_archived(atom: Atom) -> bool:
    """An atom that replay archived: kept searchable, never recalled automatically."""
    return atom.kind == "note" and atom.source.startswith(ARCHIVE_SOURCE_PREFIX)


def archived_ids(memory_dir: Path) -> set[str]:
    """Ids of the archived notes (cheap: archive files only; none when there is no archive)."""
    if not archive_dir(memory_dir).is_dir():
        return set()
    return {entry.original_id for entry in iter_archived(memory_dir)}


def archive_dir(memory_dir: Path) -> Path:
    return Path(memory_dir) / ARCHIVE_DIR


def iter_archived(memory_dir: Path) -> Iterator[ArchivedNote]:
    """Every archived note, oldest archive file first (blocks without a marker are skipped)."""
    folder = archive_dir(memory_dir)
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.md")):
        for note in parse_notes(path):
            m = _MARKER.search(note.body)
            if m is None:
                continue
            body = note.body[:m.start()].rstrip()
            yield ArchivedNote(Note(note.path, note.at, note.category, body, note.line),
                               m["id"], m["kept"], m["sha"], m["on"])


def reseal(block: str) -> str:
    """An archive file's block (header, text, marker) with the marker's digest recomputed from
    the text: after a rewrite of the text (`mnemara redact`), so a move that was interrupted
    with the same text in both places is still recognised as one (`replay/load.py`)."""
    m = _MARKER.search(block)
    if m is None:
        return block
    body = block[:m.start()].partition("\n")[2]
    return block[:m.start("sha")] + text_digest(body) + block[m.end("sha"):]


def archived_atom(entry: ArchivedNote) -> Atom:
    """The atom of an archived note: its original id, its archive file as source."""
    from .sources import iso_utc
    return Atom(id=entry.original_id, kind="note", text=entry.note.body,
                created_at=iso_utc(entry.note.at),
                source=f"{ARCHIVE_SOURCE_PREFIX}{entry.note.path.name}", line=entry.note.line,
                category=entry.note.category)


@dataclass(frozen=True)
class Move:
    """One note to archive: its id, the digest of its text when it was planned, its keeper."""

    note_id: str
    digest: str
    kept_id: str


def archive_notes(memory_dir: Path, day_file: Path, moves: Iterable[Move], on: str) -> list[ArchivedNote]:
    """Move the notes of `day_file` named in `moves` into the archive (see the module docstring).

    A note that is no longer at its line with the planned text is left alone. Returns the
    archived notes now in the archive for these moves (those archived earlier included, so an
    interrupted move is finished and reported like a new one)."""
    day_file = Path(day_file)
    moves = {m.note_id: m for m in moves}
    target = archive_dir(memory_dir) / day_file.name
    if not day_file.is_file():
        return [a for a in iter_archived(memory_dir) if a.original_id in moves]  # removed by hand
    fd = open_flocked(day_file, os.O_RDWR)  # the lock `mnemara note` and write_memory append under
    try:
        remove_stale_temps(day_file)
        raw = _read(fd)
        present = {f"note:{day_file.name}:{n.line}": n for n in parse_notes(day_file)}
        chosen = {i: n for i, n in present.items() if i in moves and text_digest(n.body) == moves[i].digest}
        if not chosen:
            return [a for a in iter_archived(memory_dir) if a.original_id in moves]
        ensure_private_dir(target.parent)
        afd = open_flocked(target, os.O_RDWR)
        try:
            remove_stale_temps(target)
            old = _read(afd)
            have = set(re.findall(r"<!-- mnemara-archived id=(\S+)", old))
            lines = raw.splitlines(keepends=True)
            blocks = []
            for note_id in sorted(chosen, key=lambda i: chosen[i].line):
                if note_id in have:
                    continue  # archived by a run that was killed before the day file changed
                note, move = chosen[note_id], moves[note_id]
                block = "".join(lines[note.line - 1:_block_end(lines, note.line)]).rstrip("\n")
                blocks.append(f"{block}\n<!-- mnemara-archived id={note_id} kept={move.kept_id} "
                              f"sha={move.digest} on={on} -->\n\n")
            if blocks:
                data = old + ("\n" if old and not old.endswith("\n") else "") + "".join(blocks)
                with atomic_output(target, binary=True, sync_dir=True) as fh:
                    fh.write(data.encode("utf-8", errors="surrogateescape"))
        finally:
            os.close(afd)
        # Only now the day file: its notes are safe in the archive.
        for note in chosen.values():
            for i in range(note.line - 1, _block_end(lines, note.line)):
                lines[i] = "\n"
        with atomic_output(day_file, binary=True, sync_dir=True) as fh:
            fh.write("".join(lines).encode("utf-8", errors="surrogateescape"))
    finally:
        os.close(fd)  # releases the lock (on the replaced file: waiting writers move on)
    return [a for a in iter_archived(memory_dir) if a.original_id in moves]


def remove_stale_temps(path: Path) -> None:
    """Remove the temp files a killed writer of `path` left behind (`atomic_output` names them
    `.<name>.<random>.tmp`). Call only while holding the lock every writer of `path` holds: then
    no temp file of it can belong to a live writer."""
    for temp in Path(path).parent.glob(f".{Path(path).name}.*.tmp"):
        try:
            temp.unlink()
        except FileNotFoundError:
            pass


def _block_end(lines: list[str], header_line: int) -> int:
    """The 0-based index just past the block whose header is at 1-based `header_line`."""
    from .notes import _HEADER
    for i in range(header_line, len(lines)):
        if _HEADER.match(lines[i].splitlines()[0] if lines[i].strip() else ""):
            return i
    return len(lines)


def _read(fd: int) -> str:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="surrogateescape")
