"""One question to the model outside a chat turn, answered in one step: the path a compress
summary (`ops/compress.py`) and replay's drafts and fact atoms (`replay/synthesize.py`) share.

The caller builds the options (they decide what goes on the wire: the session's own options for
compress, so its request continues the session's cached prefix; a bare tool-less prompt for
replay) and the one user message; this module runs the SDK client through the Claude Code CLI,
keeps the main thread's text (a synthetic or failed assistant message is noted, never taken for
the answer) and turns every failure into the engine's one explained sentence
(`failures.explain`). Nothing is stored here.

No UI import, and the SDK is imported only when a question is asked (cold start).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

STDERR_LINES = 40  # the CLI's last stderr lines kept for explaining a failure


@dataclass(frozen=True)
class Answer:
    """What came back: the answer's text blocks joined by blank lines, the ResultMessage (usage
    and cost; None when the CLI sent none) and, when that result is an error, the sentence
    explaining it."""

    text: str
    result: Any
    error: str | None = None

    @property
    def cost_usd(self) -> float | None:
        return getattr(self.result, "total_cost_usd", None)


class AskFailed(Exception):
    """The question could not be asked or its answer not read: `reason` is the explained
    sentence, `exception` what was raised (for the debug log)."""

    def __init__(self, reason: str, exception: BaseException) -> None:
        super().__init__(reason)
        self.reason = reason
        self.exception = exception


async def ask_once(options: Any, message: dict[str, Any], *, front_end: str,
                   stderr: Callable[[], list[str]],
                   attach: Callable[[Any], None] | None = None,
                   stopped: Callable[[], bool] = lambda: False) -> Answer:
    """Send `message` (a stream-json user message) with `options` and read the answer.

    `stderr()` gives the CLI's stderr lines the options' `stderr` callback collected, for the
    explanation. With `attach`, the question runs on an SDK client that an interrupt (`/stop`,
    Ctrl+C) can reach: `attach(client)` is called with it and `attach(None)` once it is gone, and
    when `stopped()` is true after connecting nothing is sent. Without, it is the SDK's plain
    `query()`, which sends the message exactly as given (the client adds a `session_id`).
    Raises AskFailed; an error result is returned in `error`."""
    from claude_agent_sdk import AssistantMessage, ResultMessage, TextBlock

    from .failures import explain
    texts: list[str] = []
    result: Any = None
    assistant_error: str | None = None
    try:
        async for item in _messages(options, message, attach, stopped):
            if isinstance(item, AssistantMessage) and not item.parent_tool_use_id:
                if item.error or item.model == "<synthetic>":
                    assistant_error = item.error or assistant_error
                    continue
                texts += [b.text for b in item.content if isinstance(b, TextBlock)]
            elif isinstance(item, ResultMessage):
                result = item
    except Exception as exc:  # noqa: BLE001 - every failure becomes one explained sentence
        reason = explain(exc=exc, result=result, assistant_error=assistant_error, stderr=stderr(),
                         front_end=front_end)
        raise AskFailed(reason, exc) from None
    error = None
    if result is not None and result.is_error:
        error = explain(result=result, assistant_error=assistant_error, stderr=stderr(),
                        front_end=front_end)
    return Answer("\n\n".join(t.strip() for t in texts if t.strip()), result, error)


async def _messages(options: Any, message: dict[str, Any], attach: Callable[[Any], None] | None,
                    stopped: Callable[[], bool]) -> AsyncIterator[Any]:
    """The SDK's messages for the one question (see `ask_once` for the two ways)."""
    from claude_agent_sdk import ClaudeSDKClient, query
    if attach is None:
        async for item in query(prompt=one_message(message), options=options):
            yield item
        return
    client = ClaudeSDKClient(options)
    attach(client)
    try:
        await client.connect()
        if stopped():
            return
        await client.query(one_message(message))
        async for item in client.receive_response():
            yield item
    finally:
        attach(None)
        await disconnect_quietly(client)


async def one_message(message: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """`message` as the one-item stream the SDK sends over the CLI's stdin."""
    yield message


async def disconnect_quietly(client: Any) -> None:
    """Disconnect, bounded and silent: by now the outcome is known either way."""
    try:
        await asyncio.wait_for(client.disconnect(), 10)
    except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - the outcome is already known
        pass
