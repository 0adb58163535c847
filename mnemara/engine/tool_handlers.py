"""What the in-process model tools do. Their names, descriptions and schemas live in `tools.py`.

Each handler takes the `ToolContext` and arguments already checked against its schema (defaults
applied), and returns the text the model sees. A failure the model can act on is a `ToolError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from ..config import Config
from ..instance import Instance
from ..store.turns import Turn, TurnStore
from ..claude_tools import summarize_tool_call
from .events import SessionStats

class ToolError(Exception):
    """A failure the model should read and can fix (bad id, bad duration, ...)."""


def _no_notice(kind: str, text: str) -> None:
    pass


@dataclass
class ToolContext:
    """Everything a tool may touch. The engine owns it and updates it between turns."""

    instance: Instance
    config: Config  # replaced when the user changes the config (/swap, /tokens): read it per call
    store: TurnStore
    stats: SessionStats
    notify: Callable[[str, str], None] = _no_notice  # (kind, text): eviction, warning, error
    system_prompt_tokens: int = 0  # the engine sets it each turn
    memory: Any = None  # the MemoryService; made on first use when the engine did not give one
    last_recall: Any = None  # the engine's latest RecallPick, for inspect_context
    # How a tool changes the config (tune_window): the engine's set_config, so the next turn's
    # budget uses it and config.json keeps it. None: save it and update this context only.
    apply_config: Callable[[Config], None] | None = None

    def set_config(self, config: Config) -> None:
        """Make `config` the instance's config, for this session and the next."""
        if self.apply_config is not None:
            self.apply_config(config)
        else:
            self.instance.save_config(config)
        self.config = config

    def memory_service(self) -> Any:
        if self.memory is None:
            from ..memory.service import MemoryService
            self.memory = MemoryService(self.instance, self.config)
        self.memory.config = self.config  # the user may have changed it since (/recall, /tokens)
        return self.memory


# --- memory ------------------------------------------------------------------------------------

def write_memory(ctx: ToolContext, args: dict[str, Any]) -> str:
    from ..memory.writes import write_note
    text, category = args["text"], args["category"]
    payload = {k: v for k, v in (args.get("payload") or {}).items() if v not in (None, "")} or None
    try:
        with ctx.memory_service().locked_store() as store:
            written = write_note(ctx.instance, store, ctx.config, text, category, payload)
    except ValueError as exc:  # empty text, bad category, bad wiki slug
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"could not write the memory file: {exc}") from None
    reply = f"Saved a {category!r} note to {_shown(ctx, written.path)} (id {written.id})."
    if written.wiki is not None:
        reply += f" Also appended to the wiki page {written.wiki.slug!r}."
    return reply


def propose_role_amendment(ctx: ToolContext, args: dict[str, Any]) -> str:
    text, rationale, severity = args["text"].strip(), args["rationale"].strip(), args["severity"]
    if not text:
        raise ToolError("the proposed text is empty")
    # One proposal store for replay and the model (mnemara/replay/proposals.py): the user reviews
    # both with `mnemara proposals` / `/proposals`. The text is the identity, so the same
    # amendment is stored once, and one the user rejected is never proposed again.
    from ..replay.proposals import ProposalSource, ProposalStore, model_amendment
    store = ProposalStore(ctx.instance)
    sources = [ProposalSource(f"turn:{t.id}", "turn", f"turn {t.id}", t.created_at,
                              " ".join(t.text.split())[:300])
               for t in ctx.store.window()[-2:] if t.text.strip()]
    proposal = model_amendment(
        text, f"severity {severity}: {' '.join(rationale.split()) or '(no rationale given)'}",
        sources)
    try:
        added = store.add(proposal)
    except OSError as exc:
        raise ToolError(f"could not write the proposal: {exc}") from None
    if not added:
        decided = next((p for p in store.list() if p.fingerprint == proposal.fingerprint), None)
        status = decided.status if decided else "pending"
        return (f"This amendment was proposed before (proposal {proposal.id}, {status}); "
                "nothing new was saved.")
    ctx.notify("info", f"role amendment proposed ({severity}): proposal {proposal.id}; "
                       f"review it with /proposals")
    return (f"Proposal {proposal.id} saved for the user to review (`mnemara proposals`, "
            "/proposals); nothing was applied.")


# --- the window --------------------------------------------------------------------------------

