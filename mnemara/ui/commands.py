"""Slash commands: each defined once here, shared by the REPL and the TUI.

A handler gets the engine and the argument text and returns an `Outcome`: text to show, or a
stream of turn events to render (/retry), or a request to quit. No UI library imports.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

if TYPE_CHECKING:
    from ..engine.turn import TurnEngine

MODELS = ("claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-4-7",
          "claude-sonnet-4-6", "claude-haiku-4-5")


@dataclass
class Outcome:
    text: str = ""
    kind: str = "info"  # info | warning | error
    quit: bool = False
    events: AsyncIterator[Any] | None = None  # a turn to render (e.g. /retry)
    view: str | None = None  # a richer view a front end may open instead of printing `text`
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SlashCommand:
    name: str
    usage: str
    help: str
    handler: Callable[["TurnEngine", str], Any]
    while_busy: bool = True  # False: would pull the window from under a running turn


COMMANDS: dict[str, SlashCommand] = {}


def command(name: str, usage: str, help: str, *, while_busy: bool = True) -> Callable:
    def register(fn: Callable[["TurnEngine", str], Any]) -> Callable:
        COMMANDS[name] = SlashCommand(name, usage, help, fn, while_busy)
        return fn
    return register


def parse(line: str) -> tuple[SlashCommand | None, str, str]:
    """(command, argument text, typed name) for a line starting with '/'."""
    name, _, arg = line.strip()[1:].partition(" ")
    return COMMANDS.get(name.lower()), arg.strip(), name


# The width, in columns, a front end shows command output at (set by `dispatch`): text such as
# /show's is wrapped to it, so a narrow terminal does not wrap every line twice.
DISPLAY_WIDTH: ContextVar[int | None] = ContextVar("DISPLAY_WIDTH", default=None)


def display_width() -> int:
    from ..views import terminal_width
    return DISPLAY_WIDTH.get() or terminal_width()


async def dispatch(engine: "TurnEngine", line: str, *, width: int | None = None) -> Outcome:
    """Run a slash command; `width` is the columns the front end shows its output in."""
    DISPLAY_WIDTH.set(width)
    cmd, arg, typed = parse(line)
    if cmd is None:
        close = [n for n in COMMANDS if n.startswith(typed.lower()[:2])] if typed else []
        hint = f" (did you mean {', '.join('/' + c for c in close)}?)" if close else ""
        return Outcome(f"unknown command /{typed}{hint}; /help lists them", "error")
    if engine.busy and not cmd.while_busy:
        return Outcome(f"/{cmd.name} waits until the turn finishes (Ctrl+C interrupts it)", "warning")
    try:
        result = cmd.handler(engine, arg)
        if hasattr(result, "__await__"):
            result = await result
        return result
    except CommandError as exc:
        return Outcome(str(exc), "error")


class CommandError(Exception):
    """A mistake in a slash command's arguments; shown as one line."""


def _ids(arg: str) -> list[int]:
    ids = re.findall(r"\d+", arg)
    if not ids or re.sub(r"[\d,\s#]", "", arg):
        raise CommandError("give turn ids, e.g. 12 14 (see /show or /context for ids)")
    return [int(i) for i in ids]


async def _tool(engine: "TurnEngine", name: str, args: dict[str, Any]) -> Outcome:
    """Run one of the model's window tools for the user: one definition serves both."""
    from ..engine.tools import call_tool
    result = await call_tool(engine.tools, name, args)
    text = "\n".join(c.get("text", "") for c in result.get("content", []))
    engine.drain_notices()  # the outcome itself tells the user what happened
    return Outcome(text, "error" if result.get("is_error") else "info")


# --- commands -----------------------------------------------------------------------------------

@command("help", "/help", "List the slash commands.")
def _help(engine: "TurnEngine", arg: str) -> Outcome:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage:<{width}}  {c.help}" for c in COMMANDS.values()]
    return Outcome("\n".join(lines))


