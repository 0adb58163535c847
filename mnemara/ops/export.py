"""Export an instance: every turn (window and archive) with all its blocks, usage, pin, status and
times; memory notes; wiki pages; manual index entries and supersede marks.

Two formats:

- `jsonl` (the default), for machines and for `mnemara import`, which takes it back losslessly:
  one JSON object per line, each with a `type`:

      {"type": "header", "format": "mnemara-export", "version": 1, "instance": "work",
       "exported_at": "2026-12-05T15:00:00Z", "redacted": true}
      {"type": "turn", "id": 12, "where": "window" | "archive", "role": "user" | "assistant",
       "created_at": "...Z", "status": "complete" | "failed" | "interrupted" | "pending",
       "pinned": false, "model": null, "usage": {...} | null, "cost_usd": 0.01 | null,
       "blocks": [...content blocks as stored...],
       "archived_at": "...Z" | null, "archive_reason": "budget" | null}
      {"type": "note", "file": "2026-05-01.md", "line": 14, "at": "2026-05-01T10:00:00+00:00",
       "category": "insight", "text": "..."}
      {"type": "archived_note", "file": "2026-05-01.md", "line": 3, "at": "...", "category": "...",
       "text": "...", "id": "note:2026-05-01.md:20", "kept": "note:2026-05-01.md:14",
       "archived_on": "2026-05-07"}   (a near-duplicate replay moved to memory/archive/: "file"
       and "line" place it there, "id" is the id it keeps; memory/archive.py)
      {"type": "wiki", "slug": "deploy/staging", "updated_at": "...Z", "text": "...whole page..."}
      {"type": "entry", "atom": {...a manual index entry (rag_index) as stored...}}
      {"type": "superseded", "atom_id": "...", "by_id": "...", "reason": "..." | null, "at": "...Z"}
      {"type": "slot", "id": 3, "name": "current_task", "text": "...", "action": "set",
       "author": "model" | "user", "reverts": null, "created_at": "...Z"}   (every slot version)
      {"type": "graph", "graph": {"format": "mnemara-graph", "version": 1, "nodes": [...],
       "edges": [...]}}   (what the model added to the knowledge graph, if anything: ops/graph.py)
      {"type": "proposal", "proposal": {...proposals/<id>.json as stored...}}   (ops/proposals.py)

  Records come in that order (turns by id). Non-ASCII text is written as is, except characters a
  terminal would obey or that would hide text (controls, bidi overrides), which are `\\uXXXX`
  escapes: the same JSON value, safe to print.
- `md`, for people: the same content as Markdown. Written to a terminal it is made inert
  (control characters shown as escapes); into a file or a pipe it keeps the text as it is.

With the config's `redact` on (the default), every free-text string (turn text, tool input and
output, thinking, notes, pages, entries) has its secrets replaced by markers; identifiers and
thinking signatures are kept. The instance itself is not changed.

Consistency: the turns are read in one SQLite read transaction, and the whole export holds the
instance lock shared, so an import or a restore cannot rewrite the instance halfway through.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, TextIO

from ..errors import MnemaraError
from ..fsutil import atomic_output

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

FORMAT = "mnemara-export"
VERSION = 1
FORMATS = ("jsonl", "md")
TURN_KEYS = ("type", "id", "where", "role", "created_at", "status", "pinned", "model", "usage",
             "cost_usd", "blocks", "archived_at", "archive_reason")
NOTE_KEYS = ("type", "file", "line", "at", "category", "text")
ARCHIVED_NOTE_KEYS = (*NOTE_KEYS, "id", "kept", "archived_on")
WIKI_KEYS = ("type", "slug", "updated_at", "text")
ENTRY_KEYS = ("type", "atom")
SUPERSEDED_KEYS = ("type", "atom_id", "by_id", "reason", "at")
SLOT_KEYS = ("type", "id", "name", "text", "action", "author", "reverts", "created_at")
HEADER_KEYS = ("type", "format", "version", "instance", "exported_at", "redacted")
_COLUMNS = ("id, role, content, created_at, model, usage, cost_usd, status, pinned")


@dataclass(frozen=True)
class ExportReport:
    turns: int
    notes: int
    wiki_pages: int
    entries: int
    secrets_redacted: int
    path: str | None  # None: written to stdout

    def line(self) -> str:
        where = f"to {self.path}" if self.path else "to stdout"
        text = (f"exported {self.turns:,} turn{'s' if self.turns != 1 else ''}, {self.notes:,} "
                f"note{'s' if self.notes != 1 else ''}, {self.wiki_pages:,} wiki "
                f"page{'s' if self.wiki_pages != 1 else ''}")
        if self.entries:
            text += f", {self.entries:,} index entr{'ies' if self.entries != 1 else 'y'}"
        if self.secrets_redacted:
            text += f" ({self.secrets_redacted:,} secret{'s' if self.secrets_redacted != 1 else ''} redacted)"
        return f"{text} {where}"


class _Redactor:
    """Redacts free text when on, and counts what it replaced (for the report)."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.count = 0

    def text(self, text: str) -> str:
        if not self.on:
            return text
        from ..redact import find_secrets, replace_spans
        found = find_secrets(text)
        self.count += len(found)
        return replace_spans(text, found)

    def value(self, value: Any) -> Any:
        """A JSON-like value with its free-text strings redacted (identifiers and signatures
        kept, as `redact.redact_value` does)."""
        if not self.on:
            return value
        from ..redact import STRUCTURAL_KEYS
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            return {k: (v if k in STRUCTURAL_KEYS else self.value(v)) for k, v in value.items()}
        return value


