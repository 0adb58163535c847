"""The memory browser (`/memory`, Ctrl+O) as a user drives it: Pilot key presses over an instance
holding notes, a wiki page, a slot, archived turns and a recall; the real SQLite store, a real
LanceDB index with the hash embedder, and the scripted fake CLI behind (so the request after a
turn is pinned back shows what the model then sees). Plus `/memory` in its text form, as the
REPL prints it, and the unarchive operation's refusals."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from mnemara.memory.notes import parse_notes, write_note_block
from mnemara.memory.slots import SlotBook
from mnemara.ops.memory import note, wiki_write
from mnemara.ops.unarchive import UnarchiveRefused, unarchive
from mnemara.store import TurnStore
from mnemara.store.blocks import recall_block, text_block
from mnemara.ui.commands import dispatch
from tests.fakes.fake_cli import read_log
from tests.ui.test_tui import drawn, send, wait_for

HOST_FACT = "our staging host is stg-7 and it sits in rack 4"
PAGE = "# Staging\n\nDeploys go to stg-7 every Tuesday.\n"


def fill(inst: Instance, *, fixed_times: bool = False) -> None:
    """One of everything the browser lists: a decision note, a wiki page, a slot, two archived
    turns (the fact about the staging host), two window turns and a recall that found the fact."""
    inst.save_config(inst.load_config().replace(rag_embedder="hash", recall="off"))
    if fixed_times:  # the snapshot tests: nothing on screen depends on the clock
        at = datetime(2026, 3, 3, 9, 30, tzinfo=timezone.utc)
        write_note_block(inst.memory_dir, "Use Postgres, not MySQL, for the staging database.",
                         "decision", at=at)
        write_note_block(inst.memory_dir, "The user prefers short answers.", "insight", at=at)
    else:
        note(inst, "Use Postgres, not MySQL, for the staging database.", "decision")
    wiki_write(inst, "deploy/staging", PAGE)
    page = inst.wiki_dir / "deploy" / "staging.md"
    os.utime(page, (1772530200, 1772530200))  # 2026-03-03 09:30 UTC
    with TurnStore(inst.turns_path) as store:
        SlotBook(store, inst.load_config()).set("current_task", "ship the parser", "user")
        store.conn.execute("UPDATE slot_versions SET created_at = '2026-03-03T09:30:00Z'")
        store.add_turn("user", [text_block(HOST_FACT)], created_at="2026-03-01T10:00:00Z")
        store.add_turn("assistant", [text_block("noted: staging host stg-7, rack 4")],
                       created_at="2026-03-01T10:00:05Z")
        store.evict([1, 2], "budget")
        store.add_turn("user", [text_block("which rack is stg-7 in?"), recall_block([{
            "id": "turn:1", "kind": "turn", "time": "2026-03-01T10:00:00Z", "score": 0.71,
            "signals": {"text": 0.8, "vector": 0.55}, "text": HOST_FACT, "role": "user"}])],
            created_at="2026-03-02T12:00:00Z")
        store.add_turn("assistant", [text_block("Rack 4.")], created_at="2026-03-02T12:00:03Z")


def memory_screen(app: Any) -> Any:
    from mnemara.ui.tui.memory_screen import MemoryScreen
    return app.screen if isinstance(app.screen, MemoryScreen) else None


def item_screen(app: Any) -> Any:
    from mnemara.ui.tui.memory_screen import MemoryItemScreen
    return app.screen if isinstance(app.screen, MemoryItemScreen) else None


def rows(screen: Any, tab: str) -> list[str]:
    """What the tab's table shows, one string per row."""
    from textual.widgets import DataTable
    table = screen.query_one(f"#table-{tab}", DataTable)
    return [" | ".join(str(c) for c in table.get_row_at(n)) for n in range(table.row_count)]


def shown(widget: Any) -> str:
    return str(widget.render())


async def open_browser(pilot: Any) -> Any:
    await drawn(pilot)
    await pilot.press("ctrl+o")
    await wait_for(pilot, lambda: memory_screen(pilot.app) is not None)
    await pilot.pause()
    return pilot.app.screen


async def go_to(pilot: Any, tab: str) -> None:
    screen = pilot.app.screen
    while screen.active != tab:
        await pilot.press("tab")
    await pilot.pause()


async def search(pilot: Any, query: str) -> list:
    screen = pilot.app.screen
    await pilot.press("slash", *query, "enter")
    await wait_for(pilot, lambda: screen.found is not None and screen.found.query == query, 60)
    await pilot.pause()
    return screen.entries["search"]