@command("role", "/role [PATH]", "Show the role doc, or switch to PATH (saved to config).")
def _role(engine: "TurnEngine", arg: str) -> Outcome:
    if not arg:
        return Outcome(f"role doc: {engine.config.role_doc_path or '(none: empty system prompt)'}")
    from ..engine.prompt import role_doc_problem
    path = str(Path(arg).expanduser().resolve())
    problem = role_doc_problem(path)
    if problem not in (None, "does not exist"):  # as `mnemara role --set`: refused, not saved
        raise CommandError(f"role doc {path} {problem}; not set (the role doc stays "
                           f"{engine.config.role_doc_path or 'unset'})")
    engine.set_config(engine.config.replace(role_doc_path=path))
    if not Path(path).is_file():
        return Outcome(f"role doc set to {path}, which does not exist yet (empty system prompt "
                       "until it does)", "warning")
    return Outcome(f"role doc set to {path}; the next turn uses it")


@command("show", "/show [N]", "Print the window (or its last N turns) and the totals.")
def _show(engine: "TurnEngine", arg: str) -> Outcome:
    from ..views import display_turn
    last = int(arg) if arg.isdigit() else None
    turns = engine.store.window(last)
    width = display_width()
    body = "\n\n".join(display_turn(t, width) for t in turns) or "(the window is empty)"
    return Outcome(body + "\n\n" + window_totals(engine).line())


@command("context", "/context", "Window viewer: every row with role, time, size and pin state.")
async def _context(engine: "TurnEngine", arg: str) -> Outcome:
    outcome = await _tool(engine, "list_window", {})
    outcome.view = "context"
    return outcome


@command("clear", "/clear", "Move every window turn to the archive (searchable, not deleted).",
         while_busy=False)
