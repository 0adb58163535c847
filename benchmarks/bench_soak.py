"""Soak: 2,000 turns through the real engine and the SDK's subprocess transport, fake CLI.

One TurnEngine on a new instance with the default config (20-turn window, automatic recall with
the local embedder) runs 2,000 turns against tests/fakes/fake_cli.py as its Claude CLI: every
turn spawns the CLI through the SDK, streams a reply of a few hundred to two thousand characters,
and every tenth turn the model saves a memory note through mnemara's own MCP tool. After each
turn the memory index is drained as the chat does it in the background (new window turns wait
until a batch of them is queued: memory/service.py, WINDOW_BATCH). So the window keeps
evicting, the archive, the index and the memory files keep growing, and anything that leaks per
turn shows.

The engine is built as the TUI and the REPL build it (front end "chat"), so with the default
`rag_index_process: "auto"` LanceDB and the embedder run in the memory service's child process,
which is replaced after a few hundred writes (mnemara/index/remote.py); `--index-process inline`
keeps them in this process, as before.

Measured:
- resident memory of the session: this process (the engine, the SDK, the store) plus the index
  child when there is one (LanceDB, the embedder); the Claude CLI is a child process per turn and
  not counted. Sampled after every turn. Target: from turn 100 to turn 2,000 it grows < 50 MB, and
  so does its peak anywhere after turn 100 (the child's memory is a sawtooth: it grows until the
  child is replaced).
- engine overhead per turn (TurnEngine.prepare + record: role doc, budget, recall, storing,
  rendering; the CLI round trip excluded), p50 and p95 over turns 100-199 and 1900-1999.
  Target: the late window within 20% of the early one, for both.
The whole turn's wall time (CLI round trip included) is printed beside it, for information.

`--turns N` for a quick run (the windows become N/20 turns wide, at N/20 and at the end);
`--embedder hash|none` takes the model out (none: no index, no recall). Other processes on the
machine skew the timings: the load average is printed with them.

`--window-batch`, `--recycle-growth` and `--warm-writes` override mnemara's limits for the
index writes and the index process, to measure them (`--window-batch 1`: a write per turn).

Run: python benchmarks/bench_soak.py [--turns N] [--embedder local|hash|none]
                                    [--index-process auto|child|inline] [--window-batch N]
                                    [--recycle-growth MB] [--warm-writes N]
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RSS_GROWTH_MB = 50.0
OVERHEAD_DRIFT = 0.20
SCRIPT_TURNS = 50

WORDS = ("the", "config", "loader", "reads", "settings", "once", "at", "start-up", "so", "a",
         "reload", "does", "not", "pick", "them", "up", "retry", "timeout", "index", "window",
         "migration", "deploy", "staging", "test", "suite", "fails", "because", "of", "cache")


def rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:  # the index child exited between two samples
        return 0.0


def index_child(engine: Any) -> Any:
    """The memory service's RemoteIndex, when the index runs in a child process."""
    index = getattr(engine.memory, "_index", None)
    return index if index is not None and hasattr(index, "recycled") else None


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def script(rng: random.Random) -> list[list[dict[str, Any]]]:
    """SCRIPT_TURNS reply shapes, cycled through: streamed replies of varied length, and every
    tenth turn a write_memory call before the reply."""
    turns = []
    for i in range(SCRIPT_TURNS):
        reply = " ".join(sentence(rng, rng.randint(6, 20)) for _ in range(rng.randint(3, 25)))
        steps: list[dict[str, Any]] = [{"text": reply, "chunks": 3}]
        if i % 10 == 9:
            steps.insert(0, {"tool": "mcp__mnemara__write_memory",
                             "input": {"text": f"soak note {i}: {sentence(rng, 12)}"}})
        turns.append(steps)
    return turns