# -- reading the instance -------------------------------------------------------------------------

def iter_records(instance: "Instance", config: "Config", *, exported_at: str,
                 redactor: _Redactor | None = None) -> Iterator[dict[str, Any]]:
    """Every record of the export, header first (see the module docstring)."""
    redactor = redactor or _Redactor(bool(config.redact))
    yield {"type": "header", "format": FORMAT, "version": VERSION, "instance": instance.name,
           "exported_at": exported_at, "redacted": redactor.on}
    entries: list[dict[str, Any]] = []
    superseded: list[dict[str, Any]] = []
    slots: list[dict[str, Any]] = []
    if instance.turns_path.exists():
        from ..store.turns import TurnStore
        with TurnStore(instance.turns_path, readonly=True) as store:
            conn = store.conn
            conn.execute("BEGIN")  # one snapshot for every table read below
            try:
                rows = conn.execute(
                    f"SELECT {_COLUMNS}, 'window' AS at_where, NULL AS archived_at,"
                    f" NULL AS archive_reason FROM turns UNION ALL"
                    f" SELECT {_COLUMNS}, 'archive', archived_at, archive_reason FROM archive"
                    f" ORDER BY id")
                for row in rows:
                    yield _turn_record(row, redactor)
                for (data,) in conn.execute("SELECT atom FROM manual_atoms ORDER BY created_at, id"):
                    atom = json.loads(data)
                    if isinstance(atom.get("text"), str):
                        atom["text"] = redactor.text(atom["text"])
                    entries.append({"type": "entry", "atom": atom})
                for atom_id, by_id, reason, at in conn.execute(
                        "SELECT atom_id, by_id, reason, at FROM superseded ORDER BY at, atom_id"):
                    superseded.append({"type": "superseded", "atom_id": atom_id, "by_id": by_id,
                                       "reason": None if reason is None else redactor.text(reason),
                                       "at": at})
                for row in conn.execute("SELECT * FROM slot_versions ORDER BY id"):
                    slots.append({"type": "slot", **{k: row[k] for k in SLOT_KEYS[1:]},
                                  "text": redactor.text(row["text"])})
            finally:
                conn.execute("COMMIT")
    yield from _note_records(instance, redactor)
    yield from _archived_note_records(instance, redactor)
    yield from _wiki_records(instance, redactor)
    yield from entries
    yield from superseded
    yield from slots
    from .graph import export_records  # the knowledge graph, when on: {"type": "graph", ...}
    yield from export_records(instance, config, redactor.text if redactor.on else None)
    from .proposals import export_records as proposal_records  # decisions travel too
    yield from proposal_records(instance, redactor.text if redactor.on else None)


def _turn_record(row: Any, redactor: _Redactor) -> dict[str, Any]:
    return {"type": "turn", "id": row["id"], "where": row["at_where"], "role": row["role"],
            "created_at": row["created_at"], "status": row["status"], "pinned": bool(row["pinned"]),
            "model": row["model"], "usage": json.loads(row["usage"]) if row["usage"] else None,
            "cost_usd": row["cost_usd"], "blocks": redactor.value(json.loads(row["content"])),
            "archived_at": row["archived_at"], "archive_reason": row["archive_reason"]}


def _note_records(instance: "Instance", redactor: _Redactor) -> Iterator[dict[str, Any]]:
    from ..memory.notes import iter_notes
    for note in iter_notes(instance.memory_dir):
        yield {"type": "note", "file": note.path.name, "line": note.line, "at": note.at,
               "category": note.category, "text": redactor.text(note.body)}


def _archived_note_records(instance: "Instance", redactor: _Redactor) -> Iterator[dict[str, Any]]:
    """The notes replay archived (still searchable, so they travel with the rest of memory)."""
    from ..memory.archive import iter_archived
    for entry in iter_archived(instance.memory_dir):
        note = entry.note
        yield {"type": "archived_note", "file": note.path.name, "line": note.line, "at": note.at,
               "category": note.category, "text": redactor.text(note.body),
               "id": entry.original_id, "kept": entry.kept_id, "archived_on": entry.on}


