"""One clear sentence for every way a turn can fail: the cause and the fix.

Never "Check stderr output for details": the reason is found here (in the exception, the result,
the assistant's error field or the CLI's stderr) and said.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

CREDENTIALS = ("no Anthropic credentials (or they were rejected): set ANTHROPIC_API_KEY "
               "or log in with `claude`")
_AUTH = re.compile(r"invalid api key|authentication|unauthori[sz]ed|not logged in|/login|"
                   r"\b401\b|x-api-key|credential", re.I)
_NETWORK = re.compile(r"ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNRESET|fetch failed|"
                      r"connection (error|refused)|network|socket hang up|getaddrinfo", re.I)
_OVERLOADED = re.compile(r"overloaded|\b529\b", re.I)
_RATE = re.compile(r"rate.?limit|\b429\b|usage limit", re.I)
_CREDIT = re.compile(r"credit balance|billing", re.I)


def explain(*, exc: BaseException | None = None, result: Any = None,
            assistant_error: str | None = None, stderr: Iterable[str] = (),
            max_steps: int | None = None) -> str:
    """The sentence shown to the user when a turn fails."""
    from claude_agent_sdk import CLIConnectionError, CLINotFoundError, ProcessError

    stderr_text = "\n".join(stderr)
    if isinstance(exc, CLINotFoundError):
        return ("the Claude Code CLI was not found: reinstall mnemara (claude-agent-sdk bundles it) "
                "or put `claude` on PATH (or set MNEMARA_CLI_PATH)")
    texts: list[str] = [stderr_text]
    status = None
    if result is not None:
        texts += [getattr(result, "result", None) or "", *(getattr(result, "errors", None) or [])]
        status = getattr(result, "api_error_status", None)
        if getattr(result, "subtype", "") == "error_max_turns":
            limit = f" ({max_steps})" if max_steps else ""
            return ("the turn reached the step limit" + limit + " before finishing: say "
                    "'continue' to go on, or raise max_steps_per_turn in config.json")
    if exc is not None:
        texts += [str(exc), getattr(exc, "stderr", None) or "", getattr(exc, "result", None) or ""]
        status = status or getattr(exc, "api_error_status", None)
    blob = "\n".join(t for t in texts if t)

    if assistant_error == "authentication_failed" or status == 401 or _AUTH.search(blob):
        return CREDENTIALS
    if assistant_error == "billing_error" or _CREDIT.search(blob):
        return "the Anthropic account has no credit left: add credit in the console, then /retry"
    if assistant_error == "rate_limit" or status == 429 or _RATE.search(blob):
        return "rate limited by the Anthropic API: wait a moment, then /retry"
    if status == 529 or _OVERLOADED.search(blob):
        return "the Anthropic API is overloaded right now: wait a moment, then /retry"
    if _NETWORK.search(blob):
        return ("cannot reach the Anthropic API (network error): check the connection, "
                "proxy or ANTHROPIC_BASE_URL, then /retry")
    if status and status >= 500 or assistant_error == "server_error":
        return f"the Anthropic API failed (HTTP {status or '5xx'}): try again with /retry"
    if assistant_error == "invalid_request" or status == 400:
        detail = _first_line(blob)
        return f"the API rejected the request ({detail}): check the model name with /models" if detail \
            else "the API rejected the request: check the model name with /models"
    if isinstance(exc, ProcessError):
        detail = _first_line(blob)
        code = getattr(exc, "exit_code", None)
        return (f"the Claude Code CLI exited with code {code}" + (f": {detail}" if detail else "")
                + "; see debug.log for its full output")
    if isinstance(exc, CLIConnectionError):
        return f"lost the connection to the Claude Code CLI ({_first_line(str(exc))}): /retry"
    detail = _first_line(blob)
    if exc is not None:
        return f"the turn failed: {type(exc).__name__}: {detail or exc}"
    return f"the turn failed: {detail}" if detail else "the turn failed without a reason from the CLI"


def _first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.lower().startswith(("check stderr", "error output:")):
            line = re.sub(r"^(error|api error)\s*:\s*", "", line, flags=re.I)
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
