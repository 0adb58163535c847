"""`mnemara run --no-tui`: a prompt-toolkit REPL over the turn engine.

Enter sends; Alt+Enter (or Esc then Enter) inserts a newline. Ctrl+C interrupts a running turn,
a second Ctrl+C during the same turn quits; at the prompt Ctrl+C clears the line and Ctrl+D quits.
Off a terminal (piped stdin), each input line is one message and permission prompts are refused;
the exit code is 1 when a turn failed or a message was refused. SIGTERM is a Ctrl+C that also
quits: a running turn is interrupted and stored (partial reply kept), then the REPL exits 143.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from typing import Any, AsyncIterator

from ..engine.events import Notice, PermissionRequest, TurnFinished
from ..engine.turn import TurnEngine
from ..instance import Instance
from ..termsafe import inert
from .commands import COMMANDS, dispatch, window_totals
from .plain import PlainRenderer

PERMISSION_PROMPT = "allow? [y]es once / [n]o / [a]lways this exact call / [s]ession: "


def run_repl(instance: Instance, *, interactive: bool) -> int:
    engine = TurnEngine(instance)
    try:
        repl = Repl(engine, interactive=interactive)
        code = asyncio.run(repl.main())
        return repl.exit_code(code)
    finally:
        engine.close()


class Repl:
    def __init__(self, engine: TurnEngine, *, interactive: bool) -> None:
        self.engine = engine
        self.interactive = interactive
        self.renderer = PlainRenderer()
        self.session: Any = None
        self._sigints = 0
        self.failed_turns = 0        # turns that failed or were refused, this session
        self.terminated = False      # SIGTERM arrived
        self._turn_running = False
        self._stop: asyncio.Event | None = None
        self._lines: asyncio.Queue[str] | None = None

    def exit_code(self, code: int) -> int:
        """143 after SIGTERM; off a terminal 1 when a turn failed (a script must see it)."""
        if self.terminated:
            return 143
        if not self.interactive and self.failed_turns and code == 0:
            return 1
        return code

    def _on_sigterm(self) -> None:
        """Like Ctrl+C, then quit: the running turn is interrupted (and stored), the prompt ends."""
        self.terminated = True
        if self._stop is not None:
            self._stop.set()
        if self._turn_running:
            asyncio.ensure_future(self.engine.interrupt())

    def banner(self) -> str:
        cfg = self.engine.config
        name = cfg.display_name or self.engine.instance.name
        from ..ops.proposals import digest_notice  # the newest replay digest, in one line
        digest = digest_notice(self.engine.instance, cfg)
        return (f"mnemara · {name} · {cfg.model} · role: {cfg.role_doc_path or '(none)'}\n"
                f"{window_totals(self.engine).line()}\n"
                + (f"{digest}\n" if digest else "")
                + "/help lists commands · Enter sends · Alt+Enter newline · Ctrl+D quits")

    async def main(self) -> int:
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        print(inert(self.banner()), flush=True)
        for notice in self.engine.startup_notices:
            self.renderer.render(notice)
        if self.interactive:
            self.session = _make_session(self.engine)
        while True:
            text = await self._read()
            if text is None:
                return 0
            if not text.strip():
                continue
            if text.lstrip().startswith("/"):
                outcome = await self._command(text.strip())
                if outcome.view in ("role_doc", "edit"):  # an editor first, then what it gave
                    outcome = await self._open(outcome)
                if outcome.view == "slot":  # /slot NAME: $EDITOR, then the save
                    from .slot_command import edit_in_repl
                    outcome = await edit_in_repl(self.engine, outcome, interactive=self.interactive)
                if outcome.view == "compress":  # the summary is shown, kept only on "y"
                    outcome = await self._confirm_compress(outcome)
                if outcome.text and outcome.kind == "info":
                    self.renderer.info(outcome.text)
                elif outcome.text:
                    self.renderer.render(Notice(outcome.kind, outcome.text))
                if outcome.quit:
                    return 0
                if outcome.events is not None and await self._run(outcome.events):
                    return 0
                continue
            if await self._run(self.engine.run(text)):
                return 0

    async def _command(self, line: str) -> Any:
        """Run one slash command. A /compress summary is a model query (seconds): it is
        announced first, and Ctrl+C meanwhile cancels it (the engine is busy: interrupting it
        makes the command return its "cancelled" outcome), instead of killing the REPL."""
        from .compress_command import WRITING, writes_summary
        if not writes_summary(line):
            return await dispatch(self.engine, line)
        self.renderer.info(WRITING.format(cancel="Ctrl+C"))
        loop = asyncio.get_running_loop()

        def on_sigint() -> None:
            print("\n[cancelling the summary…]", file=sys.stderr, flush=True)
            asyncio.ensure_future(self.engine.interrupt())

        installed = _add_sigint(loop, on_sigint)
        try:
            return await dispatch(self.engine, line)
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)

    async def _open(self, outcome: Any) -> Any:
        """/role_doc in $EDITOR, /edit in a prefilled prompt; the outcome (or turn) they lead to."""
        from .commands import Outcome
        from .repl_editing import edit_message, edit_role_doc
        if outcome.view == "role_doc":
            self.renderer.info(outcome.text)
            return await edit_role_doc(self.engine, outcome.data["draft"], interactive=self.interactive)
        sent = await edit_message(self.engine, self.session, outcome.data["turn_id"],
                                  outcome.data["text"])
        return sent if isinstance(sent, Outcome) else Outcome(events=sent)

    async def _confirm_compress(self, outcome: Any) -> Any:
        """/compress: print the summary, ask y/n (off a terminal the next input line is the
        answer: anything but y, or end of input, is no), and return what the answer led to."""
        from .compress_command import QUESTION, answer
        self.renderer.info(outcome.text)
        while True:
            if self.interactive:
                from prompt_toolkit import PromptSession
                try:
                    reply = await PromptSession().prompt_async(QUESTION)
                except (KeyboardInterrupt, EOFError):
                    reply = "n"
            else:
                print(QUESTION, flush=True)
                line = await self._stdin_line()
                return answer(self.engine, outcome.data["proposal"], line.strip().lower() == "y")
            choice = (reply or "").strip().lower()[:1]
            if choice in ("y", "n"):
                return answer(self.engine, outcome.data["proposal"], choice == "y")
            print("please answer y or n", file=sys.stderr, flush=True)

    async def _read(self) -> str | None:
        """The next input, or None at end of input or after SIGTERM."""
        assert self._stop is not None
        if self._stop.is_set():
            return None
        reading = asyncio.ensure_future(self._read_input())
        stopping = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not reading.done():
            reading.cancel()
            return None
        return reading.result()

    async def _read_input(self) -> str | None:
        if not self.interactive:
            line = await self._stdin_line()
            return None if line == "" else line.rstrip("\n")
        try:
            return await self.session.prompt_async("you> ")
        except KeyboardInterrupt:
            return ""
        except EOFError:
            return None

    async def _stdin_line(self) -> str:
        """One line of piped stdin ("" at its end), read by a daemon thread: a read blocked in
        a worker of the default executor would keep the process from exiting on SIGTERM."""
        if self._lines is None:
            loop = asyncio.get_running_loop()
            lines: asyncio.Queue[str] = asyncio.Queue()
            self._lines = lines

            def reader() -> None:
                while True:
                    line = sys.stdin.readline()
                    loop.call_soon_threadsafe(lines.put_nowait, line)
                    if line == "":
                        return

            threading.Thread(target=reader, name="stdin-lines", daemon=True).start()
        return await self._lines.get()

    async def _run(self, events: AsyncIterator[Any]) -> bool:
        """Render one turn. Returns True when the user asked to quit (second Ctrl+C)."""
        loop = asyncio.get_running_loop()
        self._sigints = 0
        consumer = asyncio.ensure_future(self._consume(events))

        def on_sigint() -> None:
            self._sigints += 1
            if self._sigints == 1:
                print("\n[interrupting… Ctrl+C again to quit]", file=sys.stderr, flush=True)
                asyncio.ensure_future(self.engine.interrupt())
            else:
                consumer.cancel()

        installed = _add_sigint(loop, on_sigint)
        self._turn_running = True
        if self.terminated:  # SIGTERM came between reading the line and starting the turn
            asyncio.ensure_future(self.engine.interrupt())
        try:
            await consumer
        except asyncio.CancelledError:
            return True
        finally:
            self._turn_running = False
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
        if self.terminated:
            return True
        self.engine.drain_in_background()  # index this turn while the user reads the reply
        return self._sigints > 1

    async def _consume(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            if isinstance(event, PermissionRequest):
                self.renderer.render(event)
                event.answer(await self._ask_permission(event))
            else:
                if isinstance(event, TurnFinished) and event.status in ("failed", "refused"):
                    self.failed_turns += 1
                self.renderer.render(event)

    async def _ask_permission(self, request: PermissionRequest) -> str:
        if not self.interactive:
            print("[refused: no terminal to ask on]", file=sys.stderr, flush=True)
            return "n"
        from prompt_toolkit import PromptSession
        while True:
            try:
                answer = (await PromptSession().prompt_async(PERMISSION_PROMPT)).strip().lower()
            except (KeyboardInterrupt, EOFError):
                return "n"
            if answer[:1] in PermissionRequest.CHOICES:
                return answer[:1]
            print("please answer y, n, a or s", file=sys.stderr, flush=True)


def _add_sigint(loop: asyncio.AbstractEventLoop, handler: Any) -> bool:
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
        return True
    except (NotImplementedError, RuntimeError, ValueError):
        return False


def _make_session(engine: TurnEngine) -> Any:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    from ..fsutil import touch_private

    keys = KeyBindings()

    @keys.add("enter")
    def _send(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    @keys.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    touch_private(engine.instance.prompt_history_path)
    completer = WordCompleter([f"/{name}" for name in COMMANDS], sentence=True)
    return PromptSession(history=FileHistory(str(engine.instance.prompt_history_path)),
                         multiline=True, key_bindings=keys, completer=completer,
                         complete_while_typing=True)
