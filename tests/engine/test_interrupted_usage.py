"""An interrupted turn keeps the token usage its API calls reported, so tokens and cost agree.

The Claude Code CLI ends an aborted turn with a result of zero usage but a non-zero cost (the
fake CLI does the same, as observed with the real one); the summary line used to read
`0 in / 0 out · $0.0012`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnemara.engine.events import TextDone, TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.ui.plain import PlainRenderer
from tests.fakes.fake_cli import DEFAULT_STEP_USAGE, fake_cli


async def test_interrupted_turn_records_the_usage_its_calls_reported(home: Path, tmp_path: Path,
                                                                     capsys: Any) -> None:
    inst = Instance.named("t")
    inst.create()
    fake = fake_cli(tmp_path / "fake", [[{"text": "partial answer", "chunks": 1}, {"sleep": 20},
                                         {"text": "never"}]])
    eng = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
    try:
        events: list[Any] = []
        async for event in eng.run("long task"):
            events.append(event)
            if isinstance(event, TextDone):
                await eng.interrupt()
        done = events[-1]
        assert isinstance(done, TurnFinished) and done.status == "interrupted"
        assert done.cost_usd  # the CLI charges for the aborted call ...
        # ... and the tokens shown with that cost are the ones the call reported while streaming.
        assert done.usage.input_tokens == DEFAULT_STEP_USAGE["input_tokens"]
        assert done.usage.output_tokens == 1
        stored = eng.store.window()[-1]
        assert stored.status == "interrupted" and stored.usage["input_tokens"] > 0
        PlainRenderer().finish(done)
        line = capsys.readouterr().err
        assert "0 in / 0 out" not in line and f"{done.usage.total_input:,} in / 1 out" in line
    finally:
        eng.close()
