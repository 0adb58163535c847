"""End to end, with the REAL bundled Claude Code CLI: a dead API endpoint fails fast with every
retry shown (issue 10, hole 8), and what `show --prompt` says the CLI adds on its own is what
the CLI really sends (hole 9).
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.prompt import CLI_IDENTITY, cli_additions
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.drive import run_turn as run
from tests.fakes.fake_api import FakeMessagesAPI, real_cli_env, system_text

pytestmark = pytest.mark.e2e


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with FakeMessagesAPI() as api:
        env = real_cli_env(tmp_path, api)
        home = Path(env["HOME"])
        work = home / "work"
        work.mkdir()
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("MNEMARA_HOME", str(home / ".mnemara"))
        monkeypatch.delenv("MNEMARA_CLI_PATH", raising=False)
        inst = Instance.named("faults")
        inst.create()
        inst.save_config(inst.load_config().replace(cwd=str(work), rag_enabled=False))
        engines: list[TurnEngine] = []

        def make(env_changes: dict[str, str] | None = None, **kwargs: Any) -> TurnEngine:
            engine = TurnEngine(inst, env={**env, **(env_changes or {})}, **kwargs)
            engines.append(engine)
            return engine

        yield inst, make, api, work
        for engine in engines:
            engine.close()


async def test_a_dead_endpoint_fails_fast_showing_each_retry(setup) -> None:
    inst, make, _, _ = setup
    engine = make({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"})
    started = time.monotonic()
    events = await run(engine, "hello")
    elapsed = time.monotonic() - started
    retries = [e.text for e in events if isinstance(e, Notice) and "retrying" in e.text]
    assert [f"(attempt {n} of 5)" in text for n, text in enumerate(retries, 1)] == [True] * 5
    assert all("no response: network or proxy problem?" in text for text in retries)
    done = events[-1]
    assert isinstance(done, TurnFinished) and done.status == "failed"
    assert done.error.startswith("cannot reach the Anthropic API (network error)")
    assert done.error.endswith("then /retry (gave up after 5 retries: max_api_retries)")
    # The CLI's own default (10 retries) took ~3 minutes; 5 take ~20 s. A generous guard:
    assert elapsed < 60, f"took {elapsed:.0f} s"
    assert [t.status for t in engine.store.window()] == ["failed"]


async def test_in_ask_the_dead_endpoint_hint_says_run_it_again(setup) -> None:
    inst, make, _, _ = setup
    inst.save_config(inst.load_config().replace(max_api_retries=1))
    engine = make({"ANTHROPIC_BASE_URL": f"http://127.0.0.1:{closed_port()}"}, front_end="ask")
    events = await run(engine, "hello")
    retries = [e for e in events if isinstance(e, Notice) and "retrying" in e.text]
    assert len(retries) == 1 and "(attempt 1 of 1)" in retries[0].text
    done = events[-1]
    assert done.status == "failed" and "/retry" not in done.error
    assert done.error.endswith("then run the command again (gave up after 1 retry: max_api_retries)")


async def test_what_show_prompt_says_the_cli_adds_is_on_the_wire(setup) -> None:
    inst, make, api, work = setup
    engine = make()
    done = (await run(engine, "hello"))[-1]
    assert done.status == "complete", done.error
    body = api.requests[0]
    cfg = inst.load_config()
    listed = dict(cli_additions(model=cfg.model, cwd=str(work), offered_tools=["Bash", "Read"],
                                today="2026-01-01"))
    # the identity line: listed, and in `system` right before our (empty) system prompt
    assert listed["system, before the role doc"] == CLI_IDENTITY
    assert CLI_IDENTITY in system_text(body)
    assert any("x-anthropic-billing-header" in b.get("text", "") for b in body["system"])
    # the attribution reminder (Bash is offered by default), before the window's blocks
    first = body["messages"][0]["content"]
    assert "attribution" in listed["user message, before the window's blocks"]
    assert any("<system-reminder>" in b["text"] and "Attribution" in b["text"] for b in first)
    # the environment message after ours: the working directory and the model id, as listed
    env_msg = next(m for m in body["messages"] if m["role"] == "system")
    env_text = json.dumps(env_msg["content"])
    assert "# Environment" in env_text and str(work) in env_text and cfg.model in env_text
    described = listed["a system message after your message"]
    assert "# Environment" in described and str(work) in described and cfg.model in described
