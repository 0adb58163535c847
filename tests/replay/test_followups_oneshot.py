"""The one engine-level path for a one-step question outside a chat turn (`engine/oneshot.py`),
shared by compress's summary and replay's `--synthesize`, through the real SDK and the scripted
fake CLI: the answer's text (a failed API call's synthetic message never taken for it), an error
result or a dead CLI explained in one sentence, an interruptible client handed to the caller,
and replay's question on the wire exactly as it was before the two shared it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from mnemara.config import Config
from mnemara.engine.oneshot import AskFailed, ask_once
from mnemara.replay.synthesize import SynthesisFailed, ask
from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli, parse_argv


def _run(tmp_path: Path, turns: list[list[dict[str, Any]]], **kwargs: Any) -> tuple[Any, Any]:
    from claude_agent_sdk import ClaudeAgentOptions
    setup = fake_cli(tmp_path / "fake", turns)
    stderr: list[str] = []
    options = ClaudeAgentOptions(tools=[], system_prompt="S", cli_path=FAKE_CLI_PATH, env=setup.env,
                                 stderr=stderr.append, setting_sources=[], max_turns=1,
                                 cwd=os.getcwd())
    message = {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "Q"}]},
               "parent_tool_use_id": None}
    answer = asyncio.run(ask_once(options, message, front_end="ask", stderr=lambda: stderr, **kwargs))
    return answer, setup


def test_the_answer_is_the_main_threads_text_with_its_cost(tmp_path: Path) -> None:
    answer, fake = _run(tmp_path, [[{"text": "first part"}, {"text": "second part"},
                                    {"cost": 0.0123}]])
    assert answer.text == "first part\n\nsecond part" and answer.error is None
    assert answer.cost_usd == pytest.approx(0.0123)
    assert [m["message"]["content"][0]["text"] for m in fake.user_messages()] == ["Q"]


def test_a_failed_api_call_is_explained_never_taken_for_the_answer(tmp_path: Path) -> None:
    failed = [[{"api_error": 401, "message": "invalid x-api-key"}]]
    answer, _ = _run(tmp_path / "client", failed, attach=lambda client: None)
    assert answer.text == "" and answer.error and "credentials" in answer.error
    with pytest.raises(AskFailed, match="credentials"):  # `query()` raises when the CLI exits 1
        _run(tmp_path / "query", failed)


def test_a_cli_that_dies_raises_one_explained_sentence(tmp_path: Path) -> None:
    with pytest.raises(AskFailed) as failed:
        _run(tmp_path, [[{"exit": 3, "stderr": "boom: the CLI fell over"}]])
    assert failed.value.reason and "\n" not in failed.value.reason


def test_the_client_is_handed_over_for_interrupts_and_a_stop_before_sending_sends_nothing(
        tmp_path: Path) -> None:
    seen: list[Any] = []
    answer, fake = _run(tmp_path, [[{"text": "never asked"}]], attach=seen.append,
                        stopped=lambda: True)
    assert answer.text == "" and answer.result is None
    assert fake.user_messages() == []  # connected, then nothing sent
    assert len(seen) == 2 and seen[0] is not None and seen[1] is None


def test_replays_question_goes_on_the_wire_as_before(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    setup = fake_cli(tmp_path / "fake", [[{"text": "a draft"}], [{"error": "overloaded"}]])
    monkeypatch.setenv("MNEMARA_CLI_PATH", FAKE_CLI_PATH)
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    config = Config.defaults().replace(replay_model="claude-haiku-test")
    assert ask(config, "SYSTEM", "the excerpts") == "a draft"
    # flags as the CLI reads them, whether the SDK writes `--flag value` or `--flag=value`
    assert parse_argv(setup.argvs()[0]) == {
        "--output-format": "stream-json", "--verbose": "", "--system-prompt": "SYSTEM",
        "--tools": "", "--max-turns": "1", "--model": "claude-haiku-test",
        "--setting-sources": "", "--input-format": "stream-json"}
    sent = [e["stdin"] for e in setup.log() if "stdin" in e]
    assert [m["type"] for m in sent] == ["control_request", "user"]
    assert sent[1] == {"type": "user", "client_composed": True, "parent_tool_use_id": None,
                       "message": {"role": "user", "content": [{"type": "text", "text": "the excerpts"}]}}
    with pytest.raises(SynthesisFailed, match="^the model could not draft"):
        ask(config, "SYSTEM", "again")
