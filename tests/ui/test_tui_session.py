"""The chat panel's /role_doc editor, /edit, /regen, /stop, /name and its fit at 80x24, driven with
Pilot key presses over the scripted fake CLI; and the real `mnemara run` in tmux for the notice
of a newly created instance (it used to be printed behind the full-screen panel)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mnemara.store import TurnStore
from tests.fakes.fake_cli import FAKE_CLI_PATH
from tests.ui.test_tui import (assistant_turn, chat_text, drawn, entries, finish_turn, make_app,  # noqa: F401
                               send, status_text, user_turn, wait_for)


def header_text(app) -> str:
    from mnemara.ui.tui.widgets import ChatHeader
    return str(app.query_one(ChatHeader).render())


# --- /role_doc --------------------------------------------------------------------------------------

async def test_role_doc_editor_saves_and_the_next_turn_sends_it(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.editor import RoleDocScreen
    doc = tmp_path / "role.md"
    doc.write_text("You are terse.")
    app = make_app([[{"text": "ok"}]], role_doc_path=str(doc))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/role_doc")
        await wait_for(pilot, lambda: isinstance(app.screen, RoleDocScreen))
        area = app.screen.query_one("#role-text")
        assert area.text == "You are terse."
        await pilot.press("end", *" Answer in French.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, RoleDocScreen))
        await pilot.pause()
        assert doc.read_text() == "You are terse. Answer in French."
        assert "the next turn uses it" in chat_text(app)
        await send(pilot, "bonjour")
        await finish_turn(pilot)
    from tests.fakes.fake_cli import parse_argv, read_log
    argvs = [e["argv"] for e in read_log(tmp_path / "fake" / "fake_cli_log.jsonl") if "argv" in e]
    assert parse_argv(argvs[-1])["--system-prompt"] == "You are terse. Answer in French."


async def test_role_doc_editor_cancel_writes_nothing(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.editor import RoleDocScreen
    doc = tmp_path / "role.md"
    doc.write_text("keep me")
    app = make_app(role_doc_path=str(doc))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/role_doc")
        await wait_for(pilot, lambda: isinstance(app.screen, RoleDocScreen))
        await pilot.press(*"scribble")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, RoleDocScreen))
        await pilot.pause()
        assert "not changed (cancelled)" in chat_text(app)
    assert doc.read_text() == "keep me"


async def test_role_doc_without_one_creates_role_md_and_the_header_shows_it(make_app) -> None:
    from mnemara.ui.tui.editor import RoleDocScreen
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        assert "role: (none)" in header_text(app)
        await send(pilot, "/role_doc")
        await wait_for(pilot, lambda: isinstance(app.screen, RoleDocScreen))
        assert "does not exist yet" in str(app.screen.query_one("#role-help").render())
        await pilot.press(*"You help with gardening.")
        await pilot.click("#role-save")
        await wait_for(pilot, lambda: not isinstance(app.screen, RoleDocScreen))
        await pilot.pause()
        role_md = app.engine.instance.root / "role.md"
        assert role_md.read_text() == "You help with gardening."
        assert app.engine.instance.load_config().role_doc_path == str(role_md)
        assert "role: role.md" in header_text(app)


async def test_role_doc_that_is_not_text_is_refused_without_an_editor(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.chat import NoticeLine
    from mnemara.ui.tui.editor import RoleDocScreen
    doc = tmp_path / "role.md"
    doc.write_bytes(b"\xff\xfe binary")
    app = make_app(role_doc_path=str(doc))
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/role_doc")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, RoleDocScreen)
        assert any(n.kind == "error" and "not valid UTF-8" in str(n.render())
                   for n in entries(app, NoticeLine))


# --- /edit, /regen, /stop ---------------------------------------------------------------------------

async def test_edit_loads_the_last_message_and_sending_replaces_the_exchange(make_app) -> None:
    from mnemara.ui.tui.widgets import PromptInput
    app = make_app([[{"text": "Paris."}], [{"text": "Marseille."}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "biggest city in France?")
        await finish_turn(pilot)
        await send(pilot, "/edit")
        prompt = app.query_one(PromptInput)
        assert prompt.text == "biggest city in France?"
        assert "editing message #1" in str(prompt.border_title)
        prompt.load_text("second biggest city in France?")
        await pilot.press("enter")
        await pilot.pause()
        await finish_turn(pilot)
        assert "Marseille." in chat_text(app)
        assert "in the archive" in chat_text(app)
        assert str(prompt.border_title) == "message"
    store = app.engine.store
    assert [t.text for t in store.window()] == ["second biggest city in France?", "Marseille."]
    assert {t.text for t in store.iter_archive()} == {"biggest city in France?", "Paris."}


async def test_escape_leaves_edit_mode_and_the_message_stays(make_app) -> None:
    from mnemara.ui.tui.widgets import PromptInput
    app = make_app([[{"text": "one"}], [{"text": "two"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "first")
        await finish_turn(pilot)
        await send(pilot, "/edit")
        await pilot.press("escape")
        await pilot.pause()
        prompt = app.query_one(PromptInput)
        assert prompt.text == "" and app.editing is None
        await send(pilot, "a new message")
        await finish_turn(pilot)
    assert [t.text for t in app.engine.store.window()] == ["first", "one", "a new message", "two"]
    assert app.engine.store.archived_count() == 0


async def test_regen_replaces_the_reply_and_archives_the_old_one(make_app) -> None:
    app = make_app([[{"text": "A dull answer."}], [{"text": "A better answer."}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "tell me something")
        await finish_turn(pilot)
        await send(pilot, "/regen")
        await finish_turn(pilot)
        assert "A better answer." in chat_text(app)
    assert [t.text for t in app.engine.store.window()] == ["tell me something", "A better answer."]
    assert "A dull answer." in {t.text for t in app.engine.store.iter_archive()}


async def test_stop_typed_during_a_turn_interrupts_it(make_app) -> None:
    app = make_app([[{"text": "starting", "chunks": 1}, {"sleep": 30}, {"text": "never"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "long job")
        await wait_for(pilot, lambda: "starting" in chat_text(app))
        await send(pilot, "/stop")
        await finish_turn(pilot, timeout=15)
        assert "interrupted" in chat_text(app) and "never" not in chat_text(app)
        assert app.is_running  # /stop stops the turn, not the app
    assert app.engine.store.window()[-1].status == "interrupted"


# --- /name and the 80x24 fit ----------------------------------------------------------------------------

async def test_name_changes_the_header_at_once(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await drawn(pilot)
        assert " t " in header_text(app)
        await send(pilot, "/name Research desk")
        assert "Research desk (t)" in header_text(app)
        await send(pilot, "/name --clear")
        assert "Research desk" not in header_text(app)


async def test_status_bar_is_one_line_at_80_columns_while_a_turn_runs(make_app) -> None:
    from mnemara.ui.tui.widgets import StatusBar
    usage = {"input_tokens": 61_000, "output_tokens": 1_200, "cache_read_input_tokens": 4_000,
             "cache_creation_input_tokens": 0}
    app = make_app([[{"text": "first"}, {"usage": usage, "cost": 0.1234}],
                    [{"text": "working", "chunks": 1}, {"sleep": 30}]], model="claude-sonnet-4-6")
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "one")
        await finish_turn(pilot)
        await send(pilot, "two")
        await wait_for(pilot, lambda: "working" in chat_text(app))
        await pilot.pause(0.1)
        bar = app.query_one(StatusBar)
        assert bar.size.height == 1
        text = status_text(app)
        assert len(text) <= 80 and "\n" not in text
        assert "turns 3/20" in text and "● working" in text and "cache" in text
        await pilot.press("ctrl+c")
        await finish_turn(pilot)


async def test_show_in_the_panel_is_wrapped_to_its_width(make_app) -> None:
    from mnemara.ui.tui.chat import CommandOutput

    def long(store: TurnStore) -> None:
        user_turn(store, "word " * 80, "2025-01-01T10:00:00Z")

    app = make_app(setup=long)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/show")
        shown = entries(app, CommandOutput)[-1].text
        assert max(len(line) for line in shown.splitlines()) <= 74  # fits inside the panel once


# --- the created-instance notice, in a real terminal -----------------------------------------------

@pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"),
                    reason="needs the tmux binary (apt-get install tmux)")
def test_run_on_a_fresh_install_says_it_created_the_instance_inside_the_panel(tmp_path: Path) -> None:
    from tests.ui.test_tui_tmux import REPO, Tmux
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": home, "MNEMARA_HOME": home / ".mnemara", "MNEMARA_CLI_PATH": FAKE_CLI_PATH,
           "TERM": "xterm-256color"}
    launcher = tmp_path / "launch.sh"
    launcher.write_text("#!/bin/sh\n" + "".join(f"export {k}={shlex.quote(str(v))}\n"
                                                for k, v in env.items())
                        + "unset MNEMARA_INSTANCE MNEMARA_NO_TUI\n"
                        + f"cd {shlex.quote(str(REPO))}\n"
                        + f"{shlex.quote(sys.executable)} -m mnemara run --instance fresh\n"
                        + "sleep 30\n")
    launcher.chmod(0o755)
    tmux = Tmux(tmp_path / "tmux.sock")
    try:
        tmux("new-session", "-d", "-s", "smoke", "-x", "100", "-y", "30", str(launcher))
        screen = tmux.wait_for(lambda s: "turns 0/20" in s, 20, "the status bar")
        screen = tmux.wait_for(lambda s: "created instance 'fresh'" in s, 10, "the notice")
        assert "turns 0/20" in screen  # on the panel, while it runs
        tmux("send-keys", "-t", "smoke", "C-c")
    finally:
        tmux("kill-server")
