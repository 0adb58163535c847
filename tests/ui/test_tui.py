"""The Textual chat panel as a user drives it: Pilot key presses, the scripted fake CLI behind.

Plus plain unit tests of the panel's pure parts (input history, completion, status layout).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.store import TurnStore
from mnemara.ui.commands import COMMANDS, MODELS
from mnemara.ui.tui.history import InputHistory, complete_slash, format_entry, parse_history
from mnemara.ui.tui.status import StatusFigures, compact, fit, line_width, meter, segments
from tests.fakes.fake_cli import fake_cli

# --- fixtures and helpers --------------------------------------------------------------------


@pytest.fixture
def make_app(tmp_path: Path, home: Path):
    """make_app(turns, **config) -> MnemaraApp over a fresh instance and the scripted fake CLI."""
    engines: list[TurnEngine] = []

    def make(turns: list[list[dict[str, Any]]] | None = None, *, history: list[str] | None = None,
             setup: Callable[[TurnStore], None] | None = None, **config: Any):
        from mnemara.ui.tui.app import MnemaraApp
        inst = Instance.named("t")
        cfg = inst.create()
        if config:
            inst.save_config(cfg.replace(**config))
        fake = fake_cli(tmp_path / "fake", turns or [])
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        if setup is not None:
            setup(engine.store)
        hist = InputHistory(history or [], tmp_path / "history")
        return MnemaraApp(engine, history=hist, owns_process=False)

    yield make
    for engine in engines:
        engine.close()


async def wait_for(pilot, predicate: Callable[[], Any], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {getattr(predicate, '__name__', predicate)}")
        await pilot.pause(0.05)


async def drawn(pilot) -> None:
    """Wait until the window's turns are all on screen (older ones come after the first frame)."""
    await wait_for(pilot, lambda: pilot.app.window_drawn.is_set())
    await pilot.pause()


async def send(pilot, text: str) -> None:
    from mnemara.ui.tui.widgets import PromptInput
    await drawn(pilot)
    prompt = pilot.app.query_one(PromptInput)
    prompt.focus()
    prompt.load_text(text)
    await pilot.pause()
    await pilot.press("enter")
    await pilot.pause()


async def finish_turn(pilot, timeout: float = 20.0) -> None:
    await wait_for(pilot, lambda: not pilot.app.turn_running, timeout)
    await pilot.pause(0.1)


def asking(app) -> bool:
    """The permission dialog is up, with its content composed."""
    from mnemara.ui.tui.screens import PermissionScreen
    return isinstance(app.screen, PermissionScreen) and bool(app.screen.query("#choice-n"))


def chat_text(app) -> str:
    """Everything the chat log shows, as plain text (Markdown by its source)."""
    from mnemara.ui.tui.chat import AssistantText, ChatLog, FoldLine
    out = []
    for entry in app.query_one(ChatLog).children:
        if isinstance(entry, AssistantText):
            out.append(entry.source)
        elif isinstance(entry, FoldLine):
            out.append(str(entry.query_one(".fold-summary").render()))
        else:
            out.append(str(entry.render()))
    return "\n".join(out)


def entries(app, kind: type) -> list:
    from mnemara.ui.tui.chat import ChatLog
    return [e for e in app.query_one(ChatLog).children if isinstance(e, kind)]


def status_text(app) -> str:
    from mnemara.ui.tui.widgets import StatusBar
    return str(app.query_one(StatusBar).render())


def user_turn(store: TurnStore, text: str, at: str, **kw: Any):
    return store.add_turn("user", [{"type": "text", "text": text}], created_at=at, **kw)


def assistant_turn(store: TurnStore, text: str, at: str, **kw: Any):
    return store.add_turn("assistant", [{"type": "text", "text": text}], created_at=at,
                          model="claude-sonnet-4-6", **kw)


# --- a turn --------------------------------------------------------------------------------------