def window_stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def soak(turns: int, embedder: str, width: int, process: str) -> dict[str, Any]:
    from mnemara.engine.turn import TurnEngine
    from mnemara.instance import Instance
    from tests.fakes.drive import run_turn
    from tests.fakes.fake_cli import fake_cli

    rng = random.Random(2000)
    tmp = Path(os.environ["MNEMARA_HOME"])
    inst = Instance.named("soak")
    config = inst.create()
    if embedder == "none":
        inst.save_config(config.replace(rag_enabled=False, recall="off"))
    elif embedder != config.rag_embedder:
        inst.save_config(config.replace(rag_embedder=embedder))
    inst.save_config(inst.load_config().replace(rag_index_process=process))
    fake = fake_cli(tmp / "fake", script(rng))
    fake.env.pop("MNEMARA_FAKE_CLI_LOG")  # a log of every request would grow without bound
    engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)

    timing: dict[str, float] = {}
    prepare, record = engine.prepare, engine.record

    async def timed_prepare(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await prepare(*a, **kw)
        finally:
            timing["prepare"] = time.perf_counter() - t0

    def timed(name: str, fn: Any) -> Any:
        def run(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                timing[name] = time.perf_counter() - t0
        return run

    from mnemara.memory import recall
    pick = recall.pick
    timed_record, timed_pick = timed("record", record), timed("recall", pick)

    engine.prepare, engine.record = timed_prepare, timed_record  # type: ignore[method-assign]
    recall.pick = timed_pick
    overhead, wall, rss = [], [], {}
    parts: dict[str, list[float]] = {"recall": [], "rest of prepare": [], "record": []}
    parent_rss, child_rss, total_rss = [], [], []
    started_children = recycled = 0
    fresh: list[tuple[int, float]] = []  # (turn, RSS) of each index child after its first turn
    started = time.perf_counter()
    try:
        for i in range(1, turns + 1):
            fake.state_path.write_text(str((i - 1) % SCRIPT_TURNS))
            text = f"message {i}: {sentence(rng, rng.randint(4, 40))}"
            t0 = time.perf_counter()
            events = await run_turn(engine, text)
            wall.append(time.perf_counter() - t0)
            done = events[-1]
            if getattr(done, "status", None) != "complete":
                raise SystemExit(f"turn {i} ended {getattr(done, 'status', done)}: "
                                 f"{getattr(done, 'error', '')}")
            overhead.append(timing["prepare"] + timing["record"])
            parts["recall"].append(timing.get("recall", 0.0))
            parts["rest of prepare"].append(timing["prepare"] - timing.get("recall", 0.0))
            parts["record"].append(timing["record"])
            timing.pop("recall", None)
            if engine.memory.enabled:
                engine.memory.drain(hold=True)  # as the chat does after a turn
            child = index_child(engine)
            pid = child.pid if child is not None else None
            parent_rss.append(rss_mb())
            child_rss.append(rss_mb(pid) if pid else 0.0)
            total_rss.append(parent_rss[-1] + child_rss[-1])
            if child is not None:
                if child.started != started_children:
                    fresh.append((i, child_rss[-1]))
                started_children, recycled = child.started, child.recycled
            if i in (width, turns) or i % max(1, turns // 10) == 0:
                rss[i] = total_rss[-1]
                print(f"  turn {i:>5}: rss {rss[i]:6.1f} MB (this process {parent_rss[-1]:5.1f}, "
                      f"index child {child_rss[-1]:5.1f}), overhead p50 so far "
                      f"{statistics.median(overhead[-width:]) * 1000:6.1f} ms, wall p50 "
                      f"{statistics.median(wall[-width:]) * 1000:6.1f} ms, "
                      f"{engine.store.count()} in the window, {engine.store.archived_count()} archived, "
                      f"{time.perf_counter() - started:5.0f} s", flush=True)
    finally:
        engine.close()
        recall.pick = pick
    return {"overhead": overhead, "parts": parts, "wall": wall, "rss": rss, "parent_rss": parent_rss,
            "child_rss": child_rss, "total_rss": total_rss, "children": started_children,
            "fresh": fresh,
            "recycled": recycled}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--embedder", choices=("local", "hash", "none"), default="local",
                    help="the instance's rag_embedder (none: no index, no recall); default local")
    ap.add_argument("--index-process", choices=("auto", "child", "inline"), default="auto",
                    help="the instance's rag_index_process; default auto (a child, as in the TUI)")
    # For measuring the limits (README): each defaults to mnemara's own constant.
    ap.add_argument("--window-batch", type=int, help="memory.service.WINDOW_BATCH (1: a write per turn)")
    ap.add_argument("--recycle-growth", type=float, help="index.remote.RECYCLE_GROWTH_MB")
    ap.add_argument("--warm-writes", type=int, help="index.remote.WARM_WRITES")
    args = ap.parse_args()
    from mnemara.index import remote
    from mnemara.memory import service
    if args.window_batch is not None:
        service.WINDOW_BATCH = max(1, args.window_batch)
    if args.recycle_growth is not None:
        remote.RECYCLE_GROWTH_MB = args.recycle_growth
    if args.warm_writes is not None:
        remote.WARM_WRITES = args.warm_writes
    width = min(100, max(5, args.turns // 20))
    if args.turns < 3 * width:
        ap.error("--turns must be at least 3 windows")
    print(f"limits: {service.WINDOW_BATCH} atoms per window write, a new index process after "
          f"{remote.RECYCLE_GROWTH_MB:g} MB of growth past its size at write {remote.WARM_WRITES} "
          f"or {remote.RECYCLE_AFTER_WRITES} writes")
    print(f"{args.turns:,} turns, embedder {args.embedder}, index process {args.index_process}; load average "
          f"{os.getloadavg()[0]:.2f} (other processes skew the timings)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNEMARA_HOME"] = tmp
        os.environ.pop("MNEMARA_INSTANCE", None)
        result = asyncio.run(soak(args.turns, args.embedder, width, args.index_process))
    overhead, wall, rss = result["overhead"], result["wall"], result["rss"]
    early = slice(width - 1, 2 * width - 1)  # turns width .. 2*width-1 (100-199 by default)
    late = slice(args.turns - width, args.turns)
    ok = True
    growth = rss[args.turns] - rss[width]
    passed = growth < RSS_GROWTH_MB
    ok &= passed
    print(f"resident memory: {rss[width]:.1f} MB at turn {width}, {rss[args.turns]:.1f} MB at turn "
          f"{args.turns}: grew {growth:+.1f} MB  target < {RSS_GROWTH_MB:.0f} MB  "
          f"{'PASS' if passed else 'FAIL'}")
    total, parent, child = result["total_rss"], result["parent_rss"], result["child_rss"]
    peak_at = max(range(width - 1, args.turns), key=lambda i: total[i])
    peak = total[peak_at] - total[width - 1]
    passed = peak < RSS_GROWTH_MB
    ok &= passed
    print(f"resident memory peak after turn {width}: {total[peak_at]:.1f} MB at turn {peak_at + 1} "
          f"(this process {parent[peak_at]:.1f}, index child {child[peak_at]:.1f}): {peak:+.1f} MB  "
          f"target < {RSS_GROWTH_MB:.0f} MB  {'PASS' if passed else 'FAIL'}")
    print(f"this process alone: {parent[width - 1]:.1f} MB at turn {width}, {parent[-1]:.1f} MB at turn "
          f"{args.turns} ({parent[-1] - parent[width - 1]:+.1f} MB); index children started: "
          f"{result['children']}, {result['recycled']} of them replaced for their writes or growth  [info]")
    if result["fresh"]:
        print("RSS of each new index child after its first turn: "
              + ", ".join(f"turn {t}: {mb:.0f} MB" for t, mb in result["fresh"]) + "  [info]")
    label_early = f"turns {width}-{2 * width - 1}"
    label_late = f"turns {args.turns - width}-{args.turns - 1}"
    for name, values, target in (("engine overhead per turn", overhead, True),
                                 ("whole turn (CLI round trip included)", wall, False)):
        e50, e95 = window_stats(values[early])
        l50, l95 = window_stats(values[late])
        for stat, e, lt in (("p50", e50, l50), ("p95", e95, l95)):
            change = lt / e - 1
            line = (f"{name} {stat}: {e * 1000:.1f} ms ({label_early}) -> {lt * 1000:.1f} ms "
                    f"({label_late}), {change:+.0%}")
            if target:
                passed = change <= OVERHEAD_DRIFT
                ok &= passed
                print(f"{line}  target within +{OVERHEAD_DRIFT:.0%}  {'PASS' if passed else 'FAIL'}")
            else:
                print(f"{line}  [info]")
    for part, values in result["parts"].items():
        e50, e95 = window_stats(values[early])
        l50, l95 = window_stats(values[late])
        print(f"  of which {part}: p50 {e50 * 1000:.1f} -> {l50 * 1000:.1f} ms, "
              f"p95 {e95 * 1000:.1f} -> {l95 * 1000:.1f} ms  [info]")
    after_new = {t + d for t, _ in result["fresh"] for d in range(1, 6)}  # 1-based turns
    recall = result["parts"]["recall"]
    near = [v for i, v in enumerate(recall, 1) if i in after_new]
    rest = [v for i, v in enumerate(recall, 1) if i not in after_new]
    if near and rest:
        print(f"  recall p50 in the 5 turns after a new index process: "
              f"{statistics.median(near) * 1000:.1f} ms ({len(near)} turns); other turns "
              f"{statistics.median(rest) * 1000:.1f} ms  [info]")
    print(json.dumps({"rss_mb": {str(k): round(v, 1) for k, v in rss.items()},
                      "peak_growth_mb": round(peak, 1)}))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
