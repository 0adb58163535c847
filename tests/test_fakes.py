"""Prove that both test doubles work with the real claude-agent-sdk.

* ``tests/fakes/fake_cli.py``: a scripted fake of the Claude Code CLI (``cli_path=``).
* ``tests/fakes/fake_api.py``: a fake Anthropic Messages API for the REAL bundled CLI
  (tests marked ``e2e``; each spawns the ~380 MiB bundled CLI and takes about a second).

Every test is bounded by ``asyncio.timeout`` so a protocol bug fails instead of hanging.

What these tests pin down about the SDK and the real CLI (claude-agent-sdk 0.2.189,
bundled CLI 2.1.332), and the fake CLI imitates:

* An error *result* (``is_error: true``: error_during_execution, error_max_turns, an API
  error, an interrupt) is first yielded as a ``ResultMessage``; the CLI stays up, and at
  stdin EOF exits 1 if the LAST result was an error (0 otherwise). With ``query()`` that
  exit surfaces right after the ResultMessage as ``ResultError`` (a ``ProcessError``
  subclass carrying ``subtype``, ``errors``, ``api_error_status``, ``result``...). With
  ``ClaudeSDKClient`` nothing is raised: ``disconnect()`` stops reading before the exit.
* A bad API key does not crash the real CLI: it yields an ``AssistantMessage`` with
  ``error == "authentication_failed"`` (model ``<synthetic>``) and a result with
  ``subtype == "success"``, ``is_error`` true and ``api_error_status == 401``; then
  ``query()`` raises ``ResultError`` as above.
* A CLI that dies (non-zero exit, no result) makes the SDK raise ``ProcessError`` with
  ``exit_code`` set; its ``stderr`` attribute is only the placeholder "Check stderr output
  for details": the real stderr text reaches ``ClaudeAgentOptions(stderr=callback)`` only.
* An interrupt: ``interrupt()`` returns once the CLI acks; the turn then ends with a
  ``UserMessage`` "[Request interrupted by user]" and a ``ResultMessage`` with subtype
  ``error_during_execution``, ``is_error`` true, zero usage.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

import claude_agent_sdk
import pytest
from claude_agent_sdk import (
    AssistantMessage,
    ClaudeAgentOptions,
    ClaudeSDKClient,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ProcessError,
    ResultError,
    ResultMessage,
    StreamEvent,
    SystemMessage,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
    create_sdk_mcp_server,
    query,
    tool,
)

try:  # importable as tests.fakes when the repo root is on sys.path ...
    from tests.fakes.fake_api import FakeMessagesAPI, offered_tool_names, real_cli_env, system_text
    from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli, prompt_stream
except ImportError:  # ... else as fakes (pytest puts tests/ itself on sys.path)
    from fakes.fake_api import FakeMessagesAPI, offered_tool_names, real_cli_env, system_text
    from fakes.fake_cli import FAKE_CLI_PATH, fake_cli, prompt_stream

BUNDLED_CLI = Path(claude_agent_sdk.__file__).parent / "_bundled" / "claude"
TIMEOUT = 60  # seconds; every test finishes far sooner

# Real-CLI tests: marked e2e (registered elsewhere) and skipped without the bundled CLI.
needs_real_cli = pytest.mark.skipif(
    not BUNDLED_CLI.exists(), reason="bundled Claude Code CLI not installed"
)


# ----------------------------------------------------------------------------- helpers


async def collect(prompt: Any, options: ClaudeAgentOptions) -> list[Any]:
    """Run one ``query()`` to the end and return every message it yielded."""
    async with asyncio.timeout(TIMEOUT):
        return [m async for m in query(prompt=prompt, options=options)]


async def collect_until_error(
    prompt: Any, options: ClaudeAgentOptions
) -> tuple[list[Any], Exception]:
    """Run one ``query()`` that must end in an exception; return (messages, exception)."""
    messages: list[Any] = []
    async with asyncio.timeout(TIMEOUT):
        try:
            async for message in query(prompt=prompt, options=options):
                messages.append(message)
        except Exception as e:  # noqa: BLE001 - the caller asserts the type
            return messages, e
    raise AssertionError(f"query() ended without an exception: {messages}")


def only(messages: list[Any], kind: type) -> list[Any]:
    return [m for m in messages if isinstance(m, kind)]


def blocks(messages: list[Any], kind: type) -> list[Any]:
    """Content blocks of one type across assistant and user messages."""
    out = []
    for m in messages:
        if isinstance(m, (AssistantMessage, UserMessage)) and isinstance(m.content, list):
            out.extend(b for b in m.content if isinstance(b, kind))
    return out


def the_result(messages: list[Any]) -> ResultMessage:
    results = only(messages, ResultMessage)
    assert len(results) == 1, messages
    return results[0]


def make_calc_server(calls: list[dict[str, Any]]):
    """An in-process MCP server with one tool, ``mcp__calc__add``, recording its calls."""

    @tool("add", "Add two integers", {"a": int, "b": int})
    async def add(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"content": [{"type": "text", "text": str(args["a"] + args["b"])}]}

    return create_sdk_mcp_server("calc", tools=[add])


def calc_options(cli: Any, calls: list[dict[str, Any]], can_use_tool: Any) -> ClaudeAgentOptions:
    """Options for the fake CLI with only the in-process calc server and a permission callback."""
    return ClaudeAgentOptions(cli_path=cli.cli_path, env=cli.env, tools=[],
                              mcp_servers={"calc": make_calc_server(calls)},
                              can_use_tool=can_use_tool, setting_sources=[])


def assert_interrupted_turn(turn: list[Any]) -> ResultMessage:
    """The shape of an interrupted turn, shared by the fake and the real CLI."""
    texts = [b.text for b in blocks(only(turn, UserMessage), TextBlock)]
    assert "[Request interrupted by user]" in texts
    result = turn[-1]
    assert isinstance(result, ResultMessage)
    assert result.subtype == "error_during_execution"
    assert result.is_error is True
    assert result.usage is not None and result.usage["output_tokens"] == 0
    return result


# ============================================================================= fake CLI


@pytest.mark.asyncio
async def test_fake_cli_streams_text_and_reports_usage(tmp_path: Path) -> None:
    usage = {
        "input_tokens": 1200,
        "output_tokens": 34,
        "cache_creation_input_tokens": 500,
        "cache_read_input_tokens": 7000,
    }
    cli = fake_cli(
        tmp_path,
        [
            [
                {"thinking": "hmm"},
                {"text": "Hello there, world", "chunks": 3},
                {"usage": usage, "cost": 0.0123},
            ]
        ],
    )
    options = ClaudeAgentOptions(
        cli_path=cli.cli_path,
        env=cli.env,
        system_prompt="You are mnemara.",
        tools=["Read"],
        model="claude-test-model",
        include_partial_messages=True,
        setting_sources=[],
    )
    content = [{"type": "text", "text": "window block"}, {"type": "text", "text": "the question"}]
    messages = await collect(prompt_stream(content), options)

    init = only(messages, SystemMessage)[0]
    assert init.subtype == "init"
    assert init.data["tools"] == ["Read"] and init.data["model"] == "claude-test-model"

    deltas = [
        m.event["delta"]["text"]
        for m in only(messages, StreamEvent)
        if m.event["type"] == "content_block_delta" and m.event["delta"]["type"] == "text_delta"
    ]
    assert len(deltas) == 3 and "".join(deltas) == "Hello there, world"
    events = [m.event["type"] for m in only(messages, StreamEvent)]
    assert events[0] == "message_start" and events[-1] == "message_stop"

    assert [b.thinking for b in blocks(messages, ThinkingBlock)] == ["hmm"]
    assert blocks(messages, ThinkingBlock)[0].signature
    assert [b.text for b in blocks(messages, TextBlock)] == ["Hello there, world"]
    # thinking and text came from one model step: same message id
    assert len({m.message_id for m in only(messages, AssistantMessage)}) == 1

    result = the_result(messages)
    assert (result.subtype, result.is_error, result.result) == (
        "success",
        False,
        "Hello there, world",
    )
    assert result.usage == usage and result.total_cost_usd == 0.0123
    assert result.num_turns == 1 and result.permission_denials == []

    # What the SDK sent the CLI: flags and the user message's content blocks.
    assert cli.flag("--system-prompt") == "You are mnemara."
    assert cli.flag("--tools") == "Read"
    assert cli.flag("--model") == "claude-test-model"
    assert cli.flag("--include-partial-messages") == ""
    assert [m["message"]["content"] for m in cli.user_messages()] == [content]
    assert cli.stdin_messages("control_request")[0]["request"]["subtype"] == "initialize"


@pytest.mark.asyncio
async def test_fake_cli_sdk_mcp_tool_allowed_with_updated_input(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    asked: list[tuple[str, dict[str, Any]]] = []

    async def can_use_tool(
        name: str, tool_input: dict[str, Any], ctx: Any
    ) -> PermissionResultAllow:
        asked.append((name, tool_input))
        return PermissionResultAllow(updated_input={**tool_input, "b": 40})

    cli = fake_cli(
        tmp_path,
        [
            [
                {"tool": "mcp__calc__add", "input": {"a": 2, "b": 3}, "id": "toolu_1"},
                {"text": "42 it is"},
            ]
        ],
    )
    options = calc_options(cli, calls, can_use_tool)
    messages = await collect(prompt_stream("add 2 and 3"), options)

    init = only(messages, SystemMessage)[0]
    assert init.data["tools"] == ["mcp__calc__add"]
    assert init.data["mcp_servers"] == [{"name": "calc", "status": "connected"}]
    assert asked == [("mcp__calc__add", {"a": 2, "b": 3})]
    assert calls == [{"a": 2, "b": 40}]  # the tool ran with the updated input
    uses = blocks(messages, ToolUseBlock)
    assert [(u.id, u.name) for u in uses] == [("toolu_1", "mcp__calc__add")]
    (tool_result,) = blocks(messages, ToolResultBlock)
    assert tool_result.tool_use_id == "toolu_1"
    assert tool_result.content == [{"type": "text", "text": "42"}] and not tool_result.is_error
    result = the_result(messages)
    assert result.num_turns == 2 and result.permission_denials == [] and result.result == "42 it is"
    # default usage: summed over the two model steps
    assert result.usage["input_tokens"] == 200 and result.usage["cache_read_input_tokens"] == 60

    # The JSON-RPC the fake exchanged with the in-process server.
    methods = [
        pair["request"]["message"]["method"]
        for pair in cli.control_responses()
        if pair["request"]["subtype"] == "mcp_message"
    ]
    assert methods == ["initialize", "notifications/initialized", "tools/list", "tools/call"]
    assert cli.flag("--permission-prompt-tool") == "stdio"


@pytest.mark.asyncio
async def test_fake_cli_can_use_tool_deny_never_runs_the_tool(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    async def deny(name: str, tool_input: dict[str, Any], ctx: Any) -> PermissionResultDeny:
        return PermissionResultDeny(message="not allowed here")

    cli = fake_cli(
        tmp_path,
        [
            [
                {"tool": "mcp__calc__add", "input": {"a": 1, "b": 1}, "id": "toolu_d"},
                {"text": "ok, I won't"},
            ]
        ],
    )
    options = calc_options(cli, calls, deny)
    messages = await collect(prompt_stream("add"), options)

    assert calls == []
    (tool_result,) = blocks(messages, ToolResultBlock)
    assert tool_result.is_error is True and tool_result.content == "not allowed here"
    result = the_result(messages)
    assert result.permission_denials == [
        {"tool_name": "mcp__calc__add", "tool_use_id": "toolu_d", "tool_input": {"a": 1, "b": 1}}
    ]
    assert result.is_error is False  # a denial is not a failed turn


@pytest.mark.asyncio
async def test_fake_cli_bash_runs_when_allowed(tmp_path: Path) -> None:
    marker = tmp_path / "made"

    async def allow(name: str, tool_input: dict[str, Any], ctx: Any) -> PermissionResultAllow:
        return PermissionResultAllow()

    cli = fake_cli(
        tmp_path,
        [[{"tool": "Bash", "input": {"command": f"echo out; touch {marker}"}}, {"text": "done"}]],
    )
    options = ClaudeAgentOptions(
        cli_path=cli.cli_path, env=cli.env, tools=["Bash"], can_use_tool=allow, setting_sources=[]
    )
    messages = await collect(prompt_stream("make it"), options)

    assert marker.exists()
    (tool_result,) = blocks(messages, ToolResultBlock)
    assert tool_result.content == "out" and not tool_result.is_error


@pytest.mark.asyncio
async def test_fake_cli_pretooluse_hook_deny(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hook_inputs: list[dict[str, Any]] = []
    asked: list[str] = []

    async def guard(
        hook_input: dict[str, Any], tool_use_id: str | None, ctx: Any
    ) -> dict[str, Any]:
        hook_inputs.append(hook_input)
        return {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": "hook says no",
            }
        }

    async def allow(name: str, tool_input: dict[str, Any], ctx: Any) -> PermissionResultAllow:
        asked.append(name)
        return PermissionResultAllow()

    cli = fake_cli(
        tmp_path,
        [
            [
                {"tool": "Bash", "input": {"command": f"touch {marker}"}, "id": "toolu_h"},
                {"text": "blocked"},
            ]
        ],
    )
    options = ClaudeAgentOptions(
        cli_path=cli.cli_path,
        env=cli.env,
        tools=["Bash"],
        can_use_tool=allow,
        hooks={"PreToolUse": [HookMatcher(matcher="Bash", hooks=[guard])]},
        setting_sources=[],
    )
    messages = await collect(prompt_stream("touch it"), options)

    assert not marker.exists()
    assert asked == []  # a hook's deny wins before the permission prompt
    (hook_input,) = hook_inputs
    assert hook_input["hook_event_name"] == "PreToolUse"
    assert hook_input["tool_name"] == "Bash"
    assert hook_input["tool_input"] == {"command": f"touch {marker}"}
    assert hook_input["tool_use_id"] == "toolu_h"
    (tool_result,) = blocks(messages, ToolResultBlock)
    assert tool_result.is_error is True
    assert tool_result.content == "PreToolUse:Bash hook error: hook says no"  # real CLI's wording
    assert the_result(messages).permission_denials[0]["tool_name"] == "Bash"


@pytest.mark.asyncio
async def test_fake_cli_error_result_then_result_error(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, [[{"text": "starting"}, {"error": "something broke"}]])
    options = ClaudeAgentOptions(cli_path=cli.cli_path, env=cli.env, setting_sources=[])
    messages, error = await collect_until_error(prompt_stream("go"), options)

    # The ResultMessage arrives first ...
    result = the_result(messages)
    assert (result.subtype, result.is_error) == ("error_during_execution", True)
    assert result.errors == ["something broke"]
    # ... then the CLI's exit 1 at EOF becomes a ResultError carrying the same payload.
    assert isinstance(error, ResultError)
    assert error.subtype == "error_during_execution" and error.errors == ["something broke"]
    assert error.exit_code == 1


@pytest.mark.asyncio
async def test_fake_cli_api_error_like_a_bad_api_key(tmp_path: Path) -> None:
    cli = fake_cli(tmp_path, [[{"api_error": 401}]])
    options = ClaudeAgentOptions(cli_path=cli.cli_path, env=cli.env, setting_sources=[])
    messages, error = await collect_until_error(prompt_stream("hi"), options)

    (assistant,) = only(messages, AssistantMessage)
    assert assistant.error == "authentication_failed" and assistant.model == "<synthetic>"
    result = the_result(messages)
    assert (result.subtype, result.is_error, result.api_error_status) == ("success", True, 401)
    assert isinstance(error, ResultError) and error.api_error_status == 401


@pytest.mark.asyncio
async def test_fake_cli_exit_with_stderr_raises_process_error(tmp_path: Path) -> None:
    stderr_lines: list[str] = []
    cli = fake_cli(tmp_path, [[{"exit": 3, "stderr": "Invalid API key\n"}]])
    options = ClaudeAgentOptions(
        cli_path=cli.cli_path, env=cli.env, setting_sources=[], stderr=stderr_lines.append
    )
    # A CLI that dies mid-turn: the SDK raises ProcessError (exit code set). Its .stderr is
    # only the placeholder "Check stderr output for details"; the text itself reaches the
    # stderr callback (and nothing else) - so mnemara must install one to show auth errors.
    with pytest.raises(ProcessError) as info:
        await collect(prompt_stream("hi"), options)
    assert info.value.exit_code == 3
    assert "Check stderr output" in (info.value.stderr or "")
    assert stderr_lines == ["Invalid API key"]


@pytest.mark.asyncio
async def test_fake_cli_interrupt_during_sleep(tmp_path: Path) -> None:
    cli = fake_cli(
        tmp_path,
        [
            [{"text": "working on it"}, {"sleep": 30}, {"text": "never sent"}],
            [{"text": "after the interrupt"}],
        ],
    )
    options = ClaudeAgentOptions(cli_path=cli.cli_path, env=cli.env, setting_sources=[])
    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        async with ClaudeSDKClient(options) as client:
            await client.query("long task")
            first_turn = []
            async for message in client.receive_response():
                first_turn.append(message)
                if isinstance(message, AssistantMessage):
                    await client.interrupt()
            await client.query("next")
            second_turn = [m async for m in client.receive_response()]

    assert time.monotonic() - started < 10  # the 30 s sleep was cut short
    assert_interrupted_turn(first_turn)
    assert "never sent" not in [b.text for b in blocks(first_turn, TextBlock)]
    assert the_result(second_turn).result == "after the interrupt"
    assert [m["request"]["subtype"] for m in cli.stdin_messages("control_request")] == [
        "initialize",
        "interrupt",
    ]


@pytest.mark.asyncio
async def test_fake_cli_turn_index_persists_across_processes(tmp_path: Path) -> None:
    cli = fake_cli(
        tmp_path, [[{"text": "first"}], [{"text": "second"}]], default=[{"text": "more"}]
    )
    options = ClaudeAgentOptions(cli_path=cli.cli_path, env=cli.env, setting_sources=[])
    texts = []
    for prompt in ("a", "b", "c"):
        texts.append(the_result(await collect(prompt_stream(prompt), options)).result)
    assert texts == ["first", "second", "more"]
    assert len(cli.argvs()) == 3  # three separate CLI processes


def test_fake_cli_is_an_executable_script() -> None:
    path = Path(FAKE_CLI_PATH)
    assert path.read_text().startswith("#!/usr/bin/env python3\n")
    assert path.stat().st_mode & 0o111


# ============================================================================= fake API alone


def _post(url: str, body: dict[str, Any]) -> tuple[str, bytes]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, never a proxy
    with opener.open(request, timeout=10) as response:
        return response.headers["content-type"], response.read()


def test_fake_api_speaks_the_messages_api_over_plain_http() -> None:
    agent_system = [
        {"type": "text", "text": "You are a Claude agent, built on Anthropic's Claude Agent SDK."}
    ]
    with FakeMessagesAPI() as api:
        api.enqueue(
            [
                {"type": "thinking", "thinking": "plan"},
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}},
            ]
        )
        api.enqueue([{"type": "text", "text": "plain"}], usage={"input_tokens": 7})

        # Streaming: SSE events in the public order, stop_reason tool_use, usage at the end.
        kind, raw = _post(
            f"{api.url}/v1/messages?beta=true",
            {"stream": True, "system": agent_system, "messages": []},
        )
        assert kind == "text/event-stream"
        events = [
            json.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: ")
        ]
        types = [e["type"] for e in events]
        assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
        deltas = [e["delta"]["type"] for e in events if e["type"] == "content_block_delta"]
        assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= set(
            deltas
        )
        tool_json = "".join(
            e["delta"]["partial_json"]
            for e in events
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
        )
        assert json.loads(tool_json) == {"command": "ls"}
        assert events[-2]["delta"]["stop_reason"] == "tool_use"
        assert set(events[-2]["usage"]) >= {
            "input_tokens",
            "output_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        }

        # Non-streaming: one JSON message; the usage override merges over the defaults.
        kind, raw = _post(f"{api.url}/v1/messages", {"system": agent_system, "messages": []})
        message = json.loads(raw)
        assert (
            message["content"] == [{"type": "text", "text": "plain"}]
            and message["stop_reason"] == "end_turn"
        )
        assert (
            message["usage"]["input_tokens"] == 7
            and message["usage"]["cache_read_input_tokens"] == 30
        )

        # Empty queue: "ok". A call without the agent identity and tools is a side request.
        _, raw = _post(f"{api.url}/v1/messages", {"system": "Write a title", "messages": []})
        assert json.loads(raw)["content"][0]["text"] == "Fake title"
        _, raw = _post(f"{api.url}/v1/messages", {"system": agent_system, "messages": []})
        assert json.loads(raw)["content"][0]["text"] == "ok"
        _, raw = _post(
            f"{api.url}/v1/messages/count_tokens", {"messages": [{"role": "user", "content": "hi"}]}
        )
        assert json.loads(raw)["input_tokens"] > 0

        assert len(api.requests) == 3 and len(api.side_requests) == 1
        assert [r.path for r in api.other_requests] == ["/v1/messages/count_tokens"]


# ============================================================================= real CLI


def real_options(tmp_path: Path, api: FakeMessagesAPI, **kwargs: Any) -> ClaudeAgentOptions:
    """Options for the bundled CLI against the fake API, isolated in tmp_path."""
    return ClaudeAgentOptions(
        env=real_cli_env(tmp_path, api),
        cwd=str(tmp_path),
        setting_sources=[],
        **kwargs,
    )


@pytest.mark.e2e
@needs_real_cli
@pytest.mark.asyncio
async def test_real_cli_text_turn_sends_our_system_prompt_and_tools(tmp_path: Path) -> None:
    with FakeMessagesAPI() as api:
        api.enqueue(
            [{"type": "text", "text": "Hi from the fake API"}],
            usage={
                "input_tokens": 321,
                "output_tokens": 12,
                "cache_read_input_tokens": 0,
                "cache_creation_input_tokens": 0,
            },
        )
        options = real_options(tmp_path, api, system_prompt="You are MNEMARA-TEST.", tools=["Read"])
        messages = await collect(prompt_stream([{"type": "text", "text": "hello there"}]), options)

    assert len(api.requests) == 1 and api.side_requests == []
    request = api.requests[0]
    assert request["stream"] is True
    assert "You are MNEMARA-TEST." in system_text(request)
    assert offered_tool_names(request) == ["Read"]
    user_texts = [
        b.get("text")
        for m in request["messages"]
        if m["role"] == "user" and isinstance(m["content"], list)
        for b in m["content"]
    ]
    assert "hello there" in user_texts

    assert [b.text for b in blocks(messages, TextBlock)] == ["Hi from the fake API"]
    result = the_result(messages)
    assert (result.subtype, result.is_error, result.result) == (
        "success",
        False,
        "Hi from the fake API",
    )
    assert result.usage["input_tokens"] == 321 and result.usage["output_tokens"] == 12


@pytest.mark.e2e
@needs_real_cli
@pytest.mark.asyncio
async def test_real_cli_denied_bash_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    asked: list[tuple[str, dict[str, Any]]] = []

    async def deny(name: str, tool_input: dict[str, Any], ctx: Any) -> PermissionResultDeny:
        asked.append((name, tool_input))
        return PermissionResultDeny(message="denied by test")

    with FakeMessagesAPI() as api:
        api.enqueue([{"type": "tool_use", "name": "Bash", "input": {"command": f"touch {marker}"}}])
        api.enqueue([{"type": "text", "text": "understood"}])
        options = real_options(tmp_path, api, tools=["Bash"], can_use_tool=deny)
        messages = await collect(prompt_stream("please touch the file"), options)

    assert not marker.exists()
    assert asked == [("Bash", {"command": f"touch {marker}"})]
    # The second model call carries the denial back to the model as an error tool_result.
    assert len(api.requests) == 2
    last_user = api.requests[1]["messages"][-1]
    (returned,) = [b for b in last_user["content"] if b.get("type") == "tool_result"]
    assert returned["is_error"] is True and returned["content"] == "denied by test"
    result = the_result(messages)
    assert result.result == "understood" and result.num_turns == 2
    assert [d["tool_name"] for d in result.permission_denials] == ["Bash"]


@pytest.mark.e2e
@needs_real_cli
@pytest.mark.asyncio
async def test_real_cli_interrupt_matches_the_fake(tmp_path: Path) -> None:
    with FakeMessagesAPI() as api:
        # A slow stream (0.3 s per SSE event) keeps the first turn in flight.
        api.enqueue([{"type": "text", "text": "a long answer that takes a while"}], delay=0.3)
        api.enqueue([{"type": "text", "text": "after the interrupt"}])
        options = real_options(tmp_path, api, tools=[], include_partial_messages=True)
        async with asyncio.timeout(TIMEOUT):
            async with ClaudeSDKClient(options) as client:
                await client.query("long task")
                first_turn = []
                async for message in client.receive_response():
                    first_turn.append(message)
                    if (
                        isinstance(message, StreamEvent)
                        and message.event["type"] == "message_start"
                    ):
                        await client.interrupt()
                await client.query("next")
                second_turn = [m async for m in client.receive_response()]

    result = assert_interrupted_turn(first_turn)
    assert result.errors  # a diagnostic line such as "[ede_diagnostic] ..."
    assert the_result(second_turn).result == "after the interrupt"


@pytest.mark.e2e
@needs_real_cli
@pytest.mark.asyncio
async def test_real_cli_bad_api_key_is_an_error_result_then_result_error(tmp_path: Path) -> None:
    with FakeMessagesAPI() as api:
        api.enqueue_error(401, "invalid x-api-key")
        options = real_options(tmp_path, api, tools=[])
        messages, error = await collect_until_error(prompt_stream("hi"), options)

    (assistant,) = only(messages, AssistantMessage)
    assert assistant.error == "authentication_failed" and assistant.model == "<synthetic>"
    result = the_result(messages)
    assert (result.subtype, result.is_error, result.api_error_status) == ("success", True, 401)
    # The same sequence as the fake's {"api_error": 401} step: result first, then this.
    assert isinstance(error, ResultError) and error.api_error_status == 401 and error.exit_code == 1
