"""TurnStore: rows, statuses, eviction into the archive, FTS search, rendering, calibration,
schema versioning and opening broken files."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from mnemara.errors import StoreError
from mnemara.store import Budget, TurnStore
from mnemara.store.db import SCHEMA_VERSION
from mnemara.store.render import render_turn

REPO_ROOT = Path(__file__).resolve().parents[2]


def text(s: str) -> list[dict]:
    return [{"type": "text", "text": s}]


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "turns.sqlite"


@pytest.fixture
def store(path: Path):
    with TurnStore(path) as s:
        yield s


def fill(store: TurnStore, n: int, size: int = 10) -> list[int]:
    return [store.add_turn("user" if i % 2 == 0 else "assistant", text(f"turn {i} " + "x" * size)).id
            for i in range(n)]


# --- rows ------------------------------------------------------------------------------------------

def test_add_turn_stores_everything_and_survives_reopen(path):
    blocks = [{"type": "thinking", "thinking": "hmm", "signature": "sig"},
              {"type": "text", "text": "Héllo — wörld"},
              {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
              {"type": "tool_result", "tool_use_id": "t1", "content": "a\nb"}]
    with TurnStore(path) as s:
        turn = s.add_turn("assistant", blocks, model="claude-sonnet-4-6",
                          usage={"input_tokens": 10, "output_tokens": 3}, cost_usd=0.01)
    with TurnStore(path) as s:
        again = s.get(turn.id)
    assert again == turn
    assert again.blocks == blocks
    assert again.role == "assistant" and again.model == "claude-sonnet-4-6"
    assert again.usage == {"input_tokens": 10, "output_tokens": 3} and again.cost_usd == 0.01
    assert again.status == "complete" and again.pinned is False
    assert again.est_tokens > 0
    assert again.created_at.endswith("Z") and "T" in again.created_at
    assert again.text == "Héllo — wörld"


def test_store_is_wal_and_current_schema(store):
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_ids_are_never_reused_after_eviction_or_purge(store):
    ids = fill(store, 3)
    store.clear()
    assert store.add_turn("user", text("next")).id == ids[-1] + 1
    store.purge()
    assert store.add_turn("user", text("after purge")).id > ids[-1] + 1


def test_update_turn_changes_status_usage_and_rendering(store):
    turn = store.add_turn("assistant", text("partial"), status="pending")
    done = store.update_turn(turn.id, blocks=text("partial and then the full answer"), status="complete",
                             usage={"input_tokens": 5})
    assert done.status == "complete" and done.usage == {"input_tokens": 5}
    assert "full answer" in done.rendered and done.est_tokens > turn.est_tokens
    assert store.search("answer")[0].turn_id == turn.id


def test_invalid_role_or_status_is_rejected(store):
    with pytest.raises(sqlite3.IntegrityError):
        store.add_turn("system", text("x"))
    with pytest.raises(sqlite3.IntegrityError):
        store.add_turn("user", text("x"), status="done")
    assert store.count() == 0


def test_failed_rows_are_visible_but_never_sent(store):
    ok = store.add_turn("user", text("question"))
    bad = store.add_turn("assistant", text("half an answer"), status="failed")
    cut = store.add_turn("assistant", text("interrupted answer"), status="interrupted")
    assert [t.id for t in store.window()] == [ok.id, bad.id, cut.id]
    assert [t.id for t in store.sendable()] == [ok.id, cut.id]
    assert [c.id for c in store.costs()] == [ok.id, cut.id]
    assert store.window_tokens() == ok.est_tokens + cut.est_tokens
    assert 'interrupted="true"' in cut.rendered


def test_set_pinned_returns_only_window_rows(store):
    a, b, c = fill(store, 3)
    store.evict([a], "test")
    assert store.set_pinned([a, b, 999]) == [b]
    assert store.get(b).pinned and not store.get(c).pinned
    store.set_pinned([b], False)
    assert not store.get(b).pinned


# --- eviction moves rows to the archive -------------------------------------------------------------

def test_evict_moves_rows_with_same_ids_and_nothing_is_lost(store):
    ids = fill(store, 6)
    before = {t.id: t for t in store.window()}
    ev = store.evict(ids[:4], "manual")
    assert ev.ids == ids[:4] and ev.reason == "manual"
    assert ev.est_tokens == sum(before[i].est_tokens for i in ids[:4])
    assert [t.id for t in store.window()] == ids[4:]
    archived = list(store.iter_archive())
    assert [t.id for t in archived] == ids[:4]
    for t in archived:
        assert t == before[t.id]  # same content, rendering, estimate, status
    assert store.count() + store.archived_count() == 6
    assert store.evictions()[0] == {"at": store.evictions()[0]["at"], "turns": 4,
                                    "est_tokens": ev.est_tokens, "reason": "manual"}


def test_evicting_unknown_or_archived_ids_does_nothing(store):
    a, = fill(store, 1)
    assert store.evict([12345], "x") is None
    store.evict([a], "x")
    assert store.evict([a], "again") is None
    assert store.archived_count() == 1


def test_apply_budget_by_rows(store):
    ids = fill(store, 8)
    assert store.apply_budget(Budget(max_turns=8, max_tokens=10**6)) is None
    ev = store.apply_budget(Budget(max_turns=5, max_tokens=10**6))
    assert ev.ids == ids[:3] and ev.reason == "budget"
    assert [t.id for t in store.window()] == ids[3:]
    assert store.archived_count() == 3


def test_apply_budget_by_tokens(store):
    ids = fill(store, 6, size=400)
    last_two = store.get(ids[4]).est_tokens + store.get(ids[5]).est_tokens
    ev = store.apply_budget(Budget(max_turns=100, max_tokens=last_two))
    assert ev.ids == ids[:4]
    assert store.window_tokens() == last_two
    assert store.count() + store.archived_count() == 6


def test_apply_budget_evicts_pinned_rows_last(store):
    ids = fill(store, 6)
    store.set_pinned([ids[0], ids[1]])
    ev = store.apply_budget(Budget(max_turns=3, max_tokens=10**6))
    assert ev.ids == ids[2:5]  # the unpinned rows go, oldest first, pinned rows stay
    assert [t.id for t in store.window()] == [ids[0], ids[1], ids[5]]
    ev = store.apply_budget(Budget(max_turns=1, max_tokens=10**6))
    assert ev.ids == [ids[0], ids[5]]  # then the last unpinned row, then the oldest pinned one
    assert [t.id for t in store.window()] == [ids[1]]


def test_apply_budget_low_water_evicts_in_one_chunk_then_keeps_a_stable_prefix(store):
    ids = fill(store, 11)
    ev = store.apply_budget(Budget(max_turns=10, max_tokens=10**6), low_water=0.5)
    assert ev.ids == ids[:6]  # down to 5 rows, not just to 10
    kept = [t.rendered for t in store.window()]
    for _ in range(5):
        store.add_turn("user", text("more"))
        assert store.apply_budget(Budget(max_turns=10, max_tokens=10**6), low_water=0.5) is None
    assert [t.rendered for t in store.window()][:5] == kept  # the prefix the cache saw is unchanged


def test_apply_budget_makes_room_for_the_incoming_turn(store):
    ids = fill(store, 5)
    ev = store.apply_budget(Budget(max_turns=5, max_tokens=10**6), incoming_turns=1)
    assert ev.ids == [ids[0]]


def test_apply_budget_takes_older_failed_rows_with_the_chunk(store):
    a = store.add_turn("user", text("q")).id
    failed = store.add_turn("assistant", text("broken"), status="failed").id
    ids = fill(store, 4)
    ev = store.apply_budget(Budget(max_turns=3, max_tokens=10**6))
    # 5 sendable rows, budget 3: two go, and the failed row between them goes along
    assert ev.ids == [a, failed, ids[0]]
    assert [t.id for t in store.window()] == ids[1:]
    assert store.count() + store.archived_count() == 6


def test_evict_older_than(store):
    old = store.add_turn("user", text("old"), created_at="2020-01-01T00:00:00Z").id
    new = store.add_turn("user", text("new")).id
    ev = store.evict_older_than("2021-01-01T00:00:00Z", "age")
    assert ev.ids == [old]
    assert [t.id for t in store.window()] == [new]


def test_clear_moves_everything_and_purge_deletes_everything(store):
    fill(store, 4)
    store.evict([1], "x")
    ev = store.clear()
    assert len(ev.ids) == 3 and ev.reason == "clear"
    assert store.count() == 0 and store.archived_count() == 4
    assert store.clear() is None
    assert len(store.search("turn")) == 4
    assert store.purge() == 4
    assert store.count() == store.archived_count() == 0
    assert store.search("turn") == [] and store.evictions() == []


def test_last_activity_covers_window_and_archive(store):
    assert store.last_activity() is None
    store.add_turn("user", text("a"), created_at="2025-01-01T00:00:00Z")
    store.add_turn("user", text("b"), created_at="2025-06-01T00:00:00Z")
    store.evict([2], "x")
    assert store.last_activity() == "2025-06-01T00:00:00Z"


# --- search ----------------------------------------------------------------------------------------

def test_search_finds_window_and_archive_with_the_right_source(store):
    old = store.add_turn("user", text("the flamingo migration plan"), created_at="2025-01-01T00:00:00Z")
    new = store.add_turn("assistant", text("flamingo colours are pink"))
    store.add_turn("user", text("unrelated"))
    store.evict([old.id], "budget")
    hits = {h.turn_id: h for h in store.search("flamingo")}
    assert set(hits) == {old.id, new.id}
    assert hits[old.id].source == "archive" and hits[old.id].role == "user"
    assert hits[old.id].created_at == "2025-01-01T00:00:00Z"
    assert hits[new.id].source == "window" and hits[new.id].role == "assistant"
    assert "[flamingo]" in hits[new.id].snippet


def test_search_needs_every_word_and_prefix_matches_the_last(store):
    a = store.add_turn("user", text("deploy the staging server")).id
    store.add_turn("user", text("deploy production"))
    assert [h.turn_id for h in store.search("deploy staging")] == [a]
    assert [h.turn_id for h in store.search("deploy stag")] == [a]
    assert len(store.search("depl")) == 2
    assert len(store.search("deploying")) == 2  # porter stemming


def test_search_covers_tool_calls_and_results(store):
    t = store.add_turn("assistant", [
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "grep -r zanzibar"}},
        {"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "found quokka"}]}])
    assert [h.turn_id for h in store.search("zanzibar")] == [t.id]
    assert [h.turn_id for h in store.search("quokka")] == [t.id]


def test_search_limit(store):
    fill(store, 10)
    assert len(store.search("turn", limit=3)) == 3


@pytest.mark.parametrize("query", ['"', "'", 'it\'s "quoted', "foo AND", "OR", "NOT x", "NEAR(a b)",
                                   "a*b", "-x", "^start", "col:val", "(((", ")", "{a b}", "+", "",
                                   "   ", "'; DROP TABLE turns; --", "*", "x\x00y", "ünïcödé?!"])
def test_search_with_punctuation_and_quotes_never_raises(store, query):
    store.add_turn("user", text("it's a \"quoted\" DROP of foo AND bar ünïcödé"))
    hits = store.search(query)
    assert isinstance(hits, list)
    assert store.count() == 1


# --- rendering ---------------------------------------------------------------------------------------

def test_render_is_byte_identical_across_reads_and_store_changes(path):
    blocks = [{"type": "text", "text": "same bytes every time"},
              {"type": "tool_use", "id": "t9", "name": "Read", "input": {"b": 1, "a": "ö"}},
              {"type": "tool_result", "tool_use_id": "t9", "content": "out"}]
    with TurnStore(path) as s:
        turn = s.add_turn("assistant", blocks)
        first = turn.rendered
        fill(s, 5)
        s.evict([t.id for t in s.window()][-2:], "x")
        s.calibrate(10_000, 2_000)
        assert s.get(turn.id).rendered == first
        assert s.window()[0].rendered == first
    with TurnStore(path) as s:
        assert s.get(turn.id).rendered == first
    assert render_turn(turn.id, "assistant", turn.created_at, blocks) == first
    assert first.startswith(f'<turn id="{turn.id}" role="assistant" at="{turn.created_at}">')


def test_long_tool_results_are_truncated_with_a_visible_marker_but_kept_whole(tmp_path):
    long = "".join(f"line {i}\n" for i in range(1000))
    with TurnStore(tmp_path / "t.sqlite", result_max_chars=100) as s:
        turn = s.add_turn("assistant", [
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "seq"}},
            {"type": "tool_result", "tool_use_id": "t1", "content": long + "needle-at-the-end"}])
        assert f"[... truncated: {len(long) + 17 - 100:,} more characters]" in turn.rendered
        assert "needle" not in turn.rendered
        assert len(turn.rendered) < 400
        assert turn.blocks[1]["content"].endswith("needle-at-the-end")  # stored in full
        assert [h.turn_id for h in s.search("needle")] == [turn.id]  # and searchable


def test_short_tool_results_are_not_marked(store):
    turn = store.add_turn("assistant", [{"type": "tool_result", "tool_use_id": "t", "content": "ok",
                                         "is_error": True}])
    assert "truncated" not in turn.rendered
    assert '<tool_result id="t" error="true">ok</tool_result>' in turn.rendered


def test_thinking_is_stored_but_not_rendered(store):
    turn = store.add_turn("assistant", [
        {"type": "thinking", "thinking": "SECRET-CHAIN-OF-THOUGHT", "signature": "s"},
        {"type": "redacted_thinking", "data": "REDACTED-BLOB"},
        {"type": "text", "text": "the answer"}])
    assert "SECRET" not in turn.rendered and "REDACTED-BLOB" not in turn.rendered
    assert "the answer" in turn.rendered
    assert store.get(turn.id).blocks[0]["thinking"] == "SECRET-CHAIN-OF-THOUGHT"


# --- calibration -------------------------------------------------------------------------------------

def test_calibration_changes_estimates_and_persists(path):
    with TurnStore(path) as s:
        t = s.add_turn("user", text("word " * 400))
        before = t.est_tokens
        ratio = s.calibrate(chars=10_000, real_tokens=2_000)  # 5 chars/token: cheaper than assumed
        assert ratio > 3.2
        after = s.get(t.id).est_tokens
        assert after < before
        assert s.window_tokens() == after
    with TurnStore(path) as s:
        assert s.estimator.chars_per_token == ratio and s.estimator.samples == 1
        assert s.get(t.id).est_tokens == after
        fresh = s.add_turn("user", text("word " * 400))
        assert fresh.est_tokens == after  # new turns use the learned ratio too


def test_tiny_calibration_samples_are_ignored(store):
    t = store.add_turn("user", text("hello"))
    assert store.calibrate(chars=50, real_tokens=40) == 3.2
    assert store.calibrate(chars=5000, real_tokens=0) == 3.2
    assert store.get(t.id).est_tokens == t.est_tokens


# --- schema and broken files -------------------------------------------------------------------------

def test_schema_newer_than_supported_is_a_store_error_and_file_unchanged(path):
    TurnStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="newer"):
            TurnStore(path, readonly=readonly)
    assert path.read_bytes() == before


def test_readonly_open_never_creates_the_file(tmp_path):
    with pytest.raises(StoreError, match="no turn store"):
        TurnStore(tmp_path / "turns.sqlite", readonly=True)
    assert os.listdir(tmp_path) == []


def test_readonly_open_leaves_no_new_files(path):
    with TurnStore(path) as s:
        fill(s, 3)
    names = sorted(os.listdir(path.parent))
    before = path.read_bytes()
    with TurnStore(path, readonly=True) as s:
        assert s.count() == 3
        assert len(s.search("turn")) == 3
    assert sorted(os.listdir(path.parent)) == names
    assert path.read_bytes() == before


def real_store_bytes(tmp_path: Path) -> bytes:
    src = tmp_path / "src.sqlite"
    with TurnStore(src) as s:
        for i in range(60):
            s.add_turn("user", text(f"turn {i} " + "filler " * 200))
    return src.read_bytes()


def broken_files(tmp_path: Path) -> dict[str, bytes]:
    good = real_store_bytes(tmp_path)
    return {"text": b"this is not a database\n" * 200,
            "header only": good[:50],
            "first page": good[:4096],
            "half": good[: len(good) // 2],
            "last page missing": good[:-4096]}


@pytest.mark.parametrize("readonly", [False, True])
def test_truncated_or_non_sqlite_file_is_one_line_store_error_and_untouched(tmp_path, readonly):
    for label, data in broken_files(tmp_path).items():
        d = tmp_path / label.replace(" ", "_")
        d.mkdir()
        p = d / "turns.sqlite"
        p.write_bytes(data)
        with pytest.raises(StoreError) as info:
            TurnStore(p, readonly=readonly)
        assert "\n" not in str(info.value) and str(p) in str(info.value), label
        assert p.read_bytes() == data, label
        assert os.listdir(d) == ["turns.sqlite"], f"{label}: left {os.listdir(d)}"


def test_another_programs_database_is_refused_not_migrated(path):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="not a mnemara turn store"):
            TurnStore(path, readonly=readonly)
    assert path.read_bytes() == before


def test_empty_file_is_an_empty_store_for_readers_and_a_fresh_store_for_writers(path):
    """SQLite calls a 0-byte file an empty database; so does every mnemara command. Readers see
    an empty window and archive without writing the file; the first writer initialises it."""
    path.write_bytes(b"")
    with TurnStore(path, readonly=True) as s:
        assert (s.count(), s.archived_count(), s.window(), s.search("hello")) == (0, 0, [], [])
        with pytest.raises(StoreError, match="readonly"):
            s.add_turn("user", text("hello"))
    assert path.read_bytes() == b"" and os.listdir(path.parent) == [path.name]
    with TurnStore(path) as s:
        s.add_turn("user", text("hello"))
    with TurnStore(path, readonly=True) as s:
        assert s.count() == 1


def test_migrations_run_once_when_processes_open_a_fresh_db_together(tmp_path):
    """Several processes open the same brand-new file at the same moment; all succeed and the
    schema is created exactly once."""
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from mnemara.store import TurnStore
        path, go, who = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
        while not go.exists():  # spin: all processes must hit the fresh file at the same moment
            pass
        with TurnStore(path) as s:
            s.add_turn("user", [{"type": "text", "text": "hello from " + who}])
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    for round_ in range(6):
        db = tmp_path / f"fresh{round_}.sqlite"
        go = tmp_path / f"go{round_}"
        procs = [subprocess.Popen([sys.executable, "-c", script, str(db), str(go), f"p{i}"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(3)]
        time.sleep(0.3)  # let the interpreters start (not a timing assertion: only makes overlap likely)
        go.touch()
        outs = [p.communicate(timeout=60) for p in procs]
        for p, (out, err) in zip(procs, outs):
            assert p.returncode == 0 and out.strip() == "ok", err
        with TurnStore(db) as s:
            assert s.count() == 3
            assert sorted(t.text for t in s.window()) == [f"hello from p{i}" for i in range(3)]
            assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            tables = [r[0] for r in s.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('turns', 'archive', 'meta')")]
            assert sorted(tables) == ["archive", "meta", "turns"]


def test_reopening_runs_no_migration_twice(path):
    with TurnStore(path) as s:
        s.add_turn("user", text("kept"))
    for _ in range(3):
        with TurnStore(path) as s:
            assert [t.text for t in s.window()] == ["kept"]
            assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
