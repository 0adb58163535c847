"""The permission gate: the configured policy, enforced on every tool call.

Two SDK seams, both routed through one `PermissionPolicy`:
- a PreToolUse hook (fires for every tool call, built-in or MCP) answers allow or deny
  outright, and "ask" when the user must decide;
- `can_use_tool` (called by the CLI after an "ask") puts a `PermissionRequest` in front of the
  user and waits for y / n / a / s.
`allowed_tools` and `bypassPermissions` are never used: both would skip these seams.

Deciding (parsing a Bash line, matching patterns under their time limit) and answering (which
may write permissions.json) run in a worker thread: on the event loop they would hold up
everything else in the turn, Ctrl+C included, for as long as the slowest pattern takes.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from ..debuglog import DebugLog
from .events import PermissionRequest
from .permissions import Decision, PermissionPolicy, Verdict, describe_call

# How the gate settles an "ask" when nobody can be asked (one-shot mode): "deny" or "allow".
Emit = Callable[[Any], Awaitable[None]]


class PermissionGate:
    def __init__(self, policy: PermissionPolicy, *, bash_timeout_seconds: int, log: DebugLog,
                 emit: Emit, unattended: str | None = None) -> None:
        self.policy = policy
        self.bash_timeout_seconds = bash_timeout_seconds
        self.log = log
        self.emit = emit
        self.unattended = unattended
        self.denials: list[dict[str, Any]] = []

    def _record(self, tool: str, tool_input: dict[str, Any], decision: str, reason: str,
                via: str) -> None:
        self.log.write("tool_call", tool=tool, summary=describe_call(tool, tool_input),
                       decision=decision, reason=reason, via=via)
        if decision == "deny":
            self.denials.append({"tool": tool, "summary": describe_call(tool, tool_input),
                                 "reason": reason})

    def _clamped(self, tool: str, tool_input: dict[str, Any]) -> dict[str, Any] | None:
        return self.policy.clamp_input(tool, tool_input, self.bash_timeout_seconds)

    # --- the PreToolUse hook ----------------------------------------------------------------------
    async def pre_tool_use(self, hook_input: dict[str, Any], tool_use_id: str | None,
                           context: Any) -> dict[str, Any]:
        tool = hook_input.get("tool_name", "")
        tool_input = hook_input.get("tool_input") or {}
        verdict = await asyncio.to_thread(self.policy.decide, tool, tool_input)
        out: dict[str, Any] = {"hookEventName": "PreToolUse",
                               "permissionDecision": verdict.decision.value,
                               "permissionDecisionReason": verdict.reason}
        if verdict.decision is Decision.ALLOW:
            clamped = self._clamped(tool, tool_input)
            if clamped is not None:
                out["updatedInput"] = clamped
        if verdict.decision is not Decision.ASK:
            self._record(tool, tool_input, verdict.decision.value, verdict.reason, "policy")
        return {"hookSpecificOutput": out}

    # --- can_use_tool -------------------------------------------------------------------------------
    async def can_use_tool(self, tool: str, tool_input: dict[str, Any], context: Any) -> Any:
        from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny

        # Again: a grant may have changed it since the hook ran.
        verdict = await asyncio.to_thread(self.policy.decide, tool, tool_input)
        if verdict.decision is Decision.ASK:
            verdict = await self._ask(tool, tool_input, verdict)
        if verdict.decision is Decision.ALLOW:
            return PermissionResultAllow(updated_input=self._clamped(tool, tool_input) or tool_input)
        return PermissionResultDeny(message=verdict.reason)

    async def _ask(self, tool: str, tool_input: dict[str, Any], verdict: Verdict) -> Verdict:
        if self.unattended is not None:
            choice, via = ("y", "unattended --yes") if self.unattended == "allow" else ("n", "unattended")
            result = await asyncio.to_thread(self.policy.answer, tool, tool_input, choice)
            if result.decision is Decision.DENY:
                result = Verdict(Decision.DENY, f"{tool} needs approval, and nobody can be asked in "
                                 "this mode (use --yes to allow ask-mode tools).", result.target, tool)
            self._record(tool, tool_input, result.decision.value, result.reason, via)
            return result
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        request = PermissionRequest(tool, dict(tool_input), describe_call(tool, tool_input),
                                    verdict.reason, _future=future)
        await self.emit(request)
        choice = await future
        result = await asyncio.to_thread(self.policy.answer, tool, tool_input, choice)
        self._record(tool, tool_input, result.decision.value, result.reason, f"user:{choice}")
        return result
