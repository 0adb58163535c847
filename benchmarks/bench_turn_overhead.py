"""Engine overhead per turn, excluding the CLI and the model: persist, budget, render, record.

Target: under 10 ms per turn (median) with a 500-turn window, automatic recall off.
Runs `TurnEngine.prepare` (role doc, budget, pending user turn, rendered window) and
`TurnEngine.record` (both turns stored with usage, estimator calibration) exactly as a real
turn does; only the SDK round trip in between is skipped.

Then the same with automatic recall on (the default) over a 500-turn history of which 100 turns
were archived: prepare now also embeds the message and searches the memory index. The turn's
own indexing happens after it, in the background, as in the chat (not timed).
Target: under 100 ms per turn (median) with recall.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_MS = 10.0
RECALL_TARGET_MS = 100.0
WINDOW = 500
TURNS = 60


async def run(recall: bool) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MNEMARA_HOME"] = tmp
        from mnemara.engine.events import Usage
        from mnemara.engine.turn import TurnEngine, _TurnState
        from mnemara.instance import Instance

        role = Path(tmp) / "role.md"
        role.write_text("You are a benchmark role.\n" * 200)
        inst = Instance.named("bench")
        inst.create()
        inst.save_config(inst.load_config().replace(
            role_doc_path=str(role), max_window_turns=WINDOW + 2, max_window_tokens=2_000_000,
            recall="auto" if recall else "off"))
        engine = TurnEngine(inst)
        para = "A realistic paragraph of conversation text, with code `x = f(y)` in it. " * 8
        for i in range(WINDOW):
            engine.store.add_turn("user" if i % 2 == 0 else "assistant",
                                  [{"type": "text", "text": f"{i}: {para}"}])
        if recall:
            engine.store.evict(list(range(1, 101)), "bench")  # something to recall
            engine.memory.drain()
        print(f"window: {engine.store.count()} turns, ~{engine.store.window_tokens():,} est. tokens"
              f"{', 100 archived, recall on' if recall else ', recall off'}")

        async def emit(_: object) -> None:
            return None

        timings = []
        for i in range(TURNS):
            state = _TurnState()
            state.blocks = [
                {"type": "text", "text": "Let me check. " + para},
                {"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"command": "ls -la"}},
                {"type": "tool_result", "tool_use_id": f"t{i}", "content": "file\n" * 200, "is_error": False},
                {"type": "text", "text": "Done. " + para},
            ]
            state.first_call_input = 150_000
            state.result = type("R", (), {"usage": Usage(1000, 200, 140_000, 500).to_json(),
                                          "total_cost_usd": 0.01, "num_turns": 2, "is_error": False})()
            t0 = time.perf_counter()
            prepared = await engine.prepare(f"message {i}: {para}", emit)
            engine.record(prepared, state, None, deque(), t0)
            timings.append((time.perf_counter() - t0) * 1000)
            if recall:
                engine.memory.drain()  # the chat indexes the turn in the background afterwards
        engine.close()
    return timings


def report(label: str, timings: list[float], target: float) -> bool:
    median = statistics.median(timings[5:])  # the first turns open the index and load the model
    p95 = sorted(timings[5:])[int(len(timings[5:]) * 0.95) - 1]
    ok = median < target
    print(f"{label}: median {median:.2f} ms, p95 {p95:.2f} ms (target < {target:.0f} ms) "
          f"{'PASS' if ok else 'FAIL'}")
    return ok


async def main() -> None:
    ok = report("engine overhead per turn (500-turn window)", await run(False), TARGET_MS)
    ok &= report("with automatic recall (embed + search the index)", await run(True), RECALL_TARGET_MS)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    asyncio.run(main())
