"""End to end: mnemara's engine -> the REAL bundled Claude Code CLI -> a fake Messages API on 127.0.0.1.

The fake API sees exactly what the model would see, so these tests prove what reaches the wire.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mnemara.config import ToolPolicy
from mnemara.engine.events import Notice, PermissionRequest, Recalled, ToolResult, TurnFinished
from mnemara.engine.turn import TurnEngine
from tests.fakes.drive import run_turn as run
from tests.e2e.conftest import CliHome
from tests.fakes.fake_api import offered_tool_names, system_text

pytestmark = pytest.mark.e2e

MNEMARA_TOOLS = {f"mcp__mnemara__{name}" for name in (
    "write_memory", "propose_role_amendment", "inspect_context", "list_window", "pin_turn",
    "unpin_turn", "evict_turns", "rag_query", "rag_index", "read_turns", "wiki_read", "wiki_write",
    "wiki_list", "update_memory", "tune_window", "mark_segment", "evict_segment", "evict_last",
    "strip_tool_output", "list_pinned", "log_choice", "slot_set", "slot_append", "slot_clear",
    "graph_add_node", "graph_add_edge", "graph_query", "graph_neighbors", "graph_match",
    "graph_shortest_path")}


@pytest.fixture
def setup(cli_home: CliHome):
    env, home = cli_home.env, cli_home.home
    role = home / "role.md"
    role.write_text("You are the e2e test role. Answer briefly.")
    inst = cli_home.instance("e2e", role_doc_path=str(role))
    engines: list[TurnEngine] = []

    def make(**config: Any) -> TurnEngine:
        if config:
            inst.save_config(inst.load_config().replace(**config))
        engine = TurnEngine(inst, env=env)
        engines.append(engine)
        return engine

    yield inst, make, home
    for engine in engines:
        engine.close()




def our_blocks(body: dict[str, Any]) -> list[str]:
    """Texts of the first user message's blocks that mnemara sent (CLI reminders left out)."""
    content = body["messages"][0]["content"]
    return [b["text"] for b in content if b.get("type") == "text" and b["text"].startswith("<turn ")]


async def test_wire_carries_role_doc_window_blocks_and_only_configured_tools(setup, api) -> None:
    inst, make, _ = setup
    engine = make()
    for reply in ("first reply", "second reply", "third reply"):
        api.enqueue([{"type": "text", "text": reply}])
    for msg in ("one", "two", "three"):
        done = (await run(engine, msg))[-1]
        assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    bodies = api.requests
    assert len(bodies) == 3
    for body in bodies:
        assert "You are the e2e test role. Answer briefly." in system_text(body)
        assert set(offered_tool_names(body)) == {"Bash", "Read", "Write", "Edit"} | MNEMARA_TOOLS
    # the window blocks are exactly the stored turns, in order
    stored = [t.rendered for t in engine.store.window()]
    assert our_blocks(bodies[2]) == stored[:5]
    # consecutive requests share a byte-identical prefix: each extends the one before
    for before, after in zip(bodies, bodies[1:]):
        a, b = our_blocks(before), our_blocks(after)
        assert b[: len(a)] == a and len(b) == len(a) + 2
    # the newest block is a cache breakpoint, and the request stays within the API's 4
    last = bodies[2]["messages"][0]["content"][-1]
    assert last.get("cache_control") == {"type": "ephemeral"}
    marks = json.dumps(bodies[2]).count('"cache_control"')
    assert marks <= 4


async def test_denied_bash_never_runs_and_ask_answered_n_blocks(setup, api) -> None:
    inst, make, home = setup
    denied_file, asked_file = home / "denied.txt", home / "asked.txt"
    policies = [ToolPolicy("Bash", "deny"), ToolPolicy("Read", "allow"), ToolPolicy("mcp__mnemara__*", "allow")]
    engine = make(allowed_tools=[p.to_json() for p in policies])
    api.enqueue([{"type": "tool_use", "name": "Bash", "input": {"command": f"touch {denied_file}"}}])
    api.enqueue([{"type": "text", "text": "I could not."}])
    events = await run(engine, "create the file")
    assert "Bash" not in offered_tool_names(api.requests[0])  # deny: not even offered
    assert not denied_file.exists()
    assert not [e for e in events if isinstance(e, PermissionRequest)]

    engine2 = make(allowed_tools=[ToolPolicy("Bash", "ask").to_json(),
                                  ToolPolicy("mcp__mnemara__*", "allow").to_json()])
    api.enqueue([{"type": "tool_use", "name": "Bash", "input": {"command": f"touch {asked_file}"}}])
    api.enqueue([{"type": "text", "text": "You said no."}])
    events = await run(engine2, "create the other file", answers="n")
    [request] = [e for e in events if isinstance(e, PermissionRequest)]
    assert request.tool == "Bash"
    assert not asked_file.exists()
    # the model was told: the tool_result in the next request is an error
    results = [b for m in api.requests[-1]["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])
               if b.get("type") == "tool_result"]
    assert results and results[-1].get("is_error") is True


async def test_ask_answered_y_runs_the_command(setup, api) -> None:
    inst, make, home = setup
    target = home / "made.txt"
    engine = make()
    api.enqueue([{"type": "tool_use", "name": "Bash", "input": {"command": f"echo hi > {target}"}}])
    api.enqueue([{"type": "text", "text": "Done."}])
    events = await run(engine, "make it", answers="y")
    assert [e.tool for e in events if isinstance(e, PermissionRequest)] == ["Bash"]
    assert target.read_text() == "hi\n"
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert not result.is_error


async def test_read_outside_home_is_refused(setup, api) -> None:
    inst, make, home = setup
    engine = make()
    api.enqueue([{"type": "tool_use", "name": "Read", "input": {"file_path": "/etc/hostname"}}])
    api.enqueue([{"type": "text", "text": "Refused."}])
    events = await run(engine, "read /etc/hostname")
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "outside $HOME" in result.text
    hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else None
    if hostname:
        assert hostname not in json.dumps(api.requests[-1]["messages"])


async def test_in_process_write_memory_and_usage_recorded(setup, api) -> None:
    inst, make, _ = setup
    engine = make()
    api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__write_memory",
                  "input": {"text": "The user deploys on Fridays.", "category": "fact"}}],
                usage={"input_tokens": 1200, "output_tokens": 30})
    api.enqueue([{"type": "text", "text": "Noted."}],
                usage={"input_tokens": 1300, "output_tokens": 5, "cache_read_input_tokens": 1000})
    events = await run(engine, "remember that I deploy on Fridays")
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    notes = "".join(p.read_text() for p in inst.memory_dir.glob("*.md"))
    assert "] fact\nThe user deploys on Fridays." in notes
    assert done.usage.output_tokens == 35 and done.usage.cache_read_input_tokens >= 1000
    assert done.api_calls == 2
    stored = engine.store.window()[-1]
    assert stored.usage["output_tokens"] == 35
    assert stored.cost_usd is not None and stored.cost_usd > 0
    assert [b["type"] for b in stored.blocks] == ["tool_use", "tool_result", "text"]


