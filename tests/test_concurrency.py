"""Two processes writing notes and turns to one instance at the same time lose nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from mnemara.memory.notes import iter_notes
from mnemara.store import TurnStore

REPO_ROOT = Path(__file__).resolve().parents[1]
PER_WORKER = 200

WORKER = textwrap.dedent("""
    import sys, threading
    from pathlib import Path
    from mnemara.instance import Instance
    from mnemara.memory.notes import append_note
    from mnemara.store import Budget, TurnStore

    name, go, who, n = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    inst = Instance.named(name).require()

    def write_notes():
        for i in range(n):
            # bodies up to ~24 KB, so a torn or interleaved write would show
            append_note(inst.memory_dir, f"{who} note {i}\\n" + f"{who}-{i} " * (i * 13 % 3000))

    while not go.exists():  # spin, not sleep: both processes must start within microseconds
        pass
    # Notes on a thread, turns on the main thread: this process writes both at the same time,
    # and its notes race the other process's notes without waiting on SQLite's busy handler.
    notes = threading.Thread(target=write_notes)
    notes.start()
    with TurnStore(inst.turns_path) as store:
        for i in range(n):
            store.add_turn("user" if i % 2 else "assistant",
                           [{"type": "text", "text": f"{who} turn {i}"}])
            if i % 10 == 9:  # evict concurrently too: rows must move, never vanish
                store.apply_budget(Budget(max_turns=50, max_tokens=1_000_000), low_water=0.5)
    notes.join()
    print("done")
""")


def expected_note(who: str, i: int) -> str:
    return (f"{who} note {i}\n" + f"{who}-{i} " * (i * 13 % 3000)).strip()


def test_two_processes_writing_notes_and_turns_lose_nothing(make_instance, tmp_path):
    inst = make_instance("shared")
    go = tmp_path / "go"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    workers = ["alpha", "beta"]
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, "shared", str(go), who, str(PER_WORKER)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for who in workers]
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0 and out.strip() == "done", err

    notes = list(iter_notes(inst.memory_dir))
    assert len(notes) == 2 * PER_WORKER
    bodies = [n.body for n in notes]
    assert sorted(bodies) == sorted(expected_note(w, i) for w in workers for i in range(PER_WORKER))
    for who in workers:  # each writer's notes appear in the order it wrote them
        mine = [int(b.split()[2]) for b in bodies if b.startswith(f"{who} note ")]
        assert mine == list(range(PER_WORKER))

    with TurnStore(inst.turns_path) as store:
        turns = store.window() + list(store.iter_archive())
        assert store.count() <= 50
    texts = [t.text for t in turns]
    assert len(turns) == 2 * PER_WORKER
    assert len({t.id for t in turns}) == len(turns)
    assert sorted(texts) == sorted(f"{w} turn {i}" for w in workers for i in range(PER_WORKER))
    for who in workers:
        ids = [t.id for t in sorted(turns, key=lambda t: t.id) if t.text.startswith(f"{who} ")]
        assert [int(t.text.split()[-1]) for t in sorted(turns, key=lambda t: t.id)
                if t.text.startswith(f"{who} ")] == list(range(PER_WORKER))
        assert ids == sorted(ids)


def test_concurrent_note_commands_all_land(make_instance, tmp_path):
    """The real `mnemara note` from several processes at once."""
    inst = make_instance("shared")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                     os.environ.get("PYTHONPATH")])))
    procs = [subprocess.Popen([sys.executable, "-m", "mnemara", "note", "--instance", "shared",
                               f"cli note {i}"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(12)]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert sorted(n.body for n in iter_notes(inst.memory_dir)) == sorted(f"cli note {i}" for i in range(12))


def test_four_note_writers_and_a_running_session_lose_nothing(home, tmp_path):
    """Four loops of `mnemara note` (25 notes each) while a session runs turns against the fake
    CLI on the same instance, the model writing notes of its own and the session indexing every
    note into the memory index as it recalls: every note and every turn lands, whole, and nobody
    sees "database is locked"."""
    from mnemara.config import Config
    from mnemara.instance import Instance
    from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli

    inst = Instance.named("shared")
    # The hash embedder: recall and the index drain run, without loading a model.
    inst.create(Config.defaults().replace(rag_embedder="hash", max_window_turns=6))
    turns = 24
    script = [[{"tool": "mcp__mnemara__write_memory", "input": {"text": f"model note {i}"}},
               {"text": f"noted {i}"}] if i % 2 else [{"text": f"reply {i}", "chunks": 3}]
              for i in range(turns)]
    fake = fake_cli(tmp_path / "fake", script)
    env = {**os.environ, **fake.env, "MNEMARA_CLI_PATH": FAKE_CLI_PATH,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    go = threading.Event()
    failures: list[str] = []

    def writer(who: int) -> None:
        go.wait()
        for i in range(25):
            proc = subprocess.run([sys.executable, "-m", "mnemara", "note", "-i", "shared",
                                   f"writer {who} note {i}"], env=env, capture_output=True,
                                  text=True, timeout=120)
            if proc.returncode != 0 or proc.stderr:
                failures.append(f"writer {who} note {i}: exit {proc.returncode}: {proc.stderr}")

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    session = subprocess.Popen([sys.executable, str(REPO_ROOT / "tests/faults/drive_turns.py"),
                                "shared", "0", str(turns)], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    go.set()
    out, err = session.communicate(timeout=300)
    for t in threads:
        t.join()
    assert not failures, failures[0]
    assert session.returncode == 0, err
    assert "locked" not in err and "Traceback" not in err, err

    done = [line.split() for line in out.splitlines() if line.startswith("done ")]
    assert [(d[1], d[2]) for d in done] == [(str(n), "complete") for n in range(turns)]
    from tests.fakes.fake_cli import read_log
    with TurnStore(inst.turns_path) as store:
        stored = {t.id: t for t in store.iter_all()}
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert len(stored) == 2 * turns
    for _, n, _, user_id, assistant_id in done:
        assert stored[int(user_id)].text == f"fault message {n}"
        assert stored[int(assistant_id)].role == "assistant" and stored[int(assistant_id)].status == "complete"
    assert not [e for e in read_log(fake.log_path) if "locked" in json.dumps(e)]

    bodies = sorted(n.body for n in iter_notes(inst.memory_dir))
    expected = [f"writer {w} note {i}" for w in range(4) for i in range(25)]
    expected += [f"model note {i}" for i in range(1, turns, 2)]
    assert bodies == sorted(expected)
    log = inst.debug_log_path.read_text() if inst.debug_log_path.exists() else ""
    assert "locked" not in log
