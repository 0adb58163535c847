"""kill -9 at any write of `replay --apply` loses and duplicates nothing, and the next run ends
exactly where an uninterrupted run ends.

A real `mnemara replay --apply` process (tests/replay/drive_replay.py) SIGKILLs itself right
before each durable write of its apply phase in turn (a file renamed or linked into place, a
turn-store commit, an index write), and right after the last one. After each kill: every note is
still there exactly once (in its day file, or in the archive and nowhere else as a live note);
then a plain `replay --apply` runs, and the notes, the archive, the proposals, the digest and the
index's marks are those of a run that was never killed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from mnemara.instance import Instance
from tests.replay.replay_setup import make_replay_instance

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).resolve().with_name("drive_replay.py")


def _drive(home: Path, spec: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MNEMARA_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, str(DRIVER), "work", spec], env=env, text=True,
                          capture_output=True, timeout=120)


def _live_notes(inst: Instance) -> list[str]:
    """Every note a reader sees, by id, as replay loads them (interrupted moves counted once)."""
    from mnemara.replay.load import load
    loaded = load(inst, inst.load_config(), None, 30)
    return sorted([a.id for a in loaded.notes] + [a.id for a in loaded.archived])


def _state(inst: Instance) -> dict[str, Any]:
    from mnemara.index.readonly import read_rows
    from mnemara.memory.archive import archived_ids
    from mnemara.replay.proposals import ProposalStore
    from mnemara.store import TurnStore
    memory = {str(p.relative_to(inst.root)): p.read_bytes()
              for p in sorted(inst.memory_dir.rglob("*")) if p.is_file()}
    archived = archived_ids(inst.memory_dir)
    rows = read_rows(inst.index_dir, sorted(archived), vectors=False).atoms
    with TurnStore(inst.turns_path, readonly=True) as store:
        pending = store.conn.execute("SELECT count(*) FROM index_outbox").fetchone()[0]
    return {"memory": memory,
            "proposals": sorted(p.fingerprint for p in ProposalStore(inst).list()),
            "digest": {p.name: p.read_text() for p in (inst.root / "sleep").glob("*.md")},
            "index": {i: rows[i].source if i in rows else None for i in sorted(archived)},
            "outbox": pending}


def test_kill9_at_every_write_then_rerun_ends_like_an_uninterrupted_run(
        tmp_path: Path, cli: Any, mnemara_home: Path, monkeypatch: Any) -> None:
    template = tmp_path / "template"
    monkeypatch.setenv("MNEMARA_HOME", str(template))
    original = _live_notes(make_replay_instance())

    def fresh(label: str) -> Instance:
        home = tmp_path / label
        shutil.copytree(template, home, symlinks=True)
        monkeypatch.setenv("MNEMARA_HOME", str(home))
        return Instance.named("work")

    reference = fresh("reference")
    counted = _drive(reference.root.parent, "count")
    assert counted.returncode == 0, counted.stderr
    points = int(counted.stdout.strip().splitlines()[-1].split()[1])
    assert points >= 6  # 2 proposals, the archive file, the day file, the index, the digest
    expected = _state(reference)
    assert set(expected["index"].values()) == {f"memory/archive/{p.name}"
                                                for p in (reference.memory_dir / "archive").iterdir()}

    specs = [f"{k}:before" for k in range(1, points + 1)] + [f"{points}:after"]
    for spec in specs:
        inst = fresh(spec.replace(":", "-"))
        killed = _drive(inst.root.parent, spec)
        assert killed.returncode == -9, (spec, killed.returncode, killed.stderr[-2000:])
        assert _live_notes(inst) == original, spec  # nothing lost, nothing there twice
        again = cli("replay", "-i", "work", "--apply", "--json")
        assert again.exit_code == 0, (spec, again.stderr)
        state = _state(inst)
        assert state == expected, spec
        assert json.loads(cli("replay", "-i", "work", "--apply", "--json").stdout)["written"] == {
            "proposals": [], "archived": [], "facts": [], "index_requeued": [], "digest": None}, spec
