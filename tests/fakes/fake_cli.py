#!/usr/bin/env python3
"""A scripted fake of the Claude Code CLI, for ``ClaudeAgentOptions(cli_path=...)``.

Stdlib only, so that it runs under any ``python3``. It speaks the same newline-delimited
JSON ("stream-json") protocol as the real CLI that ``claude_agent_sdk`` spawns, so the
real SDK (and mnemara on top of it) can be tested fast, offline and deterministically.

The protocol, as the SDK uses it (claude-agent-sdk 0.2.189, CLI 2.1.332)
=======================================================================
The SDK starts ``<cli> --output-format stream-json --verbose ... --input-format stream-json``
and then writes JSON lines to our stdin:

* ``{"type":"control_request","request_id":R,"request":{"subtype":"initialize","hooks":...}}``
  first; the SDK waits (60 s) for ``{"type":"control_response","response":{"subtype":
  "success","request_id":R,"response":{...}}}``. ``hooks`` maps an event name to matchers
  ``{"matcher": regex-or-null, "hookCallbackIds": ["hook_0", ...], "timeout": s}``.
* ``{"type":"user","message":{"role":"user","content": str | [blocks]}, ...}``: one per
  prompt. We answer with, in order: ``system/init``; for each model step ``stream_event``
  frames (only with ``--include-partial-messages``) and one ``assistant`` message per
  content block (text, thinking, tool_use), all blocks of one model step sharing a message
  id; for a tool a ``user`` message carrying the ``tool_result``; and finally a ``result``.
* Other control requests at any time (``interrupt``, ``set_model``, ``set_permission_mode``,
  ``mcp_status``, ``get_context_usage``, ...): answered at once with success.
* stdin EOF: finish the queued prompts, then exit: 1 if the last result had ``is_error``
  (so ``query()`` raises ``ResultError`` right after yielding that result), else 0.

We send control requests of our own and wait for the SDK's ``control_response``:

* ``hook_callback {callback_id, input, tool_use_id}`` for each matching PreToolUse hook;
* ``can_use_tool {tool_name, input, tool_use_id, ...}`` when ``--permission-prompt-tool
  stdio`` was passed (i.e. the SDK has a ``can_use_tool`` callback);
* ``mcp_message {server_name, message: <JSON-RPC>}`` for in-process (SDK) MCP servers
  listed in ``--mcp-config``: ``initialize`` + ``notifications/initialized`` + ``tools/list``
  once per server before the first ``system/init``, then ``tools/call`` per tool step.

When the env has ``CLAUDE_CODE_SDK_READS_SESSION_STATE=1`` (the SDK always sets it) we also
send the ``session_state_changed`` frames (``sdk_host_only``) that the real CLI sends:
``running`` at the start of a turn, ``requires_action`` around a permission prompt, and
``idle`` after the result unless another prompt is already queued. The SDK keeps stdin
open until ``idle`` when it has hooks, SDK MCP servers or ``can_use_tool``.

Scripting
=========
Environment variables (pass them with ``ClaudeAgentOptions(env={...})``):

* ``MNEMARA_FAKE_CLI_SCRIPT``: path of a JSON file ``{"turns": [[step, ...], ...],
  "default": [step, ...]}``. The i-th user message uses ``turns[i]``; past the end (or with
  no script) the ``default`` turn is used, itself defaulting to ``[{"text": "ok"}]``.
* ``MNEMARA_FAKE_CLI_STATE``: optional path of a counter file holding the next turn index,
  so one script can drive successive CLI processes (mnemara runs one ``query()`` per turn).
* ``MNEMARA_FAKE_CLI_LOG``: optional path; JSON lines are appended: ``{"argv": [...],
  "cwd": ..., "pid": ...}`` at start, ``{"stdin": <parsed line>}`` for every line read, and
  ``{"control_response": {"request": <what we sent>, "response": <the SDK's answer>}}`` for
  each answer to one of our own control requests, and ``{"exit": code}`` at the end.
* ``MNEMARA_FAKE_CLI_TIMEOUT``: seconds to wait for a control response (default 30).

Steps (one turn is a list of them, run in order):

* ``{"text": "...", "chunks": 2, "delay": 0}``: a text block, streamed in ``chunks``
  text_delta events (``delay`` seconds apart, interruptible).
* ``{"thinking": "...", "signature": "..."}``: a thinking block.
* ``{"tool": NAME, "input": {...}, "id": "toolu_x", "result": ..., "is_error": false}``:
  a tool call, handled like the real CLI: assistant tool_use message; PreToolUse hooks
  (deny / allow / ask / updatedInput; ``continue: false`` lets the tool run and then ends
  the turn, as the real CLI does); then, unless a hook decided or the tool is pre-approved
  (``--allowedTools``, read-only Read/Glob/Grep, Write/Edit under ``acceptEdits``), a
  ``can_use_tool`` request if ``--permission-prompt-tool stdio`` was passed, else a denial
  ("... you haven't granted it yet."). If allowed it runs: ``mcp__<server>__<tool>`` on an
  SDK server via ``tools/call``; ``Bash`` really runs ``input.command`` (``input.timeout``
  in ms); ``Read``/``Write``/``Edit`` really touch ``input.file_path``; any tool with a
  ``result`` in the step returns that canned result instead. Then a ``user`` message with
  the ``tool_result`` (``is_error`` and the denial message when denied). Denials go into
  the result's ``permission_denials``. A tool step ends the current model step.
* ``{"error": "message"}``: end the turn with ``subtype: error_during_execution`` and
  ``errors: [message]``.
* ``{"api_error": 401, "message": "..."}``: end the turn the way the real CLI reports a
  failed API call: a synthetic assistant message (``model: "<synthetic>"``, ``error``:
  ``authentication_failed`` / ``rate_limit`` / ``server_error`` / ...) and a result with
  ``subtype: success``, ``is_error: true``, ``api_error_status``. (The real CLI does not
  die on a bad API key; it reports it like this, and exits 1 at EOF.)
* ``{"api_retry": {"attempt": 1, "retry_delay_ms": 500, "error_status": 529, ...}}``: a
  ``system``/``api_retry`` message, as the real CLI sends while it retries a failed API call
  (``max_retries`` defaults to ``CLAUDE_CODE_MAX_RETRIES`` when set, else 10, as in the CLI).
* ``{"sleep": seconds}``: wait; an ``interrupt`` control request ends the turn at once.
* ``{"exit": code, "stderr": "text"}``: write text to stderr and exit immediately.
* ``{"usage": {...}, "cost": 0.0123}``: the usage / ``total_cost_usd`` of the final result
  (defaults: each model step adds ``DEFAULT_STEP_USAGE`` and ``DEFAULT_STEP_COST``).

On interrupt (as observed with the real CLI 2.1.332): the ``interrupt`` request is answered
``{"still_queued": []}``, then a ``user`` message with the text block
``[Request interrupted by user]``, then a result with ``subtype: error_during_execution``,
``is_error: true``, ``terminal_reason: aborted_streaming`` and zero usage.

Python helpers for tests (importing this module is cheap and needs no SDK):
``FAKE_CLI_PATH``; ``fake_cli(tmp_path, turns)`` -> ``FakeCLI`` (writes the script, gives
``cli_path`` and ``env``, and reads back the log: ``argvs()``, ``flag()``,
``user_messages()``, ``control_responses()``); ``read_log(path)``; ``parse_argv(argv)``;
``user_message(content)`` and ``prompt_stream(*contents)`` for async-iterable prompts.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FAKE_CLI_PATH = str(Path(__file__).resolve())
FAKE_CLI_VERSION = "2.1.332"  # reported as claude_code_version (the SDK parses X.Y.Z)
DEFAULT_MODEL = "claude-sonnet-4-5"
DEFAULT_TURN: list[dict[str, Any]] = [{"text": "ok"}]
DEFAULT_STEP_USAGE: dict[str, int] = {
    "input_tokens": 100,
    "output_tokens": 20,
    "cache_creation_input_tokens": 10,
    "cache_read_input_tokens": 30,
}
DEFAULT_STEP_COST = 0.001
# Built-in tools offered when no --tools flag is given (a subset of the real list).
DEFAULT_TOOLS = [
    "Task",
    "Bash",
    "Glob",
    "Grep",
    "Read",
    "Edit",
    "Write",
    "WebFetch",
    "WebSearch",
    "TodoWrite",
]
# Tools the real CLI runs without asking in the default permission mode.
READ_ONLY_TOOLS = {"Read", "Glob", "Grep", "LS", "TodoWrite"}
EDIT_TOOLS = {"Write", "Edit", "MultiEdit", "NotebookEdit"}
INTERRUPTED_TEXT = "[Request interrupted by user]"
# Flags of the real CLI that take a value (everything else is a boolean switch).
VALUE_FLAGS = {
    "--output-format",
    "--input-format",
    "--system-prompt",
    "--system-prompt-file",
    "--append-system-prompt",
    "--tools",
    "--allowedTools",
    "--disallowedTools",
    "--max-turns",
    "--max-budget-usd",
    "--task-budget",
    "--model",
    "--fallback-model",
    "--betas",
    "--permission-prompt-tool",
    "--permission-mode",
    "--resume",
    "--session-id",
    "--settings",
    "--add-dir",
    "--mcp-config",
    "--setting-sources",
    "--plugin-dir",
    "--thinking",
    "--max-thinking-tokens",
    "--thinking-display",
    "--effort",
    "--json-schema",
    "--resume-session-at",
    "--resume-drops-turn",
}


# =============================================================================
# Test-side helpers (imported by tests; not used when running as the CLI)
# =============================================================================


def user_message(content: str | list[dict[str, Any]]) -> dict[str, Any]:
    """A streamed user message as the SDK writes it to the CLI's stdin."""
    return {
        "type": "user",
        "message": {"role": "user", "content": content},
        "parent_tool_use_id": None,
        "session_id": "",
    }


