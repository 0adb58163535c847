"""/proposals: review what replay and the model proposed, from the chat (TUI and REPL).

`/proposals` lists the pending ones (the TUI opens its review screen over the same list);
`show ID` prints one beside its source atoms; `reject ID` records the decision; `accept ID`
writes a wiki page at once, while a role amendment is only shown, and appended when the user
confirms with `accept ID yes` (the TUI's review screen asks with its own dialog). Everything goes
through `mnemara.ops.proposals`, the operations `mnemara proposals` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import MnemaraError
from .commands import CommandError, Outcome, command

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine

USAGE = "/proposals [all|show ID|accept ID [yes]|reject ID]"


@command("proposals", "/proposals [accept|reject ID]",
         "Review what replay and the model proposed (the TUI opens a review screen); also "
         "/proposals all, show ID, accept ID yes.")
def _proposals(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops import proposals as ops
    words = arg.split()
    sub = words[0].lower() if words else ""
    try:
        if sub in ("", "list", "all"):
            everything = sub == "all" or [w.lower() for w in words[1:2]] == ["all"]
            found = ops.listing(engine.instance, None if everything else "pending")
            if not found:
                return Outcome("no proposals" if everything else
                               "no pending proposals (`mnemara replay --apply` drafts them)")
            text = "\n".join(ops.summary_line(p) for p in found)
            if sub == "":
                text += ("\n/proposals show ID · /proposals accept ID · /proposals reject ID")
            return Outcome(text, view="proposals" if sub == "" else None,
                           data={"proposals": found})
        if sub not in ("show", "accept", "reject") or len(words) < 2:
            raise CommandError(f"usage: {USAGE}")
        if sub == "show":
            return Outcome(ops.describe(ops.get(engine.instance, words[1])))
        if sub == "reject":
            p = ops.reject(engine.instance, words[1])
            return Outcome(f"rejected {p.id}; replay will not propose it again")
        return accept(engine, words[1], confirmed=[w.lower() for w in words[2:3]] == ["yes"])
    except MnemaraError as exc:
        return Outcome(str(exc), "error")


def accept(engine: "TurnEngine", id_or_prefix: str, *, confirmed: bool) -> Outcome:
    """Accept in the chat: the wiki page is written through the engine's own store (so the
    engine's memory drains it into the index); a role amendment needs `confirmed`, and the
    engine takes the config the save returns (a role doc created now is the next turn's)."""
    from ..ops import proposals as ops
    asked: list[str] = []

    def confirm(p: object, role_doc: object) -> bool:
        asked.append(str(role_doc))
        return confirmed

    try:
        done = ops.accept(engine.instance, id_or_prefix, confirm=confirm, config=engine.config,
                          turns=engine.store)
    except MnemaraError as exc:
        return Outcome(str(exc), "error")
    if done is None:
        p = ops.get(engine.instance, id_or_prefix)
        return Outcome(f"role amendment {p.id} for {asked[0] if asked else 'the role doc'}:\n\n"
                       f"{p.body.rstrip()}\n\nto append it (a dated backup of the role doc is "
                       f"kept), type: /proposals accept {p.id} yes")
    if done.config is not None and done.config is not engine.config:
        engine.set_config(done.config, save=False)  # ops.role.save wrote it already
    return Outcome(done.message)
