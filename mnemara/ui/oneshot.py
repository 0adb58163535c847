"""`mnemara ask`: one turn, non-interactively. The reply goes to stdout, everything else to stderr."""

from __future__ import annotations

import asyncio
import json
import signal

from ..engine.events import PermissionRequest, TextDelta, TextDone, TurnFinished, event_json
from ..engine.turn import TurnEngine
from ..instance import Instance
from ..termsafe import inert_json
from .plain import PlainRenderer


def ask(instance: Instance, message: str, *, as_json: bool, yes: bool) -> int:
    """Run one turn; returns the process exit code: 0 ok, 1 the turn failed or the message was
    refused (too large), 130 interrupted by Ctrl+C, 143 stopped by SIGTERM (the partial reply is
    kept in both)."""
    return asyncio.run(_ask(instance, message, as_json=as_json, yes=yes))


async def _ask(instance: Instance, message: str, *, as_json: bool, yes: bool) -> int:
    engine = TurnEngine(instance, unattended="allow" if yes else "deny", front_end="ask")
    renderer = PlainRenderer()
    finished: TurnFinished | None = None
    loop = asyncio.get_running_loop()
    # Ctrl+C stops the turn cleanly (the partial reply is kept) instead of killing the process.
    loop.add_signal_handler(signal.SIGINT, lambda: asyncio.ensure_future(engine.interrupt()))
    # SIGTERM (kill, a closing terminal multiplexer, a service manager) is treated the same way:
    # the turn is interrupted and stored, not left `pending` with its partial reply lost.
    terminated: list[bool] = []

    def on_sigterm() -> None:
        terminated.append(True)
        asyncio.ensure_future(engine.interrupt())

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        for notice in engine.startup_notices:
            print(json.dumps(event_json(notice)), flush=True) if as_json else renderer.render(notice)
        async for event in engine.run(message):
            if isinstance(event, TurnFinished):
                finished = event
            if as_json:
                # lossless: unsafe characters as \u escapes, the same JSON value
                print(inert_json(json.dumps(event_json(event), ensure_ascii=False, default=str)),
                      flush=True)
            elif isinstance(event, (TextDelta, TextDone)):
                renderer.render(event)
            elif not isinstance(event, PermissionRequest):
                renderer.render(event)
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        loop.remove_signal_handler(signal.SIGTERM)
        engine.close()
    if terminated:
        return 143
    if finished is not None and finished.status == "interrupted":
        return 130
    return 0 if finished is not None and finished.status == "complete" else 1
