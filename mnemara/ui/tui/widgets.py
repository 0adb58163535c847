"""The chat panel's widgets: header, chat log entries, the input box and the status bar.

They only display what they are given; the app feeds them engine events and store rows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Markdown, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...engine.events import ToolCall, ToolResult, TurnFinished
from ...store.render import result_text
from ...store.turns import Turn
from ...views import summarize_tool_call
from .history import Completion, InputHistory, complete_slash
from .status import StatusFigures, arrange, segments

DETAIL_MAX_LINES = 200  # an expanded tool result shows at most this many lines
NOTICE_ICONS = {"info": "·", "warning": "!", "error": "✗", "eviction": "⇡"}


class ChatHeader(Static):
    """One line: instance (or display name), model, role doc."""

    def show(self, name: str, model: str, role_doc: str | None) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" mnemara ", "bold reverse")
        text.append(f" {name} ", "bold")
        text.append("· ", "dim")
        text.append(model)
        text.append(" · role: ", "dim")
        if role_doc:
            path = Path(role_doc).expanduser()
            text.append(path.name + ("" if path.is_file() else " (missing)"))
        else:
            text.append("(none)", "dim")
        self.update(text)


# --- chat log entries ------------------------------------------------------------------------------

class UserMessage(Static):
    def __init__(self, text: str, *, failed: bool = False) -> None:
        super().__init__(Text(text.rstrip("\n")), classes="user-message" + (" -failed" if failed else ""))
        if failed:
            self.tooltip = "this message failed and is never sent; /retry resends it"


class AssistantText(Markdown):
    """An assistant text block. While it streams, text arrives in batches via `append`."""

    def __init__(self, text: str = "") -> None:
        super().__init__(text, classes="assistant-text")


class CommandOutput(Static):
    """What a slash command printed (plain text, kept verbatim)."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(text), classes="command-output")


class NoticeLine(Static):
    """A notice in the style of its kind: info, warning, error or eviction."""

    def __init__(self, kind: str, text: str) -> None:
        kind = kind if kind in NOTICE_ICONS else "info"
        super().__init__(Text(f"{NOTICE_ICONS[kind]} {text}"), classes=f"notice -{kind}")
        self.kind = kind


class TurnSummary(Static):
    """The dim line under a finished turn: real tokens, cache share, cost."""

    def __init__(self, event: TurnFinished) -> None:
        u = event.usage
        parts = [f"in {u.total_input:,}", f"out {u.output_tokens:,}"]
        if u.cache_hit_ratio is not None:
            parts.append(f"cache {u.cache_hit_ratio:.0%}")
        if event.cost_usd is not None:
            parts.append(f"${event.cost_usd:.4f}")
        if event.api_calls > 1:
            parts.append(f"{event.api_calls} API calls")
        if event.status == "interrupted":
            parts.append("interrupted")
        super().__init__(Text(" · ".join(parts)), classes="turn-summary")


