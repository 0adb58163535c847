"""`mnemara redact`: rewrite the secrets already stored in memory notes and wiki pages.

Redaction on write (`mnemara/redact.py`, config `redact`) keeps new secrets out of notes and
pages; this rewrites the ones written before it existed, with it off, or by hand (the ones
`mnemara doctor` reports), the notes replay archived (`memory/archive/`) included. The turn
store is never touched: a turn keeps what was typed, and its
indexed copy is redacted when it is indexed.

How the rewrite stays safe:
- The whole run holds the instance lock exclusively (`lock.py`): no chat turn, index drain,
  import or backup runs meanwhile, so none sees a half-rewritten file.
- `mnemara note` takes no instance lock; it appends under the day file's own flock. Each note
  file is read, rewritten to a temp file and renamed over the original while holding that flock,
  and a writer that waited on the old file's lock notices the rename and appends to the new file
  (`memory/notes.py`), so no note is lost. Wiki pages are rewritten under `.wiki.lock`, the lock
  every wiki write takes.
- Each file is replaced atomically (temp file in the same directory, fsync, rename, mode 0600):
  readers see the old file or the new one. Bytes that are not UTF-8 survive unchanged.
- Note ids are `note:<file>:<line>`, so no line may move: a secret spanning lines (a PEM block)
  leaves its line breaks after the marker, each note is redacted on its own (a key cut short in
  one note never swallows the next note's header), and a file whose note headers would still
  change is left alone with a warning.
- The index entries of the changed notes and pages are queued again in the index outbox, so the
  index holds the redacted text even where it was built with `redact` off.
"""

from __future__ import annotations

import fcntl
import os
import stat
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from ..fsutil import PRIVATE_FILE, atomic_output
from ..redact import find_secrets, replace_spans

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore

TURNS_NOTE = "the turn store is not touched: turns keep what was typed"


@dataclass(frozen=True)
class Secret:
    """One secret found: where (file relative to the instance, 1-based line) and its kind.
    The secret itself is never kept."""

    path: str
    line: int
    kind: str


@dataclass
class RedactReport:
    instance: str
    dry_run: bool
    scanned: int = 0                                     # note and wiki files read
    secrets: list[Secret] = field(default_factory=list)  # in file, then line order
    rewritten: list[str] = field(default_factory=list)   # files replaced (none on a dry run)
    requeued: int = 0                                    # index operations queued
    warnings: list[str] = field(default_factory=list)

    def per_file(self) -> dict[str, list[Secret]]:
        out: dict[str, list[Secret]] = {}
        for s in self.secrets:
            out.setdefault(s.path, []).append(s)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "instance": self.instance, "dry_run": self.dry_run, "scanned_files": self.scanned,
            "total": len(self.secrets),
            "files": [{"path": path, "count": len(found),
                       "secrets": [{"line": s.line, "kind": s.kind} for s in found],
                       "rewritten": path in self.rewritten}
                      for path, found in self.per_file().items()],
            "index_requeued": self.requeued, "turn_store_touched": False,
            "warnings": self.warnings,
        }


def redact_instance(instance: "Instance", config: "Config", *, dry_run: bool = False) -> RedactReport:
    """Find (and unless `dry_run`, rewrite) every secret in the instance's notes and wiki pages.

    A dry run takes no lock and writes nothing. A real run takes the instance lock exclusively
    (InstanceBusy after the bounded wait, with nothing written) and opens the turn store before
    touching any file, so a damaged store is refused (StoreDamaged) with nothing changed.
    """
    report = RedactReport(instance.name, dry_run)
    if dry_run:
        _scan(instance, report, store=None, config=config, write=False)
        return report
    from ..lock import instance_lock
    with instance_lock(instance, exclusive=True, purpose="redaction"):
        store = None
        if instance.turns_path.exists():
            from ..store.turns import TurnStore
            store = TurnStore(instance.turns_path)  # raises StoreDamaged/StoreError first
        try:
            _scan(instance, report, store=store, config=config, write=True)
        finally:
            if store is not None:
                store.close()
    return report


# --- the scan -------------------------------------------------------------------------------------

