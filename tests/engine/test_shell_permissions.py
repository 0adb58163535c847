"""Bash permission patterns and grants hold for every simple command of a compound command, and a
catastrophic pattern means "ask", never a frozen turn (issue 10, holes 2 and 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mnemara.config import ToolPolicy
from mnemara.engine.events import PermissionRequest, ToolResult
from mnemara.engine.permissions import Decision, PermissionPolicy
from mnemara.engine.shell import analyse
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.drive import run_turn
from tests.fakes.fake_cli import fake_cli

ALLOW, ASK, DENY = Decision.ALLOW, Decision.ASK, Decision.DENY
REPO_ROOT = Path(__file__).resolve().parents[2]

# The README's own examples plus a few everyday read-only programs.
PATTERNS = ("^ls( |$)", "^git status$", "^cat( |$)", "^echo( |$)", "^cd( |$)", "^wc( |$)",
            "^grep( |$)", "^head( |$)", "^printf( |$)", "^true$")


def policy(tmp_path: Path, patterns: tuple[str, ...] = PATTERNS, mode: str = "ask",
           **kw: Any) -> PermissionPolicy:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return PermissionPolicy([ToolPolicy("Bash", mode, patterns)], home=home,
                            file_tool_home_only=True, permissions_path=home / "permissions.json",
                            cwd=home, **kw)


def bash(cmd: str) -> dict[str, str]:
    return {"command": cmd}


# --- the table: commands against allowed_patterns -----------------------------------------------

ALLOWED_BY_PATTERNS = [
    "ls",
    "ls -la",
    "git status",
    "git  status",                                    # whitespace between words is normalised
    "ls x && git status",
    "ls x || echo none",
    "ls; git status",
    "ls | wc -l",
    "ls x | grep y | head -5",
    "ls x\ngit status",
    "(cd sub && ls)",
    "{ ls; echo done; }",
    "if ls x; then echo yes; else echo no; fi",
    "for f in a b; do cat $f; done",
    "! ls x",
    "l's' -la",                                       # the name after unquoting is what matches
    '"ls" x',
    "\\ls",
    "$'ls' x",
    "$'\\x6cs'",
    "ls # && rm -rf ~",                               # a comment is not a command
    "ls 2>/dev/null",
    "ls x >/dev/null 2>&1",
    "cat <<'EOF'\n$(rm -rf ~)\nEOF",                  # a quoted here-document body is data
    "cat <<EOF\nhello $HOME\nEOF",
    "bash -c 'ls && git status'",                     # the inner commands are checked instead
    "sh -c \"ls x\"",
    "eval 'ls x'",
    "echo '$(rm -rf ~)' \"a;b\" 'c && d'",            # quoted text is an argument, not a command
    "ls \\\n  -la",
    'ls "$HOME" ${HOME}',
    "printf '%s\\n' x",
]

ASKED_DESPITE_PATTERNS = [
    # chains, pipes and newlines with one command no pattern covers
    "ls x && touch y",
    "ls x || rm y",
    "ls; rm -rf ~",
    "git status; git push",
    "ls | xargs rm",
    "ls x\nrm y",
    "ls x\r\nrm y",
    "(ls; rm y)",
    "{ ls; rm y; }",
    "if ls; then rm y; fi",
    "for f in a; do rm $f; done",
    "while ls; do rm y; done",
    # command and process substitution, anywhere
    "ls $(touch y)",
    'ls "$(touch y)"',
    "ls `touch y`",
    'echo "a`touch y`"',
    "X=$(touch y) ls",
    "ls ${x:-$(touch y)}",
    "cat <(touch y)",
    "ls >(touch y)",
    "cat <<EOF\n$(touch y)\nEOF",
    "cat <<EOF\n`touch y`\nEOF",
    "cat <<< \"$(touch y)\"",
    # where tree-sitter-bash and bash disagree (found by the differential test below)
    "cat /dev/null\n\\\ntouch y",                   # bash: two lines; the parser: one command
    "cat <<EOF\nx\nEOF | cat <<'EOF'\n$(touch y)\nEOF",  # bash: the first body runs on
    "cat <<EOF\nhi\nEOF ; cat <<'EOF'\n$(touch y)\nEOF",
    "echo \\ #$(touch y)",                          # bash: no comment, a word with $(...)
    "bash -c \"echo 'a'\ntouch y\"",                 # the parser's string parts drop the newline
    "echo\n\\touch y",                             # the parser glues the line break into a word
    "echo\\\n#> out",                              # bash joins the lines: no comment, a redirect
    "{ echo a; }#x > out",                            # `}#x` is a word to bash, not a comment
    # output redirection to a file
    "ls > out",
    "ls >> ~/.bashrc",
    "echo x &> f",
    "ls >| f",
    "ls 2> err.txt",
    "echo x >&f",
    # backgrounding
    "ls &",
    "ls & rm y",
    # eval and shells
    'eval "$x"',
    "eval 'rm y'",
    "bash -c 'ls; rm y'",
    'sh -c "$x"',
    "zsh -c 'rm y'",
    "bash script.sh",
    "bash <<EOF\nls\nEOF",
    "cat <<EOF | sh\nls\nEOF",
    "ls | bash",
    "bash --rcfile x -ic ls",
    "bash -c 'cat' < ~/.ssh/id_rsa",                  # the input could not be matched by `cat`
    "fish -c 'ls'",                                   # not bash's language
    # functions and names that are not plain text
    "f(){ rm y; }; f",
    "ls(){ rm y; }; ls",
    "$CMD x",
    "${X}ls",
    "l$X",
    "/bin/ls",                                        # a path is not the name the pattern names
    # wrappers: the wrapper's name is what has to match
    "sudo ls",
    "env X=1 ls",
    "exec rm y",
    "PATH=/tmp/evil:$PATH ls",
    "X=1; ls",
    "for PATH in /tmp/evil; do ls; done",
    # syntax the checker does not approve
    "ls &&",
    "ls *(e:'touch y':)",                             # a zsh glob qualifier that runs code
    "[[ -f x ]] && ls",
    "echo $((1+2))",
    "printf -v 'a[$(touch y)]' x",
    "ls\x1b[2J",
    "git status --short",                             # `^git status$` is exact
]


@pytest.mark.parametrize("command", ALLOWED_BY_PATTERNS)
def test_patterns_allow_when_every_simple_command_matches(tmp_path: Path, command: str) -> None:
    verdict = policy(tmp_path).decide("Bash", bash(command))
    assert verdict.decision is ALLOW, verdict.reason


@pytest.mark.parametrize("command", ASKED_DESPITE_PATTERNS)
def test_patterns_never_approve_more_than_they_name(tmp_path: Path, command: str) -> None:
    verdict = policy(tmp_path).decide("Bash", bash(command))
    assert verdict.decision is ASK, verdict.reason
    assert verdict.reason


def test_the_table_is_large_enough() -> None:
    assert len(ALLOWED_BY_PATTERNS) + len(ASKED_DESPITE_PATTERNS) >= 40


def test_reason_names_what_needs_approval(tmp_path: Path) -> None:
    pp = policy(tmp_path)
    chain = pp.decide("Bash", bash("ls x && touch y"))
    assert "'touch y'" in chain.reason and "one of the 2 commands" in chain.reason
    sub = pp.decide("Bash", bash("ls $(touch y)"))
    assert "command substitution" in sub.reason
    redirect = pp.decide("Bash", bash("ls > out"))
    assert "output redirection to a file (> out)" in redirect.reason
    both = pp.decide("Bash", bash("ls x && git status"))
    assert both.decision is ALLOW and "'^ls( |$)'" in both.reason and "'^git status$'" in both.reason


def test_patterns_keep_python_re_syntax(tmp_path: Path) -> None:
    pp = policy(tmp_path, patterns=(r"(?i)^git status$", r"^(?P<cmd>pwd)\b", r"^echo [\w-]+$"))
    assert pp.decide("Bash", bash("GIT STATUS")).decision is ALLOW
    assert pp.decide("Bash", bash("pwd -P && echo done-ok")).decision is ALLOW
    assert pp.decide("Bash", bash("echo a b")).decision is ASK


def test_deny_still_wins_over_everything(tmp_path: Path) -> None:
    pp = policy(tmp_path, mode="deny")
    assert pp.decide("Bash", bash("ls")).decision is DENY
    assert pp.decide("Bash", bash("ls; rm y")).decision is DENY


# --- saved "always" grants -----------------------------------------------------------------------

GRANTED = ("ls", "git status", "pwd")

ALLOWED_BY_GRANTS = ["ls", "git status", "ls && pwd", "ls; git status", "pwd\nls", "ls 2>/dev/null",
                     "(ls)", "bash -c 'pwd'"]
ASKED_DESPITE_GRANTS = ["ls; rm -rf ~", "ls && touch y", "ls $(touch y)", "pwd > out", "ls &",
                        "bash -c 'ls; rm y'", "eval 'ls; rm y'", "ls\nrm y", "(ls; rm y)", "ls -la",
                        "sudo ls", "git status | sh", "{ pwd; rm y; }", "ls `rm y`"]


@pytest.fixture
def granted(tmp_path: Path) -> PermissionPolicy:
    """A fresh policy reading grants that "a" answers for three simple commands saved."""
    first = policy(tmp_path, patterns=())
    for command in GRANTED:
        assert first.answer("Bash", bash(command), "a").decision is ALLOW
    return policy(tmp_path, patterns=())


@pytest.mark.parametrize("command", ALLOWED_BY_GRANTS)
def test_saved_grants_cover_lines_made_only_of_granted_commands(granted: PermissionPolicy,
                                                                command: str) -> None:
    verdict = granted.decide("Bash", bash(command))
    assert verdict.decision is ALLOW, verdict.reason


@pytest.mark.parametrize("command", ASKED_DESPITE_GRANTS)
def test_a_grant_for_a_simple_command_never_approves_more(granted: PermissionPolicy,
                                                          command: str) -> None:
    assert granted.decide("Bash", bash(command)).decision is ASK


def test_always_on_a_compound_line_saves_and_approves_exactly_that_line(tmp_path: Path) -> None:
    pp = policy(tmp_path, patterns=())
    line = "ls x && touch y > out"
    assert pp.answer("Bash", bash(line), "a").decision is ALLOW
    saved = json.loads((tmp_path / "home" / "permissions.json").read_text())
    assert saved == {"Bash": ["^ls x \\&\\& touch y > out$"]}
    fresh = policy(tmp_path, patterns=())
    assert fresh.decide("Bash", bash(line)).decision is ALLOW
    for other in (line + "; rm y", line + " &", "touch y > out", "ls x", "ls x && touch y > out2",
                  "ls x && touch y > out\nrm y"):
        assert fresh.decide("Bash", bash(other)).decision is ASK, other


def test_hand_written_saved_patterns_follow_the_same_rule(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "permissions.json").write_text(json.dumps({"Bash": ["^ls( |$)"]}))
    pp = policy(tmp_path, patterns=())
    assert pp.decide("Bash", bash("ls -la")).decision is ALLOW
    assert pp.decide("Bash", bash("ls; rm -rf ~")).decision is ASK
    assert pp.decide("Bash", bash("ls $(rm -rf ~)")).decision is ASK


# --- session grants ------------------------------------------------------------------------------

def test_session_grant_is_for_the_whole_tool_and_only_that_tool(tmp_path: Path) -> None:
    # "s" answers "allow Bash for the rest of the session" (the prompt says so): like mode allow,
    # it covers any line. A session grant for another tool approves no Bash line.
    other = policy(tmp_path, session_grants={"Write"})
    assert other.decide("Bash", bash("ls; rm -rf ~")).decision is ASK
    assert other.decide("Bash", bash("ls $(touch y)")).decision is ASK
    pp = policy(tmp_path)
    assert pp.answer("Bash", bash("ls x && touch y"), "s").decision is ALLOW
    assert pp.decide("Bash", bash("ls; rm -rf ~")).decision is ALLOW
    assert not (tmp_path / "home" / "permissions.json").exists()
    assert policy(tmp_path).decide("Bash", bash("ls; rm -rf ~")).decision is ASK


# --- the analysis itself ---------------------------------------------------------------------------

def test_analyse_lists_each_simple_command_as_patterns_see_it() -> None:
    got = analyse("X=1 l's'  -la 2>&1 | grep -v x && cat < in.txt; bash -c 'git status'")
    assert got.commands == ("X=1 ls -la", "grep -v x", "cat < in.txt", "git status")
    assert got.problems == ()
    assert analyse("ls >out x").commands == ("ls x",)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(command=st.text(max_size=60), patterns=st.lists(st.text(max_size=12), max_size=3))
def test_any_command_and_pattern_gives_a_verdict(tmp_path: Path, command: str,
                                                 patterns: list[str]) -> None:
    # Bad input (invalid regexes, NULs, stray quotes) is a warning or an "ask", never a crash.
    pp = policy(tmp_path, patterns=tuple(patterns))
    verdict = pp.decide("Bash", bash(command))
    assert verdict.decision in (ALLOW, ASK) and verdict.target == command
    assert policy(tmp_path, patterns=()).decide("Bash", bash(command)).decision is ASK


# Differential check against the real bash: lines built from approved commands, with shell syntax
# spliced in at random places. Whatever the checker approves is run by bash in an empty directory;
# `ls`, `echo` and `cat` never create files, so a file appearing there means the check approved
# something it should not have (this is how a parser slip with here-document ends was found).
_SAFE = ["ls", "ls -a", "echo a", "echo 'touch M'", "cat /dev/null", "cat <<EOF\ntouch M\nEOF",
         "cat <<'EOF'\n$(touch M)\nEOF", "ls # touch M", "bash -c 'echo a'", "eval 'echo a'",
         "echo a | cat", "{ ls; }", "(echo a)", "if ls; then echo a; fi", "echo $'touch M'",
         "cat <<-EOF\n\ttouch M\n\tEOF", "echo a \\\n b", "for i in a; do echo $i; done"]
_SPLICE = ["'", '"', "`", "$(", ")", "\n", ";", "&", "|", "#", "\\", "{", "}", "(", "<<EOF\n",
           "EOF\n", "touch M", "\ntouch M", "$", "\\\n", "\n\\\n", "<<'EOF'\n", "\nEOF",
           "EOF|", "EOF;", "\t", "<<-EOF\n", "$'", "!", "=", "<", ">", "2>&1", "&>", "|&", ";;",
           "$(touch M)", "`touch M`", "bash -c '", "eval ", "\\\ntouch M", "\\ ", "\\\t", "\n\\", "#", "}#", "\\\n#", " > M"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(parts=st.lists(st.sampled_from(_SAFE), min_size=1, max_size=3),
       seps=st.lists(st.sampled_from([" ; ", " && ", " || ", " | ", "\n"]), min_size=2, max_size=2),
       splices=st.lists(st.tuples(st.integers(0, 200), st.sampled_from(_SPLICE)), max_size=3))
def test_bash_never_runs_more_than_the_check_approved(tmp_path: Path, parts: list[str],
                                                      seps: list[str],
                                                      splices: list[tuple[int, str]]) -> None:
    line = parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:]))
    for at, text in splices:
        at %= len(line) + 1
        line = line[:at] + text + line[at:]
    pp = policy(tmp_path, patterns=("^ls( |$)", "^echo( |$)", "^cat( |$)"))
    if pp.decide("Bash", bash(line)).decision is not ALLOW:
        return
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    for leftover in work.iterdir():
        leftover.unlink()
    try:
        subprocess.run(["/bin/bash", "-c", line], cwd=work, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=10,
                       env={"PATH": os.environ["PATH"], "HOME": str(work)})
    except subprocess.TimeoutExpired:
        pass
    assert sorted(p.name for p in work.iterdir()) == [], f"approved, yet it wrote files: {line!r}"


def test_tree_sitter_is_imported_only_for_a_bash_decision(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from mnemara.config import ToolPolicy
        from mnemara.engine.permissions import PermissionPolicy
        pp = PermissionPolicy([ToolPolicy("Bash", "ask", ("^ls( |$)",))], home=Path({str(tmp_path)!r}),
                              file_tool_home_only=True, permissions_path=None)
        pp.decide("Read", {{"file_path": {str(tmp_path / 'x')!r}}})
        before = "tree_sitter" in sys.modules
        pp.decide("Bash", {{"command": "ls"}})
        print(before, "tree_sitter" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert out.stdout.split() == ["False", "True"], out.stderr


# --- catastrophic patterns -------------------------------------------------------------------------

_CATASTROPHIC = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from mnemara.config import ToolPolicy
    from mnemara.debuglog import DebugLog
    from mnemara.engine.gate import PermissionGate
    from mnemara.engine.permissions import PermissionPolicy

    home = Path(sys.argv[1])
    command = "a" * 40 + "!"

    def make(pattern):
        return PermissionPolicy([ToolPolicy("Bash", "ask", (pattern,))], home=home,
                                file_tool_home_only=True, permissions_path=None)

    out = {}
    issue = make("(a+)+$").decide("Bash", {"command": command})       # the pattern in the issue
    out["issue"] = [issue.decision.value, issue.reason]
    worst = make("(a|a)+$").decide("Bash", {"command": command})      # backtracks in any engine
    out["worst"] = [worst.decision.value, worst.reason]

    async def through_the_gate():
        async def emit(event):
            pass
        gate = PermissionGate(make("(a|a)+$"), bash_timeout_seconds=60,
                              log=DebugLog(home / "debug.log"), emit=emit)
        hook = asyncio.ensure_future(gate.pre_tool_use(
            {"tool_name": "Bash", "tool_input": {"command": command}}, "t1", None))
        await asyncio.sleep(0)          # one loop pass: the hook has started deciding
        loop_ran_while_deciding = not hook.done()
        result = await hook
        return loop_ran_while_deciding, result["hookSpecificOutput"]["permissionDecision"]

    out["gate"] = list(asyncio.run(through_the_gate()))
    print(json.dumps(out))
""")


