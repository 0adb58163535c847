"""`/compress` that loses nothing: the oldest window turns become one summary turn.

The model writes a summary of turns chosen from the oldest end of the window (by default, what
the next eviction would take); the user reads it before it is kept. Kept, the summary is a pinned
turn whose `summary` block names every turn it covers, and those turns move to the archive as an
eviction would move them: still searchable, recalled when relevant, readable with `read_turns`.
`undo` brings them back (byte for byte: their stored renderings are unchanged, so the request is
what it was before the compress) while they fit the budget, and archives the summary.

The user's words survive verbatim where the summary quotes them: the model is told to quote a
decision in the user's own words, and every quotation in its summary is checked against the
covered turns; one that is not verbatim is shown before the summary is kept and marked as such in
what the model reads. Nothing is attached by guesswork.

`auto_compress` (config) runs the same operation, without the question, where the budget would
otherwise evict (`compress_before_eviction`, called by the turn engine).

The summary request continues the session's own request (its tools, system prompt and window,
byte for byte, then the instruction), so the prompt cache serves all but the newest reply and
the instruction; a request of its own would re-send the covered turns uncached each time.

No UI imports; the SDK is imported only when a summary is written.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MnemaraError
from ..store.blocks import id_ranges, summary_block
from ..store.turns import Turn, utc_now
from ..store.window import Budget, plan_eviction

if TYPE_CHECKING:
    from ..config import Config
    from ..engine.turn import TurnEngine
    from ..store.turns import TurnStore

COMPRESS_REASON = "compressed"        # archive_reason of the turns a summary covers
UNDO_REASON = "compress undone"       # archive_reason of a summary taken back
LOW_WATER = 0.75                      # as the engine's eviction: a chunk frees the top quarter
KEEP_NEWEST = 2                       # the default never summarises the newest exchange
MAX_COVERED_TOKENS = 150_000          # most estimated tokens one summary request carries
SUMMARY_WORDS = (60, 1500)            # bounds of the summary length asked for
NEXT_EXCHANGE_TURNS = 2               # undo leaves room for the next message and its reply
_COLUMNS = ("id, role, content, rendered, created_at, model, est_tokens, usage, cost_usd, status,"
            " pinned")

#: Where the summary request's instruction starts: after the window, as the last block of the
#: session's own request (tests and the cache benchmark tell a summary request by it).
REQUEST_MARK = "<summary-request"

INSTRUCTION = """\
<summary-request turns="{ids}">
Do not answer the conversation above and call no tool. Write a summary of its oldest {n} \
turn{s} ({ids}): they are about to leave your context window. You keep only the summary; the \
turns themselves stay in an archive you can read back by id (read_turns).

