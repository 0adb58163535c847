"""Markdown that is still arriving, as a Rich renderable (no Textual here).

A streamed reply is re-rendered about fifteen times a second. Rendering all of it each time
would cost more and more as the reply grows, so the text is cut into chunks at blank lines
outside code fences: a closed chunk is rendered once per width and reused; only the open tail
is rendered again. The result matches rendering the whole text in one piece (the tests check).

Both are inert for the terminal (`termsafe`): the source is escaped before it is parsed, and
what the parser decodes on its own (an entity such as `&#x202e;`) is escaped in the output.
"""

from __future__ import annotations

from typing import Iterable

from typing import Any

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import Markdown
from rich.segment import Segment

from ...termsafe import inert


class InertMarkdown(Markdown):
    """Markdown from the model or the store: it cannot drive the terminal it is shown on."""

    def __init__(self, markup: str, **kwargs: Any) -> None:
        super().__init__(inert(markup), **kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for item in super().__rich_console__(console, options):
            if isinstance(item, Segment):
                yield item if item.control else Segment(inert(item.text), item.style)
            else:
                for segment in console.render(item, options):
                    yield segment if segment.control else Segment(inert(segment.text), segment.style)


class StreamedMarkdown:
    """A Rich renderable for Markdown that is still growing: cached chunks + a live tail.

    Text is cut into chunks at blank lines outside code fences; a chunk, once closed, is
    rendered once per width and reused.
    """

    def __init__(self, text: str = "") -> None:
        self.chunks: list[str] = []
        self.tail = ""
        self._cache: dict[tuple[int, int], list[list[Segment]]] = {}
        self.feed(text)

    def feed(self, text: str) -> None:
        self.tail += inert(text)
        cut = self._boundary(self.tail)
        if cut:
            self.chunks.append(self.tail[:cut])
            self.tail = self.tail[cut:]

    @staticmethod
    def _boundary(text: str) -> int:
        """End of the last complete paragraph that is not inside a code fence (0: none)."""
        at = text.rfind("\n\n")
        while at > 0:
            before = text[:at]
            if sum(1 for ln in before.splitlines() if ln.lstrip().startswith(("```", "~~~"))) % 2 == 0:
                return at + 2
            at = text.rfind("\n\n", 0, at)
        return 0

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterable[Segment]:
        parts = [self._lines(i, chunk, console, options) for i, chunk in enumerate(self.chunks)]
        if self.tail.strip():
            parts.append(_trim(console.render_lines(InertMarkdown(self.tail), options, pad=False)))
        for n, lines in enumerate(p for p in parts if p):
            if n:
                yield Segment.line()  # one blank line between blocks, as Markdown renders them
            for line in lines:
                yield from line
                yield Segment.line()

    def _lines(self, i: int, chunk: str, console: Console, options: ConsoleOptions) -> list[list[Segment]]:
        key = (i, options.max_width)
        if key not in self._cache:
            self._cache[key] = _trim(console.render_lines(InertMarkdown(chunk), options, pad=False))
        return self._cache[key]


def _trim(lines: list[list[Segment]]) -> list[list[Segment]]:
    """Without leading and trailing blank lines. Styled spaces are not blank: they are the
    padding of a code block or the edge of a table."""
    def blank(line: list[Segment]) -> bool:
        return all(not s.text.strip() and not s.style for s in line)
    start, end = 0, len(lines)
    while start < end and blank(lines[start]):
        start += 1
    while end > start and blank(lines[end - 1]):
        end -= 1
    return lines[start:end]
