"""Embedders for tests of an index child process in trouble (pickled to the child, so they live
in an importable module rather than in a test file)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any, Sequence


class SleepyEmbedder:
    """Never returns: the child is stuck in a call. Touches `marker` when a call starts, so a
    test knows the child is busy before it acts."""

    name = "sleepy:8"
    dim = 8

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def embed(self, texts: Sequence[str]) -> Any:
        Path(self.marker).touch()
        time.sleep(3600)
        raise AssertionError("unreachable")


class FatalEmbedder:
    """Kills its process on every embedding, as a crash in native code would: a write that
    needs a vector can never be served."""

    name = "fatal:8"
    dim = 8

    def embed(self, texts: Sequence[str]) -> Any:
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(60)
        raise AssertionError("unreachable")
