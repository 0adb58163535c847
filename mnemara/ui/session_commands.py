"""Slash commands that change the conversation or the instance from the chat: /role_doc, /name,
/export, /import, /stop, /edit, /regen. Registered in the one registry (`commands.COMMANDS`,
shared by the REPL and the TUI) when `commands` is imported. No UI library imports: where a
command needs an editor it returns an `Outcome` with a `view` ("role_doc", "edit") that each
front end opens its own way, and the front end hands the result back to a function here.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MnemaraError
from .commands import CommandError, Outcome, command

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine
    from ..ops.role import RoleDraft

NAME_MAX = 40
_BACKGROUND: set["asyncio.Task[Any]"] = set()  # /stop's interrupt, kept referenced until done


@command("role_doc", "/role_doc", "Edit the role doc in place (the next turn uses it); "
                                  "offers to create one when there is none.")
def _role_doc(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops.role import draft
    try:
        doc = draft(engine.instance, engine.config)
    except MnemaraError as exc:
        raise CommandError(str(exc)) from None
    what = (f"creating the role doc {doc.path}" if doc.creating else f"editing the role doc {doc.path}")
    return Outcome(what, view="role_doc", data={"draft": doc})


def save_role_doc(engine: "TurnEngine", doc: "RoleDraft", text: str) -> Outcome:
    """Save what the user edited (atomically) and point the config at it; the next turn uses it."""
    from ..ops.role import save
    if text == doc.text and not doc.creating:
        return Outcome("role doc unchanged")
    try:
        config = save(engine.instance, engine.config, doc.path, text)
    except MnemaraError as exc:
        return Outcome(str(exc), "error")
    if config is not engine.config:
        engine.set_config(config, save=False)  # `save` wrote it already
    chars = len(text)
    return Outcome(f"role doc saved to {doc.path} ({chars:,} character{'s' if chars != 1 else ''}); "
                   "the next turn uses it")


@command("name", "/name [TEXT]", "Show or set the display name in the header (/name --clear: "
                                 "the instance name).")
def _name(engine: "TurnEngine", arg: str) -> Outcome:
    current = engine.config.display_name
    if not arg:
        shown = f"{current!r}" if current else f"(none: the instance name {engine.instance.name!r})"
        return Outcome(f"display name: {shown}; /name TEXT sets it")
    name = "" if arg == "--clear" else arg
    if any(not ch.isprintable() for ch in name):
        raise CommandError("a display name is one line of printable text")
    if len(name) > NAME_MAX:
        raise CommandError(f"a display name is at most {NAME_MAX} characters (this is {len(name)})")
    engine.set_config(engine.config.replace(display_name=name))
    if not name:
        return Outcome(f"display name cleared; the header shows the instance name {engine.instance.name!r}")
    return Outcome(f"display name is now {name!r}")


@command("export", "/export [FILE]", "Export the conversation, notes and wiki (FILE.md: Markdown; "
                                     "default: a new file in the instance's exports/).")
async def _export(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops.export import export
    path = Path(arg).expanduser() if arg else default_export_path(engine)
    fmt = "md" if path.suffix.lower() in (".md", ".markdown") else "jsonl"
    try:
        report = await asyncio.to_thread(export, engine.instance, engine.config, fmt=fmt,
                                         output=path.absolute())
    except MnemaraError as exc:
        raise CommandError(str(exc).replace("; add --force to replace it",
                                            "; give another file name")) from None
    return Outcome(report.line())


def default_export_path(engine: "TurnEngine") -> Path:
    """`<instance>/exports/<instance>-YYYYmmdd-HHMMSS.jsonl`: private, never an existing file."""
    from ..fsutil import ensure_private_dir
    folder = ensure_private_dir(engine.instance.root / "exports")
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"{engine.instance.name}-{stamp}.jsonl"
    n = 1
    while path.exists():
        n += 1
        path = folder / f"{engine.instance.name}-{stamp}-{n}.jsonl"
    return path


@command("import", "/import FILE", "Append a JSONL conversation to this instance (an export "
                                   "goes into a new instance: `mnemara import -i NAME FILE`).",
         while_busy=False)
async def _import(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops.export_read import ExportBundle
    from ..ops.import_export import check_empty
    from ..ops.importer import import_turns, load_conversation
    if not arg or arg == "-":
        raise CommandError("usage: /import FILE (a JSONL conversation: one "
                           "{\"role\": ..., \"text\": ...} per line)")
    path = Path(arg).expanduser()
    try:
        loaded = await asyncio.to_thread(load_conversation, path)
        if isinstance(loaded, ExportBundle):
            try:
                check_empty(engine.instance)
            except MnemaraError as exc:
                raise MnemaraError(f"{arg} is a mnemara export, not a conversation: {exc}") from None
        report = await asyncio.to_thread(import_turns, engine.instance, engine.config, loaded)
    except MnemaraError as exc:
        raise CommandError(str(exc)) from None
    text = report.line()
    if report.note:
        text += f"\n{report.note}"
    return Outcome(text)


@command("stop", "/stop", "Stop the running turn, as Ctrl+C does (the partial reply is kept).")
def _stop(engine: "TurnEngine", arg: str) -> Outcome:
    if not engine.busy:
        return Outcome("no turn is running; nothing to stop", "warning")
    task = asyncio.get_running_loop().create_task(engine.interrupt())
    _BACKGROUND.add(task)
    task.add_done_callback(_BACKGROUND.discard)
    if engine.activity == "summary":
        return Outcome("stopping the summary…", "warning")
    return Outcome("stopping the turn… (the partial reply is kept in the window)", "warning")


@command("edit", "/edit [TEXT]", "Edit your last message and send it again (the old exchange "
                                 "goes to the archive).", while_busy=False)
def _edit(engine: "TurnEngine", arg: str) -> Outcome:
    from ..engine.rewind import last_question, resend
    question = last_question(engine)
    if question is None:
        raise CommandError("nothing to edit: the window holds no message of yours")
    if arg:
        return Outcome(f"sending your edited message in place of #{question.id}",
                       events=resend(engine, question.id, arg, reason="edited"),
                       data={"text": arg})
    return Outcome(f"editing your message #{question.id}", view="edit",
                   data={"turn_id": question.id, "text": question.text})


def send_edited(engine: "TurnEngine", turn_id: int, text: str) -> Any:
    """The turn that sends `text` in place of message `turn_id` (what a front end runs once the
    user has edited the message /edit gave it)."""
    from ..engine.rewind import resend
    return resend(engine, turn_id, text, reason="edited")


@command("regen", "/regen", "Regenerate the last reply (the old one goes to the archive).",
         while_busy=False)
def _regen(engine: "TurnEngine", arg: str) -> Outcome:
    from ..engine.rewind import last_question, resend
    question = last_question(engine)
    if question is None:
        raise CommandError("nothing to regenerate: the window holds no message of yours")
    if not question.text.strip():
        raise CommandError(f"message #{question.id} holds no text to send again")
    return Outcome(f"regenerating the reply to your message #{question.id}",
                   events=resend(engine, question.id, question.text, reason="regenerated"))
