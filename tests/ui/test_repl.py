"""`mnemara run --no-tui` as a user drives it: a real pty (pexpect) or a pipe, the fake CLI behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.fakes.fake_cli import fake_cli


ENV_EXTRA: dict[str, str] = {"TERM": "xterm", "NO_COLOR": "1"}


@pytest.fixture
def env(fake_cli_env: dict[str, str]) -> dict[str, str]:
    return fake_cli_env | ENV_EXTRA


def script(env: dict[str, str], tmp_path: Path, turns: list[list[dict[str, Any]]]) -> dict[str, str]:
    return {**env, **fake_cli(tmp_path / "fake", turns).env}


def spawn(env: dict[str, str]) -> pexpect.spawn:
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "r"],
                          env=env, encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("you>")
    return child


def test_chat_streams_reply_and_answers_permission_prompts(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "made"
    e = script(env, tmp_path, [
        [{"text": "Hello from the model.", "chunks": 3}],
        [{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "b1"}, {"text": "I tried."}],
        [{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "b2"}, {"text": "Made it."}],
    ])
    child = spawn(e)
    child.sendline("hi there")
    child.expect("Hello from the model.")
    child.expect("you>")
    child.sendline("make a file")
    child.expect("permission needed: Bash: touch")
    child.expect(r"allow\? \[y\]es")
    child.sendline("n")
    child.expect("declined")
    child.expect("you>")
    assert not target.exists()
    child.sendline("please")
    child.expect(r"allow\? \[y\]es")
    child.sendline("y")
    child.expect("Made it.")
    child.expect("you>")
    assert target.exists()
    child.sendline("/show")
    child.expect(r"6/20 turns")
    child.expect("you>")  # Ctrl+D typed before the prompt is back would reach the tty, not us
    child.sendeof()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    history = (tmp_path / "home/.mnemara/r/.prompt_history").read_text()
    assert "make a file" in history and "/show" in history


def test_ctrl_c_interrupts_a_running_turn_and_keeps_the_partial_reply(env: dict[str, str],
                                                                        tmp_path: Path) -> None:
    e = script(env, tmp_path, [[{"text": "Working on it", "chunks": 1}, {"sleep": 30},
                                {"text": "never shown"}]])
    child = spawn(e)
    child.sendline("long job")
    child.expect("Working on it")
    child.sendintr()
    child.expect("interrupting")
    child.expect("interrupted: the partial reply is kept")
    child.expect("you>")
    child.sendline("/show 1")
    child.expect(r"\[interrupted\]")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_second_ctrl_c_quits(env: dict[str, str], tmp_path: Path) -> None:
    e = script(env, tmp_path, [[{"text": "Thinking", "chunks": 1}, {"sleep": 30}]])
    child = spawn(e)
    child.sendline("long job")
    child.expect("Thinking")
    child.sendintr()
    child.expect("interrupting")
    child.sendintr()
    child.expect(pexpect.EOF, timeout=20)
    child.close()
    assert child.exitstatus == 0


def test_piped_stdin_runs_each_line_as_a_message(env: dict[str, str], tmp_path: Path) -> None:
    target = tmp_path / "piped"
    e = script(env, tmp_path, [[{"text": "first reply"}],
                               [{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "p"}]])
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "p"], input="one\n/help\ntwo\n",
                          env=e, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "first reply" in proc.stdout
    assert "/retry" in proc.stdout  # /help listed the commands
    assert "refused: no terminal to ask on" in proc.stderr
    assert not target.exists()
    assert "created instance 'p'" in proc.stderr


def test_unknown_slash_command_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "u"], input="/shw\n",
                          env=script(env, tmp_path, []), capture_output=True, text=True, timeout=60)
    assert "unknown command /shw (did you mean /show?)" in proc.stderr
    assert proc.returncode == 0


def test_failed_turn_then_retry(env: dict[str, str], tmp_path: Path) -> None:
    e = script(env, tmp_path, [[{"api_error": 401, "message": "invalid x-api-key"}],
                               [{"text": "worked on retry"}]])
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "f"], input="hello\n/retry\n",
                          env=e, capture_output=True, text=True, timeout=60)
    assert "no Anthropic credentials" in proc.stderr
    assert "worked on retry" in proc.stdout
    shown = subprocess.run([sys.executable, "-m", "mnemara", "show", "-i", "f", "--json"], env=e,
                           capture_output=True, text=True, timeout=30)
    statuses = [t["status"] for t in json.loads(shown.stdout)["turns"]]
    assert statuses == ["complete", "complete"]


def test_start_warns_about_a_turn_left_unfinished(env: dict[str, str], tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "mnemara", "init", "-i", "s"], env=env, check=True,
                   capture_output=True)
    from mnemara.store import TurnStore
    with TurnStore(Path(env["MNEMARA_HOME"]) / "s" / "turns.sqlite") as store:
        store.add_turn("user", [{"type": "text", "text": "cut off"}], status="pending")
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "s"], input="",
                          env=script(env, tmp_path, []), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "turn 1 was left unfinished by an earlier session" in proc.stderr
