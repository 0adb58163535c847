"""Benchmark: full-text search over 100,000 archived turns.

Measures `TurnStore.search(query, 20)` (FTS5 over window + archive, best match first, with
snippets) on a store holding 100,000 archived turns and a 500-turn window, for queries that span
the realistic range: a rare word, a mid-frequency word, a very common word (in most turns), two
words, 3- and 5-letter prefixes (the last word of a query is prefix-matched), and no match.
Queries matching more than RANK_WINDOW turns are ranked among their newest matches (see
TurnStore.search), which is what keeps the common-word case fast.

Target: < 50 ms median for every query.

Run: python benchmarks/bench_search.py [--archived N] [--runs N]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import build_store, median_seconds, report

from mnemara.store import TurnStore
from mnemara.store.turns import RANK_WINDOW, fts_query

TARGET_S = 0.050


def matches(store: TurnStore, query: str) -> int:
    return store.conn.execute("SELECT count(*) FROM turn_fts WHERE turn_fts MATCH ?",
                              (fts_query(query),)).fetchone()[0]


def pick_queries(store: TurnStore) -> dict[str, str]:
    """Words chosen by how many turns they match in the built corpus, not hard-coded."""
    store.conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.bench_vocab USING fts5vocab(main, turn_fts, row)")
    terms = [t for t, in store.conn.execute(
        "SELECT term FROM temp.bench_vocab WHERE length(term) > 5 AND term GLOB '[a-z]*' ORDER BY doc")]
    total = store.count() + store.archived_count()

    def near(share: float) -> str:
        # terms are sorted by document count; bisect on the real match count of the query
        lo, hi = 0, len(terms) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if matches(store, terms[mid]) < share * total:
                lo = mid + 1
            else:
                hi = mid
        return terms[lo]

    rare = next(t for t in terms if 3 <= matches(store, t) <= 50)
    return {
        "rare word": rare,
        "1% word": near(0.01),
        "common word": "error",
        "two common words": "error function",
        "two words": f"{near(0.05)} {near(0.02)}",
        "3-letter prefix": near(0.05)[:3],
        "5-letter prefix": near(0.05)[:5],
        "no match": "zzzqqqxxx",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archived", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turns.sqlite"
        t0 = time.perf_counter()
        build_store(path, archived=args.archived, window=500)
        print(f"built 500-turn window over {args.archived:,} archived turns in "
              f"{time.perf_counter() - t0:.1f} s; queries matching more than {RANK_WINDOW:,} turns "
              "are ranked among their newest matches")
        ok = True
        with TurnStore(path) as store:
            queries = pick_queries(store)
            for label, query in queries.items():
                n = len(store.search(query, 20))
                hits = matches(store, query)
                ok &= report(f"{label}: {query!r} ({hits:,} matching, {n} shown)",
                             median_seconds(lambda: store.search(query, 20), args.runs), TARGET_S)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
