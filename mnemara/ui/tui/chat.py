"""The chat log and its entries: messages, streamed Markdown, tool lines, notices.

Entries only display what they are given; the app feeds them engine events and store rows.
Whatever they show from the model, a tool or the store is inert (`termsafe`): an ESC in a message
shows as `\x1b` and cannot move the cursor over the header or the status bar.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

from rich.cells import cell_len, set_cell_size
from rich.console import RenderableType
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from ...engine.events import ToolCall, ToolResult, TurnFinished, Usage
from ...store.blocks import result_text
from ...store.turns import Turn
from ...claude_tools import summarize_tool_call
from ...termsafe import inert
from ...views import recall_item_label, recall_summary, slots_summary, summary_heading
from .markdown_stream import InertMarkdown, StreamedMarkdown

DETAIL_MAX_LINES = 200  # an expanded tool result shows at most this many lines
NOTICE_ICONS = {"info": "·", "warning": "!", "error": "✗", "eviction": "⇡"}


class UserMessage(Static):
    def __init__(self, text: str, *, failed: bool = False) -> None:
        body = Text(inert(text.rstrip("\n")))
        if failed:
            body.append("\n✗ failed: never sent to the model · /retry resends it", "italic")
        super().__init__(body, classes="user-message" + (" -failed" if failed else ""))


class AssistantText(Static):
    """An assistant text block rendered as Markdown, one widget per block (not one per
    paragraph) so a long chat stays cheap to lay out.

    While it streams, text arrives in batches via `append`. Finished paragraphs are rendered
    once and cached; each batch re-renders only the paragraph still being written, so the cost
    of a batch does not grow with the length of the reply. `replace` (the complete block)
    renders the whole text in one piece.
    """

    def __init__(self, text: str = "") -> None:
        super().__init__(classes="assistant-text")
        self.source = text
        self._stream: StreamedMarkdown | None = None
        if text:
            self.update(InertMarkdown(text))

    def append(self, chunk: str) -> None:
        if self._stream is None:
            self._stream = StreamedMarkdown(self.source)
        self.source += chunk
        self._stream.feed(chunk)
        self.update(self._stream)

    def replace(self, text: str) -> None:
        self.source = text
        self._stream = None
        self.update(InertMarkdown(text))


class CommandOutput(Static):
    """What a slash command printed: its text verbatim, or a richer layout of the same."""

    def __init__(self, body: str | RenderableType, *, text: str | None = None) -> None:
        super().__init__(Text(inert(body)) if isinstance(body, str) else body, classes="command-output")
        self.text = body if isinstance(body, str) else (text or "")


class NoticeLine(Static):
    """A notice in the style of its kind: info, warning, error or eviction."""

    def __init__(self, kind: str, text: str) -> None:
        kind = kind if kind in NOTICE_ICONS else "info"
        super().__init__(Text(f"{NOTICE_ICONS[kind]} {inert(text)}"), classes=f"notice -{kind}")
        self.kind = kind


class TurnSummary(Static):
    """The dim line under a finished turn: real tokens, cache share, cost."""

    def __init__(self, usage: Usage, cost_usd: float | None, api_calls: int = 1,
                 status: str = "complete") -> None:
        parts = ([f"in {usage.total_input:,}", f"out {usage.output_tokens:,}"]
                 if usage.total_input or usage.output_tokens else ["usage not reported"])
        if usage.cache_hit_ratio is not None:
            parts.append(f"cache {usage.cache_hit_ratio:.0%}")
        if cost_usd is not None:
            parts.append(f"${cost_usd:.4f}")
        if api_calls > 1:
            parts.append(f"{api_calls} API calls")
        if status == "interrupted":
            parts.append("interrupted")
        super().__init__(Text(" · ".join(parts)), classes="turn-summary")

    @classmethod
    def from_event(cls, event: TurnFinished) -> "TurnSummary":
        return cls(event.usage, event.cost_usd, event.api_calls, event.status)


class FoldLine(Vertical, can_focus=True):
    """One line that opens on Enter, Space or a click to show its detail."""

    BINDINGS = [Binding("enter,space", "toggle", "Open/close", key_display="⏎")]
    expanded: reactive[bool] = reactive(False)

    def __init__(self, summary: str, detail: str = "", *, classes: str = "") -> None:
        super().__init__(classes=f"fold {classes}".strip())
        self._summary, self._detail = inert(summary), inert(detail)
        self._state: tuple[str, str] = ("", "")  # (text, style) after the summary

    def compose(self) -> Iterable[Widget]:
        yield FoldSummary(classes="fold-summary")
        detail = Static(Text(self._detail), classes="fold-detail")
        detail.display = False
        yield detail

    def summary_line(self, width: int) -> Text:
        """The closed line at `width` cells: the summary gives way so the state stays visible."""
        marker = "▾ " if self.expanded else "▸ "
        state = f"  {self._state[0]}" if self._state[0] else ""
        room = max(1, width - len(marker))
        summary = self._summary
        if state and cell_len(summary) + cell_len(state) > room:
            summary = _cut(summary, max(room // 2, room - cell_len(state)))
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        text.append(marker, "dim")
        text.append(summary)
        text.append(state, self._state[1])
        text.truncate(max(1, width), overflow="ellipsis")
        return text

    def set_state(self, text: str, style: str = "dim", detail: str | None = None) -> None:
        self._state = (inert(text), style)
        if detail is not None:
            self._detail = inert(detail)
        if self.is_mounted:
            self.query_one(FoldSummary).refresh()
            self.query_one(".fold-detail", Static).update(Text(self._detail))

    def watch_expanded(self, expanded: bool) -> None:
        if self.is_mounted:
            self.query_one(".fold-detail", Static).display = expanded
            self.query_one(FoldSummary).refresh()

    def action_toggle(self) -> None:
        self.expanded = not self.expanded

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.focus()
        self.action_toggle()


class FoldSummary(Widget):
    """The one visible line of a FoldLine, laid out for the width it gets."""

    DEFAULT_CSS = "FoldSummary { height: 1; }"

    def render(self) -> Text:
        fold = self.parent
        assert isinstance(fold, FoldLine)
        return fold.summary_line(self.size.width or 80)


def _cut(text: str, cells: int) -> str:
    if cell_len(text) <= cells:
        return text
    return set_cell_size(text, max(1, cells - 1)) + "…"


class ToolLine(FoldLine):
    """A tool call and, once it arrives, its result: one line, detail on demand."""

    def __init__(self, call_id: str, name: str, args: dict[str, Any], summary: str | None = None) -> None:
        self.call_id, self.tool_name, self.args = call_id, name, args
        super().__init__("⚙ " + _short_tool_name(summary or summarize_tool_call(name, args)),
                         _tool_detail(args, None), classes="tool-line")
        self._state = ("waiting…", "dim")

    @classmethod
    def from_event(cls, event: ToolCall) -> "ToolLine":
        return cls(event.id, event.name, event.input, event.summary)

    def set_result(self, text: str, is_error: bool) -> None:
        lines = text.count("\n") + 1 if text else 0
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "(no output)")
        if is_error:
            state, style = f"✗ {first}", "red"
            self.add_class("-error")
        else:
            more = f" (+{lines - 1} lines)" if lines > 1 else ""
            state, style = f"✓ {first}{more}", "green"
        self.set_state(state, style, _tool_detail(self.args, text))

    def set_result_event(self, event: ToolResult) -> None:
        self.set_result(event.text, event.is_error)


class ThinkingLine(FoldLine):
    def __init__(self, text: str) -> None:
        super().__init__(f"∴ thinking ({len(text):,} characters, not re-sent)", text,
                         classes="thinking-line")


def _short_tool_name(summary: str) -> str:
    """`mcp__mnemara__pin_turn: ...` -> `pin_turn: ...`; other servers keep `server/tool`."""
    if summary.startswith("mcp__"):
        server, _, rest = summary[5:].partition("__")
        return rest if server == "mnemara" else f"{server}/{rest}"
    return summary


def _tool_detail(args: dict[str, Any], result: str | None) -> str:
    body = json.dumps(args, indent=2, ensure_ascii=False)
    if result is None:
        return f"input:\n{body}\n\noutput: (waiting)"
    lines = result.splitlines()
    if len(lines) > DETAIL_MAX_LINES:
        lines = lines[:DETAIL_MAX_LINES] + [f"… {len(lines) - DETAIL_MAX_LINES:,} more lines "
                                             "(the model saw them all)"]
    return f"input:\n{body}\n\noutput:\n" + ("\n".join(lines) or "(empty)")


class RecallLine(FoldLine):
    """The memories recalled into a user turn: one line, Enter shows what was sent."""

    def __init__(self, block: dict[str, Any]) -> None:
        items = block.get("items") or []
        detail = "\n\n".join(f"[{recall_item_label(i)} · {i.get('time', '')} · score "
                              f"{float(i.get('score', 0)):.2f}]\n{i.get('text', '')}" for i in items)
        super().__init__(recall_summary(block, 200), detail, classes="recall-line")


class SlotsLine(FoldLine):
    """The slots sent at the end of a user turn (they had changed): one line, Enter shows them."""

    def __init__(self, block: dict[str, Any]) -> None:
        detail = "\n\n".join(f"[{s.get('name', '?')}]\n{s.get('text', '')}" for s in block.get("slots") or [])
        super().__init__(slots_summary(block, 200), detail or "(every slot is empty)", classes="recall-line")


class SummaryLine(FoldLine):
    """A /compress summary standing for archived turns: one line, Enter shows the summary."""

    def __init__(self, block: dict[str, Any]) -> None:
        super().__init__(summary_heading(block), str(block.get("text", "")), classes="summary-line")


class _Rows:
    """What building one stored row's widgets needs: the row and its tool lines so far."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.tools: dict[str, ToolLine] = {}


