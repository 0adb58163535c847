"""Run numbered turns through the real TurnEngine, reporting each one as it starts and finishes.

    python tests/faults/drive_turns.py INSTANCE FIRST COUNT

Used by the kill -9 fault tests (and the concurrent-writer test) as the "running session": the
engine talks to whatever CLI `MNEMARA_CLI_PATH` names (the scripted fake) through the SDK's real
subprocess transport. Messages are numbered from FIRST, so every attempt has a unique text even
across restarts. Before a turn it prints `start N`, after it `done N STATUS USER_ID ASSISTANT_ID`,
each line flushed at once: what was printed before a SIGKILL is exactly what the process knew
had happened, and that is what the test holds the store to.

`MNEMARA_FAULT_KILL_AT=K:before|after` makes the process SIGKILL itself right before (or right
after) the K-th write transaction of the turn store commits, counted from the first turn's start:
a crash at every commit boundary of a turn, deterministically. `MNEMARA_FAULT_KILL_AT=count`
prints `commits N` at the end instead, so a test can enumerate them all.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mnemara.engine.events import TurnFinished  # noqa: E402
from mnemara.engine.turn import TurnEngine  # noqa: E402
from mnemara.instance import Instance  # noqa: E402
from tests.fakes.drive import run_turn  # noqa: E402


class CommitFaults:
    """Counts the turn store's write-transaction commits once armed, and kills at the chosen one."""

    def __init__(self, spec: str) -> None:
        self.count_only = spec == "count"
        at, _, self.when = spec.partition(":")
        self.at = 0 if self.count_only else int(at)
        self.commits = 0
        self.armed = False
        from mnemara.store import db
        original = db.Transaction.__exit__

        def exit_(tx: object, exc_type: object, *rest: object) -> None:
            commits = self.armed and getattr(tx, "outer", False) and exc_type is None
            if commits:
                self.commits += 1
                self._maybe_kill("before")
            original(tx, exc_type, *rest)
            if commits:
                self._maybe_kill("after")

        db.Transaction.__exit__ = exit_  # type: ignore[method-assign]

    def _maybe_kill(self, when: str) -> None:
        if not self.count_only and self.commits == self.at and self.when == when:
            os.kill(os.getpid(), signal.SIGKILL)


def message(n: int) -> str:
    """The text of message `n`; the test rebuilds it to find the turn in the store."""
    return f"fault message {n}"


async def drive(name: str, first: int, count: int) -> None:
    spec = os.environ.get("MNEMARA_FAULT_KILL_AT")
    faults = CommitFaults(spec) if spec else None
    engine = TurnEngine(Instance.named(name).require())
    try:
        for n in range(first, first + count):
            print(f"start {n}", flush=True)
            if faults is not None:
                faults.armed = True
            events = await run_turn(engine, message(n))
            done = events[-1]
            assert isinstance(done, TurnFinished), done
            print(f"done {n} {done.status} {done.user_turn_id} {done.assistant_turn_id}", flush=True)
    finally:
        engine.close()
    if faults is not None and faults.count_only:
        print(f"commits {faults.commits}", flush=True)


if __name__ == "__main__":
    asyncio.run(drive(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
