"""Soak: 2,000 turns through the real engine and the SDK's subprocess transport, fake CLI.

One TurnEngine on a new instance with the default config (20-turn window, automatic recall with
the local embedder) runs 2,000 turns against tests/fakes/fake_cli.py as its Claude CLI: every
turn spawns the CLI through the SDK, streams a reply of a few hundred to two thousand characters,
and every tenth turn the model saves a memory note through mnemara's own MCP tool. The turns say
what people say in the LoCoMo conversations (`--text locomo`, from ../shared/data/locomo-dev or
`--corpus DIR`), or, with `--text words`, sentences of a 29-word vocabulary: every turn then
holds nearly every word, so every full-text query matches every stored turn (the full-text
index's worst case). After each
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
  rendering; the CLI round trip excluded), p50 and p95 over turns 100-199 and 1901-2000.
  Target: the late window within 20% of the early one, for both. Turns 1900-2000 repeat turns
  99-199 (the same messages and replies), so the two windows do the same work on a store that
  differs: a short message searches a second time with the end of the last reply (recall.pick),
  and how many do moved the figures more than the index's growth when the windows differed.
The whole turn's wall time (CLI round trip included) is printed beside it, for information.

`--turns N` for a quick run (the windows become N/20 turns wide, at N/20 and at the end);
`--embedder hash|none` takes the model out (none: no index, no recall). Other processes on the
machine skew the timings: the load average is printed with them.

`--window-batch`, `--recycle-growth` and `--warm-writes` override mnemara's limits for the
index writes and the index process, to measure them (`--window-batch 1`: a write per turn).

Run: python benchmarks/bench_soak.py [--turns N] [--text locomo|words] [--corpus DIR]
                                    [--embedder local|hash|none]
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
CORPUS = REPO.parent / "shared" / "data" / "locomo-dev"

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


class WordsText:
    """The 29-word vocabulary (`--text words`): every turn holds nearly every word, so every
    full-text query matches every stored turn, the worst case for the full-text index."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def message(self, i: int) -> str:
        return f"message {i}: {sentence(self.rng, self.rng.randint(4, 40))}"

    def reply(self) -> str:
        return " ".join(sentence(self.rng, self.rng.randint(6, 20)) for _ in range(self.rng.randint(3, 25)))

    def note(self, i: int) -> str:
        return f"soak note {i}: {sentence(self.rng, 12)}"


class ConversationText:
    """Real conversation (`--text locomo`, the default): lines of the LoCoMo conversations in
    CORPUS (~4,400), drawn at random so that every stretch of the soak says the same kind of
    thing. (Taken in order, one stretch of a conversation differed from another in length and in
    how many messages were short follow-ups, which moved the figures more than the index did.)
    A message or a note is one line; a reply is a run of 2-14 consecutive lines (a few hundred
    to two thousand characters)."""

    def __init__(self, rng: random.Random, directory: Path) -> None:
        self.rng = rng
        self.lines: list[str] = []
        for path in sorted(directory.glob("*.json")):
            data = json.loads(path.read_text())
            n = 1
            while f"session_{n}" in data:
                self.lines += [t["text"] for t in data[f"session_{n}"] if t.get("text", "").strip()]
                n += 1
        if len(self.lines) < 100:
            raise SystemExit(f"bench_soak: too few conversation lines in {directory} "
                             "(--corpus DIR, or --text words)")

    def message(self, i: int) -> str:
        return self.rng.choice(self.lines)

    def reply(self) -> str:
        n = self.rng.randint(2, 14)
        start = self.rng.randrange(len(self.lines) - n)
        return " ".join(self.lines[start:start + n])

    def note(self, i: int) -> str:
        return self.rng.choice(self.lines)