def _scan(instance: "Instance", report: RedactReport, *, store: "TurnStore | None",
          config: "Config", write: bool) -> None:
    from ..memory.notes import parse_notes
    superseded = ({r[0] for r in store.conn.execute("SELECT atom_id FROM superseded")}
                  if store is not None else set())
    for path in _note_files(instance.memory_dir):
        changed = _note_file(instance, path, report, write)
        report.scanned += 1
        if changed and store is not None and config.rag_auto_index_memory:
            from ..memory.outbox import enqueue
            from ..memory.sources import note_atom
            with store.transaction():
                for note in parse_notes(path):
                    if note.line in changed and note.body.strip():
                        atom = note_atom(note)
                        enqueue(store.conn, "upsert", atom.id, _mark(atom, superseded))
                        report.requeued += 1
    _scan_archive(instance, report, store=store, config=config, write=write, superseded=superseded)
    wiki_dir = instance.wiki_dir
    if not wiki_dir.is_dir():
        return
    changed_pages: list[tuple[str, int]] = []
    with _wiki_lock(wiki_dir, write):
        for path in _wiki_files(wiki_dir):
            page = _wiki_file(instance, path, report, write)
            report.scanned += 1
            if page is not None:
                changed_pages.append(page)
    # Queued after `.wiki.lock` is released: a wiki writer takes the store's write lock first and
    # `.wiki.lock` second, so taking them the other way round here could make both wait.
    if changed_pages and store is not None and config.rag_auto_index_wiki:
        _requeue_pages(instance, store, changed_pages, superseded, report)


def _scan_archive(instance: "Instance", report: RedactReport, *, store: "TurnStore | None",
                  config: "Config", write: bool, superseded: set[str]) -> None:
    """The notes replay archived (`memory/archive/`): stored and searchable like any note, so
    redacted like one. Their index entries keep the ids they had (`memory/archive.py`)."""
    from ..memory.archive import ARCHIVE_DIR, archived_atom, iter_archived
    folder = instance.memory_dir / ARCHIVE_DIR
    if folder.is_symlink():
        report.warnings.append(f"memory/{ARCHIVE_DIR}: a link, not followed; nothing in it was rewritten")
        return
    for path in _note_files(folder):
        changed = _note_file(instance, path, report, write, archive=True)
        report.scanned += 1
        if not (changed and store is not None and config.rag_auto_index_memory):
            continue
        from ..memory.notes import iter_notes
        from ..memory.outbox import enqueue
        from ..memory.sources import note_id
        active = {note_id(n.path, n.line) for n in iter_notes(instance.memory_dir)}
        with store.transaction():
            for entry in iter_archived(instance.memory_dir):
                if (entry.note.path.name == path.name and entry.note.line in changed
                        and entry.original_id not in active and entry.note.body.strip()):
                    atom = archived_atom(entry)
                    enqueue(store.conn, "upsert", atom.id, _mark(atom, superseded))
                    report.requeued += 1


def _mark(atom: Any, superseded: set[str]) -> Any:
    """The atom as the index must hold it: still marked superseded if it was."""
    from ..index.atoms import Atom
    return Atom(**{**atom.__dict__, "superseded": True}) if atom.id in superseded else atom


def _note_files(memory_dir: Path) -> list[Path]:
    if not memory_dir.is_dir():
        return []
    return [p for p in sorted(memory_dir.glob("*.md")) if not p.is_symlink() and p.is_file()]


