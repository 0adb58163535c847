"""Memory notes: `## [ISO timestamp] category` blocks appended to memory/YYYY-MM-DD.md."""

from __future__ import annotations

import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mnemara.memory.notes import (append_note, format_note, iter_notes, parse_notes,
                                  search_notes)

AT = datetime(2026, 4, 27, 18, 32, 1, tzinfo=timezone.utc)


def test_format_note_block():
    assert format_note("  Worth remembering.  ", at=AT) == (
        "## [2026-04-27T18:32:01+00:00] note\nWorth remembering.\n\n")
    assert format_note("x", "insight", at=AT).startswith("## [2026-04-27T18:32:01+00:00] insight\n")


def test_default_timestamp_is_now_in_utc_iso_format():
    header = format_note("x").splitlines()[0]
    stamp = header[len("## ["): header.index("]")]
    parsed = datetime.fromisoformat(stamp)
    assert parsed.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - parsed) < timedelta(minutes=1)


@pytest.mark.parametrize("text", ["", "   ", "\n\n"])
def test_empty_note_is_refused(text):
    with pytest.raises(ValueError, match="needs some text"):
        format_note(text)


@pytest.mark.parametrize("category", ["two words", "x" * 65, "a]b", "new\nline", "é!"])
def test_bad_category_is_refused(category):
    with pytest.raises(ValueError, match="category"):
        format_note("x", category)


def test_payload_fields_become_bullets_in_a_fixed_order():
    block = format_note("Deploys fail on Fridays.", "pattern",
                        {"confidence": "high", "evidence": ["run 12", "run 19"], "observation": "flaky",
                         "prediction": None}, at=AT)
    assert block.endswith("\n- **observation**: flaky\n- **evidence**: run 12, run 19\n"
                          "- **confidence**: high\n\n")
    with pytest.raises(ValueError, match="unknown payload field 'mood'"):
        format_note("x", payload={"mood": "good"})


def test_append_creates_private_dir_and_file_named_by_date(tmp_path):
    memory = tmp_path / "memory"
    path = append_note(memory, "first", at=AT)
    assert path == memory / "2026-04-27.md"
    assert stat.S_IMODE(memory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_append_never_truncates(tmp_path):
    memory = tmp_path / "memory"
    memory.mkdir()
    (memory / "2026-04-27.md").write_text("hand-written line\n\n")
    append_note(memory, "one", at=AT)
    append_note(memory, "two", "insight", at=AT + timedelta(seconds=5))
    text = (memory / "2026-04-27.md").read_text()
    assert text == ("hand-written line\n\n"
                    "## [2026-04-27T18:32:01+00:00] note\none\n\n"
                    "## [2026-04-27T18:32:06+00:00] insight\ntwo\n\n")


def test_parse_round_trip_with_line_numbers(tmp_path):
    memory = tmp_path / "memory"
    append_note(memory, "line one\nline two", at=AT)
    append_note(memory, "Ünïcode ✓", "insight", {"confidence": "low"}, at=AT + timedelta(minutes=1))
    notes = list(parse_notes(memory / "2026-04-27.md"))
    assert [(n.at, n.category, n.body, n.line) for n in notes] == [
        ("2026-04-27T18:32:01+00:00", "note", "line one\nline two", 1),
        ("2026-04-27T18:33:01+00:00", "insight", "Ünïcode ✓\n\n- **confidence**: low", 5)]


def test_a_body_line_that_looks_like_a_header_does_not_split_the_note(tmp_path):
    memory = tmp_path / "memory"
    append_note(memory, "before\n## [2020-01-01] fake header\nafter", at=AT)
    notes = list(iter_notes(memory))
    assert len(notes) == 1
    assert "fake header" in notes[0].body and notes[0].body.endswith("after")


def test_iter_notes_reads_files_oldest_first_and_tolerates_absence(tmp_path):
    memory = tmp_path / "memory"
    assert list(iter_notes(memory)) == []
    append_note(memory, "later", at=AT + timedelta(days=2))
    append_note(memory, "earlier", at=AT)
    (memory / "README.txt").write_text("## [x] not a note file\n")
    assert [n.body for n in iter_notes(memory)] == ["earlier", "later"]


def test_search_notes_all_words_case_insensitive_newest_first(tmp_path):
    memory = tmp_path / "memory"
    append_note(memory, "The Deploy script needs SUDO", at=AT)
    append_note(memory, "deploy went fine", at=AT + timedelta(days=1))
    append_note(memory, "sudo for the deploy again", "ops", at=AT + timedelta(days=2))
    assert [n.body for n in search_notes(memory, "deploy sudo")] == [
        "sudo for the deploy again", "The Deploy script needs SUDO"]
    assert len(search_notes(memory, "deploy", limit=1)) == 1
    assert [n.category for n in search_notes(memory, "ops")] == ["ops"]
    assert search_notes(memory, "?!  \"'") == []
    assert search_notes(tmp_path / "nowhere", "deploy") == []