async def prompt_stream(*contents: str | list[dict[str, Any]]) -> Any:
    """An async-iterable prompt (needed for ``can_use_tool``): one user message per item."""
    for content in contents:
        yield user_message(content)


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Parse a ``MNEMARA_FAKE_CLI_LOG`` file (missing file: empty list)."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


@dataclass
class FakeCLI:
    """A scripted fake CLI set up in a directory: pass ``cli_path`` and ``env`` to the SDK.

    ``env`` also goes through ``ClaudeAgentOptions(env=...)``; the log accessors read what
    every process started with this setup received.
    """

    script_path: Path
    log_path: Path
    state_path: Path
    cli_path: str = FAKE_CLI_PATH
    env: dict[str, str] = field(default_factory=dict)

    def log(self) -> list[dict[str, Any]]:
        return read_log(self.log_path)

    def argvs(self) -> list[list[str]]:
        """The argv (without the program) of each process, in start order."""
        return [e["argv"] for e in self.log() if "argv" in e]

    def stdin_messages(self, type_: str | None = None) -> list[dict[str, Any]]:
        """Every JSON line the fake read, optionally only those of one ``type``."""
        msgs = [e["stdin"] for e in self.log() if "stdin" in e]
        return [m for m in msgs if type_ is None or m.get("type") == type_]

    def user_messages(self) -> list[dict[str, Any]]:
        return self.stdin_messages("user")

    def control_responses(self) -> list[dict[str, Any]]:
        """``{"request": ..., "response": ...}`` pairs for the fake's own control requests."""
        return [e["control_response"] for e in self.log() if "control_response" in e]

    def flag(self, name: str, process: int = -1) -> str | None:
        """Value of ``--name`` (or ``--name=value``) in a process's argv; None if absent.

        A boolean switch that is present yields ``""``.
        """
        argv = self.argvs()[process]
        return parse_argv(argv).get(name)


