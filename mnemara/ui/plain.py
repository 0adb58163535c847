"""Plain-terminal rendering of turn events, shared by the REPL and `mnemara ask`.

The reply goes to `out`; everything else (tool lines, notices, totals) to `err`. Text from the
model, a tool or the store is made inert (`termsafe`) on its way out: always on `err`, and on
`out` when it is a terminal; a reply piped elsewhere keeps its bytes. Colour only on a terminal,
and never when NO_COLOR is set (https://no-color.org).
"""

from __future__ import annotations

import os
import sys
from typing import Any, TextIO

from ..engine.events import (Notice, PermissionRequest, Recalled, TextDelta, TextDone, Thinking,
                             ToolCall, ToolResult, TurnFinished)
from ..termsafe import inert

_STYLE = {"dim": "\033[2m", "red": "\033[31m", "yellow": "\033[33m", "cyan": "\033[36m",
          "green": "\033[32m", "reset": "\033[0m"}


class PlainRenderer:
    def __init__(self, out: TextIO | None = None, err: TextIO | None = None,
                 color: bool | None = None, inert_out: bool | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        # Styled lines all go to `err`, so its being a terminal is what decides colour.
        self.color = (self.err.isatty() and not os.environ.get("NO_COLOR")) if color is None else color
        self.inert_out = self.out.isatty() if inert_out is None else inert_out
        self._mid_line = False

    def _c(self, style: str, text: str) -> str:
        """A line for `err`: inert, then styled when colour is on."""
        text = inert(text)
        return f"{_STYLE[style]}{text}{_STYLE['reset']}" if self.color else text

    def _shown(self, text: str) -> str:
        """Text for `out`: inert on a terminal, unchanged into a pipe or a file."""
        return inert(text) if self.inert_out else text

    def _line(self, text: str, stream: TextIO | None = None) -> None:
        stream = stream or self.out
        if self._mid_line:
            self.out.write("\n")
            self.out.flush()
            self._mid_line = False
        stream.write(text + "\n")
        stream.flush()

    def info(self, text: str) -> None:
        self._line(self._shown(text))

    def render(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            self.out.write(self._shown(event.text))
            self.out.flush()
            self._mid_line = not event.text.endswith("\n")
        elif isinstance(event, TextDone):
            if self._mid_line:
                self.out.write("\n")
                self.out.flush()
                self._mid_line = False
        elif isinstance(event, Thinking):
            self._line(self._c("dim", f"(thinking: {len(event.text):,} characters)"), self.err)
        elif isinstance(event, ToolCall):
            self._line(self._c("cyan", f"⚙ {event.summary}"), self.err)
        elif isinstance(event, ToolResult):
            first = next((ln for ln in event.text.splitlines() if ln.strip()), "(no output)")
            first = first if len(first) <= 100 else first[:99] + "…"
            n = event.text.count("\n") + 1 if event.text else 0
            label = "✗ " if event.is_error else "→ "
            style = "red" if event.is_error else "dim"
            self._line(self._c(style, f"  {label}{first}" + (f"  (+{n - 1} lines)" if n > 1 else "")),
                       self.err)
        elif isinstance(event, Recalled):
            self._line(self._c("dim", f"{event.summary} (~{event.tokens:,} tokens)"), self.err)
        elif isinstance(event, Notice):
            style = {"error": "red", "warning": "yellow", "eviction": "yellow"}.get(event.kind, "dim")
            self._line(self._c(style, f"[{event.kind}] {event.text}"), self.err)
        elif isinstance(event, TurnFinished):
            self.finish(event)
        elif isinstance(event, PermissionRequest):
            self._line(self._c("yellow", f"permission needed: {event.summary}"), self.err)

    def finish(self, event: TurnFinished) -> None:
        if event.status in ("failed", "refused"):  # refused: too large, nothing stored or sent
            self._line(self._c("red", f"✗ {event.error}"), self.err)
            return
        u = event.usage
        hit = f" · cache {u.cache_hit_ratio:.0%}" if u.cache_hit_ratio is not None else ""
        cost = f" · ${event.cost_usd:.4f}" if event.cost_usd is not None else ""
        tokens = (f"{u.total_input:,} in / {u.output_tokens:,} out" if u.total_input or u.output_tokens
                  else "usage not reported")  # an interrupt before any call reported its usage
        self._line(self._c("dim", f"({tokens}{hit}{cost} · "
                                  f"{event.duration_ms / 1000:.1f}s)"), self.err)