def _wiki_records(instance: "Instance", redactor: _Redactor) -> Iterator[dict[str, Any]]:
    from ..memory.wiki import Wiki, WikiError
    wiki = Wiki(instance.wiki_dir)
    for entry in wiki.list():
        try:
            page = wiki.read(entry.slug)
        except WikiError as exc:
            raise MnemaraError(f"cannot export wiki page {entry.slug!r}: {exc}") from None
        yield {"type": "wiki", "slug": page.slug, "updated_at": page.updated_at,
               "text": redactor.text(page.text)}


# -- writing --------------------------------------------------------------------------------------

def jsonl_line(record: dict[str, Any]) -> str:
    """One record as a JSON line that is safe on a terminal (see the module docstring)."""
    from ..termsafe import inert_json
    return inert_json(json.dumps(record, ensure_ascii=False)) + "\n"


def export(instance: "Instance", config: "Config", *, fmt: str = "jsonl",
           output: str | Path | None = None, force: bool = False,
           now: Callable[[], str] | None = None) -> ExportReport:
    """Write the export of `instance` to `output` (a path; None: stdout). A file is created 0600
    and appears complete or not at all; an existing one is replaced only with `force`."""
    from ..lock import instance_lock
    from ..store.turns import utc_now
    from .import_export import finish_interrupted_import
    if fmt not in FORMATS:
        raise MnemaraError(f"unknown export format {fmt!r}; use {' or '.join(FORMATS)}")
    target = _check_output(output, force) if output is not None else None
    finish_interrupted_import(instance)
    redactor = _Redactor(bool(config.redact))
    counts = {"turn": 0, "note": 0, "wiki": 0, "entry": 0}
    with instance_lock(instance, exclusive=False, purpose="export"):
        records = iter_records(instance, config, exported_at=(now or utc_now)(), redactor=redactor)

        def counted() -> Iterator[dict[str, Any]]:
            for record in records:
                if record["type"] in counts:
                    counts[record["type"]] += 1
                yield record

        if target is None:
            to_terminal = sys.stdout.isatty()
            _write(counted(), fmt, sys.stdout, terminal=to_terminal)
            sys.stdout.flush()
        else:
            _write_file(target, force, lambda fh: _write(counted(), fmt, fh, terminal=False))
    return ExportReport(counts["turn"], counts["note"], counts["wiki"], counts["entry"],
                        redactor.count, None if target is None else str(output))


def _check_output(output: str | Path, force: bool) -> Path:
    path = Path(output)
    if path.is_dir():
        raise MnemaraError(f"{output} is a directory; give a file name with -o")
    if not path.parent.is_dir():
        raise MnemaraError(f"cannot write {output}: the directory {path.parent} does not exist")
    if os.path.lexists(path) and not force:
        raise MnemaraError(f"{output} already exists; add --force to replace it")
    return path


def _write_file(path: Path, force: bool, write: Callable[[TextIO], None]) -> None:
    """Write through a private temp file, then put it in place: replaced with `force`, else
    only if the name is still free (a file that appeared meanwhile is not clobbered). Readers
    never see a half-written export."""
    try:
        with atomic_output(path, overwrite=force, newline="") as fh:
            write(fh)
    except FileExistsError:
        raise MnemaraError(f"{path} already exists; add --force to replace it") from None


def _write(records: Iterator[dict[str, Any]], fmt: str, out: TextIO, *, terminal: bool) -> None:
    if fmt == "jsonl":
        for record in records:
            out.write(jsonl_line(record))
        return
    from ..termsafe import inert
    for chunk in markdown(records):
        out.write(inert(chunk) if terminal else chunk)


# -- Markdown -------------------------------------------------------------------------------------

def markdown(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    """The export as Markdown, one chunk per record: turns with their blocks in full, then notes,
    wiki pages and index entries."""
    section = None
    titles = {"turn": "## Conversation (archive, then the window)", "note": "## Memory notes",
              "archived_note": "## Archived notes (near-duplicates, kept by another note)",
              "wiki": "## Wiki pages", "entry": "## Index entries", "superseded": "## Corrections",
              "slot": "## Slots (every version)", "graph": "## Knowledge graph",
              "proposal": "## Proposals"}
    for record in records:
        kind = record["type"]
        if kind == "header":
            yield (f"# mnemara export of instance `{record['instance']}`\n\n"
                   f"Exported {record['exported_at']} (format {record['format']} "
                   f"{record['version']}; secrets {'redacted' if record['redacted'] else 'not redacted'}).\n")
            continue
        if kind != section:
            section = kind
            yield f"\n{titles[kind]}\n"
        yield _MD[kind](record)


def _fence(text: str, info: str = "") -> str:
    """`text` in a code fence longer than any backtick run inside it."""
    longest, run = 0, 0
    for ch in text:
        run = run + 1 if ch == "`" else 0
        longest = max(longest, run)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}\n"


