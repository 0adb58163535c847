"""Fewer, larger index writes in a chat session (memory/service.py, WINDOW_BATCH), as a user
meets them: new turns still in the window wait until a batch of them is queued, yet a note is
recalled at the very next turn, a turn that leaves the window is indexed before it can be
recalled, closing the session leaves nothing queued, and `mnemara recall` from another process
sees everything. Real SQLite, real LanceDB (in process, hash embedder), the real SDK transport
with the fake CLI; index writes are counted by wrapping the open index's `upsert`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mnemara.engine.events import Recalled
from mnemara.engine.turn import TurnEngine
from mnemara.index.embedders import HashEmbedder
from mnemara.index.lance import MemoryIndex
from mnemara.instance import Instance
from mnemara.memory.outbox import Outbox
from mnemara.memory.service import WINDOW_BATCH, MemoryService
from mnemara.memory.writes import write_note
from mnemara.store.blocks import text_block
from mnemara.store.turns import TurnStore
from tests.fakes.drive import run_turn
from tests.fakes.fake_cli import fake_cli

REPO = Path(__file__).resolve().parents[2]


def session(tmp_path: Path, name: str, turns: list[list[dict[str, Any]]] | None = None,
            **config: Any) -> TurnEngine:
    """A chat engine (as the TUI and the REPL build it) on a new instance whose first exchange
    is already archived, so recall and the background drain have work from the first turn."""
    inst = Instance.named(name)
    inst.save_config(inst.create().replace(
        rag_embedder="hash", rag_index_process="inline", recall_min_score=0.05, **config))
    fake = fake_cli(tmp_path / f"fake-{name}", turns or [], default=[{"text": "ok, noted."}])
    fake.env.pop("MNEMARA_FAKE_CLI_LOG")
    engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
    engine.store.add_turn("user", [text_block("our staging host is stg-7 in rack 4")],
                          created_at="2026-03-01T10:00:00Z")
    engine.store.add_turn("assistant", [text_block("noted: staging host stg-7, rack 4")],
                          created_at="2026-03-01T10:00:05Z")
    engine.store.evict([1, 2], "test")
    return engine


def count_writes(engine: TurnEngine) -> list[list[str]]:
    """The atom ids of each index write the memory service makes from now on."""
    index = engine.memory.index()
    writes: list[list[str]] = []
    real = index.upsert

    def upsert(atoms: Any) -> None:
        atoms = list(atoms)
        if atoms:
            writes.append([a.id for a in atoms])
        real(atoms)

    index.upsert = upsert  # type: ignore[method-assign]
    return writes


async def chat_turn(engine: TurnEngine, text: str) -> list[Any]:
    """One turn as the REPL and the TUI run it: the turn, then the background index drain."""
    events = await run_turn(engine, text)
    assert events[-1].status == "complete", events[-1]
    engine.drain_in_background()
    assert engine._drainer is not None
    await engine._drainer
    return events


def queued(inst: Instance) -> set[str]:
    """Atom ids waiting in the outbox, read on a connection of its own (what survives a crash)."""
    with TurnStore(inst.turns_path) as store:
        return {r[0] for r in store.conn.execute("SELECT DISTINCT atom_id FROM index_outbox")}


def indexed(inst: Instance, ids: list[str]) -> set[str]:
    index = MemoryIndex.open(inst.index_dir, HashEmbedder())
    return {a.id for a in index.get(ids)}


def window_ids(engine: TurnEngine) -> list[str]:
    return [f"turn:{t.id}" for t in engine.store.window()]


async def test_window_turns_are_written_in_batches_and_wait_in_the_outbox(home: Path, tmp_path: Path) -> None:
    engine = session(tmp_path, "batch")
    inst = engine.instance
    try:
        writes = count_writes(engine)
        for i in range(12):
            await chat_turn(engine, f"message {i}: the deploy pipeline step {i} needs a retry")
        # 24 new atoms (12 messages, 12 replies): a handful of writes, not one or two per turn.
        assert len(writes) <= 2 + 24 // WINDOW_BATCH, [len(w) for w in writes]
        assert max(len(w) for w in writes) >= WINDOW_BATCH
        # What waits is only new window turns, kept in turns.sqlite (a crash loses nothing),
        # fewer than a batch, and not reported as a backlog on the status bar.
        waiting = queued(inst)
        assert waiting and waiting <= set(window_ids(engine)) and len(waiting) < WINDOW_BATCH
        status = engine.memory.status()
        assert status.batched == len(waiting) and status.pending == 0
        assert "to index" not in status.line()
        # A search that does not exclude the window (the model's rag_query, `mnemara search`)
        # writes everything first: the newest reply is found.
        newest = engine.store.window()[-2]
        hits = engine.memory.search("deploy pipeline step 11 retry", k=30).hits
        assert f"turn:{newest.id}" in {h.atom.id for h in hits}
        assert queued(inst) == set()
    finally:
        engine.close()


async def test_a_note_written_mid_session_is_recalled_at_the_next_turn(home: Path, tmp_path: Path) -> None:
    note = "The backup host moved to bk-3 in rack 9."
    turns: list[list[dict[str, Any]]] = [
        [{"text": "ok"}], [{"text": "ok"}], [{"text": "ok"}],
        [{"tool": "mcp__mnemara__write_memory", "input": {"text": note}}, {"text": "Saved."}],
        [{"text": "bk-3, rack 9."}]]
    engine = session(tmp_path, "note", turns)
    try:
        writes = count_writes(engine)
        for i in range(3):
            await chat_turn(engine, f"message {i}: nothing memorable here")
        assert queued(engine.instance)  # window turns waiting for a batch
        await chat_turn(engine, "remember that the backup host moved to bk-3 in rack 9")
        events = await chat_turn(engine, "where did the backup host move?")
        recalled = [e for e in events if isinstance(e, Recalled)]
        assert recalled and "bk-3" in str(recalled[0].items)
        # The note was written at once, and the window turns that waited went with it.
        [with_note] = [w for w in writes if any(i.startswith("note:") for i in w)]
        assert len([i for i in with_note if i.startswith("turn:")]) >= 6
    finally:
        engine.close()


async def test_a_turn_that_leaves_the_window_is_indexed_before_it_can_be_recalled(
        home: Path, tmp_path: Path) -> None:
    engine = session(tmp_path, "evict", max_window_turns=6)
    inst = engine.instance
    try:
        await chat_turn(engine, "the lease server is quokka-17, keep it in mind")
        for i in range(6):
            await chat_turn(engine, f"message {i}: the deploy pipeline needs a retry")
            with engine.memory.locked_store() as store:
                archived = [f"turn:{t.id}" for t in store.iter_archive()]
                newest = max(t.id for t in store.iter_archive())
            # Every archived turn, and the turns its full-text entry includes (the next two),
            # are in the index as soon as the drain after the turn has run.
            must = archived + [f"turn:{newest + d}" for d in (1, 2)]
            assert not set(must) & queued(inst)
            assert indexed(inst, must) >= set(archived)
        assert "turn:3" not in window_ids(engine)  # the lease server left the window ...
        events = await chat_turn(engine, "which host is the lease server?")
        recalled = [e for e in events if isinstance(e, Recalled)]
        assert recalled and "quokka-17" in str(recalled[0].items)  # ... and is recalled
    finally:
        engine.close()


async def test_closing_the_session_leaves_nothing_queued(home: Path, tmp_path: Path) -> None:
    engine = session(tmp_path, "close")
    inst = engine.instance
    try:
        count_writes(engine)
        for i in range(4):
            await chat_turn(engine, f"message {i}: the release train leaves on thursday")
        waiting = queued(inst)
        assert waiting  # held for a batch while the session runs
        window = window_ids(engine)
    finally:
        engine.close()
    assert queued(inst) == set()
    assert indexed(inst, window) == set(window)


async def test_mnemara_recall_from_another_process_sees_the_waiting_turns(home: Path, tmp_path: Path) -> None:
    engine = session(tmp_path, "cli")
    inst = engine.instance
    try:
        count_writes(engine)
        await chat_turn(engine, "message 0: nothing else")
        await chat_turn(engine, "the canary cluster is called zebrafinch")
        await chat_turn(engine, "message 1: nothing else")
        target = [t for t in engine.store.window() if "zebrafinch" in t.text][0]
        assert f"turn:{target.id}" in queued(inst)  # not in the index yet
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run([sys.executable, "-m", "mnemara", "recall", "-i", "cli", "--json",
                               "zebrafinch canary cluster"], env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        found = [json.loads(line) for line in done.stdout.splitlines()]
        assert f"turn:{target.id}" in json.dumps(found)
        assert queued(inst) == set()
    finally:
        engine.close()


def test_a_note_queued_is_a_backlog_until_written(home: Path) -> None:
    inst = Instance.named("status")
    inst.create()
    inst.save_config(inst.load_config().replace(rag_embedder="hash"))
    service = MemoryService(inst, inst.load_config(), embedder=HashEmbedder())
    try:
        with service.locked_store() as store:
            store.add_turn("user", [text_block("first")], created_at="2026-03-01T10:00:00Z")
            store.add_turn("assistant", [text_block("second")], created_at="2026-03-01T10:00:05Z")
        # A fresh window: the two turns may wait (nothing archived that needs them).
        assert service.drain(hold=True).held == 2
        assert service.status().batched == 2 and "to index" not in service.status().line()
        with service.locked_store() as store:
            write_note(inst, store, service.config, "The staging host is stg-7.", "decision")
        assert service.status().pending == 3 and "3 to index" in service.status().line()
        report = service.drain(hold=True)  # a note never waits, and takes the turns along
        assert (report.indexed, report.held) == (3, 0)
        assert service.status().pending == 0
    finally:
        service.close()