Write what you need to carry on as if you still had those turns:
- the decisions made, who made them and why; facts, names, numbers, paths, commands and errors \
that still matter; what was done and what is still open.
- Where the user decided, asked for, corrected or ruled out something, quote the user's own words \
verbatim in double quotes, followed by the turn id, e.g. "use Postgres, not MySQL" (#12). Copy a \
quote character for character; never paraphrase inside quotation marks; quote nothing else.
- Cite turn ids (#N) so you know which turn to read back for detail.
- Summarize only {ids}; the later turns stay in the window as they are. Invent nothing. Plain \
prose or short bullet lists; no preamble, no closing remarks.
- At most {words} words. Reply with the summary alone.
</summary-request>"""


class CompressRefused(MnemaraError):
    """Nothing to compress, a summary that would not help, or an undo that does not fit: one
    line saying why; nothing was changed."""


@dataclass(frozen=True)
class Quote:
    """A quotation in the summary, and the covered turn that holds it verbatim (None: none)."""

    text: str
    turn_id: int | None = None
    role: str | None = None


@dataclass(frozen=True)
class Proposal:
    """A summary written but not kept yet: what the user is shown before anything changes."""

    turns: tuple[Turn, ...]
    summary: str
    model: str
    quotes: tuple[Quote, ...] = ()
    cost_usd: float | None = None
    summary_tokens: int = 0  # estimated tokens of the summary turn as it will be sent

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.turns]

    @property
    def covered_tokens(self) -> int:
        return sum(t.est_tokens for t in self.turns)

    @property
    def unverified(self) -> list[str]:
        return [q.text for q in self.quotes if q.turn_id is None]

    def block(self) -> dict[str, Any]:
        return summary_block(self.summary, self.ids, first_at=self.turns[0].created_at,
                             last_at=self.turns[-1].created_at, model=self.model,
                             quotes=[q.__dict__ for q in self.quotes])

    def heading(self) -> str:
        n = len(self.turns)
        return (f"summary of {n} turn{'s' if n != 1 else ''} ({id_ranges(self.ids)}, "
                f"~{self.covered_tokens:,} tokens -> ~{self.summary_tokens:,}), written by {self.model}"
                + (f" for ${self.cost_usd:.4f}" if self.cost_usd else ""))

    def preview(self) -> str:
        """The summary as the user reads it before keeping it, with the quotation check."""
        lines = [self.heading(), "", self.summary.strip(), ""]
        users = [q for q in self.quotes if q.turn_id is not None and q.role == "user"]
        others = [q for q in self.quotes if q.turn_id is not None and q.role != "user"]
        if users:
            lines.append(f"✓ {len(users)} quotation{'s' if len(users) != 1 else ''} verbatim from "
                         f"your messages ({', '.join(sorted({f'#{q.turn_id}' for q in users}))})")
        if others:
            lines.append(f"✓ {len(others)} quotation{'s' if len(others) != 1 else ''} verbatim "
                         "from the assistant's turns")
        for text in self.unverified:
            lines.append(f"✗ not verbatim in the covered turns: \"{text}\"")
        if not self.quotes:
            lines.append("(no quotations)")
        lines.append("Kept, it takes those turns' place in the window as a pinned turn; they move "
                     "to the archive (searchable, recallable, read_turns) and /compress undo "
                     "brings them back.")
        return "\n".join(lines)


@dataclass
class Undone:
    summary_id: int
    restored: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)

    def sentence(self) -> str:
        n = len(self.restored)
        text = (f"{n} turn{'s' if n != 1 else ''} ({id_ranges(self.restored)}) back in the window; "
                f"summary #{self.summary_id} moved to the archive")
        if self.missing:
            text += f" ({id_ranges(self.missing)} no longer in the archive)"
        return text


# --- which turns ---------------------------------------------------------------------------------

def candidates(store: "TurnStore") -> list[Turn]:
    """Window turns a summary may cover: sent to the model (complete or interrupted) and not
    pinned (pinned turns, earlier summaries among them, stay as they are)."""
    return [t for t in store.window() if t.status in ("complete", "interrupted") and not t.pinned]


def select(store: "TurnStore", config: "Config", spec: str, *, system_tokens: int = 0,
           now: datetime | None = None) -> list[Turn]:
    """The turns `/compress SPEC` covers, oldest first: `""` what the next eviction would take,
    `"N"` the oldest N, `"older 2h"` those older than a duration. Raises CompressRefused."""
    spec = spec.strip().lower()
    pool = candidates(store)
    if spec.isdigit():
        n = int(spec)
        if n < 1:
            raise CompressRefused("give a number of turns of at least 1, e.g. /compress 6")
        chosen = pool[:n]
    elif spec.startswith("older"):
        from ..engine.tool_handlers import ToolError, parse_duration
        try:
            age = parse_duration(spec[len("older"):].strip() or "?")
        except ToolError:
            raise CompressRefused("usage: /compress older DURATION (e.g. 30m, 2h, 3d)") from None
        cutoff = ((now or datetime.now(timezone.utc)) - age).strftime("%Y-%m-%dT%H:%M:%SZ")
        chosen = [t for t in pool if t.created_at < cutoff]
    elif not spec:
        chosen = next_eviction(store, config, system_tokens, pool)
    else:
        raise CompressRefused("usage: /compress [N | older DURATION | undo [ID]]")
    chosen = within_request_cap(chosen)
    if not chosen:
        raise CompressRefused("nothing to compress: no unpinned turn of the window matches"
                              + ("" if spec else " (the newest exchange always stays)"))
    return chosen


def next_eviction(store: "TurnStore", config: "Config", system_tokens: int,
                  pool: list[Turn]) -> list[Turn]:
    """What the next eviction would take, never the newest exchange: when the next turn must
    evict, exactly its unpinned turns; otherwise the oldest unpinned turns making up the chunk
    that brings a full window down to its low-water mark (the top quarter of the turn or the
    token budget, whichever is reached first)."""
    room = max(1, config.max_window_tokens - system_tokens)
    costs = store.costs()
    newest = {r.id for r in costs[-KEEP_NEWEST:]}
    due = set(plan_eviction(costs, Budget(config.max_window_turns, room), incoming_turns=2,
                            low_water=LOW_WATER))
    if due:
        return [t for t in pool if t.id in due and t.id not in newest]
    turn_chunk = config.max_window_turns - math.floor(config.max_window_turns * LOW_WATER)
    token_chunk = room - math.floor(room * LOW_WATER)
    chosen: list[Turn] = []
    tokens = 0
    for turn in pool:
        if turn.id in newest or len(chosen) >= turn_chunk or tokens >= token_chunk:
            break
        chosen.append(turn)
        tokens += turn.est_tokens
    return chosen


def within_request_cap(turns: list[Turn]) -> list[Turn]:
    """The oldest of `turns` that one summary request can carry (MAX_COVERED_TOKENS)."""
    out, tokens = [], 0
    for turn in turns:
        tokens += turn.est_tokens
        if tokens > MAX_COVERED_TOKENS and out:
            break
        out.append(turn)
    return out


# --- the summary ----------------------------------------------------------------------------------

def summary_words(turns: list[Turn]) -> int:
    """How long a summary to ask for: about a fifth of what it replaces, within SUMMARY_WORDS."""
    covered = sum(t.est_tokens for t in turns)
    return max(SUMMARY_WORDS[0], min(SUMMARY_WORDS[1], round(covered * 0.15)))


def instruction(turns: list[Turn]) -> str:
    """The summarize instruction that ends the summary request."""
    n = len(turns)
    return INSTRUCTION.format(ids=id_ranges([t.id for t in turns]), n=n, s="s" if n != 1 else "",
                              words=summary_words(turns))


def request_blocks(window: list[str], turns: list[Turn]) -> list[dict[str, Any]]:
    """The summary request's message: the session's window exactly as its turns are sent (one
    block per turn, byte for byte), then the instruction.

    Why the whole window and not just the covered turns: the request is then the previous turn's
    request continued (same tools, same system prompt, same blocks), so the prompt cache serves
    everything up to the newest turn, the covered turns included, and only the last reply and the
    instruction are read afresh. A request of its own would send the covered turns uncached."""
    from ..engine.prompt import window_blocks
    return [*window_blocks(window), {"type": "text", "text": instruction(turns)}]


class _DenyEveryTool:
    """The summary request offers the session's tools (they are part of the cached prefix) but
    runs none: the PreToolUse hook and the permission callback both refuse every call."""

    REASON = "no tool runs while a summary is written; reply with the summary text alone"

    async def pre_tool_use(self, hook_input: dict[str, Any], tool_use_id: str | None,
                           context: Any) -> dict[str, Any]:
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                       "permissionDecisionReason": self.REASON}}

    async def can_use_tool(self, tool: str, tool_input: dict[str, Any], context: Any) -> Any:
        from claude_agent_sdk import PermissionResultDeny
        return PermissionResultDeny(message=self.REASON)


class CompressCancelled(CompressRefused):
    """Ctrl+C or /stop while the summary was being written: nothing was kept."""


async def write_summary(engine: "TurnEngine", turns: list[Turn]) -> Proposal:
    """Ask the model for a summary of `turns` as a continuation of the session's own request
    (the session's options: tools, system prompt and MCP servers, with every tool call refused
    and one model step; model `compress_model` or the session's), the window as it is sent and
    the instruction last. Nothing is stored.

    While it runs the engine is busy, so Ctrl+C and /stop (`engine.interrupt`) cancel it, as
    they stop a turn: CompressCancelled. Raises CompressRefused with the failure sentence when
    the query fails or the summary would not make room."""
    from ..engine.oneshot import STDERR_LINES, AskFailed, ask_once
    from ..engine.prompt import read_role_doc, user_message
    cfg = engine.config
    model = cfg.compress_model or cfg.model
    stderr: deque[str] = deque(maxlen=STDERR_LINES)
    window = engine.store.sendable_renderings()
    options = replace(engine._options(read_role_doc(cfg.role_doc_path).text, _DenyEveryTool(),
                                      stderr), model=model, max_turns=1)
    message = user_message(request_blocks(window, turns))
    # A /compress typed between turns owns the engine for its duration (busy: /stop and Ctrl+C
    # reach it; other commands that change the window wait); auto_compress runs inside a turn,
    # which already owns it and whose early Ctrl+C must stick.
    owner = not engine.busy
    if owner:
        engine._interrupted = False
        engine.busy = True
        engine.activity = "summary"

    def attach(client: Any) -> None:
        engine._client = client  # where `engine.interrupt` (/stop, Ctrl+C) finds it

    try:
        answer = await ask_once(options, message, front_end=engine.front_end,
                                stderr=lambda: list(stderr), attach=attach,
                                stopped=lambda: engine._interrupted)
    except AskFailed as exc:
        if engine._interrupted:
            raise CompressCancelled(CANCELLED) from None
        engine.log.write("compress_failed", error=exc.reason,
                         exception=f"{type(exc.exception).__name__}: {exc.exception}")
        raise CompressRefused(f"no summary was written: {exc.reason}; nothing changed") from None
    finally:
        if owner:
            engine.busy = False
            engine.activity = "turn"
    cost = answer.cost_usd
    if cost:
        engine.stats.session_cost_usd += cost
    if engine._interrupted:
        engine.log.write("compress_cancelled", ids=[t.id for t in turns])
        raise CompressCancelled(CANCELLED)
    if answer.error is not None:
        engine.log.write("compress_failed", error=answer.error)
        raise CompressRefused(f"no summary was written: {answer.error}; nothing changed")
    summary = answer.text
    if not summary:
        raise CompressRefused("the model returned an empty summary; nothing changed")
    proposal = Proposal(tuple(turns), summary, model, tuple(check_quotes(summary, turns)), cost)
    tokens = summary_tokens(engine.store, proposal)
    proposal = replace(proposal, summary_tokens=tokens)
    if tokens >= proposal.covered_tokens:
        raise CompressRefused(f"the summary (~{tokens:,} tokens) is not smaller than the "
                              f"{len(turns)} turns it would replace (~{proposal.covered_tokens:,}); "
                              "nothing changed")
    engine.log.write("compress_summary", ids=proposal.ids, model=model, tokens=tokens,
                     unverified=len(proposal.unverified))
    return proposal


CANCELLED = "summary cancelled; nothing changed"


def summary_tokens(store: "TurnStore", proposal: Proposal) -> int:
    """Estimated tokens of the summary turn as it will be rendered and sent."""
    from ..store.render import render_turn
    rendered = render_turn(0, "assistant", utc_now(), [proposal.block()])
    return store.estimator.estimate_chars(len(rendered) + 8)  # room for a longer id


_QUOTED = re.compile(r'"([^"\n]{6,}?)"|“([^”\n]{6,}?)”|^\s*>\s?(.{6,})$', re.M)


def check_quotes(summary: str, turns: list[Turn]) -> list[Quote]:
    """Every quotation in `summary` ("…", “…” or a `> ` line), with the covered turn holding
    it verbatim: the user's turns first, then any other. Whitespace runs count as one space and
    closing punctuation inside the marks is forgiven; anything else must match exactly."""
    from ..store.render import plain_text

    def norm(text: str) -> str:
        return " ".join(text.split())

    bodies = [(t, norm(t.text if t.role == "user" else plain_text(t.blocks))) for t in turns]
    ordered = [b for b in bodies if b[0].role == "user"] + [b for b in bodies if b[0].role != "user"]
    quotes: list[Quote] = []
    for match in _QUOTED.finditer(summary):
        text = norm(next(g for g in match.groups() if g))
        probe = text.rstrip(".,;:!?")
        if not probe or any(q.text == text for q in quotes):
            continue
        hit = next((t for t, body in ordered if probe in body), None)
        quotes.append(Quote(text, hit.id if hit else None, hit.role if hit else None))
    return quotes


# --- keep, undo -----------------------------------------------------------------------------------

def keep(store: "TurnStore", proposal: Proposal) -> Turn:
    """Store the summary as a pinned turn and move the turns it covers to the archive, in one
    transaction; refused (nothing changed) when any of them left the window meanwhile."""
    with store.transaction():
        marks = ",".join("?" * len(proposal.ids))
        present = {r[0] for r in store.conn.execute(
            f"SELECT id FROM turns WHERE id IN ({marks})", proposal.ids)}
        if present != set(proposal.ids):
            gone = [i for i in proposal.ids if i not in present]
            raise CompressRefused(f"the window changed while the summary was written ("
                                  f"{id_ranges(gone)} left it); nothing changed: run /compress again")
        turn = store.add_turn("assistant", [proposal.block()], model=proposal.model,
                              cost_usd=proposal.cost_usd)
        store.set_pinned([turn.id])
        store.evict(proposal.ids, COMPRESS_REASON)
        return store.get(turn.id)


def kept_sentence(proposal: Proposal, turn: Turn) -> str:
    n = len(proposal.turns)
    return (f"{n} turn{'s' if n != 1 else ''} ({id_ranges(proposal.ids)}, ~{proposal.covered_tokens:,} "
            f"tokens) moved to the archive; the window holds their summary as pinned turn "
            f"#{turn.id} (~{turn.est_tokens:,} tokens). /compress undo brings them back.")


def summaries(store: "TurnStore") -> list[Turn]:
    """Summary turns in the window, oldest first."""
    return [t for t in store.window() if summary_of(t) is not None]


def summary_of(turn: Turn) -> dict[str, Any] | None:
    return next((b for b in turn.blocks if b.get("type") == "summary"), None)


def undo(store: "TurnStore", config: "Config", *, system_tokens: int = 0,
         summary_id: int | None = None) -> Undone:
    """Bring the turns a summary covers back into the window (the newest summary, or
    `summary_id`) and archive the summary, when they fit the budget with room for the next
    exchange; refused with the figures otherwise. Restored rows are the archived rows as they
    were, so they render byte for byte as before the compress."""
    with store.transaction():
        found = summaries(store)
        if summary_id is not None:
            found = [t for t in found if t.id == summary_id]
            if not found:
                raise CompressRefused(f"turn #{summary_id} is not a summary in the window "
                                      "(/context lists the window)")
        if not found:
            raise CompressRefused("no summary in the window to undo")
        target = found[-1]
        block = summary_of(target) or {}
        covered = [int(i) for i in block.get("turn_ids") or []]
        marks = ",".join("?" * len(covered)) or "NULL"
        rows = store.conn.execute(f"SELECT id, rendered FROM archive WHERE id IN ({marks})",
                                  covered).fetchall()
        restored = sorted(r[0] for r in rows)
        est = {r[0]: store.estimator.estimate_chars(len(r[1])) for r in rows}
        costs = [c for c in store.costs() if c.id != target.id]
        turns = len(costs) + len(restored) + NEXT_EXCHANGE_TURNS
        tokens = sum(c.est_tokens for c in costs) + sum(est.values())
        budget = Budget(config.max_window_turns, max(1, config.max_window_tokens - system_tokens))
        if restored and not budget.fits(turns, tokens):
            raise CompressRefused(
                f"the {len(restored)} turns of summary #{target.id} no longer fit the window: it "
                f"would hold {turns - NEXT_EXCHANGE_TURNS} turns, ~{tokens:,} tokens with room for "
                f"the next exchange, over the budget of {budget.max_turns} turns, "
                f"~{budget.max_tokens:,} tokens; evict or raise the budget (/tokens) first, or read "
                "them with read_turns")
        if restored:
            keys = ",".join("?" * len(restored))
            store.conn.execute(f"INSERT INTO turns ({_COLUMNS}) SELECT {_COLUMNS} FROM archive"
                               f" WHERE id IN ({keys})", restored)
            store.conn.execute(f"DELETE FROM archive WHERE id IN ({keys})", restored)
            store.conn.executemany("UPDATE turns SET est_tokens = ? WHERE id = ?",
                                   [(est[i], i) for i in restored])
        store.evict([target.id], UNDO_REASON)
    return Undone(target.id, restored, [i for i in covered if i not in restored])


# --- auto_compress --------------------------------------------------------------------------------

async def compress_before_eviction(engine: "TurnEngine", budget: Budget, *, incoming_tokens: int,
                                   low_water: float, emit: Callable[[Any], Any],
                                   interrupted: Callable[[], bool] = lambda: False) -> bool:
    """With `auto_compress` on: where the budget is about to evict, summarise the unpinned turns
    it would take instead, and keep the summary without asking (the eviction then takes
    whatever is still over, e.g. pinned turns). A failure is a warning and eviction goes on as
    usual. Returns True when a summary was kept."""
    from ..engine.events import Notice
    store = engine.store
    planned = set(plan_eviction(store.costs(), budget, incoming_turns=2,
                                incoming_tokens=incoming_tokens, low_water=low_water))
    turns = within_request_cap([t for t in candidates(store) if t.id in planned])
    if len(turns) < 2:  # one turn (or none) is not worth a summary: plain eviction
        return False
    await emit(Notice("info", f"auto_compress: summarizing {len(turns)} turns "
                              f"({id_ranges([t.id for t in turns])}) instead of archiving them…"))
    try:
        proposal = await write_summary(engine, turns)
        if interrupted():  # Ctrl+C while the summary was written: keep nothing, ask nothing
            return False
        turn = keep(store, proposal)
    except CompressCancelled:  # the turn itself stops too: nothing to say twice
        return False
    except CompressRefused as exc:
        await emit(Notice("warning", f"auto_compress: {exc}; archiving the turns instead"))
        return False
    engine.stats.archived_this_session += len(proposal.turns)
    engine.log.write("compress", ids=proposal.ids, summary_id=turn.id, auto=True)
    await emit(Notice("eviction", kept_sentence(proposal, turn), {"ids": proposal.ids,
                                                                  "summary_id": turn.id}))
    for text in proposal.unverified:
        await emit(Notice("warning", f"auto_compress: a quotation in summary #{turn.id} is not "
                                     f"verbatim in the covered turns: \"{text}\""))
    return True

