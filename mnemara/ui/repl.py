"""`mnemara run --no-tui`: a prompt-toolkit REPL over the turn engine.

Enter sends; Alt+Enter (or Esc then Enter) inserts a newline. Ctrl+C interrupts a running turn,
a second Ctrl+C during the same turn quits; at the prompt Ctrl+C clears the line and Ctrl+D quits.
Off a terminal (piped stdin), each input line is one message and permission prompts are refused.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any, AsyncIterator

from ..engine.events import Notice, PermissionRequest
from ..engine.turn import TurnEngine
from ..instance import Instance
from .commands import COMMANDS, dispatch, window_totals
from .plain import PlainRenderer

PERMISSION_PROMPT = "allow? [y]es once / [n]o / [a]lways this exact call / [s]ession: "


def run_repl(instance: Instance, *, interactive: bool) -> int:
    engine = TurnEngine(instance)
    try:
        return asyncio.run(Repl(engine, interactive=interactive).main())
    finally:
        engine.close()


class Repl:
    def __init__(self, engine: TurnEngine, *, interactive: bool) -> None:
        self.engine = engine
        self.interactive = interactive
        self.renderer = PlainRenderer()
        self.session: Any = None
        self._sigints = 0

    def banner(self) -> str:
        cfg = self.engine.config
        name = cfg.display_name or self.engine.instance.name
        return (f"mnemara · {name} · {cfg.model} · role: {cfg.role_doc_path or '(none)'}\n"
                f"{window_totals(self.engine).line()}\n"
                "/help lists commands · Enter sends · Alt+Enter newline · Ctrl+D quits")

    async def main(self) -> int:
        print(self.banner(), flush=True)
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
                outcome = await dispatch(self.engine, text.strip())
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

    async def _read(self) -> str | None:
        if not self.interactive:
            line = await asyncio.to_thread(sys.stdin.readline)
            return None if line == "" else line.rstrip("\n")
        try:
            return await self.session.prompt_async("you> ")
        except KeyboardInterrupt:
            return ""
        except EOFError:
            return None

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
        try:
            await consumer
        except asyncio.CancelledError:
            return True
        finally:
            if installed:
                loop.remove_signal_handler(signal.SIGINT)
        self.engine.drain_in_background()  # index this turn while the user reads the reply
        return self._sigints > 1

    async def _consume(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            if isinstance(event, PermissionRequest):
                self.renderer.render(event)
                event.answer(await self._ask_permission(event))
            else:
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
