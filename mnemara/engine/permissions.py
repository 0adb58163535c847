"""Tool permissions: decide allow / ask / deny for every tool call the model makes.

The original mnemara never enforced its policy (it ran with `bypassPermissions`), so ask, deny,
patterns, `file_tool_home_only` and `bash_timeout_seconds` did nothing. This module is the pure
decision logic; the engine calls `decide` from the SDK's `can_use_tool` hook and the UI calls
`answer` with the user's y/n/a/s.

Order of rules in `decide` (first that applies wins):
  1. the matching policy says deny                          -> DENY
  2. a file tool touches a path outside $HOME (home-only on) -> DENY, even when mode is allow
  3. mode allow                                             -> ALLOW
  4. mode ask (or no policy at all: unknown tools ask)      -> ALLOW if a session grant, a config
     pattern or a saved "always" pattern covers the call, else ASK

Patterns are Python regexes (run by the `regex` package in its `re`-compatible V0 mode) searched
in the call's target (`tool_target`): write them anchored (`^git status$`, `^ls( |$)`); an
unanchored `git` would also allow `rm -rf / #git`. Tools without a target (MCP tools, or
Glob/Grep with no path) match against the compact JSON of their input (`{"a":1}`, keys sorted).

A Bash command is parsed (`shell.analyse`), because a pattern searched in the whole line let
`ls x && touch y` pass `^ls( |$)`. Patterns cover a Bash call when
  - one of them is an exact pattern (`^` + escaped text + `$`, which is what "always" saves) whose
    text is the whole command: the user approved exactly this line; or
  - the line has none of the constructs no pattern may approve (substitution, `&`, output to a
    file, a shell fed a script, ...: see shell.py) and every simple command in it matches a pattern.

Every match runs under a time limit (MATCH_TIMEOUT_SECONDS each, DECISION_BUDGET_SECONDS for one
call): a catastrophic pattern such as `(a|a)+$` then means "ask", with a reason naming it, instead
of a turn frozen for minutes. The gate runs `decide` in a worker thread so the event loop, and
Ctrl+C, stay responsive meanwhile.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..claude_tools import FILE_TOOLS, SEARCH_TOOLS, TARGET_KEYS, tool_target
from ..config import ToolPolicy
from ..fsutil import atomic_write_text
from ..termsafe import inert


class Decision(str, Enum):
    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    reason: str              # one sentence, shown to the model (on deny) or the user
    target: str | None       # what patterns were matched against (see tool_target)
    tool: str


_GLOB_CHARS = re.compile(r"[*?\[{]")
_DESCRIBE_MAX = 200
_REGEX_SPECIAL = frozenset(".^$*+?{}[]|()")

MATCH_TIMEOUT_SECONDS = 0.2      # one pattern against one text
DECISION_BUDGET_SECONDS = 1.0    # all the matching for one tool call


class _TimedOut(Exception):
    """A pattern ran past its time limit (or the call's budget ran out before it)."""

    def __init__(self, pattern: str, budget: bool) -> None:
        super().__init__(pattern)
        self.pattern = pattern
        self.budget = budget


def _exact_text(pattern: str) -> str | None:
    """The one string `pattern` matches when it is `^` + escaped literal text + `$` (what an
    "always" answer saves), else None. Such a pattern approves a Bash line only when the line is
    exactly that text, compound or not: that is the line the user approved."""
    if not pattern.startswith("^"):
        return None
    out, i, body = [], 1, pattern
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1:i + 2]
            if not nxt or nxt.isalnum() or nxt == "_":
                return None                  # \d, \n, \A ... are classes or anchors, not text
            out.append(nxt)
            i += 2
        elif ch == "$" and i == len(body) - 1:
            return "".join(out)
        elif ch in _REGEX_SPECIAL:
            return None
        else:
            out.append(ch)
            i += 1
    return None                              # no closing `$`: a prefix, not one exact line


