"""`mnemara graph` as a user runs it: stats, show, export as DOT and JSON, the errors, and output
made inert on a terminal."""

from __future__ import annotations

import json
import os
import sys

import pexpect

from mnemara.graph import Graph
from mnemara.memory.writes import write_note
from mnemara.store.turns import TurnStore
from tests.conftest import REPO_ROOT


def notes(inst) -> None:
    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:
        write_note(inst, store, config, "Deploys need the VPN.", payload={"applies_to": "stg-7.internal"})
        write_note(inst, store, config, "Ada said host db01 is slow.")
        write_note(inst, store, config, "Ada moved db01 to new disks.")


def test_stats_show_and_export(cli, make_instance) -> None:
    inst = make_instance("work")
    notes(inst)  # queued only: the command applies the queue before it shows anything
    result = cli("graph", "-i", "work")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("graph of 'work': 6 node(s), 5 edge(s)")
    assert "nodes by label: atom 3, host 2, person 1" in result.stdout
    assert "edges by relationship: MENTIONS 4, APPLIES_TO 1" in result.stdout
    assert cli("graph", "stats", "-i", "work").stdout == result.stdout

    shown = cli("graph", "show", "host:db01", "-i", "work")
    assert shown.exit_code == 0
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("host:db01 (host), created ") and lines[1] == "  name: db01"
    assert sum("<-[MENTIONS]- note:" in line for line in lines) == 2

    dot = cli("graph", "-i", "work", "export", "--format", "dot").stdout
    assert dot.startswith("digraph mnemara {") and dot.rstrip().endswith("}")
    assert '-> "host:stg-7.internal" [label="APPLIES_TO"];' in dot
    data = json.loads(cli("graph", "export", "-i", "work").stdout)
    assert data["format"] == "mnemara-graph" and len(data["nodes"]) == 6 and len(data["edges"]) == 5


def test_mistakes_are_one_line(cli, make_instance, assert_user_error) -> None:
    make_instance("work")
    assert_user_error(cli("graph", "show", "person:nobody", "-i", "work"), "no node with id 'person:nobody'")
    make_instance("off", graph_enabled=False)
    assert_user_error(cli("graph", "stats", "-i", "off"), "graph_enabled is false")
    assert_user_error(cli("graph", "-i", "missing"), "no instance named 'missing'")


def test_a_fresh_instance_says_there_is_no_graph_yet_and_creates_nothing(cli, make_instance) -> None:
    inst = make_instance("work")
    result = cli("graph", "-i", "work")
    assert result.exit_code == 0 and "no graph yet" in result.stdout
    assert not inst.graph_dir.exists()


def test_a_damaged_graph_is_one_line(cli, make_instance, assert_user_error) -> None:
    inst = make_instance("work")
    Graph(inst.graph_dir).add_node("x", {})
    Graph(inst.graph_dir).path.write_bytes(b"junk" * 2000)
    assert_user_error(cli("graph", "-i", "work"), "graph backend unavailable", "damaged")


def test_terminal_output_is_inert(make_instance, mnemara_home) -> None:
    inst = make_instance("work")
    Graph(inst.graph_dir).add_node("person", {"name": "\x1b]0;owned\x07evil"}, "person:eve")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MNEMARA_HOME": str(mnemara_home)}
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "graph", "show", "person:eve", "-i", "work"],
                          env=env, encoding="utf-8", timeout=60)
    out = child.read()
    child.close()
    assert "\x1b" not in out and "\\x1b]0;owned\\x07evil" in out


def test_export_then_import_into_another_instance(cli, make_instance, tmp_path, assert_user_error) -> None:
    notes(make_instance("work"))
    out = tmp_path / "g.json"
    out.write_text(cli("graph", "export", "-i", "work").stdout)
    make_instance("copy")
    assert cli("graph", "import", str(out), "-i", "copy").stdout.strip() == "added 6 node(s) and 5 edge(s)"
    assert cli("graph", "import", str(out), "-i", "copy").stdout.strip() == "added 0 node(s) and 0 edge(s)"
    assert cli("graph", "-i", "copy").stdout == cli("graph", "-i", "work").stdout.replace("'work'", "'copy'").replace(
        "/work/graph", "/copy/graph")
    (tmp_path / "bad.json").write_text("{nope")
    assert_user_error(cli("graph", "import", str(tmp_path / "bad.json"), "-i", "copy"), "is not JSON")
    (tmp_path / "other.json").write_text('{"nodes": []}')
    assert_user_error(cli("graph", "import", str(tmp_path / "other.json"), "-i", "copy"),
                      "not a mnemara graph export")
