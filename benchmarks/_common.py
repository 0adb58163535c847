"""Shared helpers for the benchmark scripts: a synthetic corpus, timing, and the report line.

Not a benchmark itself. The corpus is deterministic (seeded) so figures are comparable between
runs: words follow a Zipf-like distribution over a made-up vocabulary plus common English words,
so full-text queries hit a realistic spread of rare and very common terms.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Callable

from mnemara.store import TokenEstimator, TurnStore
from mnemara.store.render import plain_text, render_turn

COMMON = ("the", "and", "that", "with", "this", "file", "test", "error", "function", "value",
          "return", "config", "window", "model", "memory", "should", "would", "because")
SYLLABLES = ("ka", "lo", "mi", "ter", "an", "vo", "rel", "su", "dex", "pri", "on", "ga", "ul",
             "bre", "tas", "im", "no", "cy", "fen", "dra")


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def make_blocks(rng: random.Random, vocab: list[str], cum: list[float], role: str) -> list[dict]:
    n = rng.randint(30, 250)
    words = rng.choices(vocab, cum_weights=cum, k=n)
    for i in range(0, n, 4):
        words[i] = rng.choice(COMMON)
    blocks: list[dict] = [{"type": "text", "text": " ".join(words)}]
    if role == "assistant" and rng.random() < 0.3:
        tid = f"toolu_{rng.getrandbits(48):012x}"
        blocks.append({"type": "tool_use", "id": tid, "name": "Bash",
                       "input": {"command": f"grep -rn {rng.choice(vocab)} src/"}})
        out = "\n".join(" ".join(rng.choices(vocab, cum_weights=cum, k=8)) for _ in range(rng.randint(1, 20)))
        blocks.append({"type": "tool_result", "tool_use_id": tid, "content": out})
    return blocks


def build_store(path: Path, *, archived: int, window: int, seed: int = 1) -> None:
    """Create `path` as a real mnemara store (migrated by TurnStore) holding `archived` archived
    turns and a `window`-turn window, written in bulk with executemany."""
    TurnStore(path).close()
    rng = random.Random(seed)
    vocab = vocabulary(rng)
    rng.shuffle(vocab)  # Zipf rank must not follow spelling, or one prefix would own the corpus
    cum = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(len(vocab))))
    est = TokenEstimator()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    total = archived + window
    turn_rows, archive_rows, fts_rows = [], [], []
    for i in range(1, total + 1):
        role = "user" if i % 2 else "assistant"
        blocks = make_blocks(rng, vocab, cum, role)
        day, sec = divmod(i * 37, 86_400)
        created = f"2025-{1 + (day // 28) % 12:02d}-{1 + day % 28:02d}T{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}Z"
        rendered = render_turn(i, role, created, blocks)
        row = (i, role, json.dumps(blocks), rendered, created,
               "claude-sonnet-4-6" if role == "assistant" else None, est.estimate_chars(len(rendered)),
               None, None, "complete", 0)
        if i <= archived:
            archive_rows.append(row + (created, "budget"))
        else:
            turn_rows.append(row)
        fts_rows.append((i, plain_text(blocks)))
        if len(fts_rows) >= 5000:
            _flush(conn, turn_rows, archive_rows, fts_rows)
    _flush(conn, turn_rows, archive_rows, fts_rows)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()


def _flush(conn: sqlite3.Connection, turns: list, archive: list, fts: list) -> None:
    cols = "id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd, status, pinned"
    conn.executemany(f"INSERT INTO turns ({cols}) VALUES ({','.join('?' * 11)})", turns)
    conn.executemany(f"INSERT INTO archive ({cols}, archived_at, archive_reason) VALUES ({','.join('?' * 13)})",
                     archive)
    conn.executemany("INSERT INTO turn_fts (rowid, body) VALUES (?, ?)", fts)
    turns.clear(), archive.clear(), fts.clear()


def median_seconds(fn: Callable[[], object], runs: int, warmup: int = 2) -> tuple[float, float, float]:
    """(median, min, max) wall time of `fn` in seconds over `runs` runs after `warmup` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def report(label: str, seconds: tuple[float, float, float], target_s: float | None) -> bool:
    """Print one line; returns True when the median meets the target (or there is none)."""
    med, lo, hi = seconds
    figures = f"median {med * 1000:8.2f} ms  (min {lo * 1000:.2f}, max {hi * 1000:.2f})"
    if target_s is None:
        print(f"  {label:<44} {figures}  [info]")
        return True
    ok = med < target_s
    print(f"  {label:<44} {figures}  target < {target_s * 1000:.0f} ms  {'PASS' if ok else 'FAIL'}")
    return ok
