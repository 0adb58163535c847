"""`mnemara redact`: secrets already stored in notes and wiki pages are rewritten to markers.

Every other byte stays, no note id moves, the index follows, a dry run writes nothing, the
instance lock is respected, and a `mnemara note` running at the same time loses nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from mnemara.lock import InstanceLock
from mnemara.memory.notes import parse_notes, write_note_block
from mnemara.redact import find_secrets

REPO_ROOT = Path(__file__).resolve().parents[2]

API_KEY = "sk-" + "Zq8Lm2Np4Rs6Tv8Xw0Yb1Cd3Ef5Gh7"
GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
PEM_BODY = ["MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
            "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK",
            "LxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo"]
PEM = ("-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(PEM_BODY)
       + "\n-----END RSA PRIVATE KEY-----")
SECRETS = [API_KEY, GITHUB, *PEM_BODY]

OLD_NOTES = (
    "## [2025-03-01T09:00:00+00:00] note\n"
    "Deploys go through staging first.\n"
    "\n"
    "## [2025-03-01T09:05:00+00:00] credentials\n"
    f"the billing key is {API_KEY} (do not share)\n"
    "\n"
    "## [2025-03-01T09:10:00+00:00] note\n"
    "The zebra migration runs on Fridays.\n"
    "\n"
    "## [2025-03-01T09:15:00+00:00] ci\n"
    f"CI pushes with {GITHUB}\n"
    "\n"
    "## [2025-03-01T09:20:00+00:00] ssh\n"
    "the deploy key for the zebra hosts:\n"
    f"{PEM}\n"
    "keep it in the vault\n"
    "\n"
    "## [2025-03-01T09:25:00+00:00] note\n"
    "Last note, after the key: the zebra dashboard lives on port 8443.\n"
    "\n"
)


@pytest.fixture
def inst(make_instance: Any) -> Instance:
    """An instance whose notes were written before redaction existed (redact off, as then), with
    its memory index built from them."""
    inst = make_instance("work", rag_embedder="hash", redact=False)
    inst.memory_dir.mkdir(mode=0o700, exist_ok=True)
    path = inst.memory_dir / "2025-03-01.md"
    path.write_text(OLD_NOTES)
    os.chmod(path, 0o600)
    from click.testing import CliRunner

    from mnemara.cli import main
    built = CliRunner().invoke(main, ["reindex", "-i", "work"])  # the index as it was built then
    assert built.exit_code == 0, built.output
    return inst


def notes_by_id(path: Path) -> dict[str, str]:
    return {f"note:{n.path.name}:{n.line}": n.body for n in parse_notes(path)}


def tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
            for p in sorted(root.rglob("*"))}


def test_redact_rewrites_every_secret_keeps_every_note_id_and_the_index_follows(
        inst: Instance, cli: Any) -> None:
    path = inst.memory_dir / "2025-03-01.md"
    before = notes_by_id(path)
    recalled = cli("recall", "-i", "work", "zebra key vault billing CI", "-k", "20", "--json")
    assert recalled.exit_code == 0, recalled.output
    assert API_KEY in recalled.stdout  # the index holds the secret too (built with redact off)

    result = cli("redact", "-i", "work")
    assert result.exit_code == 0, result.output
    assert "memory/2025-03-01.md: 3 secret(s) redacted" in result.stdout
    assert "redacted 3 secret(s) in 1 file(s)" in result.stdout
    assert "turn store is not touched" in result.stdout
    assert not any(s in result.output for s in SECRETS)

    text = path.read_text()
    assert not any(s in text for s in SECRETS)
    assert "[redacted:api-key]" in text and "[redacted:github-token]" in text
    assert "[redacted:private-key]" in text
    assert len(text.splitlines()) == len(OLD_NOTES.splitlines())
    after = notes_by_id(path)
    assert list(after) == list(before), "no note id may move"
    for note_id, body in before.items():
        if not any(s in body for s in SECRETS):
            assert after[note_id] == body  # every other note byte-identical
    assert after["note:2025-03-01.md:4"] == "the billing key is [redacted:api-key] (do not share)"
    old_lines, new_lines = OLD_NOTES.splitlines(), text.splitlines()
    changed = [i + 1 for i, (a, b) in enumerate(zip(old_lines, new_lines)) if a != b]
    assert changed == [5, 11, 15, 16, 17, 18, 19]  # the secrets' lines, nothing else
    assert os.stat(path).st_mode & 0o777 == 0o600

    for args in (("recall", "-i", "work", "zebra key vault billing CI", "-k", "20", "--json"),
                 ("search", "-i", "work", "billing"), ("search", "-i", "work", "CI pushes")):
        out = cli(*args)
        assert out.exit_code == 0, out.output
        assert not any(s in out.stdout for s in SECRETS), args
    assert "[redacted:api-key]" in cli("search", "-i", "work", "billing").stdout

    env = {"ANTHROPIC_API_KEY": "test-key"}
    doctor = json.loads(cli("doctor", "-i", "work", "--json", env=env).stdout)
    check = next(c for c in doctor["checks"] if c["check"] == "secrets in notes")
    assert check["status"] == "ok", check


def test_doctor_points_to_redact(inst: Instance, cli: Any) -> None:
    doctor = json.loads(cli("doctor", "-i", "work", "--json").stdout)
    check = next(c for c in doctor["checks"] if c["check"] == "secrets in notes")
    assert check["status"] == "problem" and check["fix"].startswith("mnemara redact -i work")


def test_dry_run_lists_places_and_kinds_and_writes_nothing(inst: Instance, cli: Any,
                                                          mnemara_home: Path) -> None:
    before = tree(mnemara_home)
    result = cli("redact", "-i", "work", "--dry-run")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ["memory/2025-03-01.md:5: api-key", "memory/2025-03-01.md:11: github-token",
                         "memory/2025-03-01.md:15: private-key"]
    assert "would redact 3 secret(s) in 1 file(s)" in lines[3] and "nothing written" in lines[3]
    assert not any(s in result.output for s in SECRETS)
    as_json = json.loads(cli("redact", "-i", "work", "--dry-run", "--json").stdout)
    assert as_json["total"] == 3 and as_json["files"][0]["secrets"][0] == {"line": 5, "kind": "api-key"}
    assert not any(s in json.dumps(as_json) for s in SECRETS)
    assert tree(mnemara_home) == before


def test_a_wiki_page_with_a_secret_is_rewritten_and_requeued(make_instance: Any, cli: Any) -> None:
    inst = make_instance("work", rag_embedder="hash", redact=False)
    page = inst.wiki_dir / "ops" / "ci.md"  # written by hand, before redaction existed
    page.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    content = f"# CI\n\nThe runner uses {GITHUB} for pushes.\n\n# Other\n\nNothing secret.\n"
    page.write_text(content)
    assert cli("reindex", "-i", "work").exit_code == 0
    assert GITHUB in cli("recall", "-i", "work", "runner pushes", "--json").stdout

    result = cli("redact", "-i", "work")
    assert result.exit_code == 0, result.output
    assert "wiki/ops/ci.md: 1 secret(s) redacted (github-token)" in result.stdout
    assert page.read_text() == content.replace(GITHUB, "[redacted:github-token]")
    recalled = cli("recall", "-i", "work", "runner pushes", "--json").stdout
    assert GITHUB not in recalled and "[redacted:github-token]" in recalled


def test_nothing_to_do_is_one_line_and_exit_0(make_instance: Any, cli: Any,
                                              mnemara_home: Path) -> None:
    make_instance("work")
    assert cli("note", "-i", "work", "nothing secret here").exit_code == 0
    before = tree(mnemara_home)
    result = cli("redact", "-i", "work")
    assert result.exit_code == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        "no secrets found in 1 note and wiki file(s) of 'work'; nothing to do "
        "(the turn store is not touched: turns keep what was typed)"]
    assert tree(mnemara_home) == before


def test_waits_for_a_running_chat_turn_then_says_busy_and_writes_nothing(
        inst: Instance, cli: Any, mnemara_home: Path, assert_user_error: Any) -> None:
    chat = InstanceLock(inst.root, inst.name, exclusive=False, purpose="chat turn").acquire()
    try:
        before = tree(mnemara_home)
        result = cli("redact", "-i", "work", env={"MNEMARA_LOCK_WAIT": "0.2"})
        line = assert_user_error(result, "instance 'work' is busy", "chat turn")
        assert "waited 0.2 s" in line
        assert tree(mnemara_home) == before
    finally:
        chat.release()
    assert cli("redact", "-i", "work").exit_code == 0  # once the turn is over it runs


def test_a_damaged_store_is_refused_before_any_file_is_written(
        inst: Instance, cli: Any, mnemara_home: Path, assert_user_error: Any) -> None:
    from mnemara.store import TurnStore
    with TurnStore(inst.turns_path) as store:
        for i in range(40):
            store.add_turn("user", [{"type": "text", "text": f"turn {i} " + "words " * 300}])
    inst.turns_path.write_bytes(inst.turns_path.read_bytes()[:100])
    before = tree(mnemara_home)
    assert_user_error(cli("redact", "-i", "work"), str(inst.turns_path))
    assert tree(mnemara_home) == before


def test_a_note_writer_waiting_on_the_replaced_file_appends_to_the_new_one(tmp_path: Path) -> None:
    """The rename race itself: a writer blocked on the day file's flock while a rewrite renames a
    new file over it must append to the new file, not to the unlinked old one."""
    import fcntl
    memory = tmp_path / "memory"
    at = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
    path, _, _ = write_note_block(memory, "first note", at=at)
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what the rewrite holds
    writer = threading.Thread(target=write_note_block, args=(memory, "second note"),
                              kwargs={"at": at})
    writer.start()
    writer.join(0.3)  # it is now waiting on the old file's lock
    tmp = path.with_name(".rewrite.tmp")
    tmp.write_bytes(path.read_bytes().replace(b"first", b"FIRST"))
    os.replace(tmp, path)
    os.close(fd)
    writer.join(10)
    assert not writer.is_alive()
    assert [n.body for n in parse_notes(path)] == ["FIRST note", "second note"]


WRITER = """
import subprocess, sys
for i in range(int(sys.argv[1])):
    subprocess.run([sys.executable, "-m", "mnemara", "note", "-i", "work",
                    f"concurrent note {i} with token ghp_{i:04d}A1b2C3d4E5f6G7h8I9j0K1l2M3n4"],
                   check=True, capture_output=True)