def _md_turn(r: dict[str, Any]) -> str:
    flags = [r["status"]] if r["status"] != "complete" else []
    if r["pinned"]:
        flags.append("pinned")
    if r["where"] == "archive":
        flags.append(f"archived {r['archived_at']} ({r['archive_reason']})")
    head = f"\n### #{r['id']} {r['role']} · {r['created_at']}"
    if r.get("model"):
        head += f" · {r['model']}"
    if flags:
        head += f" · {', '.join(flags)}"
    parts = [head + "\n"]
    if r.get("usage") or r.get("cost_usd") is not None:
        usage = r.get("usage") or {}
        bits = [f"{usage.get('input_tokens', 0):,} in / {usage.get('output_tokens', 0):,} out"]
        if r.get("cost_usd") is not None:
            bits.append(f"${r['cost_usd']:.4f}")
        parts.append(f"\n_usage: {', '.join(bits)}_\n")
    for block in r["blocks"]:
        parts.append("\n" + _md_block(block))
    return "".join(parts)


def _md_block(block: dict[str, Any]) -> str:
    from ..store.blocks import result_text
    kind = block.get("type")
    if kind == "text":
        return block.get("text", "").rstrip("\n") + "\n"
    if kind == "tool_use":
        args = json.dumps(block.get("input", {}), ensure_ascii=False, indent=2, sort_keys=True)
        return f"**tool call** `{block.get('name', '?')}` ({block.get('id', '')}):\n\n" + _fence(args, "json")
    if kind == "tool_result":
        label = "tool error" if block.get("is_error") else "tool result"
        return f"**{label}** ({block.get('tool_use_id', '')}):\n\n" + _fence(result_text(block.get("content")))
    if kind == "thinking":
        quoted = "\n".join("> " + line for line in (block.get("thinking") or "").splitlines())
        return f"**thinking** (not re-sent):\n\n{quoted}\n"
    if kind == "recall":
        items = block.get("items") or []
        lines = [f"- `{i.get('id', '?')}` ({i.get('time', '')}): {' '.join(str(i.get('text', '')).split())[:200]}"
                 for i in items]
        return f"**recalled** {len(items)} memor{'y' if len(items) == 1 else 'ies'}:\n\n" + "\n".join(lines) + "\n"
    return f"**{kind} block**:\n\n" + _fence(json.dumps(block, ensure_ascii=False, indent=2), "json")


def _md_note(r: dict[str, Any]) -> str:
    return f"\n### memory/{r['file']}:{r['line']} · {r['at']} · {r['category']}\n\n{r['text']}\n"


def _md_archived_note(r: dict[str, Any]) -> str:
    return (f"\n### memory/archive/{r['file']}:{r['line']} · {r['at']} · {r['category']} · "
            f"was {r['id']}, kept by {r['kept']} since {r['archived_on']}\n\n{r['text']}\n")


def _md_wiki(r: dict[str, Any]) -> str:
    return f"\n### wiki/{r['slug']}.md · updated {r['updated_at']}\n\n" + _fence(r["text"], "markdown")


def _md_entry(r: dict[str, Any]) -> str:
    atom = r["atom"]
    category = f" [{atom['category']}]" if atom.get("category") else ""
    return f"\n### {atom.get('id', '?')}{category} · {atom.get('created_at', '')}\n\n{atom.get('text', '')}\n"


def _md_superseded(r: dict[str, Any]) -> str:
    reason = f": {r['reason']}" if r.get("reason") else ""
    return f"\n- `{r['atom_id']}` corrected by `{r['by_id']}` at {r['at']}{reason}\n"


def _md_slot(r: dict[str, Any]) -> str:
    what = f"undo of #{r['reverts']}" if r["action"] == "undo" else r["action"]
    return f"\n- #{r['id']} `{r['name']}` · {r['created_at']} · {r['author']} · {what}:\n\n" + _fence(r["text"])


def _md_graph(r: dict[str, Any]) -> str:
    from .graph import markdown_record
    return markdown_record(r)


def _md_proposal(r: dict[str, Any]) -> str:
    from .proposals import markdown_record
    return markdown_record(r)


_MD: dict[str, Callable[[dict[str, Any]], str]] = {
    "turn": _md_turn, "note": _md_note, "archived_note": _md_archived_note, "wiki": _md_wiki, "entry": _md_entry,
    "superseded": _md_superseded, "slot": _md_slot,
    "graph": _md_graph,
    "proposal": _md_proposal,
}
