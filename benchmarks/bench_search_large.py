"""Benchmark: `mnemara search` on a 100,000-turn store that also holds one 10 MB turn.

A 10 MB turn (a pasted log, an imported file) once made `mnemara search ... gamma` run for
minutes: FTS5's snippet() re-reads the whole text of a hit, at a cost that grows about with the
square of its length. This builds a real store in a temporary MNEMARA_HOME (99,980 archived turns
and a 20-turn window, written in bulk like bench_search.py, then one 10 MB user turn stored with
TurnStore.add_turn), and times the search the CLI runs (`mnemara.ops.memory.search`: open the
store read-only, full-text search with snippets, memory notes) for queries that hit the big turn:
a word only it holds, a word it holds among 100k others, a two-word query, a prefix. Each query
runs many times; p50 and p95 are printed beside the target. Then a few runs of the real command
(`python -m mnemara search`, a new process each time) show what a user waits for.

Target: p50 < 100 ms for every query (through the search function).

Run: python benchmarks/bench_search_large.py [--turns N] [--big-mb N] [--runs N]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import build_store, vocabulary  # noqa: E402

TARGET_S = 0.100
WINDOW = 20


def big_text(megabytes: float, seed: int = 7) -> str:
    """Words from the corpus's vocabulary, with "gamma" (no other turn holds it) every few
    thousand words and at both ends, and "error" (which most turns hold) every few hundred."""
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    words: list[str] = ["gamma"]
    size = 0
    target = int(megabytes * 1_000_000)
    while size < target:
        word = "gamma" if rng.random() < 1 / 3000 else ("error" if rng.random() < 1 / 500
                                                          else rng.choice(vocab))
        words.append(word)
        size += len(word) + 1
    words.append("gamma")
    lines = [" ".join(words[i:i + 12]) for i in range(0, len(words), 12)]
    return "\n".join(lines)


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=100_000, help="turns in the store (default 100,000)")
    ap.add_argument("--big-mb", type=float, default=10.0, help="size of the big turn in MB (default 10)")
    ap.add_argument("--runs", type=int, default=30, help="timed runs per query (default 30)")
    ap.add_argument("--cli-runs", type=int, default=5, help="runs of the real command (default 5)")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (other processes skew the figures)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNEMARA_HOME"] = tmp
        from mnemara.instance import Instance
        from mnemara.ops.memory import search
        from mnemara.store import TurnStore

        inst = Instance.named("bench")
        inst.create()
        t0 = time.perf_counter()
        build_store(inst.turns_path, archived=args.turns - WINDOW, window=WINDOW)
        built = time.perf_counter() - t0
        text = big_text(args.big_mb)
        t0 = time.perf_counter()
        with TurnStore(inst.turns_path) as store:
            big = store.add_turn("user", [{"type": "text", "text": text}])
        stored = time.perf_counter() - t0
        print(f"built {args.turns:,} turns in {built:.1f} s; stored one {len(text) / 1e6:.1f} MB "
              f"turn (id {big.id}) in {stored:.1f} s; store {inst.turns_path.stat().st_size / 1e6:.0f} MB")

        queries = {
            "only the big turn holds it": "gamma",
            "a word most turns hold": "error",
            "two words, both in the big turn": "gamma error",
            "prefix of a word in the big turn": "gam",
        }
        ok = True
        for label, query in queries.items():
            t0 = time.perf_counter()
            hits = search(inst, query, 20)  # first run: also the page cache warming up
            first = time.perf_counter() - t0
            in_big = any(getattr(h, "turn_id", None) == big.id for h in hits)
            times = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                search(inst, query, 20)
                times.append(time.perf_counter() - t0)
            p50, p95 = percentiles(times)
            passed = p50 < TARGET_S
            ok &= passed
            print(f"  {label:<36} {query!r:<14} p50 {p50 * 1000:8.1f} ms  p95 {p95 * 1000:8.1f} ms  "
                  f"(first {first * 1000:.0f} ms, {len(hits)} hits, big turn {'in' if in_big else 'not in'} "
                  f"them)  target p50 < {TARGET_S * 1000:.0f} ms  {'PASS' if passed else 'FAIL'}")

        env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
        walls = []
        for _ in range(args.cli_runs):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "mnemara", "search", "-i", "bench", "gamma"],
                                  env=env, capture_output=True, text=True, timeout=900)
            walls.append(time.perf_counter() - t0)
            if proc.returncode != 0:
                print(f"  `mnemara search` failed: {proc.stderr.strip()}")
                ok = False
                break
        if walls:
            p50, p95 = percentiles(walls)
            print(f"  `mnemara search -i bench gamma` (new process each run, {len(walls)} runs): "
                  f"p50 {p50 * 1000:.0f} ms, max {max(walls) * 1000:.0f} ms  [info]")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
