"""The turn engine through the SDK's real subprocess transport, with the scripted fake CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mnemara.config import Config, ToolPolicy
from mnemara.engine.events import (Notice, PermissionRequest, TextDelta, TextDone, ToolCall,
                                   ToolResult, TurnFinished)
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.drive import run_turn as run
from tests.fakes.fake_cli import fake_cli


class Harness:
    def __init__(self, home: Path, tmp_path: Path) -> None:
        self.home = home
        self.tmp = tmp_path
        self.instance = Instance.named("t")
        self.instance.create()
        self.fake: Any = None
        self.engines: list[TurnEngine] = []

    def engine(self, turns: list[list[dict[str, Any]]], *, unattended: str | None = None,
               **config: Any) -> TurnEngine:
        cfg = self.instance.load_config()
        if config:
            cfg = cfg.replace(**config)
            self.instance.save_config(cfg)
        self.fake = fake_cli(self.tmp / f"fake{len(self.engines)}", turns)
        eng = TurnEngine(self.instance, cli_path=self.fake.cli_path, env=self.fake.env,
                         unattended=unattended)
        self.engines.append(eng)
        return eng

    def sent_blocks(self, n: int = -1) -> list[str]:
        """The content blocks of the n-th user message the CLI received."""
        content = self.fake.user_messages()[n]["message"]["content"]
        return [b["text"] for b in content]


@pytest.fixture
def h(home: Path, tmp_path: Path):
    harness = Harness(home, tmp_path)
    yield harness
    for eng in harness.engines:
        eng.close()




def finished(events: list[Any]) -> TurnFinished:
    assert isinstance(events[-1], TurnFinished)
    return events[-1]


# --- text and streaming ----------------------------------------------------------------------------

async def test_streams_text_and_persists_both_turns(h: Harness) -> None:
    eng = h.engine([[{"text": "Hello there, friend.", "chunks": 3},
                     {"usage": {"input_tokens": 50, "output_tokens": 7,
                                "cache_read_input_tokens": 150, "cache_creation_input_tokens": 0},
                      "cost": 0.0042}]])
    events = await run(eng, "hi")
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 3 and "".join(deltas) == "Hello there, friend."
    assert [e.text for e in events if isinstance(e, TextDone)] == ["Hello there, friend."]
    done = finished(events)
    assert done.status == "complete" and done.error is None
    assert (done.usage.total_input, done.usage.output_tokens) == (200, 7)
    assert done.usage.cache_hit_ratio == pytest.approx(0.75)
    assert done.cost_usd == pytest.approx(0.0042)
    window = eng.store.window()
    assert [(t.role, t.status) for t in window] == [("user", "complete"), ("assistant", "complete")]
    assert window[1].text == "Hello there, friend."
    assert window[1].usage["output_tokens"] == 7 and window[1].cost_usd == pytest.approx(0.0042)
    assert eng.stats.session_cost_usd == pytest.approx(0.0042)


async def test_window_is_one_message_with_a_block_per_turn_and_a_stable_prefix(h: Harness) -> None:
    eng = h.engine([[{"text": f"reply {i}"}] for i in range(3)])
    for i in range(3):
        await run(eng, f"message {i}")
    first, second, third = (h.sent_blocks(i) for i in range(3))
    assert len(first) == 1 and len(second) == 3 and len(third) == 5
    assert second[:1] == first and third[:3] == second  # byte-identical prefix, turn after turn
    stored = [t.rendered for t in eng.store.window()]
    assert third == stored[:5]
    assert "message 2" in third[-1] and third[-1].startswith('<turn id="5" role="user"')
    content = h.fake.user_messages()[2]["message"]["content"]
    assert content[-1]["cache_control"] == {"type": "ephemeral"}  # the history becomes a cache entry
    assert not any("cache_control" in b for b in content[:-1])


async def test_flags_role_doc_tools_and_no_bypass(h: Harness) -> None:
    role = h.home / "role.md"
    role.write_text("You are a terse reviewer.")
    eng = h.engine([[{"text": "ok"}]], role_doc_path=str(role), model="claude-haiku-4-5")
    await run(eng, "hi")
    assert h.fake.flag("--system-prompt") == "You are a terse reviewer."
    assert h.fake.flag("--tools") == "Bash,Read,Write,Edit"
    assert h.fake.flag("--model") == "claude-haiku-4-5"
    assert h.fake.flag("--setting-sources") == ""
    argv = " ".join(h.fake.argvs()[0])
    assert "bypassPermissions" not in argv and "--allowedTools" not in argv
    # the role doc is re-read every turn
    role.write_text("You are now a poet.")
    await run(eng, "again")
    assert h.fake.flag("--system-prompt") == "You are now a poet."


async def test_missing_role_doc_warns_and_the_turn_goes_on(h: Harness) -> None:
    eng = h.engine([[{"text": "still here"}]], role_doc_path=str(h.home / "nope.md"))
    events = await run(eng, "hi")
    warnings = [e for e in events if isinstance(e, Notice) and e.kind == "warning"]
    assert warnings and "nope.md does not exist" in warnings[0].text
    assert finished(events).status == "complete"
    assert h.fake.flag("--system-prompt") == ""
    log = h.instance.debug_log_path.read_text()
    assert "role_doc" in log and "nope.md" in log


# --- tools and permissions -------------------------------------------------------------------------

async def test_in_process_write_memory_writes_the_memory_file(h: Harness) -> None:
    eng = h.engine([[{"tool": "mcp__mnemara__write_memory", "id": "toolu_1",
                      "input": {"text": "the user prefers tabs", "category": "preference"}},
                     {"text": "noted"}]])
    events = await run(eng, "remember: tabs")
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert not result.is_error
    notes = "".join(p.read_text() for p in h.instance.memory_dir.glob("*.md"))
    assert "] preference\nthe user prefers tabs" in notes
    stored = eng.store.window()[-1].blocks
    assert [b["type"] for b in stored] == ["tool_use", "tool_result", "text"]


async def test_ask_answered_n_blocks_and_y_runs(h: Harness) -> None:
    target = h.tmp / "made_by_bash"
    step = {"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "toolu_b"}
    eng = h.engine([[step, {"text": "tried"}], [step, {"text": "tried again"}]])
    events = await run(eng, "make the file", answers="n")
    [req] = [e for e in events if isinstance(e, PermissionRequest)]
    assert req.tool == "Bash" and req.summary == f"Bash: touch {target}"
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "declined" in result.text
    assert not target.exists()
    await run(eng, "ok, do it", answers="y")
    assert target.exists()
    log = [json.loads(line) for line in h.instance.debug_log_path.read_text().splitlines()]
    decisions = [(r["decision"], r["via"]) for r in log if r["event"] == "tool_call"]
    assert ("deny", "user:n") in decisions and ("allow", "user:y") in decisions


async def test_always_persists_an_exact_pattern_and_session_grants_last(h: Harness) -> None:
    cmd = f"touch {h.tmp / 'a'}"
    other = f"touch {h.tmp / 'b'}"
    step = lambda c: {"tool": "Bash", "input": {"command": c}, "id": "toolu_x"}  # noqa: E731
    eng = h.engine([[step(cmd)], [step(cmd)], [step(other)]])
    await run(eng, "one", answers="a")
    perms = json.loads(h.instance.permissions_path.read_text())
    assert any(__import__("re").search(p, cmd) for p in perms["Bash"])
    events = await run(eng, "two")  # same command: no question asked
    assert not [e for e in events if isinstance(e, PermissionRequest)]
    events = await run(eng, "three", answers="s")  # a different command still asks
    assert [e for e in events if isinstance(e, PermissionRequest)]


async def test_deny_policy_never_runs_the_tool(h: Harness) -> None:
    target = h.tmp / "never"
    policies = [ToolPolicy("Bash", "deny"), ToolPolicy("Read", "allow"),
                ToolPolicy("mcp__mnemara__*", "allow")]
    eng = h.engine([[{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "t1"},
                     {"text": "could not"}]], allowed_tools=[p.to_json() for p in policies])
    events = await run(eng, "touch it")
    assert h.fake.flag("--tools") == "Read"  # a denied built-in is not even offered
    assert not [e for e in events if isinstance(e, PermissionRequest)]
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "denied by this instance's policy" in result.text
    assert not target.exists()


async def test_read_outside_home_is_refused_inside_is_allowed(h: Harness) -> None:
    inside = h.home / "notes.txt"
    inside.write_text("inside home")
    eng = h.engine([[{"tool": "Read", "input": {"file_path": "/etc/hostname"}, "id": "r1"},
                     {"tool": "Read", "input": {"file_path": str(inside)}, "id": "r2"}]])
    events = await run(eng, "read both")
    results = {e.tool_use_id: e for e in events if isinstance(e, ToolResult)}
    assert results["r1"].is_error and "outside $HOME" in results["r1"].text
    assert not results["r2"].is_error and "inside home" in results["r2"].text


async def test_bash_timeout_is_clamped_to_the_config(h: Harness) -> None:
    eng = h.engine([[{"tool": "Bash", "input": {"command": "true", "timeout": 900000}, "id": "t"}]],
                   bash_timeout_seconds=5)
    await run(eng, "run", answers="y")
    answers = [r["response"] for r in h.fake.control_responses()
               if r["request"].get("subtype") == "can_use_tool"]
    assert answers[-1]["response"]["updatedInput"]["timeout"] == 5000


async def test_unattended_mode_denies_ask_tools(h: Harness) -> None:
    target = h.tmp / "unattended"
    eng = h.engine([[{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "t"}]],
                   unattended="deny")
    events = await run(eng, "go")
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "--yes" in result.text and not target.exists()


# --- failures --------------------------------------------------------------------------------------

async def test_failed_turn_is_marked_and_never_resent_then_retry_resends(h: Harness) -> None:
    eng = h.engine([[{"api_error": 401, "message": "Invalid API key"}],
                    [{"text": "second answer"}],
                    [{"text": "retried answer"}]])
    events = await run(eng, "first question")
    done = finished(events)
    assert done.status == "failed"
    assert done.error.startswith("no Anthropic credentials") and "ANTHROPIC_API_KEY" in done.error
    assert eng.store.get(done.user_turn_id).status == "failed"
    # the CLI's own "Invalid API key" message is the reason, not a reply from the model
    assert not [e for e in events if isinstance(e, (TextDelta, TextDone))]
    assert done.assistant_turn_id is None and eng.store.count() == 1
    await run(eng, "second question")
    assert not any("first question" in b for b in h.sent_blocks())
    assert eng.last_failed() is None  # the newest user turn succeeded
    # make the first one retryable again: a new failure, then /retry
    eng2 = h.engine([[{"error": "boom"}], [{"text": "fine now"}]])
    eng.close()
    events = await run(eng2, "third question")
    assert finished(events).status == "failed"
    retried = [e async for e in eng2.retry()]
    assert finished(retried).status == "complete"
    assert "third question" in h.sent_blocks()[-1]
    failed = [t.text for t in eng2.store.window() if t.status == "failed"]
    assert "third question" not in failed  # the retried row went to the archive
    assert {hit.source for hit in eng2.store.search("third question")} == {"window", "archive"}


@pytest.mark.parametrize("step, expected", [
    ({"exit": 1, "stderr": "Error: connect ECONNREFUSED 127.0.0.1:443"}, "cannot reach the Anthropic API"),
    ({"api_error": 429, "message": "rate limited"}, "rate limited"),
    ({"api_error": 529, "message": "Overloaded"}, "overloaded"),
    ({"error": "the tool exploded"}, "the tool exploded"),
])
async def test_failures_are_one_clear_sentence(h: Harness, step: dict, expected: str) -> None:
    eng = h.engine([[step]])
    done = finished(await run(eng, "hi"))
    assert done.status == "failed" and expected in done.error
    assert "Check stderr" not in done.error and "\n" not in done.error


async def test_cli_not_found(h: Harness) -> None:
    eng = TurnEngine(h.instance, cli_path=str(h.tmp / "no-such-claude"))
    h.engines.append(eng)
    done = finished(await run(eng, "hi"))
    assert done.status == "failed" and "Claude Code CLI was not found" in done.error
    assert eng.store.window()[-1].status == "failed"


async def test_interrupt_keeps_the_partial_reply(h: Harness) -> None:
    eng = h.engine([[{"text": "partial answer", "chunks": 1}, {"sleep": 20}, {"text": "never"}]])
    events: list[Any] = []
    async for event in eng.run("long task"):
        events.append(event)
        if isinstance(event, TextDone):
            await eng.interrupt()
    done = finished(events)
    assert done.status == "interrupted"
    assert done.duration_ms < 15000
    assistant = eng.store.window()[-1]
    assert assistant.status == "interrupted" and "partial answer" in assistant.text
    assert "never" not in assistant.text


async def test_stale_pending_turn_from_a_dead_process_is_not_resent(h: Harness) -> None:
    from mnemara.store import TurnStore
    with TurnStore(h.instance.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": "orphaned"}], status="pending")
    eng = h.engine([[{"text": "ok"}]])
    assert eng.startup_notices and "left unfinished" in eng.startup_notices[0].text
    await run(eng, "fresh")
    assert not any("orphaned" in b for b in h.sent_blocks())


# --- budget ----------------------------------------------------------------------------------------

async def test_budget_is_enforced_before_the_request_in_one_chunk(h: Harness) -> None:
    eng = h.engine([[{"text": f"r{i}"}] for i in range(7)], max_window_turns=10)
    notices: list[Notice] = []
    sizes = []
    for i in range(7):
        events = await run(eng, f"m{i}")
        notices += [e for e in events if isinstance(e, Notice) and e.kind == "eviction"]
        sizes.append((len(h.sent_blocks()), eng.store.count()))
    assert max(rows for _, rows in sizes) <= 10  # the window never exceeds the budget
    assert max(sent for sent, _ in sizes) <= 9  # nor does a request (its reply still to come)
    # one chunk down to 75% (7 rows with the new exchange), not one row per turn
    assert len(notices) == 1 and "5 turns archived" in notices[0].text
    assert notices[0].data["ids"] == [1, 2, 3, 4, 5]
    assert eng.store.archived_count() == 5
    assert eng.stats.archived_this_session == eng.store.archived_count()


async def test_tool_results_are_kept_in_history_and_truncated_with_a_marker(h: Harness) -> None:
    big = "x" * 5000
    eng = h.engine([[{"tool": "mcp__mnemara__list_window", "input": {}, "id": "l1", "result": big},
                     {"text": "done"}], [{"text": "next"}]], tool_result_max_chars=1000)
    await run(eng, "list")
    await run(eng, "and then?")
    history = h.sent_blocks()[1]
    assert '<tool_call name="mcp__mnemara__list_window"' in history
    assert "x" * 1000 in history and "x" * 1001 not in history
    assert "truncated: 4,000 more characters" in history


async def test_thinking_is_stored_but_never_resent(h: Harness) -> None:
    eng = h.engine([[{"thinking": "secret chain of thought"}, {"text": "answer"}], [{"text": "b"}]])
    await run(eng, "q1")
    await run(eng, "q2")
    assert any(b["type"] == "thinking" for b in eng.store.window()[1].blocks)
    assert not any("secret chain" in b for b in h.sent_blocks())


async def test_model_tools_notices_reach_the_front_end(h: Harness) -> None:
    eng = h.engine([[{"text": "a"}], [{"text": "b"}],
                    [{"tool": "mcp__mnemara__evict_turns", "input": {"ids": [1, 2]}, "id": "e"}]])
    await run(eng, "one")
    await run(eng, "two")
    events = await run(eng, "evict the first exchange")
    assert any(isinstance(e, Notice) and e.kind == "eviction" for e in events)
    assert [t.id for t in eng.store.window()][:1] == [3]
    assert eng.store.archived_count() == 2


def test_config_for_engine_defaults_offer_only_four_builtins() -> None:
    from mnemara.engine.turn import builtin_tools
    assert builtin_tools(Config.defaults()) == ["Bash", "Read", "Write", "Edit"]


async def test_api_retries_are_visible_notices(h: Harness) -> None:
    eng = h.engine([[{"api_retry": {"attempt": 1, "max_retries": 10, "retry_delay_ms": 1500,
                                    "error_status": 529}},
                     {"text": "made it"}]])
    events = await run(eng, "hi")
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.kind == "warning"
    assert notice.text == ("the API call failed (HTTP 529); retrying in 1.5 s (attempt 1 of 10); "
                           "Ctrl+C stops")
    assert finished(events).status == "complete"


async def test_real_usage_calibrates_the_estimate(h: Harness) -> None:
    eng = h.engine([[{"text": "ok"}]])
    for i in range(6):
        eng.store.add_turn("user", [{"type": "text", "text": f"{i} " + "word " * 1200}])
    before_ratio, before_tokens = eng.store.estimator.chars_per_token, eng.store.window_tokens()
    await run(eng, "go on")
    sent_chars = sum(len(b) for b in h.sent_blocks())
    assert sent_chars >= 20_000
    # the fake CLI reports ~140 input tokens for the first API call: far fewer than estimated, so
    # the ratio moves up (bounded by the clamp and the moving average) and every row is re-estimated
    assert eng.store.estimator.chars_per_token > before_ratio
    assert eng.store.window_tokens() < before_tokens
    from mnemara.store import TurnStore
    with TurnStore(h.instance.turns_path) as again:  # persisted for the next session
        assert again.estimator.chars_per_token == eng.store.estimator.chars_per_token


async def test_interrupt_before_the_cli_is_up_still_stops_the_turn(h: Harness) -> None:
    eng = h.engine([[{"text": "should never be asked"}]])
    turn = eng.run("hi")
    first = asyncio.ensure_future(turn.__anext__())
    await asyncio.sleep(0)  # the turn has started but the CLI is not connected yet
    await eng.interrupt()
    events = [await first] + [e async for e in turn]
    done = finished(events)
    assert done.status == "interrupted" and not eng.busy
    assert h.fake.user_messages() == []  # nothing was sent


async def test_session_grant_survives_a_config_change(h: Harness) -> None:
    step = lambda n: {"tool": "Bash", "input": {"command": f"touch {h.tmp / n}"}, "id": n}  # noqa: E731
    eng = h.engine([[step("one")], [step("two")]])
    await run(eng, "first", answers="s")
    eng.set_config(eng.config.replace(model="claude-haiku-4-5"))  # as /swap does
    events = await run(eng, "second")
    assert not [e for e in events if isinstance(e, PermissionRequest)]
    assert (h.tmp / "two").exists()