async def test_typed_message_gets_a_streamed_markdown_reply(make_app) -> None:
    from mnemara.ui.tui.chat import AssistantText, TurnSummary, UserMessage
    reply = "Hello **there**.\n\n- one\n- two\n"
    app = make_app([[{"text": reply, "chunks": 8, "delay": 0.08}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press(*"hi there")
        await pilot.press("enter")
        await wait_for(pilot, lambda: entries(app, UserMessage))
        assert "hi there" in chat_text(app)
        assert app.query_one("#prompt").text == ""
        # part of the reply is on screen while the turn is still running
        await wait_for(pilot, lambda: entries(app, AssistantText) and entries(app, AssistantText)[0].source)
        partial = entries(app, AssistantText)[0].source
        assert app.turn_running and partial != reply and reply.startswith(partial)
        await finish_turn(pilot)
        assert [e.source for e in entries(app, AssistantText)] == [reply]
        assert entries(app, TurnSummary)
        assert "turns 2/20" in status_text(app)


async def test_input_stays_live_while_a_reply_streams(make_app) -> None:
    # ~200 small deltas a second, like a fast model
    app = make_app([[{"text": "word " * 1000, "chunks": 1000, "delay": 0.005}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "go")
        await wait_for(pilot, lambda: "word" in chat_text(app))
        # (pilot.press waits for the app to go idle, which it never does while streaming, so
        # keys are posted as the terminal driver would and timed until they show in the box)
        from textual import events
        prompt = app.query_one("#prompt")
        slowest = 0.0
        for n, key in enumerate("typing along", 1):
            started = time.monotonic()
            app.post_message(events.Key("space" if key == " " else key, key))
            while len(prompt.text) < n:
                await asyncio.sleep(0.001)
            slowest = max(slowest, time.monotonic() - started)
            await asyncio.sleep(0.02)
        assert prompt.text == "typing along"
        assert slowest < 0.25, f"a key took {slowest:.3f} s to show while the reply streamed"
        assert app.turn_running
        await pilot.press("enter")  # refused while the turn runs; the text stays
        assert app.query_one("#prompt").text == "typing along"
        assert "a turn is running" in chat_text(app)
        await finish_turn(pilot)


@pytest.mark.parametrize("key, runs", [("y", True), ("n", False), ("escape", False)])
async def test_permission_modal_answers_the_tool_call(make_app, tmp_path: Path, key: str, runs: bool) -> None:
    from mnemara.ui.tui.screens import PermissionScreen
    from mnemara.ui.tui.chat import ToolLine
    target = tmp_path / "made-by-bash"
    app = make_app([[{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "toolu_1"},
                     {"text": "Done."}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "make the file")
        await wait_for(pilot, lambda: asking(app))
        dialog = app.screen
        assert "Bash: touch" in str(dialog.query_one("#permission-summary").render())
        assert str(target) in str(dialog.query_one("#permission-input Static").render())
        await pilot.pause(PermissionScreen.ARM_SECONDS + 0.05)
        await pilot.press(key)
        await finish_turn(pilot)
        assert not isinstance(app.screen, PermissionScreen)
        line = entries(app, ToolLine)[0]
        assert target.exists() is runs
        assert line.has_class("-error") is not runs
        assert "Done." in chat_text(app)


async def test_permission_keys_are_ignored_just_after_the_dialog_opens(make_app, tmp_path: Path,
                                                                       monkeypatch) -> None:
    from mnemara.ui.tui.screens import PermissionScreen
    # A wide guard window, so the key below lands inside it even on a busy machine.
    monkeypatch.setattr(PermissionScreen, "ARM_SECONDS", 2.0)
    target = tmp_path / "made"
    app = make_app([[{"tool": "Bash", "input": {"command": f"touch {target}"}, "id": "t1"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "go")
        await wait_for(pilot, lambda: asking(app))
        await pilot.press("y")  # typed a moment too late into the input box: must not answer
        await pilot.pause(0.05)
        assert isinstance(app.screen, PermissionScreen)
        await pilot.pause(PermissionScreen.ARM_SECONDS)
        await pilot.click("#choice-s")
        await finish_turn(pilot)
        assert target.exists()


async def test_tool_line_expands_to_show_input_and_output(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.screens import PermissionScreen
    from mnemara.ui.tui.chat import ToolLine
    app = make_app([[{"tool": "Bash", "input": {"command": "printf 'alpha\\nbeta\\n'"}, "id": "t1"},
                     {"text": "ok"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "print")
        await wait_for(pilot, lambda: asking(app))
        await pilot.pause(PermissionScreen.ARM_SECONDS + 0.05)
        await pilot.press("y")
        await finish_turn(pilot)
        line = entries(app, ToolLine)[0]
        assert "✓ alpha (+1 lines)" in str(line.query_one(".fold-summary").render())
        detail = line.query_one(".fold-detail")
        assert not detail.display
        line.focus()
        await pilot.press("enter")
        assert detail.display
        assert "beta" in str(detail.render()) and "printf" in str(detail.render())
        await pilot.click(line)
        assert not detail.display


async def test_thinking_and_tool_results_fold_into_one_line_each(make_app) -> None:
    from mnemara.ui.tui.chat import ThinkingLine, ToolLine
    app = make_app([[{"thinking": "Let me look at the window first.", "signature": "sig"},
                     {"tool": "mcp__mnemara__inspect_context", "input": {}, "id": "t1"},
                     {"text": "All good."}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "how full is the window?")
        await finish_turn(pilot)
        thinking = entries(app, ThinkingLine)[0]
        assert "thinking (32 characters, not re-sent)" in str(thinking.query_one(".fold-summary").render())
        tool = str(entries(app, ToolLine)[0].query_one(".fold-summary").render())
        assert "⚙ inspect_context: {}  ✓ Context of instance 't'" in tool


async def test_status_bar_shows_real_figures_after_a_turn(make_app) -> None:
    usage = {"input_tokens": 1200, "output_tokens": 85, "cache_read_input_tokens": 3400,
             "cache_creation_input_tokens": 200}
    app = make_app([[{"text": "Counted."}, {"usage": usage, "cost": 0.0187}]], model="claude-opus-4-7")
    async with app.run_test(size=(120, 30)) as pilot:
        assert "last in – out –" in status_text(app)
        await send(pilot, "count")
        await finish_turn(pilot)
        status = status_text(app)
        assert "last in 4,800 out 85" in status
        assert "cache 71%" in status  # 3,400 of 4,800 input tokens came from the cache
        assert "$0.0187" in status
        assert "claude-opus-4-7" in status
        assert "turns 2/20" in status
        assert f"/{compact(100_000)}" in status


async def test_eviction_notice_when_the_budget_forces_it(make_app) -> None:
    from mnemara.ui.tui.chat import NoticeLine

    def three_turns(store: TurnStore) -> None:
        user_turn(store, "first question", "2025-01-01T10:00:00Z")
        assistant_turn(store, "first answer", "2025-01-01T10:00:05Z")
        user_turn(store, "second question", "2025-01-01T10:01:00Z")

    app = make_app([[{"text": "fine"}]], max_window_turns=4, setup=three_turns)
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "third")
        await finish_turn(pilot)
        notices = [n for n in entries(app, NoticeLine) if n.kind == "eviction"]
        assert notices and "archived" in str(notices[0].render())
        assert "2 archived" in status_text(app)  # at 80 columns: "2 turns archived" when there is room
        assert app.engine.store.archived_count() >= 1


async def test_failed_turn_shows_error_and_retry_resends(make_app) -> None:
    from mnemara.ui.tui.chat import NoticeLine
    app = make_app([[{"error": "the model fell over"}], [{"text": "Second time lucky."}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "try this")
        await finish_turn(pilot)
        errors = [n for n in entries(app, NoticeLine) if n.kind == "error"]
        assert errors and "/retry" in str(errors[-1].render())
        await send(pilot, "/retry")
        await finish_turn(pilot)
        assert "Second time lucky." in chat_text(app)


async def test_ctrl_c_interrupts_a_turn_then_quits_when_idle(make_app) -> None:
    app = make_app([[{"text": "starting", "chunks": 1}, {"sleep": 30}, {"text": "never"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "long job")
        await wait_for(pilot, lambda: "starting" in chat_text(app))
        started = time.monotonic()
        await pilot.press("ctrl+c")
        await finish_turn(pilot, timeout=15)
        assert time.monotonic() - started < 10
        assert "interrupted" in chat_text(app)
        assert "never" not in chat_text(app)
        await pilot.press("ctrl+c")
        await pilot.pause(0.2)
    assert app.return_code == 0


# --- slash commands --------------------------------------------------------------------------------


async def test_help_lists_commands_and_keys(make_app) -> None:
    from mnemara.ui.tui.chat import CommandOutput
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/help")
        output = entries(app, CommandOutput)[-1]
        lines = [strip.text for strip in output.render_lines(output.region.reset_offset)]
        text = "\n".join(lines)
        for cmd in COMMANDS.values():
            assert cmd.usage in text
        assert "Ctrl+J" in text and "Ctrl+L" in text and "Ctrl+C" in text
        # long help wraps under its own column, not under the command
        column = next(line for line in lines if "/help" in line).index("List the slash")
        wrapped = [ln for ln in lines if ln[column:].strip() and not ln[2:column].strip()]  # after "▌ "
        assert wrapped, "\n".join(lines)


async def test_models_and_swap_change_the_model_everywhere(make_app) -> None:
    from mnemara.ui.tui.widgets import ChatHeader
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await send(pilot, "/models")
        assert all(m in chat_text(app) for m in MODELS)
        await send(pilot, "/swap 2")
        assert f"model is now {MODELS[1]}" in chat_text(app)
        assert MODELS[1] in str(app.query_one(ChatHeader).render())
        assert MODELS[1] in status_text(app)
        assert app.engine.instance.load_config().model == MODELS[1]
        await send(pilot, "/swap 99")
        assert "no model number 99" in chat_text(app)


async def test_show_prints_the_window(make_app) -> None:
    def one(store: TurnStore) -> None:
        user_turn(store, "what is in the window", "2025-01-01T10:00:00Z")

    app = make_app(setup=one)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "/show")
        text = chat_text(app)
        assert "#1  you · 2025-01-01 10:00:00Z" in text
        assert "1/20 turns" in text


async def test_unknown_command_is_an_error_line(make_app) -> None:
    from mnemara.ui.tui.chat import NoticeLine
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/swp")
        assert any(n.kind == "error" and "unknown command /swp" in str(n.render())
                   for n in entries(app, NoticeLine))


async def test_context_viewer_pins_unpins_and_evicts(make_app, tmp_path: Path) -> None:
    from mnemara.ui.tui.screens import ContextScreen

    def window(store: TurnStore) -> None:
        user_turn(store, "keep this one", "2025-01-01T10:00:00Z")
        assistant_turn(store, "noted", "2025-01-01T10:00:05Z")
        user_turn(store, "throwaway", "2025-01-01T10:01:00Z")

    app = make_app(setup=window)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(pilot, "/context")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))
        viewer = app.screen
        assert viewer.table.row_count == 3
        await pilot.press("p")  # cursor starts on the first row
        await pilot.pause()
        assert "Pinned: #1" in str(viewer.query_one("#context-message").render())
        assert "●" in str(viewer.table.get_row_at(0)[4])
        await pilot.press("down", "p")
        await pilot.pause()
        await pilot.press("u")
        await pilot.pause()
        await pilot.press("down", "e")
        await pilot.pause()
        assert viewer.table.row_count == 2
        await pilot.press("enter")
        assert "noted" in str(viewer.query_one("#context-detail").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, ContextScreen)
        assert "turns 2/20" in status_text(app)
    # the pins are in the store, not only on screen
    with TurnStore(app.engine.instance.turns_path) as store:
        assert [(t.id, t.pinned) for t in store.window()] == [(1, True), (2, False)]
        assert store.archived_count() == 1


async def test_clear_command_empties_window_and_screen(make_app) -> None:
    def two(store: TurnStore) -> None:
        user_turn(store, "old question", "2025-01-01T10:00:00Z")
        assistant_turn(store, "old answer", "2025-01-01T10:00:05Z")

    app = make_app(setup=two)
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn(pilot)
        assert "old answer" in chat_text(app)
        await send(pilot, "/clear")
        assert "old answer" not in chat_text(app)
        assert "moved 2 turns to the archive" in chat_text(app)
        assert app.engine.store.count() == 0


# --- the screen --------------------------------------------------------------------------------------


async def test_start_shows_the_last_turns_of_the_window(make_app) -> None:
    from mnemara.ui.tui.chat import ToolLine

    def window(store: TurnStore) -> None:
        for i in range(6):
            user_turn(store, f"question {i}", f"2025-01-01T10:0{i}:00Z")
            store.add_turn("assistant", [
                {"type": "text", "text": f"answer **{i}**"},
                {"type": "tool_use", "id": f"t{i}", "name": "Bash", "input": {"command": f"echo {i}"}},
                {"type": "tool_result", "tool_use_id": f"t{i}", "content": f"{i}\n", "is_error": False},
            ], created_at=f"2025-01-01T10:0{i}:30Z")

    app = make_app(setup=window)
    app.shown_turns = 4
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn(pilot)
        text = chat_text(app)
        assert "8 earlier turns of the window are not drawn" in text
        assert "question 3" not in text and "question 4" in text and "answer **5**" in text
        assert len(entries(app, ToolLine)) == 2
        assert "Bash: echo 5  ✓ 5" in str(entries(app, ToolLine)[-1].query_one(".fold-summary").render())


async def test_ctrl_l_clears_the_screen_but_not_the_window(make_app) -> None:
    def one(store: TurnStore) -> None:
        user_turn(store, "remember me", "2025-01-01T10:00:00Z")

    app = make_app(setup=one)
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn(pilot)
        assert "remember me" in chat_text(app)
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert "remember me" not in chat_text(app)
        assert "screen cleared; the window still holds 1 turn" in chat_text(app)
        assert app.engine.store.count() == 1


async def test_enter_sends_and_ctrl_j_inserts_a_newline(make_app) -> None:
    app = make_app([[{"text": "two lines received"}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a", "ctrl+j", "b")
        assert app.query_one("#prompt").text == "a\nb"
        assert not app.turn_running
        await pilot.press("enter")
        await finish_turn(pilot)
        assert app.engine.store.window()[0].text == "a\nb"


async def test_up_and_down_walk_the_history(make_app) -> None:
    app = make_app(history=["older", "/help"])
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one("#prompt")
        await pilot.press(*"draft")
        await pilot.press("up")
        assert prompt.text == "/help"
        assert not app.query_one("#suggestions").display  # recalled, not typed: no pop-up
        await pilot.press("up")
        assert prompt.text == "older"
        await pilot.press("up")
        assert prompt.text == "older"
        await pilot.press("down")
        assert prompt.text == "/help"
        await pilot.press("down")
        assert prompt.text == "draft"


async def test_tab_completes_slash_commands(make_app) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one("#prompt")
        suggestions = app.query_one("#suggestions")
        await pilot.press("/", "s")
        assert suggestions.display
        names = [n for n in COMMANDS if n.startswith("s")]
        assert [m.name for m in suggestions.matches] == names and len(names) > 1
        await pilot.press("down", "tab")
        assert prompt.text == f"/{names[1]} "
        assert not suggestions.display
        prompt.load_text("")
        await pilot.press(*"/qui")
        await pilot.press("tab")
        assert prompt.text == "/quit"
        await pilot.press("tab")
        assert prompt.text == "/quit"  # no argument: no space added


async def test_enter_on_a_partly_typed_command_takes_the_highlighted_one(make_app) -> None:
    from mnemara.ui.tui.screens import ContextScreen
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one("#prompt")
        await pilot.press(*"/sw", "enter")
        assert prompt.text == "/swap "  # it needs an argument: completed, not sent
        prompt.load_text("")
        await pilot.press(*"/cont", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))


async def test_command_palette_lists_and_runs_slash_commands(make_app) -> None:
    from textual.command import CommandPalette
    from mnemara.ui.tui.screens import ContextScreen
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"context")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ContextScreen))


async def test_layout_survives_resize(make_app) -> None:
    from mnemara.ui.tui.widgets import StatusBar
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        bar = app.query_one(StatusBar)
        assert bar.size.height == 1  # one line: the least important items shorten or give way
        assert "turns 0/20" in status_text(app) and "ctx" in status_text(app)
        await pilot.resize_terminal(160, 40)
        await pilot.pause()
        assert bar.size.height == 1 and "claude-sonnet-5-5" in status_text(app)
        await pilot.resize_terminal(60, 20)
        await pilot.pause()
        assert bar.size.height == 1 and "turns 0/20" in status_text(app)
        assert app.query_one("#prompt").size.height >= 1


# --- pure parts -------------------------------------------------------------------------------------


def test_history_file_round_trips_with_prompt_toolkit(tmp_path: Path) -> None:
    from prompt_toolkit.history import FileHistory
    path = tmp_path / ".prompt_history"
    FileHistory(str(path)).store_string("from the repl")
    history = InputHistory.load(path)
    history.add("two\nlines")
    history.add("two\nlines")  # not twice in a row
    assert InputHistory.load(path).entries == ["from the repl", "two\nlines"]
    assert list(FileHistory(str(path)).load_history_strings()) == ["two\nlines", "from the repl"]
    assert parse_history(format_entry("a\n+b")) == ["a\n+b"]


def test_history_walk_keeps_the_draft() -> None:
    h = InputHistory(["one", "two"])
    assert h.following() is None
    assert h.previous("draft") == "two"
    assert h.previous("two") == "one"
    assert h.previous("one") is None
    assert h.following() == "two"
    assert h.following() == "draft"
    assert h.following() is None


def test_slash_completion_only_before_the_argument() -> None:
    commands = [(c.name, c.usage, c.help) for c in COMMANDS.values()]
    assert [c.name for c in complete_slash("/sw", commands)] == ["swap"]
    assert complete_slash("/swap 2", commands) == []
    assert complete_slash("hello", commands) == []
    assert complete_slash("/swap", commands)[0].insert == "/swap "
    assert complete_slash("/hel", commands)[0].insert == "/help"


def test_status_bar_fits_one_line_by_shortening_then_leaving_out_the_least_important() -> None:
    f = StatusFigures(12, 20, 61_000, 100_000, 4_800, 85, 0.71, 0.0187, "claude-sonnet-4-6", 3)
    items = segments(f)
    texts = [s.text for s in items]
    assert texts[0] == "turns 12/20"
    assert "~61k/100k 61%" in texts[1]
    assert "last in 4,800 out 85" in texts and "cache 71%" in texts and "cost $0.0187" in texts
    assert texts[-1] == "3 turns archived"
    assert [s.text for s in fit(items, 200)] == texts  # room for everything: all of it, in full
    for width in (40, 78, 98, 118):
        line = fit(items, width)
        assert line_width(line) <= width
        assert [s.key for s in line] == [s.key for s in items if s.key in {x.key for x in line}]
        assert line[0].text == "turns 12/20" and line[1].key == "tokens"
    at_80 = [s.text for s in fit(items, 78)]  # an 80-column terminal (the bar pads one each side)
    assert "3 archived" in at_80 and "cache 71%" in at_80
    busy = StatusFigures(5, 20, 1_234, 100_000, 6_000, 120, 0.75, 0.0231, "claude-sonnet-4-6", 0,
                         busy=True, recalled=3, recall_tokens=800, memory_pending=4,
                         memory_failing=1, memory_mode="hybrid")
    shown = fit(segments(busy), 78)
    assert {s.key for s in shown} >= {"turns", "tokens", "busy", "memory"}
    assert line_width(shown) <= 78
    assert meter(0.0) == ("", "░" * 10)
    assert meter(0.001) == ("█", "░" * 9)
    assert meter(2.0) == ("█" * 10, "")
    assert [compact(n) for n in (950, 8_200, 82_000, 1_200_000)] == ["950", "8.2k", "82k", "1.2M"]


def test_pure_modules_do_not_import_textual() -> None:
    import subprocess
    import sys
    code = ("import sys, mnemara.ui.tui.history, mnemara.ui.tui.status; "
            "sys.exit('textual' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0


@pytest.mark.parametrize("width", [40, 80, 120])
def test_streamed_markdown_renders_like_the_whole_text(width: int) -> None:
    from rich.console import Console
    from rich.markdown import Markdown
    from mnemara.ui.tui.markdown_stream import StreamedMarkdown
    text = ("# Plan\n\nSome **bold** and `code`.\n\n- a\n- b\n\n1. one\n2. two\n\n"
            "```python\ndef f():\n\n    return 1\n```\n\n> quoted\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "The last paragraph, still\nbeing written")
    console = Console(width=width, file=open("/dev/null", "w"), force_terminal=True)

    def rendered(renderable: object) -> str:
        with console.capture() as capture:
            console.print(renderable)
        return capture.get()

    stream = StreamedMarkdown()
    for i in range(0, len(text), 5):  # as a model streams it, a few characters at a time
        stream.feed(text[i:i + 5])
        assert rendered(stream) == rendered(Markdown(text[:i + 5])), text[:i + 5]
    assert len(stream.chunks) > 5  # the finished paragraphs are cached, not re-rendered


async def test_start_shows_warnings_about_what_was_left_broken(home: Path) -> None:
    from mnemara.ui.tui.app import MnemaraApp
    from mnemara.ui.tui.chat import NoticeLine
    inst = Instance.named("w")
    inst.create()
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [{"type": "text", "text": "cut off"}], status="pending")
    inst.permissions_path.write_text("{not json")
    engine = TurnEngine(inst)
    try:
        app = MnemaraApp(engine, history=InputHistory([], home / "history"), owns_process=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await drawn(pilot)
            warnings = " ".join(str(n.render()) for n in entries(app, NoticeLine) if n.kind == "warning")
            assert "left unfinished by an earlier session" in warnings
            assert "permissions.json" in warnings
    finally:
        engine.close()