def plan(text: Any, turns: int, width: int) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each turn's message and the fake CLI's script for it: a streamed reply, and every tenth
    turn a write_memory call before it. The late window (the last `width` turns) and the turn
    before it repeat the early window (turns width to 2*width-1) and the turn before that, so
    the two windows the targets compare do the same work and differ only in what is stored."""
    inputs = []
    for i in range(1, turns + 1):
        message = text.message(i)
        steps: list[dict[str, Any]] = [{"text": text.reply(), "chunks": 3}]
        if i % 10 == 0:
            steps.insert(0, {"tool": "mcp__mnemara__write_memory", "input": {"text": text.note(i)}})
        inputs.append((message, steps))
    for j in range(width + 1):  # 0-based indexes
        inputs[turns - width - 1 + j] = inputs[width - 2 + j]
    return inputs


def window_stats(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return statistics.median(ordered), ordered[max(0, round(0.95 * len(ordered)) - 1)]


async def soak(turns: int, embedder: str, width: int, process: str, text_kind: str,
               corpus: Path) -> dict[str, Any]:
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
    text = WordsText(rng) if text_kind == "words" else ConversationText(rng, corpus)
    inputs = plan(text, turns, width)
    fake = fake_cli(tmp / "fake", [])
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
    searches = [0]  # memory searches so far: a short message searches a second time (recall.pick)
    search = engine.memory.search

    def counted_search(*a: Any, **kw: Any) -> Any:
        searches[0] += 1
        return search(*a, **kw)

    engine.memory.search = counted_search  # type: ignore[method-assign]
    two_searches: list[bool] = []
    overhead, wall, rss = [], [], {}
    parts: dict[str, list[float]] = {"recall": [], "rest of prepare": [], "record": []}
    parent_rss, child_rss, total_rss = [], [], []
    started_children = recycled = 0
    fresh: list[tuple[int, float]] = []  # (turn, RSS) of each index child after its first turn
    started = time.perf_counter()
    try:
        for i in range(1, turns + 1):
            message, steps = inputs[i - 1]
            fake.script_path.write_text(json.dumps({"turns": [steps]}))
            fake.state_path.write_text("0")
            searches_before = searches[0]
            t0 = time.perf_counter()
            events = await run_turn(engine, message)
            wall.append(time.perf_counter() - t0)
            done = events[-1]
            if getattr(done, "status", None) != "complete":
                raise SystemExit(f"turn {i} ended {getattr(done, 'status', done)}: "
                                 f"{getattr(done, 'error', '')}")
            overhead.append(timing["prepare"] + timing["record"])
            parts["recall"].append(timing.get("recall", 0.0))
            parts["rest of prepare"].append(timing["prepare"] - timing.get("recall", 0.0))
            parts["record"].append(timing["record"])
            two_searches.append(searches[0] - searches_before > 1)
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
            "fresh": fresh, "recycled": recycled, "two_searches": two_searches}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=2000)
    ap.add_argument("--embedder", choices=("local", "hash", "none"), default="local",
                    help="the instance's rag_embedder (none: no index, no recall); default local")
    ap.add_argument("--text", choices=("locomo", "words"), default="locomo",
                    help="what the turns say: real conversation lines (default) or the 29-word "
                         "vocabulary, the full-text index's worst case")
    ap.add_argument("--corpus", type=Path, default=CORPUS,
                    help=f"the LoCoMo conversations for --text locomo; default {CORPUS}")
    ap.add_argument("--index-process", choices=("auto", "child", "inline"), default="auto",
                    help="the instance's rag_index_process; default auto (a child, as in the TUI)")
    # For measuring the limits (README): each defaults to mnemara's own constant.
    ap.add_argument("--window-batch", type=int, help="memory.service.WINDOW_BATCH (1: a write per turn)")
    ap.add_argument("--recycle-growth", type=float, help="index.remote.RECYCLE_GROWTH_MB")
    ap.add_argument("--warm-writes", type=int, help="index.remote.WARM_WRITES")
    args = ap.parse_args()
    if args.text == "locomo" and not args.corpus.is_dir():
        ap.error(f"no conversations at {args.corpus}: --corpus DIR, or --text words")
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
    print(f"{args.turns:,} turns of {args.text} text, embedder {args.embedder}, index process {args.index_process}; load average "
          f"{os.getloadavg()[0]:.2f} (other processes skew the timings)")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNEMARA_HOME"] = tmp
        os.environ.pop("MNEMARA_INSTANCE", None)
        result = asyncio.run(soak(args.turns, args.embedder, width, args.index_process,
                                  args.text, args.corpus))
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
    label_late = f"turns {args.turns - width + 1}-{args.turns}"
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
    two = result["two_searches"]
    print(f"  turns that searched twice (a short message: the last reply is searched too): "
          f"{sum(two[early]) / len(two[early]):.0%} ({label_early}), {sum(two[late]) / len(two[late]):.0%} "
          f"({label_late})  [info]")
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
