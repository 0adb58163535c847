"""The Textual chat panel (`mnemara run`).

`MnemaraApp(engine)` is the one app factory, shared by `run_tui` and the tests. The app renders
the turn engine's events and answers its permission requests; every slash command goes through
the shared registry in `ui/commands.py`. Each turn runs in a worker, so the input stays live
while a reply streams: text deltas are buffered and painted on a short timer.

Keys: Enter sends · Ctrl+J inserts a newline (Shift+Enter and Alt+Enter too, in terminals that
report them: kitty, WezTerm, foot, Ghostty, iTerm2 with CSI u) · Up/Down on the first/last line
walk the history · Tab completes a slash command · PgUp/PgDn scroll the chat · Ctrl+L clears the
screen (never the window) · Ctrl+O opens the memory browser · Ctrl+C interrupts a running turn
and quits when idle · Ctrl+P opens the command palette · Esc closes dialogs.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
from functools import partial
from typing import Any, AsyncIterator, Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Footer

from ...engine.events import (Notice, PermissionRequest, Recalled, TextDelta, TextDone, Thinking,
                              ToolCall, ToolResult, TurnFinished, Usage)
from ...engine.turn import TurnEngine
from ...errors import MnemaraError
from ...instance import Instance
from ...store.turns import Turn
from ..commands import COMMANDS, dispatch, parse
from .chat import (AssistantText, ChatLog, CommandOutput, NoticeLine, RecallLine, ThinkingLine,
                   ToolLine, TurnSummary, UserMessage, turn_widgets)
from .history import InputHistory
from .screens import ContextScreen, PermissionScreen
from .status import StatusFigures
from .widgets import ChatHeader, PromptInput, SlashSuggestions, StatusBar

FLUSH_SECONDS = 0.066  # streamed text is painted at most ~15 times a second
SHOWN_AT_START = 40    # window turns drawn at start; /context lists all of them
EXIT_GRACE_SECONDS = 5.0  # longest wait, after the screen closes, for a running turn's cleanup
KEYS = (("Enter", "send the message"),
        ("Ctrl+J", "new line (also Shift+Enter / Alt+Enter where the terminal reports them)"),
        ("Up / Down", "previous / next message (on the first / last line)"),
        ("Tab", "complete a /command"),
        ("PgUp / PgDn", "scroll the chat"),
        ("Ctrl+L", "clear the screen (the window is kept)"),
        ("Ctrl+O", "memory browser (as /memory)"),
        ("Ctrl+C", "interrupt a running turn; quit when idle"),
        ("Ctrl+P", "command palette"),
        ("Esc", "close a dialog; back to the input"))


def run_tui(instance: Instance, notices: Iterable[str] = ()) -> int:
    """`mnemara run` on a terminal: the chat panel until the user quits. Returns the exit code.
    `notices` (e.g. "created instance ...") are shown in the chat, where the user looks."""
    engine = TurnEngine(instance)
    engine.startup_notices[:0] = [Notice("info", text) for text in notices]
    try:
        app = MnemaraApp(engine)
        app.run()
        return app.return_code or 0
    finally:
        engine.close()


class SlashCommands(Provider):
    """The command palette (Ctrl+P) lists the shared slash commands."""

    async def discover(self) -> Hits:
        for cmd in COMMANDS.values():
            yield DiscoveryHit(cmd.usage, partial(self.app.palette_command, cmd.name), help=cmd.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for cmd in COMMANDS.values():
            # the command itself first; its help text only as a weaker match
            score = matcher.match(cmd.usage) or matcher.match(cmd.help) * 0.5
            if score > 0:
                yield Hit(score, _highlight(matcher, cmd.usage),
                          partial(self.app.palette_command, cmd.name), help=cmd.help)


class MnemaraApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "mnemara"
    COMMANDS = App.COMMANDS | {SlashCommands}
    BINDINGS = [
        Binding("ctrl+c", "interrupt", "Interrupt", priority=True, key_display="^c"),
        Binding("ctrl+c", "quit_idle", "Quit", priority=True, key_display="^c"),
        Binding("ctrl+l", "clear_screen", "Clear screen", key_display="^l"),
        Binding("ctrl+o", "memory", "Memory", key_display="^o"),
        Binding("escape", "focus_prompt", "Back to input", show=False),
    ]

    def __init__(self, engine: TurnEngine, *, history: InputHistory | None = None,
                 shown_turns: int = SHOWN_AT_START, owns_process: bool = True) -> None:
        super().__init__()
        self.engine = engine
        self.history = history if history is not None else InputHistory.load(
            engine.instance.prompt_history_path)
        self.shown_turns = shown_turns
        # True for `mnemara run`, where the app is the whole process: it may then tune the
        # garbage collector, import the SDK in the background and bound its own exit.
        self.owns_process = owns_process
        self.turn_running = False
        self._interrupts = 0
        self._stream: AssistantText | None = None  # the text block being streamed
        self._pending = ""                         # streamed text not painted yet
        self._tools: dict[str, ToolLine] = {}      # tool-use id -> its line, this turn
        self._permissions: list[PermissionScreen] = []
        self._earlier_usage: Usage | None = None  # the newest stored turn's, until a turn runs
        self.terminated = False  # SIGTERM: interrupt the turn (it is stored), then quit with 143
        self.editing: int | None = None  # /edit: the message id the next one is sent in place of

    # --- layout ------------------------------------------------------------------------------
    def compose(self) -> Iterable[Widget]:
        yield ChatHeader(id="header")
        chat = ChatLog(id="chat")
        yield chat
        suggestions = SlashSuggestions(id="suggestions")
        yield suggestions
        commands = [(c.name, c.usage, c.help) for c in COMMANDS.values()]
        prompt = PromptInput(self.history, commands, suggestions, id="prompt",
                             placeholder="Message · /help lists commands")
        prompt.border_title = "message"
        prompt.border_subtitle = "⏎ send · ^J newline · ↑↓ history"
        prompt.scroll_target = chat
        yield prompt
        yield StatusBar(id="status")
        yield Footer()

    async def on_mount(self) -> None:
        self.window_drawn = asyncio.Event()
        self.query_one(SlashSuggestions).display = False
        self._flush_timer = self.set_interval(FLUSH_SECONDS, self._flush, pause=True)
        self.refresh_header()
        self.refresh_status()
        self.query_one(PromptInput).focus()
        if self.owns_process:
            try:
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, self.on_sigterm)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        earlier = await self.show_window()
        for notice in self.engine.startup_notices:
            await self.add_notice(notice.kind, notice.text)
        from ...ops.proposals import digest_notice  # the newest replay digest, in one line
        digest = digest_notice(self.engine.instance, self.engine.config)
        if digest:
            await self.add_notice("info", digest)
        # The first frame needs only the turns that fill the screen; the older ones (scrolled
        # out of sight anyway) are drawn right after it.
        self.call_after_refresh(self._draw_earlier, earlier)

    async def _draw_earlier(self, earlier: list[Any]) -> None:
        chat = self.query_one(ChatLog)
        entries = [w for item in earlier
                   for w in (turn_widgets(item) if isinstance(item, Turn) else [item])]
        if entries:
            await chat.mount_all(entries, before=chat.children[0] if chat.children else None)
        self.window_drawn.set()
        if self.owns_process:
            gc.freeze()
            self.set_timer(0.5, self._warm_up)

    def _warm_up(self) -> None:
        self.run_worker(_import_sdk, thread=True, group="warmup", exit_on_error=False)
        # The memory index (LanceDB, the embedder) opens now, after the first paint, in a thread.
        self.engine.drain_in_background(self.refresh_status, warm=True)

    async def show_window(self) -> list[Any]:
        """Draw the newest turns of the window (what the model will see next), as many as fill
        the screen; return the older ones (turns, or a notice), to be drawn after the first frame."""
        store = self.engine.store
        total = store.count()
        turns = store.window(self.shown_turns)
        earlier: list[Any] = []
        if total > len(turns):
            earlier.append(NoticeLine("info", f"{total - len(turns)} earlier turns of the window are "
                                              "not drawn here; /context lists every turn"))
        elif not turns:
            earlier.append(NoticeLine("info", "The window is empty. Type a message; /help lists "
                                              "commands, Ctrl+P opens the palette."))
        for turn in reversed(turns):
            if turn.role == "assistant" and turn.usage:
                self._earlier_usage = Usage.from_dict(turn.usage)
                self.refresh_status()
                break
        first = screenful(turns, self.size.width or 80, self.size.height or 24)
        earlier.extend(turns[:first])
        await self.query_one(ChatLog).mount_all([w for t in turns[first:] for w in turn_widgets(t)])
        return earlier

    def refresh_header(self) -> None:
        cfg = self.engine.config
        self.query_one(ChatHeader).show(self.engine.instance.name, cfg.model, cfg.role_doc_path,
                                        cfg.display_name)

    def refresh_status(self) -> None:
        self.query_one(StatusBar).figures = StatusFigures.from_engine(
            self.engine, busy=self.turn_running, earlier=self._earlier_usage)

    async def add(self, *entries: Widget) -> None:
        await self.query_one(ChatLog).mount_all(entries)

    async def add_notice(self, kind: str, text: str) -> None:
        await self.add(NoticeLine(kind, text))

    # --- input -------------------------------------------------------------------------------
    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        prompt = self.query_one(PromptInput)
        line = message.text.strip("\n")
        if line.lstrip().startswith("/"):
            cmd, _, _ = parse(line)
            if self.turn_running and cmd is not None and not cmd.while_busy:
                await self.add_notice("warning", f"/{cmd.name} waits until the turn finishes "
                                                 "(Ctrl+C interrupts it)")
                return
            prompt.take()
            await self.run_command(line.strip())
            return
        if self.turn_running:
            await self.add_notice("warning", "a turn is running: wait for it or press Ctrl+C to "
                                             "interrupt; your message stays in the box")
            return
        refusal = self.engine.refusal(line)
        if refusal is not None:  # too large to send: say so, and leave it in the box to trim
            await self.add_notice("error", f"{refusal} · your message stays in the box")
            return
        prompt.take()
        await self.add(UserMessage(line))
        if self.editing is not None:  # /edit: sent in place of that message (archived, not lost)
            from ..session_commands import send_edited
            editing, self.editing = self.editing, None
            self.show_editing()
            self.start_turn(send_edited(self.engine, editing, line))
            return
        self.start_turn(self.engine.run(line))

    async def run_command(self, line: str) -> None:
        from ..compress_command import WRITING, writes_summary
        if writes_summary(line):
            # the summary takes a model query (seconds): say so now, not when it is done
            await self.add_notice("info", WRITING.format(cancel="Ctrl+C or /stop"))
            self.start_summary(line)
            return
        cmd, _, _ = parse(line)
        # command output is wrapped to the chat's width (its border and padding take 6 columns)
        outcome = await dispatch(self.engine, line, width=max(40, self.size.width - 6))
        if outcome.quit:
            self.exit(0)
            return
        if cmd is not None and cmd.name == "clear" and outcome.kind == "info":
            await self.query_one(ChatLog).remove_children()
        if outcome.view == "context":
            self.open_context()
        elif outcome.view == "role_doc":
            self.open_role_doc(outcome.data["draft"])
        elif outcome.view == "edit":
            self.start_editing(outcome.data["turn_id"], outcome.data["text"])
        elif outcome.view == "slot":  # /slot NAME: the slot in an editor screen
            from .slot_editor import open_slot_editor
            open_slot_editor(self, outcome.data["name"], outcome.data["text"])
        elif outcome.view == "compress":  # the summary in a dialog: kept only on "y"
            from .compress_screen import confirm_compress
            confirm_compress(self, outcome.data["proposal"])
        elif outcome.view == "memory":  # /memory [QUERY]: the memory browser (on those hits)
            from .memory_screen import open_memory
            open_memory(self, outcome.data)
        elif outcome.view == "proposals":  # /proposals: the review screen, one key per decision
            from .proposals_screen import open_review
            open_review(self, outcome.data["proposals"])
        elif outcome.text and outcome.kind == "info":
            if cmd is not None and cmd.name == "help":  # the same registry, laid out as a table
                await self.add(CommandOutput(help_table(), text=outcome.text))
            else:
                await self.add(CommandOutput(outcome.text))
        elif outcome.text:
            await self.add_notice(outcome.kind, outcome.text)
        if outcome.events is not None:
            if "text" in outcome.data:  # /edit TEXT: the message sent, as a typed one shows
                await self.add(UserMessage(outcome.data["text"]))
            self.start_turn(outcome.events)
        self.refresh_header()
        self.refresh_status()

    def open_context(self) -> None:
        self.push_screen(ContextScreen(self.engine), lambda _: self.refresh_status())

    def open_role_doc(self, draft: Any) -> None:
        """/role_doc: the role doc in an editor screen; Save writes it (the next turn uses it)."""
        from ..session_commands import save_role_doc
        from .editor import RoleDocScreen

        async def closed(text: str | None) -> None:
            if text is None:
                await self.add_notice("info", "role doc not changed (cancelled)")
            else:
                outcome = save_role_doc(self.engine, draft, text)
                await self.add_notice(outcome.kind, outcome.text)
            self.refresh_header()
            self.query_one(PromptInput).focus()

        self.push_screen(RoleDocScreen(draft), closed)

    def start_editing(self, turn_id: int, text: str) -> None:
        """/edit: the last message goes into the box; sending it replaces that message."""
        self.editing = turn_id
        prompt = self.query_one(PromptInput)
        prompt.load_text(text)
        prompt.move_cursor(prompt.document.end)
        self.show_editing()
        prompt.focus()

    def show_editing(self) -> None:
        prompt = self.query_one(PromptInput)
        prompt.border_title = (f"editing message #{self.editing} · Esc cancels"
                               if self.editing is not None else "message")
        prompt.set_class(self.editing is not None, "-editing")

    async def palette_command(self, name: str) -> None:
        """A command picked in the palette: run it, or put it in the box when it takes arguments."""
        cmd = COMMANDS[name]
        if cmd.usage.strip() == f"/{name}":
            await self.run_command(f"/{name}")
            return
        prompt = self.query_one(PromptInput)
        prompt.load_text(f"/{name} ")
        prompt.move_cursor(prompt.document.end)
        prompt.focus()

    # --- a /compress summary -------------------------------------------------------------------
    def start_summary(self, line: str) -> None:
        """/compress: the summary is a model query (seconds), so it runs in a worker as a turn
        does: keys keep reaching the input box, and Ctrl+C or /stop cancels it (nothing changes)."""
        self.turn_running = True
        self._interrupts = 0
        self.refresh_bindings()
        self.refresh_status()
        self.run_worker(self._summarize(line), group="turn", exit_on_error=False)

    async def _summarize(self, line: str) -> None:
        from .compress_screen import summarize
        try:
            await summarize(self, line, width=max(40, self.size.width - 6))
        finally:
            self.turn_running = False
            self.refresh_bindings()
            self.refresh_status()

    # --- a turn ------------------------------------------------------------------------------
    def start_turn(self, events: AsyncIterator[Any]) -> None:
        self.turn_running = True
        self._interrupts = 0
        self.refresh_bindings()
        self.refresh_status()
        self.run_worker(self._consume(events), group="turn", exit_on_error=False)

    async def _consume(self, events: AsyncIterator[Any]) -> None:
        first = True
        try:
            async for event in events:
                await self.render_event(event)
                if first:  # the engine has stored the user turn (and evicted, if it had to)
                    first = False
                    self.refresh_status()
        except asyncio.CancelledError:
            raise  # the app is closing: nothing left to paint
        except MnemaraError as exc:  # a known failure (a damaged store, a busy instance): its line
            self.engine.log.write("tui_turn_error", error=str(exc))
            await self.add_notice("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not take the panel down; say it, log it
            self.engine.log.write("tui_turn_error", error=f"{type(exc).__name__}: {exc}")
            await self.add_notice("error", f"the turn stopped unexpectedly: {type(exc).__name__}: {exc}")
        await self._end_stream()
        self._flush_timer.pause()
        self._withdraw_permissions()
        self._tools.clear()
        self.turn_running = False
        self.refresh_bindings()
        self.refresh_status()
        if self.terminated:
            self.exit(return_code=143)
            return
        self.engine.drain_in_background(self.refresh_status)  # index the turn in a thread

    def on_sigterm(self) -> None:
        """SIGTERM is Ctrl+C, then quit: a running turn is interrupted and stored with its
        partial reply (never left `pending`); the app exits 143 when it is over."""
        self.terminated = True
        if not self.turn_running:
            self.exit(return_code=143)
            return
        self._withdraw_permissions()
        self.run_worker(self.engine.interrupt(), group="interrupt", exit_on_error=False)

    async def render_event(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            if self._stream is None:
                self._stream = AssistantText()
                await self.add(self._stream)
                self._flush_timer.resume()
            self._pending += event.text
        elif isinstance(event, TextDone):
            stream = self._stream
            await self._end_stream()
            if stream is not None and stream.source != event.text:
                stream.replace(event.text)
        elif isinstance(event, Thinking):
            await self._end_stream()
            await self.add(ThinkingLine(event.text))
        elif isinstance(event, ToolCall):
            await self._end_stream()
            line = ToolLine.from_event(event)
            self._tools[event.id] = line
            await self.add(line)
        elif isinstance(event, ToolResult):
            line = self._tools.get(event.tool_use_id)
            if line is None:  # its call line was cleared from the screen (Ctrl+L)
                line = ToolLine(event.tool_use_id, event.name, {}, event.name)
                await self.add(line)
            line.set_result_event(event)
            self.refresh_status()  # window tools (pin, evict) change the figures
        elif isinstance(event, Notice):
            await self._end_stream()
            await self.add_notice(event.kind, event.text)
            self.refresh_status()
        elif isinstance(event, Recalled):
            await self.add(RecallLine({"items": event.items}))
            self.refresh_status()
        elif isinstance(event, PermissionRequest):
            await self._end_stream()
            self.ask_permission(event)
        elif isinstance(event, TurnFinished):
            await self._end_stream()
            if event.status == "failed":
                await self.add_notice("error", f"{event.error or 'the turn failed'} · /retry resends "
                                               "your message")
            elif event.status == "refused":  # too large: nothing was stored or sent
                await self.add_notice("error", event.error or "the message was refused")
            else:
                await self.add(TurnSummary.from_event(event))
            self.refresh_status()

    async def _flush(self) -> None:
        """Paint the streamed text gathered since the last tick (runs on the flush timer)."""
        if not self._pending or self._stream is None:
            return
        chunk, self._pending = self._pending, ""
        self._stream.append(chunk)

    async def _end_stream(self) -> None:
        await self._flush()
        self._pending = ""
        self._stream = None

    # --- permission requests ------------------------------------------------------------------
    def ask_permission(self, request: PermissionRequest) -> None:
        screen = PermissionScreen(request)
        self._permissions.append(screen)

        def answered(choice: str | None) -> None:
            if screen in self._permissions:
                self._permissions.remove(screen)
            request.answer(choice or "n")

        self.push_screen(screen, answered)

    def _withdraw_permissions(self) -> None:
        """Close prompts the engine no longer waits for (turn over or interrupted): answer n."""
        for screen in reversed(list(self._permissions)):
            if screen.is_current:
                screen.answered = True
                screen.dismiss("n")
            else:
                self._permissions.remove(screen)
            screen.request.answer("n")

    # --- keys ----------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "interrupt":
            return self.turn_running
        if action == "quit_idle":
            return not self.turn_running
        return True

    async def action_interrupt(self) -> None:
        """Ctrl+C during a turn: interrupt it; a second Ctrl+C in the same turn quits."""
        self._interrupts += 1
        if self._interrupts > 1:
            self.exit(0)
            return
        await self.add_notice("warning", "interrupting… (Ctrl+C again quits)")
        self._withdraw_permissions()
        self.run_worker(self.engine.interrupt(), group="interrupt", exit_on_error=False)

    def on_unmount(self) -> None:
        if self.owns_process:
            # The screen is closed and the terminal restored by now. What is left is the
            # engine's cleanup of a turn still running (interrupt the CLI, disconnect): if that
            # hangs, leave anyway; every turn is already stored.
            code = self.return_code or 0
            timer = threading.Timer(EXIT_GRACE_SECONDS, os._exit, args=(code,))
            timer.daemon = True
            timer.start()

    def action_focus_prompt(self) -> None:
        prompt = self.query_one(PromptInput)
        if prompt.has_focus and self.editing is not None and not prompt.suggestions.display:
            self.editing = None  # Esc leaves /edit: the message in the window stays as it was
            self.show_editing()
            prompt.load_text("")
            return
        if prompt.has_focus:
            prompt.suggestions.show([])
        else:
            prompt.focus()

    def action_quit_idle(self) -> None:
        self.exit(0)

    async def action_memory(self) -> None:
        """Ctrl+O: the memory browser, as /memory opens it (from the chat, not over a dialog)."""
        if len(self.screen_stack) == 1:
            await self.run_command("/memory")

    async def action_clear_screen(self) -> None:
        """Ctrl+L: empty the chat log on screen. The window (what the model sees) is untouched."""
        await self._end_stream()
        self._tools.clear()
        await self.query_one(ChatLog).remove_children()
        n = self.engine.store.count()
        await self.add_notice("info", f"screen cleared; the window still holds {n} turn"
                                      f"{'s' if n != 1 else ''} (/context lists them)")


def help_table() -> Group:
    """The slash commands (from the registry) and the keys, wrapped with a hanging indent."""
    commands = Table.grid(padding=(0, 2))
    commands.add_column(style="bold", no_wrap=True)
    commands.add_column()
    for cmd in COMMANDS.values():
        commands.add_row(Text(cmd.usage), Text(cmd.help))  # Text: `[...]` in a usage is not markup
    keys = Table.grid(padding=(0, 2))
    keys.add_column(style="bold", no_wrap=True)
    keys.add_column()
    for key, what in KEYS:
        keys.add_row(key, what)
    return Group(commands, "", keys)


def screenful(turns: list[Any], width: int, height: int) -> int:
    """Index from which the newest `turns` fill about a screen of `width` x `height` (a rough,
    generous line count: 2 lines of spacing per turn plus wrapped text)."""
    lines, index = 0, len(turns)
    while index > 0 and lines < height:
        index -= 1
        text = turns[index].text
        lines += 2 + sum(1 + len(line) // max(20, width - 8) for line in text.splitlines())
    return index


def _highlight(matcher: Any, text: str) -> Content:
    """`matcher.highlight` without markup parsing (usages such as `/show [N]` hold brackets)."""
    content = Content(text)
    _, offsets = matcher.fuzzy_search.match(matcher.query, text)
    for offset in offsets:
        content = content.stylize(matcher.match_style, offset, offset + 1)
    return content


def _import_sdk() -> None:
    """Import the SDK (~0.5 s) in the background, so the first turn does not pay for it; then
    move everything loaded so far out of the garbage collector's way. Without the freeze a full
    collection walks ~1M long-lived objects and stalls the screen ~80 ms every second or so
    while a reply streams."""
    import claude_agent_sdk  # noqa: F401
    gc.freeze()
