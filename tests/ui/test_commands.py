"""The shared slash commands, through `dispatch` as both front ends call them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mnemara.debuglog import DebugLog
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from mnemara.ui.commands import COMMANDS, MODELS, dispatch


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MNEMARA_HOME", str(tmp_path / ".mnemara"))
    inst = Instance.named("c")
    inst.create()
    eng = TurnEngine(inst)
    for i in range(6):
        eng.store.add_turn("user" if i % 2 == 0 else "assistant",
                           [{"type": "text", "text": f"message number {i} about kiwis"}],
                           created_at=f"2026-01-0{i + 1}T00:00:00Z")
    yield eng
    eng.close()


async def test_help_lists_every_command(engine: TurnEngine) -> None:
    out = await dispatch(engine, "/help")
    for name in COMMANDS:
        assert f"/{name}" in out.text


async def test_unknown_command_suggests(engine: TurnEngine) -> None:
    out = await dispatch(engine, "/sho")
    assert out.kind == "error" and "did you mean /show?" in out.text


async def test_show_and_context(engine: TurnEngine) -> None:
    out = await dispatch(engine, "/show 2")
    assert "#5" in out.text and "#6" in out.text and "#4" not in out.text
    assert "6/20 turns" in out.text
    ctx = await dispatch(engine, "/context")
    assert ctx.view == "context" and "message number 0" in ctx.text


async def test_swap_models_and_tokens_persist(engine: TurnEngine) -> None:
    assert "(current)" in (await dispatch(engine, "/models")).text
    await dispatch(engine, "/swap 3")
    assert engine.config.model == MODELS[2] == engine.instance.load_config().model
    await dispatch(engine, "/swap claude-custom-1")
    assert engine.instance.load_config().model == "claude-custom-1"
    assert (await dispatch(engine, "/swap 99")).kind == "error"
    await dispatch(engine, "/tokens 80k")
    assert engine.instance.load_config().max_window_tokens == 80_000
    bad = await dispatch(engine, "/tokens 5")
    assert bad.kind == "error" and "max_window_tokens" in bad.text
    assert engine.instance.load_config().max_window_tokens == 80_000


async def test_role_switch(engine: TurnEngine, tmp_path: Path) -> None:
    role = tmp_path / "r.md"
    out = await dispatch(engine, f"/role {role}")
    assert out.kind == "warning" and "does not exist yet" in out.text
    role.write_text("x")
    out = await dispatch(engine, f"/role {role}")
    assert out.kind == "info" and engine.instance.load_config().role_doc_path == str(role)


async def test_note_pin_unpin_evict_clear(engine: TurnEngine) -> None:
    await dispatch(engine, "/note kiwis are fruit")
    notes = "".join(p.read_text() for p in engine.instance.memory_dir.glob("*.md"))
    assert "kiwis are fruit" in notes
    await dispatch(engine, "/pin 2 3")
    assert [t.id for t in engine.store.window() if t.pinned] == [2, 3]
    await dispatch(engine, "/unpin 3")
    assert [t.id for t in engine.store.window() if t.pinned] == [2]
    assert (await dispatch(engine, "/pin twelve")).kind == "error"
    await dispatch(engine, "/evict 1")
    assert engine.store.archived_count() == 1
    out = await dispatch(engine, "/evict older 1h")  # every remaining row is older than that
    assert engine.store.count() == 1 and "pinned" in out.text  # the pinned row is kept
    out = await dispatch(engine, "/clear")
    assert engine.store.count() == 0 and "moved 1 turn" in out.text


async def test_search_and_proposals(engine: TurnEngine) -> None:
    await dispatch(engine, "/evict 1")
    out = await dispatch(engine, "/search number 0 kiwis")
    assert "archive" in out.text and "#1" in out.text
    assert "no pending proposals" in (await dispatch(engine, "/proposals")).text
    engine.instance.legacy_proposals_dir.mkdir()  # a role_proposals/*.md from before the store
    (engine.instance.legacy_proposals_dir / "20260101T000000Z_be-brief.md").write_text("Be brief.")
    assert "role  Be brief." in (await dispatch(engine, "/proposals")).text


async def test_retry_and_quit(engine: TurnEngine) -> None:
    assert (await dispatch(engine, "/retry")).kind == "warning"
    assert (await dispatch(engine, "/quit")).quit and (await dispatch(engine, "/exit")).quit


def test_debug_log_is_json_lines_and_rotates(tmp_path: Path) -> None:
    log = DebugLog(tmp_path / "debug.log", max_bytes=2000, keep=2)
    for i in range(100):
        log.write("tool_call", n=i, padding="x" * 50)
    lines = (tmp_path / "debug.log").read_text().splitlines()
    assert all(json.loads(line)["event"] == "tool_call" for line in lines)
    assert (tmp_path / "debug.log.1").exists() and (tmp_path / "debug.log.2").exists()
    assert not (tmp_path / "debug.log.3").exists()
    assert (tmp_path / "debug.log").stat().st_size <= 2000
    assert oct((tmp_path / "debug.log").stat().st_mode & 0o777) == "0o600"


async def test_commands_that_pull_the_window_wait_for_a_running_turn(engine: TurnEngine) -> None:
    engine.busy = True
    out = await dispatch(engine, "/clear")
    assert out.kind == "warning" and "waits until the turn finishes" in out.text
    assert engine.store.count() == 6
    assert (await dispatch(engine, "/retry")).kind == "warning"
    assert (await dispatch(engine, "/pin 1")).kind == "info"  # harmless ones still work
    engine.busy = False
