"""A damaged turns.sqlite: every command says so in one line and changes nothing.

The store is a real SQLite file with a few hundred turns (some archived), damaged the ways disks
and people damage files: pages overwritten with garbage, cut short, replaced by something else.
Each command that opens the store must exit 2 with one `mnemara:` line naming the file and the
way back (`mnemara doctor`, `mnemara restore`), leave every byte of the instance as it was, and
`mnemara list` must still list every other instance.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from mnemara.errors import StoreDamaged, StoreError
from mnemara.store import TurnStore

PAGE = 4096


def text(s: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": s}]


@pytest.fixture(scope="module")
def good_store(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a healthy store: 300 turns, the first 100 archived, fully checkpointed."""
    path = tmp_path_factory.mktemp("good") / "turns.sqlite"
    with TurnStore(path) as s:
        for i in range(300):
            s.add_turn("user" if i % 2 == 0 else "assistant",
                       text(f"turn {i} about the gamma deployment " + "words " * 40))
        s.evict(list(range(1, 101)), "test")
    assert not path.with_name("turns.sqlite-wal").exists()  # closed: everything is in the file
    return path.read_bytes()


def garbage(n: int) -> bytes:
    return bytes((i * 131 + 7) % 251 for i in range(n))


def damage(good: bytes, kind: str) -> bytes:
    """`good` damaged as `kind` says."""
    data = bytearray(good)
    if kind == "pages 2-3 overwritten":  # where the first tables' root pages live
        data[PAGE:3 * PAGE] = garbage(2 * PAGE)
    elif kind == "first page overwritten":  # the header and the schema
        data[:PAGE] = garbage(PAGE)
    elif kind == "last pages overwritten":  # where inserts go
        data[-3 * PAGE:] = garbage(3 * PAGE)
    elif kind == "truncated to a third":
        del data[len(data) // 3:]
    elif kind == "truncated header":
        del data[60:]
    elif kind == "not sqlite":
        data = bytearray(b"%PDF-1.7 this is somebody's document\n" * 200)
    else:
        raise AssertionError(kind)
    return bytes(data)


DAMAGE = ["pages 2-3 overwritten", "first page overwritten", "last pages overwritten",
          "truncated to a third", "truncated header", "not sqlite"]

# Every command that opens the turn store, with the arguments it needs.
COMMANDS = {
    "show": ["show"], "show --json": ["show", "--json"], "show --prompt": ["show", "--prompt"],
    "search": ["search", "gamma"], "search --json": ["search", "gamma", "--json"],
    "clear": ["clear"], "clear --purge": ["clear", "--purge", "--yes"],
    "note": ["note", "remember this"], "ask": ["ask", "hello"], "run": ["run", "--no-tui"],
    "recall": ["recall", "gamma"], "reindex": ["reindex"], "import": ["import", "-"],
    "export": ["export"], "redact": ["redact"],
}
STDIN = {"import": '{"role": "user", "text": "imported"}\n'}


def snapshot(root: Path) -> dict[str, bytes | str | None]:
    """Every entry below `root`: a link -> its target, a directory -> None, a file -> its bytes."""
    return {str(p.relative_to(root)): (os.readlink(p) if p.is_symlink() else
                                       None if p.is_dir() else p.read_bytes())
            for p in sorted(root.rglob("*"))}


@pytest.fixture
def damaged(make_instance: Any, good_store: bytes, request: pytest.FixtureRequest) -> Any:
    def make(kind: str, name: str = "work") -> Any:
        inst = make_instance(name)
        inst.turns_path.write_bytes(damage(good_store, kind))
        os.chmod(inst.turns_path, 0o600)
        return inst
    return make


def assert_damage_line(result: Any, path: Path) -> str:
    code = getattr(result, "exit_code", None)
    code = result.returncode if code is None else code
    assert code == 2, f"exit {code}: stdout={result.stdout!r} stderr={result.stderr!r}"
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"mnemara: {path} is damaged"), line
    assert "mnemara doctor -i work" in line and "mnemara restore" in line, line
    return line


@pytest.mark.parametrize("kind", DAMAGE)
@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_on_a_damaged_store_is_one_line_and_changes_nothing(
        cli: Any, damaged: Any, mnemara_home: Path, kind: str, command: str) -> None:
    inst = damaged(kind)
    before = snapshot(mnemara_home)
    from tests.fakes.fake_cli import FAKE_CLI_PATH  # never a real CLI, should a command get far
    result = cli(*COMMANDS[command], "--instance", "work", input=STDIN.get(command),
                 env={"MNEMARA_CLI_PATH": FAKE_CLI_PATH})
    assert_damage_line(result, inst.turns_path)
    assert snapshot(mnemara_home) == before, "a command on a damaged store must change nothing"