def _match_text(tool_name: str, tool_input: dict) -> str:
    target = tool_target(tool_name, tool_input)
    if target is not None:
        return target
    return json.dumps(tool_input, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _printable(text: str) -> str:
    # Every control and format character shows (newlines, ANSI escapes, bidi overrides, even the
    # zero-width joiners) so a command cannot hide part of itself from the user reading the prompt.
    return inert(text, keep="")


def describe_call(tool_name: str, tool_input: dict) -> str:
    """One printable line for prompts and logs: `Bash: git status`, `mcp__srv__tool {"a":1}`."""
    target = tool_target(tool_name, tool_input)
    if tool_name in SEARCH_TOOLS and isinstance(tool_input.get("pattern"), str):
        text = f"{tool_name}: {tool_input['pattern']}" + (f" in {target}" if target else "")
    elif target is not None:
        text = f"{tool_name}: {target}"
    else:
        text = f"{tool_name} {_match_text(tool_name, tool_input)}"
    text = _printable(text)
    return text if len(text) <= _DESCRIBE_MAX else text[:_DESCRIBE_MAX - 1] + "…"


def _read_saved(path: Path) -> tuple[dict[str, list[str]], str | None]:
    """(patterns, problem) from permissions.json. A missing file is simply empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, f"{path}: cannot read saved permissions ({exc}); ignoring them."
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return {}, (f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                    "ignoring saved permissions.")
    if not (isinstance(data, dict) and all(
            isinstance(v, list) and all(isinstance(p, str) for p in v) for v in data.values())):
        return {}, f'{path}: expected {{"<tool>": ["<regex>", ...]}}; ignoring saved permissions.'
    return {k: list(v) for k, v in data.items()}, None


class PermissionPolicy:
    """The instance's tool policy plus saved ("always") and session grants."""

    def __init__(self, policies: Sequence[ToolPolicy], *, home: Path, file_tool_home_only: bool,
                 permissions_path: Path | None, cwd: Path | None = None,
                 session_grants: Iterable[str] = ()) -> None:
        # Exact names beat globs; within each group the listed order decides.
        self.policies = ([p for p in policies if not p.tool.endswith("*")]
                         + [p for p in policies if p.tool.endswith("*")])
        self.warnings: list[str] = []
        self._rules = [(p, self._compile(p.allowed_patterns, f"allowed_tools ({p.tool})"))
                       for p in self.policies]
        self.home = Path(home).expanduser()
        self._home_resolved = self.home.resolve()
        self.file_tool_home_only = file_tool_home_only
        self.permissions_path = Path(permissions_path) if permissions_path is not None else None
        self.cwd = Path(cwd).absolute() if cwd is not None else Path.cwd()
        self._saved: dict[str, list[Any]] = {}     # regex.Pattern, compiled by `_compile`
        self._session: set[str] = set(session_grants)  # "s" answers carried over a config change
        if self.permissions_path is not None:
            saved, problem = _read_saved(self.permissions_path)
            if problem:
                self.warnings.append(problem)
            self._apply_saved(saved)

    # --- deciding ----------------------------------------------------------------------------

    def policy_for(self, tool_name: str) -> ToolPolicy | None:
        """The policy that governs `tool_name`, or None (the tool then always asks)."""
        return next((p for p in self.policies if p.matches(tool_name)), None)

    def decide(self, tool_name: str, tool_input: dict) -> Verdict:
        target = tool_target(tool_name, tool_input)

        def verdict(decision: Decision, reason: str) -> Verdict:
            return Verdict(decision, reason, target, tool_name)

        policy, config_patterns = next(((p, rx) for p, rx in self._rules if p.matches(tool_name)),
                                       (None, []))
        if policy is not None and policy.mode == "deny":
            return verdict(Decision.DENY, f"{tool_name} is denied by this instance's policy.")
        refusal = self._outside_home(tool_name, tool_input)
        if refusal:
            return verdict(Decision.DENY, refusal)
        if policy is not None and policy.mode == "allow":
            return verdict(Decision.ALLOW, f"{tool_name} is allowed by this instance's policy.")

        if tool_name in self._session:
            return verdict(Decision.ALLOW, f"{tool_name} is allowed for this session.")
        patterns = ([(rx, "allowed") for rx in config_patterns]
                    + [(rx, "saved") for rx in self._saved.get(tool_name, [])])
        deadline = time.monotonic() + DECISION_BUDGET_SECONDS
        try:
            if tool_name == "Bash" and target is not None:
                allowed, why = self._bash_covered(target, patterns, deadline)
            else:
                hit = self._first_match(_match_text(tool_name, tool_input), patterns, deadline)
                allowed = hit is not None
                why = f"{tool_name} call matches {hit[1]} pattern {hit[0]!r}." if hit else ""
        except _TimedOut as exc:
            limit = (f"the {DECISION_BUDGET_SECONDS:g} s budget for one call ran out at pattern "
                     if exc.budget else f"matching took over {MATCH_TIMEOUT_SECONDS:g} s for pattern ")
            return verdict(Decision.ASK, f"{tool_name} needs approval: {limit}{exc.pattern!r}, "
                                         "so patterns were not trusted for this call.")
        if allowed:
            return verdict(Decision.ALLOW, why)
        if policy is None:
            return verdict(Decision.ASK, f"{tool_name} has no policy in allowed_tools, so it needs approval.")
        return verdict(Decision.ASK, why or f"{tool_name} is set to ask and no allowed pattern or "
                                            "grant covers this call.")

    def _bash_covered(self, command: str, patterns: list[tuple[Any, str]],
                      deadline: float) -> tuple[bool, str]:
        """(allowed, reason) for a Bash line under `patterns`; see the module docstring."""
        for rx, kind in patterns:
            if _exact_text(rx.pattern) == command:
                return True, f"Bash call matches {kind} pattern {rx.pattern!r}."
        from .shell import analyse

        parsed = analyse(command)
        if parsed.problems:
            return False, ("Bash needs approval: the command uses " + "; ".join(parsed.problems)
                           + ", which no allowed pattern or grant approves.")
        if not parsed.commands:
            return False, ""
        hits = []
        for simple in parsed.commands:
            hit = self._first_match(simple, patterns, deadline)
            if hit is None:
                where = "" if len(parsed.commands) == 1 else \
                    f" (one of the {len(parsed.commands)} commands in this line)"
                return False, (f"Bash is set to ask and {_printable(simple)!r}{where} matches no "
                               "allowed pattern or saved grant.")
            hits.append(hit)
        if len(hits) == 1:
            return True, f"Bash call matches {hits[0][1]} pattern {hits[0][0]!r}."
        shown = ", ".join(dict.fromkeys(repr(p) for p, _ in hits))
        return True, f"Each of the {len(hits)} commands in this Bash line matches a pattern ({shown})."

    @staticmethod
    def _first_match(text: str, patterns: list[tuple[Any, str]],
                     deadline: float) -> tuple[str, str] | None:
        """(pattern, "allowed"/"saved") of the first pattern found in `text`, under the limits."""
        for rx, kind in patterns:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _TimedOut(rx.pattern, budget=True)
            try:
                if rx.search(text, timeout=min(MATCH_TIMEOUT_SECONDS, remaining)) is not None:
                    return rx.pattern, kind
            except TimeoutError:
                raise _TimedOut(rx.pattern, budget=remaining < MATCH_TIMEOUT_SECONDS) from None
        return None

    def _outside_home(self, tool_name: str, tool_input: dict) -> str | None:
        """A refusal sentence if a file tool would touch a path outside home, else None."""
        if not self.file_tool_home_only or tool_name not in FILE_TOOLS:
            return None
        key = TARGET_KEYS[tool_name]
        raw = tool_input.get(key)
        if raw is None and tool_name in SEARCH_TOOLS:
            raw = str(self.cwd)           # no path: Glob/Grep search the working directory
        elif raw is None:
            return None                   # nothing to check; the tool rejects the call itself
        if not isinstance(raw, str):
            return f"{tool_name} refused: {key} must be a string path (file_tool_home_only is on)."
        paths = [raw]
        pattern = tool_input.get("pattern")
        if tool_name == "Glob" and isinstance(pattern, str):
            # An absolute or ../ pattern escapes `path`; check its literal (wildcard-free) prefix.
            parts = Path(pattern).parts
            literal = next((i for i, part in enumerate(parts) if _GLOB_CHARS.search(part)), len(parts))
            if literal:
                paths.append(os.path.join(self._expand(raw), *parts[:literal]))
        for p in paths:
            try:
                resolved = self._resolve(p)
            except (OSError, RuntimeError, ValueError) as exc:   # symlink loop, NUL byte...
                return f"{tool_name} refused: {p} cannot be resolved ({exc}) (file_tool_home_only is on)."
            if not resolved.is_relative_to(self._home_resolved):
                return (f"{tool_name} outside $HOME is refused: {p} resolves to {resolved} "
                        "(file_tool_home_only is on).")
        return None

    def _expand(self, raw: str) -> str:
        # `~` means the instance's home (which tests and sandboxes may set), not the process's.
        if raw == "~" or raw.startswith("~/"):
            return str(self.home) + raw[1:]
        return os.path.expanduser(raw)

    def _resolve(self, raw: str) -> Path:
        path = Path(self._expand(raw))
        if not path.is_absolute():
            path = self.cwd / path
        # Non-strict resolve follows every symlink in the longest existing prefix (including a
        # dangling final link) and appends the rest, so a new file under a symlinked directory,
        # or `..` after a link, lands where the kernel would put it.
        return path.resolve()

    # --- granting -----------------------------------------------------------------------------

    @property
    def session_grants(self) -> frozenset[str]:
        """Tools allowed for the rest of the session (the "s" answers so far)."""
        return frozenset(self._session)

    def grant_session(self, tool_name: str) -> None:
        """Allow `tool_name` (any input) until this object goes away. Never written to disk."""
        self._session.add(tool_name)

    def grant_always(self, tool_name: str, target: str | None) -> str:
        """Save an exact-match pattern for `target` and apply it now; returns the pattern.

        A tool with no target (e.g. an MCP tool) gets `.*`: "always" then means the whole tool.
        The file is re-read before writing so grants made by another process are kept; an
        unparseable file is moved aside to `permissions.json.corrupt` rather than lost. If the
        write fails the grant still holds in memory and a line is added to `warnings`.
        """
        # Spaces left unescaped so the file stays readable (patterns never use re.VERBOSE).
        pattern = ".*" if target is None else "^" + re.escape(target).replace("\\ ", " ") + "$"
        if self.permissions_path is None:
            self._apply_saved({tool_name: [pattern]}, merge=True)
            return pattern
        path = self.permissions_path
        saved, problem = _read_saved(path)
        try:
            if problem and path.is_file():
                os.replace(path, path.with_name(path.name + ".corrupt"))
            if pattern not in saved.setdefault(tool_name, []):
                saved[tool_name].append(pattern)
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, json.dumps(saved, indent=2, sort_keys=True) + "\n")
        except OSError as exc:
            self.warnings.append(f"{path}: could not save the 'always' grant for {tool_name} ({exc}); "
                                 "it holds for this session only.")
            self._apply_saved({tool_name: [pattern]}, merge=True)
            return pattern
        self._apply_saved(saved)   # the file is now the truth, including others' edits
        return pattern

    def answer(self, tool_name: str, tool_input: dict, choice: str) -> Verdict:
        """Apply the user's y(es once) / n(o) / a(lways) / s(ession) to a call that asked."""
        key = choice.strip().lower()
        if key not in ("y", "n", "a", "s"):
            raise ValueError(f"choice must be one of y, n, a, s; got {choice!r}")
        current = self.decide(tool_name, tool_input)
        if current.decision is Decision.DENY:
            return current                # a deny or home-only refusal cannot be answered away
        target = current.target
        if key == "n":
            return Verdict(Decision.DENY, f"The user declined this {tool_name} call.", target, tool_name)
        if key == "a":
            self.grant_always(tool_name, target)
            return Verdict(Decision.ALLOW, f"The user always allows this {tool_name} call.", target, tool_name)
        if key == "s":
            self.grant_session(tool_name)
            return Verdict(Decision.ALLOW, f"The user allowed {tool_name} for this session.", target, tool_name)
        return Verdict(Decision.ALLOW, f"The user allowed this {tool_name} call once.", target, tool_name)

    # --- input rewriting -----------------------------------------------------------------------

    @staticmethod
    def clamp_input(tool_name: str, tool_input: dict, bash_timeout_seconds: int) -> dict | None:
        """For Bash, a copy of the input whose `timeout` (ms) is at most the configured limit.

        Returns None when nothing needs to change. A missing, non-numeric or non-positive
        timeout is replaced by the limit, so every command runs under it.
        """
        if tool_name != "Bash":
            return None
        limit = bash_timeout_seconds * 1000
        given = tool_input.get("timeout")
        valid = isinstance(given, (int, float)) and not isinstance(given, bool) and given > 0
        if valid and given <= limit:
            return None
        return {**tool_input, "timeout": limit}

    # --- helpers -------------------------------------------------------------------------------

    def _compile(self, patterns: Sequence[str], where: str) -> list[Any]:
        # `regex` rather than `re`: only it can stop a match after a time limit. V0 keeps `re`'s
        # syntax, so a pattern means what the README (and Python's docs) say it means.
        import regex

        out = []
        for p in patterns:
            try:
                out.append(regex.compile(p, flags=regex.V0))
            except regex.error as exc:
                warning = f"{where}: pattern {p!r} is not a valid regex ({exc}); ignored."
                if warning not in self.warnings:
                    self.warnings.append(warning)
        return out

    def _apply_saved(self, saved: dict[str, list[str]], merge: bool = False) -> None:
        # Built aside and swapped in whole: `decide` may be reading `_saved` in a worker thread.
        fresh = dict(self._saved) if merge else {}
        for tool, patterns in saved.items():
            compiled = self._compile(patterns, f"saved permissions ({tool})")
            fresh[tool] = (fresh.get(tool, []) + compiled) if merge else compiled
        self._saved = fresh
