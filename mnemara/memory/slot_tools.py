"""The model's slot tools (feature "slots"), each defined once: slot_set, slot_append, slot_clear.

A change is stored at once (a new version; the user can undo it with `/slot undo NAME`) and
shown to the user as a notice; the model sees the new content in the tool's reply now, and in
the `<slots>` block at the end of the next user message.
"""

from __future__ import annotations

from typing import Any

from ..engine.tools import ToolSpec, _args, register
from ..engine.tool_handlers import ToolContext, ToolError
from .slots import SlotBook, SlotError, SlotVersion

_NAME = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,39}$",
         "description": "The slot's name: 1-40 lower-case letters, digits and '_', starting with a "
                        "letter (e.g. current_task, user_profile, open_questions)."}


def _book(ctx: ToolContext) -> SlotBook:
    return SlotBook(ctx.store, ctx.config)


def _done(ctx: ToolContext, version: SlotVersion, verb: str) -> str:
    book = _book(ctx)
    ctx.notify("info", f"the model {verb} slot {version.name!r}; /slot undo {version.name} takes it back")
    total = f"all slots ~{book.tokens():,} of {ctx.config.slots_max_tokens:,} tokens (slots_max_tokens)"
    if not version.text:
        return f"Cleared slot {version.name!r} ({total})."
    return (f"Slot {version.name!r} now holds ({len(version.text):,} of "
            f"{ctx.config.slot_max_chars:,} characters; {total}):\n{version.text}")


def slot_set(ctx: ToolContext, args: dict[str, Any]) -> str:
    try:
        return _done(ctx, _book(ctx).set(args["name"], args["text"], "model"), "set")
    except SlotError as exc:
        raise ToolError(str(exc)) from None


def slot_append(ctx: ToolContext, args: dict[str, Any]) -> str:
    try:
        return _done(ctx, _book(ctx).append(args["name"], args["text"], "model"), "appended to")
    except SlotError as exc:
        raise ToolError(str(exc)) from None


def slot_clear(ctx: ToolContext, args: dict[str, Any]) -> str:
    try:
        return _done(ctx, _book(ctx).clear(args["name"], "model"), "cleared")
    except SlotError as exc:
        raise ToolError(str(exc)) from None


_ABOUT = ("Slots are a few short named notes you always see (in a <slots> block at the end of a "
          "user message whenever they change; the newest block is current): keep there what you "
          "must not lose track of, such as the current task, facts about the user, open "
          "questions. Every change is kept, and the user can undo it.")

register(
    ToolSpec(
        "slot_set",
        "Set a slot to this text, replacing what it held (a new slot is created). " + _ABOUT
        + " Returns the slot's new content and the space left.",
        _args(("name", "text"), name=_NAME,
              text={"type": "string", "minLength": 1, "maxLength": 100_000,
                    "description": "The slot's whole new content: short, current, self-contained."}),
        slot_set, feature="slots"),
    ToolSpec(
        "slot_append",
        "Add a line to the end of a slot (a new slot is created). " + _ABOUT
        + " Returns the slot's new content.",
        _args(("name", "text"), name=_NAME,
              text={"type": "string", "minLength": 1, "maxLength": 100_000,
                    "description": "The text to add, on a new line."}),
        slot_append, feature="slots"),
    ToolSpec(
        "slot_clear",
        "Empty a slot that no longer matters (it disappears from the slots block; the user can "
        "undo it). Returns what is left.",
        _args(("name",), name=_NAME),
        slot_clear, feature="slots"),
)
