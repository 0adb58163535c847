"""What every end-to-end test starts from: a fake Messages API on 127.0.0.1, and an isolated
home in which the real bundled CLI and mnemara run against it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from mnemara.instance import Instance
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
