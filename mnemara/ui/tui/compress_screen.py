"""The /compress dialog: the summary the model wrote, kept only when the user says so.

The screen shows `Proposal.preview()` (the summary, which turns it covers, the quotation check)
and is dismissed with True (Keep, y) or False (Discard, n, Esc); the app then answers through
`compress_command.answer`, the same path the REPL's y/n takes. `summarize` runs the command
itself, in the app's worker: the TUI stays responsive while the model writes.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable

from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Button, Static

from ...termsafe import inert

if TYPE_CHECKING:
    from ...ops.compress import Proposal


class CompressScreen(ModalScreen[bool]):
    """Keep (y) or discard (n, Esc) a summary. Keys are ignored for ARM_SECONDS after it opens,
    so a letter still being typed into the input box cannot answer it by accident."""

    ARM_SECONDS = 0.3
    BINDINGS = [
        Binding("y", "choose(True)", "Keep"),
        Binding("n", "choose(False)", "Discard"),
        Binding("escape", "choose(False)", "Discard", show=False),
    ]
    DEFAULT_CSS = """
    CompressScreen { align: center middle; }
    #compress-dialog { width: 100%; max-width: 100; height: auto; max-height: 100%;
                       border: heavy $accent; border-title-style: bold; background: $surface;
                       padding: 0 1; }
    #compress-summary { height: auto; max-height: 60vh; padding: 0 1; background: $boost; }
    #compress-buttons { height: auto; margin: 1 0 0 0; align-horizontal: center; }
    #compress-buttons Button { min-width: 12; margin: 0 1; }
    #compress-help { color: $text-muted; text-align: center; }
    """

    def __init__(self, proposal: "Proposal") -> None:
        super().__init__(classes="compress-screen")
        self.proposal = proposal
        self.answered = False
        self._opened = time.monotonic()

    def compose(self) -> Iterable[Widget]:
        with Vertical(id="compress-dialog") as dialog:
            n = len(self.proposal.turns)
            dialog.border_title = Text(f"Keep this summary of {n} turn{'s' if n != 1 else ''}?")
            with VerticalScroll(id="compress-summary"):
                yield Static(Text(inert(self.proposal.preview())), id="compress-text")
            with Horizontal(id="compress-buttons"):
                # Text, not a markup string: "[y]" would be read as a style tag and vanish
                yield Button(Text("Keep [y]"), id="compress-keep", variant="primary")
                yield Button(Text("Discard [n]"), id="compress-discard", variant="error")
            yield Static(Text("y keep (the turns go to the archive) · n / Esc discard (nothing "
                              "changes)"), id="compress-help")

    def on_mount(self) -> None:
        self.query_one("#compress-discard", Button).focus()

    def action_choose(self, keep: bool) -> None:
        if time.monotonic() - self._opened < self.ARM_SECONDS or self.answered:
            return
        self.answered = True
        self.dismiss(keep)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(event.button.id == "compress-keep")


def confirm_compress(app: Any, proposal: "Proposal") -> None:
    """Open the dialog over the chat; its answer keeps or discards the summary, and says so."""
    from ..compress_command import answer
    from .chat import CommandOutput
    from .widgets import PromptInput

    async def closed(keep: bool | None) -> None:
        outcome = answer(app.engine, proposal, bool(keep))
        if outcome.kind == "info":
            await app.add(CommandOutput(outcome.text))
        else:
            await app.add_notice(outcome.kind, outcome.text)
        app.refresh_status()
        app.query_one(PromptInput).focus()

    app.push_screen(CompressScreen(proposal), closed)


async def summarize(app: Any, line: str, *, width: int) -> None:
    """Run `/compress ...` (the app runs this in a worker, so the TUI stays responsive while the
    model writes): the summary opens the dialog; a refusal or a cancel is one line."""
    from ..commands import dispatch
    outcome = await dispatch(app.engine, line, width=width)
    if outcome.view == "compress":
        confirm_compress(app, outcome.data["proposal"])
    elif outcome.text:
        await app.add_notice(outcome.kind, outcome.text)
