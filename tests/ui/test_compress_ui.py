"""/compress as a user drives it: the TUI's dialog (Pilot) and the REPL's y/n (a real pty), the
scripted fake CLI writing the summary. Nothing is kept until the user says yes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from mnemara.instance import Instance
from mnemara.store.blocks import text_block
from tests.fakes.fake_cli import fake_cli
from tests.ui.test_tui import chat_text, drawn, send, wait_for

FILLER = " ".join(["We talked about the deploy pipeline, its caches and its queues."] * 12)
SUMMARY = 'The user picked Postgres: "use Postgres, not MySQL" (#1). Staging is zanzibar-7 (#3).'
ROWS = [("user", f"Please use Postgres, not MySQL. {FILLER}"), ("assistant", f"Postgres it is. {FILLER}"),
        ("user", f"Staging is zanzibar-7. {FILLER}"), ("assistant", f"Noted. {FILLER}"),
        ("user", f"Next topic. {FILLER}"), ("assistant", f"Sure. {FILLER}")]


def fill(instance: Instance) -> None:
    from mnemara.store import TurnStore
    with TurnStore(instance.turns_path) as store:
        for n, (role, text) in enumerate(ROWS):
            store.add_turn(role, [text_block(text)], created_at=f"2026-03-01T10:0{n}:00Z")


@pytest.fixture
def tui(tui_over: Any):
    return lambda replies: tui_over(fill, replies)


def dialog_up(app: Any) -> bool:
    from mnemara.ui.tui.compress_screen import CompressScreen
    return isinstance(app.screen, CompressScreen) and bool(app.screen.query("#yesno-yes"))


async def test_tui_shows_the_summary_in_a_dialog_and_keeps_it_on_y(tui) -> None:
    from mnemara.ui.tui.compress_screen import CompressScreen
    app = tui([[{"text": SUMMARY}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/compress 4")
        assert "the model is writing a summary" in chat_text(app)
        await wait_for(pilot, lambda: dialog_up(app))
        shown = str(app.screen.query_one("#yesno-text").render())
        assert SUMMARY in shown and "#1-#4" in shown
        assert "✓ 1 quotation verbatim from your messages (#1)" in shown
        assert app.engine.store.archived_count() == 0  # shown, not kept
        await pilot.pause(CompressScreen.ARM_SECONDS + 0.1)
        await pilot.press("y")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompressScreen))
        await wait_for(pilot, lambda: "pinned turn #7" in chat_text(app))
        window = app.engine.store.window()
        assert [t.id for t in window] == [5, 6, 7] and window[-1].pinned
        assert app.engine.store.archived_count() == 4


async def test_tui_escape_discards_the_summary(tui) -> None:
    from mnemara.ui.tui.compress_screen import CompressScreen
    app = tui([[{"text": SUMMARY}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn(pilot)
        before = app.engine.store.sendable_renderings()
        await send(pilot, "/compress 2")
        await wait_for(pilot, lambda: dialog_up(app))
        await pilot.pause(CompressScreen.ARM_SECONDS + 0.1)
        await pilot.press("escape")
        await wait_for(pilot, lambda: "summary discarded" in chat_text(app))
        assert app.engine.store.sendable_renderings() == before
        assert app.engine.store.archived_count() == 0


def test_repl_prints_the_summary_and_asks_before_keeping_it(fake_cli_env: dict[str, str],
                                                            tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**fake_cli_env, "TERM": "xterm", "NO_COLOR": "1",
           **fake_cli(tmp_path / "fake", [[{"text": SUMMARY}], [{"text": SUMMARY}]]).env}
    monkeypatch.setenv("MNEMARA_HOME", env["MNEMARA_HOME"])
    instance = Instance.named("r")
    instance.create()
    fill(instance)
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "r"], env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("you>")
    child.sendline("/compress 4")
    child.expect("zanzibar-7")
    child.expect(r"keep this summary in place of those turns\? \[y/n\]")
    child.sendline("n")
    child.expect("summary discarded; the window is unchanged")
    child.expect("you>")
    child.sendline("/compress 4")
    child.expect(r"\[y/n\]")
    child.sendline("y")
    child.expect(r"4 turns \(#1-#4, ~[\d,]+ tokens\) moved to the archive")
    child.expect("you>")
    child.sendline("/show")
    child.expect(r"summary of 4 turns \(#1-#4\)")
    child.expect("you>")
    child.sendline("/compress undo")
    child.expect(r"4 turns \(#1-#4\) back in the window")
    child.expect("you>")
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_repl_ctrl_c_while_the_summary_is_written_cancels_it_and_keeps_the_repl(
        fake_cli_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time
    env = {**fake_cli_env, "TERM": "xterm", "NO_COLOR": "1",
           **fake_cli(tmp_path / "fake", [[{"sleep": 60}, {"text": SUMMARY}]]).env}
    monkeypatch.setenv("MNEMARA_HOME", env["MNEMARA_HOME"])
    instance = Instance.named("c")
    instance.create()
    fill(instance)
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "c"], env=env,
                          encoding="utf-8", timeout=30, dimensions=(40, 120))
    child.expect("you>")
    child.sendline("/compress 4")
    child.expect(r"the model is writing a summary.*\(Ctrl\+C cancels it\)")
    deadline = time.monotonic() + 30
    while not summary_asked(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.sendintr()
    child.expect("summary cancelled; nothing changed")
    child.expect("you>")  # the REPL is still there
    child.sendline("/quit")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    from mnemara.store import TurnStore
    with TurnStore(instance.turns_path) as store:
        assert store.archived_count() == 0 and len(store.window()) == len(ROWS)


def test_repl_off_a_terminal_takes_the_next_line_as_the_answer(fake_cli_env: dict[str, str],
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    env = {**fake_cli_env, **fake_cli(tmp_path / "fake", [[{"text": SUMMARY}], [{"text": SUMMARY}]]).env}
    monkeypatch.setenv("MNEMARA_HOME", env["MNEMARA_HOME"])
    instance = Instance.named("p")
    instance.create()
    fill(instance)
    proc = subprocess.run([sys.executable, "-m", "mnemara", "run", "-i", "p"],
                          input="/compress 2\nhello\n/compress 2\ny\n", env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # "hello" is not a yes: discarded, and not sent as a message either.
    assert "summary discarded; the window is unchanged" in proc.stdout
    assert "2 turns (#1-#2, ~" in proc.stdout and "moved to the archive" in proc.stdout
    from mnemara.store import TurnStore
    with TurnStore(instance.turns_path) as store:
        assert store.archived_count() == 2 and not any(t.text == "hello" for t in store.window())


async def test_tui_dialog_of_a_long_summary_fits_80x24(tui) -> None:
    long = "\n".join(f"- point {i}: something was decided about item {i}" for i in range(60))
    app = tui([[{"text": long}]])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/compress 4")
        await wait_for(pilot, lambda: dialog_up(app))
        await pilot.pause(0.2)
        # the summary scrolls inside the dialog; the answer buttons and the help stay on screen
        for part in ("#yesno-yes", "#yesno-no", "#yesno-help"):
            region = app.screen.query_one(part).region
            assert region.bottom <= 24 and region.right <= 80, (part, region)
        assert app.screen.query_one("#yesno-body").max_scroll_y > 0


def summary_asked(tmp_path: Path) -> bool:
    """The fake CLI has received the summary request (it is now 'writing')."""
    from tests.fakes.fake_cli import read_log
    log = tmp_path / "fake" / "fake_cli_log.jsonl"
    return log.exists() and any(e.get("stdin", {}).get("type") == "user" for e in read_log(log))


@pytest.mark.parametrize("how", ["ctrl+c", "/stop"])
async def test_tui_stays_responsive_while_the_summary_is_written_and_cancel_changes_nothing(
        tui, tmp_path: Path, how: str) -> None:
    from mnemara.ui.tui.compress_screen import CompressScreen
    from mnemara.ui.tui.widgets import PromptInput
    app = tui([[{"sleep": 60}, {"text": SUMMARY}]])  # a model that takes its time
    async with app.run_test(size=(80, 24)) as pilot:
        await drawn(pilot)
        before = app.engine.store.sendable_renderings()
        await send(pilot, "/compress 4")
        await wait_for(pilot, lambda: summary_asked(tmp_path))
        assert "Ctrl+C or /stop cancels it" in chat_text(app)
        # keys still reach the input box while the model writes
        prompt = app.query_one(PromptInput)
        await pilot.press(*"draft")
        await wait_for(pilot, lambda: prompt.text == "draft")
        if how == "ctrl+c":
            await pilot.press("ctrl+c")
        else:
            prompt.load_text("/stop")
            await pilot.press("enter")
        await wait_for(pilot, lambda: "summary cancelled; nothing changed" in chat_text(app))
        await wait_for(pilot, lambda: not app.turn_running)
        assert not isinstance(app.screen, CompressScreen) and app.is_running
        assert app.engine.store.sendable_renderings() == before
        assert app.engine.store.archived_count() == 0
        assert chat_text(app).count("summary cancelled") == 1
        if how == "/stop":  # it says what it stops: a summary, not a turn with a partial reply
            assert "stopping the summary" in chat_text(app)
            assert "partial reply" not in chat_text(app)
        if how == "ctrl+c":
            assert prompt.text == "draft"  # what was typed meanwhile is still there
