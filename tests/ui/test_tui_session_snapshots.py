"""Snapshot of the role doc editor (`/role_doc`) at 80x24: the path in the title, the text, Save
and Cancel in reach. Regenerate after an intended change with `--snapshot-update`."""

from __future__ import annotations

from pathlib import Path

from tests.ui.test_tui_snapshots import app_factory, settle  # noqa: F401


def test_role_doc_editor(snap_compare, app_factory, tmp_path: Path) -> None:  # noqa: F811
    app = app_factory()
    doc = tmp_path / "home" / "reviewer.md"
    doc.write_text("# Reviewer\n\nYou review pull requests.\n\n- Be specific.\n- Quote the line.\n")
    app.engine.set_config(app.engine.config.replace(role_doc_path=str(doc)))

    async def open_editor(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"/role_doc", "enter")
        await pilot.pause(0.3)
        pilot.app.screen.query_one("#role-text").cursor_blink = False
        await pilot.pause(0.1)

    assert snap_compare(app, terminal_size=(80, 24), run_before=open_editor)
