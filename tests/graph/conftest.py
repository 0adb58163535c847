"""A tool context on a real instance (SQLite turn store, the real ladybug graph in graph/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnemara.config import Config
from mnemara.engine.events import SessionStats
from mnemara.engine.tools import ToolContext
from mnemara.instance import Instance
from mnemara.store.turns import TurnStore


def make_ctx(tmp_path: Path, **config) -> ToolContext:
    inst = Instance("graphy", tmp_path / "inst")
    cfg = inst.create(Config.defaults().replace(**{"rag_embedder": "hash", **config}))
    return ToolContext(inst, cfg, TurnStore(inst.turns_path), SessionStats())


@pytest.fixture
def ctx(tmp_path: Path):
    context = make_ctx(tmp_path)
    yield context
    context.store.close()
    if context.memory is not None:
        context.memory.close()
