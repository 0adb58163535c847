"""How one stored turn reads to the model: one text block per turn, rendered once.

A turn is rendered when it is written and the text is stored with it, so every later request
carries byte-identical blocks for earlier turns (the API prompt cache matches exact prefixes).
Tool calls and their results are kept; results longer than `result_max_chars` are cut with a
visible marker. Thinking is stored with the turn but never rendered.
"""

from __future__ import annotations

import json
from typing import Any

DEFAULT_RESULT_MAX_CHARS = 4000


def render_turn(turn_id: int, role: str, created_at: str, blocks: list[dict[str, Any]],
                *, status: str = "complete", result_max_chars: int = DEFAULT_RESULT_MAX_CHARS) -> str:
    attrs = f'id="{turn_id}" role="{role}" at="{created_at}"'
    if status == "interrupted":
        attrs += ' interrupted="true"'
    parts = [_render_block(b, result_max_chars) for b in blocks]
    body = "\n".join(p for p in parts if p)
    return f"<turn {attrs}>\n{body}\n</turn>"


def _render_block(block: dict[str, Any], result_max_chars: int) -> str:
    kind = block.get("type")
    if kind == "text":
        return block.get("text", "")
    if kind == "tool_use":
        args = json.dumps(block.get("input", {}), ensure_ascii=False, sort_keys=True)
        return f'<tool_call name="{block.get("name", "?")}" id="{block.get("id", "")}">{args}</tool_call>'
    if kind == "tool_result":
        text = _truncate(result_text(block.get("content")), result_max_chars)
        err = ' error="true"' if block.get("is_error") else ""
        return f'<tool_result id="{block.get("tool_use_id", "")}"{err}>{text}</tool_result>'
    return ""  # thinking, redacted_thinking and anything unknown are never re-sent


def result_text(content: Any) -> str:
    """Flatten a tool_result's content (a string or a list of blocks) to text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for item in content:
            if isinstance(item, dict) and item.get("type") == "text":
                out.append(item.get("text", ""))
            elif isinstance(item, dict):
                out.append(f"[{item.get('type', 'block')}]")
            else:
                out.append(str(item))
        return "\n".join(out)
    return json.dumps(content, ensure_ascii=False)


def _truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n[... truncated: {len(text) - limit:,} more characters]"


def plain_text(blocks: list[dict[str, Any]]) -> str:
    """Searchable text of a turn: what was said, which tools ran with what, and what came back."""
    out = []
    for b in blocks:
        kind = b.get("type")
        if kind == "text":
            out.append(b.get("text", ""))
        elif kind == "tool_use":
            out.append(f"{b.get('name', '')} {json.dumps(b.get('input', {}), ensure_ascii=False)}")
        elif kind == "tool_result":
            out.append(result_text(b.get("content")))
    return "\n".join(out)