class FoldLine(Vertical, can_focus=True):
    """One line that opens on Enter, Space or a click to show its detail."""

    BINDINGS = [Binding("enter,space", "toggle", "Open/close", show=False)]
    expanded: reactive[bool] = reactive(False)

    def __init__(self, summary: str, detail: str = "", *, classes: str = "") -> None:
        super().__init__(classes=f"fold {classes}".strip())
        self._summary, self._detail = summary, detail
        self._state: tuple[str, str] = ("", "")  # (text, style) after the summary

    def compose(self) -> Iterable[Widget]:
        yield Static(self._summary_text(), classes="fold-summary")
        detail = Static(Text(self._detail), classes="fold-detail")
        detail.display = False
        yield detail

    def _summary_text(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append("▾ " if self.expanded else "▸ ", "dim")
        text.append(self._summary)
        if self._state[0]:
            text.append("  " + self._state[0], self._state[1])
        return text

    def set_state(self, text: str, style: str = "dim", detail: str | None = None) -> None:
        self._state = (text, style)
        if detail is not None:
            self._detail = detail
        if self.is_mounted:
            self.query_one(".fold-summary", Static).update(self._summary_text())
            self.query_one(".fold-detail", Static).update(Text(self._detail))

    def watch_expanded(self, expanded: bool) -> None:
        if self.is_mounted:
            self.query_one(".fold-detail", Static).display = expanded
            self.query_one(".fold-summary", Static).update(self._summary_text())

    def action_toggle(self) -> None:
        self.expanded = not self.expanded

    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.focus()
        self.action_toggle()


class ToolLine(FoldLine):
    """A tool call and, once it arrives, its result: one line, detail on demand."""

    def __init__(self, call_id: str, name: str, args: dict[str, Any], summary: str | None = None) -> None:
        self.call_id, self.name, self.args = call_id, name, args
        super().__init__("⚙ " + (summary or summarize_tool_call(name, args)),
                         _tool_detail(args, None), classes="tool-line")
        self._state = ("…", "dim")

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


def _tool_detail(args: dict[str, Any], result: str | None) -> str:
    body = json.dumps(args, indent=2, ensure_ascii=False)
    if result is None:
        return f"input:\n{body}\n\noutput: (waiting)"
    lines = result.splitlines()
    if len(lines) > DETAIL_MAX_LINES:
        lines = lines[:DETAIL_MAX_LINES] + [f"… {len(lines) - DETAIL_MAX_LINES:,} more lines "
                                             "(the model saw them all)"]
    return f"input:\n{body}\n\noutput:\n" + ("\n".join(lines) or "(empty)")


def turn_widgets(turn: Turn) -> list[Widget]:
    """A stored window row as chat log entries."""
    if turn.role == "user":
        return [UserMessage(turn.text, failed=turn.status == "failed")]
    out: list[Widget] = []
    tools: dict[str, ToolLine] = {}
    for block in turn.blocks:
        kind = block.get("type")
        if kind == "text" and block.get("text", "").strip():
            out.append(AssistantText(block["text"]))
        elif kind == "thinking":
            out.append(ThinkingLine(block.get("thinking", "")))
        elif kind == "tool_use":
            line = ToolLine(block.get("id", ""), block.get("name", "?"), block.get("input") or {})
            tools[line.call_id] = line
            out.append(line)
        elif kind == "tool_result" and block.get("tool_use_id") in tools:
            tools[block["tool_use_id"]].set_result(result_text(block.get("content")),
                                                   bool(block.get("is_error")))
    if turn.status == "interrupted":
        out.append(NoticeLine("warning", "interrupted: the partial reply is kept in the window"))
    return out


class ChatLog(VerticalScroll, can_focus=False):
    """The conversation: stays pinned to the newest entry until the user scrolls up."""

    def on_mount(self) -> None:
        self.anchor()


# --- input -----------------------------------------------------------------------------------------

class SlashSuggestions(OptionList, can_focus=False):
    """The slash commands matching what is typed, shown above the input box."""

    def show(self, matches: list[Completion]) -> None:
        self.matches = matches
        self.clear_options()
        width = max((len(m.usage) for m in matches), default=0)
        self.add_options([Option(Text.assemble((f"{m.usage:<{width}}", "bold"), "  ", (m.help, "dim")))
                          for m in matches])
        self.display = bool(matches)
        if matches:
            self.highlighted = 0

    def chosen(self) -> Completion | None:
        matches = getattr(self, "matches", [])
        if not self.display or not matches or self.highlighted is None:
            return None
        return matches[self.highlighted]


class PromptInput(TextArea):
    """Multi-line input: Enter sends; Ctrl+J (or Shift/Alt+Enter where the terminal reports
    them) inserts a newline; Up/Down on the first/last line walk the history; Tab completes a
    slash command."""

    BINDINGS = [
        Binding("enter", "submit", "Send", key_display="⏎"),
        Binding("ctrl+j,shift+enter,alt+enter", "newline", "Newline", key_display="^j"),
        Binding("tab", "complete", "Complete", show=False),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: InputHistory, commands: list[tuple[str, str, str]],
                 suggestions: SlashSuggestions, **kwargs: Any) -> None:
        super().__init__(soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         highlight_cursor_line=False, **kwargs)
        self.history = history
        self.commands = commands
        self.suggestions = suggestions
        self._recalled = False  # text came from history: do not pop up completions for it

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()

    def action_submit(self) -> None:
        text = self.text
        if not text.strip():
            return
        self.post_message(self.Submitted(text))

    def take(self) -> str:
        """Empty the box (after the app accepted the text) and remember it in the history."""
        text = self.text
        self.history.add(text)
        self._recalled = True  # the Changed event of emptying the box must not show completions
        self._set("")
        self.suggestions.show([])
        return text

    def _set(self, text: str) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end)

    def action_newline(self) -> None:
        self.insert("\n")

    def action_complete(self) -> None:
        choice = self.suggestions.chosen()
        if choice is None:
            self.screen.focus_next()
            return
        self._set(choice.insert)

    def action_cursor_up(self, select: bool = False) -> None:
        if not select and self.suggestions.display and self.suggestions.option_count:
            self.suggestions.action_cursor_up()
            return
        if not select and self.cursor_location[0] == 0:
            entry = self.history.previous(self.text)
            if entry is not None:
                self._recall(entry)
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.suggestions.display and self.suggestions.option_count:
            self.suggestions.action_cursor_down()
            return
        if not select and self.cursor_location[0] == self.document.line_count - 1:
            entry = self.history.following()
            if entry is not None:
                self._recall(entry)
            return
        super().action_cursor_down(select)

    def _recall(self, entry: str) -> None:
        self._recalled = True
        self._set(entry)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._recalled:
            self._recalled = False
            self.suggestions.show([])
            return
        if not self.history.navigating:
            self.history.reset()
        self.suggestions.show(complete_slash(self.text, self.commands))


# --- status bar ------------------------------------------------------------------------------------

STATUS_STYLES = {"label": "dim", "value": "", "model": "bold", "warn": "bold yellow",
                 "busy": "bold cyan", "meter-ok": "green", "meter-warn": "yellow",
                 "meter-alert": "bold red", "meter-empty": "dim"}


class StatusBar(Widget):
    """Window turns, token meter, last turn's real tokens, cache, cost, model, archive notice."""

    figures: reactive[StatusFigures | None] = reactive(None, layout=True)

    def _lines(self, width: int) -> list[Text]:
        if self.figures is None:
            return [Text("")]
        out = []
        for line in arrange(segments(self.figures), max(1, width - 2)):
            text = Text(" ")
            for i, seg in enumerate(line):
                if i:
                    text.append(" │ ", "dim")
                for part, style in seg.parts:
                    text.append(part, STATUS_STYLES.get(style, ""))
            out.append(text)
        return out

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width or 80))

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return len(self._lines(width))
