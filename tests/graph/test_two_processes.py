"""Two mnemara processes on one instance's graph at once (a chat and a replay, two chats): a real
second process writes and reads while this one does; neither fails, nothing is lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from mnemara.graph import Graph
from tests.conftest import REPO_ROOT

ROUNDS = 12

SECOND = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mnemara.graph import Graph
    graph = Graph(Path(sys.argv[1]))
    graph.add_node("thing", {"by": "second"}, "second:0")
    print("ready", flush=True)
    for i in range(1, %d):
        graph.add_node("thing", {"by": "second"}, f"second:{i}")
        graph.neighbors("second:0")
        graph.match("thing", {"by": "first"})
    print("done", flush=True)
""" % ROUNDS)


def test_two_processes_write_and_read_one_graph_at_once(tmp_path: Path) -> None:
    directory = tmp_path / "graph"
    graph = Graph(directory)
    graph.add_node("thing", {"by": "first"}, "first:0")
    env_path = str(REPO_ROOT)
    proc = subprocess.Popen([sys.executable, "-c", SECOND, str(directory)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=env_path,
                            env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"})
    try:
        assert proc.stdout.readline().strip() == "ready"
        for i in range(1, ROUNDS):
            graph.add_node("thing", {"by": "first"}, f"first:{i}")
            graph.add_edge(f"first:{i}", "second:0", "SEES")
            graph.neighbors("first:0")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert out.strip() == "done"
    stats = graph.stats()
    assert stats.labels == {"thing": 2 * ROUNDS} and stats.edges == ROUNDS - 1
    assert len(graph.neighbors("second:0")) == ROUNDS - 1
