"""`/slot` as a user drives it: the TUI's editor screen (Pilot key presses), the REPL's $EDITOR
(a real pty), and the command itself through `dispatch`; the scripted fake CLI behind, so the
next request shows what the model then sees."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect

from mnemara.memory.slots import SlotBook
from mnemara.ui.commands import dispatch
from tests.fakes.fake_cli import fake_cli
from tests.ui.test_repl import ENV_EXTRA
from tests.ui.test_tui import chat_text, finish_turn, make_app, send, wait_for  # noqa: F401


async def test_tui_slot_editor_saves_and_the_next_message_carries_it(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.slot_editor import SlotEditorScreen
    app = make_app([[{"text": "ok"}]], rag_enabled=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/slot current_task")
        await wait_for(pilot, lambda: isinstance(app.screen, SlotEditorScreen))
        assert app.screen.query_one("#slot-text").text == ""
        await pilot.press(*"ship the parser")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, SlotEditorScreen))
        await pilot.pause()
        assert "saved slot 'current_task'" in chat_text(app)
        await send(pilot, "/slot")
        await pilot.pause()
        assert "ship the parser" in chat_text(app)
        await send(pilot, "hello")
        await finish_turn(pilot)
    from tests.fakes.fake_cli import read_log
    messages = [e["stdin"] for e in read_log(tmp_path / "fake" / "fake_cli_log.jsonl")
                if e.get("stdin", {}).get("type") == "user"]
    newest = messages[-1]["message"]["content"][-1]["text"]
    assert newest.index("hello") < newest.index('<slot name="current_task">ship the parser</slot>')


async def test_tui_slot_editor_cancel_keeps_the_slot(make_app) -> None:
    from mnemara.ui.tui.slot_editor import SlotEditorScreen
    app = make_app(rag_enabled=False, setup=lambda store: SlotBook(store, _config()).set("todo", "keep me", "user"))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/slot todo")
        await wait_for(pilot, lambda: isinstance(app.screen, SlotEditorScreen))
        assert app.screen.query_one("#slot-text").text == "keep me"
        await pilot.press(*"scribble")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SlotEditorScreen))
        await pilot.pause()
        assert "not changed (cancelled)" in chat_text(app)
        assert SlotBook(app.engine.store, app.engine.config).get("todo") == "keep me"


def _config():
    from mnemara.config import Config
    return Config.defaults()


async def test_slot_command_sets_lists_undoes_and_refuses_bad_names(make_app) -> None:
    app = make_app(rag_enabled=False)
    engine = app.engine
    out = await dispatch(engine, "/slot")
    assert "no slots yet" in out.text
    out = await dispatch(engine, "/slot user_profile prefers short answers")
    assert out.kind == "info" and "saved slot 'user_profile'" in out.text
    await dispatch(engine, "/slot user_profile prefers long answers")
    listing = (await dispatch(engine, "/slot")).text
    assert "user_profile" in listing and "prefers long answers" in listing and "slots_max_tokens" in listing
    out = await dispatch(engine, "/slot undo user_profile")
    assert "took back the user's set" in out.text and "prefers short answers" in out.text
    assert (await dispatch(engine, "/slot show user_profile")).text == "prefers short answers"
    history = (await dispatch(engine, "/slot history user_profile")).text.splitlines()
    assert len(history) == 3 and "undo of #2" in history[-1]
    bad = await dispatch(engine, "/slot Not-A-Name text")
    assert bad.kind == "error" and "not a valid slot name" in bad.text
    assert (await dispatch(engine, "/slot undo")).kind == "error"
    assert "cleared slot" in (await dispatch(engine, "/slot clear user_profile")).text


def test_repl_slot_opens_the_editor_and_saves(fake_cli_env: dict[str, str], tmp_path: Path) -> None:
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'fix the login bug' > \"$1\"\n")
    editor.chmod(0o755)
    env = {**fake_cli_env, **ENV_EXTRA, **fake_cli(tmp_path / "fake", [[{"text": "ok"}]]).env,
           "EDITOR": str(editor), "VISUAL": ""}
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "r"],
                          env=env, encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("you>")
    child.sendline("/slot current_task")
    child.expect("saved slot 'current_task'")
    child.expect("you>")
    child.sendline("/slot")
    child.expect("fix the login bug")
    child.expect("you>")
    child.sendeof()
    child.expect(pexpect.EOF)


async def test_context_viewer_shows_the_slots(make_app) -> None:
    from textual.widgets import Static

    from mnemara.ui.tui.screens import ContextScreen
    app = make_app(rag_enabled=False, setup=lambda store: SlotBook(store, _config()).set("todo", "x", "user"))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/context")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))
        totals = str(app.screen.query_one("#context-totals", Static).render())
        assert "slots: 1, ~" in totals and "todo" in totals and "next message" in totals
