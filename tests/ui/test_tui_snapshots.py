"""Snapshot tests of the chat panel (pytest-textual-snapshot): the main screen after a scripted
turn and the `/context` window viewer, each at 80x24 and at a wider size.

Deterministic on purpose: the window's earlier turns are written to the store with fixed
timestamps, the scripted turn has fixed usage and cost, the panel shows no clock, and the cursor
does not blink. Regenerate after an intended change with
`pytest tests/ui/test_tui_snapshots.py --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.store import TurnStore
from tests.fakes.fake_cli import fake_cli

SIZES = {"80x24": (80, 24), "120x40": (120, 40)}

SCRIPTED_TURN = [
    {"text": "Here is what the window holds:\n\n- **2 questions** about the budget\n- one tool run\n",
     "chunks": 4},
    {"tool": "mcp__mnemara__list_window", "input": {"limit": 3}, "id": "toolu_snap"},
    {"text": "Use `/pin` to keep the budget notes.", "chunks": 2},
    {"usage": {"input_tokens": 1500, "output_tokens": 120, "cache_read_input_tokens": 4500,
               "cache_creation_input_tokens": 0}, "cost": 0.0231},
]


def fill_window(store: TurnStore) -> None:
    """A small window with fixed timestamps: text, a tool call, a pin, a failed message."""
    store.add_turn("user", [{"type": "text", "text": "How big may the window get?"}],
                   created_at="2025-03-01T09:00:00Z")
    store.add_turn("assistant", [
        {"type": "text", "text": "The budget is **100,000** estimated tokens. Let me check the config."},
        {"type": "tool_use", "id": "toolu_a", "name": "Bash", "input": {"command": "cat config.json"}},
        {"type": "tool_result", "tool_use_id": "toolu_a", "content": '{\n  "max_window_tokens": 100000\n}',
         "is_error": False},
        {"type": "text", "text": "Confirmed: `max_window_tokens` is 100000."},
    ], created_at="2025-03-01T09:00:07Z", model="claude-sonnet-4-6")
    store.add_turn("user", [{"type": "text", "text": "Remember that we keep 20 turns."}],
                   created_at="2025-03-01T09:02:00Z")
    store.add_turn("assistant", [{"type": "text", "text": "Noted; I pinned it."}],
                   created_at="2025-03-01T09:02:04Z", model="claude-sonnet-4-6")
    store.set_pinned([3])
    store.add_turn("user", [{"type": "text", "text": "And the archive?"}],
                   created_at="2025-03-01T09:05:00Z", status="failed")


@pytest.fixture
def app_factory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MNEMARA_HOME", str(home / ".mnemara"))
    engines: list[TurnEngine] = []

    def make(turns: list[list[dict[str, Any]]] | None = None) -> Any:
        from mnemara.ui.tui.app import MnemaraApp
        from mnemara.ui.tui.history import InputHistory
        inst = Instance.named("snap")
        inst.create(inst_config())
        fake = fake_cli(tmp_path / "fake", turns or [])
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        fill_window(engine.store)
        return MnemaraApp(engine, history=InputHistory(), owns_process=False)

    yield make
    for engine in engines:
        engine.close()


def inst_config() -> Any:
    from mnemara.config import Config
    return Config.defaults().replace(model="claude-sonnet-4-6", display_name="docs helper")


async def settle(pilot) -> None:
    await pilot.app.window_drawn.wait()
    pilot.app.query_one("#prompt").cursor_blink = False
    await pilot.pause(0.1)


async def run_scripted_turn(pilot) -> None:
    app = pilot.app
    await settle(pilot)
    prompt = app.query_one("#prompt")
    prompt.load_text("What does the window hold?")
    await pilot.press("enter")
    deadline = time.monotonic() + 20
    while app.turn_running or not app.engine.stats.turns_run:
        assert time.monotonic() < deadline, "the scripted turn did not finish"
        await pilot.pause(0.05)
    await settle(pilot)


@pytest.mark.parametrize("size", SIZES)
def test_main_screen_after_a_turn(snap_compare, app_factory, size: str) -> None:
    app = app_factory([SCRIPTED_TURN])
    assert snap_compare(app, terminal_size=SIZES[size], run_before=run_scripted_turn)


@pytest.mark.parametrize("size", SIZES)
def test_context_viewer(snap_compare, app_factory, size: str) -> None:
    app = app_factory()

    async def open_viewer(pilot) -> None:
        await settle(pilot)
        await pilot.press(*"/context", "enter")
        await pilot.pause(0.2)
        await pilot.press("down", "down", "enter")  # show turn #3 below the table

    assert snap_compare(app, terminal_size=SIZES[size], run_before=open_viewer)
