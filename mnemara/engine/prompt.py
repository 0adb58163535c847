"""What one request carries: the role doc as system prompt, and the window as content blocks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


ROLE_DOC_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class RoleDoc:
    text: str
    warning: str | None = None


def read_role_doc(path: str | None) -> RoleDoc:
    """Re-read the role doc. Any problem is a warning and an empty system prompt, never a failure."""
    if not path:
        return RoleDoc("")
    try:
        p = Path(path).expanduser()
        size = p.stat().st_size
        if size > ROLE_DOC_MAX_BYTES:
            return RoleDoc("", f"role doc {path} is {size:,} bytes (limit {ROLE_DOC_MAX_BYTES:,}); "
                               "using an empty system prompt")
        return RoleDoc(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RoleDoc("", f"role doc {path} does not exist; using an empty system prompt")
    except (OSError, UnicodeDecodeError) as exc:
        return RoleDoc("", f"role doc {path} is unreadable ({exc}); using an empty system prompt")


def window_blocks(renderings: list[str]) -> list[dict[str, Any]]:
    """One text block per turn, in order: each is the turn's stored rendering, byte for byte."""
    return [{"type": "text", "text": r} for r in renderings]


def user_message(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    """The single streamed user message that carries the whole window.

    The newest block carries a prompt-cache breakpoint, so this request writes the whole history
    to the cache and the next request (which repeats it byte for byte) reads it back. The CLI
    passes it through; with its own breakpoints (two in `system`, one on its environment message)
    that makes four, the API's maximum.
    """
    content = [dict(b) for b in blocks]
    if content:
        content[-1]["cache_control"] = {"type": "ephemeral"}
    return {"type": "user", "message": {"role": "user", "content": content},
            "parent_tool_use_id": None}
