"""End to end, on the wire: what a strip_tool_output call changes in the requests.

mnemara's engine -> the REAL bundled Claude Code CLI -> a fake Messages API on 127.0.0.1. The
window goes out as one text block per turn; the prompt cache serves a request's prefix only when
it is byte-identical to the previous one. So a strip must change exactly the stripped turns'
blocks, from the next turn on, and nothing before them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.tools import call_tool
from mnemara.engine.turn import TurnEngine
from tests.fakes.drive import run_turn
from tests.e2e.conftest import CliHome

pytestmark = pytest.mark.e2e


@pytest.fixture
def engine(cli_home: CliHome):
    inst = cli_home.instance("strip", rag_enabled=False, strip_min_chars=5000)
    eng = TurnEngine(inst, env=cli_home.env)
    yield eng, cli_home.work
    eng.close()


def our_blocks(body: dict[str, Any]) -> list[str]:
    """The window's blocks in a request: mnemara's `<turn ...>` texts (CLI reminders left out)."""
    content = body["messages"][0]["content"]
    return [b["text"] for b in content if b.get("type") == "text" and b["text"].startswith("<turn ")]


def big_log(path: Path, name: str) -> Path:
    path.write_text("".join(f"{name} line {n}: worker-{n % 5} renewed its lease\n" for n in range(300)))
    return path


async def test_a_strip_changes_only_the_stripped_turns_blocks_and_only_from_the_next_turn(engine, api):
    eng, work = engine
    a, b = big_log(work / "a.log", "alpha"), big_log(work / "b.log", "bravo")
    api.enqueue([{"type": "tool_use", "name": "Read", "input": {"file_path": str(a)}}])
    api.enqueue([{"type": "text", "text": "read a"}])
    api.enqueue([{"type": "tool_use", "name": "Read", "input": {"file_path": str(b)}}])
    api.enqueue([{"type": "text", "text": "read b"}])
    api.enqueue([{"type": "text", "text": "both read"}])
    api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__strip_tool_output",
                  "input": {"ids": [2, 4], "now": True}}])
    api.enqueue([{"type": "text", "text": "stripped"}])
    api.enqueue([{"type": "text", "text": "on we go"}])
    turns = {}
    for msg in ("read a.log", "read b.log", "what now?", "strip the old logs", "go on"):
        events = await run_turn(eng, msg)
        done = events[-1]
        assert isinstance(done, TurnFinished) and done.status == "complete", done.error
        turns[msg] = events
    requests = [our_blocks(body) for body in api.requests]
    assert len(requests) == 8  # tool turns take two model steps, the others one
    # ids: user 1, assistant 2 (read a), user 3, assistant 4 (read b), 5, 6, user 7 (strip), 8, 9
    third, strip_first, strip_second, after = requests[4], requests[5], requests[6], requests[7]
    assert "alpha line 50:" in third[1] and "bravo line 50:" in third[3]

    # Without a strip, each turn's request extends the previous one byte for byte.
    assert strip_first[: len(third)] == third
    # The strip does not touch the request in flight: the turn's second step still carries the
    # history as it was (the cache it just wrote keeps serving it).
    assert strip_second == strip_first
    [notice] = [e for e in turns["strip the old logs"] if isinstance(e, Notice) and "stripped" in e.text]
    assert "the model stripped 2 tool outputs from #2, #4" in notice.text

    # The next turn: only the stripped turns' blocks differ; the prefix before them and every
    # other block are byte-identical, so the cache breaks once, at #2.
    assert len(after) == len(strip_first) + 2
    changed = [i for i, (old, new) in enumerate(zip(strip_first, after)) if old != new]
    assert changed == [1, 3]
    assert after[0] == strip_first[0]
    for i in changed:
        assert "output stripped from the window:" in after[i] and "renewed its lease" not in after[i]
    assert "read_turns([2]) shows it in full" in after[1]
    assert "read_turns([4]) shows it in full" in after[3]
    assert len(after[1]) < len(strip_first[1]) // 5

    # Nothing is lost: read_turns gives the model the whole output back.
    opened = await call_tool(eng.tools, "read_turns", {"ids": [2]})
    assert not opened["is_error"]
    assert "alpha line 299: worker-4 renewed its lease" in opened["content"][0]["text"]
