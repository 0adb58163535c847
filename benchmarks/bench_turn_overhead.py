"""Engine overhead per turn, excluding the CLI and the model: persist, budget, render, record.

Target: under 10 ms per turn (median) with a 500-turn window.
Runs `TurnEngine.prepare` (role doc, budget, pending user turn, rendered window) and
`TurnEngine.record` (both turns stored with usage, estimator calibration) exactly as a real
turn does; only the SDK round trip in between is skipped.
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
WINDOW = 500
TURNS = 60


async def main() -> None:
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
            role_doc_path=str(role), max_window_turns=WINDOW, max_window_tokens=2_000_000))
        engine = TurnEngine(inst)
        para = "A realistic paragraph of conversation text, with code `x = f(y)` in it. " * 8
        for i in range(WINDOW):
            engine.store.add_turn("user" if i % 2 == 0 else "assistant",
                                  [{"type": "text", "text": f"{i}: {para}"}])
        print(f"window: {engine.store.count()} turns, ~{engine.store.window_tokens():,} est. tokens")

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
        engine.close()
    median = statistics.median(timings)
    p95 = sorted(timings)[int(len(timings) * 0.95) - 1]
    verdict = "PASS" if median < TARGET_MS else "FAIL"
    print(f"engine overhead per turn (500-turn window): median {median:.2f} ms, p95 {p95:.2f} ms "
          f"(target < {TARGET_MS:.0f} ms) {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
