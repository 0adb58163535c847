"""MemoryIndex on a real LanceDB table in tmp_path, with the hash embedder (no model) except
for one semantic test with the local embedder."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from mnemara.index.atoms import Atom
from mnemara.index.embedders import EmbedderUnavailable, HashEmbedder
from mnemara.index.fusion import DEFAULT
from mnemara.index.lance import MemoryIndex, SearchResult

NOW = datetime(2026, 12, 5, 15, 0, tzinfo=timezone.utc)


def turn(i: int, text: str, at: str = "2026-12-01T10:00:00Z", **kw) -> Atom:
    return Atom(id=f"turn:{i}", kind="turn", text=text, created_at=at, turn_id=i,
                role="user" if i % 2 else "assistant", **kw)


def note(name: str, text: str, at: str = "2026-12-01T10:00:00Z", **kw) -> Atom:
    return Atom(id=f"note:{name}", kind="note", text=text, created_at=at, source=f"memory/{name}", **kw)


CORPUS = [
    turn(1, "How do we deploy the staging cluster?", "2026-11-20T09:00:00Z"),
    turn(2, "Run the ansible playbook with the staging inventory.", "2026-11-20T09:00:30Z"),
    turn(3, "The database migration failed on the orders table.", "2026-11-25T14:00:00Z"),
    turn(4, "Roll it back and add the missing index first.", "2026-11-25T14:01:00Z"),
    turn(5, "Lunch today was a pumpkin soup.", "2026-11-28T12:00:00Z"),
    note("deploy.md:1", "Staging deploys need VPN access.", "2026-11-21T08:00:00Z", category="ops"),
    note("coffee.md:1", "The team prefers oat milk in coffee.", "2026-11-22T08:00:00Z"),
]


@pytest.fixture
def index(tmp_path: Path) -> MemoryIndex:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert(CORPUS)
    return ix


def ids(result: SearchResult) -> list[str]:
    return [h.atom.id for h in result.hits]


class Broken:
    name, dim = "hash:64", 64

    def embed(self, texts):
        raise EmbedderUnavailable("the server at localhost:11434 is down")


# -- storage -------------------------------------------------------------------------------------

def test_open_creates_private_directory_and_records_embedder(tmp_path: Path) -> None:
    MemoryIndex.open(tmp_path / "index", HashEmbedder(32))
    assert (tmp_path / "index").stat().st_mode & 0o777 == 0o700
    meta = json.loads((tmp_path / "index" / "embedder.json").read_text())
    assert meta == {"embedder": "hash:32", "dim": 32}


def test_upsert_update_delete_get_count(index: MemoryIndex) -> None:
    assert index.count() == len(CORPUS)
    assert [a.id for a in index.get(["turn:3", "nope", "note:deploy.md:1"])] == ["turn:3", "note:deploy.md:1"]
    assert index.get(["note:deploy.md:1"])[0] == CORPUS[5]  # every field round-trips
    index.upsert([turn(3, "The migration succeeded after all.", "2026-11-25T14:00:00Z")])
    assert index.count() == len(CORPUS)
    assert index.get(["turn:3"])[0].text == "The migration succeeded after all."
    index.delete(["turn:3", "turn:4"])
    assert index.count() == len(CORPUS) - 2
    assert index.get(["turn:3"]) == []
    assert "turn:3" not in ids(index.search("migration succeeded", now=NOW))


def test_upsert_is_one_version_per_call(index: MemoryIndex) -> None:
    before = index._table.version
    index.upsert([turn(10 + i, f"bulk turn {i}") for i in range(50)])
    assert index._table.version == before + 1


def test_ids_with_quotes_are_bound_not_spliced(index: MemoryIndex) -> None:
    odd = note("it's \"odd\".md:1", "an oddly named note")
    index.upsert([odd])
    assert index.get([odd.id]) == [odd]
    index.delete(["x' OR '1'='1"])
    assert index.count() == len(CORPUS) + 1
    index.delete([odd.id])
    assert index.count() == len(CORPUS)


# -- ranking -------------------------------------------------------------------------------------

def test_hybrid_finds_lexical_match_with_both_signals(index: MemoryIndex) -> None:
    result = index.search("database migration", now=NOW)
    assert result.mode == "hybrid" and result.note is None
    top = result.hits[0]
    assert top.atom.id == "turn:3"
    assert {"text", "vector"} <= set(top.signals)
    assert all(0.0 <= h.score <= 1.0 for h in result.hits)
    assert [h.score for h in result.hits] == sorted((h.score for h in result.hits), reverse=True)


def test_semantic_match_without_shared_words(tmp_path: Path) -> None:
    local = pytest.importorskip("mnemara.index.embedders.local")
    try:
        embedder = local.LocalEmbedder()
        embedder.embed(["probe"])
    except EmbedderUnavailable as e:
        pytest.skip(str(e))
    ix = MemoryIndex.open(tmp_path / "index", embedder)
    ix.upsert(CORPUS)
    lexical = ix.search("pumpkin soup", now=NOW)
    semantic = ix.search("what did I eat at noon", now=NOW)
    assert lexical.hits[0].atom.id == "turn:5"
    assert "turn:5" in ids(semantic)[:2]
    assert "text" not in next(h for h in semantic.hits if h.atom.id == "turn:5").signals


def test_duplicates_removed(index: MemoryIndex) -> None:
    index.upsert([note("copy.md:1", "Staging deploys need VPN access.")])
    texts = [h.atom.text for h in index.search("staging VPN", now=NOW).hits]
    assert texts.count("Staging deploys need VPN access.") == 1


# -- text-only modes -----------------------------------------------------------------------------

def test_no_embedder_is_text_only_and_says_so(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", None)
    ix.upsert(CORPUS)
    result = ix.search("database migration", now=NOW)
    assert result.mode == "text" and "no embedder" in result.note
    assert ids(result)[0] == "turn:3"
    assert "vector" not in ix._table.schema.names


def test_unavailable_embedder_is_text_only_then_backfilled(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", Broken())
    ix.upsert(CORPUS)  # written without vectors, no exception
    result = ix.search("database migration", now=NOW)
    assert result.mode == "text" and "localhost:11434 is down" in result.note
    assert ids(result)[0] == "turn:3"
    healed = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    assert healed.needs_reindex is None
    assert healed.backfill_vectors() == len(CORPUS)
    assert healed.backfill_vectors() == 0
    result = healed.search("database migration", now=NOW)
    assert result.mode == "hybrid" and "vector" in result.hits[0].signals


def test_text_only_index_gains_vectors_later(tmp_path: Path) -> None:
    MemoryIndex.open(tmp_path / "index", None).upsert(CORPUS)
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    assert ix.needs_reindex is None
    assert ix.backfill_vectors() == len(CORPUS)
    assert ix.search("database migration", now=NOW).mode == "hybrid"


def test_embedder_change_needs_reindex_without_mixing(tmp_path: Path) -> None:
    MemoryIndex.open(tmp_path / "index", HashEmbedder(64)).upsert(CORPUS)
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder(32))
    assert ix.needs_reindex is not None
    assert "hash:64 (dim 64)" in ix.needs_reindex and "hash:32" in ix.needs_reindex
    assert "mnemara reindex" in ix.needs_reindex
    result = ix.search("database migration", now=NOW)
    assert result.mode == "text" and result.note == ix.needs_reindex
    assert ids(result)[0] == "turn:3"
    ix.upsert([turn(9, "written while stale")])  # stored, but with no vector of the wrong model
    assert ix.get(["turn:9"])
    seen: list[tuple[int, int]] = []
    ix.rebuild([*CORPUS, turn(9, "written while stale")], progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1] == (len(CORPUS) + 1, len(CORPUS) + 1)
    assert ix.needs_reindex is None and ix.count() == len(CORPUS) + 1
    assert ix.search("database migration", now=NOW).mode == "hybrid"
    assert MemoryIndex.open(tmp_path / "index", HashEmbedder(32)).needs_reindex is None


# -- filters -------------------------------------------------------------------------------------

def test_superseded_excluded_unless_asked(index: MemoryIndex) -> None:
    index.set_superseded(["turn:3"])
    assert "turn:3" not in ids(index.search("database migration orders", now=NOW))
    assert "turn:3" in ids(index.search("database migration orders", include_superseded=True, now=NOW))
    index.set_superseded(["turn:3"], flag=False)
    assert "turn:3" in ids(index.search("database migration orders", now=NOW))


def test_kinds_since_until_filters(index: MemoryIndex) -> None:
    assert {h.atom.kind for h in index.search("staging", kinds=["note"], now=NOW).hits} == {"note"}
    result = index.search("staging deploy", since="2026-11-21T00:00:00Z", until="2026-11-22T00:00:00Z", now=NOW)
    assert ids(result) == ["note:deploy.md:1"]
    with pytest.raises(ValueError):
        index.search("x", kinds=["turn' OR 1=1"])
    with pytest.raises(ValueError):
        index.search("x", since="2026-11-21' OR 1=1 --")


def test_exclude_ids(index: MemoryIndex) -> None:
    result = index.search("database migration", exclude_ids={"turn:3"}, now=NOW)
    assert "turn:3" not in ids(result)


@pytest.mark.parametrize("query", ['"', "'", "' OR 1=1 --", "text:migration OR *", "a AND (b OR",
                                   "+staging -deploy ~2 ^3 [x TO y] {}", "x" * 10_000,
                                   "migration " * 2_000, "", "   ", "\x00\n\t", "🙂 ünïcödé"])
def test_hostile_queries_never_raise_or_widen(index: MemoryIndex, query: str) -> None:
    result = index.search(query, kinds=["note"], now=NOW)
    assert {h.atom.kind for h in result.hits} <= {"note"}
    result = index.search(query, since="2026-11-28T00:00:00Z", now=NOW)
    assert all(h.atom.created_at >= "2026-11-28T00:00:00Z" for h in result.hits)


def test_time_phrase_prefers_that_day(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert([note("a.md:1", "We decided to use Postgres for the queue.", "2026-12-01T10:00:00Z"),
               note("b.md:1", "We decided to drop the Redis cache.", "2026-12-04T16:00:00Z"),
               note("c.md:1", "We decided on weekly releases.", "2026-11-20T10:00:00Z")])
    result = ix.search("what did we decide yesterday", now=NOW)
    assert result.time_range is not None and result.time_range.phrase == "yesterday"
    assert result.hits[0].atom.id == "note:b.md:1"
    assert "time" in result.hits[0].signals


def test_a_day_named_in_the_query_finds_what_was_said_about_it_later(tmp_path: Path) -> None:
    # "yesterday", written on 2 December, is 1 December
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert([note("a.md:1", "Yesterday we rotated the signing keys.", "2026-12-02T09:00:00Z"),
               note("b.md:1", "We rotated the signing keys again.", "2026-11-15T09:00:00Z"),
               note("c.md:1", "We rotate the signing keys every quarter.", "2026-11-10T09:00:00Z")])
    hits = ix.search("what happened to the signing keys on December 1, 2026", now=NOW).hits
    assert hits[0].atom.id == "note:a.md:1"
    assert hits[0].signals.get("time") == 1.0
    assert all("time" not in h.signals for h in hits[1:])


def test_a_when_question_prefers_what_states_a_time(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    ix.upsert([note("a.md:1", "I moved the backup cron job to the new host last Friday.",
                    "2026-12-01T10:00:00Z"),
               note("b.md:1", "The backup cron job moved to the new host, it runs nightly.",
                    "2026-12-01T10:00:00Z")])
    when = ix.search("When did the backup cron job move to the new host?", now=NOW).hits
    assert when[0].atom.id == "note:a.md:1" and when[0].signals.get("when") == 1.0
    # the same words, not asking when: no such signal, the wording alone decides
    plain = ix.search("the backup cron job moved to the new host", now=NOW).hits
    assert all("when" not in h.signals for h in plain)
    assert plain[0].atom.id == "note:b.md:1"


# -- neighbours ----------------------------------------------------------------------------------

def test_neighbours_lifted_and_carried_as_context(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder(),
                          params=DEFAULT.with_(context_before=1, context_after=1))
    ix.upsert(CORPUS)
    hits = ix.search("ansible playbook inventory", now=NOW).hits
    top = hits[0]
    assert top.atom.id == "turn:2"
    assert [a.id for a in top.context] == ["turn:1", "turn:2", "turn:3"][:2]  # turn 3 is days later
    assert top.turn_ids() == [1, 2]
    # without context the question turn before the hit is lifted into the results
    plain = MemoryIndex.open(tmp_path / "index", HashEmbedder(), params=DEFAULT)
    lifted = {h.atom.id: h for h in plain.search("ansible playbook inventory", now=NOW).hits}
    assert "neighbour" in lifted["turn:1"].signals


# -- concurrency ---------------------------------------------------------------------------------

def test_second_index_object_sees_writes(tmp_path: Path) -> None:
    reader = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    writer = MemoryIndex.open(tmp_path / "index", HashEmbedder())
    assert reader.search("kubernetes", now=NOW).hits == []
    writer.upsert([note("k.md:1", "Kubernetes upgrade is on Friday.")])
    assert ids(reader.search("kubernetes", now=NOW)) == ["note:k.md:1"]
    assert reader.count() == 1


def test_optimize_keeps_results(index: MemoryIndex) -> None:
    before = ids(index.search("database migration", now=NOW))
    index.optimize()
    assert ids(index.search("database migration", now=NOW)) == before


def test_vectors_are_stored_normalised(index: MemoryIndex) -> None:
    rows = index._table.search().select(["vector"]).to_arrow().column("vector").to_pylist()
    assert np.allclose(np.linalg.norm(np.array(rows), axis=1), 1.0, atol=1e-5)


def test_turns_are_indexed_with_their_neighbours_whatever_the_write_order(tmp_path: Path) -> None:
    turns = [turn(i, f"message number {i} about topic{i}", f"2026-12-01T10:00:{i:02d}Z") for i in range(1, 9)]
    turns.append(turn(9, "days later", "2026-12-04T10:00:00Z"))
    one_by_one = MemoryIndex.open(tmp_path / "a", None)
    for t in [turns[3], turns[0], *turns[1:3], *turns[4:]]:  # out of order, one per call
        one_by_one.upsert([t])
    rebuilt = MemoryIndex.open(tmp_path / "b", None)
    rebuilt.rebuild(turns)

    def entries(ix: MemoryIndex) -> dict[str, str]:
        rows = ix._table.search().select(["id", "search_text"]).limit(None).to_arrow().to_pylist()
        return {r["id"]: r["search_text"] for r in rows}

    assert entries(one_by_one) == entries(rebuilt)
    assert entries(rebuilt)["turn:5"].split("\n") == [t.text for t in turns[2:7]]
    assert entries(rebuilt)["turn:9"] == "days later"  # another session: indexed alone
    # a question matching the neighbour's words still ranks the turn holding them first
    assert ids(rebuilt.search("topic5", now=NOW))[0] == "turn:5"


def test_text_only_reason(tmp_path: Path) -> None:
    assert MemoryIndex.open(tmp_path / "a", HashEmbedder()).text_only_reason() is None
    assert "no embedder" in MemoryIndex.open(tmp_path / "b", None).text_only_reason()
    broken = MemoryIndex.open(tmp_path / "c", Broken())
    broken.upsert([note("x.md:1", "anything")])
    assert "localhost:11434 is down" in broken.text_only_reason()
