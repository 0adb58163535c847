"""Prompt-cache share of input bytes over a long scripted session: auto_compress and strips
against plain eviction.

The same scripted session (seeded: user messages of 60 to 1,500 characters, replies of 100 to
2,000, and every sixth turn a reply that first Reads a 3-10 KB log file) runs three ways, each on
a fresh instance with a small window (max_window_tokens 20,000, so the budget acts every few
turns), through mnemara's TurnEngine and the REAL bundled Claude Code CLI against the fake
Messages API (tests/fakes/fake_api.py) on 127.0.0.1:

1. plain eviction (the defaults);
2. `auto_compress: true`: where the budget would evict, the model summarises instead (the fake
   API answers each summary request, the one ending with the summarize instruction, with a short
   summary);
3. plain eviction, and every 20th turn the model calls `strip_tool_output` (no ids: every turn
   but the newest four) before it answers; the strip is held (the tool's default) until the
   budget next evicts, and done in that same change.

The fake API does not cache, so tests/fakes/cache_model.py replays Anthropic's documented
prompt-cache rule over every request each run sent (summary requests included). For each run:
total input bytes, the share of them read from the modelled cache, the cache breaks (agent-loop
requests whose tools, system and window do not extend the previous one's byte for byte: an
eviction, a summary or a strip changed the history), and the input bytes per turn. Tools and
system prompt (~23 KB a request) are read from the cache alike in every run, so the cached share
of the messages alone is printed beside it. A summary request continues the session's request
(same tools, system prompt and window, then the instruction), so the cache serves most of it;
its uncached bytes are shown apart.
Target: compress and strips keep the cached share at least as high as plain eviction.

`--turns N` for a quick run (default 200). The load average is printed (it only affects the wall
time, not the figures).

Run: python benchmarks/bench_cache_share.py [--turns N]
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WINDOW_TOKENS = 20_000
TOOL_EVERY = 6      # every sixth turn the reply first Reads a log file
STRIP_EVERY = 20    # strips run: every 20th turn the model strips tool output first
SUMMARY = ("Summary of the earlier turns: the user and the assistant went through the service "
           "logs and the config loader; lease renewals looked healthy; nothing is left open.")

WORDS = ("the", "config", "loader", "reads", "settings", "once", "at", "start-up", "so", "a",
         "reload", "does", "not", "pick", "them", "up", "retry", "timeout", "index", "window",
         "migration", "deploy", "staging", "test", "suite", "fails", "because", "of", "cache")


def text_of(rng: random.Random, chars: int) -> str:
    """Deterministic prose of about `chars` characters."""
    words: list[str] = []
    size = 0
    while size < chars:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


@dataclass
class Step:
    """One scripted turn: the user's message, an optional log file read first, the reply."""
    message: str
    reply: str
    log_lines: int  # 0: no tool call


def script(turns: int, seed: int = 12) -> list[Step]:
    rng = random.Random(seed)
    steps = []
    for i in range(turns):
        message = f"Turn {i}. " + text_of(rng, rng.randint(60, 1500))
        reply = f"Reply {i}. " + text_of(rng, rng.randint(100, 2000))
        log_lines = rng.randint(60, 200) if i % TOOL_EVERY == TOOL_EVERY - 1 else 0
        steps.append(Step(message, reply, log_lines))
    return steps


@dataclass
class Figures:
    name: str
    requests: int
    summaries: int
    summary_uncached: int
    total: int
    cached: int
    fixed: int
    breaks: int
    turns: int
    stripped: int
    seconds: float

    @property
    def share(self) -> float:
        return self.cached / self.total if self.total else 0.0

    @property
    def messages_share(self) -> float:
        """The cached share of the messages alone (tools and system are cached in every run)."""
        rest = self.total - self.fixed
        return (self.cached - self.fixed) / rest if rest else 0.0


def is_summary_request(body: dict[str, Any]) -> bool:
    """A summary request: its first message ends with the summarize instruction."""
    from mnemara.ops.compress import REQUEST_MARK
    content = body.get("messages", [{}])[0].get("content")
    last = content[-1] if isinstance(content, list) and content else {}
    return isinstance(last, dict) and str(last.get("text", "")).startswith(REQUEST_MARK)


def measure(bodies: list[dict[str, Any]]) -> tuple[int, int, int, int, int, int]:
    """(total input bytes, cached bytes, cache breaks, summary requests, their uncached bytes,
    bytes of tools and system) under the cache model."""
    from tests.fakes.cache_model import CacheModel

    cache = CacheModel()
    total = cached_sum = breaks = summaries = summary_uncached = fixed = 0
    before: list[tuple[str, int, bool]] | None = None  # the previous agent-loop request's prefix
    for body in bodies:
        cached, uncached = cache.read(body)
        total += cached + uncached
        cached_sum += cached
        fixed += sum(size for _, size, _ in CacheModel.units(body)[:fixed_units(body)])
        if is_summary_request(body):
            summaries += 1
            summary_uncached += uncached
            continue
        prefix = head_units(body)
        if before is not None and prefix[: len(before)] != before:
            breaks += 1
        before = prefix
    return total, cached_sum, breaks, summaries, summary_uncached, fixed


