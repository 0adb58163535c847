"""The slot editor (`/slot NAME`): a text area with Save and Cancel over the chat.

The screen only edits text: it is dismissed with the new text (Save, Ctrl+S) or None (Cancel,
Esc); `open_slot_editor` hands the result to `slot_command.save_edited`, as the REPL does.
"""

from __future__ import annotations

from typing import Any, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Static, TextArea


class SlotEditorScreen(ModalScreen["str | None"]):
    """Edit one slot; Ctrl+S saves, Esc cancels (nothing is written)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),  # before the TextArea takes it
    ]
    DEFAULT_CSS = """
    SlotEditorScreen { align: center middle; }
    #slot-panel { width: 100%; height: 100%; border: round $accent; border-title-style: bold;
                  background: $surface; }
    #slot-text { height: 1fr; border: none; }
    #slot-help { padding: 0 1; color: $text-muted; }
    #slot-buttons { height: auto; align-horizontal: right; }
    #slot-buttons Button { margin: 0 1; min-width: 12; }
    """

    def __init__(self, name: str, text: str, max_chars: int) -> None:
        super().__init__(classes="slot-editor-screen")
        self.slot_name, self.original, self.max_chars = name, text, max_chars

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="slot-panel") as panel:
            panel.border_title = Text(f"Slot · {self.slot_name}")  # a validated name: plain text
            yield Static(Text(f"The model sees this with your next message (at most "
                              f"{self.max_chars:,} characters). Emptied, the slot is cleared; "
                              f"/slot undo {self.slot_name} takes any change back."), id="slot-help")
            yield TextArea(self.original, id="slot-text", soft_wrap=True, show_line_numbers=False,
                           tab_behavior="indent")
            with Horizontal(id="slot-buttons"):
                yield Button("Save ^s", id="slot-save", variant="primary")
                yield Button("Cancel Esc", id="slot-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#slot-text", TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#slot-text", TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "slot-save":
            self.action_save()
        else:
            self.action_cancel()


def open_slot_editor(app: Any, name: str, text: str) -> None:
    """Open the editor over the chat; what it gives back is saved (or not) and said."""
    from ..slot_command import save_edited
    from .widgets import PromptInput

    async def closed(edited: str | None) -> None:
        outcome = save_edited(app.engine, name, text, edited)
        await app.add_notice(outcome.kind, outcome.text)
        app.refresh_status()
        app.query_one(PromptInput).focus()

    app.push_screen(SlotEditorScreen(name, text, app.engine.config.slot_max_chars), closed)
