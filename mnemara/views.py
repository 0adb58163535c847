"""Plain-text and JSON views of the window, search hits and instances.

Shared by the CLI, the REPL and the TUI's slash commands; no UI library imports. What a front end
prints goes through `display_turn` / `format_hit`, which are inert for a terminal (`termsafe`);
`format_turn` itself keeps the text as stored, because the model's read_turns tool reads it too.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

from .claude_tools import summarize_tool_call
from .store.blocks import result_text
from .store.turns import SearchHit, Turn
from .termsafe import inert, one_line

ROLE_LABEL = {"user": "you", "assistant": "assistant"}
PIPE_WIDTH = 100  # wrap width when the output is not a terminal


def terminal_width() -> int:
    """The terminal's width in columns (COLUMNS, else stdout's terminal), at least 40; off a
    terminal PIPE_WIDTH. Text wrapped to it fills each line once instead of wrapping twice."""
    import shutil
    return max(40, shutil.get_terminal_size((PIPE_WIDTH, 24)).columns)


def summarize_result(block: dict[str, Any]) -> str:
    text = result_text(block.get("content"))
    lines = text.count("\n") + 1 if text else 0
    first = text.strip().splitlines()[0] if text.strip() else "(empty)"
    first = first if len(first) <= 60 else first[:59] + "…"
    state = "error" if block.get("is_error") else f"{lines} line{'s' if lines != 1 else ''}"
    return f"{state}: {first}"


def _view_text(block: dict[str, Any], results: dict[Any, Any], width: int) -> list[str]:
    out: list[str] = []
    for para in block.get("text", "").strip().splitlines():
        out.extend(textwrap.wrap(para, width - 2, replace_whitespace=False) or [""])
    return out


def _view_tool_use(block: dict[str, Any], results: dict[Any, Any], width: int) -> list[str]:
    line = "⚙ " + summarize_tool_call(block.get("name", "?"), block.get("input", {}), width - 30)
    result = results.get(block.get("id"))
    if result is not None:
        line += "  → " + summarize_result(result)
    return [line]


def _view_thinking(block: dict[str, Any], results: dict[Any, Any], width: int) -> list[str]:
    return [f"(thinking, {len(block.get('thinking', '')):,} characters, not re-sent)"]


def _view_recall(block: dict[str, Any], results: dict[Any, Any], width: int) -> list[str]:
    return [recall_summary(block, width - 2)]


def recall_summary(block: dict[str, Any], limit: int = 100) -> str:
    """`⟲ recalled 3 memories: turn #12, note 2026-05-01.md:4, wiki deploy#2`."""
    items = block.get("items") or []
    names = ", ".join(recall_item_label(i) for i in items)
    line = f"⟲ recalled {len(items)} memor{'y' if len(items) == 1 else 'ies'}: {names}"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _view_slots(block: dict[str, Any], results: dict[Any, Any], width: int) -> list[str]:
    return [slots_summary(block, width - 2)]


def slots_summary(block: dict[str, Any], limit: int = 100) -> str:
    """`▣ slots sent with this message: current_task, user_profile` (what the model now sees)."""
    names = [str(s.get("name", "?")) for s in block.get("slots") or []]
    line = ("▣ slots sent with this message: " + ", ".join(names)) if names else "▣ slots sent: all cleared"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def recall_item_label(item: dict[str, Any]) -> str:
    ident = str(item.get("id", "?"))
    kind, _, rest = ident.partition(":")
    return f"turn #{rest}" if kind == "turn" else f"{kind} {rest}"


# How each content-block kind shows in `show` and /show; tool results show with their call.
BLOCK_VIEWS: dict[str, Any] = {
    "text": _view_text,
    "tool_use": _view_tool_use,
    "tool_result": lambda block, results, width: [],
    "thinking": _view_thinking,
    "recall": _view_recall,
    "slots": _view_slots,
    "summary": lambda block, results, width: summary_view(block, width),
}


def summary_heading(block: dict[str, Any]) -> str:
    """`⧉ summary of 12 turns (#3-#14), archived: /compress undo restores them`."""
    from .store.blocks import id_ranges
    ids = block.get("turn_ids") or []
    return (f"⧉ summary of {len(ids)} turn{'s' if len(ids) != 1 else ''} ({id_ranges(ids)}), "
            "archived: read_turns reads them, /compress undo restores them")


def summary_view(block: dict[str, Any], width: int) -> list[str]:
    """A summary block in `show` and /show: its heading, then its text wrapped."""
    out = [summary_heading(block)]
    out.extend(_view_text({"text": block.get("text", "")}, {}, width))
    return out


def format_turn(turn: Turn, width: int = 100) -> str:
    head = f"#{turn.id}  {ROLE_LABEL.get(turn.role, turn.role)} · {turn.created_at.replace('T', ' ')}"
    if turn.role == "assistant" and turn.model:
        head += f" · {turn.model}"
    flags = [f for f, on in (("pinned", turn.pinned), (turn.status, turn.status != "complete")) if on]
    if flags:
        head += "  [" + ", ".join(flags) + "]"
    body: list[str] = []
    results = {b.get("tool_use_id"): b for b in turn.blocks if b.get("type") == "tool_result"}
    for block in turn.blocks:
        view = BLOCK_VIEWS.get(block.get("type", ""))
        if view is not None:
            body.extend(view(block, results, width))
    return head + "\n" + "\n".join("  " + ln for ln in body)


def display_turn(turn: Turn, width: int = 100) -> str:
    """`format_turn` for a terminal: control and format characters from the turn (an ESC in a
    message, a tool's output) show as escapes instead of acting on the terminal."""
    return inert(format_turn(turn, width))


@dataclass(frozen=True)
class WindowTotals:
    turns: int
    max_turns: int
    est_tokens: int
    max_tokens: int
    archived: int
    failed: int = 0  # failed rows still shown in the window; never sent, so not in `turns`

    def line(self) -> str:
        pct = 100 * self.est_tokens / self.max_tokens if self.max_tokens else 0
        failed = f" (+{self.failed} failed, not sent)" if self.failed else ""
        return (f"{self.turns}/{self.max_turns} turns{failed} · ~{self.est_tokens:,}/"
                f"{self.max_tokens:,} estimated tokens ({pct:.0f}%) · {self.archived:,} archived")

    def to_json(self) -> dict[str, int]:
        return dict(self.__dict__)


def turn_json(turn: Turn) -> dict[str, Any]:
    return {"id": turn.id, "role": turn.role, "created_at": turn.created_at, "model": turn.model,
            "status": turn.status, "pinned": turn.pinned, "est_tokens": turn.est_tokens,
            "usage": turn.usage, "cost_usd": turn.cost_usd, "content": turn.blocks}


def format_hit(hit: SearchHit | Any) -> str:
    # Two spaces after `where` always: a note's "memory  2026-04-27.md:12" is wider than the pad.
    # Inert for a terminal: the snippet and a note's category come from the store.
    if isinstance(hit, SearchHit):
        where = f"{hit.source:<8}#{hit.turn_id}"
        role = ROLE_LABEL.get(hit.role, hit.role)
        return f"{where:<24}  {hit.created_at}  {role:<10}{one_line(hit.snippet, 100)}"
    # A note replay archived is shown where it is now: "memory archive/2026-04-27.md:3".
    name = f"archive/{hit.path.name}" if hit.path.parent.name == "archive" else hit.path.name
    where = one_line(f"memory  {name}:{hit.line}", 200)
    return f"{where:<24}  {hit.at}  {one_line(hit.category, 40):<10}{one_line(hit.body, 80)}"


def hit_json(hit: SearchHit | Any) -> dict[str, Any]:
    if isinstance(hit, SearchHit):
        return {"source": hit.source, "turn_id": hit.turn_id, "role": hit.role,
                "time": hit.created_at, "snippet": hit.snippet}
    return {"source": "memory", "file": str(hit.path), "line": hit.line, "time": hit.at,
            "category": hit.category, "snippet": hit.body[:200]}
