"""PermissionPolicy: allow / ask / deny, grants, saved patterns and the home-only file check."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mnemara import fsutil
from mnemara.config import DEFAULT_POLICIES, ToolPolicy
from mnemara.engine.permissions import (Decision, PermissionPolicy, Verdict, describe_call,
                                        tool_target)

ALLOW, ASK, DENY = Decision.ALLOW, Decision.ASK, Decision.DENY


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home" / "u"
    (h / "proj").mkdir(parents=True)
    (h / "notes.txt").write_text("hi\n")
    return h


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "elsewhere"
    d.mkdir()
    (d / "secret.txt").write_text("s\n")
    return d


def make(home: Path, policies=DEFAULT_POLICIES, *, home_only=True, perms: Path | None = None,
         cwd: Path | None = None) -> PermissionPolicy:
    return PermissionPolicy(policies, home=home, file_tool_home_only=home_only,
                            permissions_path=perms if perms is not None else home / "permissions.json",
                            cwd=cwd if cwd is not None else home / "proj")


def bash(cmd: str) -> dict:
    return {"command": cmd}


# --- modes and policy matching ---------------------------------------------------------------

def test_default_modes(home):
    pp = make(home)
    assert pp.decide("Read", {"file_path": str(home / "notes.txt")}).decision is ALLOW
    v = pp.decide("Bash", bash("ls"))
    assert v == Verdict(ASK, v.reason, "ls", "Bash")
    assert pp.decide("Write", {"file_path": str(home / "x"), "content": ""}).decision is ASK


def test_deny_mode_denies_with_clear_reason(home):
    pp = make(home, [ToolPolicy("Bash", "deny", ("^ls$",))])
    v = pp.decide("Bash", bash("ls"))   # patterns do not override deny
    assert v.decision is DENY
    assert v.reason == "Bash is denied by this instance's policy."
    pp.grant_session("Bash")
    assert pp.decide("Bash", bash("ls")).decision is DENY


def test_unknown_tool_asks(home):
    pp = make(home)
    for name in ("WebFetch", "Agent", "mcp__other__tool"):
        v = pp.decide(name, {"url": "https://example.com"})
        assert v.decision is ASK
        assert "no policy" in v.reason


def test_glob_policy_allows_mnemara_tools(home):
    pp = make(home)
    assert pp.decide("mcp__mnemara__write_memory", {"text": "x"}).decision is ALLOW
    assert pp.decide("mcp__mnemaraX_write", {}).decision is ASK   # prefix includes the "__"


def test_exact_beats_glob_regardless_of_order(home):
    policies = [ToolPolicy("mcp__mnemara__*", "allow"), ToolPolicy("mcp__mnemara__wiki_write", "deny")]
    pp = make(home, policies)
    assert pp.decide("mcp__mnemara__wiki_write", {}).decision is DENY
    assert pp.decide("mcp__mnemara__wiki_read", {}).decision is ALLOW
    assert pp.policy_for("mcp__mnemara__wiki_write").mode == "deny"


def test_first_listed_glob_wins(home):
    pp = make(home, [ToolPolicy("mcp__*", "deny"), ToolPolicy("mcp__mnemara__*", "allow")])
    assert pp.decide("mcp__mnemara__x", {}).decision is DENY


def test_config_patterns_use_search_semantics(home):
    pp = make(home, [ToolPolicy("Bash", "ask", ("^git status$", "^ls( |$)"))])
    assert pp.decide("Bash", bash("git status")).decision is ALLOW
    assert pp.decide("Bash", bash("ls -la")).decision is ALLOW
    assert pp.decide("Bash", bash("ls")).decision is ALLOW
    assert pp.decide("Bash", bash("lsblk")).decision is ASK
    assert pp.decide("Bash", bash("git status; rm -rf /")).decision is ASK
    assert pp.decide("Bash", bash("git status\nrm -rf /")).decision is ASK


def test_patterns_for_targetless_tools_match_compact_json(home):
    pp = make(home, [ToolPolicy("mcp__srv__*", "ask", (r'"q":"safe"',))])
    assert pp.decide("mcp__srv__search", {"q": "safe", "n": 1}).decision is ALLOW
    assert pp.decide("mcp__srv__search", {"q": "other"}).decision is ASK


def test_invalid_pattern_warns_instead_of_crashing(home):
    pp = make(home, [ToolPolicy("Bash", "ask", ("(", "^ls$"))])
    assert pp.decide("Bash", bash("ls")).decision is ALLOW
    assert len(pp.warnings) == 1 and "'('" in pp.warnings[0]


# --- tool_target / describe_call --------------------------------------------------------------

def test_tool_target():
    assert tool_target("Bash", {"command": "ls", "timeout": 5}) == "ls"
    assert tool_target("Read", {"file_path": "/a"}) == "/a"
    assert tool_target("Edit", {"file_path": "/b", "old_string": "x"}) == "/b"
    assert tool_target("NotebookEdit", {"notebook_path": "/n.ipynb"}) == "/n.ipynb"
    assert tool_target("Grep", {"pattern": "x", "path": "/p"}) == "/p"
    assert tool_target("Glob", {"pattern": "*.py"}) is None
    assert tool_target("mcp__srv__tool", {"a": 1}) is None
    assert tool_target("Bash", {"command": ["not", "a", "string"]}) is None


def test_describe_call():
    assert describe_call("Bash", bash("git status")) == "Bash: git status"
    assert describe_call("Read", {"file_path": "/home/u/x.py"}) == "Read: /home/u/x.py"
    assert describe_call("Grep", {"pattern": "TODO", "path": "/p"}) == "Grep: TODO in /p"
    assert describe_call("mcp__srv__tool", {"b": 2, "a": 1}) == 'mcp__srv__tool {"a":1,"b":2}'
    long = describe_call("mcp__srv__tool", {"text": "x" * 1000})
    assert len(long) == 200 and long.endswith("…")
    # Newlines and terminal escapes are shown, not obeyed, so nothing hides from the prompt.
    shown = describe_call("Bash", bash("ls\nrm -rf / \x1b[2K"))
    assert shown == "Bash: ls\\nrm -rf / \\x1b[2K" and "\n" not in shown


# --- saved ("always") grants -----------------------------------------------------------------

def test_always_survives_restart_and_matches_only_that_command(home):
    perms = home / "permissions.json"
    pp = make(home, perms=perms)
    v = pp.answer("Bash", bash("git status"), "a")
    assert v.decision is ALLOW
    assert json.loads(perms.read_text()) == {"Bash": ["^git status$"]}

    fresh = make(home, perms=perms)
    assert fresh.warnings == []
    allowed = fresh.decide("Bash", bash("git status"))
    assert allowed.decision is ALLOW and "saved pattern" in allowed.reason
    assert fresh.decide("Bash", bash("git status; rm -rf /")).decision is ASK
    assert fresh.decide("Bash", bash("git statusx")).decision is ASK
    assert fresh.decide("Bash", bash("sudo git status")).decision is ASK


def test_always_escapes_regex_characters_and_dedupes(home):
    perms = home / "permissions.json"
    pp = make(home, perms=perms)
    pp.grant_always("Bash", "ls *.py")
    pp.grant_always("Bash", "ls *.py")
    pp.grant_always("Bash", "pwd")
    assert json.loads(perms.read_text()) == {"Bash": [r"^ls \*\.py$", "^pwd$"]}
    assert pp.decide("Bash", bash("ls *.py")).decision is ALLOW
    assert pp.decide("Bash", bash("ls aa.py")).decision is ASK


def test_always_without_target_allows_the_whole_tool(home):
    perms = home / "permissions.json"
    pp = make(home, perms=perms)
    pp.answer("mcp__srv__tool", {"a": 1}, "a")
    assert json.loads(perms.read_text()) == {"mcp__srv__tool": [".*"]}
    assert make(home, perms=perms).decide("mcp__srv__tool", {"a": 2}).decision is ALLOW
    assert make(home, perms=perms).decide("mcp__srv__other", {"a": 2}).decision is ASK


def test_always_keeps_grants_written_by_another_process(home):
    perms = home / "permissions.json"
    a, b = make(home, perms=perms), make(home, perms=perms)
    a.grant_always("Bash", "pwd")
    b.grant_always("Bash", "whoami")
    assert json.loads(perms.read_text()) == {"Bash": ["^pwd$", "^whoami$"]}
    assert b.decide("Bash", bash("pwd")).decision is ALLOW


def test_permissions_file_is_private(home):
    perms = home / "permissions.json"
    make(home, perms=perms).grant_always("Bash", "pwd")
    assert stat.S_IMODE(perms.stat().st_mode) == 0o600


def test_failed_write_leaves_old_file_intact_and_grant_holds_in_memory(home, monkeypatch):
    perms = home / "permissions.json"
    pp = make(home, perms=perms)
    pp.grant_always("Bash", "pwd")
    before = perms.read_text()

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(fsutil.os, "replace", boom)
    pp.grant_always("Bash", "whoami")
    assert perms.read_text() == before                       # never half-written
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "permissions.json", "proj"]
    assert pp.decide("Bash", bash("whoami")).decision is ALLOW
    assert len(pp.warnings) == 1 and "disk full" in pp.warnings[0]


@pytest.mark.parametrize("content", ["{not json", '["^ls$"]', '{"Bash": "^ls$"}', '{"Bash": [1]}'])
def test_corrupt_permissions_file_warns_not_crashes(home, content):
    perms = home / "permissions.json"
    perms.write_text(content)
    pp = make(home, perms=perms)
    assert len(pp.warnings) == 1 and str(perms) in pp.warnings[0]
    assert pp.decide("Bash", bash("ls")).decision is ASK
    # The next "always" answer starts a clean file and keeps the bad one for the user.
    pp.grant_always("Bash", "pwd")
    assert json.loads(perms.read_text()) == {"Bash": ["^pwd$"]}
    assert (home / "permissions.json.corrupt").read_text() == content


def test_unreadable_permissions_path_warns(home):
    perms = home / "permissions.json"
    perms.mkdir()
    pp = make(home, perms=perms)
    assert len(pp.warnings) == 1 and "cannot read" in pp.warnings[0]


def test_no_permissions_path_keeps_always_in_memory(home):
    pp = PermissionPolicy(DEFAULT_POLICIES, home=home, file_tool_home_only=True, permissions_path=None)
    pp.grant_always("Bash", "pwd")
    assert pp.decide("Bash", bash("pwd")).decision is ALLOW
    assert not (home / "permissions.json").exists()


# --- session grants and answers ----------------------------------------------------------------

def test_session_grant_is_memory_only(home):
    perms = home / "permissions.json"
    pp = make(home, perms=perms)
    v = pp.answer("Bash", bash("make"), "s")
    assert v.decision is ALLOW
    assert pp.decide("Bash", bash("anything else")).decision is ALLOW
    assert not perms.exists()
    assert make(home, perms=perms).decide("Bash", bash("make")).decision is ASK


def test_answers(home):
    pp = make(home)
    yes = pp.answer("Bash", bash("make"), "y")
    assert yes.decision is ALLOW and yes.target == "make"
    assert pp.decide("Bash", bash("make")).decision is ASK          # once means once
    no = pp.answer("Bash", bash("make"), "n")
    assert no == Verdict(DENY, "The user declined this Bash call.", "make", "Bash")
    with pytest.raises(ValueError):
        pp.answer("Bash", bash("make"), "maybe")


def test_answer_cannot_override_a_refusal(home):
    pp = make(home, [ToolPolicy("Write", "ask")])
    v = pp.answer("Write", {"file_path": "/etc/passwd", "content": ""}, "a")
    assert v.decision is DENY
    assert not (home / "permissions.json").exists()


# --- file_tool_home_only -------------------------------------------------------------------------

def test_path_outside_home_denied_even_when_allowed(home):
    pp = make(home)   # Read is mode allow
    v = pp.decide("Read", {"file_path": "/etc/passwd"})
    assert v.decision is DENY
    assert v.reason == ("Read outside $HOME is refused: /etc/passwd resolves to /etc/passwd "
                        "(file_tool_home_only is on).")


def test_tilde_path_allowed(home):
    assert make(home).decide("Read", {"file_path": "~/notes.txt"}).decision is ALLOW


def test_dotdot_escape_denied(home):
    pp = make(home)
    assert pp.decide("Read", {"file_path": str(home / "proj" / ".." / ".." / "x")}).decision is DENY
    assert pp.decide("Read", {"file_path": "~/../u/notes.txt"}).decision is ALLOW
    assert pp.decide("Read", {"file_path": "~/../u2/notes.txt"}).decision is DENY  # sibling prefix


def test_symlink_inside_home_pointing_outside_denied(home, outside):
    (home / "link").symlink_to(outside)
    (home / "file_link").symlink_to(outside / "secret.txt")
    (home / "dangling").symlink_to(outside / "new.txt")
    pp = make(home, [ToolPolicy("Read", "allow"), ToolPolicy("Write", "allow")])
    assert pp.decide("Read", {"file_path": str(home / "link" / "secret.txt")}).decision is DENY
    assert pp.decide("Read", {"file_path": str(home / "file_link")}).decision is DENY
    # Not-yet-existing paths under a symlinked dir, or through a dangling link, still land outside.
    assert pp.decide("Write", {"file_path": str(home / "link" / "sub" / "new.txt")}).decision is DENY
    assert pp.decide("Write", {"file_path": str(home / "dangling")}).decision is DENY


def test_symlink_loop_denied(home):
    (home / "loop").symlink_to(home / "loop")
    v = make(home).decide("Read", {"file_path": str(home / "loop" / "x")})
    assert v.decision is DENY and "cannot be resolved" in v.reason


def test_new_file_in_home_allowed(home):
    pp = make(home, [ToolPolicy("Write", "allow")])
    assert pp.decide("Write", {"file_path": str(home / "new" / "dir" / "f.txt")}).decision is ALLOW


def test_relative_path_resolved_against_cwd(home, outside):
    pp = make(home, cwd=home / "proj")
    assert pp.decide("Read", {"file_path": "src/main.py"}).decision is ALLOW
    assert pp.decide("Read", {"file_path": "../../../elsewhere/secret.txt"}).decision is DENY
    assert make(home, cwd=outside).decide("Read", {"file_path": "secret.txt"}).decision is DENY


def test_search_tools_checked_including_default_cwd(home, outside):
    pp = make(home, [ToolPolicy("Glob", "allow"), ToolPolicy("Grep", "allow")], cwd=home)
    assert pp.decide("Grep", {"pattern": "x", "path": str(outside)}).decision is DENY
    assert pp.decide("Grep", {"pattern": "x"}).decision is ALLOW
    assert pp.decide("Glob", {"pattern": "**/*.py"}).decision is ALLOW
    assert pp.decide("Glob", {"pattern": "/etc/*"}).decision is DENY
    assert pp.decide("Glob", {"pattern": "../../*", "path": str(home)}).decision is DENY
    in_outside = make(home, [ToolPolicy("Grep", "allow")], cwd=outside)
    assert in_outside.decide("Grep", {"pattern": "x"}).decision is DENY


def test_notebook_and_non_string_paths(home):
    pp = make(home, [ToolPolicy("NotebookEdit", "allow"), ToolPolicy("Read", "allow")])
    assert pp.decide("NotebookEdit", {"notebook_path": "/etc/n.ipynb"}).decision is DENY
    assert pp.decide("Read", {"file_path": ["/etc/passwd"]}).decision is DENY


def test_home_only_applies_to_file_tools_without_policy(home):
    assert make(home, []).decide("Edit", {"file_path": "/etc/hosts"}).decision is DENY


def test_home_only_off_allows_outside(home):
    pp = make(home, home_only=False)
    assert pp.decide("Read", {"file_path": "/etc/passwd"}).decision is ALLOW
    assert pp.decide("Write", {"file_path": "/etc/passwd"}).decision is ASK


# --- Bash timeout --------------------------------------------------------------------------------

def test_clamp_input_bash_timeout():
    clamp = PermissionPolicy.clamp_input
    assert clamp("Bash", {"command": "sleep 1"}, 60) == {"command": "sleep 1", "timeout": 60_000}
    original = {"command": "x", "timeout": 600_000}
    assert clamp("Bash", original, 60) == {"command": "x", "timeout": 60_000}
    assert original["timeout"] == 600_000                               # input not mutated
    assert clamp("Bash", {"command": "x", "timeout": 5_000}, 60) is None
    assert clamp("Bash", {"command": "x", "timeout": 60_000}, 60) is None
    assert clamp("Bash", {"command": "x", "timeout": "lots"}, 60)["timeout"] == 60_000
    assert clamp("Bash", {"command": "x", "timeout": -1}, 60)["timeout"] == 60_000
    assert clamp("Read", {"file_path": "/x", "timeout": 10**9}, 60) is None
