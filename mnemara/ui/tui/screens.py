"""Screens over the chat: the permission prompt and the window viewer (`/context`)."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, DataTable, Footer, Static

from ...engine.events import PermissionRequest
from ...store.turns import Turn
from ...termsafe import INLINE, inert, inert_json, one_line
from ...views import ROLE_LABEL, display_turn
from ..commands import dispatch, window_totals

if TYPE_CHECKING:
    from ...engine.turn import TurnEngine

CHOICES = (("y", "Yes, once", "success"), ("n", "No", "error"), ("a", "Always", "primary"),
           ("s", "Session", "warning"))


class PermissionScreen(ModalScreen[str]):
    """Asks y / n / a / s for one tool call. Escape answers n.

    Keys are ignored for ARM_SECONDS after the dialog opens, so a letter typed into the input
    box just as the dialog appears cannot answer it by accident.
    """

    ARM_SECONDS = 0.3
    BINDINGS = [
        Binding("y", "choose('y')", "Allow once"),
        Binding("n", "choose('n')", "Deny"),
        Binding("a", "choose('a')", "Always (this call)"),
        Binding("s", "choose('s')", "Tool, this session"),
        Binding("escape", "choose('n')", "Deny", show=False),
    ]

    def __init__(self, request: PermissionRequest) -> None:
        super().__init__(classes="permission-screen")
        self.request = request
        self.answered = False
        self._opened = time.monotonic()

    def compose(self) -> Iterable[Widget]:
        req = self.request
        tool = inert(req.tool, INLINE)  # the model names the tool; nothing it sends is obeyed
        with Vertical(id="permission-dialog") as dialog:
            dialog.border_title = Text(f"Allow {tool}?")
            yield Static(Text(req.summary, style="bold"), id="permission-summary")
            if req.reason:
                yield Static(Text(inert(req.reason)), id="permission-reason")
            with VerticalScroll(id="permission-input"):
                yield Static(Text(inert_json(json.dumps(req.input, indent=2, ensure_ascii=False))))
            with Horizontal(id="permission-buttons"):
                for key, label, variant in CHOICES:
                    yield Button(Text(f"{label} [{key}]"), id=f"choice-{key}",
                                 variant=variant)  # type: ignore[arg-type]
            yield Static(Text(f"y once · n deny (Esc) · a always this exact call · s {tool} "
                              "for this session"), id="permission-help")

    def on_mount(self) -> None:
        self.query_one("#choice-n", Button).focus()

    def on_unmount(self) -> None:
        if not self.answered:  # closed without an answer (the app quit): deny
            self.request.answer("n")

    def action_choose(self, choice: str) -> None:
        if time.monotonic() - self._opened < self.ARM_SECONDS or self.answered:
            return
        self.answered = True
        self.request.answer(choice)
        self.dismiss(choice)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose((event.button.id or "choice-n")[-1])


class ContextScreen(ModalScreen[None]):
    """The window, one row per turn: pin (p), unpin (u), evict (e), Enter shows the turn."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("p", "act('pin')", "Pin"),
        Binding("u", "act('unpin')", "Unpin"),
        Binding("e", "act('evict')", "Evict"),
        Binding("enter", "show", "Show turn"),
        Binding("r", "reload", "Reload", show=False),
    ]
    # (label, width): the preview column gets whatever width is left
    COLUMNS = (("id", 5), ("role", 9), ("time (UTC)", 11), ("~tokens", 7), ("pin", 3), ("status", 7))
    STATUS_SHOWN = {"complete": "", "interrupted": "interr."}

    def __init__(self, engine: "TurnEngine") -> None:
        super().__init__(classes="context-screen")
        self.engine = engine
        self.turns: list[Turn] = []

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="context-panel") as panel:
            panel.border_title = "Window"
            yield Static(id="context-totals")
            yield DataTable(id="context-table", cursor_type="row", zebra_stripes=True)
            yield Static(id="context-detail")
            yield Static(id="context-message")
        yield Footer()

    def on_resize(self) -> None:
        self.reload()

    @property
    def table(self) -> DataTable:
        return self.query_one("#context-table", DataTable)

    def reload(self, keep: int | None = None) -> None:
        """Re-read the window; keep the cursor on turn `keep` (or on the same row number)."""
        table = self.table
        row = table.cursor_row
        self.turns = self.engine.store.window()
        table.clear(columns=True)
        for label, width in self.COLUMNS:
            table.add_column(label, key=label, width=width)
        # what is left of the screen: panel border 2, scrollbar 1, one cell of padding each side
        fixed = sum(w for _, w in self.COLUMNS) + 2 * (len(self.COLUMNS) + 1) + 3
        width = max(12, (self.size.width or 80) - fixed)
        table.add_column("preview", key="preview", width=width)
        for t in self.turns:
            table.add_row(*self._cells(t, width), key=str(t.id))
        if keep is not None:
            ids = [t.id for t in self.turns]
            row = ids.index(keep) if keep in ids else row
        if self.turns:
            table.move_cursor(row=min(max(row, 0), len(self.turns) - 1), animate=False)
        from ...memory.slots import context_line
        self.query_one("#context-totals", Static).update(Text(inert(
            window_totals(self.engine).line() + "\n" + context_line(self.engine.store, self.engine.config))))

    def on_mount(self) -> None:
        self.query_one("#context-detail").display = False
        self.reload()
        self.say("The window is empty." if not self.turns else
                 "⏎ show the turn · p pin · u unpin · e evict (to the archive) · Esc close", "hint")

    def say(self, text: str, kind: str = "info") -> None:
        message = self.query_one("#context-message", Static)
        for k in ("hint", "error"):
            message.set_class(kind == k, f"-{k}")
        message.update(Text(inert(text)))

    @staticmethod
    def _cells(t: Turn, width: int) -> tuple[Text, ...]:
        preview = one_line(_preview(t), width)
        status = ContextScreen.STATUS_SHOWN.get(t.status, t.status)
        when = t.created_at.replace("T", " ").rstrip("Z")[5:16]
        return (Text(f"#{t.id}"), Text(ROLE_LABEL.get(t.role, t.role)),
                Text(when), Text(f"{t.est_tokens:,}", justify="right"),
                Text("●" if t.pinned else "", style="bold yellow"),
                Text(status, style="red" if status == "failed" else "yellow"), Text(preview))

    def selected(self) -> Turn | None:
        row = self.table.cursor_row
        return self.turns[row] if self.turns and 0 <= row < len(self.turns) else None

    async def action_act(self, verb: str) -> None:
        turn = self.selected()
        if turn is None:
            return
        outcome = await dispatch(self.engine, f"/{verb} {turn.id}")
        self.say(outcome.text, "info" if outcome.kind == "info" else "error")
        self.reload(keep=turn.id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # Enter on a row: the table's own binding gets the key first
        self.action_show()

    def action_show(self) -> None:
        turn = self.selected()
        detail = self.query_one("#context-detail", Static)
        if turn is None or (detail.display and getattr(detail, "turn_id", None) == turn.id):
            detail.display = False
            return
        detail.turn_id = turn.id  # type: ignore[attr-defined]
        detail.update(Text(display_turn(turn, max(40, self.size.width - 6))))
        detail.display = True

    def action_reload(self) -> None:
        turn = self.selected()
        self.reload(keep=turn.id if turn else None)

    def action_close(self) -> None:
        self.dismiss(None)


def _preview(turn: Turn) -> str:
    if turn.text.strip():
        return turn.text
    for block in turn.blocks:
        if block.get("type") == "tool_use":
            return f"⚙ {block.get('name', '?')}"
        if block.get("type") == "summary":  # /compress: which archived turns it stands for
            from ...views import summary_heading
            return summary_heading(block)
    return "(no text)"
