"""`mnemara ask` and `mnemara show --prompt`, run as a user runs them (subprocess, fake CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_cli import fake_cli


ENV_EXTRA: dict[str, str] = {}


@pytest.fixture
def env(fake_cli_env: dict[str, str]) -> dict[str, str]:
    return fake_cli_env | ENV_EXTRA


def mnemara(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnemara", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def with_script(env: dict[str, str], tmp_path: Path, turns: list[list[dict[str, Any]]]) -> dict[str, str]:
    return {**env, **fake_cli(tmp_path / "fake", turns).env}


def test_ask_prints_the_reply_on_stdout_and_tools_on_stderr(env: dict[str, str], tmp_path: Path) -> None:
    mnemara(env, "init", "-i", "a")
    e = with_script(env, tmp_path, [[{"tool": "mcp__mnemara__list_window", "input": {}, "id": "l"},
                                     {"text": "The answer is 42.", "chunks": 2}]])
    proc = mnemara(e, "ask", "-i", "a", "what is the answer?")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "The answer is 42.\n"
    assert "⚙ mcp__mnemara__list_window" in proc.stderr


def test_ask_reads_stdin_and_json_lines(env: dict[str, str], tmp_path: Path) -> None:
    mnemara(env, "init", "-i", "a")
    e = with_script(env, tmp_path, [[{"text": "piped reply", "chunks": 2},
                                     {"usage": {"input_tokens": 10, "output_tokens": 3}, "cost": 0.5}]])
    proc = mnemara(e, "ask", "-i", "a", "--json", "-", stdin="question from a pipe\n")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [ev["event"] for ev in events] == ["text_delta", "text_delta", "text", "turn_finished"]
    final = events[-1]
    assert final["status"] == "complete" and final["cost_usd"] == 0.5
    assert final["usage"]["output_tokens"] == 3
    show = json.loads(mnemara(env, "show", "-i", "a", "--json").stdout)
    assert "question from a pipe" in show["turns"][0]["content"][0]["text"]


def test_ask_denies_ask_mode_tools_unless_yes(env: dict[str, str], tmp_path: Path) -> None:
    mnemara(env, "init", "-i", "a")
    target = tmp_path / "touched"
    step = [{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "b"}, {"text": "done"}]
    proc = mnemara(with_script(env, tmp_path, [step, step]), "ask", "-i", "a", "touch it")
    assert proc.returncode == 0 and not target.exists()
    assert "use --yes" in proc.stderr
    proc = mnemara(with_script(env, tmp_path, [step, step]), "ask", "-i", "a", "--yes", "touch it")
    assert proc.returncode == 0 and target.exists()


def test_ask_failure_exits_non_zero_with_one_clear_line(env: dict[str, str], tmp_path: Path) -> None:
    mnemara(env, "init", "-i", "a")
    e = with_script(env, tmp_path, [[{"api_error": 401, "message": "Invalid API key"}]])
    proc = mnemara(e, "ask", "-i", "a", "hi")
    assert proc.returncode == 1
    assert "no Anthropic credentials" in proc.stderr and "Traceback" not in proc.stderr


def test_ask_needs_a_message(env: dict[str, str]) -> None:
    # a missing instance is created, as `run` and `note` do (tests/ui/test_repl_session.py)
    mnemara(env, "init", "-i", "a")
    proc = mnemara(env, "ask", "-i", "a", stdin="   \n")
    assert proc.returncode == 2 and "nothing to ask" in proc.stderr


def test_show_prompt_prints_exactly_what_the_next_turn_sends(env: dict[str, str], tmp_path: Path) -> None:
    role = tmp_path / "home" / "role.md"
    role.write_text("You are precise.")
    mnemara(env, "init", "-i", "a", "--role", str(role))
    fake = fake_cli(tmp_path / "fake", [[{"text": "first"}], [{"text": "second"}]])
    e = {**env, **fake.env}
    mnemara(e, "ask", "-i", "a", "one")
    before = sorted(p.name for p in (tmp_path / "home/.mnemara/a").iterdir())
    proc = mnemara(e, "show", "-i", "a", "--prompt", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert sorted(p.name for p in (tmp_path / "home/.mnemara/a").iterdir()) == before  # read-only
    mnemara(e, "ask", "-i", "a", "two")
    sent = fake.user_messages()[-1]["message"]["content"]
    assert shown["system_prompt"] == "You are precise." == fake.flag("--system-prompt")
    assert shown["blocks"] == sent[:-1]  # exactly the blocks sent, before the new message
    text = mnemara(e, "show", "-i", "a", "--prompt").stdout
    assert "You are precise." in text and '<turn id="1" role="user"' in text


def test_ctrl_c_stops_ask_cleanly_and_keeps_the_partial_reply(env: dict[str, str], tmp_path: Path) -> None:
    import signal
    import time
    mnemara(env, "init", "-i", "a")
    e = with_script(env, tmp_path, [[{"text": "partial", "chunks": 1}, {"sleep": 30}]])
    proc = subprocess.Popen([sys.executable, "-m", "mnemara", "ask", "-i", "a", "long"], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.read(len("partial")) == "partial"
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    show = json.loads(mnemara(env, "show", "-i", "a", "--json").stdout)
    assert show["turns"][-1]["status"] == "interrupted"
