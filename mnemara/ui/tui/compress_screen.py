"""The /compress dialog: the summary the model wrote, kept only when the user says so.

The screen shows `Proposal.preview()` (the summary, which turns it covers, the quotation check)
and is dismissed with True (Keep, y) or False (Discard, n, Esc); the app then answers through
`compress_command.answer`, the same path the REPL's y/n takes. `summarize` runs the command
itself, in the app's worker: the TUI stays responsive while the model writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .yesno import YesNoScreen

if TYPE_CHECKING:
    from ...ops.compress import Proposal


class CompressScreen(YesNoScreen):
    """Keep (y) or discard (n, Esc) a summary. It opens as the model finishes writing, maybe
    while the user types: keys are ignored for ARM_SECONDS."""

    ARM_SECONDS = 0.3

    def __init__(self, proposal: "Proposal") -> None:
        n = len(proposal.turns)
        super().__init__(title=f"Keep this summary of {n} turn{'s' if n != 1 else ''}?",
                         body=proposal.preview(), yes="Keep", no="Discard",
                         help="y keep (the turns go to the archive) · n / Esc discard (nothing changes)",
                         classes="compress-screen")
        self.proposal = proposal


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
