"""How the index stays fast as it grows (index/upkeep.py): the vector index's kind and segments,
and how many old versions stay on disk. Real LanceDB tables in tmp_path, hash embedder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from mnemara.index import upkeep
from mnemara.index.atoms import Atom
from mnemara.index.embedders import HashEmbedder
from mnemara.index.lance import MemoryIndex
from mnemara.index.upkeep import KEEP_VERSIONS, MAX_VERSION_AGE, MIN_VERSION_AGE, VersionClock

TOPICS = ("deploy", "database", "lunch", "invoice", "kernel", "garden", "tennis", "violin")


def turns(start: int, n: int) -> list[Atom]:
    return [Atom(id=f"turn:{i}", kind="turn", created_at="2026-12-01T10:00:00Z", turn_id=i,
                 role="user" if i % 2 else "assistant",
                 text=f"entry {i} about {TOPICS[i % len(TOPICS)]} number{i} and {TOPICS[i * 7 % len(TOPICS)]}")
            for i in range(start, start + n)]


def vector_index(ix: MemoryIndex):
    return next((i for i in ix._table.list_indices() if i.columns == ["vector"]), None)


@pytest.fixture
def grown(tmp_path: Path) -> MemoryIndex:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder(), optimize_every=0)
    ix.upsert(turns(1, upkeep.VECTOR_INDEX_MIN_ROWS + 100))
    return ix


def test_no_vector_index_below_the_threshold(tmp_path: Path) -> None:
    ix = MemoryIndex.open(tmp_path / "index", HashEmbedder(), optimize_every=0)
    ix.upsert(turns(1, 300))
    ix.optimize()
    assert vector_index(ix) is None


def test_the_vector_index_segments_stay_bounded_as_rows_arrive(grown: MemoryIndex) -> None:
    grown.optimize()
    first = vector_index(grown)
    assert first is not None and first.index_type == "IvfFlat"
    n = upkeep.VECTOR_INDEX_MIN_ROWS + 101
    seen = []
    for _ in range(2 * upkeep.MAX_VECTOR_SEGMENTS["IvfFlat"] + 2):  # each optimize adds a delta
        grown.upsert(turns(n, 20))
        n += 20
        grown.optimize()
        current = vector_index(grown)
        assert current.index_type == "IvfFlat" and current.num_unindexed_rows == 0
        seen.append(current.num_segments)
    assert max(seen) == upkeep.MAX_VECTOR_SEGMENTS["IvfFlat"]  # rebuilt, never a pile of deltas
    # the newest rows are found through the index, by meaning and by word
    hit = grown.search(f"entry {n - 1} about", k=3).hits
    assert hit and hit[0].atom.id == f"turn:{n - 1}"


def test_large_tables_get_hnsw_and_its_segments_are_bounded(grown: MemoryIndex, monkeypatch) -> None:
    grown.optimize()
    assert vector_index(grown).index_type == "IvfFlat"
    monkeypatch.setattr(upkeep, "HNSW_MIN_ROWS", upkeep.VECTOR_INDEX_MIN_ROWS)
    monkeypatch.setitem(upkeep.MAX_VECTOR_SEGMENTS, "IvfHnswSq", 2)
    n = upkeep.VECTOR_INDEX_MIN_ROWS + 101
    seen = []
    for _ in range(5):
        grown.upsert(turns(n, 10))
        n += 10
        grown.optimize()
        current = vector_index(grown)
        assert current.index_type == "IvfHnswSq"
        seen.append(current.num_segments)
    assert max(seen) == 2 and min(seen) == 1  # deltas accumulate up to the bound, then a rebuild


def test_old_versions_do_not_pile_up_during_a_burst_of_writes(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(upkeep, "MIN_VERSION_AGE", timedelta(0))
    writer = MemoryIndex.open(tmp_path / "index", HashEmbedder(), optimize_every=4)
    reader = MemoryIndex.open(tmp_path / "index", HashEmbedder())  # another connection
    for i in range(120):
        writer.upsert(turns(1 + 2 * i, 2))
    versions = len(writer._table.list_versions())
    assert versions <= KEEP_VERSIONS + 12  # kept: the last KEEP_VERSIONS, and one round of writes
    assert reader.count() == 240
    assert reader.search("entry 239 about", k=1).hits[0].atom.id == "turn:239"


def test_version_clock_keeps_an_hour_until_enough_newer_versions_exist() -> None:
    clock = VersionClock()
    assert clock.cleanup_older_than(10, now=1_000.0) == MAX_VERSION_AGE  # nothing seen yet
    assert clock.cleanup_older_than(10 + KEEP_VERSIONS - 1, now=1_100.0) == MAX_VERSION_AGE
    # KEEP_VERSIONS versions written since t=1000: everything older than that may go
    assert clock.cleanup_older_than(10 + KEEP_VERSIONS, now=1_200.0) == timedelta(seconds=200)
    # ... never younger than MIN_VERSION_AGE
    assert clock.cleanup_older_than(10 + 3 * KEEP_VERSIONS, now=1_200.5) == MIN_VERSION_AGE


def test_version_clock_forgets_what_is_older_than_the_hour() -> None:
    clock = VersionClock()
    clock.cleanup_older_than(1, now=0.0)
    later = MAX_VERSION_AGE.total_seconds() + 10
    assert clock.cleanup_older_than(1 + KEEP_VERSIONS, now=later) == MAX_VERSION_AGE


def test_lances_own_warnings_stay_off_the_terminal(tmp_path: Path) -> None:
    """Growing an IVF_HNSW_SQ index makes LanceDB log a WARN line from Rust, straight to stderr:
    in the chat that is the user's screen. A new process, as the first lancedb import matters."""
    import os
    import subprocess
    import sys

    script = f"""
from pathlib import Path
from mnemara.index import upkeep
upkeep.HNSW_MIN_ROWS = upkeep.VECTOR_INDEX_MIN_ROWS
from mnemara.index.embedders import HashEmbedder
from mnemara.index.lance import MemoryIndex
from tests.index.test_upkeep import turns
ix = MemoryIndex.open(Path({str(tmp_path / 'index')!r}), HashEmbedder(), optimize_every=0)
ix.upsert(turns(1, upkeep.VECTOR_INDEX_MIN_ROWS + 100)); ix.optimize()
ix.upsert(turns(5000, 10)); ix.optimize()
print([i.index_type for i in ix._table.list_indices()])
"""
    env = {k: v for k, v in os.environ.items() if k not in ("LANCEDB_LOG", "LANCE_LOG", "RUST_LOG")}
    repo = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "IvfHnswSq" in done.stdout
    assert done.stderr == ""