def _text_widgets(block: dict[str, Any], rows: _Rows) -> list[Widget]:
    if rows.turn.role == "user":
        return [UserMessage(block.get("text", ""), failed=rows.turn.status == "failed")]
    return [AssistantText(block["text"])] if block.get("text", "").strip() else []


def _tool_use_widgets(block: dict[str, Any], rows: _Rows) -> list[Widget]:
    line = ToolLine(block.get("id", ""), block.get("name", "?"), block.get("input") or {})
    rows.tools[line.call_id] = line
    return [line]


def _tool_result_widgets(block: dict[str, Any], rows: _Rows) -> list[Widget]:
    line = rows.tools.get(block.get("tool_use_id", ""))
    if line is not None:
        line.set_result(result_text(block.get("content")), bool(block.get("is_error")))
    return []


# How each content-block kind shows in the chat log (keys: `store.blocks.BLOCK_KINDS`).
BLOCK_WIDGETS: dict[str, Callable[[dict[str, Any], _Rows], list[Widget]]] = {
    "text": _text_widgets,
    "tool_use": _tool_use_widgets,
    "tool_result": _tool_result_widgets,
    "thinking": lambda block, rows: [ThinkingLine(block.get("thinking", ""))],
    "recall": lambda block, rows: [RecallLine(block)],
    "slots": lambda block, rows: [SlotsLine(block)],
    "summary": lambda block, rows: [SummaryLine(block)],
}


def turn_widgets(turn: Turn) -> list[Widget]:
    """A stored window row as chat log entries."""
    rows = _Rows(turn)
    out: list[Widget] = []
    for block in turn.blocks:
        build = BLOCK_WIDGETS.get(block.get("type", ""))
        if build is not None:
            out.extend(build(block, rows))
    if turn.role == "user":
        # As it appeared live: the message, then what was recalled for it (the model reads the
        # recalled memories first; the person reads their own words first).
        return sorted(out, key=lambda w: isinstance(w, RecallLine))
    if turn.status == "interrupted":
        out.append(NoticeLine("warning", "interrupted: the partial reply is kept in the window"))
    usage = Usage.from_dict(turn.usage)
    if usage.total_input or usage.output_tokens:
        out.append(TurnSummary(usage, turn.cost_usd, status=turn.status))
    return out


class ChatLog(VerticalScroll, can_focus=False):
    """The conversation: stays pinned to the newest entry until the user scrolls up."""

    def on_mount(self) -> None:
        self.anchor()
