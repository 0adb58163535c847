"""The six graph tools through `call_tool`, as the model calls them, on a real instance: what the
model reads back, read-only enforcement of graph_query, a graph turned off, damaged or locked."""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path

from mnemara.engine.tools import active_tools
from mnemara.graph import Graph
from tests.fakes.tool_calls import err, ok

from .conftest import make_ctx

GRAPH_TOOLS = {"graph_add_node", "graph_add_edge", "graph_query", "graph_neighbors", "graph_match",
               "graph_shortest_path"}


def added_id(reply: str) -> str:
    return re.search(r"Added node (\S+) ", reply).group(1)


async def test_each_tool_as_the_model_uses_it(ctx) -> None:
    ada = added_id(await ok(ctx, "graph_add_node", {"label": "person", "id": "person:ada",
                                                    "properties": '{"name": "ada", "team": "infra"}'}))
    host = added_id(await ok(ctx, "graph_add_node", {"label": "host", "properties": '{"name": "stg-7"}'}))
    proj = added_id(await ok(ctx, "graph_add_node", {"label": "project"}))
    assert ada == "person:ada"
    reply = await ok(ctx, "graph_add_edge", {"from_id": ada, "to_id": host, "relationship": "DEPLOYS_TO"})
    assert f"{ada} -[DEPLOYS_TO]-> {host}" in reply
    await ok(ctx, "graph_add_edge", {"from_id": proj, "to_id": host, "relationship": "RUNS_ON"})

    near = await ok(ctx, "graph_neighbors", {"node_id": host})
    assert f"<-[DEPLOYS_TO]- {ada} (person)" in near and f"<-[RUNS_ON]- {proj} (project)" in near
    far = await ok(ctx, "graph_neighbors", {"node_id": ada, "depth": 2})
    assert host in far and proj in far

    matched = await ok(ctx, "graph_match", {"label": "person", "properties": '{"team": "infra"}'})
    assert matched.startswith("1 node(s)") and '- person:ada (person) {"name": "ada", "team": "infra"}' in matched
    assert await ok(ctx, "graph_match", {"label": "robot"}) == "No node matches."

    path = await ok(ctx, "graph_shortest_path", {"from_id": ada, "to_id": proj})
    assert path.startswith(f"2 edge(s) from {ada} to {proj}") and "[DEPLOYS_TO]" in path and "[RUNS_ON]" in path

    rows = await ok(ctx, "graph_query", {"cypher": "MATCH (n:Node) WHERE n.label = $l RETURN n.id",
                                         "params": '{"l": "person"}'})
    assert rows == "1 row(s):\nn.id\nperson:ada"


async def test_results_are_bounded(ctx) -> None:
    graph = Graph(ctx.instance.graph_dir)
    graph.load([__import__("mnemara.graph", fromlist=["Node"]).Node(f"n{i}", "thing", {"i": i}, "2026-01-01T00:00:00Z")
                for i in range(120)], [])
    rows = await ok(ctx, "graph_query", {"cypher": "MATCH (n:Node) RETURN n.id", "limit": 10})
    assert rows.startswith("10 row(s) shown; more were left out") and len(rows.splitlines()) == 12
    matched = await ok(ctx, "graph_match", {"label": "thing", "limit": 5})
    assert "more left out" in matched and len(re.findall(r"^- n\d+", matched, re.M)) == 5


async def test_graph_query_is_read_only_unless_allowed(ctx, tmp_path: Path) -> None:
    await ok(ctx, "graph_add_node", {"label": "person", "id": "person:ada"})
    for cypher in ("CREATE (:Node {id: 'x', label: 'evil'})",
                   "MATCH (n:Node) DETACH DELETE n",
                   "MATCH (n:Node) SET n.label = 'changed'",
                   "MERGE (n:Node {id: 'y'})"):
        reply = await err(ctx, "graph_query", {"cypher": cypher}, one_line=True)
        assert "read-only" in reply
    assert Graph(ctx.instance.graph_dir).stats().nodes == 1
    assert Graph(ctx.instance.graph_dir).get_node("person:ada").label == "person"

    writable = make_ctx(tmp_path / "w", graph_allow_write_queries=True)
    try:
        await ok(writable, "graph_add_node", {"label": "person", "id": "person:ada"})
        reply = await ok(writable, "graph_query", {"cypher": "MATCH (n:Node {id: $id}) SET n.label = 'boss' RETURN n.label",
                                                   "params": '{"id": "person:ada"}'})
        assert reply.endswith("boss")
    finally:
        writable.store.close()


