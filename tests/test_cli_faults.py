"""Turn-level faults as a user meets them on the command line (issue 10, holes 5, 7, 9):
oversized messages in `ask`, the role doc in `role --set` and `show --prompt`, SIGTERM in
`ask`, the REPL and the TUI, exit codes of a piped `run`, `ask` reading stdin on a terminal,
and `--help`. Real subprocesses (and a real pty) with the scripted fake CLI behind them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import pexpect
import pytest

from tests.fakes.fake_cli import fake_cli

LONG_TURN = [{"text": "partial answer", "chunks": 1}, {"sleep": 30}, {"text": "never"}]


@pytest.fixture
def env(fake_cli_env: dict[str, str]) -> dict[str, str]:
    return fake_cli_env | {"TERM": "xterm", "NO_COLOR": "1"}


def scripted(env: dict[str, str], tmp_path: Path, turns: list[list[dict[str, Any]]]) -> dict[str, str]:
    return {**env, **fake_cli(tmp_path / "fake", turns).env}


def mnemara(*args: str, env: dict[str, str], input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnemara", *args], env=env, input=input,
                          capture_output=True, text=True, timeout=timeout)


def window(name: str, env: dict[str, str]) -> list[dict[str, Any]]:
    shown = mnemara("show", "-i", name, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["turns"]


def text(turn: dict[str, Any]) -> str:
    """A turn's text blocks, from `show --json`."""
    return "".join(b.get("text", "") for b in turn["content"] if b.get("type") == "text")


def read_until(proc: subprocess.Popen, text: str, timeout: float = 30) -> str:
    """What `proc` printed on stdout until `text` appeared (fails the test after `timeout`)."""
    seen, deadline = b"", time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} never appeared; stdout so far: {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"stdout closed before {text!r}; got {seen!r}"
            seen += chunk
    return seen.decode()


# --- --help ----------------------------------------------------------------------------------------

def test_help_shows_no_placeholder_default(cli: Callable[..., Any]) -> None:
    for command in ("show", "ask", "run", "role"):
        result = cli(command, "--help")
        assert result.exit_code == 0
        assert "(default)]" not in result.stdout and "default 'default'" in result.stdout


# --- hole 7: the role doc in `role --set` and `show --prompt` --------------------------------------

@pytest.mark.parametrize("content, problem", [
    (b"Be brief.\x00", "holds a NUL byte"),
    (b"Be \xff brief.", "is not valid UTF-8"),
    (None, "is a directory"),
])
def test_role_set_refuses_a_doc_that_cannot_be_sent(cli, make_instance, assert_user_error, tmp_path,
                                                    content: bytes | None, problem: str) -> None:
    inst = make_instance("r")
    target = tmp_path / "role.md"
    if content is None:
        target.mkdir()
    else:
        target.write_bytes(content)
    before = inst.config_path.read_bytes()
    line = assert_user_error(cli("role", "-i", "r", "--set", str(target)), problem, str(target))
    assert "not set" in line
    assert inst.config_path.read_bytes() == before


def test_role_and_show_prompt_say_a_nul_byte_makes_the_prompt_empty(cli, make_instance, tmp_path) -> None:
    role = tmp_path / "role.md"
    role.write_text("You are terse.")
    make_instance("r", role_doc_path=str(role))
    role.write_bytes(b"You are terse.\x00")  # damaged after it was set
    status = cli("role", "-i", "r")
    assert status.exit_code == 0 and "NUL byte" in status.stderr
    shown = cli("show", "-i", "r", "--prompt")
    assert shown.exit_code == 0
    header = next(line for line in shown.stdout.splitlines() if line.startswith("===== system prompt"))
    assert "empty" in header and "NUL byte" in header


def test_show_prompt_lists_what_claude_code_adds_on_its_own(cli, make_instance, tmp_path) -> None:
    make_instance("p", cwd=str(tmp_path), model="claude-haiku-4-5")
    shown = cli("show", "-i", "p", "--prompt")
    assert shown.exit_code == 0
    added = shown.stdout.split("===== added by Claude Code")[1]
    assert "You are a Claude agent, built on Anthropic's Claude Agent SDK." in added
    assert "# Environment" in added and str(tmp_path) in added and "claude-haiku-4-5" in added
    assert "attribution" in added  # Bash is offered by default
    data = json.loads(cli("show", "-i", "p", "--prompt", "--json").stdout)
    assert any("Claude Agent SDK" in item["what"] for item in data["added_by_claude_code"])


# --- hole 5: oversized message in `ask` -----------------------------------------------------------

def test_ask_refuses_an_oversized_message_storing_and_sending_nothing(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [[{"text": "never asked"}]])
    assert mnemara("init", "-i", "big", env=e).returncode == 0
    proc = mnemara("ask", "-i", "big", "-", env=e, input="x" * 1_000_000)
    assert proc.returncode == 1
    assert proc.stdout == ""
    [line] = [ln for ln in proc.stderr.splitlines() if "not sent" in ln]
    assert "1.0 MB" in line and "100,000 tokens" in line and "max_window_tokens in config.json" in line
    assert "/tokens" not in proc.stderr and "/models" not in proc.stderr and "/retry" not in proc.stderr
    assert window("big", e) == []
    assert not (tmp_path / "fake" / "fake_cli_log.jsonl").exists()  # the CLI never started


# --- hole 9: SIGTERM, exit codes, stdin ------------------------------------------------------------

def test_sigterm_during_ask_keeps_the_partial_reply_like_ctrl_c(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [LONG_TURN])
    assert mnemara("init", "-i", "t", env=e).returncode == 0
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "ask", "-i", "t", "long task"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    read_until(proc, "partial answer")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert b"Traceback" not in err
    turns = window("t", e)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "interrupted")]
    assert "partial answer" in text(turns[1]) and "never" not in text(turns[1])


