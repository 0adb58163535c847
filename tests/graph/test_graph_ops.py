"""The graph in the instance's operations: doctor checks it (writing nothing), backup copies it
under its lock and restore brings it back, export / import carry it, rebuild relinks old notes."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from mnemara.graph import Graph
from mnemara.memory.writes import write_note
from mnemara.ops import graph as ops
from mnemara.store.turns import TurnStore


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    cli = tmp_path / "claude"
    cli.write_text("#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
    cli.chmod(0o700)
    return {"ANTHROPIC_API_KEY": "test-key", "MNEMARA_CLI_PATH": str(cli)}


def _graph_instance(make_instance: Any, name: str = "work"):  # type: ignore[no-untyped-def]
    inst = make_instance(name, rag_embedder="hash")
    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:
        write_note(inst, store, config, "Deploys need the VPN.", payload={"applies_to": "stg-7.internal"})
    graph = Graph(inst.graph_dir)
    ops.catch_up(inst, graph)
    graph.add_node("decision", {"text": "use blue-green"}, "decision:bg")
    graph.add_edge("decision:bg", "host:stg-7.internal", "CONCERNS")
    return inst, graph


def shape(graph: Graph) -> tuple[set, set]:
    """Nodes and edges without the times an auto edge gets when it is applied again."""
    nodes, edges = graph.dump()
    return ({(n.id, n.label, json.dumps(n.properties, sort_keys=True)) for n in nodes},
            {(e.id, e.from_id, e.relationship, e.to_id, json.dumps(e.properties, sort_keys=True))
             for e in edges})


def _doctor(cli: Any, env: dict[str, str], name: str) -> dict[str, Any]:
    result = cli("doctor", "-i", name, "--json", env=env)
    return {c["check"]: c for c in json.loads(result.stdout)["checks"]}


def test_doctor_reports_the_graph_and_modifies_nothing(cli, make_instance, env, snapshot_tree) -> None:
    inst, graph = _graph_instance(make_instance)
    before = snapshot_tree(inst.root)
    check = _doctor(cli, env, "work")["graph"]
    assert check["status"] == "ok" and check["detail"].startswith("3 node(s), 2 edge(s)")
    assert snapshot_tree(inst.root) == before

    good = graph.path.read_bytes()
    graph.path.write_bytes(b"junk" * 3000)
    check = _doctor(cli, env, "work")["graph"]
    assert check["status"] == "problem" and "damaged" in check["detail"]
    assert "mnemara graph rebuild" in check["fix"]
    graph.path.write_bytes(good)

    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:  # a write the graph has not taken in yet
        write_note(inst, store, config, "x", payload={"applies_to": "billing"})
    check = _doctor(cli, env, "work")["graph"]
    assert check["status"] == "ok" and "1 memory write(s) queued for it" in check["detail"]
    fd = os.open(graph.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # the graph is busy: the write cannot be applied
    try:
        with TurnStore(inst.turns_path) as store:
            from mnemara.graph.feed import drain
            drain(Graph(inst.graph_dir, lock_wait=0.1), store.conn)
    finally:
        os.close(fd)
    check = _doctor(cli, env, "work")["graph"]
    assert check["status"] == "warning" and "not in it yet: graph backend unavailable" in check["detail"]
    assert "mnemara graph -i work" in check["fix"]


def test_backup_and_restore_carry_the_graph(cli, make_instance, env, tmp_path: Path) -> None:
    inst, graph = _graph_instance(make_instance)
    out = tmp_path / "work.tar.gz"
    assert cli("backup", "-i", "work", "-o", str(out), env=env).exit_code == 0
    assert cli("restore", str(out), "-i", "copy", env=env).exit_code == 0
    from mnemara.instance import Instance
    restored = Graph(Instance.named("copy").graph_dir)
    assert restored.dump() == graph.dump()
    assert _doctor(cli, env, "copy")["graph"]["status"] == "ok"


def test_backup_waits_for_a_graph_writer_in_another_process(make_instance, tmp_path: Path) -> None:
    from mnemara.ops.backup import backup
    inst, graph = _graph_instance(make_instance)
    fd = os.open(graph.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another process is in the middle of a graph write
    done = threading.Event()

    def run() -> None:
        backup(inst, tmp_path / "b.tar.gz")
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert not done.wait(1.0)  # the backup does not copy a graph being written
    finally:
        os.close(fd)
    worker.join(30)
    assert done.is_set()


def test_export_and_import_carry_the_graph(cli, make_instance, tmp_path: Path) -> None:
    inst, graph = _graph_instance(make_instance)
    out = tmp_path / "work.jsonl"
    assert cli("export", "-i", "work", "-o", str(out)).exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    graph_records = [r for r in records if r["type"] == "graph"]
    assert len(graph_records) == 1 and len(graph_records[0]["graph"]["nodes"]) == 2
    md = cli("export", "-i", "work", "--format", "md").stdout
    assert "## Knowledge graph" in md and "`decision:bg` -[CONCERNS]-> `host:stg-7.internal`" in md

    make_instance("copy", rag_embedder="hash")
    result = cli("import", str(out), "-i", "copy")
    assert result.exit_code == 0, result.stderr
    from mnemara.instance import Instance
    copy = Graph(Instance.named("copy").graph_dir)
    ops.catch_up(Instance.named("copy"), copy)  # the imported note's own links, re-applied
    assert shape(copy) == shape(graph)


def test_a_broken_graph_record_is_refused_before_anything_is_imported(cli, make_instance, tmp_path: Path,
                                                                     assert_user_error) -> None:
    _graph_instance(make_instance)
    out = tmp_path / "work.jsonl"
    cli("export", "-i", "work", "-o", str(out))
    lines = out.read_text().splitlines()
    record = json.loads(lines[-1])
    record["graph"]["edges"][0]["to"] = "nowhere"
    out.write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    make_instance("copy")
    assert_user_error(cli("import", str(out), "-i", "copy"), "joins a node it does not hold")


def test_rebuild_links_notes_written_before_the_graph(cli, make_instance) -> None:
    inst = make_instance("old", graph_enabled=False)
    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:
        write_note(inst, store, config, "Ada said host db01 is slow.")
        write_note(inst, store, config, "Ada moved db01.")
        store.conn.execute("DELETE FROM graph_outbox")  # as if written before the graph existed
    inst.save_config(config.replace(graph_enabled=True))
    result = cli("graph", "rebuild", "-i", "old")
    assert result.exit_code == 0 and result.stdout.strip() == "linked 2 memory atom(s) into the graph"
    assert len(Graph(inst.graph_dir).atoms_for_entity("host", "db01")) == 2
