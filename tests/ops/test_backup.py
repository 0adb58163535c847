"""`mnemara backup` / `mnemara restore`: a restored instance holds the same turns, notes, wiki
pages and index and passes doctor; a running writer does not matter; a malicious or damaged
archive is refused; kill -9 never leaves a partial archive at the output path."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from mnemara.instance import Instance
from mnemara.store import TurnStore
from tests.conftest import REPO_ROOT


def _env(tmp_path: Path) -> dict[str, str]:
    """Doctor's environment checks pass without the network: a key and a CLI that answers."""
    cli = tmp_path / "claude"
    cli.write_text("#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
    cli.chmod(0o700)
    return {"ANTHROPIC_API_KEY": "test-key", "MNEMARA_CLI_PATH": str(cli)}


def _populate(inst: Instance, turns: int = 30) -> None:
    """Turns (some archived), a note, a wiki page and a drained index, through the real code."""
    from mnemara.ops.memory import note, wiki_write
    with TurnStore(inst.turns_path) as store:
        for i in range(turns):
            store.add_turn("user" if i % 2 == 0 else "assistant",
                           [{"type": "text", "text": f"turn {i} about the staging lease timeout"}])
        store.evict([t.id for t in store.window()[:turns // 2]], "test")
    note(inst, "The staging lease timeout is 45 seconds.", "decision")
    wiki_write(inst, "deploy/staging", "# Staging\n\nDeploy with `make stage` after the lease check.\n")


def _rows(inst: Instance) -> dict[str, list[tuple[Any, ...]]]:
    conn = sqlite3.connect(inst.turns_path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()
                for t in ("turns", "archive", "manual_atoms", "superseded")}
    finally:
        conn.close()


def _files(root: Path, sub: str) -> dict[str, bytes]:
    base = root / sub
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()}


def _recall_ids(cli: Callable[..., Any], name: str, query: str, env: dict[str, str]) -> list[str]:
    result = cli("recall", "-i", name, query, "-k", "5", "--json", env=env)
    assert result.exit_code == 0, result.stderr
    return [h["id"] for h in json.loads(result.stdout)["hits"]]


def test_restore_round_trip_same_turns_notes_wiki_and_index_and_passes_doctor(
        make_instance: Any, cli: Any, tmp_path: Path, mnemara_home: Path) -> None:
    env = _env(tmp_path)
    inst = make_instance("work", rag_embedder="hash")
    _populate(inst)
    before = _recall_ids(cli, "work", "staging lease timeout", env)  # also drains into the index
    assert before
    out = tmp_path / "work.tar.gz"
    result = cli("backup", "-i", "work", "-o", str(out), env=env)
    assert result.exit_code == 0, result.stderr
    assert "backed up 'work'" in result.stdout
    assert out.stat().st_mode & 0o777 == 0o600

    result = cli("restore", str(out), "-i", "copy", env=env)
    assert result.exit_code == 0, result.stderr
    assert "restored instance 'copy'" in result.stdout
    copy = Instance.named("copy")
    assert _rows(copy) == _rows(inst)
    assert _files(copy.root, "memory") == _files(inst.root, "memory")
    assert _files(copy.root, "wiki") == _files(inst.root, "wiki")
    assert _files(copy.root, "index") == _files(inst.root, "index")
    assert _recall_ids(cli, "copy", "staging lease timeout", env) == before
    assert (copy.root.stat().st_mode & 0o777) == 0o700
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in copy.root.rglob("*") if p.is_file())
    doctor = cli("doctor", "-i", "copy", env=env)
    assert doctor.exit_code == 0, doctor.stdout
    assert "no problems" in doctor.stdout
    # nothing is left behind under MNEMARA_HOME but the two instances
    assert sorted(p.name for p in mnemara_home.iterdir()) == ["copy", "work"]


def test_restore_takes_the_name_in_the_backup_and_never_overwrites(
        make_instance: Any, cli: Any, tmp_path: Path, assert_user_error: Any, snapshot_tree: Any) -> None:
    inst = make_instance("work", rag_enabled=False)
    _populate(inst, turns=4)
    out = tmp_path / "b.tar.gz"
    assert cli("backup", "-i", "work", "-o", str(out)).exit_code == 0
    before = snapshot_tree(inst.root)
    assert_user_error(cli("restore", str(out)), "instance 'work' already exists", "-i NEW")
    assert snapshot_tree(inst.root) == before
    Instance.named("work").delete()
    result = cli("restore", str(out))
    assert result.exit_code == 0, result.stderr
    assert "restored instance 'work'" in result.stdout


def test_the_role_doc_travels_with_the_backup(make_instance: Any, cli: Any, tmp_path: Path) -> None:
    role = tmp_path / "roles" / "reviewer.md"
    role.parent.mkdir()
    role.write_text("You review code.\n")
    make_instance("work", role_doc_path=str(role), rag_enabled=False)
    out = tmp_path / "b.tar.gz"
    assert cli("backup", "-i", "work", "-o", str(out)).exit_code == 0
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        assert tar.extractfile("role_doc.md").read() == b"You review code.\n"  # type: ignore[union-attr]
    assert manifest["role_doc"] == {"original_path": str(role), "archived_as": "role_doc.md"}
    assert manifest["instance"] == "work" and manifest["format"] == "mnemara-backup"

    # Same file still there: the restored instance keeps using it.
    assert cli("restore", str(out), "-i", "same").exit_code == 0
    assert Instance.named("same").load_config().role_doc_path == str(role)
    # The original is gone (another machine): the backup's copy is used, and the user is told.
    role.unlink()
    result = cli("restore", str(out), "-i", "moved")
    assert result.exit_code == 0
    moved = Instance.named("moved")
    assert moved.load_config().role_doc_path == str(moved.root / "role_doc.md")
    assert (moved.root / "role_doc.md").read_text() == "You review code.\n"
    assert "now uses the backup's copy" in result.stderr


def test_existing_output_is_kept_without_force(make_instance: Any, cli: Any, tmp_path: Path,
                                               assert_user_error: Any) -> None:
    make_instance("work", rag_enabled=False)
    out = tmp_path / "b.tar.gz"
    out.write_text("precious")
    assert_user_error(cli("backup", "-i", "work", "-o", str(out)), "already exists", "--force")
    assert out.read_text() == "precious"
    assert cli("backup", "-i", "work", "-o", str(out), "--force").exit_code == 0
    assert tarfile.is_tarfile(out) and out.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_backup_while_another_connection_holds_a_write_transaction(
        make_instance: Any, cli: Any, tmp_path: Path) -> None:
    inst = make_instance("work", rag_enabled=False)
    _populate(inst, turns=10)
    writer = sqlite3.connect(inst.turns_path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO turns (role, content, rendered, created_at, est_tokens)"
                   " VALUES ('user', '[]', 'uncommitted', '2026-01-01T00:00:00Z', 1)")
    try:
        out = tmp_path / "b.tar.gz"
        result = cli("backup", "-i", "work", "-o", str(out))
        assert result.exit_code == 0, result.stderr
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert cli("restore", str(out), "-i", "copy").exit_code == 0
    copy = _rows(Instance.named("copy"))
    assert copy == _rows(inst)  # the committed turns, not the uncommitted one
    assert all(r[3] != "uncommitted" for r in copy["turns"])


def test_backup_while_turns_are_written_concurrently(make_instance: Any, cli: Any, tmp_path: Path) -> None:
    inst = make_instance("work", rag_enabled=False)
    _populate(inst, turns=200)
    stop = threading.Event()
    written = [0]

    def write() -> None:
        with TurnStore(inst.turns_path) as store:
            while not stop.is_set():
                store.add_turn("user", [{"type": "text", "text": "x" * 2000}])
                written[0] += 1

    thread = threading.Thread(target=write)
    thread.start()
    try:
        time.sleep(0.05)
        out = tmp_path / "b.tar.gz"
        result = cli("backup", "-i", "work", "-o", str(out))
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.stderr
    assert written[0] > 0
    assert cli("restore", str(out), "-i", "copy").exit_code == 0
    conn = sqlite3.connect(Instance.named("copy").turns_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        total = conn.execute("SELECT count(*) FROM turns").fetchone()[0] + \
            conn.execute("SELECT count(*) FROM archive").fetchone()[0]
    finally:
        conn.close()
    assert 200 <= total <= 200 + written[0]


# --- archives that must be refused -------------------------------------------------------------

def _good_archive(make_instance: Any, cli: Any, tmp_path: Path) -> Path:
    make_instance("src", rag_enabled=False)
    out = tmp_path / "good.tar.gz"
    assert cli("backup", "-i", "src", "-o", str(out)).exit_code == 0
    return out


def _rewrite(src: Path, dest: Path, extra: Callable[[tarfile.TarFile], None] | None = None,
             change: Callable[[tarfile.TarInfo, bytes | None], tuple[tarfile.TarInfo, bytes | None]] | None = None) -> Path:
    """A copy of the archive `src` with entries changed and/or added (before the manifest)."""
    with tarfile.open(src) as old, tarfile.open(dest, "w:gz") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read() if member.isreg() else None  # type: ignore[union-attr]
            if member.name == "manifest.json" and extra:
                extra(new)
            if change:
                member, data = change(member, data)
            new.addfile(member, io.BytesIO(data) if data is not None else None)
    return dest


def _add(tar: tarfile.TarFile, name: str, data: bytes = b"x", kind: bytes = tarfile.REGTYPE,
         link: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, link, len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize("name,kind,link,fragment", [
    ("instance/../../escaped.txt", tarfile.REGTYPE, "", "points outside"),
    ("/tmp/absolute.txt", tarfile.REGTYPE, "", "points outside"),
    ("instance/memory/link.md", tarfile.SYMTYPE, "/etc/passwd", "is a symlink"),
    ("instance/memory/hard.md", tarfile.LNKTYPE, "instance/config.json", "is a hard link"),
    ("instance/dev", tarfile.CHRTYPE, "", "device or special file"),
    ("elsewhere.txt", tarfile.REGTYPE, "", "not part of a mnemara backup"),
])
def test_malicious_entries_are_refused_and_nothing_is_created(
        make_instance: Any, cli: Any, tmp_path: Path, mnemara_home: Path, assert_user_error: Any,
        name: str, kind: bytes, link: str, fragment: str) -> None:
    good = _good_archive(make_instance, cli, tmp_path)
    bad = _rewrite(good, tmp_path / "bad.tar.gz", extra=lambda t: _add(t, name, kind=kind, link=link))
    assert_user_error(cli("restore", str(bad), "-i", "victim"), "refusing to restore", fragment)
    assert sorted(p.name for p in mnemara_home.iterdir()) == ["src"]
    assert not (tmp_path / "escaped.txt").exists() and not Path("/tmp/absolute.txt").exists()


def test_a_file_not_in_the_manifest_or_with_the_wrong_sha256_is_refused(
        make_instance: Any, cli: Any, tmp_path: Path, mnemara_home: Path, assert_user_error: Any) -> None:
    good = _good_archive(make_instance, cli, tmp_path)
    extra = _rewrite(good, tmp_path / "extra.tar.gz", extra=lambda t: _add(t, "instance/memory/planted.md"))
    assert_user_error(cli("restore", str(extra), "-i", "x"), "not listed in the manifest")

    def tamper(m: tarfile.TarInfo, data: bytes | None) -> tuple[tarfile.TarInfo, bytes | None]:
        if m.name == "instance/config.json" and data is not None:
            data = data.replace(b'"stream": true', b'"stream": false')
            m.size = len(data)
        return m, data

    tampered = _rewrite(good, tmp_path / "tampered.tar.gz", change=tamper)
    assert_user_error(cli("restore", str(tampered), "-i", "x"), "does not match its sha256")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    assert_user_error(cli("restore", str(junk), "-i", "x"), "not a readable mnemara backup")
    assert sorted(p.name for p in mnemara_home.iterdir()) == ["src"]


# --- kill -9 -----------------------------------------------------------------------------------

def test_kill_9_during_backup_leaves_no_partial_archive(make_instance: Any, cli: Any, tmp_path: Path) -> None:
    inst = make_instance("work", rag_enabled=False)
    with TurnStore(inst.turns_path) as store:
        with store.transaction():
            for i in range(3000):
                store.add_turn("user", [{"type": "text", "text": os.urandom(600).hex()}])
    for n in range(12):
        out = tmp_path / f"b{n}.tar.gz"
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        proc = subprocess.Popen([sys.executable, "-m", "mnemara", "backup", "-i", "work", "-o", str(out)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.Random(n).uniform(0.1, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if out.exists():  # finished before the kill: it must be whole
            assert cli("restore", str(out), "-i", f"r{n}").exit_code == 0
    outputs = [p.name for p in tmp_path.iterdir() if p.name.startswith("b") and p.name.endswith(".tar.gz")]
    # the instance is untouched, and the lock died with the process: a new backup goes through
    conn = sqlite3.connect(inst.turns_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM turns").fetchone()[0] == 3000
    finally:
        conn.close()
    assert cli("backup", "-i", "work", "-o", str(tmp_path / "final.tar.gz")).exit_code == 0
    assert len(outputs) < 12, "no kill landed mid-backup; make the instance larger"


def test_backup_settles_an_interrupted_import_first(make_instance: Any, cli: Any, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An import killed after its commit leaves its notes in a staging directory: the backup
    moves them into place before copying, so the archive restores and holds the whole import."""
    from mnemara.ops import import_export
    from mnemara.ops.importer import import_conversation
    source = make_instance("source", rag_enabled=False)
    _populate(source, turns=6)
    exported = tmp_path / "e.jsonl"
    assert cli("export", "-i", "source", "-o", str(exported)).exit_code == 0
    target = make_instance("copy", rag_enabled=False)

    def die(*args: Any) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(import_export, "_place", die)
        import_conversation(target, target.load_config(), exported)
    assert list(target.root.glob(".import-*"))
    out = tmp_path / "b.tar.gz"
    result = cli("backup", "-i", "copy", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    assert not list(target.root.glob(".import-*"))
    restored = cli("restore", str(out), "-i", "restored")
    assert restored.exit_code == 0, restored.stderr
    for sub in ("memory", "wiki"):
        pages = {k: v for k, v in _files(source.root, sub).items() if not k.startswith(".")}
        assert _files(Instance.named("restored").root, sub) == pages


def test_a_role_doc_kept_inside_the_instance_is_the_restored_instances_own(
        make_instance: Any, cli: Any, tmp_path: Path) -> None:
    """A role doc in the instance directory (`role.md`, as /role_doc and --set-from-url make):
    the restored instance uses its restored copy, not the source instance's file."""
    inst = make_instance("work", rag_enabled=False)
    role = inst.root / "role.md"
    role.write_text("You review code.\n")
    inst.save_config(inst.load_config().replace(role_doc_path=str(role)))
    out = tmp_path / "b.tar.gz"
    assert cli("backup", "-i", "work", "-o", str(out)).exit_code == 0
    assert cli("restore", str(out), "-i", "copy").exit_code == 0
    copy = Instance.named("copy")
    assert copy.load_config().role_doc_path == str(copy.root / "role.md")
    assert (copy.root / "role.md").read_text() == "You review code.\n"