"""


def test_a_concurrent_note_writer_loses_nothing(inst: Instance, cli: Any, mnemara_home: Path) -> None:
    """`mnemara note` (no instance lock) appending to today's file 50 times while `mnemara
    redact` rewrites that same file again and again: every note is there afterwards, in a file
    that parses, and a final run leaves no secret."""
    count = 50
    today = inst.memory_dir / f"{datetime.now(timezone.utc):%Y-%m-%d}.md"
    today.write_text(f"## [2025-03-01T00:00:00+00:00] note\nseed {API_KEY}\n\n")
    os.chmod(today, 0o600)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(count)], env=env)
    rewrites = 0
    try:
        while writer.poll() is None:
            result = cli("redact", "-i", "work")
            assert result.exit_code == 0, result.output
            rewrites += f"memory/{today.name}:" in result.stdout
    finally:
        writer.wait(120)
    assert writer.returncode == 0
    assert rewrites >= 2, "the rewrites must have overlapped the writer"
    assert cli("redact", "-i", "work").exit_code == 0
    bodies = [n.body for n in parse_notes(today)]
    for i in range(count):
        assert sum(f"concurrent note {i} with token" in b for b in bodies) == 1, i
    assert len(bodies) == count + 1
    assert find_secrets(today.read_text()) == []