def inspect_context(ctx: ToolContext, args: dict[str, Any]) -> str:
    cfg, store, stats = ctx.config, ctx.store, ctx.stats
    rows = store.window()
    pinned = sum(t.pinned for t in rows)
    unsent = sum(t.status == "failed" for t in rows)
    window_tokens = store.window_tokens()
    total = window_tokens + ctx.system_prompt_tokens
    u = stats.last_usage
    hit = u.cache_hit_ratio
    cost = f"${stats.session_cost_usd:.4f} over {stats.turns_run} turn(s)"
    if stats.last_cost_usd is not None:
        cost += f" (last turn ${stats.last_cost_usd:.4f})"
    est = store.estimator
    lines = [
        f"Context of instance {ctx.instance.name!r} (model {cfg.model})",
        f"- window rows: {len(rows) - unsent} / {cfg.max_window_turns} max_window_turns"
        f" ({pinned} pinned{f', {unsent} failed and not sent' if unsent else ''})",
        f"- estimated tokens: ~{window_tokens:,} window / {cfg.max_window_tokens:,} max_window_tokens"
        f" ({_pct(window_tokens, cfg.max_window_tokens)}); + ~{ctx.system_prompt_tokens:,} system"
        f" prompt = ~{total:,} sent",
        f"- archived turns: {store.archived_count():,} ({stats.archived_this_session} this session)",
        f"- last request usage: input {u.input_tokens:,}, output {u.output_tokens:,}, cache read"
        f" {u.cache_read_input_tokens:,}, cache creation {u.cache_creation_input_tokens:,}",
        f"- cache hit ratio: {'n/a (no request yet)' if hit is None else f'{hit:.0%}'}",
        f"- session cost: {cost}",
        f"- token estimate: {est.chars_per_token:.2f} chars/token"
        f" ({f'calibrated from {est.samples} request(s)' if est.samples else 'default, not calibrated yet'})",
    ]
    lines.append(_recall_line(ctx))
    from ..memory.slots import context_line
    lines.append("- " + context_line(ctx.store, cfg))
    evictions = store.evictions(5)
    lines.append("- recent evictions:" if evictions else "- recent evictions: none")
    lines += [f"  - {e['at']}: {e['turns']} turn(s), ~{e['est_tokens']:,} tokens ({e['reason']})"
              for e in evictions]
    return "\n".join(lines)


def _recall_line(ctx: ToolContext) -> str:
    cfg = ctx.config
    if not cfg.rag_enabled:
        return "- memory: off (rag_enabled is false); nothing is recalled"
    picked = ctx.last_recall
    state = "auto" if cfg.recall == "auto" else "off (rag_query still searches)"
    line = f"- recall: {state}, threshold {cfg.recall_min_score:.2f}, at most {cfg.recall_k} memories"
    if picked is not None and picked.block:
        ids = ", ".join(i["id"] for i in picked.block["items"])
        line += f"; this turn recalled {len(picked.block['items'])} (~{picked.tokens:,} tokens): {ids}"
    elif picked is not None:
        line += f"; nothing recalled this turn ({picked.considered} candidate(s) below the threshold)"
    memory = ctx.stats.memory
    if memory is not None:
        line += f"\n- memory index: {memory.line()}"
    return line


def pin_turn(ctx: ToolContext, args: dict[str, Any]) -> str:
    return _set_pins(ctx, args["ids"], True)


def unpin_turn(ctx: ToolContext, args: dict[str, Any]) -> str:
    return _set_pins(ctx, args["ids"], False)


def _set_pins(ctx: ToolContext, ids: list[int], pinned: bool) -> str:
    wanted = sorted(set(ids))
    before = {t.id: t.pinned for t in ctx.store.window()}
    found = ctx.store.set_pinned(wanted, pinned)
    changed = [i for i in found if before.get(i) != pinned]
    verb = "pinned" if pinned else "unpinned"
    parts = [f"{verb.capitalize()}: {_ids(changed)}." if changed else f"Nothing {verb}."]
    if unchanged := [i for i in found if i not in changed]:
        parts.append(f"Already {verb}: {_ids(unchanged)}.")
    if missing := [i for i in wanted if i not in found]:
        parts.append(f"Not in the window: {_ids(missing)}.")
    if pinned and changed:
        parts.append("Pinned turns are evicted last, only when the budget cannot be met otherwise.")
    return " ".join(parts)


