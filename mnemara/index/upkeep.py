"""Keeping the memory index fast as it grows: which indexes the table carries, and how many of its
old versions stay on disk. `MemoryIndex.optimize()` applies both (lance.py).

Measured on 384-dim vectors and 2 cores; the 2,000-turn soak (benchmarks/bench_soak.py) is where
the costs below showed, as a search slowing down turn after turn.

How often (OPTIMIZE_EVERY in lance.py; not changed here, for the reason below): rows written
since the last optimize() sit in small fragments outside the indexes, each searched by brute
force, ~2 ms a search for each write's fragment: at 2,000 rows a search took 21 ms just after
optimize(), 26 ms one write later and 37 ms seven writes later, more the larger the table.
optimize() costs ~0.1 s at 2,000 rows and ~0.6 s at 10,000. Optimizing after every write (or
every second one) while the table is small made the soak's searches ~7 ms faster, but the extra
work grew the chat's index process past its memory target between replacements (a peak of
+52-73 MB over turn 100, against +20-28 MB), so writes still wait for every eighth.

The vector index:
- under VECTOR_INDEX_MIN_ROWS rows none: a flat scan is as fast as an index;
- from there IVF_FLAT (exact distances within the probed partitions; recall@80 0.995-1.0 against
  a flat scan). A flat scan costs 3.7 ms at 1k rows, 5.5-9 ms at 4k and 12 ms at 10k; the index
  3.6-4.1 ms throughout, and it builds in 0.03 s at 1k rows, 0.12 s at 10k, 0.3 s at 30k;
- from HNSW_MIN_ROWS IVF_HNSW_SQ: 3.9 ms at 100k rows where IVF_FLAT takes 6-14 ms, but it
  builds in 7 s at 30k rows and ~30 s at 100k.
Each optimize that indexes new rows adds the index a segment (a delta: LanceDB 0.40 does not merge
them), and every search visits every segment: 20 segments made a search at 7k rows three times
slower (4.8 -> 14.3 ms), and the count never stops growing. So the index is rebuilt once it has
more than MAX_VECTOR_SEGMENTS: at every optimize while it is IVF_FLAT (the rebuild costs about
what the optimize does), every eighth once IVF_HNSW_SQ.

Old versions: every write makes a version, and with `read_consistency_interval=0` each query
first looks for the latest, which costs more the more versions there are: the 600 of a 2,000-turn
soak made every query ~0.9 ms slower (a search runs three or four), as a cleaned-up copy showed.
They are kept for MAX_VERSION_AGE, so a reader in another process never loses the files of the
version it reads, but no more than KEEP_VERSIONS of them beyond what MIN_VERSION_AGE needs: a
burst of writes (an import, a fast session) would otherwise leave hundreds behind for an hour.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import timedelta
from typing import Any

VECTOR_INDEX_MIN_ROWS = 1_000
HNSW_MIN_ROWS = 20_000
MAX_VECTOR_SEGMENTS = {"IvfFlat": 1, "IvfHnswSq": 8}
MAX_VERSION_AGE = timedelta(hours=1)
MIN_VERSION_AGE = timedelta(seconds=30)
KEEP_VERSIONS = 32


def keep_indexes(table: Any, rows: int) -> None:
    """From VECTOR_INDEX_MIN_ROWS rows: a BTree on turn_id (the neighbour lookup) and the vector
    index of the right kind, rebuilt when it has too many segments."""
    from lancedb.index import BTree, HnswSq, IvfFlat

    if rows < VECTOR_INDEX_MIN_ROWS:
        return
    indices = {tuple(i.columns): i for i in table.list_indices()}
    if ("turn_id",) not in indices:
        table.create_index("turn_id", config=BTree())
    if "vector" not in table.schema.names:
        return  # full text only
    kind = "IvfHnswSq" if rows >= HNSW_MIN_ROWS else "IvfFlat"
    current = indices.get(("vector",))
    if current is not None and current.index_type == kind and current.num_segments <= MAX_VECTOR_SEGMENTS[kind]:
        return
    config = HnswSq(distance_type="cosine") if kind == "IvfHnswSq" else IvfFlat(distance_type="cosine")
    table.create_index("vector", config=config, replace=True)


class VersionClock:
    """When this process saw the table at which version, to tell `optimize` how old a version
    may get: all of the last MAX_VERSION_AGE, unless KEEP_VERSIONS newer ones were written since,
    and never less than MIN_VERSION_AGE. Versions other processes wrote only make it keep more."""

    def __init__(self) -> None:
        self._seen: deque[tuple[int, float]] = deque()

    def cleanup_older_than(self, version: int, now: float | None = None) -> timedelta:
        now = time.time() if now is None else now
        age = MAX_VERSION_AGE
        while self._seen and now - self._seen[0][1] > MAX_VERSION_AGE.total_seconds():
            self._seen.popleft()
        for seen_version, at in reversed(self._seen):
            if seen_version <= version - KEEP_VERSIONS:  # every version before `at` is older
                age = max(MIN_VERSION_AGE, min(age, timedelta(seconds=now - at)))
                break
        self._seen.append((version, now))
        return age