def fake_cli(
    directory: str | os.PathLike[str],
    turns: list[list[dict[str, Any]]],
    *,
    default: list[dict[str, Any]] | None = None,
    extra_env: dict[str, str] | None = None,
) -> FakeCLI:
    """Write a script for ``turns`` under ``directory`` and return the ready-to-use setup."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    script = {"turns": turns}
    if default is not None:
        script["default"] = default
    setup = FakeCLI(d / "fake_cli_script.json", d / "fake_cli_log.jsonl", d / "fake_cli_state")
    setup.script_path.write_text(json.dumps(script))
    setup.env = {
        "MNEMARA_FAKE_CLI_SCRIPT": str(setup.script_path),
        "MNEMARA_FAKE_CLI_LOG": str(setup.log_path),
        "MNEMARA_FAKE_CLI_STATE": str(setup.state_path),
        **(extra_env or {}),
    }
    return setup


def parse_argv(argv: list[str]) -> dict[str, str]:
    """Map ``--flag`` to its value (``""`` for switches); ``--flag=value`` is accepted."""
    flags: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" in arg:
            name, value = arg.split("=", 1)
            flags[name] = value
        elif arg in VALUE_FLAGS and i + 1 < len(argv):
            flags[arg] = argv[i + 1]
            i += 1
        elif arg.startswith("--"):
            flags[arg] = ""
        i += 1
    return flags


# =============================================================================
# The fake CLI itself
# =============================================================================


class Interrupted(Exception):
    """The SDK sent an ``interrupt`` control request during the turn."""


class StreamClosed(Exception):
    """stdin is closed, so a control request of ours can never be answered."""


class ControlError(Exception):
    """The SDK answered one of our control requests with ``subtype: error``."""


class EndTurn(Exception):
    """A step ends the turn early with the given result payload."""

    def __init__(self, result: dict[str, Any]):
        super().__init__(result.get("subtype"))
        self.result = result


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


@dataclass
class Turn:
    """Bookkeeping for one user message."""

    started: float = field(default_factory=time.monotonic)
    num_turns: int = 0  # model steps (API calls) so far
    message_id: str | None = None  # id of the open model step, None when closed
    block_index: int = 0
    open_block: int | None = None  # index of a content block started and not yet stopped
    last_text: str = ""
    stop_reason: str | None = None
    usage: dict[str, int] = field(default_factory=lambda: {k: 0 for k in DEFAULT_STEP_USAGE})
    cost: float = 0.0
    usage_override: dict[str, int] | None = None
    cost_override: float | None = None
    denials: list[dict[str, Any]] = field(default_factory=list)


class FakeClaudeCLI:
    """One fake CLI process: a stdin reader thread plus the turn loop on the main thread.

    The reader answers control requests immediately (so ``interrupt`` works while a turn
    runs) and queues user messages; the main thread runs one scripted turn per message.
    """

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.flags = parse_argv(argv)
        self.log_path = os.environ.get("MNEMARA_FAKE_CLI_LOG")
        self.timeout = float(os.environ.get("MNEMARA_FAKE_CLI_TIMEOUT", "30"))
        self.emit_state = os.environ.get("CLAUDE_CODE_SDK_READS_SESSION_STATE") == "1"
        self.script = self._load_script()

        self.model = self.flags.get("--model") or DEFAULT_MODEL
        self.permission_mode = self.flags.get("--permission-mode") or "default"
        self.session_id = (
            self.flags.get("--session-id") or self.flags.get("--resume") or str(uuid.uuid4())
        )
        self.partial = "--include-partial-messages" in self.flags
        self.stdio_permissions = self.flags.get("--permission-prompt-tool") == "stdio"
        self.allowed_tools = self._split_list(self.flags.get("--allowedTools"))
        self.disallowed_tools = self._split_list(self.flags.get("--disallowedTools"))
        max_turns = self.flags.get("--max-turns")
        self.max_turns = int(max_turns) if max_turns else None
        self.builtin_tools = self._builtin_tools()
        self.mcp_servers = self._mcp_servers()  # name -> config
        self.mcp_tools: dict[str, list[str]] = {}  # SDK server -> tool names
        self.mcp_status: dict[str, str] = {}
        self.mcp_next_id: dict[str, int] = {}
        self.mcp_connected = False
        self._local_index = 0  # turn counter when no MNEMARA_FAKE_CLI_STATE is given

        self.hooks: dict[str, list[dict[str, Any]]] = {}
        self.out_lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.cond = threading.Condition()
        self.pending: dict[str, dict[str, Any] | None] = {}  # our request id -> response
        self.sent: dict[str, dict[str, Any]] = {}  # our request id -> request payload
        self.user_queue: list[dict[str, Any] | None] = []
        self.busy = 0  # user messages received and not yet answered with a result
        self.eof = False
        self.interrupted = False
        self.last_result_is_error = False  # decides the exit code at EOF, as in the real CLI
        self.session_state = "idle"

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _split_list(value: str | None) -> list[str]:
        return [v.strip() for v in (value or "").split(",") if v.strip()]

    def _load_script(self) -> dict[str, Any]:
        path = os.environ.get("MNEMARA_FAKE_CLI_SCRIPT")
        if not path:
            return {"turns": []}
        with open(path) as f:
            return json.load(f)

    def _builtin_tools(self) -> list[str]:
        tools = self.flags.get("--tools")
        if tools is None or tools == "default":
            names = list(DEFAULT_TOOLS)
        else:
            names = self._split_list(tools)
        return [t for t in names if t not in self.disallowed_tools]

    def _mcp_servers(self) -> dict[str, dict[str, Any]]:
        raw = self.flags.get("--mcp-config")
        if not raw:
            return {}
        try:
            if raw.lstrip().startswith("{"):
                config = json.loads(raw)
            else:
                with open(raw) as f:
                    config = json.load(f)
        except (OSError, ValueError):
            return {}
        servers = config.get("mcpServers", {})
        return servers if isinstance(servers, dict) else {}

    def _next_turn_index(self) -> int:
        """The index into ``turns``, persisted across processes if a state file is set."""
        path = os.environ.get("MNEMARA_FAKE_CLI_STATE")
        if not path:
            self._local_index += 1
            return self._local_index - 1
        import fcntl  # POSIX only, like the rest of the test setup

        with open(path, "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            text = f.read().strip()
            index = int(text) if text else 0
            f.seek(0)
            f.truncate()
            f.write(str(index + 1))
            f.flush()
            fcntl.flock(f, fcntl.LOCK_UN)
        return index

    def _steps_for(self, index: int) -> list[dict[str, Any]]:
        turns = self.script.get("turns") or []
        if index < len(turns):
            return turns[index]
        return self.script.get("default") or DEFAULT_TURN

    # ------------------------------------------------------------------ I/O
    def log(self, entry: dict[str, Any]) -> None:
        if not self.log_path:
            return
        with self.log_lock, open(self.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def write(self, message: dict[str, Any]) -> None:
        with self.out_lock:
            sys.stdout.write(json.dumps(message) + "\n")
            sys.stdout.flush()

    def base(self, type_: str, **fields: Any) -> dict[str, Any]:
        return {"type": type_, **fields, "session_id": self.session_id, "uuid": str(uuid.uuid4())}

    def state(self, state: str) -> None:
        """Report a session state change (only changes, as the real CLI does)."""
        if self.emit_state and state != self.session_state:
            self.session_state = state
            self.write(
                self.base(
                    "system", subtype="session_state_changed", state=state, sdk_host_only=True
                )
            )

    # ------------------------------------------------------------------ stdin reader
    def reader(self) -> None:
        """Read stdin until EOF; answer control requests at once, queue user messages."""
        for raw in sys.stdin.buffer:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.log({"stdin_unparsed": line})
                continue
            self.log({"stdin": msg})
            kind = msg.get("type")
            if kind == "control_response":
                self._on_control_response(msg.get("response") or {})
            elif kind == "control_request":
                self._on_control_request(msg)
            elif kind == "user":
                with self.cond:
                    self.busy += 1
                    self.user_queue.append(msg)
                    self.cond.notify_all()
            # Anything else (keep_alive, env updates, control_cancel_request...) is ignored.
        with self.cond:
            self.eof = True
            self.user_queue.append(None)
            self.cond.notify_all()

    def _on_control_response(self, response: dict[str, Any]) -> None:
        request_id = response.get("request_id")
        with self.cond:
            if request_id in self.pending:
                self.pending[request_id] = response
                self.cond.notify_all()
        self.log({"control_response": {"request": self.sent.get(request_id), "response": response}})

    def _on_control_request(self, msg: dict[str, Any]) -> None:
        request = msg.get("request") or {}
        subtype = request.get("subtype")
        payload: dict[str, Any] = {}
        if subtype == "initialize":
            self.hooks = request.get("hooks") or {}
            payload = self._initialize_response()
        elif subtype == "interrupt":
            with self.cond:
                if self.busy:
                    self.interrupted = True
                    self.cond.notify_all()
            payload = {"still_queued": []}
        elif subtype == "set_model":
            self.model = request.get("model") or DEFAULT_MODEL
        elif subtype == "set_permission_mode":
            self.permission_mode = request.get("mode") or "default"
        elif subtype == "mcp_status":
            payload = {
                "mcpServers": [
                    {"name": name, "status": self.mcp_status.get(name, "pending")}
                    for name in self.mcp_servers
                ]
            }
        elif subtype == "get_context_usage":
            payload = {
                "categories": [],
                "totalTokens": 0,
                "maxTokens": 200000,
                "rawMaxTokens": 200000,
                "percentage": 0.0,
                "model": self.model,
                "isAutoCompactEnabled": False,
                "memoryFiles": [],
                "mcpTools": [],
                "agents": [],
                "gridRows": [],
            }
        self.write(
            {
                "type": "control_response",
                "response": {
                    "subtype": "success",
                    "request_id": msg.get("request_id"),
                    "response": payload,
                },
            }
        )

    def _initialize_response(self) -> dict[str, Any]:
        return {
            "commands": [],
            "agents": [],
            "output_style": "default",
            "available_output_styles": ["default"],
            "models": [
                {
                    "value": "default",
                    "resolvedModel": self.model,
                    "displayName": "Default",
                    "description": "fake model",
                }
            ],
            "account": {"tokenSource": "none", "apiKeySource": "none", "apiProvider": "firstParty"},
            "pid": os.getpid(),
            "claude_code_version": FAKE_CLI_VERSION,
            "current_permission_mode": self.permission_mode,
            "hook_on_failure_supported": True,
            "session_state": "idle",
            "capabilities": [],
            "pending_permission_requests": [],
            "pending_user_dialog_requests": [],
            "fake": True,
        }

    # ------------------------------------------------------------------ our control requests
    def request(self, payload: dict[str, Any], *, timeout: float | None = None) -> dict[str, Any]:
        """Send a control request and wait (bounded) for the SDK's answer payload.

        An interrupt meanwhile cancels it (``control_cancel_request``, as the real CLI does)
        and raises Interrupted; closed stdin raises StreamClosed; a timeout ControlError.
        """
        request_id = str(uuid.uuid4())
        with self.cond:
            if self.eof:
                raise StreamClosed("Stream closed")
            self.pending[request_id] = None
            self.sent[request_id] = payload
        self.write({"type": "control_request", "request_id": request_id, "request": payload})
        deadline = time.monotonic() + (timeout or self.timeout)
        with self.cond:
            try:
                while self.pending[request_id] is None:
                    if self.interrupted:
                        self.write({"type": "control_cancel_request", "request_id": request_id})
                        raise Interrupted()
                    if self.eof:
                        raise StreamClosed("Stream closed")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise ControlError(f"control request {payload.get('subtype')} timed out")
                    self.cond.wait(remaining)
                response = self.pending[request_id] or {}
            finally:
                self.pending.pop(request_id, None)
        if response.get("subtype") == "error":
            raise ControlError(response.get("error") or "control request failed")
        return response.get("response") or {}

    def check_interrupt(self) -> None:
        with self.cond:
            if self.interrupted:
                raise Interrupted()

    def wait_interruptible(self, seconds: float) -> None:
        """Sleep, but raise Interrupted as soon as an interrupt arrives."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while not self.interrupted:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self.cond.wait(remaining)
        raise Interrupted()

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        self.log({"argv": self.argv, "cwd": os.getcwd(), "pid": os.getpid()})
        threading.Thread(target=self.reader, name="stdin-reader", daemon=True).start()
        while True:
            with self.cond:
                while not self.user_queue:
                    self.cond.wait()
                msg = self.user_queue.pop(0)
            if msg is None:
                break
            self.run_turn(msg)
        # Like the real CLI: exit 1 when the last result was an error (the SDK's query()
        # then raises ResultError after yielding that ResultMessage), else 0.
        code = 1 if self.last_result_is_error else 0
        self.log({"exit": code})
        return code

    def run_turn(self, user_message: dict[str, Any]) -> None:
        steps = self._steps_for(self._next_turn_index())
        turn = Turn()
        self.state("running")
        try:
            if not self.mcp_connected:
                self.connect_mcp_servers()
            self.write_init()
            for step in steps:
                self.check_interrupt()
                self.run_step(step, turn)
            self.close_model_step(turn, "end_turn")
            result = self.result(turn, "success", is_error=False, result=turn.last_text)
        except Interrupted:
            result = self.interrupted_result(turn)
        except EndTurn as end:
            result = end.result
        except Exception as e:  # a bad script or a bug here: fail the turn loudly
            import traceback

            traceback.print_exc()
            result = self.result(
                turn, "error_during_execution", is_error=True, errors=[f"fake CLI error: {e!r}"]
            )
        self.last_result_is_error = bool(result.get("is_error"))
        self.write(result)
        with self.cond:
            self.busy -= 1
            self.interrupted = False  # an interrupt ends one turn, not the queued ones
            more_queued = any(m is not None for m in self.user_queue)
        # Like the real CLI: stay "running" while prompts are queued. (The SDK closes stdin
        # at "idle", which would cut off the control requests of a queued prompt.)
        if not more_queued:
            self.state("idle")

    def write_init(self) -> None:
        mcp_tool_names = [
            f"mcp__{server}__{tool}" for server, tools in self.mcp_tools.items() for tool in tools
        ]
        self.write(
            self.base(
                "system",
                subtype="init",
                cwd=os.getcwd(),
                tools=self.builtin_tools + mcp_tool_names,
                mcp_servers=[
                    {"name": name, "status": self.mcp_status.get(name, "failed")}
                    for name in self.mcp_servers
                ],
                model=self.model,
                permissionMode=self.permission_mode,
                slash_commands=[],
                apiKeySource="none",
                claude_code_version=FAKE_CLI_VERSION,
                output_style="default",
                agents=[],
                skills=[],
                plugins=[],
                fake=True,
            )
        )

    # ------------------------------------------------------------------ results
    def result(self, turn: Turn, subtype: str, *, is_error: bool, **extra: Any) -> dict[str, Any]:
        usage = dict(turn.usage)
        if turn.usage_override is not None:
            usage = {**{k: 0 for k in DEFAULT_STEP_USAGE}, **turn.usage_override}
        cost = turn.cost if turn.cost_override is None else turn.cost_override
        elapsed = max(1, int((time.monotonic() - turn.started) * 1000))
        return self.base(
            "result",
            subtype=subtype,
            is_error=is_error,
            duration_ms=elapsed,
            duration_api_ms=elapsed,
            num_turns=turn.num_turns,
            stop_reason=turn.stop_reason,
            total_cost_usd=cost,
            usage=usage,
            modelUsage={
                self.model: {
                    "inputTokens": usage.get("input_tokens", 0),
                    "outputTokens": usage.get("output_tokens", 0),
                    "cacheReadInputTokens": usage.get("cache_read_input_tokens", 0),
                    "cacheCreationInputTokens": usage.get("cache_creation_input_tokens", 0),
                    "costUSD": cost,
                }
            },
            permission_denials=turn.denials,
            terminal_reason="completed",
            **extra,
        )

    def interrupted_result(self, turn: Turn) -> dict[str, Any]:
        if turn.open_block is not None:
            self.block_stop(turn, turn.open_block)
        if self.partial and turn.message_id is not None:
            self.stream(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": None, "stop_sequence": None},
                    "usage": {},
                }
            )
            self.stream({"type": "message_stop"})
        turn.message_id = None
        self.write(
            self.base(
                "user",
                message={"role": "user", "content": [{"type": "text", "text": INTERRUPTED_TEXT}]},
                parent_tool_use_id=None,
                timestamp=_now_iso(),
            )
        )
        # The real CLI reports zero usage, num_turns one past the API calls made, and a
        # diagnostic line in errors[].
        turn.usage_override = {k: 0 for k in DEFAULT_STEP_USAGE}
        turn.num_turns += 1
        turn.stop_reason = None
        result = self.result(
            turn,
            "error_during_execution",
            is_error=True,
            errors=["[ede_diagnostic] result_type=user last_content_type=n/a stop_reason=null"],
        )
        result["terminal_reason"] = "aborted_streaming"
        return result

    # ------------------------------------------------------------------ model steps
    def stream(self, event: dict[str, Any]) -> None:
        self.write(self.base("stream_event", event=event, parent_tool_use_id=None))

    def open_model_step(self, turn: Turn) -> str:
        """Start a model step (one API call) unless one is open; returns its message id."""
        if turn.message_id is not None:
            return turn.message_id
        if self.max_turns is not None and turn.num_turns >= self.max_turns:
            turn.num_turns += 1
            result = self.result(
                turn,
                "error_max_turns",
                is_error=True,
                errors=[f"Reached maximum number of turns ({self.max_turns})"],
            )
            result["terminal_reason"] = "max_turns"
            raise EndTurn(result)
        turn.num_turns += 1
        turn.block_index = 0
        turn.message_id = "msg_fake_" + uuid.uuid4().hex[:20]
        for key, value in DEFAULT_STEP_USAGE.items():
            turn.usage[key] += value
        turn.cost = round(turn.cost + DEFAULT_STEP_COST, 9)
        if self.partial:
            self.stream(
                {
                    "type": "message_start",
                    "message": {
                        "id": turn.message_id,
                        "type": "message",
                        "role": "assistant",
                        "model": self.model,
                        "content": [],
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {**DEFAULT_STEP_USAGE, "output_tokens": 1},
                    },
                }
            )
        return turn.message_id

    def close_model_step(self, turn: Turn, stop_reason: str) -> None:
        if turn.message_id is None:
            return
        turn.stop_reason = stop_reason
        if self.partial:
            self.stream(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": dict(DEFAULT_STEP_USAGE),
                }
            )
            self.stream({"type": "message_stop"})
        turn.message_id = None

    def assistant(self, turn: Turn, block: dict[str, Any]) -> None:
        """One assistant message per content block, as the real CLI emits them."""
        self.write(
            self.base(
                "assistant",
                message={
                    "id": turn.message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [block],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {**DEFAULT_STEP_USAGE, "output_tokens": 1},
                },
                parent_tool_use_id=None,
                timestamp=_now_iso(),
            )
        )

    def block_start(self, turn: Turn, block: dict[str, Any]) -> int:
        index = turn.block_index
        turn.block_index += 1
        turn.open_block = index
        if self.partial:
            self.stream({"type": "content_block_start", "index": index, "content_block": block})
        return index

    def delta(self, index: int, delta: dict[str, Any]) -> None:
        if self.partial:
            self.stream({"type": "content_block_delta", "index": index, "delta": delta})

    def block_stop(self, turn: Turn, index: int) -> None:
        turn.open_block = None
        if self.partial:
            self.stream({"type": "content_block_stop", "index": index})

    def run_step(self, step: dict[str, Any], turn: Turn) -> None:
        if "text" in step:
            self.step_text(step, turn)
        elif "thinking" in step:
            self.step_thinking(step, turn)
        elif "tool" in step:
            self.step_tool(step, turn)
        elif "sleep" in step:
            self.wait_interruptible(float(step["sleep"]))
        elif "exit" in step:
            sys.stdout.flush()
            sys.stderr.write(str(step.get("stderr", "")))
            sys.stderr.flush()
            self.log({"exit": int(step["exit"])})
            os._exit(int(step["exit"]))
        elif "error" in step:
            self.close_model_step(turn, "end_turn")
            raise EndTurn(
                self.result(
                    turn, "error_during_execution", is_error=True, errors=[str(step["error"])]
                )
            )
        elif "api_error" in step:
            self.step_api_error(step, turn)
        elif "api_retry" in step:
            # The real CLI reports each retry of a failed API call as a system message.
            # Like the real CLI, max_retries is CLAUDE_CODE_MAX_RETRIES when set, else 10.
            max_retries = int(os.environ.get("CLAUDE_CODE_MAX_RETRIES") or 10)
            retry = {"attempt": 1, "max_retries": max_retries, "retry_delay_ms": 500,
                     "error_status": None, "error": "unknown", **step["api_retry"]}
            self.write(self.base("system", subtype="api_retry", **retry))
        elif "usage" in step or "cost" in step:
            if "usage" in step:
                turn.usage_override = dict(step["usage"])
            if "cost" in step:
                turn.cost_override = float(step["cost"])
        else:
            raise ValueError(f"fake CLI: unknown step {step!r}")

    def step_text(self, step: dict[str, Any], turn: Turn) -> None:
        text = str(step["text"])
        chunks = max(1, int(step.get("chunks", 2)))
        delay = float(step.get("delay", 0))
        self.open_model_step(turn)
        index = self.block_start(turn, {"type": "text", "text": ""})
        size = max(1, -(-len(text) // chunks))  # ceil division
        pieces = [text[i : i + size] for i in range(0, len(text), size)] or [""]
        for n, piece in enumerate(pieces):
            if delay and n:
                self.wait_interruptible(delay)
            self.delta(index, {"type": "text_delta", "text": piece})
        self.assistant(turn, {"type": "text", "text": text})
        self.block_stop(turn, index)
        turn.last_text = text

    def step_thinking(self, step: dict[str, Any], turn: Turn) -> None:
        thinking = str(step["thinking"])
        signature = str(step.get("signature") or "fake-signature-" + uuid.uuid4().hex[:12])
        self.open_model_step(turn)
        index = self.block_start(turn, {"type": "thinking", "thinking": "", "signature": ""})
        self.delta(index, {"type": "thinking_delta", "thinking": thinking})
        self.delta(index, {"type": "signature_delta", "signature": signature})
        self.assistant(turn, {"type": "thinking", "thinking": thinking, "signature": signature})
        self.block_stop(turn, index)

    def step_api_error(self, step: dict[str, Any], turn: Turn) -> None:
        status = int(step["api_error"])
        kinds = {
            401: "authentication_failed",
            403: "authentication_failed",
            429: "rate_limit",
            400: "invalid_request",
        }
        error = kinds.get(status, "server_error" if status >= 500 else "unknown")
        default_text = (
            "Invalid API key · Fix external API key" if status == 401 else f"API Error: {status}"
        )
        text = str(step.get("message") or default_text)
        self.close_model_step(turn, "end_turn")
        turn.num_turns += 1
        message = self.base(
            "assistant",
            message={
                "id": str(uuid.uuid4()),
                "type": "message",
                "role": "assistant",
                "model": "<synthetic>",
                "content": [{"type": "text", "text": text}],
                "stop_reason": "stop_sequence",
                "stop_sequence": "",
                "usage": {k: 0 for k in DEFAULT_STEP_USAGE},
            },
            parent_tool_use_id=None,
            error=error,
            is_api_error_message=True,
            api_error_status=status,
        )
        self.write(message)
        turn.stop_reason = "stop_sequence"
        result = self.result(turn, "success", is_error=True, result=text, api_error_status=status)
        result["terminal_reason"] = "api_error"
        raise EndTurn(result)

    # ------------------------------------------------------------------ tools
    def step_tool(self, step: dict[str, Any], turn: Turn) -> None:
        name = str(step["tool"])
        tool_input = dict(step.get("input") or {})
        tool_use_id = str(step.get("id") or "toolu_fake_" + uuid.uuid4().hex[:16])

        # 1. The model's tool_use block (the stream finishes before anything runs).
        self.open_model_step(turn)
        index = self.block_start(
            turn, {"type": "tool_use", "id": tool_use_id, "name": name, "input": {}}
        )
        self.delta(index, {"type": "input_json_delta", "partial_json": json.dumps(tool_input)})
        self.assistant(
            turn, {"type": "tool_use", "id": tool_use_id, "name": name, "input": tool_input}
        )
        self.block_stop(turn, index)
        self.close_model_step(turn, "tool_use")

        # 2. Hooks and permissions; 3. run it (or not); 4. report the tool_result.
        allowed, tool_input, deny_message, stop_after = self.authorize(
            name, tool_input, tool_use_id
        )
        if not allowed:
            turn.denials.append(
                {"tool_name": name, "tool_use_id": tool_use_id, "tool_input": tool_input}
            )
            self.tool_result(tool_use_id, deny_message, True, f"Error: {deny_message}")
        else:
            content, is_error, meta = self.execute(name, tool_input, tool_use_id, step)
            self.tool_result(tool_use_id, content, is_error, meta)
        if stop_after:
            # A PreToolUse hook answered continue=false: the real CLI runs the tool and
            # then stops the turn without another model call.
            raise EndTurn(self.result(turn, "success", is_error=False, result=turn.last_text))

    def tool_result(self, tool_use_id: str, content: Any, is_error: bool, meta: Any) -> None:
        block: dict[str, Any] = {
            "tool_use_id": tool_use_id,
            "type": "tool_result",
            "content": content,
        }
        if is_error:
            block["is_error"] = True
        self.write(
            self.base(
                "user",
                message={"role": "user", "content": [block]},
                parent_tool_use_id=None,
                timestamp=_now_iso(),
                tool_use_result=meta,
            )
        )

    def _matches(self, matcher: Any, name: str) -> bool:
        if matcher in (None, "", "*"):
            return True
        try:
            return re.fullmatch(str(matcher), name) is not None
        except re.error:
            return matcher == name

    def _pre_approved(self, name: str) -> bool:
        if name in READ_ONLY_TOOLS or self.permission_mode == "bypassPermissions":
            return True
        if self.permission_mode == "acceptEdits" and name in EDIT_TOOLS:
            return True
        for rule in self.allowed_tools:
            if rule == name or rule.startswith(name + "("):
                return True
            if name.startswith("mcp__") and name.startswith(rule + "__"):
                return True  # a server-wide rule such as mcp__calc
        return False

    def authorize(
        self, name: str, tool_input: dict[str, Any], tool_use_id: str
    ) -> tuple[bool, dict[str, Any], str, bool]:
        """Run hooks and the permission prompt. Returns (allowed, input, deny message, stop)."""
        if name in self.disallowed_tools:
            return False, tool_input, f"No such tool available: {name}", False
        decision: str | None = None
        stop_after = False
        for matcher in self.hooks.get("PreToolUse") or []:
            if not self._matches(matcher.get("matcher"), name):
                continue
            for callback_id in matcher.get("hookCallbackIds") or []:
                hook_input = {
                    "session_id": self.session_id,
                    "transcript_path": "",
                    "cwd": os.getcwd(),
                    "permission_mode": self.permission_mode,
                    "hook_event_name": "PreToolUse",
                    "tool_name": name,
                    "tool_input": tool_input,
                    "tool_use_id": tool_use_id,
                }
                try:
                    answer = self.request(
                        {
                            "subtype": "hook_callback",
                            "callback_id": callback_id,
                            "input": hook_input,
                            "tool_use_id": tool_use_id,
                        },
                        timeout=matcher.get("timeout"),
                    )
                except (ControlError, StreamClosed) as e:
                    if matcher.get("onFailure", "continue") != "continue":
                        return False, tool_input, f"PreToolUse:{name} hook error: {e}", False
                    continue
                if answer.get("continue") is False:
                    stop_after = True
                specific = answer.get("hookSpecificOutput") or {}
                if isinstance(specific.get("updatedInput"), dict):
                    tool_input = specific["updatedInput"]
                verdict = specific.get("permissionDecision")
                reason = specific.get("permissionDecisionReason") or answer.get("reason") or ""
                if answer.get("decision") == "block":
                    verdict = "deny"
                if verdict == "deny":
                    return False, tool_input, f"PreToolUse:{name} hook error: {reason}", False
                if verdict in ("allow", "ask"):
                    decision = verdict
        if decision == "allow" or (decision is None and self._pre_approved(name)):
            return True, tool_input, "", stop_after
        if not self.stdio_permissions:
            return (
                False,
                tool_input,
                f"Claude requested permissions to use {name}, but you haven't granted it yet.",
                stop_after,
            )
        self.state("requires_action")
        try:
            answer = self.request(
                {
                    "subtype": "can_use_tool",
                    "tool_name": name,
                    "display_name": name,
                    "input": tool_input,
                    "permission_suggestions": [],
                    "blocked_path": None,
                    "tool_use_id": tool_use_id,
                }
            )
        except (ControlError, StreamClosed) as e:
            return False, tool_input, f"Tool permission request failed: Error: {e}", stop_after
        finally:
            self.state("running")
        if answer.get("behavior") == "allow":
            updated = answer.get("updatedInput")
            return True, updated if isinstance(updated, dict) else tool_input, "", stop_after
        message = str(answer.get("message") or "Permission denied")
        if answer.get("interrupt"):
            with self.cond:
                self.interrupted = True
        return False, tool_input, message, stop_after

    def execute(
        self, name: str, tool_input: dict[str, Any], tool_use_id: str, step: dict[str, Any]
    ) -> tuple[Any, bool, Any]:
        """Run an allowed tool. Returns (tool_result content, is_error, tool_use_result)."""
        if "result" in step:
            is_error = bool(step.get("is_error", False))
            return step["result"], is_error, step["result"]
        if name.startswith("mcp__"):
            return self.call_mcp(name, tool_input, tool_use_id)
        try:
            if name == "Bash":
                return self.run_bash(tool_input)
            if name == "Read":
                return self.read_file(tool_input)
            if name == "Write":
                return self.write_file(tool_input)
            if name == "Edit":
                return self.edit_file(tool_input)
        except OSError as e:
            return f"<tool_use_error>{e}</tool_use_error>", True, f"Error: {e}"
        message = f"<tool_use_error>Error: No such tool available: {name}</tool_use_error>"
        return message, True, f"Error: {message}"

    def _path(self, tool_input: dict[str, Any]) -> Path:
        path = Path(str(tool_input.get("file_path", "")))
        return path if path.is_absolute() else Path(os.getcwd()) / path

    def run_bash(self, tool_input: dict[str, Any]) -> tuple[Any, bool, Any]:
        command = str(tool_input.get("command", ""))
        timeout = float(tool_input.get("timeout") or 120_000) / 1000
        proc = subprocess.Popen(
            ["/bin/bash", "-c", command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        timed_out = interrupted = False
        while True:
            try:
                stdout, stderr = proc.communicate(timeout=0.05)
                break
            except subprocess.TimeoutExpired:
                with self.cond:
                    interrupted = self.interrupted
                timed_out = time.monotonic() >= deadline
                if interrupted or timed_out:
                    proc.kill()
                    stdout, stderr = proc.communicate()
                    break
        output = "\n".join(s for s in (stdout.strip(), stderr.strip()) if s)
        meta = {
            "stdout": stdout.strip(),
            "stderr": stderr.strip(),
            "interrupted": interrupted,
            "isImage": False,
            "noOutputExpected": False,
        }
        if interrupted:
            raise Interrupted()
        if timed_out:
            text = f"Command timed out after {timeout:g}s" + (f"\n{output}" if output else "")
            return text, True, f"Error: {text}"
        if proc.returncode != 0:
            text = f"Exit code {proc.returncode}" + (f"\n{output}" if output else "")
            return text, True, f"Error: {text}"
        return output or "(Bash completed with no output)", False, meta

    def read_file(self, tool_input: dict[str, Any]) -> tuple[Any, bool, Any]:
        path = self._path(tool_input)
        if not path.is_file():
            text = f"File does not exist. Note: your current working directory is {os.getcwd()}."
            return text, True, f"Error: {text}"
        content = path.read_text(errors="replace")
        lines = content.split("\n")
        start = max(1, int(tool_input.get("offset") or 1))
        limit = int(tool_input.get("limit") or 2000)
        shown = lines[start - 1 : start - 1 + limit]
        numbered = "\n".join(f"{start + i}\t{line}" for i, line in enumerate(shown))
        meta = {
            "type": "text",
            "file": {
                "filePath": str(path),
                "content": content,
                "numLines": len(shown),
                "startLine": start,
                "totalLines": len(lines),
            },
        }
        return numbered, False, meta

    def write_file(self, tool_input: dict[str, Any]) -> tuple[Any, bool, Any]:
        path = self._path(tool_input)
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(tool_input.get("content", "")))
        if existed:
            text = f"The file {path} has been updated successfully."
        else:
            text = f"File created successfully at: {path}"
        return text, False, {"type": "update" if existed else "create", "filePath": str(path)}

    def edit_file(self, tool_input: dict[str, Any]) -> tuple[Any, bool, Any]:
        path = self._path(tool_input)
        old, new = str(tool_input.get("old_string", "")), str(tool_input.get("new_string", ""))
        if not path.is_file():
            text = "<tool_use_error>File does not exist.</tool_use_error>"
            return text, True, f"Error: {text}"
        content = path.read_text()
        if old not in content:
            text = (
                "<tool_use_error>String to replace not found in file.\n"
                f"String: {old}</tool_use_error>"
            )
            return text, True, f"Error: {text}"
        count = -1 if tool_input.get("replace_all") else 1
        path.write_text(content.replace(old, new, count))
        return f"The file {path} has been updated successfully.", False, {"filePath": str(path)}

    # ------------------------------------------------------------------ SDK MCP servers
    def _sdk_servers(self) -> list[str]:
        return [
            n for n, c in self.mcp_servers.items() if isinstance(c, dict) and c.get("type") == "sdk"
        ]

    def _mcp(
        self, server: str, method: str, params: dict[str, Any] | None = None, notify: bool = False
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        if not notify:
            message["id"] = self.mcp_next_id.get(server, 0)
            self.mcp_next_id[server] = message["id"] + 1
        answer = self.request({"subtype": "mcp_message", "server_name": server, "message": message})
        return answer.get("mcp_response") or {}

    def connect_mcp_servers(self) -> None:
        """initialize + notifications/initialized + tools/list, once per SDK server."""
        self.mcp_connected = True
        for server in self._sdk_servers():
            try:
                init = self._mcp(
                    server,
                    "initialize",
                    {
                        "protocolVersion": "2025-06-18",
                        "capabilities": {},
                        "clientInfo": {"name": "fake-claude-code", "version": FAKE_CLI_VERSION},
                    },
                )
                if "error" in init:
                    raise ControlError(str(init["error"]))
                self._mcp(server, "notifications/initialized", notify=True)
                listed = self._mcp(server, "tools/list", {})
                tools = (listed.get("result") or {}).get("tools") or []
                self.mcp_tools[server] = [t.get("name") for t in tools if isinstance(t, dict)]
                self.mcp_status[server] = "connected"
            except (ControlError, StreamClosed):
                self.mcp_status[server] = "failed"

    def call_mcp(
        self, name: str, tool_input: dict[str, Any], tool_use_id: str
    ) -> tuple[Any, bool, Any]:
        parts = name.split("__", 2)
        server, tool = (parts[1], parts[2]) if len(parts) == 3 else ("", name)
        if self.mcp_status.get(server) != "connected":
            message = f"<tool_use_error>Error: No such tool available: {name}</tool_use_error>"
            return message, True, f"Error: {message}"
        try:
            answer = self._mcp(
                server,
                "tools/call",
                {
                    "name": tool,
                    "arguments": tool_input,
                    "_meta": {"claudecode/toolUseId": tool_use_id},
                },
            )
        except (ControlError, StreamClosed) as e:
            return f"Error: {e}", True, f"Error: {e}"
        if "error" in answer:  # a JSON-RPC error (unknown tool, bad arguments...)
            error = answer["error"]
            message = str(error.get("message", error) if isinstance(error, dict) else error)
            return message, True, f"Error: {message}"
        result = answer.get("result") or {}
        content = result.get("content") or []
        return content, bool(result.get("isError")), content


def main() -> int:
    return FakeClaudeCLI(sys.argv[1:]).run()


if __name__ == "__main__":
    sys.exit(main())
