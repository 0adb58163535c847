"""The turn engine: one SDK query per turn, carrying the rolling window; typed events out.

    async for event in engine.run("hello"):
        ...render event; answer PermissionRequest events...

No UI imports. The TUI, the REPL and `mnemara ask` all drive this class.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from ..config import Config
from ..debuglog import DebugLog
from ..instance import Instance
from ..lock import TURN_WAIT_SECONDS, InstanceLock, acquire_waiting
from ..store import Budget, TurnStore
from ..memory.slots import pending_block
from ..store.blocks import (render_block, result_text, text_block, thinking_block,
                            tool_result_block, tool_use_block)
from ..claude_tools import summarize_tool_call
from .events import (Event, Notice, SessionStats, TextDelta, TextDone, Thinking, ToolCall,
                     ToolResult, TurnFinished, Usage)
from .failures import MessageTooLarge, explain, hints, too_large
from .gate import PermissionGate
from .memory_bridge import MemoryBridge
from .oneshot import disconnect_quietly, one_message
from .permissions import PermissionPolicy
from .prompt import offered_builtins, read_role_doc, user_message, window_blocks
from .tools import ToolContext

LOW_WATER = 0.75       # when eviction is needed, evict down to 75% of the budget in one chunk
RENDER_OVERHEAD = 80   # characters the <turn ...> wrapper adds around a new message
CALIBRATE_MIN_CHARS = 20_000  # below this the CLI's own prompt dominates and skews the ratio
_DONE = object()


class TurnEngine(MemoryBridge):
    def __init__(self, instance: Instance, *, config: Config | None = None,
                 cli_path: str | Path | None = None, env: dict[str, str] | None = None,
                 unattended: str | None = None, embedder: Any = "config",
                 front_end: str = "chat") -> None:
        self.instance = instance
        # "chat" (TUI, REPL: /retry exists) or "ask" (one command): failure hints are phrased
        # for the front end that shows them.
        self.front_end = front_end
        self.config = config or instance.load_config()
        self.store = TurnStore(instance.turns_path, result_max_chars=self.config.tool_result_max_chars)
        self.log = DebugLog(instance.debug_log_path)
        self.stats = SessionStats()
        self.cli_path = cli_path or os.environ.get("MNEMARA_CLI_PATH") or None
        self.extra_env = dict(env or {})
        self.unattended = unattended
        self.cwd = Path(self.config.cwd).expanduser() if self.config.cwd else Path.cwd()
        self.policy = self._make_policy()
        from ..index.remote import index_process
        from ..memory.service import MemoryService  # light: the index opens on first use
        # A chat session runs LanceDB in a child process it replaces as it grows (index/remote.py).
        self.memory = MemoryService(instance, self.config, embedder=embedder,
                                    process=index_process(self.config, front_end, embedder))
        self.tools = ToolContext(instance=instance, config=self.config, store=self.store,
                                 stats=self.stats, notify=self._tool_notice, memory=self.memory,
                                 apply_config=self.set_config)
        self._memory_notes_shown: set[str] = set()
        self._drainer: asyncio.Task[Any] | None = None
        self._client: Any = None
        self._interrupted = False
        # Shown by every front end when it starts.
        self.startup_notices: list[Notice] = [Notice("warning", w) for w in self.policy.warnings]
        stale = self.store.fail_stale_pending()
        if stale:
            self.startup_notices.append(Notice(
                "warning", f"turn {stale[-1]} was left unfinished by an earlier session; it is marked "
                           f"failed and will not be sent ({hints(front_end)['resend']})"))
        self._tool_notices: list[Notice] = []
        self.busy = False
        # What a busy engine is doing: "turn", or "summary" while /compress asks the model
        # (so /stop says what it stops).
        self.activity = "turn"

    def _make_policy(self, session_grants: frozenset[str] = frozenset()) -> PermissionPolicy:
        return PermissionPolicy(self.config.allowed_tools, home=Path.home(),
                                file_tool_home_only=self.config.file_tool_home_only,
                                permissions_path=self.instance.permissions_path, cwd=self.cwd,
                                session_grants=session_grants)

    def set_config(self, config: Config, *, save: bool = True) -> None:
        """Apply a changed config (e.g. /swap, /tokens, /role) to the next turn."""
        if save:
            self.instance.save_config(config)
        self.config = config
        self.tools.config = config
        self.memory.config = config
        self.store.result_max_chars = config.tool_result_max_chars
        self.policy = self._make_policy(self.policy.session_grants)  # "s" answers survive

    def close(self) -> None:
        self.store.close()
        self.memory.close()

    def _tool_notice(self, kind: str, text: str) -> None:
        self._tool_notices.append(Notice(kind, text))
        self.log.write("tool_notice", kind=kind, text=text)

    # --- public entry points -----------------------------------------------------------------------
    async def run(self, text: str) -> AsyncIterator[Event]:
        """Run one turn for the user's `text`, yielding events until TurnFinished."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._interrupted = False  # reset here, not in the task: an early interrupt must stick
        self.busy = True
        task = asyncio.create_task(self._turn(text, queue.put))
        task.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while True:
                event = await queue.get()
                if event is _DONE:
                    break
                yield event
        finally:
            if not task.done():
                try:  # the consumer went away mid-turn: stop the turn, but never hang on it
                    await asyncio.wait_for(self.interrupt(), 5)
                    await asyncio.wait_for(asyncio.shield(task), 10)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    task.cancel()
        task.result()

    def last_failed(self) -> Any:
        """The failed user turn /retry would resend (the newest one), or None."""
        for turn in reversed(self.store.window()):
            if turn.role == "user":
                return turn if turn.status == "failed" else None
        return None

    async def retry(self) -> AsyncIterator[Event]:
        """Resend the last failed user turn as a new turn; the failed row goes to the archive."""
        failed = self.last_failed()
        if failed is None:
            yield Notice("warning", "nothing to retry: the last user turn did not fail")
            return
        later = [t.id for t in self.store.window() if t.id > failed.id]
        self.store.evict([failed.id, *later], "retried")
        async for event in self.run(failed.text):
            yield event

    async def interrupt(self) -> None:
        self._interrupted = True
        client = self._client
        if client is not None:
            try:
                await client.interrupt()
            except Exception as exc:  # noqa: BLE001 - the CLI may already be gone; say so in the log
                self.log.write("interrupt_failed", error=f"{type(exc).__name__}: {exc}")

    # --- one turn --------------------------------------------------------------------------------
    async def _turn(self, text: str, emit: Callable[[Any], Any]) -> None:
        started = time.monotonic()
        stderr: deque[str] = deque(maxlen=40)
        state = _TurnState()
        # Shared for the whole turn: an import, restore or backup (exclusive) waits for the turn
        # to end, and the turn waits for one in progress, never seeing it half-done (lock.py).
        lock = InstanceLock(self.instance.root, self.instance.name, exclusive=False, purpose="chat turn")
        try:
            if not await acquire_waiting(lock, TURN_WAIT_SECONDS, lambda m: emit(Notice("warning", m)),
                                         lambda: self._interrupted):
                error = ("interrupted while waiting for the instance lock; nothing was stored or sent"
                         if self._interrupted else lock.busy_message(TURN_WAIT_SECONDS))
                await emit(TurnFinished(status="refused", user_turn_id=None, assistant_turn_id=None,
                                        usage=Usage(), cost_usd=None,
                                        duration_ms=int((time.monotonic() - started) * 1000),
                                        api_calls=0, error=error))
                return
            try:
                prepared = await self.prepare(text, emit)
            except MessageTooLarge as exc:
                # Refused before anything was stored or sent: the window is as it was.
                self.log.write("message_refused", error=str(exc), chars=len(text))
                await emit(TurnFinished(status="refused", user_turn_id=None, assistant_turn_id=None,
                                        usage=Usage(), cost_usd=None,
                                        duration_ms=int((time.monotonic() - started) * 1000),
                                        api_calls=0, error=str(exc)))
                return
            error = await self._query(prepared, state, emit, stderr)
            await emit_all(emit, self.drain_notices())
            finished = self.record(prepared, state, error, stderr, started)
        finally:
            self.busy = False
            lock.release()
        if finished.status == "interrupted":
            await emit(Notice("warning", "interrupted: the partial reply is kept in the window"))
        await emit(finished)

    async def prepare(self, text: str, emit: Callable[[Any], Any]) -> "_Prepared":
        """Before the request: role doc, budget, the pending user turn, the rendered window."""
        role = read_role_doc(self.config.role_doc_path)
        if role.warning:
            await emit(Notice("warning", role.warning))
            self.log.write("role_doc", warning=role.warning)
        self.tools.system_prompt_tokens = self.store.estimator.estimate(role.text)
        self._refuse_if_too_large(text, self.tools.system_prompt_tokens)
        # The budget is enforced first, with room for the most a recall may add, so what this
        # eviction moves out of the window can be recalled right away when it matters.
        # Changed slots end the new message (memory/slots.py says why there): room for them too.
        slots = pending_block(self.store, self.config)
        reserve = self._recall_reserve() + (self.store.estimator.estimate(render_block(slots)) if slots else 0)
        await self._enforce_budget(text, emit, reserve_tokens=reserve)
        recalled = await self._recall(text, emit)
        blocks = [recalled, text_block(text)] if recalled else [text_block(text)]
        slots = pending_block(self.store, self.config)  # again: eviction may have taken their carrier
        if slots:
            blocks.append(slots)
        user = self.store.add_turn("user", blocks, status="pending", model=self.config.model)
        blocks = window_blocks(self.store.sendable_renderings())
        chars = len(role.text) + sum(len(b["text"]) for b in blocks)
        return _Prepared(role.text, user.id, user_message(blocks), chars)

    async def _query(self, prepared: "_Prepared", state: "_TurnState",
                     emit: Callable[[Any], Any], stderr: deque[str]) -> str | None:
        """The SDK round trip. Returns the failure sentence, or None."""
        gate = PermissionGate(self.policy, bash_timeout_seconds=self.config.bash_timeout_seconds,
                              log=self.log, emit=emit, unattended=self.unattended)
        try:
            from claude_agent_sdk import ClaudeSDKClient
            client = ClaudeSDKClient(self._options(prepared.system_prompt, gate, stderr))
            self._client = client
            try:
                await client.connect()
                if self._interrupted:  # interrupted while the CLI was starting: send nothing
                    return None
                await client.query(one_message(prepared.message))
                async for message in client.receive_response():
                    await self._handle(message, state, emit)
                    await emit_all(emit, self.drain_notices())
            finally:
                self._client = None
                await disconnect_quietly(client)
        except Exception as exc:  # noqa: BLE001 - every failure becomes one explained sentence
            if self._interrupted:
                return None
            error = explain(exc=exc, result=state.result, assistant_error=state.assistant_error,
                            stderr=[*stderr, state.cli_error_text],
                            max_steps=self.config.max_steps_per_turn, front_end=self.front_end)
            error += _gave_up(state.retries)
            self.log.write("turn_error", error=error, exception=f"{type(exc).__name__}: {exc}",
                           stderr=list(stderr))
            return error
        result = state.result
        if self._interrupted or (result is not None and not result.is_error):
            return None
        error = explain(result=result, assistant_error=state.assistant_error,
                        stderr=[*stderr, state.cli_error_text], max_steps=self.config.max_steps_per_turn,
                        front_end=self.front_end) + _gave_up(state.retries)
        self.log.write("turn_error", error=error, stderr=list(stderr),
                       result=getattr(result, "result", None))
        return error

    def record(self, prepared: "_Prepared", state: "_TurnState", error: str | None,
               stderr: deque[str], started: float) -> TurnFinished:
        """After the request: store both turns with status and usage; calibrate; tally."""
        result = state.result
        status = "interrupted" if self._interrupted else ("failed" if error else "complete")
        usage = Usage.from_dict(getattr(result, "usage", None))
        cost = getattr(result, "total_cost_usd", None)
        if self._interrupted and not (usage.total_input or usage.output_tokens):
            # The CLI reports zero usage for an aborted turn yet charges for it: keep what its
            # API calls reported as they streamed, so the tokens match the cost shown with them.
            usage = state.reported_usage()
        assistant_id = None
        # One transaction: a kill between the two writes would leave the question complete
        # without its reply, and the next request would send it unanswered.
        with self.store.transaction():
            self.store.update_turn(prepared.user_id, status="failed" if status == "failed" else "complete")
            if state.blocks:
                assistant_id = self.store.add_turn(
                    "assistant", state.blocks, status=status, model=state.model or self.config.model,
                    usage=usage.to_json() if result or state.call_usage else None, cost_usd=cost).id
        if status != "failed" and state.first_call_input and prepared.chars >= CALIBRATE_MIN_CHARS:
            self.store.calibrate(prepared.chars, state.first_call_input)
        if result is not None:
            self.stats.last_usage, self.stats.last_cost_usd = usage, cost
            self.stats.session_cost_usd += cost or 0.0
        self.stats.turns_run += 1
        return TurnFinished(
            status=status, user_turn_id=prepared.user_id, assistant_turn_id=assistant_id,
            usage=usage, cost_usd=cost, duration_ms=int((time.monotonic() - started) * 1000),
            api_calls=getattr(result, "num_turns", None) or len(state.message_ids),
            error=error, text=state.final_text())

    def refusal(self, text: str) -> MessageTooLarge | None:
        """The refusal `run(text)` would end with (too large for the budget), or None. Lets a
        front end keep an oversized message in its input box instead of drawing it."""
        system_tokens = self.store.estimator.estimate(read_role_doc(self.config.role_doc_path).text)
        try:
            self._refuse_if_too_large(text, system_tokens)
        except MessageTooLarge as exc:
            return exc
        return None

    def _refuse_if_too_large(self, text: str, system_tokens: int) -> None:
        """Raise MessageTooLarge when `text` plus the role doc cannot fit max_window_tokens even
        with the whole window archived: sending it would overflow the budget (and, past the
        model's context, fail at the API after being stored)."""
        message_tokens = self.store.estimator.estimate_chars(len(text) + RENDER_OVERHEAD)
        if system_tokens + message_tokens <= self.config.max_window_tokens:
            return
        raise too_large(text, message_tokens, system_tokens, self.config, self.front_end)

    async def _enforce_budget(self, text: str, emit: Callable[[Any], Any], *, reserve_tokens: int = 0) -> None:
        cfg = self.config
        system_tokens = self.tools.system_prompt_tokens
        room = cfg.max_window_tokens - system_tokens
        if room <= 0:
            await emit(Notice("warning", f"the role doc alone (~{system_tokens:,} tokens) exceeds "
                                         f"max_window_tokens ({cfg.max_window_tokens:,})"))
            room = 1
        incoming = self.store.estimator.estimate_chars(len(text) + RENDER_OVERHEAD) + reserve_tokens
        # A strip the model asked for rides on the change the budget makes now (one cache break).
        from ..store.strip_queue import apply_if_due, applied_notice
        held = apply_if_due(self.store, Budget(cfg.max_window_turns, room),
                            incoming_tokens=incoming, low_water=LOW_WATER)
        if held is not None:
            self.log.write("strip", ids=held.turn_ids, freed_chars=held.freed_chars)
            await emit(Notice("info", applied_notice(held, self.store.estimator.chars_per_token)))
            # The eviction (or compress) still takes the chunk it would have taken: the room the
            # strip freed postpones the next cache break instead of sparing this one.
            incoming += self.store.estimator.estimate_chars(held.freed_chars, blocks=0)
        if cfg.auto_compress:  # summarize what would be evicted; eviction takes what is left over
            from ..ops.compress import compress_before_eviction
            await compress_before_eviction(self, Budget(cfg.max_window_turns, room),
                                           incoming_tokens=incoming, low_water=LOW_WATER, emit=emit,
                                           interrupted=lambda: self._interrupted)
        # Room for the new message and its reply, so the window never grows past the budget.
        eviction = self.store.apply_budget(Budget(cfg.max_window_turns, room), incoming_turns=2,
                                           incoming_tokens=incoming, low_water=LOW_WATER)
        if eviction:
            n = len(eviction.ids)
            self.stats.archived_this_session += n
            self.log.write("eviction", ids=eviction.ids, est_tokens=eviction.est_tokens,
                           reason=eviction.reason)
            await emit(Notice("eviction", f"{n} turn{'s' if n != 1 else ''} archived "
                                          f"(~{eviction.est_tokens:,} tokens) to keep the window "
                                          "within budget", {"ids": eviction.ids}))

    def drain_notices(self) -> list[Notice]:
        """Notices the tools raised since the last call (during a turn, or from a slash command)."""
        out, self._tool_notices = self._tool_notices, []
        return out

    def _options(self, system_prompt: str, gate: PermissionGate, stderr: deque[str]) -> Any:
        from claude_agent_sdk import ClaudeAgentOptions, HookMatcher

        from .tools import build_sdk_server
        cfg = self.config
        servers: dict[str, Any] = {"mnemara": build_sdk_server(self.tools)}
        for s in cfg.mcp_servers:
            servers[s.name] = {"type": "stdio", "command": s.command, "args": list(s.args),
                               "env": dict(s.env)}
        timeout_ms = str(cfg.bash_timeout_seconds * 1000)
        env = {"BASH_DEFAULT_TIMEOUT_MS": timeout_ms, "BASH_MAX_TIMEOUT_MS": timeout_ms,
               # The CLI retries a failed API call 10 times by default (~3 minutes against a dead
               # endpoint); this bounds it, each retry shown as it happens (api_retry below).
               "CLAUDE_CODE_MAX_RETRIES": str(cfg.max_api_retries),
               "CLAUDE_AGENT_SDK_CLIENT_APP": "mnemara", **self.extra_env}

        def on_stderr(line: str) -> None:
            stderr.append(line)
            self.log.write("cli_stderr", line=line)

        return ClaudeAgentOptions(
            tools=builtin_tools(cfg),
            system_prompt=system_prompt,
            mcp_servers=servers,
            model=cfg.model,
            cwd=str(self.cwd),
            cli_path=self.cli_path,
            env=env,
            stderr=on_stderr,
            can_use_tool=gate.can_use_tool,
            hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[gate.pre_tool_use],
                                              timeout=3600)]},
            include_partial_messages=cfg.stream,
            setting_sources=[],
            verbatim_prompts=True,
            max_turns=cfg.max_steps_per_turn,
        )

    async def _handle(self, message: Any, state: "_TurnState", emit: Callable[[Any], Any]) -> None:
        from claude_agent_sdk import (AssistantMessage, ResultMessage, StreamEvent, SystemMessage,
                                      TextBlock, ThinkingBlock, ToolResultBlock, ToolUseBlock,
                                      UserMessage)
        if isinstance(message, StreamEvent):
            if message.parent_tool_use_id:
                return
            ev = message.event
            if ev.get("type") == "content_block_delta" and ev.get("delta", {}).get("type") == "text_delta":
                chunk = ev["delta"].get("text", "")
                if chunk:
                    state.streamed += chunk
                    await emit(TextDelta(chunk))
        elif isinstance(message, AssistantMessage):
            if message.parent_tool_use_id:
                return
            if message.error or message.model == "<synthetic>":
                # The CLI's own report of a failed API call ("Invalid API key", "Not logged in"):
                # the reason for the failure, not a reply from the model.
                state.assistant_error = message.error or state.assistant_error
                state.cli_error_text = " ".join(b.text for b in message.content if isinstance(b, TextBlock))
                return
            state.model = message.model or state.model
            if message.message_id and message.message_id not in state.message_ids:
                state.message_ids.append(message.message_id)
                if state.first_call_input is None and message.usage:
                    state.first_call_input = Usage.from_dict(message.usage).total_input or None
            if message.message_id and message.usage:
                state.call_usage[message.message_id] = message.usage  # the latest, per API call
            for block in message.content:
                if isinstance(block, TextBlock):
                    if not state.streamed:
                        await emit(TextDelta(block.text))
                    state.streamed = ""
                    state.blocks.append(text_block(block.text))
                    await emit(TextDone(block.text))
                elif isinstance(block, ThinkingBlock):
                    state.blocks.append(thinking_block(block.thinking, block.signature))
                    await emit(Thinking(block.thinking))
                elif isinstance(block, ToolUseBlock):
                    state.tool_names[block.id] = block.name
                    state.blocks.append(tool_use_block(block.id, block.name, block.input))
                    await emit(ToolCall(block.id, block.name, block.input,
                                        summarize_tool_call(block.name, block.input)))
        elif isinstance(message, UserMessage):
            if message.parent_tool_use_id or isinstance(message.content, str):
                return
            for block in message.content:
                if isinstance(block, ToolResultBlock):
                    state.blocks.append(tool_result_block(block.tool_use_id, block.content,
                                                          bool(block.is_error)))
                    await emit(ToolResult(block.tool_use_id, state.tool_names.get(block.tool_use_id, "?"),
                                          result_text(block.content), bool(block.is_error)))
        elif isinstance(message, SystemMessage) and message.subtype == "api_retry":
            data = message.data or {}
            status = data.get("error_status")
            error = data.get("error")
            why = f"HTTP {status}" if status else (
                "no response: network or proxy problem?" if error in (None, "unknown") else str(error))
            delay = (data.get("retry_delay_ms") or 0) / 1000
            state.retries = max(state.retries, int(data.get("attempt") or 0))
            self.log.write("api_retry", **{k: data.get(k) for k in ("attempt", "max_retries", "error", "error_status")})
            await emit(Notice("warning", f"the API call failed ({why}); retrying in {delay:.1f} s "
                                         f"(attempt {data.get('attempt')} of {data.get('max_retries')}); "
                                         "Ctrl+C stops", {"retry": data}))
        elif isinstance(message, SystemMessage) and message.subtype == "init":
            data = message.data or {}
            self.log.write("session_init", tools=data.get("tools"), model=data.get("model"),
                           mcp_servers=data.get("mcp_servers"),
                           claude_code_version=data.get("claude_code_version"))
            for server in data.get("mcp_servers") or []:
                if isinstance(server, dict) and server.get("status") not in ("connected", None):
                    await emit(Notice("warning", f"MCP server {server.get('name')!r} is "
                                                 f"{server.get('status')}; its tools are unavailable"))
        elif isinstance(message, ResultMessage):
            state.result = message


