"""Importing a JSONL conversation: every line checked before anything is written, file order and
timestamps kept, the newest turns that fit in the window, the rest archived, all of it indexed.
Real SQLite and real LanceDB in a tmp dir; the hash embedder keeps it fast and offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnemara.errors import MnemaraError
from mnemara.memory.service import MemoryService
from mnemara.ops.importer import import_conversation
from mnemara.timestamps import parse_timestamp
from mnemara.store import TurnStore
from mnemara.store.blocks import text_block

HASH = {"rag_embedder": "hash"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def conversation(n: int, start_day: int = 1) -> list[dict]:
    """`n` turns alternating user/assistant, one minute apart, each with a unique word."""
    return [{"role": "user" if i % 2 == 0 else "assistant",
             "text": f"turn {i} mentions the codeword quillon{i}x",
             "ts": f"2026-03-{start_day:02d}T10:{i // 60:02d}:{i % 60:02d}Z"} for i in range(n)]


def window_and_archive(inst) -> tuple[list, list]:
    with TurnStore(inst.turns_path) as store:
        return store.window(), list(store.iter_archive())


def do_import(inst, path, **kw):
    return import_conversation(inst, inst.load_config(), path, **kw)


# -- the happy path ---------------------------------------------------------------------------------

def test_order_timestamps_window_and_archive(make_instance, tmp_path):
    inst = make_instance("imp", max_window_turns=4, **HASH)
    rows = conversation(10)
    rows[3]["ts"] = "2026-03-01T12:00:03+02:00"   # an offset: stored in UTC
    rows[4]["ts"] = "2026-03-01T10:00:04"         # naive: UTC
    rows[5]["ts"] = "2026-03-01T10:00:05.750Z"    # fractions dropped
    report = do_import(inst, write_jsonl(tmp_path / "c.jsonl", rows))

    assert (report.imported, report.in_window, report.archived, report.existing) == (10, 4, 6, 0)
    assert report.indexed == 10 and report.note is None
    window, archive = window_and_archive(inst)
    assert len(window) == 4 and len(archive) == 6
    turns = archive + window
    assert [t.id for t in turns] == sorted(t.id for t in turns)
    assert [t.text for t in turns] == [r["text"] for r in rows]
    assert [t.role for t in turns] == [r["role"] for r in rows]
    assert [t.created_at for t in turns][2:6] == ["2026-03-01T10:00:02Z", "2026-03-01T10:00:03Z",
                                                  "2026-03-01T10:00:04Z", "2026-03-01T10:00:05Z"]
    assert [t.text for t in window] == [r["text"] for r in rows[-4:]]  # the newest stay
    with TurnStore(inst.turns_path) as store:
        assert store.evictions(1)[0]["reason"] == "import"


def test_every_imported_turn_is_recallable(make_instance, tmp_path):
    inst = make_instance("imp", max_window_turns=3, **HASH)
    rows = conversation(12)
    do_import(inst, write_jsonl(tmp_path / "c.jsonl", rows))
    window, archive = window_and_archive(inst)
    ids = {t.text: t.id for t in archive + window}
    service = MemoryService(inst, inst.load_config())
    try:
        assert service.status().pending == 0  # the import drained the outbox
        for i, row in enumerate(rows):
            hits = service.search(f"quillon{i}x", k=3).hits
            assert hits and hits[0].atom.id == f"turn:{ids[row['text']]}", i
            assert hits[0].atom.created_at == row["ts"]
    finally:
        service.close()


def test_imported_turns_are_linked_into_the_graph_before_the_import_returns(make_instance, tmp_path):
    # so recall's graph signal covers them at once, not a background batch per chat turn later
    from mnemara.graph import Graph
    from mnemara.graph.feed import pending
    inst = make_instance("imp", max_window_turns=3, **HASH)
    rows = [{"role": "user", "text": f"We asked Ada about host db0{i} before the deploy.",
             "ts": f"2026-03-01T10:00:0{i}Z"} for i in range(1, 6)]
    report = do_import(inst, write_jsonl(tmp_path / "c.jsonl", rows))
    assert report.note is None
    with TurnStore(inst.turns_path) as store:
        assert pending(store.conn)[0] == 0
        ids = [f"turn:{t.id}" for t in store.iter_archive()] + [f"turn:{t.id}" for t in store.window()]
    assert sorted(Graph(inst.graph_dir).atoms_for_entity("person", "ada")) == sorted(ids)


def test_the_window_keeps_the_newest_turns_that_fit_the_token_budget(make_instance, tmp_path):
    role = tmp_path / "role.md"
    role.write_text("You are terse. " * 150, encoding="utf-8")  # ~700 estimated tokens
    inst = make_instance("imp", max_window_turns=1000, max_window_tokens=1000,
                         role_doc_path=str(role), **HASH)
    rows = [{"role": "user", "text": f"{i} " + "word " * 60} for i in range(20)]
    report = do_import(inst, write_jsonl(tmp_path / "c.jsonl", rows))
    with TurnStore(inst.turns_path) as store:
        room = 1000 - store.estimator.estimate(role.read_text(encoding="utf-8"))
        window, archive = store.window(), list(store.iter_archive())
        assert 0 < store.window_tokens() <= room
        assert store.window_tokens() + archive[-1].est_tokens > room  # one more would not fit
    assert report.in_window == len(window) < 20 and report.archived == len(archive)
    assert window[-1].text == rows[-1]["text"]


def test_turns_append_after_existing_ones(make_instance, tmp_path):
    inst = make_instance("imp", max_window_turns=5, **HASH)
    with TurnStore(inst.turns_path) as store:
        for i in range(3):
            store.add_turn("user", [text_block(f"earlier {i}")], created_at="2027-01-01T00:00:00Z")
    report = do_import(inst, write_jsonl(tmp_path / "c.jsonl", conversation(4)))
    assert report.existing == 3 and report.imported == 4
    assert report.in_window == 4 and report.archived == 0 and report.displaced == 2
    assert "after 3 existing turns" in report.line()
    window, archive = window_and_archive(inst)
    assert [t.text for t in archive] == ["earlier 0", "earlier 1"]
    assert [t.text for t in window][0] == "earlier 2"
    assert max(t.id for t in archive + window[:1]) < min(t.id for t in window[1:])


def test_blank_lines_crlf_bom_and_missing_timestamps(make_instance, tmp_path):
    inst = make_instance("imp", **HASH)
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"role": "user", "text": "first"}\r\n\r\n   \n'
                     b'{"role": "assistant", "text": "second", "ts": null}\r\n')
    report = do_import(inst, path)
    window, _ = window_and_archive(inst)
    assert report.imported == 2 and [t.text for t in window] == ["first", "second"]
    assert all(t.created_at.endswith("Z") and t.created_at >= "2026" for t in window)


def test_memory_off_imports_without_indexing(make_instance, tmp_path):
    inst = make_instance("imp", rag_enabled=False)
    report = do_import(inst, write_jsonl(tmp_path / "c.jsonl", conversation(3)))
    assert report.imported == 3 and report.indexed == 0
    assert "memory is off" in report.note
    assert not inst.index_dir.exists()


def test_progress_follows_the_indexing(make_instance, tmp_path):
    inst = make_instance("imp", **HASH)
    calls: list[tuple[int, int]] = []
    do_import(inst, write_jsonl(tmp_path / "c.jsonl", conversation(30)),
              progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1] == (30, 30)


# -- refused files ----------------------------------------------------------------------------------

GOOD = b'{"role": "user", "text": "fine"}\n'


@pytest.mark.parametrize("bad, fragments", [
    (b'{"role": "user", "text": "caf\xe9"}', ["UTF-8", "0xe9"]),
    (b'{"role": "user", "text": "unterminated}', ["not JSON"]),
    (b'["user", "hi"]', ["JSON object", "list"]),
    (b'{"role": "system", "text": "hi"}', ["role", "'system'"]),
    (b'{"text": "hi"}', ['missing "role"']),
    (b'{"role": "assistant"}', ['missing "text"']),
    (b'{"role": "user", "text": 42}', ['"text" must be a string']),
    (b'{"role": "user", "text": "  "}', ['"text" is empty']),
    (b'{"role": "user", "txt": "hi"}', ["unknown key 'txt'"]),
    (b'{"role": "user", "text": "hi", "ts": "yesterday"}', ['"ts"', "'yesterday'", "ISO-8601"]),
    (b'{"role": "user", "text": "hi", "ts": 1700000000}', ['"ts"', "ISO-8601 string"]),
])
def test_a_bad_line_anywhere_imports_nothing(make_instance, tmp_path, snapshot_tree, bad, fragments):
    inst = make_instance("imp", **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [text_block("already here")])
    before = snapshot_tree(inst.root)
    path = tmp_path / "c.jsonl"
    path.write_bytes(GOOD * 40 + b"\n" + bad + b"\n" + GOOD * 5)  # line 42
    with pytest.raises(MnemaraError) as info:
        do_import(inst, path)
    message = str(info.value)
    assert f"{path}:42: " in message and "nothing was imported" in message and "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert snapshot_tree(inst.root) == before


def test_an_empty_file_or_a_missing_one_is_refused(make_instance, tmp_path):
    inst = make_instance("imp", **HASH)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(MnemaraError, match="holds no turns"):
        do_import(inst, empty)
    with pytest.raises(MnemaraError, match="no such file"):
        do_import(inst, tmp_path / "missing.jsonl")
    with pytest.raises(MnemaraError, match="is a directory"):
        do_import(inst, tmp_path)
    assert not inst.turns_path.exists()


@pytest.mark.parametrize("value, expected", [
    ("2026-01-02T10:00:00Z", "2026-01-02T10:00:00Z"),
    ("2026-01-02T10:00:00+01:00", "2026-01-02T09:00:00Z"),
    ("2026-01-02T10:00:00.999", "2026-01-02T10:00:00Z"),
    ("2026-01-02", "2026-01-02T00:00:00Z"),
])
def test_parse_timestamp(value, expected):
    assert parse_timestamp(value) == expected


@pytest.mark.parametrize("value", ["", "soon", "2026-13-01", "0001-01-01T00:00:00+01:00"])
def test_parse_timestamp_refuses(value):
    with pytest.raises(ValueError):
        parse_timestamp(value)
