"""The REPL's side of `/role_doc` and `/edit`: the role doc in the user's $VISUAL / $EDITOR (or,
with neither set, a prefilled multi-line prompt), and the last message in a prefilled prompt.

What the user wrote is handed back to `session_commands`, the path the TUI uses too.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from typing import TYPE_CHECKING, Any, AsyncIterator

from .commands import Outcome
from .session_commands import save_role_doc, send_edited

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine
    from ..ops.role import RoleDraft


def editor_command() -> list[str] | None:
    """The user's editor as an argument list ($VISUAL, then $EDITOR), or None."""
    for var in ("VISUAL", "EDITOR"):
        value = os.environ.get(var, "").strip()
        if value:
            return shlex.split(value)
    return None


async def edit_role_doc(engine: "TurnEngine", draft: "RoleDraft", *, interactive: bool) -> Outcome:
    """Open the role doc for editing; save what comes back (atomically) unless it is unchanged."""
    if not interactive:
        return Outcome(f"/role_doc needs a terminal to edit on; edit {draft.path} with any editor "
                       "(the next turn reads it)", "warning")
    editor = editor_command()
    if editor is None:
        text = await _prompt_text(draft.text)
    else:
        text = await run_editor(engine, editor, draft.text)
    if isinstance(text, Outcome):
        return text
    if text is None:
        return Outcome("role doc not changed (cancelled)")
    return save_role_doc(engine, draft, text)


async def run_editor(engine: "TurnEngine", editor: list[str], text: str, *,
                     copy_name: str = ".role_doc.editing.md",
                     what: str = "the role doc") -> "str | Outcome":
    """Edit `text` with `editor` on a private copy in the instance directory (removed
    afterwards) and return the edited text, or an Outcome saying why `what` is unchanged. The
    thing edited is written only by the caller's save afterwards."""
    from ..fsutil import atomic_write_text
    copy = engine.instance.root / copy_name
    atomic_write_text(copy, text)
    try:
        try:
            proc = await asyncio.create_subprocess_exec(*editor, str(copy))
        except OSError as exc:
            return Outcome(f"cannot start the editor {editor[0]!r} ($VISUAL / $EDITOR): "
                           f"{exc.strerror or exc}; {what} is unchanged", "error")
        code = await proc.wait()
        if code != 0:
            return Outcome(f"the editor exited with status {code}; {what} is unchanged", "warning")
        try:
            return copy.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            return Outcome(f"the edited text is not UTF-8 (byte {exc.start:,}); {what} is "
                           "unchanged", "error")
    finally:
        copy.unlink(missing_ok=True)


async def _prompt_text(text: str) -> str | None:
    """A multi-line prompt prefilled with `text` (Esc then Enter accepts; Ctrl+C cancels)."""
    from prompt_toolkit import PromptSession
    print("editing the role doc here ($EDITOR is not set): Esc then Enter saves, Ctrl+C cancels",
          flush=True)
    try:
        return await PromptSession().prompt_async("role> ", default=text, multiline=True)
    except (KeyboardInterrupt, EOFError):
        return None


async def edit_message(engine: "TurnEngine", session: Any, turn_id: int,
                       text: str) -> AsyncIterator[Any] | Outcome:
    """/edit: the last message in a prefilled prompt; the turn that sends the edited text, or an
    Outcome when there is nothing to send (cancelled, emptied, or no terminal)."""
    if session is None:
        return Outcome("no terminal to edit on: give the new text, /edit TEXT", "warning")
    try:
        edited = await session.prompt_async("edit> ", default=text)
    except (KeyboardInterrupt, EOFError):
        edited = None
    if edited is None or not edited.strip():
        return Outcome("edit cancelled; the message stays as it was")
    return send_edited(engine, turn_id, edited)
