"""`mnemara doctor`: a healthy instance passes (exit 0); each broken thing is a problem with its
fix and exit 1; nothing is ever modified, a damaged store included."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from mnemara.store import TurnStore


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Environment checks that pass offline: a key, and a CLI that answers --version."""
    cli = tmp_path / "claude"
    cli.write_text("#!/bin/sh\necho '2.1.332 (Claude Code)'\n")
    cli.chmod(0o700)
    return {"ANTHROPIC_API_KEY": "test-key", "MNEMARA_CLI_PATH": str(cli)}


@pytest.fixture
def healthy(make_instance: Any, cli: Any, env: dict[str, str], tmp_path: Path) -> Instance:
    """An instance with a role doc, turns, a note, a wiki page and a built index."""
    from mnemara.ops.memory import note, wiki_write
    role = tmp_path / "role.md"
    role.write_text("You are careful.\n")
    inst = make_instance("work", rag_embedder="hash", role_doc_path=str(role))
    with TurnStore(inst.turns_path) as store:
        for i in range(6):
            store.add_turn("user", [{"type": "text", "text": f"turn {i} on the deploy"}])
    note(inst, "Deploys go through staging.")
    wiki_write(inst, "ops", "# Ops\n\nRunbook.\n")
    assert cli("recall", "-i", "work", "deploy", env=env).exit_code == 0  # builds the index
    return inst


def _doctor(cli: Any, env: dict[str, str], *args: str) -> tuple[int, dict[str, Any], str]:
    text = cli("doctor", *args, env=env)
    as_json = cli("doctor", *args, "--json", env=env)
    assert text.exception is None or isinstance(text.exception, SystemExit), text.exception
    assert as_json.exit_code == text.exit_code
    report = json.loads(as_json.stdout)
    return text.exit_code, {c["check"]: c for c in report["checks"]}, text.stdout


def test_a_healthy_instance_passes_and_nothing_is_modified(
        healthy: Instance, cli: Any, env: dict[str, str], snapshot_tree: Any) -> None:
    before = snapshot_tree(healthy.root)
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 0, text
    assert {c["status"] for c in checks.values()} == {"ok"}, text
    assert "8 entries" in checks["memory index"]["detail"]  # 6 turns, the note, the wiki section
    assert "integrity ok; 6 window turn(s)" in checks["turn store"]["detail"]
    assert "2.1.332" in checks["claude cli"]["detail"]
    assert "test-key" not in text  # credentials are never shown
    assert text.rstrip().endswith("no problems")
    assert snapshot_tree(healthy.root) == before


