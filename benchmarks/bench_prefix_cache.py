"""Prompt-cache friendliness: how much of each request's history repeats the previous request.

Runs 20 consecutive turns through the REAL bundled Claude Code CLI against the fake Messages API
(tests/fakes/fake_api.py) on 127.0.0.1, starting from a ~50k-token window, and measures at block
boundaries (where Anthropic's prompt cache matches) the share of each request's history bytes that
is a byte-identical prefix of the previous request.
Target: at least 90% (the original mnemara: 0%, one history blob that changes every turn).

Two scenarios: the default budget (room to grow), and a tight budget that forces one chunked
eviction during the run (eviction changes the prefix once, then it is stable again).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET = 0.90
TURNS = 20


def our_blocks(body: dict) -> list[str]:
    content = body["messages"][0]["content"]
    return [b["text"] for b in content if b.get("type") == "text" and b["text"].startswith("<turn ")]


def coverage(bodies: list[dict]) -> tuple[float, float, int]:
    shared_total = history_total = 0
    worst = 1.0
    for before, after in zip(bodies, bodies[1:]):
        a, b = our_blocks(before), our_blocks(after)
        history = b[:-1]  # everything but the new message
        same = 0
        for x, y in zip(a, history):
            if x != y:
                break
            same += len(x.encode())
        size = sum(len(x.encode()) for x in history)
        shared_total += same
        history_total += size
        worst = min(worst, same / size if size else 1.0)
    return shared_total / history_total, worst, history_total


async def scenario(name: str, max_tokens: int) -> float:
    from mnemara.engine.turn import TurnEngine
    from mnemara.instance import Instance
    from tests.fakes.fake_api import FakeMessagesAPI, real_cli_env

    with tempfile.TemporaryDirectory() as tmp, FakeMessagesAPI() as api:
        env = real_cli_env(tmp, api)
        os.environ["HOME"] = env["HOME"]
        os.environ["MNEMARA_HOME"] = str(Path(tmp) / "mnemara")
        inst = Instance.named("bench")
        inst.create()
        inst.save_config(inst.load_config().replace(max_window_turns=200, max_window_tokens=max_tokens,
                                                    cwd=env["HOME"]))
        engine = TurnEngine(inst, env=env)
        para = "Some earlier discussion about the design of the cache layer and its invariants. " * 55
        for i in range(34):
            engine.store.add_turn("user" if i % 2 == 0 else "assistant", [{"type": "text", "text": f"{i} {para}"}])
        start_tokens = engine.store.window_tokens()
        evictions = 0
        for i in range(TURNS):
            api.enqueue([{"type": "text", "text": f"Reply {i}. " + para[:2400]}])
            async for event in engine.run(f"question {i}: what next?"):
                if type(event).__name__ == "Notice" and event.kind == "eviction":
                    evictions += 1
                if type(event).__name__ == "TurnFinished" and event.status != "complete":
                    raise SystemExit(f"turn failed: {event.error}")
        end_tokens = engine.store.window_tokens()
        engine.close()
        share, worst, history = coverage(api.requests)
    verdict = "PASS" if share >= TARGET else "FAIL"
    print(f"{name}: window ~{start_tokens:,} -> ~{end_tokens:,} est. tokens, {TURNS} turns, {evictions} chunked "
          f"eviction(s); shared prefix = {share:.1%} of {history:,} history bytes (worst turn "
          f"{worst:.0%}) (target >= {TARGET:.0%}) {verdict}")
    return share


async def main() -> None:
    await scenario("default budget (100k)", 100_000)
    await scenario("tight budget (46k)", 46_000)


if __name__ == "__main__":
    asyncio.run(main())
