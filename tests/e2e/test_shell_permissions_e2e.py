"""End to end with the REAL bundled Claude Code CLI: a Bash pattern approves a plain command, and a
compound command built on it is asked about and, answered "n", never runs (issue 10, hole 2)."""

from __future__ import annotations


import pytest

from mnemara.config import ToolPolicy
from mnemara.engine.events import PermissionRequest, ToolResult
from mnemara.engine.turn import TurnEngine
from tests.fakes.drive import run_turn
from tests.e2e.conftest import CliHome
from tests.fakes.fake_api import FakeMessagesAPI

pytestmark = pytest.mark.e2e


async def test_pattern_runs_plain_ls_but_asks_for_ls_and_touch(cli_home: CliHome,
                                                               api: FakeMessagesAPI) -> None:
    env, home, work = cli_home.env, cli_home.home, cli_home.work
    policies = [ToolPolicy("Bash", "ask", ("^ls( |$)",)), ToolPolicy("mcp__mnemara__*", "allow")]
    inst = cli_home.instance("e2e", allowed_tools=[p.to_json() for p in policies])
    (work / "listed.txt").write_text("x")
    touched, substituted = home / "touched", home / "substituted"
    api.enqueue([{"type": "tool_use", "name": "Bash", "input": {"command": f"ls {work}"}}])
    api.enqueue([{"type": "tool_use", "name": "Bash",
                  "input": {"command": f"ls {work} && touch {touched}"}}])
    api.enqueue([{"type": "tool_use", "name": "Bash",
                  "input": {"command": f"ls $(touch {substituted})"}}])
    api.enqueue([{"type": "text", "text": "Done."}])
    engine = TurnEngine(inst, env=env)
    try:
        events = await run_turn(engine, "list the files", answers="nn")
    finally:
        engine.close()
    asked = [e.summary for e in events if isinstance(e, PermissionRequest)]
    assert asked == [f"Bash: ls {work} && touch {touched}", f"Bash: ls $(touch {substituted})"]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert len(results) == 3
    assert not results[0].is_error and "listed.txt" in results[0].text   # the pattern ran it
    assert results[1].is_error and results[2].is_error
    assert not touched.exists() and not substituted.exists()
