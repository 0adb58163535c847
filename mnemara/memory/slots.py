"""Slots: a few small named text blocks (`current_task`, `user_profile`, ...) the model always sees.

The model edits them with slot_set / slot_append / slot_clear, the user with `/slot` and
`mnemara slot`. Every change is a row of `slot_versions` holding the slot's whole value after
it, so nothing is overwritten and any change can be undone (`undo` walks back one change at a
time, as a new row).

Where they reach the model decides what a change costs the prompt cache. Not the system prompt
(a change there would miss the cache for the whole request), and not between the history and the
new message (the previous request's cached prefix ends at that message). They go at the END of
the new user turn, and only when they differ from the newest slots block the window still
carries: that block is stored with its turn and re-sent byte for byte afterwards, exactly like a
recall block. Unchanged slots therefore add nothing to a request; a change adds one `<slots>`
block, in the new (uncached anyway) message. `pending_block` is that rule, shared by the engine
and `show --prompt`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MnemaraError
from ..store.blocks import Block, render_block, slots_block

if TYPE_CHECKING:
    from ..config import Config
    from ..store.turns import Turn, TurnStore

NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Words `/slot` and `mnemara slot` take as subcommands: never slot names.
RESERVED = frozenset({"list", "show", "set", "edit", "undo", "clear", "history", "append"})
AUTHORS = ("model", "user")


class SlotError(MnemaraError):
    """A bad slot name, a value over its cap, nothing to undo: one line the user or model can act on."""


@dataclass(frozen=True)
class SlotVersion:
    id: int
    name: str
    text: str          # the slot's whole value after this change ("" once cleared)
    action: str        # set | append | clear | undo
    author: str        # model | user
    reverts: int | None
    created_at: str


def validate_name(name: str) -> str:
    name = name.strip()
    if not NAME_RE.fullmatch(name) or name in RESERVED:
        why = f"{name!r} is a reserved word" if name in RESERVED else f"{name!r} is not a valid slot name"
        raise SlotError(f"{why}: use 1-40 lower-case letters, digits and '_', starting with a "
                        "letter (e.g. current_task)")
    return name


class SlotBook:
    """The slots of one instance, on its turn store's connection (same file, same transactions)."""

    def __init__(self, store: "TurnStore", config: "Config") -> None:
        self.store = store
        self.config = config

    # --- reading ---------------------------------------------------------------------------------
    def current(self) -> dict[str, SlotVersion]:
        """Every non-empty slot's newest version, by name (in name order)."""
        rows = self.store.conn.execute(
            "SELECT v.* FROM slot_versions v JOIN (SELECT name, max(id) AS id FROM slot_versions"
            " GROUP BY name) last ON v.id = last.id WHERE v.text != '' ORDER BY v.name").fetchall()
        return {r["name"]: _version(r) for r in rows}

    def get(self, name: str) -> str:
        row = self.store.conn.execute("SELECT text FROM slot_versions WHERE name = ? ORDER BY id DESC"
                                      " LIMIT 1", (validate_name(name),)).fetchone()
        return row["text"] if row else ""

    def history(self, name: str) -> list[SlotVersion]:
        rows = self.store.conn.execute("SELECT * FROM slot_versions WHERE name = ? ORDER BY id",
                                       (validate_name(name),)).fetchall()
        return [_version(r) for r in rows]

    def block(self, values: dict[str, str] | None = None) -> Block:
        """The slots block for the current values (or for `values`)."""
        if values is None:
            values = {n: v.text for n, v in self.current().items()}
        return slots_block([{"name": n, "text": values[n]} for n in sorted(values) if values[n]])

    def tokens(self, values: dict[str, str] | None = None) -> int:
        """Estimated tokens of the slots block; 0 when there is nothing to show."""
        block = self.block(values)
        return self.store.estimator.estimate_chars(len(render_block(block))) if block["slots"] else 0

    # --- changing --------------------------------------------------------------------------------
    def set(self, name: str, text: str, author: str) -> SlotVersion:
        text = text.strip()
        if not text:
            raise SlotError(f"the text for slot {name!r} is empty; slot_clear (or /slot clear) "
                            "empties a slot")
        return self._write(validate_name(name), text, "set", author)

    def append(self, name: str, text: str, author: str) -> SlotVersion:
        name = validate_name(name)
        text = text.strip()
        if not text:
            raise SlotError(f"nothing to append to slot {name!r}: the text is empty")
        old = self.get(name)
        return self._write(name, f"{old}\n{text}" if old else text, "append", author)

    def clear(self, name: str, author: str) -> SlotVersion:
        name = validate_name(name)
        if not self.get(name):
            raise SlotError(f"slot {name!r} is already empty")
        return self._write(name, "", "clear", author)

    def undo(self, name: str, author: str) -> SlotVersion:
        """Take back the newest change not yet undone: the slot gets the value it had before."""
        history = self.history(name)
        undone = {v.reverts for v in history if v.action == "undo"}
        changes = [v for v in history if v.action != "undo" and v.id not in undone]
        if not changes:
            raise SlotError(f"nothing to undo for slot {name!r}"
                            + ("" if history else ": it has never been set"))
        target = changes[-1]
        before = [v for v in history if v.id < target.id]
        text = before[-1].text if before else ""
        return self._write(target.name, text, "undo", author, reverts=target.id, check=False)

    def _write(self, name: str, text: str, action: str, author: str, *, reverts: int | None = None,
               check: bool = True) -> SlotVersion:
        if author not in AUTHORS:
            raise ValueError(f"unknown slot author {author!r}")
        cfg = self.config
        if check and len(text) > cfg.slot_max_chars:
            raise SlotError(f"slot {name!r} would hold {len(text):,} characters; at most "
                            f"{cfg.slot_max_chars:,} fit (slot_max_chars): shorten it")
        from ..store.turns import utc_now
        with self.store.transaction():
            values = {n: v.text for n, v in self.current().items()}
            values[name] = text
            tokens = self.tokens(values)
            if check and tokens > cfg.slots_max_tokens:
                raise SlotError(f"the slots would take ~{tokens:,} tokens; at most "
                                f"{cfg.slots_max_tokens:,} fit (slots_max_tokens): shorten or "
                                "clear a slot first")
            cur = self.store.conn.execute(
                "INSERT INTO slot_versions (name, text, action, author, reverts, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)", (name, text, action, author, reverts, utc_now()))
            row = self.store.conn.execute("SELECT * FROM slot_versions WHERE id = ?",
                                          (cur.lastrowid,)).fetchone()
        return _version(row)


