"""The role doc editor (`/role_doc`): a full-screen text area with Save and Cancel.

The screen only edits text: it is dismissed with the new text (Save, Ctrl+S) or None (Cancel,
Esc), and the app saves through `session_commands.save_role_doc`, the same path the REPL uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Footer, Static, TextArea

from ...termsafe import INLINE, inert

if TYPE_CHECKING:
    from ...ops.role import RoleDraft


class RoleDocScreen(ModalScreen["str | None"]):
    """Edit the role doc; Ctrl+S saves, Esc cancels (nothing is written)."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),  # before the text area takes it
    ]
    DEFAULT_CSS = """
    RoleDocScreen { align: center middle; }
    #role-panel { width: 100%; height: 100%; border: round $accent; border-title-style: bold;
                  background: $surface; }
    #role-text { height: 1fr; border: none; }
    #role-help { padding: 0 1; color: $text-muted; }
    #role-buttons { height: auto; align-horizontal: right; }
    #role-buttons Button { margin: 0 1; min-width: 12; }
    """

    def __init__(self, draft: "RoleDraft") -> None:
        super().__init__(classes="role-doc-screen")
        self.draft = draft

    def compose(self) -> Iterable[Widget]:
        draft = self.draft
        with Vertical(id="role-panel") as panel:
            panel.border_title = Text(f"Role doc · {inert(_shown(draft.path), INLINE)}")
            note = ("This file does not exist yet: Save creates it and points the instance at it."
                    if draft.creating else "The system prompt of every turn; the next turn uses what you save.")
            yield Static(Text(note), id="role-help")
            yield TextArea(draft.text, id="role-text", soft_wrap=True, show_line_numbers=False,
                           tab_behavior="indent")
            with Horizontal(id="role-buttons"):
                yield Button("Save ^s", id="role-save", variant="primary")
                yield Button("Cancel Esc", id="role-cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#role-text", TextArea).focus()

    @property
    def text(self) -> str:
        return self.query_one("#role-text", TextArea).text

    def action_save(self) -> None:
        self.dismiss(self.text)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "role-save":
            self.action_save()
        else:
            self.action_cancel()


def _shown(path: Path) -> str:
    """`path` with the home directory as ~ (the title has room for little)."""
    try:
        return "~/" + str(Path(path).relative_to(Path.home()))
    except ValueError:
        return str(path)
