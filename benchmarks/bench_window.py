"""Benchmark: loading the rolling window and applying the budget.

Measures, on a store holding a 500-turn window over a 100,000-turn archive (built once with
executemany into a real, migrated turns.sqlite):

  load + budget   `store.costs()` + `plan_eviction(...)` + `store.window()` on an open store:
                  what the turn engine does before every request.        Target: < 10 ms (median).
  open + load + budget   the same, including opening the store.         [info]

The budget is planned with one incoming turn so `plan_eviction` takes its evicting path (the
worst case); nothing is actually moved, so every run sees the same window.

Run: python benchmarks/bench_window.py [--archived N] [--window N] [--runs N]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import build_store, median_seconds, report

from mnemara.store import Budget, TurnStore, plan_eviction

TARGET_S = 0.010


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archived", type=int, default=100_000)
    ap.add_argument("--window", type=int, default=500)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "turns.sqlite"
        t0 = time.perf_counter()
        build_store(path, archived=args.archived, window=args.window)
        print(f"built {args.window:,}-turn window over {args.archived:,} archived turns "
              f"in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
        with TurnStore(path) as store:
            tokens = store.window_tokens()
        budget = Budget(max_turns=args.window, max_tokens=max(1_000, tokens))
        print(f"window: {args.window} turns, ~{tokens:,} estimated tokens; budget {budget}")

        def load_and_plan(store: TurnStore) -> None:
            costs = store.costs()
            evict = plan_eviction(costs, budget, incoming_turns=1, incoming_tokens=500)
            turns = store.window()
            assert evict and len(turns) == args.window

        with TurnStore(path) as store:
            ok = report("load + budget (open store)", median_seconds(lambda: load_and_plan(store), args.runs),
                        TARGET_S)

        def open_and_plan() -> None:
            with TurnStore(path) as store:
                load_and_plan(store)

        report("open + load + budget", median_seconds(open_and_plan, args.runs), None)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