async def test_api_auth_failure_is_one_clear_sentence_and_not_resent(setup, api) -> None:
    inst, make, _ = setup
    engine = make()
    api.enqueue_error(401, "invalid x-api-key", "authentication_error")
    events = await run(engine, "secret question")
    done = events[-1]
    assert done.status == "failed" and done.error.startswith("no Anthropic credentials")
    api.enqueue([{"type": "text", "text": "fine"}])
    done = (await run(engine, "next question"))[-1]
    assert done.status == "complete"
    assert not any("secret question" in b for b in our_blocks(api.requests[-1]))
    assert not [e for e in events if isinstance(e, Notice) and "Check stderr" in e.text]


async def test_stdio_mcp_server_is_wired_through_and_follows_the_policy(setup, api, tmp_path) -> None:
    import sys
    inst, make, _ = setup
    marker = tmp_path / "echo_calls.txt"
    server = Path(__file__).parents[1] / "fakes" / "echo_mcp_server.py"
    policies = [p.to_json() for p in (ToolPolicy("mcp__mnemara__*", "allow"), ToolPolicy("mcp__echo__*", "ask"))]
    engine = make(allowed_tools=policies,
                  mcp_servers=[{"name": "echo", "command": sys.executable, "args": [str(server)],
                                "env": {"ECHO_MARKER": str(marker)}}])
    api.enqueue([{"type": "tool_use", "name": "mcp__echo__shout", "input": {"text": "first"}}])
    api.enqueue([{"type": "text", "text": "Denied."}])
    events = await run(engine, "shout first", answers="n")
    assert "mcp__echo__shout" in offered_tool_names(api.requests[0])
    assert [e.tool for e in events if isinstance(e, PermissionRequest)] == ["mcp__echo__shout"]
    assert not marker.exists()  # n: the server's tool never ran
    api.enqueue([{"type": "tool_use", "name": "mcp__echo__shout", "input": {"text": "second"}}])
    api.enqueue([{"type": "text", "text": "Shouted."}])
    events = await run(engine, "shout second", answers="y")
    assert marker.read_text() == "second\n"
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.text == "SECOND" and not result.is_error


async def test_an_archived_turn_is_recalled_and_history_stays_byte_identical(setup, api) -> None:
    """The default embedder, the real CLI: a fact that left the window comes back inside the new
    user turn's block, fenced as data; later requests repeat every earlier block byte for byte."""
    inst, make, _ = setup
    engine = make(max_window_turns=6, recall_min_score=0.3)
    script = [("Remember this: the staging database runs on host stg-7 in rack 4.", "Noted: stg-7, rack 4."),
              ("Let's plan the picnic for Saturday.", "Saturday works."),
              ("Bring sandwiches and lemonade.", "Sandwiches and lemonade it is."),
              ("Which rack holds the staging database host?", "Rack 4."),
              ("Thanks, that is all.", "You're welcome.")]
    for message, reply in script:
        api.enqueue([{"type": "text", "text": reply}])
        events = await run(engine, message)
        done = events[-1]
        assert isinstance(done, TurnFinished) and done.status == "complete", done.error
        recalled = [e for e in events if isinstance(e, Recalled)]
        if message.startswith("Which rack"):
            assert recalled and "turn #1" in recalled[0].summary  # shown to the user too
    bodies = api.requests
    question = our_blocks(bodies[3])[-1]
    assert "Which rack holds the staging database host?" in question
    assert "<recalled_memory" in question and "stg-7 in rack 4" in question
    assert "not instructions" in question
    assert not any("stg-7" in b for b in our_blocks(bodies[3])[:-1])  # it had left the window
    # The recall is part of the stored turn: re-sent unchanged, so the next request extends this one.
    after = our_blocks(bodies[4])
    assert after[: len(our_blocks(bodies[3]))] == our_blocks(bodies[3])
    assert json.dumps(bodies[4]).count('"cache_control"') <= 4
