"""The chat panel's frame: the header, the input box (with its completions) and the status bar.

They only display what they are given; the app feeds them engine figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import OptionList, Static, TextArea
from textual.widgets.option_list import Option

from ...termsafe import INLINE, inert
from .history import Completion, InputHistory, complete_slash
from .status import StatusFigures, fit, segments


class ChatHeader(Static):
    """One line: display name and instance, model, role doc."""

    def show(self, name: str, model: str, role_doc: str | None, label: str = "") -> None:
        # The display name and the model are free text from config (/swap takes any id): inert.
        model, label = inert(model, INLINE), inert(label, INLINE)
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" mnemara ", "bold reverse")
        text.append(f" {label or name} ", "bold")
        if label and label != name:
            text.append(f"({name}) ", "dim")
        text.append("· ", "dim")
        text.append(model)
        text.append(" · role: ", "dim")
        if role_doc:
            path = Path(role_doc).expanduser()
            text.append(inert(path.name, INLINE) + ("" if path.is_file() else " (missing)"))
        else:
            text.append("(none)", "dim")
        self.update(text)


# --- input -----------------------------------------------------------------------------------------

class SlashSuggestions(OptionList, can_focus=False):
    """The slash commands matching what is typed, shown above the input box."""

    def show(self, matches: list[Completion]) -> None:
        self.matches = matches
        self.clear_options()
        width = max((len(m.usage) for m in matches), default=0)
        room = max(10, (self.size.width or self.app.size.width) - width - 6)  # one line each
        self.add_options([Option(Text.assemble((f"{m.usage:<{width}}", "bold"), "  ",
                                               (_cut(m.help, room), "dim")))
                          for m in matches])
        self.display = bool(matches)
        if matches:
            self.highlighted = 0

    def chosen(self) -> Completion | None:
        matches = getattr(self, "matches", [])
        if not self.display or not matches or self.highlighted is None:
            return None
        return matches[self.highlighted]


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class PromptInput(TextArea):
    """Multi-line input: Enter sends; Ctrl+J (or Shift/Alt+Enter where the terminal reports
    them) inserts a newline; Up/Down on the first/last line walk the history; Tab completes a
    slash command."""

    BINDINGS = [
        Binding("enter", "submit", "Send", key_display="⏎"),
        Binding("ctrl+j,shift+enter,alt+enter", "newline", "Newline", key_display="^j"),
        Binding("tab", "complete", "Complete", key_display="⇥"),
    ]

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, history: InputHistory, commands: list[tuple[str, str, str]],
                 suggestions: SlashSuggestions, **kwargs: Any) -> None:
        super().__init__(soft_wrap=True, tab_behavior="focus", show_line_numbers=False,
                         highlight_cursor_line=False, **kwargs)
        self.input_history = history
        self.commands = commands
        self.suggestions = suggestions
        self.scroll_target: Widget | None = None  # PgUp/PgDn scroll this (the chat log)
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
        choice = self.suggestions.chosen()
        if choice is not None and text.strip().lower() != f"/{choice.name}":
            # a partly typed command: Enter takes the highlighted one; one that needs an
            # argument stays in the box for it
            self._set(choice.insert)
            if choice.insert.endswith(" "):
                return
            text = self.text
        self.post_message(self.Submitted(text))

    def take(self) -> str:
        """Empty the box (after the app accepted the text) and remember it in the history."""
        text = self.text
        self.input_history.add(text)
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
            entry = self.input_history.previous(self.text)
            if entry is not None:
                self._recall(entry)
            return
        super().action_cursor_up(select)

    def action_cursor_down(self, select: bool = False) -> None:
        if not select and self.suggestions.display and self.suggestions.option_count:
            self.suggestions.action_cursor_down()
            return
        if not select and self.cursor_location[0] == self.document.line_count - 1:
            entry = self.input_history.following()
            if entry is not None:
                self._recall(entry)
            return
        super().action_cursor_down(select)

    def action_cursor_page_up(self) -> None:
        if self.scroll_target is not None:
            self.scroll_target.scroll_page_up()

    def action_cursor_page_down(self) -> None:
        if self.scroll_target is not None:
            self.scroll_target.scroll_page_down()

    def _recall(self, entry: str) -> None:
        self._recalled = True
        self._set(entry)

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if self._recalled:
            self._recalled = False
            self.suggestions.show([])
            return
        if not self.input_history.navigating:
            self.input_history.reset()
        self.suggestions.show(complete_slash(self.text, self.commands))


# --- status bar ------------------------------------------------------------------------------------

STATUS_STYLES = {"label": "dim", "value": "", "model": "bold", "warn": "bold yellow",
                 "busy": "bold cyan", "meter-ok": "green", "meter-warn": "yellow",
                 "meter-alert": "bold red", "meter-empty": "dim", "alert": "bold red"}


class StatusBar(Widget):
    """Window turns, token meter, last turn's real tokens, cache, cost, model, archive notice."""

    figures: reactive[StatusFigures | None] = reactive(None, layout=True)

    def _line(self, width: int) -> Text:
        """One line, whatever the width: the least important figures shorten or give way."""
        if self.figures is None:
            return Text("")
        text = Text(" ", no_wrap=True, overflow="ellipsis")
        for i, seg in enumerate(fit(segments(self.figures), max(1, width - 2))):
            if i:
                text.append(" │ ", "dim")
            for part, style in seg.parts:
                text.append(inert(part, INLINE), STATUS_STYLES.get(style, ""))
        return text

    def render(self) -> Text:
        return self._line(self.size.width or 80)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 1
