"""One clear sentence for every way a turn can fail: the cause and the fix.

Never "Check stderr output for details": the reason is found here (in the exception, the result,
the assistant's error field or the CLI's stderr) and said.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import MnemaraError

if TYPE_CHECKING:
    from ..config import Config

CREDENTIALS = ("no Anthropic credentials (or they were rejected): set ANTHROPIC_API_KEY "
               "or log in with `claude`")
_AUTH = re.compile(r"invalid api key|authentication|unauthori[sz]ed|not logged in|/login|"
                   r"\b401\b|x-api-key|credential", re.I)
_NETWORK = re.compile(r"ECONNREFUSED|ENOTFOUND|ETIMEDOUT|EAI_AGAIN|ECONNRESET|fetch failed|"
                      r"connection (error|refused)|network|socket hang up|getaddrinfo", re.I)
_OVERLOADED = re.compile(r"overloaded|\b529\b", re.I)
_RATE = re.compile(r"rate.?limit|\b429\b|usage limit", re.I)
_CREDIT = re.compile(r"credit balance|billing", re.I)
_MODEL = re.compile(r"model_not_found|not_found_error|selected model|model[:\s]+\S+ (was )?not found|"
                    r"unknown model|invalid model|does not exist|^\s*model:\s*\S+\s*$", re.I | re.M)
_TOO_LONG = re.compile(r"prompt is too long|too many tokens|context (window|length)|"
                       r"maximum context|request too large|exceeds? the (maximum|limit)|\b413\b", re.I)

#: How each front end tells the user to try again, and where it lists the models. The chat has
#: /retry and /models; `mnemara ask` has neither: the user runs the command again.
FRONT_ENDS = {
    "chat": {"retry": "/retry", "again": "then /retry", "resend": "/retry resends it",
             "models": "/models lists them, /swap MODEL switches",
             "budget": "/tokens N, or max_window_tokens in config.json", "archive": "/clear"},
    "ask": {"retry": "run the command again", "again": "then run the command again",
            "resend": "`mnemara run` then /retry resends it",
            "models": "set `model` in config.json",
            "budget": "max_window_tokens in config.json", "archive": "`mnemara clear`"},
}


def hints(front_end: str) -> dict[str, str]:
    """The phrases for `front_end` ("chat" or "ask"); an unknown one gets the chat's."""
    return FRONT_ENDS.get(front_end, FRONT_ENDS["chat"])


def explain(*, exc: BaseException | None = None, result: Any = None,
            assistant_error: str | None = None, stderr: Iterable[str] = (),
            max_steps: int | None = None, front_end: str = "chat") -> str:
    """The sentence shown to the user when a turn fails, its hint phrased for `front_end`
    ("chat": the TUI and the REPL, which have /retry; "ask": one command, run again)."""
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
    h = hints(front_end)

    if assistant_error == "authentication_failed" or status == 401 or _AUTH.search(blob):
        return CREDENTIALS
    if assistant_error == "billing_error" or _CREDIT.search(blob):
        return f"the Anthropic account has no credit left: add credit in the console, {h['again']}"
    if assistant_error == "rate_limit" or status == 429 or _RATE.search(blob):
        return f"rate limited by the Anthropic API: wait a moment, {h['again']}"
    if status == 529 or _OVERLOADED.search(blob):
        return f"the Anthropic API is overloaded right now: wait a moment, {h['again']}"
    if _NETWORK.search(blob):
        return ("cannot reach the Anthropic API (network error): check the connection, "
                f"proxy or ANTHROPIC_BASE_URL, {h['again']}")
    if status and status >= 500 or assistant_error == "server_error":
        return f"the Anthropic API failed (HTTP {status or '5xx'}): try again: {h['retry']}"
    if assistant_error == "model_not_found" or status == 404 or (
            assistant_error == "invalid_request" or status == 400) and _MODEL.search(blob):
        detail = _first_line(blob)
        return (f"the API does not know the model{f' ({detail})' if detail else ''}: check the "
                f"model name ({h['models']})")
    if status == 413 or _TOO_LONG.search(blob):
        detail = _first_line(blob)
        return (f"the request is too large for the model{f' ({detail})' if detail else ''}: lower "
                f"the window budget ({h['budget']}) or archive turns ({h['archive']}), {h['again']}")
    if assistant_error == "invalid_request" or status == 400:
        detail = _first_line(blob)
        return (f"the API rejected the request as invalid{f' ({detail})' if detail else ''}; "
                "debug.log has the CLI's full output")
    if isinstance(exc, ProcessError):
        detail = _first_line(blob)
        code = getattr(exc, "exit_code", None)
        return (f"the Claude Code CLI exited with code {code}" + (f": {detail}" if detail else "")
                + "; see debug.log for its full output")
    if isinstance(exc, CLIConnectionError):
        return f"lost the connection to the Claude Code CLI ({_first_line(str(exc))}): {h['retry']}"
    detail = _first_line(blob)
    if exc is not None:
        return f"the turn failed: {type(exc).__name__}: {detail or exc}"
    return f"the turn failed: {detail}" if detail else "the turn failed without a reason from the CLI"


class MessageTooLarge(MnemaraError):
    """A message that cannot fit the window budget: refused before it is stored or sent."""


def too_large(text: str, message_tokens: int, system_tokens: int, config: "Config",
              front_end: str = "chat") -> MessageTooLarge:
    """The refusal for `text`: its size (estimated tokens and bytes), the budget, and how to
    raise the budget, or that no budget can hold it."""
    from ..errors import ConfigError
    budget = config.max_window_tokens
    role = f", of which the role doc takes ~{system_tokens:,}" if system_tokens > 4 else ""
    needed = message_tokens + system_tokens
    try:
        config.replace(max_window_tokens=needed)
        fix = f"raise the budget to at least {needed:,} ({hints(front_end)['budget']}) or send less"
    except ConfigError:  # above the largest budget the config accepts
        fix = "no budget holds it: send less (or save it to a file and ask the model to read parts)"
    size = human_bytes(len(text.encode("utf-8", "surrogatepass")))
    return MessageTooLarge(f"message not sent: it is ~{message_tokens:,} tokens ({size}) and the window "
                           f"budget is {budget:,} tokens (max_window_tokens){role}; {fix}")


def human_bytes(n: int) -> str:
    """`n` bytes as a person reads it: 812 bytes, 48.2 KB, 10.0 MB (decimal units)."""
    if n < 1000:
        return f"{n:,} bytes"
    if n < 1_000_000:
        return f"{n / 1000:.1f} KB"
    return f"{n / 1_000_000:.1f} MB"


def _first_line(text: str, limit: int = 200) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line and not line.lower().startswith(("check stderr", "error output:")):
            line = re.sub(r"^(error|api error)\s*:\s*", "", line, flags=re.I)
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""