@pytest.mark.parametrize("kind", DAMAGE)
def test_list_marks_the_damaged_instance_and_lists_the_others(
        cli: Any, damaged: Any, make_instance: Any, mnemara_home: Path, kind: str) -> None:
    make_instance("alpha")
    bad = damaged(kind, "bravo")
    good = make_instance("charlie")
    with TurnStore(good.turns_path) as s:
        s.add_turn("user", text("hello"))
    before = snapshot(mnemara_home)
    result = cli("list")
    assert result.exit_code == 0 and result.exception is None, result.output
    lines = {ln.split()[0]: ln for ln in result.stdout.splitlines()[1:]}
    assert set(lines) == {"alpha", "bravo", "charlie"}
    assert "DAMAGED store" in lines["bravo"] and str(bad.turns_path) in lines["bravo"]
    assert "mnemara doctor -i bravo" in lines["bravo"]
    assert "1/20" in lines["charlie"] and "0/20" in lines["alpha"]
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert rows["bravo"]["damaged"] is True and "is damaged" in rows["bravo"]["error"]
    assert "error" not in rows["alpha"] and rows["charlie"]["window_turns"] == 1
    assert snapshot(mnemara_home) == before


def test_damage_deep_inside_fails_the_query_that_reaches_it(tmp_path: Path, good_store: bytes) -> None:
    """Overwritten pages in the middle of the archive pass the cheap check at open; the query that
    reads them is StoreDamaged too (lazily fetched rows included), and nothing is written."""
    path = tmp_path / "turns.sqlite"
    data = bytearray(good_store)
    middle = len(data) // PAGE // 2
    data[middle * PAGE:(middle + 4) * PAGE] = garbage(4 * PAGE)
    path.write_bytes(bytes(data))
    failures = []
    for readonly in (True, False):
        try:
            with TurnStore(path, readonly=readonly) as s:
                list(s.iter_all())
                s.search("gamma", limit=500)
                s.conn.execute("PRAGMA integrity_check").fetchall()
        except StoreDamaged as exc:
            failures.append(str(exc))
    assert len(failures) == 2 and all("is damaged" in f for f in failures)
    assert path.read_bytes() == bytes(data)


def test_real_process_prints_no_traceback(run_mnemara: Any, damaged: Any, mnemara_home: Path) -> None:
    inst = damaged("pages 2-3 overwritten")
    before = snapshot(mnemara_home)
    for args in (["show"], ["search", "gamma"], ["clear"], ["note", "x"], ["recall", "gamma"]):
        assert_damage_line(run_mnemara(*args, "--instance", "work"), inst.turns_path)
    assert snapshot(mnemara_home) == before


def test_memory_service_connection_reports_damage_at_open(damaged: Any) -> None:
    from mnemara.memory.service import MemoryService
    inst = damaged("pages 2-3 overwritten")
    service = MemoryService(inst, inst.load_config(), embedder=None)
    with pytest.raises(StoreDamaged, match="mnemara doctor"):
        service.store()
    service.close()


def test_busy_and_constraint_errors_keep_their_type(tmp_path: Path) -> None:
    """Only damage is translated: a constraint failure (a bug, or a race handled by the caller)
    is still the sqlite3 error it was."""
    with TurnStore(tmp_path / "turns.sqlite") as s:
        with pytest.raises(sqlite3.IntegrityError):
            s.conn.execute("INSERT INTO turns (role, content, rendered, created_at, est_tokens)"
                           " VALUES ('robot', '[]', '', 'now', 0)")


# --- the 0-byte store: an empty store everywhere ---------------------------------------------------

@pytest.mark.parametrize("command", ["show", "search", "list", "show --prompt"])
def test_a_zero_byte_store_reads_as_empty_without_being_written(cli: Any, make_instance: Any,
                                                               mnemara_home: Path, command: str) -> None:
    inst = make_instance("work")
    inst.turns_path.write_bytes(b"")
    before = snapshot(mnemara_home)
    args = {"show": ["show", "-i", "work"], "search": ["search", "-i", "work", "x"],
            "list": ["list"], "show --prompt": ["show", "--prompt", "-i", "work"]}[command]
    result = cli(*args)
    assert result.exit_code == 0 and result.exception is None, result.output
    if command == "show":
        assert "(the window is empty)" in result.stdout and "0/20 turns" in result.stdout
    if command == "list":
        assert "0/20" in result.stdout and "unreadable" not in result.stdout
    assert snapshot(mnemara_home) == before


def test_a_zero_byte_store_is_initialised_by_a_writer(cli: Any, make_instance: Any) -> None:
    inst = make_instance("work")
    inst.turns_path.write_bytes(b"")
    assert cli("note", "-i", "work", "hello").exit_code == 0
    assert inst.turns_path.stat().st_size > 0
    assert cli("clear", "-i", "work").exit_code == 0


