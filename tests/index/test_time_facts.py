"""What an atom says about time is read when it is written and kept in its row (fusion.TimeFacts,
layout.FACT_COLUMNS): searches use the stored facts, rows without current ones are read at search
time and brought up to date by optimize()."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import pytest

from mnemara.index import fusion, lance, timephrase
from mnemara.index.atoms import Atom
from mnemara.index.embedders import HashEmbedder
from mnemara.index.fusion import TIME_FACTS_VERSION, time_facts
from mnemara.index.lance import MemoryIndex
from mnemara.index.layout import FACT_COLUMNS
from mnemara.index.timephrase import resolve_time

NOW = datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)


def note(name: str, text: str, at: str) -> Atom:
    return Atom(id=f"note:{name}", kind="note", text=text, created_at=at, source=f"memory/{name}")


ATOMS = [
    note("a.md:1", "Yesterday we rotated the signing keys.", "2026-12-02T09:00:00Z"),
    note("b.md:1", "We rotated the signing keys again.", "2026-11-15T09:00:00Z"),
    note("c.md:1", "The release train leaves on March 3rd, 2026 from now on.", "2026-02-20T09:00:00Z"),
    note("d.md:1", "Two weeks ago the cache was dropped for good.", "2026-11-30T18:00:00Z"),
    note("e.md:1", "I moved the backup cron job to the new host recently.", "2026-12-01T10:00:00Z"),
    note("f.md:1", "The backup cron job moved to the new host, it runs nightly.", "2026-12-01T10:00:00Z"),
]


def stored(ix: MemoryIndex) -> dict[str, dict]:
    rows = ix._table.search().select(["id", *FACT_COLUMNS]).limit(None).to_arrow().to_pylist()
    return {r["id"]: r for r in rows}


def signals(ix: MemoryIndex, query: str) -> dict[str, dict[str, float]]:
    return {h.atom.id: h.signals for h in ix.search(query, k=10, now=NOW).hits}


def test_rows_are_written_with_the_facts_a_search_would_read(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert(ATOMS)
    rows = stored(ix)
    for atom in ATOMS:
        facts = time_facts(atom.text, atom.created_at, resolve_time)
        row = rows[atom.id]
        assert row["time_facts"] == TIME_FACTS_VERSION
        assert row["states_time"] == facts.states
        assert (None if row["told_since"] is None else (row["told_since"], row["told_until"])) == facts.told
    # "yesterday" written on 2 December is 1 December, in UTC
    assert rows["note:a.md:1"]["told_since"] == datetime(2026, 12, 1, tzinfo=timezone.utc)
    assert rows["note:b.md:1"]["told_since"] is None and not rows["note:b.md:1"]["states_time"]


def test_searches_use_the_stored_facts_instead_of_reading_each_text(tmp_path: Path, monkeypatch) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert(ATOMS)

    def unread(*_args):
        raise AssertionError("a candidate's text was read for its time phrase at search time")

    monkeypatch.setattr(fusion, "told_period", unread)
    monkeypatch.setattr(fusion, "states_time", unread)
    on_the_day = signals(ix, "what happened to the signing keys on December 1, 2026")
    assert on_the_day["note:a.md:1"].get("time") == 1.0
    assert "time" not in on_the_day["note:b.md:1"]
    when = signals(ix, "When did the backup cron job move to the new host?")
    assert when["note:e.md:1"].get("when") == 1.0 and "when" not in when["note:f.md:1"]


def old_layout(tmp_path: Path) -> Path:
    """An index written before time facts were stored: the same rows without their columns."""
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert(ATOMS)
    ix._table.drop_columns(list(FACT_COLUMNS))
    assert "time_facts" not in ix._table.schema.names
    return tmp_path / "index"


def test_an_index_from_before_time_facts_searches_the_same_and_is_brought_up_to_date(tmp_path: Path) -> None:
    directory = old_layout(tmp_path)
    fresh = MemoryIndex.open(tmp_path / "fresh", HashEmbedder())
    fresh.upsert(ATOMS)
    queries = ["what happened to the signing keys on December 1, 2026",
               "When did the backup cron job move to the new host?", "what was dropped in mid-November"]
    expected = {q: fresh.search(q, k=10, now=NOW) for q in queries}

    ix = MemoryIndex.open(directory, HashEmbedder())
    assert set(FACT_COLUMNS) <= set(ix._table.schema.names)
    assert all(r["time_facts"] is None for r in stored(ix).values())
    vectors = {r["id"]: r["vector"] for r in ix._table.search().select(["id", "vector"]).to_arrow().to_pylist()}

    def same(q: str) -> None:
        got = ix.search(q, k=10, now=NOW)
        assert [(h.atom.id, round(h.score, 6), h.signals) for h in got.hits] == \
               [(h.atom.id, round(h.score, 6), h.signals) for h in expected[q].hits]

    for q in queries:  # read from the texts meanwhile
        same(q)
    ix.optimize()
    assert all(r["time_facts"] == TIME_FACTS_VERSION for r in stored(ix).values())
    assert stored(ix) == stored(fresh)
    after = {r["id"]: r["vector"] for r in ix._table.search().select(["id", "vector"]).to_arrow().to_pylist()}
    assert after == vectors  # nothing embedded again
    for q in queries:
        same(q)
    assert ix.search("signing keys", now=NOW).hits  # the full-text index still covers them


def test_an_older_index_that_cannot_gain_the_columns_still_works_without_them(tmp_path: Path,
                                                                            monkeypatch) -> None:
    import lancedb.table
    directory = old_layout(tmp_path)

    def read_only(*_args, **_kwargs):
        raise OSError("Read-only file system (os error 30)")

    monkeypatch.setattr(lancedb.table.LanceTable, "add_columns", read_only)
    ix = MemoryIndex.open(directory, HashEmbedder())
    assert "time_facts" not in ix._table.schema.names
    on_the_day = signals(ix, "what happened to the signing keys on December 1, 2026")
    assert on_the_day["note:a.md:1"].get("time") == 1.0 and "time" not in on_the_day["note:b.md:1"]
    when = signals(ix, "When did the backup cron job move to the new host?")
    assert when["note:e.md:1"].get("when") == 1.0
    ix.upsert([note("g.md:1", "Yesterday the signing keys moved to the vault.", "2026-12-02T10:00:00Z")])
    ix.optimize()
    assert signals(ix, "what happened to the signing keys on December 1, 2026")["note:g.md:1"].get("time") == 1.0


def test_rows_read_by_an_older_grammar_are_not_trusted_and_are_read_again(tmp_path: Path,
                                                                            monkeypatch) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert(ATOMS)
    # as an older grammar might have read them: every row "told" of 1 December, stating a time
    ix._table.update(values={"time_facts": TIME_FACTS_VERSION - 1, "states_time": True,
                             "told_since": datetime(2026, 12, 1, tzinfo=timezone.utc),
                             "told_until": datetime(2026, 12, 2, tzinfo=timezone.utc)})
    on_the_day = signals(ix, "what happened to the signing keys on December 1, 2026")
    assert "time" in on_the_day["note:a.md:1"] and "time" not in on_the_day["note:b.md:1"]
    when = signals(ix, "When did the backup cron job move to the new host?")
    assert "when" not in when["note:f.md:1"]

    monkeypatch.setattr(lance, "WRITE_BATCH", 4)  # how many rows one optimize reads again
    ix.optimize()
    assert sum(r["time_facts"] == TIME_FACTS_VERSION for r in stored(ix).values()) == 4
    assert ix.refresh_time_facts() == len(ATOMS) - 4
    assert ix.refresh_time_facts() == 0
    assert not stored(ix)["note:b.md:1"]["states_time"]


# The grammar the stored facts were read with: timephrase.py, STATES_TIME and how much of a text
# is read. If this test fails, timephrase.py or fusion.STATES_TIME changed: raise
# fusion.TIME_FACTS_VERSION (rows read by the old grammar are then read again) and put the new
# fingerprint and version here.
GRAMMAR = ("3001720d", 1)


def test_time_facts_version_follows_the_grammar() -> None:
    digest = hashlib.sha256(Path(timephrase.__file__).read_bytes()
                            + fusion.STATES_TIME.pattern.encode()
                            + str(fusion.SCAN_CHARS).encode()).hexdigest()[:8]
    assert (digest, TIME_FACTS_VERSION) == GRAMMAR, (
        "timephrase.py or fusion.STATES_TIME changed: raise fusion.TIME_FACTS_VERSION and set "
        f"GRAMMAR = ({digest!r}, <the new version>) in this test")


@pytest.mark.parametrize("text, told", [("", False), ("no time here", False),
                                        ("on 2026-02-30 (no such day)", False),
                                        ("\x00 yesterday the keys", True)])
def test_odd_texts_are_stored_and_searched(tmp_path: Path, text: str, told: bool) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert([note("x.md:1", text, "2026-12-02T09:00:00Z")])
    row = stored(ix)["note:x.md:1"]
    assert row["time_facts"] == TIME_FACTS_VERSION and (row["told_since"] is not None) == told
    hits = ix.search("what happened to the keys on 1 December 2026", now=NOW).hits
    assert [h.signals.get("time") for h in hits if h.atom.id == "note:x.md:1"] in ([], [None], [1.0])
    assert any(h.signals.get("time") == 1.0 for h in hits) == told