def fixed_units(body: dict[str, Any]) -> int:
    """How many cache units the tools and the system prompt take (cached alike in every run)."""
    system = body.get("system")
    return len(body.get("tools") or []) + (1 if isinstance(system, str) else len(system or []))


def head_units(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """The cache units of tools, system and the first message (the window): a request breaks
    the cache when these do not extend the previous request's byte for byte."""
    from tests.fakes.cache_model import CacheModel

    first = body["messages"][0]["content"]
    n = fixed_units(body) + (1 if isinstance(first, str) else len(first))
    return [(digest, size, False) for digest, size, _ in CacheModel.units(body)[:n]]


async def run(name: str, steps: list[Step], *, compress: bool, strips: bool) -> Figures:
    from mnemara.engine.events import Notice, TurnFinished
    from mnemara.engine.turn import TurnEngine
    from mnemara.instance import Instance
    from tests.fakes.fake_api import FakeMessagesAPI, real_cli_env

    class SummarizingAPI(FakeMessagesAPI):
        """The fake API, answering each summary request with SUMMARY in place of the next
        scripted step, whenever auto_compress asks for one."""

        def _record(self, rec: Any) -> None:
            if rec.kind == "main" and isinstance(rec.body, dict) and is_summary_request(rec.body):
                self.enqueue([{"type": "text", "text": SUMMARY}])
                with self._lock:
                    self._queue.appendleft(self._queue.pop())
            super()._record(rec)

    t0 = time.perf_counter()
    stripped = 0
    with tempfile.TemporaryDirectory() as tmp, SummarizingAPI() as api:
        env = real_cli_env(tmp, api)
        os.environ["HOME"] = env["HOME"]
        os.environ["MNEMARA_HOME"] = str(Path(tmp) / "mnemara")
        work = Path(env["HOME"]) / "work"
        work.mkdir(exist_ok=True)
        inst = Instance.named("bench")
        inst.create()
        inst.save_config(inst.load_config().replace(
            cwd=str(work), max_window_tokens=WINDOW_TOKENS, max_window_turns=500, recall="off",
            rag_enabled=False, auto_compress=compress))
        engine = TurnEngine(inst, env=env)
        try:
            for i, step in enumerate(steps):
                if strips and i % STRIP_EVERY == STRIP_EVERY - 1:
                    api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__strip_tool_output",
                                  "input": {}}])
                if step.log_lines:
                    log = work / f"service-{i}.log"
                    log.write_text("".join(f"{i}: line {n}: worker-{n % 7} renewed its lease for "
                                           f"shard {n % 13}\n" for n in range(step.log_lines)))
                    api.enqueue([{"type": "tool_use", "name": "Read", "input": {"file_path": str(log)}}])
                api.enqueue([{"type": "text", "text": step.reply}])
                async for event in engine.run(step.message):
                    if isinstance(event, Notice) and "the model stripped" in event.text:
                        stripped += 1
                    if isinstance(event, TurnFinished) and event.status != "complete":
                        raise SystemExit(f"{name}: turn {i} failed: {event.error}")
                if api.pending():
                    raise SystemExit(f"{name}: turn {i} left {api.pending()} scripted step(s) unused")
        finally:
            engine.close()
        total, cached, breaks, summaries, summary_uncached, fixed = measure(api.requests)
        return Figures(name, len(api.requests), summaries, summary_uncached, total, cached, fixed, breaks, len(steps),
                       stripped, time.perf_counter() - t0)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    args = parser.parse_args()
    steps = script(args.turns)
    print(f"{args.turns} scripted turns, max_window_tokens {WINDOW_TOKENS:,}; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    runs = [await run("plain eviction", steps, compress=False, strips=False),
            await run("auto_compress", steps, compress=True, strips=False),
            await run("strip_tool_output", steps, compress=False, strips=True)]
    print(f"  {'run':<18} {'requests':>8} {'input bytes':>13} {'cached share':>12} {'of messages':>11} "
          f"{'breaks':>6} "
          f"{'bytes/turn':>10}   notes")
    for f in runs:
        notes = (f"{f.summaries} summary requests, {f.summary_uncached:,} uncached bytes"
                 if f.summaries else
                 f"{f.stripped} strips" if f.stripped else "")
        print(f"  {f.name:<18} {f.requests:>8} {f.total:>13,} {f.share:>12.1%} {f.messages_share:>11.1%} "
              f"{f.breaks:>6} "
              f"{f.total // f.turns:>10,}   {notes} ({f.seconds:.0f} s)")
    plain = runs[0]
    ok = True
    for f in runs[1:]:
        passed = f.share >= plain.share
        ok = ok and passed
        print(f"  {f.name}: cached share {f.share:.1%} vs plain eviction {plain.share:.1%} "
              f"(target >=) {'PASS' if passed else 'FAIL'}")
    print("load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
