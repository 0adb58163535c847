"""`/slot`: the user's side of slots (memory/slots.py), for the REPL and the TUI alike.

    /slot                 list the slots
    /slot NAME            edit NAME (TUI: an editor screen; REPL: $VISUAL / $EDITOR)
    /slot NAME TEXT       set NAME to TEXT
    /slot show NAME       print NAME        /slot history NAME   every version
    /slot clear NAME      empty NAME        /slot undo NAME      take back its last change

Editing returns an `Outcome` with view "slot" ({name, text}); each front end opens its editor
and hands the result to `save_edited`, so both save the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..memory.slots import SlotBook, SlotError, validate_name
from ..ops import slots as ops
from .commands import CommandError, Outcome, command

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine

USAGE = "usage: /slot [NAME [TEXT]] or /slot show|history|clear|undo NAME"


def _book(engine: "TurnEngine") -> SlotBook:
    return SlotBook(engine.store, engine.config)


@command("slot", "/slot [NAME [TEXT]|undo NAME]",
         "Slots the model always sees: list them; edit, set, clear or undo one (e.g. /slot undo current_task).")
def _slot(engine: "TurnEngine", arg: str) -> Outcome:
    book = _book(engine)
    words = arg.split(maxsplit=1)
    if not words:
        return Outcome(ops.listing(book))
    try:
        if words[0] in ("show", "history", "clear", "undo"):
            if len(words) < 2 or len(words[1].split()) != 1:
                raise CommandError(f"usage: /slot {words[0]} NAME")
            name = validate_name(words[1])
            if words[0] == "show":
                return Outcome(book.get(name) or f"slot {name!r} is empty")
            if words[0] == "history":
                return Outcome(ops.history(book, name))
            return Outcome(ops.clear(book, name) if words[0] == "clear" else ops.undo(book, name))
        name = validate_name(words[0])
        if len(words) == 2:
            return Outcome(ops.save(book, name, words[1]))
        return Outcome(f"editing slot {name!r}", view="slot", data={"name": name, "text": book.get(name)})
    except SlotError as exc:
        raise CommandError(str(exc)) from None


def save_edited(engine: "TurnEngine", name: str, original: str, text: str | None) -> Outcome:
    """Keep what the editor gave back: a new version if it changed; nothing on cancel, and
    nothing when the slot changed meanwhile (the model may have set it during a turn)."""
    if text is None:
        return Outcome(f"slot {name!r} not changed (cancelled)")
    book = _book(engine)
    if book.get(name) != original:
        return Outcome(f"slot {name!r} changed while you were editing it (by the model?); nothing "
                       f"was saved: /slot show {name} shows it now", "warning")
    try:
        return Outcome(ops.save(book, name, text))
    except SlotError as exc:
        return Outcome(str(exc), "error")


async def edit_in_repl(engine: "TurnEngine", outcome: Outcome, *, interactive: bool) -> Outcome:
    """The REPL's editor for `/slot NAME`: $VISUAL / $EDITOR on a private copy in the instance
    directory (removed afterwards); without a terminal, `/slot NAME TEXT` is the way."""
    from .repl_editing import editor_command, run_editor
    name, original = outcome.data["name"], outcome.data["text"]
    editor = editor_command()
    if not interactive or editor is None:
        why = "a terminal" if not interactive else "$VISUAL or $EDITOR"
        return Outcome(f"/slot {name} needs {why} to edit in; /slot {name} TEXT sets it", "warning")
    text = await run_editor(engine, editor, original, copy_name=f".slot.{name}.editing.md",
                            what=f"slot {name!r}")
    if isinstance(text, Outcome):
        return text
    return save_edited(engine, name, original, text)
