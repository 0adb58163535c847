"""Snapshot of the /compress dialog at 80x24: the summary the model wrote, which turns it covers,
the quotation check (one verbatim, one not), and Keep / Discard in reach, legible over the chat.
Regenerate after an intended change with `--snapshot-update` and look at the SVG."""

from __future__ import annotations

from typing import Any

from tests.ui.test_compress_ui import dialog_up, fill
from tests.ui.test_tui import drawn, send, wait_for

SUMMARY = ('The user picked Postgres: "use Postgres, not MySQL" (#1).\n\n'
           '- Staging runs on zanzibar-7 (#3).\n'
           '- The user wants "a blue-green deploy" before the migration (#3).\n'
           '- Open: the cache layer.')


def test_compress_dialog(snap_compare, tui_over: Any) -> None:
    app = tui_over(fill, [[{"text": SUMMARY}]])

    async def open_dialog(pilot) -> None:
        await drawn(pilot)
        pilot.app.query_one("#prompt").cursor_blink = False
        await send(pilot, "/compress 4")
        await wait_for(pilot, lambda: dialog_up(pilot.app))
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_dialog)