def test_sigterm_during_a_piped_run_keeps_the_partial_reply_and_exits(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [LONG_TURN])
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "run", "-i", "t"], env=e,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"long task\n")
    proc.stdin.flush()  # stdin stays open: the REPL would wait for more
    read_until(proc, "partial answer")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    turns = window("t", e)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "interrupted")]
    assert "partial answer" in text(turns[1])


def test_sigterm_on_an_idle_piped_run_exits(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [[{"text": "hello back"}]])
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "run", "-i", "idle"], env=e,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(b"hi\n")
    proc.stdin.flush()
    read_until(proc, "hello back")
    time.sleep(0.5)  # back at the prompt, waiting on stdin
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    assert [t["status"] for t in window("idle", e)] == ["complete", "complete"]


def test_sigterm_during_a_tui_turn_keeps_the_partial_reply(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [LONG_TURN])
    e.pop("NO_COLOR")
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "-i", "tui"], env=e,
                          timeout=60, dimensions=(30, 100))
    child.expect("Message")  # the input box's placeholder: the panel is up
    child.send("long task")
    child.send("\r")
    child.expect("partial answer")
    child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF, timeout=30)
    child.close()
    assert child.exitstatus == 143, (child.exitstatus, child.signalstatus)
    turns = window("tui", e)
    assert [(t["role"], t["status"]) for t in turns] == [("user", "complete"), ("assistant", "interrupted")]
    assert "partial answer" in text(turns[1])


def test_a_failed_turn_in_a_piped_run_exits_non_zero(env, tmp_path) -> None:
    failing = scripted(env, tmp_path / "a", [[{"api_error": 401, "message": "invalid x-api-key"}]])
    proc = mnemara("run", "-i", "f", env=failing, input="hi\n")
    assert proc.returncode == 1
    assert "no Anthropic credentials" in proc.stderr
    working = scripted(env, tmp_path / "b", [[{"text": "fine"}]])
    assert mnemara("run", "-i", "g", env=working, input="hi\n").returncode == 0


def test_ask_on_a_terminal_says_it_reads_stdin(env, tmp_path) -> None:
    e = scripted(env, tmp_path, [[{"text": "read you"}]])
    assert mnemara("init", "-i", "s", env=e).returncode == 0
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "ask", "-i", "s"], env=e, timeout=30,
                          encoding="utf-8")
    child.expect_exact("reading the message from stdin (Ctrl+D to end)")
    child.send("what is up\n")
    child.sendeof()
    child.expect("read you")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    turns = window("s", e)
    assert "what is up" in text(turns[0])