def test_a_zero_byte_file_with_a_live_wal_is_not_taken_for_empty(tmp_path: Path) -> None:
    """While a writer holds the store open, its pages may sit in the -wal file only: a reader
    then sees them, not an empty store."""
    path = tmp_path / "turns.sqlite"
    writer = TurnStore(path)
    try:
        writer.add_turn("user", text("held in the log"))
        if path.stat().st_size == 0:  # the pages are only in the log: the case at hand
            with TurnStore(path, readonly=True) as reader:
                assert reader.count() == 1
        with TurnStore(path, readonly=True) as reader:
            assert reader.count() == 1
    finally:
        writer.close()


# --- file modes ----------------------------------------------------------------------------------

def test_the_store_and_its_log_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = tmp_path / "turns.sqlite"
        with TurnStore(path) as s:
            s.add_turn("user", text("private"))
            for p in (path, path.with_name("turns.sqlite-wal"), path.with_name("turns.sqlite-shm")):
                assert p.exists(), p
                assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    finally:
        os.umask(old)


def test_a_store_left_0644_by_an_older_version_is_tightened_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "turns.sqlite"
    with TurnStore(path) as s:
        s.add_turn("user", text("x"))
    os.chmod(path, 0o644)
    with TurnStore(path, readonly=True):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readers change nothing, modes included
    with TurnStore(path):
        pass
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_directory_in_place_of_the_store_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "turns.sqlite"
    path.mkdir()
    for readonly in (False, True):
        with pytest.raises(StoreError) as info:
            TurnStore(path, readonly=readonly)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.is_dir() and not any(path.iterdir())


def test_a_damaged_store_of_an_older_schema_is_not_migrated(tmp_path: Path) -> None:
    """Opening for writing migrates an older store; on a damaged one it must not even start (a
    migration writes into the file), nor switch the journal mode."""
    from mnemara.store.db import MIGRATIONS, split_statements
    path = tmp_path / "turns.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in split_statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.executemany("INSERT INTO turns (role, content, rendered, created_at, est_tokens)"
                     " VALUES ('user', ?, '', '2026-01-01T00:00:00Z', 1)",
                     [(json.dumps(text(f"old turn {i} " + "x" * 300)),) for i in range(300)])
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    data = bytearray(path.read_bytes())
    data[PAGE:3 * PAGE] = garbage(2 * PAGE)
    path.write_bytes(bytes(data))
    with pytest.raises(StoreDamaged):
        TurnStore(path)
    assert path.read_bytes() == bytes(data) and os.listdir(tmp_path) == ["turns.sqlite"]


def test_list_shows_instances_that_lost_their_config(cli: Any, make_instance: Any,
                                                     mnemara_home: Path) -> None:
    make_instance("alpha")
    lost = make_instance("bravo")
    with TurnStore(lost.turns_path) as s:
        s.add_turn("user", text("still here"))
    lost.config_path.unlink()
    odd = make_instance("charlie")
    odd.config_path.unlink()
    odd.config_path.mkdir()
    (mnemara_home / "delta").symlink_to(mnemara_home.parent / "gone")
    (mnemara_home / "not-an-instance").mkdir()  # empty: nothing to report
    before = snapshot(mnemara_home)
    result = cli("list")
    assert result.exit_code == 0 and result.exception is None, result.output
    lines = {ln.split()[0]: ln for ln in result.stdout.splitlines()[1:]}
    assert set(lines) == {"alpha", "bravo", "charlie", "delta"}
    assert "no config.json" in lines["bravo"] and "is a directory" in lines["charlie"]
    assert "does not exist" in lines["delta"]
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert "error" not in rows["alpha"] and "no config.json" in rows["bravo"]["error"]
    assert snapshot(mnemara_home) == before


def test_readers_upgrade_an_older_healthy_store_instead_of_refusing_it(tmp_path: Path) -> None:
    """After upgrading mnemara, `list` and `show` read an instance written by the older version:
    the store is migrated once (by the first reader) and its turns read as they were."""
    from mnemara.store.db import MIGRATIONS, SCHEMA_VERSION, split_statements
    path = tmp_path / "turns.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in split_statements(MIGRATIONS[0]):
        conn.execute(statement)
    conn.execute("INSERT INTO turns (role, content, rendered, created_at, est_tokens)"
                 " VALUES ('user', ?, '', '2026-01-01T00:00:00Z', 1)",
                 (json.dumps(text("written by the older version")),))
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with TurnStore(path, readonly=True) as store:
        assert [t.text for t in store.window()] == ["written by the older version"]
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()
