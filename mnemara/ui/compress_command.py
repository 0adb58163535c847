"""/compress: one definition for the REPL and the TUI (registered in `commands.COMMANDS`).

`/compress [N | older 2h]` asks the model for a summary (Ctrl+C or /stop cancels it: the
engine is busy meanwhile) and returns it with `view="compress"`:
the front end shows it and asks before anything changes (the TUI a dialog, the REPL y/n), then
calls `answer`. `/compress undo [ID]` takes the newest (or that) summary back. The operation
itself is `ops.compress`; no UI library imports here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .commands import CommandError, Outcome, command

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine
    from ..ops.compress import Proposal

QUESTION = "keep this summary in place of those turns? [y/n] "
WRITING = "the model is writing a summary; you see it before anything changes ({cancel} cancels it)"


def writes_summary(line: str) -> bool:
    """The command line asks the model for a summary (seconds), so the front end says so first
    and lets Ctrl+C cancel it: `/compress` with any argument but `undo`."""
    word, _, rest = line.strip().partition(" ")
    return word.lower() == "/compress" and rest.strip().lower().partition(" ")[0] != "undo"


@command("compress", "/compress [N|older 2h|undo]",
         "Summarize the oldest turns (default: what the next eviction would take) into one pinned "
         "turn, shown before it is kept; the turns go to the archive. undo brings them back.",
         while_busy=False)
async def _compress(engine: "TurnEngine", arg: str) -> Outcome:
    from ..engine.prompt import read_role_doc
    from ..ops import compress
    system_tokens = engine.store.estimator.estimate(read_role_doc(engine.config.role_doc_path).text)
    word, _, rest = arg.strip().partition(" ")
    try:
        if word.lower() == "undo":
            rest = rest.strip().lstrip("#")
            if rest and not rest.isdigit():
                raise CommandError("usage: /compress undo [ID] (ID: a summary turn; default the newest)")
            undone = compress.undo(engine.store, engine.config, system_tokens=system_tokens,
                                   summary_id=int(rest) if rest else None)
            engine.log.write("compress_undo", summary_id=undone.summary_id, restored=undone.restored)
            return Outcome(undone.sentence())
        turns = compress.select(engine.store, engine.config, arg, system_tokens=system_tokens)
        proposal = await compress.write_summary(engine, turns)
    except compress.CompressCancelled as exc:  # Ctrl+C or /stop while it was written
        return Outcome(str(exc), "warning")
    except compress.CompressRefused as exc:
        raise CommandError(str(exc)) from None
    return Outcome(proposal.preview(), view="compress", data={"proposal": proposal})


def answer(engine: "TurnEngine", proposal: "Proposal", keep: bool) -> Outcome:
    """What the user's answer to the summary leads to: kept (the turns archived) or discarded."""
    from ..ops import compress
    if not keep:
        return Outcome("summary discarded; the window is unchanged")
    try:
        turn = compress.keep(engine.store, proposal)
    except compress.CompressRefused as exc:
        return Outcome(str(exc), "error")
    engine.stats.archived_this_session += len(proposal.turns)
    engine.log.write("compress", ids=proposal.ids, summary_id=turn.id, auto=False)
    return Outcome(compress.kept_sentence(proposal, turn))
