"""`mnemara export` and importing an export: lossless round trip of turns (every block kind,
usage, pins, status, archive), notes, wiki pages, index entries and corrections; output files
0600, never clobbered without --force; secrets redacted; md inert on a terminal; an export goes
only into an empty instance; kill -9 during an import leaves all of it or none.
Real SQLite, real files, the real CLI (in-process and as a subprocess)."""

from __future__ import annotations

import json
import os
import pty
import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from mnemara.store import TurnStore
from tests.conftest import REPO_ROOT

HASH = {"rag_embedder": "hash"}
TOKEN = "ghp_" + "a1B2c3D4" * 5
BLOCKS: list[list[dict[str, Any]]] = [
    [{"type": "text", "text": "How do I deploy staging?"}],
    [{"type": "thinking", "thinking": "They want the staging steps.", "signature": "c2lnbmF0dXJl"},
     {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "make -n stage"}},
     {"type": "tool_result", "tool_use_id": "toolu_01", "content": "make: *** No rule", "is_error": True},
     {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"file_path": "/w/Makefile"}},
     {"type": "tool_result", "tool_use_id": "toolu_02",
      "content": [{"type": "text", "text": "stage:\n\t./deploy.sh"}], "is_error": False},
     {"type": "text", "text": "Run `./deploy.sh`; there is no make target."}],
    [{"type": "recall", "mode": "hybrid", "items": [
        {"id": "turn:1", "kind": "turn", "time": "2026-03-01T10:00:00Z", "text": "How do I deploy?",
         "score": 0.8, "signals": {"text": 0.8}, "role": "user"}]},
     {"type": "text", "text": "And production? Café ☕ — naïve unicode."}],
    [{"type": "text", "text": "Production needs the release tag."}],
    [{"type": "text", "text": "this one failed"}],
    [{"type": "text", "text": "an interrupted reply, cut her"}],
]


