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
    """Re-read the role doc. Any problem is a warning and an empty system prompt, never a failure.

    A NUL byte counts as unreadable: the system prompt travels to the CLI as a command-line
    argument, where a NUL cannot go, so sending it would fail every turn."""
    if not path:
        return RoleDoc("")
    text, problem = _load(path)
    if problem is not None:
        return RoleDoc("", f"role doc {path} {problem}; using an empty system prompt")
    return RoleDoc(text)


def role_doc_problem(path: str) -> str | None:
    """Why the role doc at `path` cannot be used (a phrase after "role doc PATH"), or None.

    Shared by the turn (warning, empty prompt), `show --prompt` and `role --set` (refusal)."""
    return _load(path)[1]


def _load(path: str) -> tuple[str, str | None]:
    """(text, None) for a usable role doc, else ("", the problem)."""
    p = Path(path).expanduser()
    try:
        if p.is_dir():
            return "", "is a directory, not a file"
        size = p.stat().st_size
        if size > ROLE_DOC_MAX_BYTES:
            return "", f"is {size:,} bytes (limit {ROLE_DOC_MAX_BYTES:,})"
        data = p.read_bytes()
    except FileNotFoundError:
        return "", "does not exist"
    except OSError as exc:
        return "", f"is unreadable ({exc.strerror or exc})"
    nul = data.find(b"\0")
    if nul >= 0:
        return "", f"holds a NUL byte (at byte {nul:,}), which cannot be sent"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return "", f"is not valid UTF-8 (byte {exc.start:,}); save it as UTF-8"


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


def offered_builtins(config: Any) -> list[str]:
    """The built-in tools offered to the model: those with an allow or ask policy, nothing else.
    (Here, not in turn.py, so `show --prompt` can say it without importing the engine.)"""
    from ..claude_tools import BUILTIN_TOOLS
    offered: list[str] = []
    for policy in config.allowed_tools:
        if policy.tool in BUILTIN_TOOLS and policy.mode != "deny" and policy.tool not in offered:
            offered.append(policy.tool)
    return offered


#: The Agent SDK identity line the Claude Code CLI puts in `system` before our system prompt.
CLI_IDENTITY = "You are a Claude agent, built on Anthropic's Claude Agent SDK."


def cli_additions(*, model: str, cwd: str, offered_tools: list[str], today: str) -> list[tuple[str, str]]:
    """What the Claude Code CLI adds to every request on its own, as (where, what) pairs, so
    `show --prompt` can list the whole request and not only mnemara's part.

    mnemara does not control this text; it was captured from the real bundled CLI (2.1.332)
    against the fake Messages API in tests/e2e, and its details change with CLI versions, the
    directory and the date. tests/e2e/test_turn_faults_e2e.py checks it against the wire."""
    bash = "Bash" in offered_tools
    items = [
        ("system, first", "a billing header line: `x-anthropic-billing-header: cc_version=...; "
                          "cc_entrypoint=sdk-py;`"),
        ("system, before the role doc", CLI_IDENTITY),
    ]
    if bash:
        items.append(("user message, before the window's blocks",
                      "a <system-reminder> on git commit and pull request attribution "
                      "(sent because Bash is offered)"))
    items += [
        ("a system message after your message",
         f"`# Environment`: working directory {cwd}, whether it is a git repository, platform, "
         f"shell, OS version, notes on handling downloaded files, the model's name and id "
         f"({model}), its knowledge cutoff, and today's date ({today})"),
        ("tools", "the definitions of the tools offered: "
                  + ", ".join([*offered_tools, "mnemara's own mcp__mnemara__* tools"])),
    ]
    return items