def test_catastrophic_pattern_means_ask_and_never_freezes_the_turn(tmp_path: Path) -> None:
    # In a child process with a generous limit: before the fix this froze for minutes with the GIL
    # held, so an in-process test could not even time out.
    try:
        out = subprocess.run([sys.executable, "-c", _CATASTROPHIC, str(tmp_path)], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=90,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail("a catastrophic allowed pattern froze the permission decision")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["issue"][0] == "ask"
    decision, reason = got["worst"]
    assert decision == "ask"
    assert "'(a|a)+$'" in reason and "not trusted" in reason
    loop_ran, hook_decision = got["gate"]
    assert hook_decision == "ask"
    assert loop_ran, "the event loop (and so Ctrl+C) was blocked while the pattern ran"


# --- through the engine, with the fake CLI ---------------------------------------------------------

@pytest.fixture
def engine_for(home: Path, tmp_path: Path):
    engines: list[TurnEngine] = []

    def make(turns: list[list[dict[str, Any]]], patterns: tuple[str, ...]) -> TurnEngine:
        instance = Instance.named("t")
        instance.create()
        policies = [ToolPolicy("Bash", "ask", patterns), ToolPolicy("mcp__mnemara__*", "allow")]
        cfg = instance.load_config().replace(allowed_tools=[p.to_json() for p in policies])
        instance.save_config(cfg)
        fake = fake_cli(tmp_path / "fake", turns)
        eng = TurnEngine(instance, cli_path=fake.cli_path, env=fake.env)
        engines.append(eng)
        return eng

    yield make
    for eng in engines:
        eng.close()


async def test_a_compound_command_is_asked_not_run(engine_for, tmp_path: Path) -> None:
    listed, chained, substituted = tmp_path / "listed", tmp_path / "chained", tmp_path / "subst"
    listed.mkdir()
    step = lambda c, i: {"tool": "Bash", "input": {"command": c}, "id": i}  # noqa: E731
    eng = engine_for([[step(f"ls {listed}", "b0"), step(f"ls {listed} && touch {chained}", "b1"),
                       step(f"ls $(touch {substituted})", "b2"), {"text": "done"}]], ("^ls( |$)",))
    events = await run_turn(eng, "list it", answers="nn")
    asked = [e for e in events if isinstance(e, PermissionRequest)]
    assert [r.summary for r in asked] == [f"Bash: ls {listed} && touch {chained}",
                                          f"Bash: ls $(touch {substituted})"]
    assert "touch" in asked[0].reason and "command substitution" in asked[1].reason
    results = {e.tool_use_id: e for e in events if isinstance(e, ToolResult)}
    assert not results["b0"].is_error                   # the plain `ls` ran without a question
    assert results["b1"].is_error and results["b2"].is_error
    assert not chained.exists() and not substituted.exists()