def _version(row: Any) -> SlotVersion:
    return SlotVersion(row["id"], row["name"], row["text"], row["action"], row["author"],
                       row["reverts"], row["created_at"])


def last_sent(turns: list["Turn"]) -> Block | None:
    """The newest slots block among `turns` (the sendable window): what the model sees now."""
    for turn in reversed(turns):
        for block in reversed(turn.blocks):
            if block.get("type") == "slots":
                return block
    return None


def pending_block(store: "TurnStore", config: "Config") -> Block | None:
    """The slots block the next user turn must end with, or None when the window already
    carries the current slots (or there are none and never were in the window).

    Called after the budget is enforced: if eviction took the turn that carried them, they are
    sent again."""
    current = SlotBook(store, config).block()
    sent = last_sent(store.sendable())
    if sent is None:
        return current if current["slots"] else None
    return None if (sent.get("slots") or []) == current["slots"] else current


def context_line(store: "TurnStore", config: "Config") -> str:
    """`slots: 2, ~140 of 2,000 tokens (slots_max_tokens): current_task, user_profile; in the
    window since turn #12` — for inspect_context and the /context screen."""
    book = SlotBook(store, config)
    current = book.current()
    if not current:
        return "slots: none (slot_set creates one)"
    line = (f"slots: {len(current)}, ~{book.tokens():,} of {config.slots_max_tokens:,} tokens "
            f"(slots_max_tokens): {', '.join(current)}")
    sendable = store.sendable()
    carrier = next((t for t in reversed(sendable) if any(b.get("type") == "slots" for b in t.blocks)), None)
    if pending_block(store, config) is not None:
        return line + "; changed since last sent: they go out with the next message"
    return line + (f"; in the window since turn #{carrier.id}" if carrier else "")
