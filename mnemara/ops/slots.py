"""Slot operations shared by `mnemara slot` and the chat's `/slot`: list, show, history, save
(from a command or an editor), clear and undo. Each returns the sentence to show; mistakes are
one-line `SlotError`s. The model's tools are in memory/slot_tools.py; the rules in memory/slots.py.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from ..memory.slots import SlotBook, SlotVersion, validate_name

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

PREVIEW_CHARS = 60
CHAT_UNDO = "/slot undo {name}"  # how to take a change back, in the chat; the CLI passes its own


@contextmanager
def open_book(instance: "Instance", config: "Config", *, readonly: bool = False) -> Iterator[SlotBook]:
    """The instance's slots on its own store connection, closed afterwards (the CLI's way in)."""
    from ..store.turns import TurnStore
    with TurnStore(instance.turns_path, readonly=readonly) as store:
        yield SlotBook(store, config)


def listing(book: SlotBook) -> str:
    """One line per slot (name, size, last change, start of the text) and the total."""
    current = book.current()
    if not current:
        return ("no slots yet; the model fills them with slot_set, or set one with "
                "/slot NAME TEXT (mnemara slot set NAME TEXT)")
    width = max(len(n) for n in current)
    lines = [f"{name:<{width}}  {len(v.text):>5,} chars  {v.created_at} by {v.author}  "
             f"{_preview(v.text)}" for name, v in current.items()]
    lines.append(totals(book))
    return "\n".join(lines)


def totals(book: SlotBook) -> str:
    """`3 slots · ~140 of 2,000 tokens (slots_max_tokens)`: what they take in the window."""
    n = len(book.current())
    return (f"{n} slot{'s' if n != 1 else ''} · ~{book.tokens():,} of "
            f"{book.config.slots_max_tokens:,} tokens (slots_max_tokens)")


def history(book: SlotBook, name: str) -> str:
    versions = book.history(name)
    if not versions:
        return f"slot {name!r} has never been set"
    return "\n".join(_version_line(v) for v in versions)


def save(book: SlotBook, name: str, text: str, undo_hint: str = CHAT_UNDO) -> str:
    """Store the user's text for `name` as a new version (empty text clears the slot)."""
    name = validate_name(name)
    old = book.get(name)
    if text.strip() == old:
        return f"no changes to slot {name!r}"
    if not text.strip():
        return clear(book, name, undo_hint)
    version = book.set(name, text, "user")
    return (f"saved slot {name!r} ({len(version.text):,} characters); the model sees it with your "
            f"next message · {undo_hint.format(name=name)} takes it back")


def clear(book: SlotBook, name: str, undo_hint: str = CHAT_UNDO) -> str:
    book.clear(name, "user")
    return f"cleared slot {name!r}; {undo_hint.format(name=name)} takes it back"


def undo(book: SlotBook, name: str) -> str:
    version = book.undo(name, "user")
    history = {v.id: v for v in book.history(name)}
    taken = history.get(version.reverts or 0)
    what = f"{taken.author}'s {taken.action} of {taken.created_at}" if taken else "the last change"
    now = f"it holds: {_preview(version.text)}" if version.text else "it is empty now"
    return f"slot {version.name!r}: took back the {what}; {now}"


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _version_line(v: SlotVersion) -> str:
    what = f"undo of #{v.reverts}" if v.action == "undo" else v.action
    return f"#{v.id}  {v.created_at}  {v.author:<5}  {what:<12}  {_preview(v.text) or '(empty)'}"
