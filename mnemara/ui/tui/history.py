"""What the TUI's input box knows without Textual: message history and slash-command completion.

The history file is the one the REPL writes (`<instance>/.prompt_history`, prompt-toolkit's
`FileHistory` format: a `# timestamp` line, then each line of the entry prefixed with `+`), so
Up in the TUI recalls what was typed in `--no-tui` and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

from ...fsutil import touch_private

HISTORY_LIMIT = 1000  # entries kept in memory; the file itself is never truncated here


class InputHistory:
    """Entries oldest first; `previous` / `following` walk them like a shell does.

    While walking, the text being typed (the draft) is remembered and comes back after the
    newest entry.
    """

    def __init__(self, entries: Iterable[str] = (), path: Path | None = None,
                 limit: int = HISTORY_LIMIT) -> None:
        self.entries: list[str] = list(entries)[-limit:]
        self.path = path
        self.limit = limit
        self._index = len(self.entries)
        self._draft = ""

    @classmethod
    def load(cls, path: Path, limit: int = HISTORY_LIMIT) -> "InputHistory":
        """Read `path` if it exists; an unreadable file gives an empty history, not an error."""
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        return cls(parse_history(text), path, limit)

    @property
    def navigating(self) -> bool:
        return self._index < len(self.entries)

    def add(self, text: str) -> None:
        """Remember a sent entry (not twice in a row) and append it to the file."""
        self.reset()
        if not text.strip() or (self.entries and self.entries[-1] == text):
            return
        self.entries.append(text)
        del self.entries[:-self.limit]
        self._index = len(self.entries)
        if self.path is not None:
            try:
                touch_private(self.path)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(format_entry(text))
            except OSError:
                pass  # history is a convenience; a read-only home must not break sending

    def previous(self, current: str) -> str | None:
        """The entry before the one shown (None at the oldest). `current` is the box's text."""
        if self._index == 0:
            return None
        if not self.navigating:
            self._draft = current
        self._index -= 1
        return self.entries[self._index]

    def following(self) -> str | None:
        """The entry after the one shown, then the draft; None when not walking the history."""
        if not self.navigating:
            return None
        self._index += 1
        return self.entries[self._index] if self.navigating else self._draft

    def reset(self) -> None:
        self._index = len(self.entries)
        self._draft = ""


def parse_history(text: str) -> list[str]:
    """Entries of a prompt-toolkit history file, oldest first."""
    entries: list[str] = []
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith("+"):
            lines.append(line[1:])
        elif lines:
            entries.append("\n".join(lines))
            lines = []
    if lines:
        entries.append("\n".join(lines))
    return entries


def format_entry(text: str, now: datetime | None = None) -> str:
    stamp = (now or datetime.now()).isoformat(sep=" ")
    return f"\n# {stamp}\n" + "".join(f"+{line}\n" for line in text.split("\n"))


@dataclass(frozen=True)
class Completion:
    name: str
    usage: str
    help: str

    @property
    def insert(self) -> str:
        """What Tab puts in the box: the command, and a space when it takes arguments."""
        return f"/{self.name}" + (" " if self.usage.strip() != f"/{self.name}" else "")


def complete_slash(text: str, commands: Iterable[tuple[str, str, str]]) -> list[Completion]:
    """Commands matching a partly typed `/name` (no argument typed yet); else nothing.

    `commands` is (name, usage, help) for each registered slash command.
    """
    if not text.startswith("/") or any(c.isspace() for c in text):
        return []
    typed = text[1:].lower()
    return [Completion(n, u, h) for n, u, h in commands if n.startswith(typed)]

