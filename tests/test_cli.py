"""The shell commands: each happy path, and every failure a user can cause (bad name, missing
instance, corrupt config, broken turn store) is one `mnemara:` line, exit 2, nothing modified."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import stat
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mnemara.cli import main
from mnemara.config import Config
from mnemara.instance import Instance
from mnemara.store import TurnStore

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTE_HEADER = re.compile(r"^## \[(?P<at>[^\]]+)\] (?P<category>\S+)$")


def text(s: str) -> list[dict]:
    return [{"type": "text", "text": s}]


def add_conversation(inst: Instance) -> list[int]:
    """A user question, an assistant answer with a tool call, and a failed turn."""
    with TurnStore(inst.turns_path) as s:
        q = s.add_turn("user", text("please list the project files"), created_at="2026-01-02T10:00:00Z")
        a = s.add_turn("assistant", [
            {"type": "thinking", "thinking": "SECRET-THOUGHTS", "signature": "s"},
            {"type": "text", "text": "Here they are."},
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls -la /srv/project"}},
            {"type": "tool_result", "tool_use_id": "t1", "content": "README.md\nsetup.py\nsrc"}],
            model="claude-test-model", created_at="2026-01-02T10:00:05Z")
        f = s.add_turn("user", text("this one broke"), status="failed", created_at="2026-01-02T10:01:00Z")
    return [q.id, a.id, f.id]


def counts(inst: Instance) -> tuple[int, int]:
    with TurnStore(inst.turns_path) as s:
        return s.count(), s.archived_count()


def notes_file(inst: Instance) -> list[Path]:
    return sorted(inst.memory_dir.glob("*.md")) if inst.memory_dir.exists() else []


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def run_on_tty(args: list[str], expect: str, answer: str, timeout: float = 30) -> tuple[int, str]:
    """Run `python -m mnemara ARGS` on a pseudo-terminal; type `answer` once `expect` appears."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", *args], stdin=slave, stdout=slave,
                            stderr=slave, env=subprocess_env(), close_fds=True)
    os.close(slave)
    out, answered, deadline = b"", False, time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if not answered and expect.encode() in out:
                    os.write(master, answer.encode())
                    answered = True
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise AssertionError(f"timed out; output so far: {out!r}")
        return proc.wait(timeout=10), out.decode("utf-8", "replace")
    finally:
        os.close(master)


# --- help and version --------------------------------------------------------------------------------

def test_version(cli):
    from mnemara import __version__
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"mnemara {__version__}"


def test_every_command_has_help(cli):
    for name, command in main.commands.items():
        result = cli(name, "--help")
        assert result.exit_code == 0, name
        assert "Usage:" in result.stdout and (command.help or "").split("\n")[0][:20] in result.stdout


def test_top_level_help_lists_the_commands(cli):
    result = cli("--help")
    for name in ("init", "list", "show", "clear", "delete", "role", "note", "search"):
        assert re.search(rf"^\s+{name}\b", result.stdout, re.M), name


# --- init --------------------------------------------------------------------------------------------

