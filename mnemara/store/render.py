"""How one stored turn reads to the model: one text block per turn, rendered once.

A turn is rendered when it is written and the text is stored with it, so every later request
carries byte-identical blocks for earlier turns (the API prompt cache matches exact prefixes).
What each kind of content block contributes is in `blocks.BLOCK_KINDS`.
"""

from __future__ import annotations

from typing import Any

from .blocks import DEFAULT_RESULT_MAX_CHARS, plain_block, render_block, result_text

__all__ = ["DEFAULT_RESULT_MAX_CHARS", "plain_text", "render_turn", "result_text"]


def render_turn(turn_id: int, role: str, created_at: str, blocks: list[dict[str, Any]],
                *, status: str = "complete", result_max_chars: int = DEFAULT_RESULT_MAX_CHARS) -> str:
    attrs = f'id="{turn_id}" role="{role}" at="{created_at}"'
    if status == "interrupted":
        attrs += ' interrupted="true"'
    parts = [render_block(b, result_max_chars) for b in blocks]
    body = "\n".join(p for p in parts if p)
    return f"<turn {attrs}>\n{body}\n</turn>"


def plain_text(blocks: list[dict[str, Any]]) -> str:
    """Searchable text of a turn: what was said, which tools ran with what, and what came back."""
    return "\n".join(p for p in (plain_block(b) for b in blocks) if p)
