"""What every end-to-end test starts from: a fake Messages API on 127.0.0.1, and an isolated
home in which the real bundled CLI and mnemara run against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from mnemara.engine.events import TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.instance import Instance
from tests.fakes.drive import run_turn
from tests.fakes.fake_api import FakeMessagesAPI, real_cli_env


@pytest.fixture
def api() -> Iterator[FakeMessagesAPI]:
    with FakeMessagesAPI() as server:
        yield server


@dataclass
class CliHome:
    env: dict[str, str]   # for TurnEngine(env=...): the CLI talks to the fake API, offline
    home: Path            # $HOME of the CLI and of mnemara's $HOME fence
    work: Path            # an empty working directory inside it

    def instance(self, name: str, **config: Any) -> Instance:
        """A new instance whose turns run in `work`, with `config` over the defaults."""
        inst = Instance.named(name)
        inst.create()
        inst.save_config(inst.load_config().replace(cwd=str(self.work), **config))
        return inst


@pytest.fixture
def cli_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: FakeMessagesAPI) -> CliHome:
    env = real_cli_env(tmp_path, api)
    home = Path(env["HOME"])
    work = home / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))  # the policy's $HOME is the CLI's $HOME
    monkeypatch.setenv("MNEMARA_HOME", str(home / ".mnemara"))
    monkeypatch.delenv("MNEMARA_CLI_PATH", raising=False)
    return CliHome(env, home, work)


@pytest.fixture
def engine(cli_home: CliHome) -> Iterator[TurnEngine]:
    """A chat engine on a new instance: recall off, the hash embedder (no model to load)."""
    inst = cli_home.instance("e2e", recall="off", rag_embedder="hash")
    eng = TurnEngine(inst, env=cli_home.env)
    yield eng
    eng.close()


def window_blocks(body: dict[str, Any]) -> list[str]:
    """The window's blocks in a request (the CLI's own reminders left out)."""
    return [b["text"] for b in body["messages"][0]["content"]
            if b.get("type") == "text" and b["text"].startswith("<turn ")]


async def turn(eng: TurnEngine, api: FakeMessagesAPI, text: str, reply: str) -> None:
    """One complete turn: the fake API answers `reply`."""
    api.enqueue([{"type": "text", "text": reply}])
    done = (await run_turn(eng, text))[-1]
    assert isinstance(done, TurnFinished) and done.status == "complete", done.error
