"""Typed events a turn emits. Front ends (TUI, REPL, one-shot) only render these.

`PermissionRequest` is the one event that needs an answer: the front end calls `answer("y")`
(or n / a / s) and the engine, which is waiting on it, goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class TextDelta:
    """A piece of assistant text, in order. Concatenated deltas make each text block."""

    text: str


@dataclass(frozen=True)
class TextDone:
    """An assistant text block is complete (`text` is all of it)."""

    text: str


@dataclass(frozen=True)
class Thinking:
    """The model thought (stored, never re-sent)."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: dict[str, Any]
    summary: str


@dataclass(frozen=True)
class ToolResult:
    tool_use_id: str
    name: str
    text: str
    is_error: bool


@dataclass(frozen=True)
class Notice:
    """Something the user should see: `kind` is info, warning, error or eviction."""

    kind: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recalled:
    """Memories recalled into the user's turn before it was sent (stored with it, re-sent as is).

    `items` are the recall block's items: id, kind, time, score, signals, text."""

    items: list[dict[str, Any]]
    tokens: int
    mode: str                     # "hybrid" | "text"
    summary: str                  # one line: "⟲ recalled 2 memories: turn #12, note ..."


@dataclass
class PermissionRequest:
    tool: str
    input: dict[str, Any]
    summary: str
    reason: str = ""
    _future: asyncio.Future | None = field(default=None, repr=False, compare=False)

    CHOICES = ("y", "n", "a", "s")

    def answer(self, choice: str) -> None:
        """y: allow once, n: deny, a: always allow this exact target, s: allow tool this session."""
        choice = choice.strip().lower()[:1]
        if choice not in self.CHOICES:
            raise ValueError(f"answer with one of {', '.join(self.CHOICES)}")
        if self._future is not None and not self._future.done():
            self._future.get_loop().call_soon_threadsafe(_resolve, self._future, choice)


def _resolve(future: asyncio.Future, value: str) -> None:
    if not future.done():
        future.set_result(value)


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> "Usage":
        data = data or {}
        return cls(*(int(data.get(k) or 0) for k in
                     ("input_tokens", "output_tokens", "cache_read_input_tokens",
                      "cache_creation_input_tokens")))

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_read_input_tokens + self.cache_creation_input_tokens

    @property
    def cache_hit_ratio(self) -> float | None:
        """Share of input tokens served from the prompt cache (None when nothing was sent)."""
        return self.cache_read_input_tokens / self.total_input if self.total_input else None

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class TurnFinished:
    """The turn is over. `status`: complete, failed or interrupted; `error` says why it failed."""

    status: str
    user_turn_id: int | None
    assistant_turn_id: int | None
    usage: Usage
    cost_usd: float | None
    duration_ms: int
    api_calls: int
    error: str | None = None
    text: str = ""


Event = (TextDelta | TextDone | Thinking | ToolCall | ToolResult | Notice | Recalled | PermissionRequest
         | TurnFinished)


def event_json(event: Event) -> dict[str, Any]:
    """A JSON-ready dict for `mnemara ask --json`: {"event": "<name>", ...fields}."""
    name = {TextDelta: "text_delta", TextDone: "text", Thinking: "thinking", ToolCall: "tool_call",
            ToolResult: "tool_result", Notice: "notice", Recalled: "recalled",
            PermissionRequest: "permission_request", TurnFinished: "turn_finished"}[type(event)]
    if isinstance(event, PermissionRequest):
        body = {"tool": event.tool, "input": event.input, "summary": event.summary, "reason": event.reason}
    else:
        body = asdict(event)
    return {"event": name, **body}


@dataclass
class SessionStats:
    """Running figures for the status bar and `inspect_context`."""

    last_usage: Usage = field(default_factory=Usage)
    last_cost_usd: float | None = None
    session_cost_usd: float = 0.0
    turns_run: int = 0
    archived_this_session: int = 0
    last_recall: "Recalled | None" = None   # what the latest turn recalled (None: nothing)
    memory: Any = None                      # the latest MemoryStatus, refreshed off the event loop