def _clear(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops.window import clear
    return Outcome(clear(engine.store))


@command("models", "/models", "List model shortcuts for /swap.")
def _models(engine: "TurnEngine", arg: str) -> Outcome:
    lines = [f"{i}. {m}{'  (current)' if m == engine.config.model else ''}"
             for i, m in enumerate(MODELS, 1)]
    return Outcome("\n".join(lines) + "\nany other model id works too: /swap <id>")


@command("swap", "/swap MODEL|N", "Switch the model (saved to config).")
def _swap(engine: "TurnEngine", arg: str) -> Outcome:
    if not arg:
        raise CommandError("usage: /swap MODEL or /swap N (see /models)")
    if arg.isdigit():
        if not 1 <= int(arg) <= len(MODELS):
            raise CommandError(f"no model number {arg}; /models lists 1-{len(MODELS)}")
        arg = MODELS[int(arg) - 1]
    engine.set_config(engine.config.replace(model=arg))
    return Outcome(f"model is now {arg}")


@command("tokens", "/tokens N", "Set the window's token budget (max_window_tokens, saved).")
def _tokens(engine: "TurnEngine", arg: str) -> Outcome:
    from ..errors import ConfigError
    value = arg.replace(",", "").replace("_", "").lower()
    mult = 1000 if value.endswith("k") else 1
    value = value.rstrip("k")
    if not value.isdigit():
        raise CommandError("usage: /tokens N (e.g. /tokens 80000 or /tokens 80k)")
    try:
        engine.set_config(engine.config.replace(max_window_tokens=int(value) * mult))
    except ConfigError as exc:
        raise CommandError(str(exc).replace("config change: ", "")) from None
    return Outcome(f"window budget is now {engine.config.max_window_tokens:,} tokens "
                   "(applied before the next turn)")


@command("note", "/note TEXT", "Append TEXT to today's memory file.")
async def _note(engine: "TurnEngine", arg: str) -> Outcome:
    if not arg:
        raise CommandError("usage: /note TEXT")
    return await _tool(engine, "write_memory", {"text": arg})


@command("pin", "/pin [ID ...]", "Pin turns (default: the newest) so eviction takes them last.")
async def _pin(engine: "TurnEngine", arg: str) -> Outcome:
    ids = _ids(arg) if arg else [t.id for t in engine.store.window(1)]
    if not ids:
        raise CommandError("the window is empty")
    return await _tool(engine, "pin_turn", {"ids": ids})


@command("unpin", "/unpin ID ...", "Unpin turns.")
async def _unpin(engine: "TurnEngine", arg: str) -> Outcome:
    return await _tool(engine, "unpin_turn", {"ids": _ids(arg)})


@command("evict", "/evict ID ...|older DURATION", "Move turns to the archive (e.g. /evict 3 4, /evict older 2h).")
async def _evict(engine: "TurnEngine", arg: str) -> Outcome:
    if arg.startswith("older"):
        duration = arg[len("older"):].strip()
        if not duration:
            raise CommandError("usage: /evict older DURATION (e.g. 30m, 2h, 3d)")
        return await _tool(engine, "evict_turns", {"older_than": duration})
    return await _tool(engine, "evict_turns", {"ids": _ids(arg)})


@command("search", "/search QUERY", "Full-text search of the window, the archive and memory notes.")
def _search(engine: "TurnEngine", arg: str) -> Outcome:
    from ..ops.memory import search
    from ..views import format_hit
    if not arg:
        raise CommandError("usage: /search QUERY")
    hits = search(engine.instance, arg, 20, store=engine.store)
    return Outcome("\n".join(format_hit(h) for h in hits) or f"no matches for {arg!r}")


@command("recall", "/recall [on|off|QUERY]",
         "Automatic recall on or off (no argument: toggle); with a QUERY, show what memory recalls for it.")
async def _recall(engine: "TurnEngine", arg: str) -> Outcome:
    if arg.lower() in ("", "on", "off"):
        want = {"on": "auto", "off": "off"}.get(arg.lower(),
                                                "off" if engine.config.recall == "auto" else "auto")
        engine.set_config(engine.config.replace(recall=want))
        if want == "auto" and not engine.config.rag_enabled:
            return Outcome("recall is on, but memory is off for this instance (rag_enabled is "
                           "false): nothing will be recalled", "warning")
        return Outcome("automatic recall is " + ("on: relevant memories are recalled into each "
                                                  "message" if want == "auto" else "off"))
    return await _tool(engine, "rag_query", {"question": arg, "k": 8})


@command("wiki", "/wiki [PAGE]", "List the wiki pages, or show one.")
async def _wiki(engine: "TurnEngine", arg: str) -> Outcome:
    if not arg:
        return await _tool(engine, "wiki_list", {})
    return await _tool(engine, "wiki_read", {"path": arg})


@command("retry", "/retry", "Resend the last failed message.", while_busy=False)
def _retry(engine: "TurnEngine", arg: str) -> Outcome:
    if engine.last_failed() is None:
        return Outcome("nothing to retry: the last message did not fail", "warning")
    return Outcome("retrying the last failed message", events=engine.retry())


from . import session_commands  # noqa: E402,F401  (/role_doc /name /export /import /stop /edit /regen)
from . import compress_command  # noqa: E402,F401  (/compress)
from . import slot_command  # noqa: E402,F401  (/slot)
from . import memory_command  # noqa: E402,F401  (/memory)
from . import proposals_command  # noqa: E402,F401  (/proposals)


@command("quit", "/quit", "Leave mnemara (everything is already saved).")
def _quit(engine: "TurnEngine", arg: str) -> Outcome:
    return Outcome(quit=True)


@command("exit", "/exit", "Same as /quit.")
def _exit(engine: "TurnEngine", arg: str) -> Outcome:
    return Outcome(quit=True)


def window_totals(engine: "TurnEngine") -> Any:
    from ..views import WindowTotals
    cfg = engine.config
    counted, failed = engine.store.window_counts()
    return WindowTotals(counted, cfg.max_window_turns, engine.store.window_tokens(),
                        cfg.max_window_tokens, engine.store.archived_count(), failed)
