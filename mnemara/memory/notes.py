"""Memory notes: append-only Markdown blocks in `memory/YYYY-MM-DD.md`.

    ## [2026-04-27T18:32:01+00:00] insight
    Worth remembering across sessions.

Each block is written with one `write()` on an O_APPEND descriptor under an exclusive `flock`,
so notes from concurrent processes (the TUI, `mnemara note`, the model's write_memory) never
interleave or get lost.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..fsutil import atomic_output, ensure_private_dir, open_flocked

PAYLOAD_FIELDS = ("observation", "evidence", "prediction", "applies_to", "confidence")
_HEADER = re.compile(r"^## \[(?P<at>[^\]]+)\] ?(?P<category>.*)$")
_CATEGORY = re.compile(r"^[\w./-]{1,64}$")


@dataclass(frozen=True)
class Note:
    path: Path
    at: str
    category: str
    body: str
    line: int  # 1-based line of the header in its file


def format_note(text: str, category: str = "note", payload: dict[str, Any] | None = None,
                at: datetime | None = None) -> str:
    """The Markdown block for one note (ends with a blank line)."""
    if not text.strip():
        raise ValueError("a note needs some text")
    category = (category or "note").strip()
    if not _CATEGORY.match(category):
        raise ValueError(f"category {category!r} must be 1-64 letters, digits, '_', '.', '/' or '-'")
    stamp = (at or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    lines = [f"## [{stamp}] {category}", text.strip()]
    if payload:
        unknown = set(payload) - set(PAYLOAD_FIELDS)
        if unknown:
            raise ValueError(f"unknown payload field {sorted(unknown)[0]!r}; "
                             f"use {', '.join(PAYLOAD_FIELDS)}")
        fields = [(k, payload[k]) for k in PAYLOAD_FIELDS if payload.get(k) not in (None, "", [])]
        if fields:
            lines.append("")
            for key, value in fields:
                if isinstance(value, list):
                    value = ", ".join(str(v) for v in value)
                lines.append(f"- **{key}**: {value}")
    # A line in the body that looks like a note header would split the note on reading.
    # re.M: the text is one multi-line entry of `lines`, and every line of it needs the escape.
    body = "\n".join(lines[:1] + [re.sub(r"^## \[", r"\\## [", ln, flags=re.M) for ln in lines[1:]])
    return body + "\n\n"


def append_note(memory_dir: Path, text: str, category: str = "note",
                payload: dict[str, Any] | None = None, at: datetime | None = None) -> Path:
    """Append one note to today's file (UTC date); returns the file written."""
    return write_note_block(memory_dir, text, category, payload, at)[0]


def write_note_block(memory_dir: Path, text: str, category: str = "note",
                     payload: dict[str, Any] | None = None,
                     at: datetime | None = None) -> tuple[Path, int, str]:
    """Append one note; returns (file, 1-based line of its header, its timestamp)."""
    at = at or datetime.now(timezone.utc)
    block = format_note(text, category, payload, at)
    ensure_private_dir(memory_dir)
    path = Path(memory_dir) / f"{at.strftime('%Y-%m-%d')}.md"
    # Under the file's flock, the day file is replaced by a copy holding the new note (temp file
    # and rename): a kill at any moment leaves the old file or the new one, never a torn note (a
    # plain append is not enough: Linux cuts a large write() short when SIGKILL arrives). A
    # writer waiting on the old file's lock sees the swap and retries on the new one
    # (open_flocked); `mnemara redact` swaps files under the same lock.
    fd = open_flocked(path, os.O_RDWR)
    try:
        old = _read_all(fd)
        line = old.count(b"\n") + (1 if old and not old.endswith(b"\n") else 0) + 1
        data = block.encode("utf-8")
        if old and not old.endswith(b"\n"):
            # The file ends mid-line (a hand edit, or a note torn by an older version): start on
            # a line of our own, or this note would be swallowed by the one before.
            data = b"\n" + data
        with atomic_output(path, binary=True) as fh:
            fh.write(old)
            fh.write(data)
    finally:
        os.close(fd)  # releases the lock (on the replaced file: waiting writers move on)
    return path, line, block.split("]", 1)[0].removeprefix("## [")


def note_header_lines(text: str) -> list[int]:
    """The 1-based lines of `text` holding a note header, numbered as `parse_notes` numbers
    them (so a rewrite can check that no note id moved)."""
    return [n for n, line in enumerate(text.splitlines(), 1) if _HEADER.match(line)]


def _read_all(fd: int) -> bytes:
    chunks, offset = [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def iter_notes(memory_dir: Path) -> Iterator[Note]:
    """Every note in `memory/*.md`, oldest file first. Archived notes are not included."""
    memory_dir = Path(memory_dir)
    if not memory_dir.is_dir():
        return
    for path in sorted(memory_dir.glob("*.md")):
        yield from parse_notes(path)


def parse_notes(path: Path) -> Iterator[Note]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    current: tuple[str, str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        m = _HEADER.match(line)
        if m:
            if current:
                yield Note(path, current[0], current[1], "\n".join(body).strip(), current[2])
            current, body = (m["at"], m["category"].strip() or "note", number), []
        elif current:
            body.append(line)
    if current:
        yield Note(path, current[0], current[1], "\n".join(body).strip(), current[2])


def search_notes(memory_dir: Path, query: str, limit: int = 20, *,
                 also: Iterable[Note] = ()) -> list[Note]:
    """Notes containing every word of `query` (case-insensitive), newest first; `also`: more
    notes to search (the archived ones, which `iter_notes` leaves out)."""
    words = [w.lower() for w in re.findall(r"\w+", query)]
    if not words:
        return []
    hits = [n for n in (*iter_notes(memory_dir), *also)
            if all(w in f"{n.category}\n{n.body}".lower() for w in words)]
    hits.sort(key=lambda n: n.at, reverse=True)
    return hits[:limit]
