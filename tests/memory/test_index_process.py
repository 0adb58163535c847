"""A chat session's memory index in a child process, as a user meets it: recall keeps working
when that process is killed between turns (and the note written meanwhile is found), and the
process never outlives its session, however the session ends (closed, SIGTERM, SIGKILL, even
with the child in the middle of a call)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, Recalled
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.memory.writes import write_note
from mnemara.store.blocks import text_block
from tests.fakes.drive import run_turn
from tests.fakes.fake_cli import fake_cli

REPO = Path(__file__).resolve().parents[2]


def index_children(parent: int) -> list[int]:
    """Live `mnemara.index.remote` processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"mnemara.index.remote" in cmdline:
            found.append(int(entry.name))
    return found


def gone(pid: int, wait: float = 30.0) -> bool:
    """True once `pid` has exited (a zombie waiting for its reaper counts as exited)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def all_processes_named(needle: bytes) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "cmdline").read_bytes():
                    out.add(int(entry.name))
            except OSError:
                pass
    return out


# --- restart after a kill --------------------------------------------------------------------------

async def test_a_killed_index_process_is_replaced_and_the_note_queued_meanwhile_is_recalled(
        home: Path, tmp_path: Path) -> None:
    inst = Instance.named("k")
    inst.save_config(inst.create().replace(rag_embedder="hash", recall_min_score=0.1))
    fake = fake_cli(tmp_path / "fake", [[{"text": "It is in rack 4."}], [{"text": "bk-3, rack 9."}]])
    engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)  # as the TUI and REPL build it
    try:
        store = engine.store
        store.add_turn("user", [text_block("our staging host is stg-7 and it sits in rack 4")],
                       created_at="2026-03-01T10:00:00Z")
        store.add_turn("assistant", [text_block("noted: staging host stg-7, rack 4")],
                       created_at="2026-03-01T10:00:05Z")
        store.evict([1, 2], "test")

        first = await run_turn(engine, "which rack is the staging host in?")
        assert any(isinstance(e, Recalled) and "rack 4" in str(e.items) for e in first)
        [child] = index_children(os.getpid())
        os.kill(child, signal.SIGKILL)
        assert gone(child)

        # Written while no index process runs: it waits in the outbox.
        with engine.memory.locked_store() as s:
            write_note(inst, s, engine.config, "The backup host moved to bk-3 in rack 9.", "decision")
        second = await run_turn(engine, "where did the backup host move?")
        recalled = [e for e in second if isinstance(e, Recalled)]
        assert recalled and "bk-3" in str(recalled[0].items)
        assert not [e for e in second if isinstance(e, Notice) and "recall skipped" in e.text]
        assert second[-1].status == "complete"
        [replacement] = index_children(os.getpid())
        assert replacement != child
    finally:
        engine.close()
    assert gone(replacement)  # closing the session ends its index process


def test_warming_a_chat_session_starts_its_index_process_which_then_serves_it(home: Path) -> None:
    from mnemara.memory.outbox import Outbox
    from mnemara.memory.service import MemoryService
    inst = Instance.named("w")
    inst.save_config(inst.create().replace(rag_embedder="hash"))
    service = MemoryService(inst, inst.load_config(), process="child")
    try:
        with service.locked_store() as store:
            write_note(inst, store, service.config, "The staging host is stg-7.", "decision")
        assert service.status().mode is None  # nothing started yet
        service.warm()
        [child] = index_children(os.getpid())
        assert service.status().mode == "hybrid"
        assert service.drain().indexed == 1
        assert Outbox(service.store().conn).state().pending == 0
        assert service.search("staging host", k=1).hits[0].atom.kind == "note"
    finally:
        service.close()
    assert gone(child)


def test_ask_keeps_the_index_in_process(home: Path) -> None:
    inst = Instance.named("a")
    inst.create()
    engine = TurnEngine(inst, front_end="ask")
    try:
        assert engine.memory.process == "inline"
    finally:
        engine.close()


# --- no orphans ------------------------------------------------------------------------------------

@pytest.fixture
def chat_env(fake_cli_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """A piped `mnemara run` (the REPL) on instance "t" with the hash embedder and one note, so
    the first message's recall starts the index process."""
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", [[{"text": "hello back"}]]).env,
           "PYTHONPATH": str(REPO)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "mnemara", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, check=True, timeout=60)
    run("init", "-i", "t")
    config_path = Path(env["MNEMARA_HOME"]) / "t" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "rag_embedder": "hash"}))
    run("note", "-i", "t", "the staging host is stg-7")
    return env


def read_until(proc: subprocess.Popen[bytes], needle: bytes, wait: float = 60.0) -> bytes:
    seen = b""
    deadline = time.monotonic() + wait
    while needle not in seen:
        assert time.monotonic() < deadline, f"never saw {needle!r}; got {seen[-400:]!r}"
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, f"the session ended before {needle!r}: {seen[-400:]!r}"
            seen += chunk
    return seen


@pytest.mark.parametrize("how", ["end of input", "SIGTERM", "SIGKILL"])
def test_the_index_process_never_outlives_the_chat_session(chat_env: dict[str, str], how: str) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "run", "-i", "t"], env=chat_env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"which host is staging\n")
        proc.stdin.flush()  # stdin stays open: the REPL waits for more
        read_until(proc, b"hello back")
        [child] = index_children(proc.pid)  # recall started it
        if how == "end of input":
            proc.stdin.close()
        else:
            proc.send_signal(getattr(signal, how))
        proc.wait(60)
        assert gone(child), f"the index process outlived a session ended by {how}"
        if how == "SIGTERM":
            assert proc.returncode == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_busy_index_process_exits_when_its_session_is_killed(tmp_path: Path) -> None:
    """The child is in the middle of a call (an embedder that never returns) when the session
    is SIGKILLed: it does not wait for the call to end to notice."""
    marker = tmp_path / "embedding"
    code = textwrap.dedent(f"""
        import os
        from pathlib import Path
        from mnemara.index.atoms import Atom
        from mnemara.index.remote import RemoteIndex
        from tests.index.child_embedders import SleepyEmbedder
        index = RemoteIndex.open(Path({str(tmp_path / "index")!r}),
                                 ("object", SleepyEmbedder({str(marker)!r})))
        print(index.pid, flush=True)
        index.upsert([Atom(id="note:a", kind="note", text="never embedded",
                           created_at="2026-03-01T10:00:00Z")])
    """)
    session = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=str(REPO))
    try:
        child = int(session.stdout.readline())
        deadline = time.monotonic() + 60
        while not marker.exists():  # the child is now inside the write's embed call
            assert time.monotonic() < deadline and session.poll() is None
            time.sleep(0.05)
        session.kill()
        session.wait()
        assert gone(child)
    finally:
        if session.poll() is None:
            session.kill()
            session.wait()
