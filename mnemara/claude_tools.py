"""Facts about Claude Code's built-in tools, in one place.

Which built-ins exist (and may be offered through `tools=`), which input field holds the thing a
permission pattern is about, which tools touch files (and so obey `file_tool_home_only`), and how
a call reads in one line. The config, the permission policy, the engine and the views all read
these; none of them keeps its own list.
"""

from __future__ import annotations

import json
from typing import Any

# Built-in tools a policy may name and the engine may offer.
BUILTIN_TOOLS = ("Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch",
                 "NotebookEdit", "TodoWrite", "Agent", "Skill")

# Which input key holds the call's target: what `allowed_patterns` are matched against.
TARGET_KEYS = {
    "Bash": "command",
    "Read": "file_path", "Write": "file_path", "Edit": "file_path", "MultiEdit": "file_path",
    "NotebookEdit": "notebook_path",
    "Glob": "path", "Grep": "path",
    "WebFetch": "url", "WebSearch": "query",
}
# Tools that touch the filesystem through a path argument: subject to file_tool_home_only.
FILE_TOOLS = frozenset({"Read", "Write", "Edit", "MultiEdit", "NotebookEdit", "Glob", "Grep"})
# Search tools: their path is optional (absent means the working directory); they are
# summarised by their pattern.
SEARCH_TOOLS = frozenset({"Glob", "Grep"})


def tool_target(tool_name: str, tool_input: dict) -> str | None:
    """The string `allowed_patterns` match against, or None when the tool has no natural target."""
    key = TARGET_KEYS.get(tool_name)
    value = tool_input.get(key) if key else None
    return value if isinstance(value, str) else None


def summarize_tool_call(name: str, args: dict[str, Any], limit: int = 100) -> str:
    """`Bash: git status`, `Read: /x.py`, `Grep: TODO`, or `tool {json}`, cut to `limit` characters."""
    key = "pattern" if name in SEARCH_TOOLS else TARGET_KEYS.get(name)
    if name in ("WebFetch", "WebSearch"):
        key = None  # shown with their whole input, as before
    if key and isinstance(args.get(key), str):
        detail = args[key]
    else:
        detail = json.dumps(args, ensure_ascii=False, sort_keys=True)
    line = f"{name}: {' '.join(detail.split())}"
    return line if len(line) <= limit else line[: limit - 1] + "…"
