"""Snapshots of the memory browser at 80x24 (pytest-textual-snapshot): the notes tab, the archive
tab, an archived turn opened (with its pin key in the footer) and a wiki page in the editor.

Deterministic on purpose: notes, the page's mtime, the slot and the turns carry fixed times, and
no search runs (scores would follow the clock's recency). Regenerate after an intended change
with `pytest tests/ui/test_memory_browser_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

from typing import Any

from tests.ui.test_memory_browser import fill, go_to, item_screen, open_browser
from tests.ui.test_tui import wait_for

SIZE = (80, 24)


def make(tui_over: Any) -> Any:
    return tui_over(lambda inst: fill(inst, fixed_times=True), [])


def test_memory_browser_notes(snap_compare, tui_over) -> None:
    async def run(pilot) -> None:
        await open_browser(pilot)

    assert snap_compare(make(tui_over), terminal_size=SIZE, run_before=run)


def test_memory_browser_archive(snap_compare, tui_over) -> None:
    async def run(pilot) -> None:
        await open_browser(pilot)
        await go_to(pilot, "archive")

    assert snap_compare(make(tui_over), terminal_size=SIZE, run_before=run)


def test_memory_browser_archived_turn_opened(snap_compare, tui_over) -> None:
    async def run(pilot) -> None:
        await open_browser(pilot)
        await go_to(pilot, "archive")
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: item_screen(pilot.app) is not None)
        await pilot.pause(0.1)

    assert snap_compare(make(tui_over), terminal_size=SIZE, run_before=run)


def test_memory_browser_wiki_editor(snap_compare, tui_over) -> None:
    async def run(pilot) -> None:
        from mnemara.ui.tui.memory_screen import MemoryEditorScreen
        await open_browser(pilot)
        await go_to(pilot, "wiki")
        await pilot.press("enter")
        await wait_for(pilot, lambda: item_screen(pilot.app) is not None)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, MemoryEditorScreen))
        pilot.app.screen.query_one("#editor-text").cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(make(tui_over), terminal_size=SIZE, run_before=run)
