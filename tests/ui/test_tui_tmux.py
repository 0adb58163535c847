"""Smoke test: the real `mnemara run` in a real terminal (tmux), driven with keys, read from the pane.

Skipped only when the `tmux` binary is missing (`apt-get install -y tmux`).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pytest

from tests.fakes.fake_cli import FAKE_CLI_PATH

# On a developer machine without tmux this is skipped; in CI (.ci/run installs tmux) it must run.
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None and not os.environ.get("CI"),
                                reason="needs the tmux binary (apt-get install tmux)")

REPO = Path(__file__).resolve().parents[2]
REPLY = "Hello from the fake model, rendered in the pane."


class Tmux:
    """One private tmux server (its own socket) holding one session."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    def __call__(self, *args: str) -> str:
        done = subprocess.run(["tmux", "-S", str(self.socket), *args], capture_output=True,
                              text=True, timeout=10)
        return done.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-J", "-t", "smoke")

    def wait_for(self, what: Callable[[str], bool], timeout: float, label: str) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if what(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {label}; the pane shows:\n{screen}")
            time.sleep(0.2)


def test_mnemara_run_in_tmux_chats_and_quits(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "script.json"
    script.write_text(json.dumps({"turns": [[{"text": REPLY, "chunks": 4, "delay": 0.05},
                                             {"usage": {"input_tokens": 900, "output_tokens": 40},
                                              "cost": 0.004}]]}))
    exit_file = tmp_path / "exit-code"
    env = {"HOME": home, "MNEMARA_HOME": home / ".mnemara", "MNEMARA_CLI_PATH": FAKE_CLI_PATH,
           "MNEMARA_FAKE_CLI_SCRIPT": script, "MNEMARA_FAKE_CLI_STATE": tmp_path / "state",
           "MNEMARA_FAKE_CLI_LOG": tmp_path / "fake.log", "TERM": "xterm-256color"}
    launcher = tmp_path / "launch.sh"
    launcher.write_text(
        "#!/bin/sh\n"
        + "".join(f"export {k}={shlex.quote(str(v))}\n" for k, v in env.items())
        + "unset MNEMARA_INSTANCE MNEMARA_NO_TUI\n"
        + f"cd {shlex.quote(str(REPO))}\n"
        + f"{shlex.quote(sys.executable)} -m mnemara run --instance smoke\n"
        + f"echo $? > {shlex.quote(str(exit_file))}\n"
        + "sleep 30\n")
    launcher.chmod(0o755)
    tmux = Tmux(tmp_path / "tmux.sock")
    try:
        tmux("new-session", "-d", "-s", "smoke", "-x", "100", "-y", "30", str(launcher))
        tmux.wait_for(lambda s: "turns 0/20" in s, 20, "the status bar")
        assert "mnemara" in tmux.screen() and "smoke" in tmux.screen()
        tmux("send-keys", "-t", "smoke", "-l", "hello from tmux")
        tmux("send-keys", "-t", "smoke", "Enter")
        screen = tmux.wait_for(lambda s: REPLY in s and "turns 2/20" in s, 20, "the reply")
        assert "hello from tmux" in screen
        assert "last in 900 out 40" in screen
        tmux("send-keys", "-t", "smoke", "C-c")
        deadline = time.monotonic() + 15
        while not exit_file.exists():
            assert time.monotonic() < deadline, f"Ctrl+C did not quit; the pane shows:\n{tmux.screen()}"
            time.sleep(0.2)
        assert exit_file.read_text().strip() == "0"
    finally:
        tmux("kill-server")
