"""A yes/no question over the chat: a title, an optional line above the text, the text in a
scrolling box, two buttons and a line of help. `y` answers yes; `n`, Esc or the second button no.
The /compress dialog and the role-amendment confirmation are this screen with their own words.
"""

from __future__ import annotations

import time
from typing import Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from ...termsafe import inert


class YesNoScreen(ModalScreen[bool]):
    """Dismissed with True (y, the first button) or False (n, Esc, the second button), once.
    Keys are ignored for ARM_SECONDS after it opens (a subclass sets it when the question can
    pop up while the user is typing, so a letter meant for the input box cannot answer it).
    The "no" button has the focus: Enter alone never says yes."""

    ARM_SECONDS = 0.0
    BINDINGS = [
        Binding("y", "choose(True)", "Yes"),
        Binding("n", "choose(False)", "No"),
        Binding("escape", "choose(False)", "No", show=False),
    ]
    DEFAULT_CSS = """
    YesNoScreen { align: center middle; }
    YesNoScreen #yesno-dialog { width: 100%; max-width: 100; height: auto; max-height: 100%;
                                border: heavy $accent; border-title-style: bold;
                                background: $surface; padding: 0 1; }
    YesNoScreen #yesno-body { height: auto; max-height: 60vh; padding: 0 1; background: $boost; }
    YesNoScreen #yesno-buttons { height: auto; margin: 1 0 0 0; align-horizontal: center; }
    YesNoScreen #yesno-buttons Button { min-width: 12; margin: 0 1; }
    YesNoScreen #yesno-help { color: $text-muted; text-align: center; }
    """

    def __init__(self, *, title: str, body: str, yes: str, no: str, help: str,
                 above: str | None = None, classes: str | None = None) -> None:
        """`body` (shown inert: stored or model text) scrolls; `above` is one line over it;
        `yes` and `no` label the buttons (their keys are added); `help` is the bottom line."""
        super().__init__(classes=classes)
        self.question, self.body, self.above, self.help = title, body, above, help
        self.labels = (yes, no)
        self.answered = False
        self._opened = time.monotonic()

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="yesno-dialog") as dialog:
            dialog.border_title = Text(self.question)
            if self.above is not None:
                yield Static(Text(self.above), id="yesno-above")
            with VerticalScroll(id="yesno-body"):
                yield Static(Text(inert(self.body)), id="yesno-text")
            with Horizontal(id="yesno-buttons"):
                # Text, not a markup string: "[y]" would be read as a style tag and vanish
                yield Button(Text(f"{self.labels[0]} [y]"), id="yesno-yes", variant="primary")
                yield Button(Text(f"{self.labels[1]} [n]"), id="yesno-no", variant="error")
            yield Static(Text(self.help), id="yesno-help")

    def on_mount(self) -> None:
        self.query_one("#yesno-no", Button).focus()

    def action_choose(self, yes: bool) -> None:
        if time.monotonic() - self._opened < self.ARM_SECONDS or self.answered:
            return
        self.answered = True
        self.dismiss(yes)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id == "yesno-yes")
