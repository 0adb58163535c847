"""Benchmark: `mnemara run` from process start to the first painted screen.

Starts the real command (`python -m mnemara run --instance bench`) on a pseudo-terminal of
100x30, the way a user's terminal would, and times from just before the fork until the status
bar's text shows up in what the program wrote to the terminal: the screen is painted. Then it
sends Ctrl+C and waits for a clean exit. The instance's window holds --window turns (the
default config keeps 20), so the chat log has something to draw.

Target: median < 0.4 s (the original mnemara: about 0.8 s).

Run: python benchmarks/bench_tui_start.py [--runs N] [--window N]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import struct
import sys
import tempfile
import termios
import time
from pathlib import Path
from typing import Any

from _common import build_store

TARGET_S = 0.40
PAINTED = b"turns "  # the status bar's first word: it is on screen once the first frame is
REPO = Path(__file__).resolve().parents[1]


def bench_env(tmp: Path) -> dict[str, str]:
    """A private HOME / MNEMARA_HOME under `tmp`, a real terminal type, nothing else inherited
    that could change what mnemara does."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MNEMARA_")}
    env.update(HOME=str(tmp / "home"), MNEMARA_HOME=str(tmp / "home" / ".mnemara"),
               TERM="xterm-256color", COLUMNS="100", LINES="30")
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    return env


def make_instance(env: dict[str, str], name: str = "bench", **config: Any) -> Any:
    from mnemara.config import Config
    from mnemara.instance import Instance
    inst = Instance(name, Path(env["MNEMARA_HOME"]) / name)
    inst.create(Config.defaults().replace(**config))
    return inst


class PtyApp:
    """`python -m mnemara run --instance NAME` on its own pseudo-terminal (100x30)."""

    def __init__(self, env: dict[str, str], name: str = "bench", size: tuple[int, int] = (100, 30)) -> None:
        argv = [sys.executable, "-m", "mnemara", "run", "--instance", name]
        self.started = time.perf_counter()
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become mnemara
            os.chdir(REPO)
            os.execve(sys.executable, argv, env)
        cols, rows = size
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.output = b""

    def read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            return False
        self.output += chunk
        return bool(chunk)

    def wait_for(self, marker: bytes, timeout: float, since: int = 0) -> float:
        """Seconds from process start until `marker` appears in the output (after `since`)."""
        deadline = time.perf_counter() + timeout
        while marker not in self.output[since:]:
            if time.perf_counter() > deadline:
                self.kill()
                raise SystemExit(f"timed out waiting for {marker!r}; output so far:\n"
                                 + self.output[-2000:].decode(errors="replace"))
            self.read(0.05)
        return time.perf_counter() - self.started

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def quit(self, timeout: float = 10) -> int:
        """Ctrl+C (idle: quits), then wait for the exit status."""
        self.send(b"\x03")
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.read(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
        self.kill()
        raise SystemExit("mnemara did not quit on Ctrl+C")

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--window", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = bench_env(Path(tmp))
        inst = make_instance(env, max_window_turns=max(20, args.window))
        if args.window:
            build_store(inst.turns_path, archived=0, window=args.window)
        times = []
        for run in range(args.runs + 1):
            app = PtyApp(env)
            seconds = app.wait_for(PAINTED, timeout=10)
            app.quit()
            if run:  # the first run warms the OS file cache; it is not counted
                times.append(seconds)
        times.sort()
        med = times[len(times) // 2]
        ok = med < TARGET_S
        print(f"process start to first paint ({args.window}-turn window, {args.runs} runs): "
              f"median {med * 1000:.0f} ms (min {times[0] * 1000:.0f}, max {times[-1] * 1000:.0f})  "
              f"target < {TARGET_S * 1000:.0f} ms  {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