def test_init_creates_a_private_instance_with_defaults(cli, mnemara_home):
    result = cli("init", "--instance", "work")
    assert result.exit_code == 0, result.output
    assert "created instance 'work'" in result.stdout
    inst = Instance.named("work")
    assert inst.load_config() == Config.defaults()
    assert stat.S_IMODE(inst.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(inst.config_path.stat().st_mode) == 0o600
    assert result.stderr == ""


def test_init_uses_mnemara_instance_then_default(cli, mnemara_home):
    assert cli("init", env={"MNEMARA_INSTANCE": "from-env"}).exit_code == 0
    assert (mnemara_home / "from-env" / "config.json").is_file()
    assert cli("init").exit_code == 0
    assert (mnemara_home / "default" / "config.json").is_file()


def test_init_refuses_an_existing_instance_and_changes_nothing(cli, make_instance, assert_user_error,
                                                                 snapshot_tree, mnemara_home):
    make_instance("work", max_window_turns=9)
    before = snapshot_tree(mnemara_home)
    assert_user_error(cli("init", "--instance", "work", "--role", "x.md"), "already exists")
    assert snapshot_tree(mnemara_home) == before


def test_init_stores_the_role_as_an_absolute_path(cli, tmp_path, monkeypatch):
    (tmp_path / "roles").mkdir()
    (tmp_path / "roles" / "sentinel.md").write_text("# Sentinel\n")
    monkeypatch.chdir(tmp_path)
    result = cli("init", "--instance", "work", "--role", "roles/sentinel.md")
    assert result.exit_code == 0 and result.stderr == ""
    assert Instance.named("work").load_config().role_doc_path == str(tmp_path / "roles" / "sentinel.md")


def test_init_expands_tilde_in_the_role_path(cli):
    assert cli("init", "--instance", "work", "--role", "~/roles/me.md").exit_code == 0
    assert Instance.named("work").load_config().role_doc_path == str(Path(os.environ["HOME"]) / "roles/me.md")


def test_init_warns_but_succeeds_for_a_missing_role_doc(cli, tmp_path):
    missing = tmp_path / "not-written-yet.md"
    result = cli("init", "--instance", "work", "--role", str(missing))
    assert result.exit_code == 0
    assert "warning" in result.stderr and str(missing) in result.stderr
    assert Instance.named("work").load_config().role_doc_path == str(missing)


def test_init_does_not_prompt_without_a_tty(cli):
    result = cli("init", "--instance", "work", input="/should/not/be/read.md\n")
    assert result.exit_code == 0
    assert "Role doc" not in result.output
    assert Instance.named("work").load_config().role_doc_path is None


def test_init_prompts_for_a_role_doc_on_a_tty(mnemara_home, tmp_path):
    code, out = run_on_tty(["init", "--instance", "tty"], "Role doc path", "~/roles/r.md\n")
    assert code == 0, out
    assert "Role doc path" in out
    assert Instance.named("tty").load_config().role_doc_path == str(Path(os.environ["HOME"]) / "roles/r.md")


def test_init_on_a_tty_can_skip_the_role_doc(mnemara_home):
    code, out = run_on_tty(["init", "--instance", "tty"], "Role doc path", "\n")
    assert code == 0, out
    assert Instance.named("tty").load_config().role_doc_path is None


# --- list --------------------------------------------------------------------------------------------

def test_list_with_no_instances(cli, mnemara_home):
    result = cli("list")
    assert result.exit_code == 0 and "no instances yet" in result.stdout
    assert json.loads(cli("list", "--json").stdout) == []
    assert not mnemara_home.exists()


def test_list_shows_model_role_window_and_last_activity(cli, make_instance, mnemara_home, snapshot_tree):
    make_instance("alpha", model="claude-alpha", role_doc_path="/roles/a.md")
    beta = make_instance("beta", max_window_turns=7)
    add_conversation(beta)
    with TurnStore(beta.turns_path) as s:
        s.evict([1], "test")
    before = snapshot_tree(mnemara_home)
    result = cli("list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    alpha_line = next(ln for ln in lines if ln.startswith("alpha"))
    beta_line = next(ln for ln in lines if ln.startswith("beta"))
    assert "claude-alpha" in alpha_line and "0/20" in alpha_line and "/roles/a.md" in alpha_line
    assert "1/7" in beta_line and "2026-01-02T10:01:00Z" in beta_line  # the failed turn not counted
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert rows["alpha"]["model"] == "claude-alpha" and rows["alpha"]["role_doc"] == "/roles/a.md"
    assert rows["alpha"]["window_turns"] == 0 and rows["alpha"]["last_activity"] is None
    assert rows["beta"]["window_turns"] == 1 and rows["beta"]["archived"] == 1
    assert rows["beta"]["failed_turns"] == 1
    assert rows["beta"]["max_window_turns"] == 7
    assert rows["beta"]["last_activity"] == "2026-01-02T10:01:00Z"
    assert snapshot_tree(mnemara_home) == before, "list must not create or change files"


def test_list_shows_a_broken_config_without_crashing(cli, make_instance, mnemara_home, snapshot_tree):
    make_instance("good")
    bad = make_instance("bad")
    bad.config_path.write_text('{"max_window_turns": "lots"}')
    before = snapshot_tree(mnemara_home)
    result = cli("list")
    assert result.exit_code == 0, result.output
    assert "good" in result.stdout
    bad_line = next(ln for ln in result.stdout.splitlines() if ln.startswith("bad"))
    assert "max_window_turns" in bad_line
    rows = {r["name"]: r for r in json.loads(cli("list", "--json").stdout)}
    assert "max_window_turns" in rows["bad"]["error"] and "error" not in rows["good"]
    assert snapshot_tree(mnemara_home) == before


def test_list_shows_a_broken_store_without_crashing(cli, make_instance, mnemara_home, snapshot_tree):
    make_instance("good")
    bad = make_instance("bad")
    bad.turns_path.write_bytes(b"not a database" * 100)
    before = snapshot_tree(mnemara_home)
    result = cli("list", "--json")
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert "turns.sqlite" in rows["bad"]["error"]
    assert cli("list").exit_code == 0
    assert snapshot_tree(mnemara_home) == before


# --- show --------------------------------------------------------------------------------------------

def test_show_empty_instance_creates_no_file(cli, make_instance, mnemara_home, snapshot_tree):
    inst = make_instance("work")
    before = snapshot_tree(mnemara_home)
    result = cli("show", "--instance", "work")
    assert result.exit_code == 0
    assert "(the window is empty)" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == (
        "0/20 turns · ~0/100,000 estimated tokens (0%) · 0 archived")
    assert not inst.turns_path.exists()
    assert snapshot_tree(mnemara_home) == before


def test_show_reads_like_a_conversation(cli, make_instance):
    inst = make_instance("work")
    q, a, f = add_conversation(inst)
    out = cli("show", "--instance", "work").stdout
    assert f"#{q}  you · 2026-01-02 10:00:00Z" in out
    assert f"#{a}  assistant · 2026-01-02 10:00:05Z · claude-test-model" in out
    assert "please list the project files" in out and "Here they are." in out
    assert "Bash: ls -la /srv/project" in out and "3 lines: README.md" in out
    assert "SECRET-THOUGHTS" not in out and "thinking" in out
    assert re.search(rf"#{f} .*\[failed\]", out)
    with TurnStore(inst.turns_path) as s:
        est = s.window_tokens()
    # The failed turn is shown but not counted: it is never sent.
    assert out.strip().splitlines()[-1] == (
        f"2/20 turns (+1 failed, not sent) · ~{est:,}/100,000 estimated tokens (0%) · 0 archived")


def test_show_last_n(cli, make_instance):
    inst = make_instance("work")
    q, a, f = add_conversation(inst)
    out = cli("show", "--instance", "work", "-n", "1").stdout
    assert f"#{f} " in out and f"#{q} " not in out and f"#{a} " not in out
    assert "2/20 turns (+1 failed" in out  # totals still cover the whole window
    assert cli("show", "--instance", "work", "-n", "0").exit_code == 2


def test_show_json(cli, make_instance):
    inst = make_instance("work", max_window_tokens=50_000)
    q, a, f = add_conversation(inst)
    with TurnStore(inst.turns_path) as s:
        s.evict([q], "test")
        est = s.window_tokens()
    data = json.loads(cli("show", "--instance", "work", "--json").stdout)
    assert [t["id"] for t in data["turns"]] == [a, f]
    assert data["turns"][0]["role"] == "assistant" and data["turns"][0]["model"] == "claude-test-model"
    assert data["turns"][0]["content"][1] == {"type": "text", "text": "Here they are."}
    assert data["turns"][1]["status"] == "failed"
    assert data["totals"] == {"turns": 1, "max_turns": 20, "est_tokens": est, "max_tokens": 50_000,
                              "archived": 1, "failed": 1}
    one = json.loads(cli("show", "--instance", "work", "--json", "-n", "1").stdout)
    assert [t["id"] for t in one["turns"]] == [f]


def test_show_with_a_store_leaves_every_file_as_it_was(cli, make_instance, mnemara_home, snapshot_tree):
    inst = make_instance("work")
    add_conversation(inst)
    before = snapshot_tree(mnemara_home)
    for args in ([], ["--json"], ["-n", "1"]):
        assert cli("show", "--instance", "work", *args).exit_code == 0
    assert snapshot_tree(mnemara_home) == before


# --- clear -------------------------------------------------------------------------------------------

def test_clear_moves_the_window_to_the_archive(cli, make_instance):
    inst = make_instance("work")
    add_conversation(inst)
    result = cli("clear", "--instance", "work")
    assert result.exit_code == 0 and "moved 3 turns to the archive" in result.stdout
    assert counts(inst) == (0, 3)
    out = cli("show", "--instance", "work").stdout
    assert "(the window is empty)" in out and "3 archived" in out
    hits = [json.loads(ln) for ln in cli("search", "--instance", "work", "project", "--json").stdout.splitlines()]
    assert {h["source"] for h in hits} == {"archive"}


def test_clear_an_empty_window(cli, make_instance):
    make_instance("work")
    result = cli("clear", "--instance", "work")
    assert result.exit_code == 0 and "moved 0 turns" in result.stdout


def test_purge_needs_yes_off_a_terminal(cli, make_instance, assert_user_error):
    inst = make_instance("work")
    add_conversation(inst)
    cli("clear", "--instance", "work")
    add_conversation(inst)
    assert_user_error(cli("clear", "--instance", "work", "--purge"), "--yes")
    assert counts(inst) == (3, 3)


def test_purge_yes_deletes_window_and_archive(cli, make_instance):
    inst = make_instance("work")
    add_conversation(inst)
    cli("clear", "--instance", "work")
    add_conversation(inst)
    result = cli("clear", "--instance", "work", "--purge", "--yes")
    assert result.exit_code == 0 and "deleted 6 turns" in result.stdout
    assert counts(inst) == (0, 0)
    assert cli("search", "--instance", "work", "project", "--json").stdout == ""


def test_purge_on_a_terminal_asks_and_no_keeps_everything(make_instance):
    inst = make_instance("work")
    add_conversation(inst)
    code, out = run_on_tty(["clear", "--instance", "work", "--purge"], "for good?", "n\n")
    assert code != 0 and "Delete 3 turns" in out
    assert counts(inst) == (3, 0)
    code, out = run_on_tty(["clear", "--instance", "work", "--purge"], "for good?", "y\n")
    assert code == 0 and "deleted 3 turns" in out
    assert counts(inst) == (0, 0)


# --- delete ------------------------------------------------------------------------------------------

def test_delete_needs_force(cli, make_instance, assert_user_error, snapshot_tree, mnemara_home):
    make_instance("work")
    before = snapshot_tree(mnemara_home)
    assert_user_error(cli("delete", "--instance", "work"), "--force")
    assert snapshot_tree(mnemara_home) == before


def test_delete_force_removes_only_that_instance(cli, make_instance):
    gone = make_instance("gone")
    keep = make_instance("keep")
    add_conversation(gone)
    cli("note", "--instance", "gone", "remember")
    result = cli("delete", "--instance", "gone", "--force")
    assert result.exit_code == 0 and "deleted instance 'gone'" in result.stdout
    assert not gone.root.exists() and keep.exists()


def test_delete_force_recovers_a_broken_config(cli, make_instance):
    inst = make_instance("broken")
    inst.config_path.write_text("{oops")
    assert cli("delete", "--instance", "broken", "--force").exit_code == 0
    assert not inst.root.exists()


def test_delete_force_recovers_a_directory_without_config(cli, mnemara_home, assert_user_error):
    """`show` on such a directory tells the user to run `mnemara delete --force`: that must work."""
    root = mnemara_home / "half"
    root.mkdir(parents=True)
    (root / "turns.sqlite").write_bytes(b"")
    line = assert_user_error(cli("show", "--instance", "half"), "no config.json")
    assert "delete --force" in line
    result = cli("delete", "--instance", "half", "--force")
    assert result.exit_code == 0, result.output
    assert not root.exists()


# --- role --------------------------------------------------------------------------------------------

def test_role_without_a_doc(cli, make_instance):
    make_instance("work")
    result = cli("role", "--instance", "work")
    assert result.exit_code == 0 and "no role doc set" in result.stdout


def test_role_set_stores_an_absolute_path_and_show_prints_it(cli, make_instance, tmp_path, monkeypatch):
    inst = make_instance("work", max_window_turns=9)
    (tmp_path / "r.md").write_text("You are careful.\n")
    monkeypatch.chdir(tmp_path)
    result = cli("role", "--instance", "work", "--set", "r.md")
    assert result.exit_code == 0 and result.stderr == ""
    assert str(tmp_path / "r.md") in result.stdout
    cfg = inst.load_config()
    assert cfg.role_doc_path == str(tmp_path / "r.md") and cfg.max_window_turns == 9
    assert stat.S_IMODE(inst.config_path.stat().st_mode) == 0o600
    shown = cli("role", "--instance", "work", "--show")
    assert shown.exit_code == 0
    assert f"role doc: {tmp_path / 'r.md'}" in shown.stdout and "You are careful." in shown.stdout
    plain = cli("role", "--instance", "work")
    assert str(tmp_path / "r.md") in plain.stdout and "You are careful." not in plain.stdout


def test_role_set_to_a_missing_file_warns(cli, make_instance, tmp_path):
    make_instance("work")
    result = cli("role", "--instance", "work", "--set", str(tmp_path / "later.md"))
    assert result.exit_code == 0 and "warning" in result.stderr
    assert Instance.named("work").load_config().role_doc_path == str(tmp_path / "later.md")


def test_role_show_of_a_missing_doc_is_one_line(cli, make_instance, tmp_path, assert_user_error):
    make_instance("work", role_doc_path=str(tmp_path / "gone.md"))
    assert_user_error(cli("role", "--instance", "work", "--show"), "cannot read role doc", "gone.md")


# --- note --------------------------------------------------------------------------------------------

def today_candidates() -> set[str]:
    now = datetime.now(timezone.utc)
    return {(now + timedelta(seconds=d)).strftime("%Y-%m-%d.md") for d in (-5, 0, 5)}


def test_note_appends_a_timestamped_block(cli, make_instance):
    inst = make_instance("work")
    result = cli("note", "--instance", "work", "the", "deploy", "key", "rotates", "monthly")
    assert result.exit_code == 0 and result.stderr == ""
    files = notes_file(inst)
    assert len(files) == 1 and files[0].name in today_candidates()
    assert str(files[0]) in result.stdout
    lines = files[0].read_text().splitlines()
    m = NOTE_HEADER.match(lines[0])
    assert m and m["category"] == "note"
    at = datetime.fromisoformat(m["at"])
    assert at.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - at) < timedelta(minutes=1)
    assert lines[1] == "the deploy key rotates monthly"
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert stat.S_IMODE(inst.memory_dir.stat().st_mode) == 0o700


def test_notes_accumulate_in_order(cli, make_instance):
    inst = make_instance("work")
    cli("note", "--instance", "work", "first")
    cli("note", "--instance", "work", "--category", "insight", "second")
    text_ = notes_file(inst)[0].read_text()
    headers = [ln for ln in text_.splitlines() if ln.startswith("## [")]
    assert len(headers) == 2 and headers[1].endswith("] insight")
    assert text_.index("first") < text_.index("second")


def test_note_dash_reads_stdin(cli, make_instance):
    inst = make_instance("work")
    body = "line one\nline two\n\n  indented line three"
    result = cli("note", "--instance", "work", "-", input=body + "\n")
    assert result.exit_code == 0
    assert notes_file(inst)[0].read_text().split("\n", 1)[1] == body + "\n\n"


def test_note_creates_a_missing_instance_and_says_so(cli, mnemara_home):
    result = cli("note", "--instance", "newbie", "hello")
    assert result.exit_code == 0
    assert "created instance 'newbie'" in result.stderr
    inst = Instance.named("newbie")
    assert inst.load_config() == Config.defaults()
    assert "hello" in notes_file(inst)[0].read_text()
    again = cli("note", "--instance", "newbie", "again")
    assert again.exit_code == 0 and again.stderr == ""


def test_note_without_text_is_refused(cli, make_instance, assert_user_error):
    inst = make_instance("work")
    assert_user_error(cli("note", "--instance", "work", "-", input="   \n"), "needs some text")
    assert notes_file(inst) == []
    assert cli("note", "--instance", "work").exit_code == 2  # TEXT is required


def test_note_with_a_bad_category_is_refused(cli, make_instance, assert_user_error):
    inst = make_instance("work")
    assert_user_error(cli("note", "--instance", "work", "-c", "two words", "x"), "category")
    assert notes_file(inst) == []


# --- search ------------------------------------------------------------------------------------------

@pytest.fixture
def searchable(cli, make_instance):
    """'pelican' appears in an archived turn, a window turn and a note."""
    inst = make_instance("work")
    with TurnStore(inst.turns_path) as s:
        old = s.add_turn("user", text("the pelican migration starts"), created_at="2025-03-01T08:00:00Z")
        new = s.add_turn("assistant", text("pelican numbers are up"), created_at="2025-03-02T08:00:00Z")
        s.add_turn("user", text("unrelated chatter"))
        s.evict([old.id], "budget")
    cli("note", "--instance", "work", "pelican", "season", "is", "spring")
    return inst, old.id, new.id


def test_search_finds_window_archive_and_notes(cli, searchable):
    inst, old, new = searchable
    result = cli("search", "--instance", "work", "pelican")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert any(ln.startswith("window") and f"#{new}" in ln and "2025-03-02T08:00:00Z" in ln for ln in lines)
    assert any(ln.startswith("archive") and f"#{old}" in ln and "2025-03-01T08:00:00Z" in ln for ln in lines)
    note_line = next(ln for ln in lines if ln.startswith("memory"))
    assert re.search(r"\d{4}-\d\d-\d\d\.md:1\s+\d{4}-\d\d-\d\dT", note_line), note_line
    assert "pelican season is spring" in note_line


def test_search_json_lines(cli, searchable):
    inst, old, new = searchable
    result = cli("search", "--instance", "work", "pelican", "--json")
    hits = [json.loads(ln) for ln in result.stdout.splitlines()]
    by_source = {h["source"]: h for h in hits}
    assert set(by_source) == {"window", "archive", "memory"}
    assert by_source["window"]["turn_id"] == new and by_source["window"]["time"] == "2025-03-02T08:00:00Z"
    assert by_source["archive"]["turn_id"] == old and by_source["archive"]["role"] == "user"
    assert Path(by_source["memory"]["file"]).parent == inst.memory_dir
    assert by_source["memory"]["line"] == 1 and by_source["memory"]["time"]
    assert "pelican" in by_source["memory"]["snippet"]


def test_search_limit(cli, searchable):
    assert len(cli("search", "--instance", "work", "pelican", "-n", "1").stdout.splitlines()) == 1
    assert len(cli("search", "--instance", "work", "pelican", "-n", "2", "--json").stdout.splitlines()) == 2
    assert cli("search", "--instance", "work", "pelican", "-n", "0").exit_code == 2


def test_search_without_matches(cli, searchable):
    result = cli("search", "--instance", "work", "albatross")
    assert result.exit_code == 0 and "no matches for 'albatross'" in result.stdout
    assert cli("search", "--instance", "work", "albatross", "--json").stdout == ""


@pytest.mark.parametrize("query", ['"', "it's", '"pelican', "pelican AND", "NEAR(", "(((", "*", "'; --",
                                   "-pelican", "pelican:", "^"])
def test_search_with_punctuation_does_not_fail(cli, searchable, query):
    result = cli("search", "--instance", "work", "--", query)
    assert result.exit_code == 0, result.output
    assert result.exception is None


def test_search_without_turns_finds_notes_and_modifies_nothing(cli, make_instance, mnemara_home,
                                                                snapshot_tree):
    make_instance("work")
    cli("note", "--instance", "work", "only in notes")
    before = snapshot_tree(mnemara_home)
    hits = [json.loads(ln) for ln in cli("search", "--instance", "work", "notes", "--json").stdout.splitlines()]
    assert [h["source"] for h in hits] == ["memory"]
    assert snapshot_tree(mnemara_home) == before


# --- failure paths, for every command that takes --instance ----------------------------------------

BAD_NAMES = ["../x", "", "x" * 65, "a/b"]

# Each command with the arguments it needs to get as far as the instance.
BY_NAME = {
    "init": ["init"], "show": ["show"], "show --json": ["show", "--json"],
    "show --prompt": ["show", "--prompt"], "clear": ["clear"],
    "clear --purge": ["clear", "--purge", "--yes"], "delete": ["delete", "--force"],
    "role": ["role"], "role --set": ["role", "--set", "r.md"], "note": ["note", "hello"],
    "search": ["search", "hello"], "run": ["run", "--no-tui"], "ask": ["ask", "hello"],
    "recall": ["recall", "hello"], "reindex": ["reindex"], "wiki list": ["wiki", "list"],
    "wiki show": ["wiki", "show", "p"], "wiki edit": ["wiki", "edit", "p"],
    "import": ["import", "conv.jsonl"], "export": ["export"],
    "doctor": ["doctor"], "backup": ["backup", "-o", "out.tar.gz"], "restore": ["restore", "b.tar.gz"],
    "redact": ["redact"],
    "slot list": ["slot", "list"], "slot show": ["slot", "show", "x"],
    "slot set": ["slot", "set", "x", "y"], "slot undo": ["slot", "undo", "x"],
    "proposals list": ["proposals", "list"], "proposals reject": ["proposals", "reject", "p1"],
    "graph stats": ["graph", "stats"], "graph show": ["graph", "show", "person:x"],
    "graph export": ["graph", "export"],
    "replay": ["replay"], "replay --apply": ["replay", "--apply"],
}
NEED_EXISTING = ["show", "show --json", "clear", "clear --purge", "delete", "role", "role --set",
                 "search", "recall", "reindex", "wiki list", "wiki show", "wiki edit",
                 "doctor", "backup", "export", "redact", "slot list", "slot show", "slot set",
                 "slot undo", "proposals list", "proposals reject", "graph stats", "graph show",
                 "graph export", "replay", "replay --apply"]
# delete is left out on purpose: `delete --force` is how a user gets rid of a broken instance.
READ_CONFIG = ["show", "show --json", "show --prompt", "clear", "clear --purge", "role",
               "role --set", "note", "search", "run", "ask", "recall", "reindex", "wiki list",
               "wiki show", "wiki edit", "import", "export", "redact", "slot list", "slot show",
               "slot set", "slot undo", "proposals list", "proposals reject", "graph stats",
               "graph show", "graph export", "replay", "replay --apply"]
READ_STORE = ["show", "show --json", "show --prompt", "clear", "clear --purge", "search", "recall",
              "reindex", "backup", "export", "redact", "slot list", "slot show", "slot set",
              "slot undo", "graph stats", "graph show", "graph export", "replay", "replay --apply"]


def test_the_failure_matrix_covers_every_command_with_an_instance_option():
    covered = {args[0] for args in BY_NAME.values()}
    with_instance = {name for name, cmd in main.commands.items()
                     if any(p.name == "instance_name" for p in cmd.params)}
    assert with_instance <= covered, f"add {sorted(with_instance - covered)} to BY_NAME"


@pytest.mark.parametrize("bad", BAD_NAMES, ids=["dotdot", "empty", "65chars", "slash"])
@pytest.mark.parametrize("command", list(BY_NAME))
def test_bad_instance_name(cli, command, bad, assert_user_error, mnemara_home, tmp_path):
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cli(*BY_NAME[command], "--instance", bad)
    assert_user_error(result, "invalid instance name")
    assert not mnemara_home.exists(), "nothing may be created for a bad name"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("command", NEED_EXISTING)
def test_missing_instance(cli, command, assert_user_error, mnemara_home):
    assert_user_error(cli(*BY_NAME[command], "--instance", "ghost"), "no instance named 'ghost'")
    assert not mnemara_home.exists()


CORRUPT_CONFIGS = {
    "not json": ('{"model": "x",', "not valid JSON"),
    "unknown key": ('{"colour": "blue"}', "'colour'"),
    "wrong type": ('{"max_window_turns": "twenty"}', "'max_window_turns'"),
    "out of range": ('{"bash_timeout_seconds": 0}', "'bash_timeout_seconds'"),
}


@pytest.mark.parametrize("corruption", list(CORRUPT_CONFIGS))
@pytest.mark.parametrize("command", READ_CONFIG)
def test_corrupt_config(cli, command, corruption, make_instance, assert_user_error, mnemara_home,
                        snapshot_tree):
    inst = make_instance("work")
    add_conversation(inst)
    content, field = CORRUPT_CONFIGS[corruption]
    inst.config_path.write_text(content)
    before = snapshot_tree(mnemara_home)
    assert_user_error(cli(*BY_NAME[command], "--instance", "work"), str(inst.config_path), field)
    assert snapshot_tree(mnemara_home) == before, "a failed command must modify nothing"


def broken_store(inst: Instance, kind: str) -> bytes:
    if kind == "not sqlite":
        data = b"SQLite format 2\x00 but not really" * 100
    else:
        add_conversation(inst)
        with TurnStore(inst.turns_path) as s:
            for i in range(50):
                s.add_turn("user", text(f"filler {i} " + "words " * 300))
        good = inst.turns_path.read_bytes()
        data = good[:100] if kind == "truncated header" else good[: len(good) // 2]
    inst.turns_path.write_bytes(data)
    return data


@pytest.mark.parametrize("kind", ["not sqlite", "truncated header", "truncated half"])
@pytest.mark.parametrize("command", READ_STORE)
def test_broken_store(cli, command, kind, make_instance, assert_user_error, mnemara_home, snapshot_tree):
    inst = make_instance("work")
    data = broken_store(inst, kind)
    before = snapshot_tree(mnemara_home)
    assert_user_error(cli(*BY_NAME[command], "--instance", "work"), str(inst.turns_path))
    assert inst.turns_path.read_bytes() == data
    assert snapshot_tree(mnemara_home) == before, "no -wal/-shm or other file may be left behind"


# --- the same through the real entry point: nothing but one line reaches stderr -------------------------

def test_real_process_bad_name(run_mnemara, assert_user_error, mnemara_home):
    assert_user_error(run_mnemara("show", "--instance", "../etc"), "invalid instance name")
    assert_user_error(run_mnemara("note", "--instance", "a/b", "hi"), "invalid instance name")
    assert not mnemara_home.exists()


def test_real_process_missing_instance(run_mnemara, assert_user_error):
    assert_user_error(run_mnemara("search", "--instance", "ghost", "x"), "no instance named 'ghost'")


def test_real_process_corrupt_config(run_mnemara, make_instance, assert_user_error):
    inst = make_instance("work")
    inst.config_path.write_text('{"max_window_turns": -3}')
    before = inst.config_path.read_bytes()
    assert_user_error(run_mnemara("show", "--instance", "work"), "'max_window_turns'")
    assert inst.config_path.read_bytes() == before


def test_real_process_broken_store(run_mnemara, make_instance, assert_user_error, mnemara_home,
                                   snapshot_tree):
    inst = make_instance("work")
    data = broken_store(inst, "truncated half")
    before = snapshot_tree(mnemara_home)
    for args in (["show"], ["search", "hello"], ["clear"]):
        assert_user_error(run_mnemara(*args, "--instance", "work"), "turns.sqlite")
    assert inst.turns_path.read_bytes() == data
    assert snapshot_tree(mnemara_home) == before


def test_real_process_happy_path(run_mnemara, mnemara_home):
    assert run_mnemara("init", "--instance", "work").returncode == 0
    proc = run_mnemara("note", "--instance", "work", "-", input="from a pipe\n")
    assert proc.returncode == 0 and proc.stderr == ""
    proc = run_mnemara("search", "--instance", "work", "pipe", "--json")
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["source"] == "memory"
    assert run_mnemara("--version").stdout.startswith("mnemara ")