@dataclass(frozen=True)
class _Prepared:
    system_prompt: str
    user_id: int
    message: dict[str, Any]
    chars: int  # characters sent (system prompt + window), for calibrating the estimator


class _TurnState:
    """What one turn has gathered so far."""

    def __init__(self) -> None:
        self.blocks: list[dict[str, Any]] = []
        self.tool_names: dict[str, str] = {}
        self.message_ids: list[str] = []
        self.streamed = ""
        self.model: str | None = None
        self.result: Any = None
        self.assistant_error: str | None = None
        self.cli_error_text = ""
        self.first_call_input: int | None = None
        self.retries = 0  # API retries the CLI reported (api_retry), shown as they happened
        self.call_usage: dict[str, dict[str, Any]] = {}  # message id -> usage it last reported

    def reported_usage(self) -> Usage:
        """The sum of what each API call of the turn reported on its assistant messages."""
        calls = [Usage.from_dict(u) for u in self.call_usage.values()]
        return Usage(*(sum(getattr(u, f) for u in calls) for f in
                       ("input_tokens", "output_tokens", "cache_read_input_tokens",
                        "cache_creation_input_tokens")))

    def final_text(self) -> str:
        texts = [b["text"] for b in self.blocks if b.get("type") == "text"]
        return texts[-1] if texts else ""


def builtin_tools(config: Config) -> list[str]:
    """The built-in tools offered to the model: those with an allow or ask policy, nothing else."""
    return offered_builtins(config)


def _gave_up(retries: int) -> str:
    """The tail of a failure sentence after API retries: how many, and the setting for it."""
    if not retries:
        return ""
    return f" (gave up after {retries} retr{'y' if retries == 1 else 'ies'}: max_api_retries)"


async def emit_all(emit: Callable[[Any], Any], events: list[Any]) -> None:
    for event in events:
        await emit(event)


