"""The chat panel over a stored conversation, driven by the fake CLI: one factory for the TUI
tests that need an instance holding turns before the app starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from mnemara.instance import Instance
from tests.fakes.fake_cli import fake_cli


@pytest.fixture
def tui_over(tmp_path: Path, home: Path) -> Iterator[Callable[..., Any]]:
    """tui_over(fill, replies) -> MnemaraApp over a new instance `t`, `fill(inst)` run on it
    first, its CLI the fake one answering `replies`. Engines are closed afterwards."""
    from mnemara.engine.turn import TurnEngine
    engines: list[TurnEngine] = []

    def make(fill: Callable[[Instance], None], replies: list[list[dict[str, Any]]]) -> Any:
        from mnemara.ui.tui.app import MnemaraApp
        from mnemara.ui.tui.history import InputHistory
        inst = Instance.named("t")
        inst.create()
        fill(inst)
        fake = fake_cli(tmp_path / "fake", replies)
        engine = TurnEngine(inst, cli_path=fake.cli_path, env=fake.env)
        engines.append(engine)
        return MnemaraApp(engine, history=InputHistory([], tmp_path / "history"), owns_process=False)

    yield make
    for engine in engines:
        engine.close()