async def test_graph_query_never_reaches_files_extensions_or_the_schema(tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("top,secret\n")
    ctx = make_ctx(tmp_path, graph_allow_write_queries=True)
    try:
        await ok(ctx, "graph_add_node", {"label": "person"})
        out = tmp_path / "out.csv"
        for cypher, word in ((f"LOAD FROM '{secret}' RETURN *", "LOAD"),
                             (f"COPY (MATCH (n:Node) RETURN n.id) TO '{out}'", "COPY"),
                             (f"EXPORT DATABASE '{tmp_path / 'dump'}'", "EXPORT"),
                             ("INSTALL json", "INSTALL"),
                             ("DROP TABLE Edge", "DROP"),
                             ("CREATE NODE TABLE X(id STRING PRIMARY KEY)", "CREATE NODE"),
                             ("CALL project_graph('g', ['Node'], ['Edge'])", "CALL project_graph"),
                             ("MATCH (n:Node) RETURN n.id; MATCH (n:Node) DETACH DELETE n", "one statement")):
            reply = await err(ctx, "graph_query", {"cypher": cypher}, one_line=True)
            assert word in reply and "secret" not in reply.split("'")[0]
        assert not out.exists() and not (tmp_path / "dump").exists()
        # A keyword inside a string literal is data, not a clause.
        rows = await ok(ctx, "graph_query", {"cypher": "MATCH (n:Node) WHERE n.label <> 'LOAD FROM x' RETURN count(n)"})
        assert rows.endswith("\n1")
    finally:
        ctx.store.close()


async def test_turned_off_offers_no_graph_tool(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, graph_enabled=False)
    try:
        assert GRAPH_TOOLS.isdisjoint(t.name for t in active_tools(ctx.config))
        reply = await err(ctx, "graph_neighbors", {"node_id": "x"})
        assert "turned off" in reply
        assert not ctx.instance.graph_dir.exists()
    finally:
        ctx.store.close()
    on = make_ctx(tmp_path / "on")
    try:
        assert GRAPH_TOOLS <= {t.name for t in active_tools(on.config)}
    finally:
        on.store.close()


async def test_damaged_graph_one_error_memory_keeps_working_and_the_next_call_retries(ctx) -> None:
    await ok(ctx, "graph_add_node", {"label": "person", "id": "person:ada"})
    graph = Graph(ctx.instance.graph_dir)
    good = graph.path.read_bytes()
    graph.path.write_bytes(b"not a graph" * 1000)
    for name, args in (("graph_neighbors", {"node_id": "person:ada"}),
                       ("graph_add_node", {"label": "x"}),
                       ("graph_query", {"cypher": "MATCH (n:Node) RETURN n.id"})):
        reply = await err(ctx, name, args, one_line=True)
        assert reply.startswith("graph backend unavailable:") and "damaged" in reply
    assert "Saved a 'note' note" in await ok(ctx, "write_memory", {"text": "Ada runs host stg-7"})
    graph.path.write_bytes(good)
    assert "person:ada" in await ok(ctx, "graph_match", {"label": "person"})


async def test_locked_graph_one_error_then_works_once_released(ctx, monkeypatch) -> None:
    await ok(ctx, "graph_add_node", {"label": "person", "id": "person:ada"})
    monkeypatch.setattr("mnemara.graph.store.LOCK_WAIT_SECONDS", 0.2)
    graph = Graph(ctx.instance.graph_dir)
    fd = os.open(graph.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another mnemara process is writing the graph
    try:
        reply = await err(ctx, "graph_match", {"label": "person"}, one_line=True)
        assert "busy in another mnemara process" in reply
    finally:
        os.close(fd)
    assert "person:ada" in await ok(ctx, "graph_match", {"label": "person"})


async def test_bad_properties_are_a_readable_error(ctx) -> None:
    reply = await err(ctx, "graph_add_node", {"label": "person", "properties": "[1, 2]"}, one_line=True)
    assert "JSON object" in reply
    reply = await err(ctx, "graph_add_node", {"label": "person", "properties": "{nope"}, one_line=True)
    assert "JSON object as text" in reply
    assert json.loads('{"a": 1}')  # the form the description shows parses


async def test_unknown_node_and_a_missing_engine_are_one_line(ctx, monkeypatch) -> None:
    import sys
    await ok(ctx, "graph_add_node", {"label": "person", "id": "person:ada"})
    for depth in (1, 2):
        reply = await err(ctx, "graph_neighbors", {"node_id": "nobody", "depth": depth}, one_line=True)
        assert "no node with id 'nobody'" in reply
    import mnemara.graph
    monkeypatch.setitem(sys.modules, "mnemara.graph.engine", None)  # as if ladybug were not installed
    monkeypatch.delattr(mnemara.graph, "engine", raising=False)
    reply = await err(ctx, "graph_match", {"label": "person"}, one_line=True)
    assert reply.startswith("graph backend unavailable: the graph engine is not installed")
    assert "Saved" in await ok(ctx, "write_memory", {"text": "Ada owns host db01."})
    monkeypatch.undo()
    assert "person:ada" in await ok(ctx, "graph_match", {"label": "person"})
