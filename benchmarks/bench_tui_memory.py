"""Benchmark: resident memory of `mnemara run` with a 500-turn window loaded.

Starts the real command on a pseudo-terminal (see bench_tui_start.py) over an instance whose
window holds 500 turns (a synthetic corpus from _common.py), waits until the screen is painted
and settled (the newest turns drawn, the SDK imported in the background as it is for the first
turn), and reads VmRSS / VmHWM from /proc/<pid>/status. Then it opens the window viewer
(`/context`: a table of all 500 rows) and reads them again. Last it asks memory a question
(`/recall ...`), which opens the memory index, loads the embedder and indexes the 500 turns, and
reads them a third time.

Targets: < 150 MB resident for the chat (the index is not opened while the whole history is in
the window), < 500 MB with the memory index and embedder loaded.

Run: python benchmarks/bench_tui_memory.py [--window N]
Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _common import build_store
from bench_tui_start import PAINTED, PtyApp, bench_env, make_instance

TARGET_MB = 150.0
MEMORY_TARGET_MB = 500.0  # Textual ~95 MB + LanceDB ~110 MB + the model ~190 MB (see README)
SETTLE_S = 2.0  # the older turns are drawn and the SDK is imported within this time


def memory_mb(pid: int) -> dict[str, float]:
    figures = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            figures[key] = int(value.split()[0]) / 1024
    return figures


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = bench_env(Path(tmp))
        inst = make_instance(env, max_window_turns=max(20, args.window), max_window_tokens=2_000_000)
        build_store(inst.turns_path, archived=0, window=args.window)
        app = PtyApp(env)
        app.wait_for(PAINTED, timeout=15)
        deadline = time.perf_counter() + SETTLE_S
        while time.perf_counter() < deadline:
            app.read(0.05)
        chat = memory_mb(app.pid)
        mark = len(app.output)
        app.send(b"/context\r")
        app.wait_for(f"{args.window}/{max(20, args.window)} turns".encode(), timeout=15, since=mark)
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            app.read(0.05)
        viewer = memory_mb(app.pid)
        app.send(b"\x1b")  # close the viewer
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            app.read(0.05)
        mark = len(app.output)
        app.send(b"/recall which turn mentions the deploy\r")
        app.wait_for(b"matched ", timeout=300, since=mark)  # a result line (the list may scroll)
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline:
            app.read(0.05)
        memory = memory_mb(app.pid)
        app.quit()
    worst = max(chat["VmRSS"], viewer["VmRSS"])
    ok = worst < TARGET_MB and memory["VmRSS"] < MEMORY_TARGET_MB
    print(f"{args.window}-turn window, chat drawn:      VmRSS {chat['VmRSS']:6.1f} MB  (peak {chat['VmHWM']:.1f} MB)")
    print(f"{args.window}-turn window, /context viewer: VmRSS {viewer['VmRSS']:6.1f} MB  (peak {viewer['VmHWM']:.1f} MB)")
    print(f"{args.window} turns indexed, memory loaded: VmRSS {memory['VmRSS']:6.1f} MB  (peak {memory['VmHWM']:.1f} MB)")
    print(f"targets < {TARGET_MB:.0f} MB (chat), < {MEMORY_TARGET_MB:.0f} MB (memory loaded): "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