def populate(inst: Instance) -> None:
    """A rich instance through the real code: turns of every block kind and status, pinned and
    archived ones, notes (one corrected), an index entry, wiki pages."""
    from mnemara.memory.writes import add_manual, supersede
    from mnemara.ops.memory import note, wiki_write
    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:
        ids = []
        for round_ in range(3):
            for i, blocks in enumerate(BLOCKS):
                role = "user" if i % 2 == 0 else "assistant"
                status = {4: "failed", 5: "interrupted"}.get(i, "complete")
                turn = store.add_turn(
                    role, blocks, status=status, created_at=f"2026-03-0{round_ + 1}T10:0{i}:00Z",
                    model="claude-test" if role == "assistant" else None,
                    usage={"input_tokens": 120 + i, "output_tokens": 30, "cache_read_input_tokens": 7}
                    if role == "assistant" else None,
                    cost_usd=0.0123 + i / 1000 if role == "assistant" else None)
                ids.append(turn.id)
        store.set_pinned([ids[1]])
        store.evict(ids[2:8], "budget")
        store.evict(ids[8:10], "clear")
        written = note(inst, "The staging lease timeout is 30 seconds.", "decision",
                       {"evidence": "ops log", "confidence": 0.7})
        note(inst, "Second note\n\nwith two paragraphs and a\n## [fake] header-looking line", "insight")
        supersede(inst, store, config, written.id, "The staging lease timeout is 45 seconds.", "measured")
        entry = add_manual(store, "Deploys freeze on Fridays.", category="policy")
        supersede(inst, store, config, entry.id, "Deploys freeze on Fridays after 14:00.")
    wiki_write(inst, "deploy/staging", "---\ntags: [deploy, ops]\n---\n# Staging\n\nRun `./deploy.sh`.\n\n"
                                       "## Rollback\n\nRedeploy the previous tag.\n")
    wiki_write(inst, "glossary", "# Glossary\n\nlease: a lock with a timeout\n")
    # A hand-written memory file with a preamble and uneven spacing: note ids (file:line) hold.
    (inst.memory_dir / "2025-12-31.md").write_text(
        "Old notes, kept by hand.\n\n## [2025-12-31T09:00:00Z] todo\nrenew the cert\n\n\n\n"
        "## [2025-12-31T18:00:00Z] note\nlast one\n", encoding="utf-8")


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def comparable(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records with what may differ between two exports (instance name, time) taken out."""
    head, *rest = recs
    return [{k: v for k, v in head.items() if k not in ("instance", "exported_at")}, *rest]


def rows(inst: Instance, table: str) -> list[tuple]:
    conn = sqlite3.connect(inst.turns_path)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
    finally:
        conn.close()


# -- round trip -------------------------------------------------------------------------------------

def test_export_import_export_is_lossless(cli, make_instance, tmp_path):
    source = make_instance("source", **HASH)
    populate(source)
    first = tmp_path / "first.jsonl"
    result = cli("export", "-i", "source", "-o", str(first))
    assert result.exit_code == 0, result.stderr
    recs = records(first)
    kinds = [r["type"] for r in recs]
    assert kinds[0] == "header" and kinds.count("turn") == 18 and kinds.count("wiki") == 2
    assert kinds.count("note") == 5 and kinds.count("entry") == 2 and kinds.count("superseded") == 2
    turns = [r for r in recs if r["type"] == "turn"]
    assert {r["status"] for r in turns} == {"complete", "failed", "interrupted"}
    assert {r["where"] for r in turns} == {"window", "archive"}
    assert any(r["pinned"] for r in turns) and any(r["archive_reason"] == "clear" for r in turns)
    assert turns[1]["blocks"] == BLOCKS[1] and turns[1]["usage"]["cache_read_input_tokens"] == 7

    make_instance("copy", **HASH)
    result = cli("import", "-i", "copy", str(first))
    assert result.exit_code == 0, result.stderr
    assert "18 turns, 5 notes, 2 wiki pages, 2 index entries" in result.stdout
    second = tmp_path / "second.jsonl"
    assert cli("export", "-i", "copy", "-o", str(second)).exit_code == 0
    again = records(second)
    assert again[0]["instance"] == "copy"
    assert comparable(again) == comparable(recs)

    copy = Instance.named("copy")
    # Same rows as the source, down to the rendering sent to the model and the token estimate.
    for table in ("turns", "archive", "manual_atoms", "superseded"):
        got, want = rows(copy, table), rows(source, table)
        if table == "archive":  # archived_at may not be the same second; the rest is
            got, want = [r[:-2] + r[-1:] for r in got], [r[:-2] + r[-1:] for r in want]
        assert got == want, table
    assert (copy.memory_dir / "2025-12-31.md").read_text().splitlines()[2] == "## [2025-12-31T09:00:00Z] todo"
    # A new turn never reuses an imported id, also after a clear moved every turn out.
    with TurnStore(copy.turns_path) as store:
        store.clear()
        assert store.add_turn("user", [{"type": "text", "text": "next"}]).id == 19


def test_imported_notes_pages_and_turns_are_indexed(cli, make_instance, tmp_path):
    from mnemara.memory.service import MemoryService
    source = make_instance("source", **HASH)
    populate(source)
    path = tmp_path / "e.jsonl"
    cli("export", "-i", "source", "-o", str(path))
    make_instance("copy", **HASH)
    assert cli("import", "-i", "copy", str(path)).exit_code == 0
    copy = Instance.named("copy")
    service = MemoryService(copy, copy.load_config())
    try:
        assert service.status().pending == 0
        ids = {h.atom.id for q in ("staging lease timeout", "Redeploy the previous tag",
                                   "renew the cert", "Fridays after 14:00")
               for h in service.search(q, k=5).hits}
        assert "wiki:deploy/staging#2" in ids and "note:2025-12-31.md:3" in ids
        assert any(i.startswith("manual:") for i in ids) and any(i.startswith("turn:") for i in ids)
        # Corrections survive: the superseded note and entry are never recalled.
        hits = service.search("staging lease timeout 30 seconds", k=10).hits
        assert all("30 seconds" not in h.atom.text for h in hits if h.atom.kind == "note")
    finally:
        service.close()


def test_md_export_reads_as_a_document(cli, make_instance, tmp_path):
    populate(make_instance("source", **HASH))
    out = tmp_path / "e.md"
    assert cli("export", "-i", "source", "--format", "md", "-o", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# mnemara export of instance `source`")
    for fragment in ("## Conversation", "**tool call** `Bash`", "**tool error** (toolu_01)",
                     "**thinking** (not re-sent)", "**recalled** 1 memory", "failed", "interrupted",
                     "pinned", "archived", "(clear)", "121 in / 30 out", "## Memory notes",
                     "memory/2025-12-31.md:3", "### wiki/deploy/staging.md", "Redeploy the previous tag",
                     "## Index entries", "Deploys freeze on Fridays", "## Corrections"):
        assert fragment in text, fragment


# -- output files -----------------------------------------------------------------------------------

def test_output_is_private_and_never_clobbered_without_force(cli, make_instance, tmp_path,
                                                              assert_user_error):
    populate(make_instance("source", **HASH))
    out = tmp_path / "e.jsonl"
    out.write_text("precious\n")
    assert_user_error(cli("export", "-i", "source", "-o", str(out)), "already exists", "--force")
    assert out.read_text() == "precious\n"
    os.chmod(out, 0o644)
    result = cli("export", "-i", "source", "-o", str(out), "--force")
    assert result.exit_code == 0 and records(out)[0]["type"] == "header"
    assert (out.stat().st_mode & 0o777) == 0o600
    fresh = tmp_path / "fresh.md"
    assert cli("export", "-i", "source", "--format", "md", "-o", str(fresh)).exit_code == 0
    assert (fresh.stat().st_mode & 0o777) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp left
    assert_user_error(cli("export", "-i", "source", "-o", str(tmp_path)), "is a directory")
    assert_user_error(cli("export", "-i", "source", "-o", str(tmp_path / "no" / "x")), "does not exist")


def test_stdout_by_default(cli, make_instance):
    populate(make_instance("source", **HASH))
    result = cli("export", "-i", "source")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert json.loads(lines[0])["instance"] == "source" and len(lines) == 1 + 18 + 5 + 2 + 2 + 2


def test_secrets_are_redacted_in_exports_but_kept_in_the_store(cli, make_instance, tmp_path):
    inst = make_instance("source", **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": f"my token is {TOKEN}"}])
        store.add_turn("assistant", [{"type": "tool_use", "id": "toolu_9", "name": "Bash",
                                      "input": {"command": f"curl -H 'Authorization: Bearer {TOKEN}'"}}])
    for fmt in ("jsonl", "md"):
        out = tmp_path / f"e.{fmt}"
        result = cli("export", "-i", "source", "--format", fmt, "-o", str(out))
        text = out.read_text()
        assert TOKEN not in text and "[redacted:github-token]" in text, fmt
        assert "2 secrets redacted" in result.stdout
    assert "toolu_9" in (tmp_path / "e.jsonl").read_text()  # ids are never touched
    with TurnStore(inst.turns_path) as store:
        assert TOKEN in store.window()[0].text  # the turn store keeps what was typed
    inst.save_config(inst.load_config().replace(redact=False))
    out = tmp_path / "raw.jsonl"
    cli("export", "-i", "source", "-o", str(out))
    assert TOKEN in out.read_text() and records(out)[0]["redacted"] is False


def test_md_on_a_terminal_is_inert(make_instance, mnemara_home):
    inst = make_instance("source", **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": "clear \x1b[2J title \x1b]0;pwned\x07 csi \x9b31m"}])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MNEMARA_HOME": str(mnemara_home)}
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "export", "-i", "source", "--format", "md"],
                            stdout=follower, stderr=subprocess.PIPE, env=env)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait(30)
    os.close(leader)
    assert proc.returncode == 0, proc.stderr.read()
    text = out.decode("utf-8")
    assert "\x1b" not in text and "\x07" not in text and "\x9b" not in text
    assert "\\x1b[2J" in text and "\\x9b31m" in text


def test_jsonl_escapes_what_a_terminal_would_obey(cli, make_instance):
    inst = make_instance("source", **HASH)
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": "a\x1b[2J b\x9b c\u202e d\x7f é"}])
    out = cli("export", "-i", "source").stdout
    assert not any(ch in out for ch in "\x1b\x9b\u202e\x7f") and "é" in out
    assert json.loads(out.splitlines()[1])["blocks"][0]["text"] == "a\x1b[2J b\x9b c\u202e d\x7f é"


# -- importing an export ----------------------------------------------------------------------------

def test_an_export_goes_only_into_an_empty_instance(cli, make_instance, tmp_path, assert_user_error,
                                                    snapshot_tree):
    populate(make_instance("source", **HASH))
    path = tmp_path / "e.jsonl"
    cli("export", "-i", "source", "-o", str(path))
    target = make_instance("busy", **HASH)
    from mnemara.ops.memory import note
    note(target, "already something here")
    before = snapshot_tree(target.root)
    line = assert_user_error(cli("import", "-i", "busy", str(path)), "already holds 1 note",
                             "nothing was imported")
    assert "busy-imported" in line
    assert snapshot_tree(target.root) == before
    # A plain conversation can still be appended to it.
    plain = tmp_path / "c.jsonl"
    plain.write_text('{"role": "user", "text": "appended"}\n')
    assert cli("import", "-i", "busy", str(plain)).exit_code == 0


@pytest.mark.parametrize("mutate, fragments", [
    (lambda r: r.update(status="done"), ["status must be one of"]),
    (lambda r: r.update(where="attic"), ['"where"']),
    (lambda r: r.update(blocks="text"), ['"blocks" must be a list']),
    (lambda r: r.update(colour="red"), ["unknown key 'colour'"]),
    (lambda r: r.pop("pinned"), ["missing 'pinned'"]),
    (lambda r: r.update(created_at="yesterday"), ["'created_at'"]),
    (lambda r: r.update(type="turnip"), ["unknown record type 'turnip'"]),
])
def test_a_bad_record_imports_nothing(cli, make_instance, tmp_path, assert_user_error, mutate, fragments):
    populate(make_instance("source", **HASH))
    path = tmp_path / "e.jsonl"
    cli("export", "-i", "source", "-o", str(path))
    lines = path.read_text().splitlines()
    bad = json.loads(lines[9])
    mutate(bad)
    lines[9] = json.dumps(bad)
    path.write_text("\n".join(lines) + "\n")
    line = assert_user_error(cli("import", "-i", "fresh", str(path)), f"{path}:10: ", *fragments)
    assert "nothing was imported" in line
    assert not Instance.named("fresh").root.exists()


def test_duplicate_ids_overlapping_notes_and_newer_versions_are_refused(cli, make_instance, tmp_path,
                                                                         assert_user_error):
    populate(make_instance("source", **HASH))
    path = tmp_path / "e.jsonl"
    cli("export", "-i", "source", "-o", str(path))
    recs = records(path)

    def attempt(recs: list[dict[str, Any]], *fragments: str) -> None:
        bad = tmp_path / "bad.jsonl"
        bad.write_text("".join(json.dumps(r) + "\n" for r in recs))
        assert_user_error(cli("import", "-i", "fresh", str(bad)), *fragments)
        assert not Instance.named("fresh").root.exists()

    turn = next(r for r in recs if r["type"] == "turn")
    attempt([*recs, turn], "turn id 1 appears twice")
    notes = [r for r in recs if r["type"] == "note" and r["file"] == "2025-12-31.md"]
    attempt([*recs, notes[0]], "two notes at 2025-12-31.md:3")
    overlapping = {**notes[1], "line": notes[0]["line"] + 1}
    attempt([r for r in recs if r is not notes[1]] + [overlapping], "overlaps")
    attempt([{**recs[0], "version": 99}, *recs[1:]], "version 99 is newer")


def test_interrupted_import_is_finished_or_rolled_back(make_instance, tmp_path, monkeypatch, cli):
    """Killed between the commit and moving the notes into place: the next export finishes it.
    Killed before the commit: only the staging directory is left, and it is removed."""
    from mnemara.ops import import_export
    populate(make_instance("source", **HASH))
    path = tmp_path / "e.jsonl"
    cli("export", "-i", "source", "-o", str(path))
    target = make_instance("copy", **HASH)

    def die(*args: Any) -> None:
        raise SystemExit("killed")

    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(import_export, "_place", die)
        cli_import(target, path)
    assert not target.memory_dir.exists() and list(target.root.glob(".import-*"))
    second = tmp_path / "second.jsonl"
    assert cli("export", "-i", "copy", "-o", str(second)).exit_code == 0
    assert comparable(records(second)) == comparable(records(path))
    assert not list(target.root.glob(".import-*"))

    # Before the commit: nothing is imported, and the leftover is cleaned by the next import.
    other = make_instance("other", **HASH)
    with monkeypatch.context() as patch, pytest.raises(SystemExit):
        patch.setattr(import_export, "_insert", die)
        cli_import(other, path)
    assert not other.turns_path.exists() or TurnStore(other.turns_path).count() == 0
    (other.root / ".import-deadbeef0000").mkdir()
    (other.root / ".import-deadbeef0000" / "memory").mkdir()
    assert cli("import", "-i", "other", str(path)).exit_code == 0
    assert not list(other.root.glob(".import-*"))
    with TurnStore(other.turns_path) as store:
        assert store.count() + store.archived_count() == 18


def cli_import(inst: Instance, path: Path) -> None:
    from mnemara.ops.importer import import_conversation
    import_conversation(inst, inst.load_config(), path)


def test_import_waits_for_the_instance_lock(cli, make_instance, tmp_path, monkeypatch,
                                            assert_user_error):
    """A chat turn in flight (the shared lock) keeps an import out; it fails after the wait
    with one line, and writes nothing."""
    from mnemara.lock import instance_lock
    inst = make_instance("busy", **HASH)
    plain = tmp_path / "c.jsonl"
    plain.write_text('{"role": "user", "text": "hello"}\n')
    monkeypatch.setenv("MNEMARA_LOCK_WAIT", "0.2")
    with instance_lock(inst, exclusive=False, purpose="chat turn"):
        assert_user_error(cli("import", "-i", "busy", str(plain)), "is busy", "chat turn")
    assert not inst.turns_path.exists() or TurnStore(inst.turns_path).count() == 0
    assert cli("import", "-i", "busy", str(plain)).exit_code == 0


# -- kill -9 ----------------------------------------------------------------------------------------

def big_export(path: Path, turns: int, notes: int, pages: int) -> None:
    """An export file written directly (fast): many turns, notes in a few files, wiki pages."""
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({"type": "header", "format": "mnemara-export", "version": 1,
                             "instance": "big", "exported_at": "2026-03-01T00:00:00Z",
                             "redacted": True}) + "\n")
        for i in range(1, turns + 1):
            fh.write(json.dumps({
                "type": "turn", "id": i, "where": "archive" if i <= turns - 10 else "window",
                "role": "user" if i % 2 else "assistant", "created_at": "2026-03-01T00:00:00Z",
                "status": "complete", "pinned": False, "model": None, "usage": None, "cost_usd": None,
                "blocks": [{"type": "text", "text": f"turn {i} " + "lorem ipsum dolor " * 20}],
                "archived_at": "2026-03-02T00:00:00Z" if i <= turns - 10 else None,
                "archive_reason": "budget" if i <= turns - 10 else None}) + "\n")
        for i in range(notes):
            fh.write(json.dumps({"type": "note", "file": f"2026-03-{i % 5 + 1:02d}.md", "line": 1 + 3 * (i // 5),
                                 "at": "2026-03-01T00:00:00+00:00", "category": "note",
                                 "text": f"note {i}"}) + "\n")
        for i in range(pages):
            fh.write(json.dumps({"type": "wiki", "slug": f"page{i}", "updated_at": "2026-03-01T00:00:00Z",
                                 "text": f"# Page {i}\n\nbody {i}\n"}) + "\n")


def state(inst: Instance) -> tuple[int, int, int]:
    """(turns, notes, wiki pages) present after whatever the next command would settle."""
    from mnemara.memory.notes import iter_notes
    from mnemara.memory.wiki import Wiki
    from mnemara.ops.import_export import finish_interrupted_import
    conn = sqlite3.connect(inst.turns_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    finish_interrupted_import(inst)
    assert not list(inst.root.glob(".import-*"))
    with TurnStore(inst.turns_path) as store:
        turns = store.count() + store.archived_count()
    return turns, sum(1 for _ in iter_notes(inst.memory_dir)), len(Wiki(inst.wiki_dir).list())


def test_kill_9_during_an_import_leaves_all_or_nothing(make_instance, mnemara_home, tmp_path):
    path = tmp_path / "big.jsonl"
    big_export(path, 12_000, 200, 30)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "MNEMARA_HOME": str(mnemara_home)}
    command = [sys.executable, "-m", "mnemara", "import", "-i", "{name}", str(path)]
    # How long a whole import takes here, to kill at random moments inside it.
    make_instance("timing", rag_enabled=False)
    started = time.monotonic()
    subprocess.run([c.format(name="timing") for c in command], env=env, check=True, capture_output=True)
    whole = time.monotonic() - started
    assert state(Instance.named("timing")) == (12_000, 200, 30)
    rng = random.Random(9)
    outcomes = set()
    for attempt in range(6):
        inst = make_instance(f"kill{attempt}", rag_enabled=False)
        proc = subprocess.Popen([c.format(name=inst.name) for c in command], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 1.0) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if not inst.turns_path.exists():
            outcomes.add("none")
            continue
        got = state(inst)
        assert got in ((0, 0, 0), (12_000, 200, 30)), got
        outcomes.add("all" if got[0] else "none")
    assert outcomes <= {"all", "none"}


@pytest.mark.parametrize("record, fragment", [
    ({"type": "note", "file": "../../evil.md", "line": 1, "at": "x", "category": "note", "text": "t"},
     "not a plain name"),
    ({"type": "note", "file": "/etc/evil.md", "line": 1, "at": "x", "category": "note", "text": "t"},
     "not a plain name"),
    ({"type": "note", "file": "a.md", "line": 1, "at": "x] y", "category": "note", "text": "t"},
     "without ']'"),
    ({"type": "wiki", "slug": "../outside", "updated_at": "2026-01-01T00:00:00Z", "text": "t"},
     "not allowed"),
    ({"type": "wiki", "slug": "/etc/passwd", "updated_at": "2026-01-01T00:00:00Z", "text": "t"},
     "absolute path"),
])
def test_path_tricks_in_an_export_are_refused(cli, tmp_path, assert_user_error, mnemara_home,
                                              record, fragment):
    header = {"type": "header", "format": "mnemara-export", "version": 1, "instance": "x",
              "exported_at": "2026-01-01T00:00:00Z", "redacted": True}
    path = tmp_path / "evil.jsonl"
    path.write_text(json.dumps(header) + "\n" + json.dumps(record) + "\n")
    assert_user_error(cli("import", "-i", "fresh", str(path)), f"{path}:2: ", fragment)
    assert not mnemara_home.exists() or not any(mnemara_home.rglob("*evil*"))
    assert not (tmp_path.parent / "evil.md").exists()
