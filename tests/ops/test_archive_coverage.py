"""Notes `mnemara replay` archived (`memory/archive/`) are memory like any other note: an export
carries them and an import puts them back where they were (same ids, still out of automatic
recall, and replay does not archive them a second time); `mnemara doctor` finds the secrets in
them and `mnemara redact` rewrites those (the index follows); `mnemara search` finds them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mnemara.config import Config
from mnemara.instance import Instance
from mnemara.memory.archive import Move, archive_notes, archived_ids, iter_archived, text_digest
from mnemara.memory.notes import iter_notes, parse_notes, write_note_block
from tests.replay.replay_setup import make_replay_instance

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def note_ids(inst: Instance) -> dict[str, str]:
    return {f"note:{n.path.name}:{n.line}": n.body for n in iter_notes(inst.memory_dir)}


def test_an_export_carries_the_archive_and_an_import_restores_it(cli: Any, mnemara_home: Path,
                                                                 tmp_path: Path) -> None:
    source = make_replay_instance("work")
    applied = cli("replay", "-i", "work", "--apply", "--json")
    assert applied.exit_code == 0, applied.stderr + applied.stdout
    archived = sorted(archived_ids(source.memory_dir))
    assert len(archived) == 2

    first = tmp_path / "first.jsonl"
    assert cli("export", "-i", "work", "-o", str(first)).exit_code == 0
    recs = records(first)
    assert sorted(r["id"] for r in recs if r["type"] == "archived_note") == archived
    assert "## Archived notes" in cli("export", "-i", "work", "--format", "md").stdout

    Instance.named("copy").create(Config.defaults().replace(rag_embedder="hash"))
    imported = cli("import", "-i", "copy", str(first))
    assert imported.exit_code == 0, imported.stderr + imported.stdout
    copy = Instance.named("copy")
    assert sorted(archived_ids(copy.memory_dir)) == archived  # the archive is back, ids kept
    day = next(iter_archived(source.memory_dir)).note.path.name
    assert (copy.memory_dir / "archive" / day).read_bytes() == \
        (source.memory_dir / "archive" / day).read_bytes()
    assert note_ids(copy) == note_ids(source)  # the notes that stayed keep their ids too

    second = tmp_path / "second.jsonl"
    assert cli("export", "-i", "copy", "-o", str(second)).exit_code == 0
    assert records(second)[1:] == recs[1:]  # lossless round trip (all but the header)

    # Replay on the copy finds the duplicates already archived: nothing archived or proposed again.
    again = json.loads(cli("replay", "-i", "copy", "--apply", "--json").stdout)
    assert again["written"]["archived"] == [] and again["written"]["proposals"] == []
    # Still searchable in the copy's index, marked as archived (so never recalled automatically).
    found = json.loads(cli("recall", "-i", "copy", "--json", "-k", "20", "--kind", "note",
                           "deploys staging host stg-7 make deploy").stdout)
    sources = {h["id"]: h["source"] for h in found["hits"]}
    shown = [i for i in archived if i in sources]  # (one is word for word its keeper: merged)
    assert shown and all(sources[i] == f"memory/archive/{day}" for i in shown)


def test_an_imported_day_file_keeps_the_lines_of_its_archived_last_note(
        cli: Any, make_instance: Any, tmp_path: Path) -> None:
    inst = make_instance("work", rag_enabled=False)
    path, first, _ = write_note_block(inst.memory_dir, "the staging host is stg-7")
    _, last, _ = write_note_block(inst.memory_dir, "the staging host is stg-7, again")
    body = next(n.body for n in parse_notes(path) if n.line == last)
    archive_notes(inst.memory_dir, path, [Move(f"note:{path.name}:{last}", text_digest(body),
                                               f"note:{path.name}:{first}")], "2026-12-05")
    out = tmp_path / "e.jsonl"
    assert cli("export", "-i", "work", "-o", str(out)).exit_code == 0
    Instance.named("copy").create(Config.defaults().replace(rag_enabled=False))
    assert cli("import", "-i", "copy", str(out)).exit_code == 0
    copy = Instance.named("copy")
    # A note written later to that day file never takes the id the archived note keeps.
    _, line, _ = write_note_block(copy.memory_dir, "a new note")
    assert f"note:{path.name}:{line}" not in archived_ids(copy.memory_dir)
    assert line > last


@pytest.fixture
def secret_in_archive(make_instance: Any, cli: Any) -> Instance:
    """An instance (redaction was off) whose only secret is in a note replay archived, with
    the memory index built from its notes."""
    inst = make_instance("work", rag_embedder="hash", redact=False)
    path, kept, _ = write_note_block(inst.memory_dir, "the CI pipeline pushes to the zebra registry")
    _, dup, _ = write_note_block(inst.memory_dir, f"the CI pipeline pushes to the zebra registry with {GITHUB}")
    body = next(n.body for n in parse_notes(path) if n.line == dup)
    archive_notes(inst.memory_dir, path, [Move(f"note:{path.name}:{dup}", text_digest(body),
                                               f"note:{path.name}:{kept}")], "2026-12-05")
    assert GITHUB not in path.read_text()
    assert cli("reindex", "-i", "work").exit_code == 0
    return inst


def test_doctor_finds_a_secret_in_an_archived_note(secret_in_archive: Instance, cli: Any) -> None:
    env = {"ANTHROPIC_API_KEY": "test-key"}
    doctor = json.loads(cli("doctor", "-i", "work", "--json", env=env).stdout)
    check = next(c for c in doctor["checks"] if c["check"] == "secrets in notes")
    assert check["status"] != "ok" and "memory/archive/" in check["detail"], check


def test_redact_rewrites_an_archived_note_and_the_index_follows(secret_in_archive: Instance,
                                                                cli: Any) -> None:
    inst = secret_in_archive
    (archive_file,) = (inst.memory_dir / "archive").glob("*.md")
    (entry_before,) = iter_archived(inst.memory_dir)
    query = ("recall", "-i", "work", "--json", "-k", "10", "CI pipeline zebra registry")
    assert GITHUB in cli(*query).stdout  # the index holds it (built with redaction off)

    dry = cli("redact", "-i", "work", "--dry-run")
    assert f"memory/archive/{archive_file.name}" in dry.stdout, dry.stdout
    result = cli("redact", "-i", "work")
    assert result.exit_code == 0, result.output
    assert GITHUB not in archive_file.read_text()
    (entry,) = iter_archived(inst.memory_dir)
    assert entry.original_id == entry_before.original_id and entry.kept_id == entry_before.kept_id
    assert "[redacted:github-token]" in entry.note.body
    assert entry.digest == text_digest(entry.note.body)  # the marker follows the new text
    assert os.stat(archive_file).st_mode & 0o777 == 0o600

    recalled = cli(*query)
    assert GITHUB not in recalled.stdout and "[redacted:github-token]" in recalled.stdout
    hits = {h["id"]: h["source"] for h in json.loads(recalled.stdout)["hits"]}
    assert hits[entry.original_id] == f"memory/archive/{archive_file.name}"  # same id, still archived


def test_search_finds_archived_notes_and_says_where_they_are(secret_in_archive: Instance, cli: Any) -> None:
    from mnemara.ops.memory import search
    (entry,) = iter_archived(secret_in_archive.memory_dir)
    hits = search(secret_in_archive, "pushes zebra registry")
    assert {(h.path, h.line) for h in hits} >= {(entry.note.path, entry.note.line)}
    shown = cli("search", "-i", "work", "zebra", "registry", GITHUB[:8]).stdout
    assert f"memory archive/{entry.note.path.name}:{entry.note.line}" in shown, shown


@pytest.mark.parametrize("change, fragment", [
    ({"id": "note:2026-01-01.md:3"}, "is not a note of"),
    ({"kept": "turn:4"}, "is not a note id"),
    ({"archived_on": "yesterday"}, "is not a YYYY-MM-DD date"),
    ({"extra": 1}, "unknown key"),
])
def test_a_bad_archived_note_record_imports_nothing(secret_in_archive: Instance, cli: Any,
                                                    tmp_path: Path, assert_user_error: Any,
                                                    change: dict[str, Any], fragment: str) -> None:
    out = tmp_path / "e.jsonl"
    assert cli("export", "-i", "work", "-o", str(out)).exit_code == 0
    recs = records(out)
    (archived,) = [r for r in recs if r["type"] == "archived_note"]
    archived.update(change)
    out.write_text("".join(json.dumps(r) + "\n" for r in recs))
    result = cli("import", "-i", "copy", str(out))
    assert_user_error(result, fragment, "nothing was imported")
    assert not Instance.named("copy").memory_dir.exists()