def test_an_index_from_before_time_facts_says_how_many_entries_still_lack_them(
        healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    from mnemara.index.fusion import TIME_FACTS_VERSION
    from mnemara.index.lance import import_lancedb
    from mnemara.index.layout import FACT_COLUMNS, TABLE
    table = import_lancedb().connect(str(healthy.index_dir)).open_table(TABLE)
    table.drop_columns(list(FACT_COLUMNS))  # as an older mnemara wrote it
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 0 and checks["memory index"]["status"] == "ok", text
    assert "8 not yet with their time facts" in checks["memory index"]["detail"]
    assert cli("recall", "-i", "work", "deploy", env=env).exit_code == 0  # opens (and upgrades) it
    table.checkout_latest()
    table.update(values={"time_facts": TIME_FACTS_VERSION}, where="id = 'turn:1'")
    _, checks, _ = _doctor(cli, env, "-i", "work")
    assert "7 not yet with their time facts" in checks["memory index"]["detail"]


def test_damaged_turn_store_is_a_problem_with_its_fix_and_stays_untouched(
        healthy: Instance, cli: Any, env: dict[str, str], snapshot_tree: Any) -> None:
    data = bytearray(healthy.turns_path.read_bytes())
    data[4096:4096 * 3] = b"\xde\xad" * 4096  # overwrite pages in the middle
    healthy.turns_path.write_bytes(bytes(data))
    before = snapshot_tree(healthy.root)
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 1
    store = checks["turn store"]
    assert store["status"] == "problem" and "turns.sqlite" in store["detail"]
    assert "mnemara restore" in store["fix"]
    assert "fix: restore from a backup" in text
    assert snapshot_tree(healthy.root) == before


def test_a_file_that_is_not_a_database(healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    healthy.turns_path.write_bytes(b"this is not sqlite" * 100)
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["turn store"]["status"] == "problem"
    assert "cannot be read" in checks["turn store"]["detail"]


def test_bad_config(healthy: Instance, cli: Any, env: dict[str, str], snapshot_tree: Any) -> None:
    healthy.config_path.write_text('{"max_window_turns": "many"}')
    before = snapshot_tree(healthy.root)
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["config"]["status"] == "problem"
    assert "max_window_turns" in checks["config"]["detail"] and checks["config"]["fix"]
    assert checks["turn store"]["status"] == "ok"  # the rest is still checked
    assert snapshot_tree(healthy.root) == before


@pytest.mark.parametrize("content,fragment", [
    (None, "does not exist"),
    (b"You are\x00 careful.\n", "NUL byte"),
    (b"caf\xe9\n", "not UTF-8"),
])
def test_unusable_role_doc(healthy: Instance, cli: Any, env: dict[str, str], tmp_path: Path,
                           content: bytes | None, fragment: str) -> None:
    role = tmp_path / "role.md"
    if content is None:
        role.unlink()
    else:
        role.write_bytes(content)
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["role doc"]["status"] == "problem"
    assert fragment in checks["role doc"]["detail"] and checks["role doc"]["fix"]


def test_group_or_world_readable_file(healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    note_file = next((healthy.root / "memory").glob("*.md"))
    note_file.chmod(0o644)
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    modes = checks["file modes"]
    assert modes["status"] == "problem"
    assert f"memory/{note_file.name} (644)" in modes["detail"]
    assert modes["fix"] == f"chmod -R go-rwx {healthy.root}"
    assert note_file.stat().st_mode & 0o777 == 0o644  # reported, not changed


def test_secrets_in_older_notes_are_reported_by_place_and_kind_never_shown(
        healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    note_file = next((healthy.root / "memory").glob("*.md"))
    with note_file.open("a") as fh:  # written before redaction existed
        fh.write(f"## [2025-01-01T00:00:00+00:00] note\nmy token is {secret}\n\n")
    line = note_file.read_text().splitlines().index(f"my token is {secret}") + 1
    code, checks, text = _doctor(cli, env, "-i", "work")
    assert code == 1
    found = checks["secrets in notes"]
    assert found["status"] == "problem"
    assert f"memory/{note_file.name}:{line} (github-token)" in found["detail"]
    assert secret not in text and secret not in json.dumps(checks)
    assert found["fix"]


def test_failing_index_work_is_a_problem_with_its_last_error(
        healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    conn = sqlite3.connect(healthy.turns_path)
    conn.execute("INSERT INTO index_outbox (atom_id, op, attempts, last_error)"
                  " VALUES ('turn:99', 'upsert', 3, 'embedder unavailable (connection refused)')")
    conn.commit()
    conn.close()
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    work = checks["pending index work"]
    assert work["status"] == "problem"
    assert "1 failing" in work["detail"] and "connection refused" in work["detail"]
    assert "mnemara reindex -i work" in work["fix"]


def test_unreadable_index_is_a_problem_and_a_missing_embedder_a_warning(
        healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    for manifest in (healthy.index_dir / "atoms.lance" / "_versions").iterdir():
        manifest.write_bytes(b"garbage")
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["memory index"]["status"] == "problem"
    assert "mnemara reindex" in checks["memory index"]["fix"]


def test_embedder_unavailable_is_a_warning_naming_the_fallback(
        make_instance: Any, cli: Any, env: dict[str, str]) -> None:
    make_instance("work", rag_embedder="ollama", rag_embed_url="http://127.0.0.1:9")
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 0  # a warning is not a problem
    assert checks["embedder"]["status"] == "warning"
    assert "recall is full-text only" in checks["embedder"]["detail"]


def test_missing_credentials_and_cli(make_instance: Any, cli: Any, tmp_path: Path) -> None:
    make_instance("work", rag_enabled=False)
    env = {"ANTHROPIC_API_KEY": "", "MNEMARA_CLI_PATH": str(tmp_path / "nowhere")}
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["credentials"]["status"] == "problem" and "ANTHROPIC_API_KEY" in checks["credentials"]["fix"]
    assert checks["claude cli"]["status"] == "problem" and "MNEMARA_CLI_PATH" in checks["claude cli"]["fix"]


def test_logged_in_claude_counts_as_credentials(make_instance: Any, cli: Any, env: dict[str, str],
                                                mnemara_home: Path) -> None:
    make_instance("work", rag_enabled=False)
    creds = Path.home() / ".claude" / ".credentials.json"
    creds.parent.mkdir()
    creds.write_text(json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat-secret"}}))
    code, checks, text = _doctor(cli, {**env, "ANTHROPIC_API_KEY": ""}, "-i", "work")
    assert checks["credentials"]["status"] == "ok" and "logged in" in checks["credentials"]["detail"]
    assert "sk-ant-oat-secret" not in text


def test_instance_without_config_is_checked_not_refused(
        make_instance: Any, cli: Any, env: dict[str, str]) -> None:
    inst = make_instance("work", rag_enabled=False)
    inst.config_path.unlink()
    code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 1
    assert checks["config"]["status"] == "problem" and "missing" in checks["config"]["detail"]


def test_usage_errors_exit_2(cli: Any, env: dict[str, str], assert_user_error: Any) -> None:
    assert_user_error(cli("doctor", "-i", "nope", env=env), "no instance named 'nope'")
    assert_user_error(cli("doctor", "-i", "../x", env=env), "invalid instance name")


def test_without_an_instance_only_the_environment_is_checked(
        cli: Any, env: dict[str, str], mnemara_home: Path) -> None:
    code, checks, text = _doctor(cli, env)
    assert code == 0
    assert set(checks) == {"python", "packages", "claude cli", "credentials"}
    assert "no instance checked" in text
    assert not mnemara_home.exists()


def test_all_checks_every_instance(make_instance: Any, cli: Any, env: dict[str, str]) -> None:
    make_instance("a", rag_enabled=False)
    broken = make_instance("b", rag_enabled=False)
    broken.config_path.write_text("{")
    result = cli("doctor", "--all", "--json", env=env)
    assert result.exit_code == 1
    reports = {r["instance"]: r for r in json.loads(result.stdout)}
    assert reports["a"]["ok"] and not reports["b"]["ok"]


def test_doctor_says_who_holds_the_instance_lock(healthy: Instance, cli: Any, env: dict[str, str]) -> None:
    import os

    from mnemara.lock import instance_lock
    with instance_lock(healthy, exclusive=False, purpose="chat turn"):
        code, checks, _ = _doctor(cli, env, "-i", "work")
    assert code == 0
    assert f"chat turn (pid {os.getpid()}" in checks["in use"]["detail"]