def evict_turns(ctx: ToolContext, args: dict[str, Any]) -> str:
    ids, older_than = args.get("ids"), args.get("older_than")
    if (ids is None) == (older_than is None):
        raise ToolError("give exactly one of `ids` (turn ids to archive) or `older_than` "
                        "(a duration such as \"30m\", \"2h\" or \"3d\")")
    rows = {t.id: t for t in ctx.store.window()}
    skipped: list[str] = []
    if ids is not None:
        wanted = sorted(set(ids))
        skipped += [f"#{i} (not in the window)" for i in wanted if i not in rows]
        candidates = [rows[i] for i in wanted if i in rows]
    else:
        cutoff = (datetime.now(timezone.utc) - parse_duration(older_than)).strftime("%Y-%m-%dT%H:%M:%SZ")
        candidates = [t for t in rows.values() if t.created_at < cutoff]
    chosen = []
    for t in candidates:
        if t.status == "pending":
            skipped.append(f"#{t.id} (the turn being answered now)")
        elif t.pinned:
            skipped.append(f"#{t.id} (pinned: unpin it first)")
        else:
            chosen.append(t.id)
    eviction = ctx.store.evict(chosen, "model") if chosen else None
    if eviction is None:
        reply = "Nothing archived."
    else:
        n = len(eviction.ids)
        ctx.stats.archived_this_session += n
        ctx.notify("eviction", f"{n} turn{'s' if n != 1 else ''} archived by the model")
        reply = (f"Archived {_ids(eviction.ids)} (~{eviction.est_tokens:,} estimated tokens freed). "
                 "They left the window but stay searchable in the archive.")
    if skipped:
        reply += " Skipped: " + ", ".join(sorted(skipped, key=lambda s: int(s[1:].split()[0]))) + "."
    return reply


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`"30m"`, `"2h"`, `"3d"`, `"1h30m"` (units s, m, h, d, w) as a timedelta."""
    compact = text.strip().lower()
    parts = _DURATION.findall(compact)
    if not parts or _DURATION.sub("", compact).strip():
        raise ToolError(f"older_than {text!r} is not a duration; use a number and a unit "
                        "(s, m, h, d, w), for example \"30m\", \"2h\", \"3d\" or \"1h30m\"")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ToolError("older_than must be longer than zero")
    return timedelta(seconds=seconds)


def list_window(ctx: ToolContext, args: dict[str, Any]) -> str:
    total = ctx.store.count()
    limit = args.get("limit")
    rows = ctx.store.window(limit)
    if not rows:
        return "The window is empty."
    head = f"{total} row(s) in the window" + (f", the last {len(rows)} shown" if len(rows) < total else "")
    lines = [head + " (id, role, time, estimated tokens, flags, start):"]
    for t in rows:
        flags = ",".join(f for f, on in (("pinned", t.pinned), (t.status, t.status != "complete")) if on)
        lines.append(f"#{t.id} {t.role} {t.created_at} ~{t.est_tokens:,} tok"
                     f"{f' [{flags}]' if flags else ''}: {_gist(t)}")
    return "\n".join(lines)


def _gist(turn: Turn, limit: int = 80) -> str:
    """The first ~80 characters of the text, else a summary of the tool calls."""
    text = " ".join(turn.text.split())
    calls = [summarize_tool_call(b.get("name", "?"), b.get("input") or {}, 60)
             for b in turn.blocks if b.get("type") == "tool_use"]
    more = f"; +{len(calls) - 1} more" if len(calls) > 1 else ""
    if text:
        gist = text if len(text) <= limit else text[: limit - 1] + "…"
        return gist + (f" [tools: {calls[0]}{more}]" if calls else "")
    summary = next((b for b in turn.blocks if b.get("type") == "summary"), None)
    if summary is not None:  # /compress: say which archived turns it stands for
        from ..store.blocks import id_ranges
        return f"summary of archived turns {id_ranges(summary.get('turn_ids') or [])}"
    return calls[0] + more if calls else "(no text)"


# --- formatting --------------------------------------------------------------------------------

def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{i}" for i in ids)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _shown(ctx: ToolContext, path: Path) -> str:
    """A path relative to the instance directory when it lies inside it."""
    try:
        return str(path.relative_to(ctx.instance.root))
    except ValueError:
        return str(path)
