"""Benchmark: cold start of the everyday commands.

Measures the wall time of a fresh process running `mnemara --help`, `mnemara list`,
`mnemara note ...` and `mnemara show` against a temporary MNEMARA_HOME holding one instance with
a 20-turn window, 1,000 archived turns and a few notes. Each command runs several times; the
median is reported (the first runs are warm-ups so the OS file cache is warm, as it is for a user).

Target: < 150 ms median for each command (the original tool needed 760 ms for `--help`).
Heavy libraries (claude-agent-sdk, LanceDB, Kuzu, Textual) must not be imported by these
commands; the script also checks that with `-X importtime` and lists any it finds.

Run: python benchmarks/bench_cold_start.py [--runs N] [--python-m]
By default the installed `mnemara` console script next to the running interpreter is timed
(falling back to `python -m mnemara`). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import median_seconds, report

TARGET_S = 0.150
HEAVY = ("claude_agent_sdk", "lancedb", "kuzu", "textual", "prompt_toolkit", "ollama", "pyarrow")


def command_prefix(python_m: bool) -> list[str]:
    script = Path(sys.executable).with_name("mnemara")
    if not python_m and script.exists():
        return [str(script)]
    return [sys.executable, "-m", "mnemara"]


def prepare_home(home: Path) -> None:
    from mnemara.instance import Instance
    from mnemara.memory.notes import append_note
    from mnemara.store import TurnStore
    os.environ["MNEMARA_HOME"] = str(home)
    inst = Instance.named("bench")
    inst.create()
    with TurnStore(inst.turns_path) as store:
        for i in range(1_020):
            store.add_turn("user" if i % 2 == 0 else "assistant",
                           [{"type": "text", "text": f"turn {i}: " + "some words about the project " * 12}])
        store.evict([t.id for t in store.window()][:1_000], "bench")
    for i in range(10):
        append_note(inst.memory_dir, f"note {i} for the cold-start benchmark")


def heavy_imports(argv: list[str], env: dict[str, str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mnemara", *argv], env=env,
                          capture_output=True, text=True)
    found = set()
    for line in proc.stderr.splitlines():
        name = line.rsplit("|", 1)[-1].strip()
        if name.split(".")[0] in HEAVY:
            found.add(name.split(".")[0])
    return sorted(found)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--python-m", action="store_true", help="time `python -m mnemara` instead")
    args = ap.parse_args()
    prefix = command_prefix(args.python_m)
    tmp = Path(tempfile.mkdtemp(prefix="mnemara-bench-"))
    try:
        env = dict(os.environ, MNEMARA_HOME=str(tmp / "home"), HOME=str(tmp), MNEMARA_INSTANCE="bench")
        prepare_home(tmp / "home")
        print(f"timing {' '.join(prefix)} (median of {args.runs} runs after 3 warm-ups)")
        commands = {
            "--help": ["--help"],
            "list": ["list"],
            "note": ["note", "a", "note", "from", "the", "benchmark"],
            "show": ["show"],
        }
        ok = True
        for label, argv in commands.items():
            def run() -> None:
                subprocess.run(prefix + argv, env=env, check=True, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
            ok &= report(f"mnemara {label}", median_seconds(run, args.runs, warmup=3), TARGET_S)
            heavy = heavy_imports(argv, env)
            if heavy:
                ok = False
                print(f"    imports heavy libraries: {', '.join(heavy)}  FAIL")
        report("python -c pass (interpreter floor)",
               median_seconds(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True),
                              args.runs, warmup=3), None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
