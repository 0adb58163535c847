"""The graph interface on a real embedded ladybug database in a temp dir: nodes, edges,
neighbours, matching, shortest paths, entity lookups, export and reload; reads that never create
or change a file; a damaged file and a held lock as one clear error that clears when the problem
does."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest

from mnemara.graph import Graph, GraphError, GraphUnavailable, open_graph
from mnemara.graph.entities import Entity


@pytest.fixture
def graph(tmp_path: Path) -> Graph:
    return Graph(tmp_path / "graph", lock_wait=0.2)


def small(graph: Graph) -> dict[str, str]:
    ada, _ = graph.add_node("person", {"name": "ada", "team": "infra"}, "person:ada")
    host, _ = graph.add_node("host", {"name": "stg-7"})
    proj, _ = graph.add_node("project", {"name": "billing"})
    lone, _ = graph.add_node("person", {"name": "bob", "team": "infra"})
    graph.add_edge(ada.id, host.id, "DEPLOYS_TO", {"since": 2024})
    graph.add_edge(proj.id, host.id, "RUNS_ON")
    return {"ada": ada.id, "host": host.id, "proj": proj.id, "lone": lone.id}


def test_nodes_edges_and_walks(graph: Graph) -> None:
    ids = small(graph)
    assert graph.get_node("person:ada").properties == {"name": "ada", "team": "infra"}
    assert [n.id for n in graph.neighbors(ids["ada"])] == [ids["host"]]
    assert {n.id for n in graph.neighbors(ids["ada"], depth=2)} == {ids["host"], ids["proj"]}
    assert graph.neighbors(ids["lone"]) == []
    path = graph.shortest_path(ids["ada"], ids["proj"])
    assert [n.id for n, _ in path] == [ids["ada"], ids["host"], ids["proj"]]
    assert [e.relationship for _, e in path[1:]] == ["DEPLOYS_TO", "RUNS_ON"]
    assert graph.shortest_path(ids["ada"], ids["lone"]) == []
    edges, more = graph.edges_of(ids["host"])
    assert not more and {(e.relationship, other.id, out) for e, other, out in edges} == {
        ("DEPLOYS_TO", ids["ada"], False), ("RUNS_ON", ids["proj"], False)}


def test_match_by_label_and_property_subset(graph: Graph) -> None:
    ids = small(graph)
    infra, _ = graph.match("person", {"team": "infra"})
    assert {n.id for n in infra} == {ids["ada"], ids["lone"]}
    assert [n.id for n in graph.match(None, {"name": "stg-7"})[0]] == [ids["host"]]
    assert graph.match("person", {"team": "infra", "name": "bob"})[0][0].id == ids["lone"]
    # A pair nested inside another value is not a match (the substring prefilter is re-checked).
    graph.add_node("doc", {"meta": {"name": "stg-7"}})
    assert [n.id for n in graph.match(None, {"name": "stg-7"})[0]] == [ids["host"]]
    first, more = graph.match("person", {"team": "infra"}, limit=1)
    assert len(first) == 1 and more


def test_an_existing_id_is_kept_and_unknown_ids_are_named(graph: Graph) -> None:
    graph.add_node("person", {"name": "ada"}, "person:ada")
    node, created = graph.add_node("robot", {}, "person:ada")
    assert not created and node.label == "person"
    with pytest.raises(GraphError, match="no node with id 'nobody'"):
        graph.add_edge("person:ada", "nobody", "KNOWS")
    assert graph.neighbors("x") == []  # replay asks about entities freely


def test_reads_of_a_graph_not_made_yet_find_nothing_and_create_nothing(tmp_path: Path) -> None:
    graph = Graph(tmp_path / "graph")
    assert graph.neighbors("person:ada") == []
    assert graph.match("person") == ([], False)
    assert graph.atoms_for_entity("person", "Ada") == []
    assert graph.stats().exists is False
    assert not (tmp_path / "graph").exists()


def test_reads_leave_every_file_byte_identical(graph: Graph, snapshot_tree) -> None:
    ids = small(graph)
    before = snapshot_tree(graph.directory)
    graph.neighbors(ids["ada"], 2)
    graph.match("person", {"team": "infra"})
    graph.stats()
    graph.dump()
    assert snapshot_tree(graph.directory) == before


def test_atoms_for_entity_normalises_the_name(graph: Graph) -> None:
    graph.add_node("person", {"name": "ada"}, "person:ada")
    graph.add_node("atom", {}, "note:2026-01-01.md:1")
    graph.add_edge("note:2026-01-01.md:1", "person:ada", "MENTIONS")
    assert graph.atoms_for_entity("person", "  ADA ") == ["note:2026-01-01.md:1"]
    assert graph.atoms_for_entities([Entity("person", "ada"), Entity("host", "x")]) == {
        Entity("person", "ada"): ["note:2026-01-01.md:1"]}


def test_dump_and_load_round_trip_and_load_twice_adds_nothing(graph: Graph, tmp_path: Path) -> None:
    small(graph)
    nodes, edges = graph.dump()
    copy = Graph(tmp_path / "copy")
    assert copy.load(nodes, edges) == (4, 2)
    assert copy.load(nodes, edges) == (0, 0)
    assert copy.dump() == (nodes, edges)


def test_a_damaged_file_is_one_clear_error_and_the_next_call_retries(graph: Graph) -> None:
    small(graph)
    good = graph.path.read_bytes()
    graph.path.write_bytes(b"\0garbage" * 600)
    with pytest.raises(GraphUnavailable) as exc:
        graph.neighbors("person:ada")
    assert "damaged" in str(exc.value) and str(graph.path) in str(exc.value)
    assert "\n" not in str(exc.value)
    graph.path.write_bytes(good)  # the user restores it: no restart needed
    assert graph.get_node("person:ada") is not None


def test_a_held_lock_waits_then_fails_clearly_and_clears(graph: Graph) -> None:
    small(graph)
    fd = os.open(graph.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another mnemara process writing
    try:
        with pytest.raises(GraphUnavailable, match="busy in another mnemara process"):
            graph.add_node("person", {"name": "cy"})
        with pytest.raises(GraphUnavailable, match="busy"):
            graph.neighbors("person:ada")
    finally:
        os.close(fd)
    assert graph.add_node("person", {"name": "cy"})[1]


def test_open_graph_is_none_when_turned_off(make_instance) -> None:
    inst = make_instance("g", graph_enabled=False)
    assert open_graph(inst, inst.load_config()) is None
    on = make_instance("h")
    graph = open_graph(on, on.load_config())
    assert graph is not None and graph.directory == on.graph_dir