def _wiki_files(wiki_dir: Path) -> list[Path]:
    """Every regular `.md` file under the wiki directory; links (to files or directories) are
    never followed, so nothing outside the wiki is rewritten."""
    found = []
    for dirpath, dirnames, filenames in os.walk(wiki_dir, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            if name.endswith(".md") and not p.is_symlink() and p.is_file():
                found.append(p)
    return found


def _note_file(instance: "Instance", path: Path, report: RedactReport, write: bool, *,
               archive: bool = False) -> set[int]:
    """Redact one note file under its flock; returns the header lines of the notes changed.
    `archive`: a file of archived notes, whose markers get the digest of the redacted text."""
    from ..memory.archive import reseal
    from ..memory.notes import note_header_lines
    with _locked_file(path, exclusive=write) as fd:
        if fd is None:
            return set()
        text = _read(fd)
        headers = note_header_lines(text)
        rel = str(path.relative_to(instance.root))
        # Each note (and the text before the first header) is redacted on its own.
        starts = _line_starts(text)
        bounds = [0] + [starts[n - 1] for n in headers if n > 1] + [len(text)]
        owner = [0] + [n for n in headers if n > 1]  # the note header each chunk belongs to
        if headers and headers[0] == 1:
            owner[0] = 1
        parts: list[str] = []
        changed: set[int] = set()
        found: list[Secret] = []
        for i in range(len(bounds) - 1):
            chunk = text[bounds[i]:bounds[i + 1]]
            secrets = find_secrets(chunk)
            for kind, start, _end in secrets:
                found.append(Secret(rel, text.count("\n", 0, bounds[i] + start) + 1, kind))
            if secrets and owner[i]:
                changed.add(owner[i])
            redacted = replace_spans(chunk, secrets, keep_lines=True)
            parts.append(reseal(redacted) if archive and secrets and owner[i] else redacted)
        if not found:
            return set()
        new = "".join(parts)
        if note_header_lines(new) != headers:
            report.warnings.append(f"{rel}: left unchanged, redacting it would move a note "
                                   "header; edit its secrets by hand")
            return set()
        report.secrets.extend(found)
        if write:
            _replace(path, new)
            report.rewritten.append(rel)
        return changed


def _wiki_file(instance: "Instance", path: Path, report: RedactReport,
               write: bool) -> tuple[str, int] | None:
    """Redact one wiki page (under `.wiki.lock`, held by the caller); returns (slug, number of
    sections before) of a rewritten page the index holds, for `_requeue_pages`."""
    from ..memory.wiki import Wiki, WikiError, page_atoms
    rel = str(path.relative_to(instance.root))
    with _locked_file(path, exclusive=False, lock=False) as fd:
        if fd is None:
            return None
        text = _read(fd)
    secrets = find_secrets(text)
    if not secrets:
        return None
    report.secrets.extend(Secret(rel, text.count("\n", 0, start) + 1, kind)
                          for kind, start, _end in secrets)
    if not write:
        return None
    wiki = Wiki(instance.wiki_dir)
    slug = path.relative_to(instance.wiki_dir).as_posix()[:-3]
    try:
        before: int | None = len(page_atoms(wiki.read(slug)))
    except WikiError:
        before = None  # a file no slug names: the index never held it
    _replace(path, replace_spans(text, secrets, keep_lines=True))
    report.rewritten.append(rel)
    return None if before is None else (slug, before)


def _requeue_pages(instance: "Instance", store: "TurnStore", pages: list[tuple[str, int]],
                   superseded: set[str], report: RedactReport) -> None:
    """Queue the sections of rewritten pages again, and the removal of sections a page lost (a
    redacted block that held a heading)."""
    from ..memory.outbox import enqueue
    from ..memory.wiki import Wiki, WikiError, page_atoms
    wiki = Wiki(instance.wiki_dir)
    with store.transaction():
        for slug, before in pages:
            try:
                atoms = page_atoms(wiki.read(slug))
            except WikiError:
                atoms = []  # removed since: its sections go
            for atom in atoms:
                enqueue(store.conn, "upsert", atom.id, _mark(atom, superseded))
            for n in range(len(atoms) + 1, before + 1):
                enqueue(store.conn, "delete", f"wiki:{slug}#{n}")
            report.requeued += len(atoms) + max(0, before - len(atoms))


# --- files ----------------------------------------------------------------------------------------

@contextmanager
def _locked_file(path: Path, *, exclusive: bool, lock: bool = True) -> Iterator[int | None]:
    """`path` opened read-only (never through a link, never blocking on a FIFO), under its own
    flock when `lock`; None when it is gone or not a regular file. Exclusive: the lock `mnemara
    note` appends under, held until the rewritten file has replaced it."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            yield None
            return
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)  # releases the flock, after the rename


@contextmanager
def _wiki_lock(wiki_dir: Path, write: bool) -> Iterator[None]:
    """`.wiki.lock`, the lock every wiki write holds (`memory/wiki.py`); a dry run takes none."""
    if not write:
        yield
        return
    from ..memory.wiki import _LOCK_NAME
    fd = os.open(wiki_dir.resolve() / _LOCK_NAME, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC,
                 PRIVATE_FILE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read(fd: int) -> str:
    """The whole file; bytes that are not UTF-8 are kept as surrogates, so they are written
    back exactly as they were."""
    chunks = []
    offset = 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode("utf-8", errors="surrogateescape")


def _line_starts(text: str) -> list[int]:
    """Offset of each line's first character, lines as `str.splitlines` counts them."""
    starts, pos = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(pos)
        pos += len(line)
    return starts


def _replace(path: Path, text: str) -> None:
    """Replace `path` by a file holding `text` atomically, mode 0600, the directory synced
    (bytes that were not UTF-8 are written back as they were)."""
    with atomic_output(path, binary=True, sync_dir=True) as fh:
        fh.write(text.encode("utf-8", errors="surrogateescape"))


__all__ = ["RedactReport", "Secret", "TURNS_NOTE", "redact_instance"]
