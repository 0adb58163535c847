"""Run `mnemara replay -i INSTANCE --apply`, killing itself at a chosen write.

    python tests/replay/drive_replay.py INSTANCE SPEC

Used by the kill -9 tests. Once replay starts carrying out its plan, every durable write is a
numbered point: a file renamed or linked into place (`os.replace`, `os.link`: how
`fsutil.atomic_output` publishes a file), a turn-store transaction committing, an index write
(`upsert`, `relocate`).
`SPEC` is `K:before` or `K:after` (SIGKILL right before or right after point K) or `count`
(run to the end and print `points N`, so a test can enumerate them all).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


class Points:
    def __init__(self, spec: str) -> None:
        self.count_only = spec == "count"
        at, _, self.when = spec.partition(":")
        self.at = 0 if self.count_only else int(at)
        self.n = 0
        self.armed = False

    def wrap(self, fn: Callable[..., Any], applies: Callable[..., bool] = lambda *a, **k: True) -> Callable[..., Any]:
        def point(*args: Any, **kwargs: Any) -> Any:
            if not (self.armed and applies(*args, **kwargs)):
                return fn(*args, **kwargs)
            self.n += 1
            self._maybe("before")
            out = fn(*args, **kwargs)
            self._maybe("after")
            return out
        return point

    def _maybe(self, when: str) -> None:
        if not self.count_only and self.n == self.at and self.when == when:
            os.kill(os.getpid(), signal.SIGKILL)


def main(name: str, spec: str) -> None:
    points = Points(spec)
    os.replace = points.wrap(os.replace)  # type: ignore[assignment]
    os.link = points.wrap(os.link)  # type: ignore[assignment]
    from mnemara.index import lance
    from mnemara.ops import replay as ops
    from mnemara.store import db
    lance.MemoryIndex.upsert = points.wrap(lance.MemoryIndex.upsert)  # type: ignore[method-assign]
    lance.MemoryIndex.relocate = points.wrap(lance.MemoryIndex.relocate)  # type: ignore[method-assign]
    db.Transaction.__exit__ = points.wrap(  # type: ignore[method-assign]
        db.Transaction.__exit__, lambda tx, exc_type, *rest: getattr(tx, "outer", False) and exc_type is None)
    apply = ops._apply

    def armed_apply(*args: Any, **kwargs: Any) -> Any:
        points.armed = True
        return apply(*args, **kwargs)

    ops._apply = armed_apply  # type: ignore[assignment]
    from mnemara.cli import main as cli
    try:
        cli(["replay", "-i", name, "--apply"], standalone_mode=False)
    finally:
        if points.count_only:
            print(f"points {points.n}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
