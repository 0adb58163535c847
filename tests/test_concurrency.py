"""Two processes writing notes and turns to one instance at the same time lose nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
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
