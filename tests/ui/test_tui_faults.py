"""The chat panel facing turn-level faults (issue 10, hole 5): an oversized message is refused
with the same one line the REPL and `ask` print, stays in the input box, and nothing reaches the
window or the CLI."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest

from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.fake_cli import fake_cli


@pytest.fixture
def make_app(tmp_path: Path, home: Path):
    engines: list[TurnEngine] = []

    def make(turns: list[list[dict[str, Any]]], **config: Any) -> Any:
        from mnemara.ui.tui.app import MnemaraApp
        from mnemara.ui.tui.history import InputHistory
        inst = Instance.named("t")
        cfg = inst.create()
        inst.save_config(cfg.replace(**config))
        fake = fake_cli(tmp_path / "fake", turns)
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        app = MnemaraApp(engine, history=InputHistory([], tmp_path / "history"), owns_process=False)
        app.fake = fake
        return app

    yield make
    for engine in engines:
        engine.close()


async def wait_for(pilot: Any, predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_an_oversized_message_is_refused_in_one_line_and_nothing_is_sent(make_app) -> None:
    from mnemara.ui.tui.chat import NoticeLine, TurnSummary
    from mnemara.ui.tui.widgets import PromptInput
    app = make_app([[{"text": "never asked"}]], rag_enabled=False, max_window_tokens=2_000)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.window_drawn.is_set())
        prompt = app.query_one(PromptInput)
        prompt.focus()
        prompt.load_text("w" * 20_000)
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.kind == "error" for n in app.query(NoticeLine)))
        await wait_for(pilot, lambda: not app.turn_running)
        assert prompt.text == "w" * 20_000  # kept in the box, to trim and send again
        [error] = [n for n in app.query(NoticeLine) if n.kind == "error"]
        shown = str(error.render())
        assert "message not sent" in shown and "20.0 KB" in shown and "2,000 tokens" in shown
        assert "/tokens N" in shown and "/retry" not in shown
        assert not list(app.query(TurnSummary))
        assert app.engine.store.count() == 0
        assert app.fake.user_messages() == []


async def test_a_store_damaged_mid_session_is_its_one_line_not_a_crash_report(make_app) -> None:
    """The store found damaged during a turn (the disk changed under a running panel): the
    panel shows the same one line every command prints, not "stopped unexpectedly" and a type."""
    from mnemara.errors import StoreDamaged
    from mnemara.ui.tui.chat import NoticeLine
    from mnemara.ui.tui.widgets import PromptInput
    app = make_app([[{"text": "never asked"}]], rag_enabled=False)

    async def damaged(text: str) -> Any:
        raise StoreDamaged("/x/turns.sqlite is damaged (database disk image is malformed); nothing "
                           "was changed. Check it with `mnemara doctor -i t`")
        yield  # an async generator, like TurnEngine.run

    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.window_drawn.is_set())
        app.engine.run = damaged
        prompt = app.query_one(PromptInput)
        prompt.focus()
        prompt.load_text("hello")
        await pilot.press("enter")
        await wait_for(pilot, lambda: any(n.kind == "error" for n in app.query(NoticeLine)))
        await wait_for(pilot, lambda: not app.turn_running)
        [error] = [str(n.render()) for n in app.query(NoticeLine) if n.kind == "error"]
        assert "is damaged" in error and "mnemara doctor -i t" in error
        assert "unexpectedly" not in error and "StoreDamaged" not in error
