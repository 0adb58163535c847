"""End to end on the wire: the real bundled Claude Code CLI against the fake Messages API. The
model calls the graph tools in a chat; every request offers the same graph tools, byte for byte,
and each request's history extends the one before (the prompt cache keeps serving it)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mnemara.engine.events import TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.graph import Graph
from tests.e2e.conftest import CliHome, api, cli_home  # noqa: F401  (fixtures)
from tests.fakes.drive import run_turn as run
from tests.fakes.fake_api import offered_tool_names

pytestmark = pytest.mark.e2e

GRAPH_TOOLS = {f"mcp__mnemara__graph_{n}" for n in
               ("add_node", "add_edge", "query", "neighbors", "match", "shortest_path")}


def _tools(body: dict[str, Any]) -> str:
    return json.dumps([t for t in body.get("tools") or [] if t.get("name") in GRAPH_TOOLS], sort_keys=True)


def _our_blocks(body: dict[str, Any]) -> list[str]:
    return [b["text"] for b in body["messages"][0]["content"]
            if b.get("type") == "text" and b["text"].startswith("<turn ")]


async def test_the_model_builds_and_reads_the_graph_and_the_prefix_stays_byte_identical(
        cli_home: CliHome, api) -> None:  # noqa: F811
    inst = cli_home.instance("wire")
    engine = TurnEngine(inst, env=cli_home.env)
    try:
        api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__graph_add_node",
                      "input": {"label": "host", "id": "host:stg-7", "properties": '{"rack": 4}'}}])
        api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__write_memory",
                      "input": {"text": "Staging deploys need the VPN.",
                                "payload": {"applies_to": "stg-7"}}}])
        api.enqueue([{"type": "text", "text": "Saved."}])
        api.enqueue([{"type": "tool_use", "name": "mcp__mnemara__graph_neighbors",
                      "input": {"node_id": "host:stg-7"}}])
        api.enqueue([{"type": "text", "text": "One note applies to stg-7."}])
        api.enqueue([{"type": "text", "text": "Bye."}])
        for message in ("stg-7 is in rack 4; staging deploys need the VPN", "what do we know about stg-7?",
                        "thanks"):
            done = (await run(engine, message))[-1]
            assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    finally:
        engine.close()
    bodies = api.requests
    assert len(bodies) == 6
    assert all(set(offered_tool_names(b)) >= GRAPH_TOOLS for b in bodies)
    assert len({_tools(b) for b in bodies}) == 1  # the same definitions, byte for byte
    neighbours = json.dumps(bodies[4]["messages"])
    assert "-[APPLIES_TO]-" in neighbours  # the model read its note's auto-edge back
    # Each turn's request extends the previous turn's history unchanged.
    first_of_turn = [bodies[0], bodies[3], bodies[5]]
    for before, after in zip(first_of_turn, first_of_turn[1:]):
        a, b = _our_blocks(before), _our_blocks(after)
        assert b[: len(a)] == a and len(b) > len(a)
    assert Graph(inst.graph_dir).atoms_for_entity("host", "stg-7")