# --- opening and closing ------------------------------------------------------------------------

async def test_ctrl_o_and_slash_memory_open_the_browser_and_escape_closes_it(tui_over) -> None:
    app = tui_over(fill, [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        assert screen.active == "notes"
        assert "Use Postgres, not MySQL" in rows(screen, "notes")[0]
        await pilot.press("escape")
        await wait_for(pilot, lambda: memory_screen(app) is None)
        await send(pilot, "/memory")
        await wait_for(pilot, lambda: memory_screen(app) is not None)
        await pilot.press("escape")
        await wait_for(pilot, lambda: memory_screen(app) is None)


async def test_tabs_list_notes_wiki_slots_archive_and_recalls(tui_over) -> None:
    app = tui_over(lambda inst: fill(inst, fixed_times=True), [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        from textual.widgets import TabbedContent
        labels = [str(screen.query_one(TabbedContent).get_tab(f"tab-{t}").label)
                  for t in ("notes", "wiki", "slots", "archive", "recalls")]
        assert labels == ["Notes 2", "Wiki 1", "Slots 1", "Archive 2", "Recalls 1"]
        notes = rows(screen, "notes")  # by day: the date on the day's first row only
        assert notes[0].startswith("2026-03-03 | 09:30 | ") and notes[1].startswith(" | 09:30 | ")
        await go_to(pilot, "wiki")
        assert rows(screen, "wiki") == ["deploy/staging | Staging | 03-03 09:30"]
        await go_to(pilot, "slots")
        assert rows(screen, "slots") == ["current_task | 15 | 03-03 09:30 | ship the parser"]
        await go_to(pilot, "archive")
        archive = rows(screen, "archive")
        assert archive[0].startswith("#2 | assistant | 03-01 10:00 | budget | noted")
        assert archive[1].startswith("#1 | you | 03-01 10:00 | budget | our staging host")
        await go_to(pilot, "recalls")
        assert rows(screen, "recalls") == ["#3 | 03-02 12:00 | 1 memory: turn #1"]
        await pilot.press("enter")  # what was recalled, with its score and signals
        await wait_for(pilot, lambda: item_screen(app) is not None)
        text = shown(app.screen.query_one("#item-text"))
        assert "score 0.71 · text 0.80 · vector 0.55" in text and HOST_FACT in text


async def test_a_note_with_terminal_controls_is_shown_inert(tui_over) -> None:
    def with_escape(inst: Instance) -> None:
        fill(inst)
        note(inst, "clear \x1b[2J the screen \x1b]0;pwned\x07")
    app = tui_over(with_escape, [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        assert "\\x1b[2J" in rows(screen, "notes")[0] and "\x1b" not in rows(screen, "notes")[0]
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(app) is not None)
        text = shown(app.screen.query_one("#item-text"))
        assert "\\x1b]0;pwned\\x07" in text and "\x1b" not in text


# --- search --------------------------------------------------------------------------------------

async def test_search_lists_hits_with_kind_source_time_score_and_signals(tui_over) -> None:
    app = tui_over(fill, [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        hits = await search(pilot, "host sits in rack")
        assert screen.active == "search"
        first = rows(screen, "search")[0]
        assert hits[0].id == "turn:1"
        assert first.startswith("turn #1 | 03-01 10:00 | 0.") and "txt" in first
        message = shown(screen.query_one("#memory-message"))
        assert "hits for 'host sits in rack' (hybrid: full text + vectors)" in message
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(app) is not None)
        meta = shown(app.screen.query_one("#item-meta"))
        assert "turn:1" in meta and "in the archive" in meta and "score 0." in meta and "text 0." in meta
        assert HOST_FACT in shown(app.screen.query_one("#item-text"))


async def test_slash_memory_query_opens_the_browser_on_its_hits(tui_over) -> None:
    app = tui_over(fill, [])
    async with app.run_test(size=(80, 24)) as pilot:
        await send(pilot, "/memory postgres")
        await wait_for(pilot, lambda: memory_screen(app) is not None, 60)
        await pilot.pause()
        screen = app.screen
        assert screen.active == "search" and screen.query_one("#memory-search").value == "postgres"
        assert rows(screen, "search")[0].startswith("note ")


# --- what can be done from an entry --------------------------------------------------------------

async def test_pin_an_archived_turn_back_and_the_next_request_carries_it(tui_over, tmp_path: Path) -> None:
    app = tui_over(fill, [[{"text": "ok"}]])
    before = TurnStore(app.engine.instance.turns_path, readonly=True)
    rendered = before.conn.execute("SELECT rendered FROM archive WHERE id = 1").fetchone()[0]
    before.close()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        await go_to(pilot, "archive")
        await pilot.press("down")  # turn #1, the user's fact (newest first)
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(app) is not None)
        await pilot.pause()
        assert "Pin into window" in [k.description for k in app.screen.query("FooterKey")]
        await pilot.press("p")
        await pilot.pause()
        message = shown(app.screen.query_one("#item-message"))
        assert "turn #1 is back in the window, pinned" in message
        window = {t.id: t for t in app.engine.store.window()}
        assert window[1].pinned and window[1].rendered == rendered
        await pilot.press("escape")
        await wait_for(pilot, lambda: memory_screen(app) is not None)
        assert rows(screen, "archive")[0].startswith("#2 ")  # #1 left the archive tab
        await pilot.press("escape")
        await wait_for(pilot, lambda: memory_screen(app) is None)
        await send(pilot, "hello")
        await wait_for(pilot, lambda: app.engine.stats.turns_run == 1, 30)
    sent = [e["stdin"] for e in read_log(tmp_path / "fake" / "fake_cli_log.jsonl")
            if e.get("stdin", {}).get("type") == "user"]
    blocks = [b["text"] for b in sent[-1]["message"]["content"]]
    assert blocks[0] == rendered  # first in the window again, byte for byte as it was sent before


async def test_supersede_a_note(tui_over) -> None:
    app = tui_over(fill, [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(app) is not None)
        item = app.screen
        await pilot.press("s")
        from mnemara.ui.tui.memory_screen import MemoryEditorScreen
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryEditorScreen))
        editor = app.screen
        area = editor.query_one("#editor-text")
        assert area.text == "Use Postgres, not MySQL, for the staging database."
        area.load_text("")
        await pilot.press(*"Use SQLite for staging.")
        editor.query_one("#editor-reason").focus()
        await pilot.press(*"plans changed", "enter")
        await wait_for(pilot, lambda: app.screen is item)
        assert "saved the correction as note:" in shown(item.query_one("#item-message"))
        assert "[superseded by note:" in shown(item.query_one("#item-text"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        notes = rows(screen, "notes")
        assert len(notes) == 2 and any("Use SQLite for staging." in r for r in notes)
        old = next(e for e in screen.entries["notes"] if "Postgres" in e.text)
        assert old.superseded
    written = [n for p in sorted(app.engine.instance.memory_dir.glob("*.md")) for n in parse_notes(p)]
    assert "(corrects note:" in written[-1].body and "plans changed" in written[-1].body


async def test_edit_a_wiki_page_and_search_finds_the_new_text(tui_over) -> None:
    app = tui_over(fill, [])
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await open_browser(pilot)
        await go_to(pilot, "wiki")
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(app) is not None)
        item = app.screen
        assert "Deploys go to stg-7" in shown(item.query_one("#item-text"))
        await pilot.press("e")
        from mnemara.ui.tui.memory_screen import MemoryEditorScreen
        await wait_for(pilot, lambda: isinstance(app.screen, MemoryEditorScreen))
        area = app.screen.query_one("#editor-text")
        area.move_cursor(area.document.end)
        await pilot.press(*"Rollbacks use the zanzibar runbook.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is item)
        assert "saved wiki page deploy/staging" in shown(item.query_one("#item-message"))
        assert "zanzibar runbook" in shown(item.query_one("#item-text"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen)
        hits = await search(pilot, "zanzibar runbook")
        assert hits and hits[0].id.startswith("wiki:deploy/staging#")
        assert "zanzibar runbook" in hits[0].text
    page = (app.engine.instance.wiki_dir / "deploy" / "staging.md").read_text()
    assert page.startswith(PAGE) and "zanzibar runbook" in page


# --- /memory in the REPL (text) --------------------------------------------------------------------

async def test_slash_memory_as_text_counts_each_tab_and_shows_the_newest(tui_over) -> None:
    engine = tui_over(lambda inst: fill(inst, fixed_times=True), []).engine
    out = await dispatch(engine, "/memory", width=80)
    lines = out.text.splitlines()
    assert out.kind == "info" and out.view == "memory"
    assert lines[0] == "2 notes · 1 wiki page · 1 slot · 2 archived turns · 1 turn with recalls"
    assert lines[1:4] == ["notes:", "  2026-03-03 09:30 · insight · The user prefers short answers.",
                          "  2026-03-03 09:30 · decision · Use Postgres, not MySQL, for the staging databa…"]
    assert "2026-03-01 10:00 · #1 you · archive (budget) · our staging host is stg-7" in out.text
    assert all(len(line) <= 80 for line in lines)


async def test_slash_memory_query_as_text_lists_hits_with_their_signals(tui_over) -> None:
    engine = tui_over(fill, []).engine
    out = await dispatch(engine, "/memory host sits in rack", width=80)
    assert out.kind == "info"
    first = out.text.splitlines()[1]
    assert first.startswith(" 1. turn #1 · 2026-03-01T10:00:00Z · score 0.") and "text 0." in first
    assert HOST_FACT in out.text.splitlines()[2]


def test_repl_prints_the_summary_and_the_hits(fake_cli_env: dict[str, str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    import pexpect

    from tests.ui.test_repl import ENV_EXTRA
    monkeypatch.setenv("MNEMARA_HOME", fake_cli_env["MNEMARA_HOME"])
    inst = Instance.named("r")
    inst.create()
    fill(inst, fixed_times=True)
    child = pexpect.spawn(sys.executable, ["-m", "mnemara", "run", "--no-tui", "-i", "r"],
                          env=fake_cli_env | ENV_EXTRA, encoding="utf-8", timeout=60,
                          dimensions=(40, 100))
    child.expect("you>")
    child.sendline("/memory")
    child.expect("2 notes · 1 wiki page · 1 slot · 2 archived turns · 1 turn with recalls")
    child.expect("#1 you · archive \\(budget\\) · our staging host is stg-7")
    child.expect("you>")
    child.sendline("/memory host sits in rack")
    child.expect("hits for 'host sits in rack' \\(hybrid: full text \\+ vectors\\)")
    child.expect(" 1\\. turn #1 · 2026-03-01T10:00:00Z · score 0\\.\\d\\d · text 0\\.")
    child.expect("you>")
    child.sendeof()
    child.expect(pexpect.EOF)


async def test_slash_memory_query_says_when_memory_is_off(tui_over) -> None:
    def off(inst: Instance) -> None:
        fill(inst)
        inst.save_config(inst.load_config().replace(rag_enabled=False))
    out = await dispatch(tui_over(off, []).engine, "/memory staging")
    assert out.kind == "error" and "memory is turned off" in out.text


# --- unarchive ----------------------------------------------------------------------------------

def test_unarchive_refuses_a_failed_turn_and_one_that_cannot_fit(make_instance) -> None:
    inst = make_instance("u", max_window_turns=4)
    config = inst.load_config()
    with TurnStore(inst.turns_path) as store:
        store.add_turn("user", [text_block("lost")], status="failed")
        for n in range(3):
            store.add_turn("user", [text_block(f"kept {n}")])
        store.evict([1, 2], "budget")
        with pytest.raises(UnarchiveRefused, match="failed: it is never sent"):
            unarchive(store, config, 1)
        with pytest.raises(UnarchiveRefused, match="no archived turn #99"):
            unarchive(store, config, 99)
        store.set_pinned([3, 4])  # two pinned + #2 + the next exchange: 5 turns, over 4
        with pytest.raises(UnarchiveRefused, match="does not fit beside the 2 pinned turns"):
            unarchive(store, config, 2)
        assert [t.id for t in store.window()] == [3, 4]
        store.set_pinned([4], False)
        assert "is back in the window, pinned" in unarchive(store, config, 2)
        assert [(t.id, t.pinned) for t in store.window()] == [(2, True), (3, True), (4, False)]
        assert store.archived_count() == 1


def test_recalls_list_the_newest_across_window_and_archive_and_say_50_plus(make_instance) -> None:
    from mnemara.ops import memory_browser as browser
    inst = make_instance("r")
    item = {"id": "note:2026-01-01.md:1", "kind": "note", "time": "2026-01-01T00:00:00Z",
            "score": 0.5, "signals": {"text": 0.5}, "text": "x"}
    with TurnStore(inst.turns_path) as store:
        for n in range(55):
            store.add_turn("user", [text_block(f"q{n}"), recall_block([item])])
        store.evict(list(range(1, 41)), "budget")
        listed = browser.recalls(store)
        assert [e.turn_id for e in listed] == list(range(55, 5, -1))
        assert listed[0].source == "turn #55 (window)" and listed[-1].source == "turn #6 (archive)"
        summary = browser.summary_text(inst, store, inst.load_config(), 100)
    assert summary.splitlines()[0].endswith("40 archived turns · 50+ turns with recalls")
