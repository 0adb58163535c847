"""Benchmark: `mnemara backup` and `mnemara restore` of an instance with 100,000 archived turns.

The instance is built with the real code: a turn store of 100,000 archived turns and a 500-turn
window (`_common.build_store`, the corpus the search benchmark uses), 200 memory notes, 20 wiki
pages, and a memory index of every turn, note and wiki section rebuilt with 384-dimension
vectors (the deterministic hash embedder at the local model's width, so the LanceDB directory
has the size and shape of a real one, IVF_HNSW_SQ index included, without an hour of
embedding). Backup and restore then run through `mnemara.ops.backup` as the commands call it.

Targets: backup < 60 s, restore < 60 s (median).

Run: python benchmarks/bench_backup.py [--archived N] [--runs N] [--no-index]
Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import build_store, median_seconds, report

TARGET_BACKUP_S = 60.0
TARGET_RESTORE_S = 60.0


def build_instance(home: Path, archived: int, with_index: bool) -> "object":
    os.environ["MNEMARA_HOME"] = str(home)
    from mnemara.config import Config
    from mnemara.instance import Instance
    from mnemara.memory.notes import append_note
    from mnemara.memory.wiki import Wiki
    inst = Instance.named("big")
    inst.create(Config.defaults().replace(rag_embedder="hash"))
    build_store(inst.turns_path, archived=archived, window=500)
    os.chmod(inst.turns_path, 0o600)
    for i in range(200):
        append_note(inst.memory_dir, f"note {i}: the staging lease timeout is {i} seconds", "decision")
    wiki = Wiki(inst.wiki_dir)
    for i in range(20):
        wiki.write(f"ops/page{i}", f"# Page {i}\n\n" + "Runbook line.\n" * 200)
    if with_index:
        from mnemara.index.embedders import HashEmbedder
        from mnemara.index.lance import MemoryIndex
        from mnemara.memory.sources import iter_source_atoms
        from mnemara.store import TurnStore
        with TurnStore(inst.turns_path) as store:
            atoms = list(iter_source_atoms(inst, store, inst.load_config()))
        index = MemoryIndex.open(inst.index_dir, HashEmbedder(384))
        index.rebuild(atoms)
    return inst


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archived", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-index", action="store_true", help="Skip building the memory index.")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        t0 = time.perf_counter()
        inst = build_instance(home, args.archived, not args.no_index)
        from mnemara.ops.backup import backup, restore
        print(f"built an instance of {args.archived:,} archived + 500 window turns in "
              f"{time.perf_counter() - t0:.1f} s: turns.sqlite {size_of(inst.turns_path) / 1e6:.0f} MB, "
              f"index/ {size_of(inst.index_dir) / 1e6:.0f} MB, memory/ + wiki/ "
              f"{(size_of(inst.memory_dir) + size_of(inst.wiki_dir)) / 1e6:.1f} MB")
        out = Path(tmp) / "big.tar.gz"

        def run_backup() -> None:
            backup(inst, out, force=True)

        def run_restore() -> None:
            target = home / "restored"
            if target.exists():
                shutil.rmtree(target)
            restore(out, "restored")

        ok = report("backup", median_seconds(run_backup, args.runs, warmup=0), TARGET_BACKUP_S)
        print(f"  archive: {out.stat().st_size / 1e6:.0f} MB")
        ok &= report("restore (check every sha256, extract, rename)",
                     median_seconds(run_restore, args.runs, warmup=0), TARGET_RESTORE_S)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
