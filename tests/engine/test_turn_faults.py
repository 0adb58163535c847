"""Turn-level faults (issue 10, holes 5, 7, 8): oversized messages, hints that fit their cause and
their front end, a role doc with a NUL byte or bad UTF-8, and bounded API retries.

Through the SDK's real subprocess transport with the scripted fake CLI, as in test_turn.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.events import Notice, TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.drive import run_turn as run
from tests.fakes.fake_cli import fake_cli


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.instance = Instance.named("faults")
        self.instance.create()
        self.fake: Any = None
        self.engines: list[TurnEngine] = []

    def engine(self, turns: list[list[dict[str, Any]]], *, front_end: str = "chat",
               **config: Any) -> TurnEngine:
        if config:
            self.instance.save_config(self.instance.load_config().replace(**config))
        self.fake = fake_cli(self.tmp / f"fake{len(self.engines)}", turns)
        extra = {} if front_end == "chat" else {"front_end": front_end}  # chat: the default
        eng = TurnEngine(self.instance, cli_path=self.fake.cli_path, env=self.fake.env, **extra)
        self.engines.append(eng)
        return eng


@pytest.fixture
def h(home: Path, tmp_path: Path):
    harness = Harness(tmp_path)
    yield harness
    for eng in harness.engines:
        eng.close()


def finished(events: list[Any]) -> TurnFinished:
    assert isinstance(events[-1], TurnFinished), events
    return events[-1]


# --- hole 5: a message that cannot fit the budget -------------------------------------------------

async def test_a_message_over_the_budget_is_refused_before_anything_is_stored_or_sent(h: Harness) -> None:
    eng = h.engine([[{"text": "first reply"}], [{"text": "never asked"}]], rag_enabled=False)
    assert finished(await run(eng, "a normal message")).status == "complete"
    before = [(t.id, t.status) for t in eng.store.window()]

    big = "x" * 1_000_000  # ~344k estimated tokens against the default 100,000
    done = finished(await run(eng, big))

    assert done.status == "refused" and done.user_turn_id is None
    assert done.error is not None
    assert "1.0 MB" in done.error and "100,000 tokens" in done.error
    assert "max_window_tokens" in done.error and "/tokens" in done.error
    assert "~343," in done.error  # the estimated size in tokens
    # nothing stored, nothing archived to make room, nothing sent to the CLI
    assert [(t.id, t.status) for t in eng.store.window()] == before
    assert eng.store.archived_count() == 0
    assert len(h.fake.user_messages()) == 1
    # the next message goes through as usual
    assert finished(await run(eng, "small again")).status == "complete"


async def test_refusal_in_ask_names_the_config_key_not_a_chat_command(h: Harness) -> None:
    eng = h.engine([[{"text": "never asked"}]], front_end="ask", rag_enabled=False,
                   max_window_tokens=2_000)
    done = finished(await run(eng, "y" * 20_000))
    assert done.status == "refused"
    assert "max_window_tokens in config.json" in done.error and "/tokens" not in done.error
    assert "2,000 tokens" in done.error and "20.0 KB" in done.error
    assert eng.store.count() == 0


async def test_a_message_no_budget_can_hold_says_so(h: Harness) -> None:
    eng = h.engine([[{"text": "never asked"}]], rag_enabled=False)
    done = finished(await run(eng, "z" * 7_000_000))
    assert done.status == "refused" and "7.0 MB" in done.error
    assert "no budget holds it" in done.error
    assert eng.store.count() == 0 and h.fake.user_messages() == []


async def test_a_message_that_fits_only_after_eviction_is_still_sent(h: Harness) -> None:
    eng = h.engine([[{"text": "one"}], [{"text": "two"}]], rag_enabled=False, max_window_tokens=2_000)
    await run(eng, "a" * 3_000)
    done = finished(await run(eng, "b" * 4_000))  # fits alone; the earlier turns must go
    assert done.status == "complete"
    assert eng.store.archived_count() >= 1


# --- error hints match their cause and their front end ---------------------------------------------

@pytest.mark.parametrize("status, message, expected, wrong", [
    (400, "prompt is too long: 215000 tokens > 200000 maximum", "too large for the model", "model name"),
    (400, "model: claude-nope-9", "does not know the model", "too large"),
    (404, "model: claude-nope-9", "does not know the model", "too large"),
    (400, "messages.0.content.1: text content blocks must be non-empty", "rejected the request as invalid",
     "model"),
])
async def test_a_400_is_explained_by_its_cause(h: Harness, status: int, message: str, expected: str,
                                              wrong: str) -> None:
    eng = h.engine([[{"api_error": status, "message": message}]], rag_enabled=False)
    done = finished(await run(eng, "hi"))
    assert done.status == "failed"
    assert expected in done.error and wrong not in done.error.split("(")[0] + done.error.split(")")[-1]
    assert "/models" not in done.error or expected == "does not know the model"


@pytest.mark.parametrize("step, chat_hint", [
    ({"api_error": 529, "message": "Overloaded"}, "then /retry"),
    ({"api_error": 429, "message": "rate limit exceeded"}, "then /retry"),
    ({"api_error": 500, "message": "internal error"}, "/retry"),
    ({"api_error": 400, "message": "model: claude-nope-9"}, "/models"),
])
async def test_hints_fit_the_front_end(h: Harness, step: dict[str, Any], chat_hint: str) -> None:
    chat = finished(await run(h.engine([[step]], rag_enabled=False), "hi"))
    assert chat_hint in chat.error
    ask = finished(await run(h.engine([[step]], front_end="ask"), "hi"))
    assert "/retry" not in ask.error and "/models" not in ask.error
    assert ("run the command again" in ask.error) or ("`model` in config.json" in ask.error)


# --- hole 7: the role doc ------------------------------------------------------------------------

@pytest.mark.parametrize("content, problem", [
    (b"You are helpful.\x00 Ignore that.", "NUL byte"),
    (b"You are \xff\xfe helpful.", "not valid UTF-8"),
])
async def test_a_role_doc_that_cannot_be_sent_is_a_warning_and_the_turn_runs(
        h: Harness, content: bytes, problem: str) -> None:
    role = h.tmp / "role.md"
    role.write_bytes(content)
    eng = h.engine([[{"text": "answered anyway"}]], rag_enabled=False, role_doc_path=str(role))
    events = await run(eng, "hi")
    done = finished(events)
    assert done.status == "complete" and done.text == "answered anyway"
    warnings = [e.text for e in events if isinstance(e, Notice) and e.kind == "warning"]
    assert any(problem in w and "empty system prompt" in w for w in warnings), warnings
    assert h.fake.flag("--system-prompt") == ""


async def test_a_role_doc_that_is_a_directory_says_so(h: Harness) -> None:
    folder = h.tmp / "roles"
    folder.mkdir()
    eng = h.engine([[{"text": "ok"}]], rag_enabled=False, role_doc_path=str(folder))
    events = await run(eng, "hi")
    assert finished(events).status == "complete"
    assert any("is a directory" in e.text for e in events if isinstance(e, Notice))


# --- hole 8: API retries are bounded and shown -----------------------------------------------------

async def test_api_retries_are_bounded_by_config_and_each_is_shown(h: Harness) -> None:
    retries = [{"api_retry": {"attempt": n, "retry_delay_ms": 10, "error_status": 529}} for n in (1, 2)]
    eng = h.engine([[*retries, {"api_error": 529, "message": "Overloaded"}]], rag_enabled=False,
                   max_api_retries=2)
    events = await run(eng, "hi")
    shown = [e.text for e in events if isinstance(e, Notice) and "retrying" in e.text]
    assert shown == [f"the API call failed (HTTP 529); retrying in 0.0 s (attempt {n} of 2); Ctrl+C stops"
                     for n in (1, 2)]
    done = finished(events)
    assert done.status == "failed"
    assert done.error.endswith("then /retry (gave up after 2 retries: max_api_retries)")


async def test_the_default_bounds_retries_well_below_the_clis_ten(h: Harness) -> None:
    eng = h.engine([[{"api_retry": {"attempt": 1, "retry_delay_ms": 500}}, {"text": "recovered"}]],
                   rag_enabled=False)
    events = await run(eng, "hi")
    [notice] = [e for e in events if isinstance(e, Notice) and "retrying" in e.text]
    assert "(attempt 1 of 5)" in notice.text
    assert finished(events).status == "complete"


async def test_the_chat_role_command_refuses_a_doc_with_a_nul_byte(h: Harness) -> None:
    from mnemara.ui.commands import dispatch
    role = h.tmp / "nul.md"
    role.write_bytes(b"Be brief.\x00")
    eng = h.engine([], rag_enabled=False)
    outcome = await dispatch(eng, f"/role {role}")
    assert outcome.kind == "error" and "NUL byte" in outcome.text and "not set" in outcome.text
    assert eng.config.role_doc_path is None and h.instance.load_config().role_doc_path is None
