"""`RemoteIndex`: the memory index served by a child process (real LanceDB there, the hash
embedder), as the memory service of a chat session uses it: same answers as in process, the
same error types, progress relayed, the child replaced after its writes and after a crash,
and the session never loading LanceDB itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mnemara.index.atoms import Atom
from mnemara.index.embedders import HashEmbedder
from mnemara.index.lance import MemoryIndex
from mnemara.index.remote import IndexProcessDied, RemoteIndex, index_process

REPO = Path(__file__).resolve().parents[2]
HASH = ("config", "hash", "http://127.0.0.1:9", "unused")


def note(n: int, text: str) -> Atom:
    return Atom(id=f"note:n.md:{n}", kind="note", text=text, created_at=f"2026-03-0{1 + n % 9}T10:00:00Z",
                source="memory/n.md", line=n, category="decision")


def turn(n: int, text: str) -> Atom:
    return Atom(id=f"turn:{n}", kind="turn", text=text, created_at=f"2026-03-01T10:{n:02d}:00Z",
                turn_id=n, role="user" if n % 2 else "assistant")


FACTS = [note(1, "The staging host is stg-7; deploys go there first."),
         note(2, "Backups run nightly at 02:00 to the cold bucket."),
         turn(3, "the lease timeout is 45 seconds"), turn(4, "noted: 45 s lease")]


@pytest.fixture
def remote(tmp_path: Path):
    index = RemoteIndex.open(tmp_path / "index", HASH)
    yield index
    index.close()


def wait_gone(pid: int) -> bool:
    """True once `pid` has exited (or is a zombie waiting for its reaper)."""
    import time
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_answers_match_the_index_opened_in_process(tmp_path: Path, remote: RemoteIndex) -> None:
    remote.upsert(FACTS)
    remote.set_superseded(["note:n.md:2"])
    local = MemoryIndex.open(tmp_path / "local", HashEmbedder())
    local.upsert(FACTS)
    local.set_superseded(["note:n.md:2"])
    for query in ("which host is staging", "lease timeout", "backups nightly"):
        there, here = remote.search(query, k=5), local.search(query, k=5)
        assert [(h.atom, round(h.score, 6)) for h in there.hits] == \
               [(h.atom, round(h.score, 6)) for h in here.hits]
        assert there.mode == here.mode == "hybrid"
    assert remote.count() == 4
    assert remote.get(["turn:4", "missing", "note:n.md:1"]) == [FACTS[3], FACTS[0]]
    assert remote.embedder is not None and remote.embedder.name == "hash:64"
    assert remote.embedder.dim == 64
    assert remote.embedder.embed(["a b"]).shape == (1, 64)
    remote.delete(["note:n.md:1"])
    assert [a.id for a in remote.get(["note:n.md:1"])] == []


def test_errors_come_back_as_the_types_the_service_catches(remote: RemoteIndex) -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        remote.search("x", kinds=["bogus"])
    with pytest.raises(ValueError, match="not an ISO-8601 UTC timestamp"):
        remote.search("x", since="yesterday")
    remote.upsert(FACTS[:1])  # the child is still serving after the errors
    assert remote.count() == 1


def test_an_index_that_cannot_open_raises_there_and_leaves_no_child(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(OSError):
        RemoteIndex.open(blocked / "index", HASH)


def test_text_only_state_follows_the_child(tmp_path: Path) -> None:
    index = RemoteIndex.open(tmp_path / "index", ("config", "none", "", ""))
    try:
        assert index.embedder is None
        assert "no embedder configured" in (index.text_only_reason() or "")
        index.upsert(FACTS)
        assert index.search("staging host").mode == "text"
    finally:
        index.close()


def test_rebuild_progress_is_reported_to_the_caller(remote: RemoteIndex) -> None:
    seen: list[tuple[int, int]] = []
    remote.rebuild(FACTS, lambda done, total: seen.append((done, total)))
    assert seen == [(4, 4)]
    assert remote.count() == 4


def test_the_child_is_replaced_after_its_writes_and_nothing_is_lost(tmp_path: Path) -> None:
    index = RemoteIndex.open(tmp_path / "index", HASH, recycle_writes=3)
    try:
        first = index.pid
        for atom in FACTS[:3]:
            index.upsert([atom])
        # The third write retired the first child and started the next one at once.
        assert index.recycled == 1 and index.started == 2
        assert index.pid is not None and index.pid != first
        assert wait_gone(first)
        index.upsert(FACTS[3:])
        assert index.count() == 4
        assert index.search("which host is staging", k=1).hits[0].atom.id == "note:n.md:1"
    finally:
        index.close()


def test_a_killed_child_is_replaced_at_the_next_call(remote: RemoteIndex) -> None:
    remote.upsert(FACTS[:2])
    dead = remote.pid
    os.kill(dead, signal.SIGKILL)
    assert wait_gone(dead)
    remote.upsert(FACTS[2:])  # a new child, silently (even if the dying one took the request)
    assert remote.pid not in (None, dead)
    assert remote.count() == 4


def test_a_call_that_kills_the_child_each_time_is_one_clear_error_then_the_index_works(
        tmp_path: Path) -> None:
    from tests.index.child_embedders import FatalEmbedder
    index = RemoteIndex.open(tmp_path / "index", ("object", FatalEmbedder()))
    try:
        with pytest.raises(IndexProcessDied,
                           match="^the memory index process was killed by SIGKILL during upsert; "
                                 "it restarts on the next use$"):
            index.upsert(FACTS[:1])  # needs a vector: kills the child, and the one it was resent to
        assert isinstance(IndexProcessDied("x"), RuntimeError)  # what the service's handlers catch
        assert index.started == 2
        assert index.count() == 0  # no embedding needed: a third child serves it
        assert index.started == 3
    finally:
        index.close()


def test_close_ends_the_child(remote: RemoteIndex) -> None:
    pid = remote.pid
    remote.close()
    assert remote.pid is None
    assert wait_gone(pid)


def child_environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def test_the_child_runs_with_two_malloc_arenas_unless_the_user_chose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # glibc's default (8 arenas per core) left a fresh child holding ~50 MB more after its first
    # dozen writes; a user's own MALLOC_ARENA_MAX is theirs to keep
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    for name, chosen, expected in (("a", None, "2"), ("b", "4", "4")):
        if chosen:
            monkeypatch.setenv("MALLOC_ARENA_MAX", chosen)
        index = RemoteIndex.open(tmp_path / name, HASH)
        try:
            index.upsert(FACTS)
            assert child_environ(index.pid)["MALLOC_ARENA_MAX"] == expected
        finally:
            index.close()


def test_the_session_never_loads_lancedb_the_embedder_or_numpy(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        from mnemara.index.atoms import Atom
        from mnemara.index.remote import RemoteIndex
        index = RemoteIndex.open(Path({str(tmp_path / "index")!r}), {HASH!r})
        index.upsert([Atom(id="note:a", kind="note", text="the staging host is stg-7",
                           created_at="2026-03-01T10:00:00Z")])
        index.warm()
        hits = index.search("staging host").hits
        index.close()
        print(json.dumps({{"hit": hits[0].atom.id,
                          "loaded": sorted(m for m in ("lancedb", "pyarrow", "onnxruntime", "lance", "numpy")
                                           if m in sys.modules)}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)
    assert json.loads(out.stdout) == {"hit": "note:a", "loaded": []}


@pytest.mark.parametrize("setting, front_end, embedder, expected", [
    ("auto", "chat", "config", "child"),     # the TUI and the REPL
    ("auto", "ask", "config", "inline"),     # a one-shot command: no spawn
    ("child", "ask", "config", "child"),
    ("inline", "chat", "config", "inline"),
    ("auto", "chat", None, "inline"),        # an embedder object from code stays in process
])
def test_which_process_runs_the_index(setting: str, front_end: str, embedder: object,
                                      expected: str) -> None:
    from mnemara.config import Config
    config = Config.defaults().replace(rag_index_process=setting)
    assert index_process(config, front_end, embedder) == expected
