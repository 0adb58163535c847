"""The model's window tools, each defined once and registered with the tool registry.

tune_window (within the bounds the user sets in config; the user sees a notice), mark_segment and
evict_segment (a finished sub-task leaves as one unit), evict_last, strip_tool_output (large tool
results become one-line stubs, in one batch, held by default until the window next makes
room: `store/strip_queue.py`), list_pinned, and log_choice (a decision note).

Every change to the window happens only when the model asks, and in one batch: what later
requests carry stays byte-identical except at that moment (the prompt cache re-reads from the
first changed turn once, not every turn). Nothing is deleted: evicted turns go to the archive,
stripped outputs stay inside their turn (`store/window_edits.py`).
"""

from __future__ import annotations

from typing import Any

from ..store import strip_queue
from ..store import window_edits as edits
from .tool_handlers import ToolContext, ToolError, _gist, _ids, evict_turns
from .tools import _IDS, ToolSpec, _args, register

#: Without ids, strip_tool_output leaves the newest rows alone: the model is likely still using
#: what its latest tool calls returned.
STRIP_KEEP_RECENT = 4
LABEL_MAX_CHARS = 100


# --- tune_window ----------------------------------------------------------------------------------

def tune_window(ctx: ToolContext, args: dict[str, Any]) -> str:
    cfg = ctx.config
    asked = (("max_turns", args.get("max_turns"), "max_window_turns", "tune_window_turns"),
             ("max_tokens", args.get("max_tokens"), "max_window_tokens", "tune_window_tokens"))
    if all(value is None for _, value, _, _ in asked):
        raise ToolError("tune_window: give max_turns, max_tokens or both")
    changes: dict[str, int] = {}
    for arg, value, key, bounds in asked:
        if value is None:
            continue
        lo, hi = getattr(cfg, bounds)
        if not lo <= value <= hi:
            raise ToolError(f"tune_window: {arg} {value:,} is outside what the user allows, "
                            f"{lo:,} to {hi:,} (config {bounds})")
        if value != getattr(cfg, key):
            changes[key] = value
    if not changes:
        return (f"Nothing changed: max_window_turns is {cfg.max_window_turns:,} and "
                f"max_window_tokens {cfg.max_window_tokens:,} already.")
    new = cfg.replace(**changes)
    ctx.set_config(new)
    said = ", ".join(f"{key} {getattr(cfg, key):,} → {value:,}" for key, value in changes.items())
    ctx.notify("info", f"the model changed the window budget: {said} (saved in config.json; "
                       "/tokens or an edit of config.json sets it back)")
    shrunk = any(value < getattr(cfg, key) for key, value in changes.items())
    return (f"Window budget changed: {said}. The user was told. "
            + ("Before the next turn the oldest unpinned turns go to the archive, in one batch, "
               "until the window fits." if shrunk else "Fewer turns will be evicted from now on."))


# --- segments ---------------------------------------------------------------------------------------

def mark_segment(ctx: ToolContext, args: dict[str, Any]) -> str:
    label = " ".join(args["label"].split())
    rows = ctx.store.window()
    start = args.get("start_id")
    if start is None:
        users = [t for t in rows if t.role == "user"]
        if not users:
            raise ToolError("mark_segment: the window is empty; give start_id or mark it during a turn")
        start = users[-1].id
        where = "the message being answered now" if users[-1].status == "pending" else "the latest user turn"
    else:
        if start not in {t.id for t in rows}:
            raise ToolError(f"mark_segment: start_id #{start} is not in the window (list_window shows the ids)")
        where = "the turn you named"
    try:
        segment = edits.mark_segment(ctx.store, label, start)
    except ValueError:
        raise ToolError(f"mark_segment: a segment named {label!r} is already open; evict it or "
                        "choose another label") from None
    return (f"Segment {segment.label!r} starts at #{segment.start_turn} ({where}) and runs until "
            f"the next segment you mark. When the sub-task is done, evict_segment({segment.label!r}) "
            "archives its turns as one unit (searchable, readable with read_turns).")


def evict_segment(ctx: ToolContext, args: dict[str, Any]) -> str:
    label = " ".join(args["label"].split())
    try:
        done = edits.evict_segment(ctx.store, label)
    except KeyError:
        segments = edits.open_segments(ctx.store)
        known = ", ".join(f"{s.label!r} (from #{s.start_turn})" for s in segments) or "none"
        raise ToolError(f"evict_segment: no open segment named {label!r}; open segments: {known}") from None
    eviction = done.eviction
    if eviction is None:
        reply = f"Segment {label!r} is closed; nothing was archived."
    else:
        n = len(eviction.ids)
        ctx.stats.archived_this_session += n
        ctx.notify("eviction", f"{n} turn{'s' if n != 1 else ''} archived by the model "
                               f"(segment {label!r})")
        reply = (f"Archived segment {label!r}: {_ids(eviction.ids)} (~{eviction.est_tokens:,} "
                 "estimated tokens freed), in one batch. The turns stay searchable in the archive; "
                 "read_turns opens them.")
    if done.skipped:
        why = {"pending": "the turn being answered now", "pinned": "pinned: unpin it first"}
        reply += " Kept: " + ", ".join(f"#{s.turn_id} ({why[s.why]})" for s in done.skipped) + "."
    return reply


# --- evict_last -------------------------------------------------------------------------------------

def evict_last(ctx: ToolContext, args: dict[str, Any]) -> str:
    rows = [t for t in ctx.store.window() if t.status != "pending"]
    newest = [t.id for t in rows[-args["n"]:]]
    if not newest:
        return "Nothing archived: the window holds only the turn being answered now."
    return evict_turns(ctx, {"ids": newest, "older_than": None})


# --- strip_tool_output ------------------------------------------------------------------------------

def strip_tool_output(ctx: ToolContext, args: dict[str, Any]) -> str:
    rows = ctx.store.window()
    in_window = {t.id for t in rows}
    ids = args.get("ids")
    missing: list[int] = []
    if ids is None:
        wanted = [t.id for t in rows[:-STRIP_KEEP_RECENT]] if len(rows) > STRIP_KEEP_RECENT else []
    else:
        wanted = sorted(set(ids))
        missing = [i for i in wanted if i not in in_window]
    threshold = ctx.config.strip_min_chars
    now = bool(args.get("now"))
    # By default the strip is held until the window has to make room anyway (strip_queue.py):
    # stripping now would break the prompt cache once more than the session otherwise would.
    strip = (edits.strip_results(ctx.store, wanted, min_total_chars=threshold) if now
             else strip_queue.preview(ctx.store, wanted))
    notes = []
    if strip.skipped:
        why = {"pending": "the turn being answered now", "pinned": "pinned: unpin it first"}
        notes.append("Skipped: " + ", ".join(f"#{s.turn_id} ({why[s.why]})" for s in strip.skipped) + ".")
    if missing:
        notes.append(f"Not in the window: {_ids(missing)}.")
    tail = (" " + " ".join(notes)) if notes else ""
    if not strip.items:
        scope = "those turns" if ids is not None else f"the window's older turns (all but the newest {STRIP_KEEP_RECENT})"
        return (f"Nothing to strip: no tool result in {scope} re-sends "
                f"{edits.STRIP_RESULT_MIN_CHARS:,} characters or more.{tail}")
    n, freed = len(strip.items), strip.freed_chars
    where = _ids(strip.turn_ids)
    if not now:
        strip_queue.hold(ctx.store, strip.turn_ids)
        tokens = int(freed / ctx.store.estimator.chars_per_token)
        return (f"Held {n} large tool result{'s' if n != 1 else ''} in {where} ({freed:,} "
                f"characters, ~{tokens:,} estimated tokens): they become one-line stubs the next "
                "time the window has to make room (before the budget would archive turns), in "
                "that same change, so the prompt cache re-reads the history once, not twice; the "
                "user sees a notice then. Until then they are sent as they are. now=true strips "
                f"at once instead.{tail}")
    if not strip.applied:
        return (f"Nothing stripped: the {n} large tool result{'s' if n != 1 else ''} in {where} "
                f"would free {freed:,} characters, below strip_min_chars ({threshold:,}). A strip "
                "changes the history from its first turn on, so the prompt cache re-reads all "
                "after it; strip later, in one batch, when more has piled up (or name more "
                f"turns).{tail}")
    tokens = int(freed / ctx.store.estimator.chars_per_token)
    ctx.notify("info", f"the model stripped {n} tool output{'s' if n != 1 else ''} from {where} "
                       f"(~{tokens:,} tokens); they stay in the store, read_turns shows them")
    return (f"Stripped {n} tool result{'s' if n != 1 else ''} in {where}: {freed:,} characters "
            f"(~{tokens:,} estimated tokens) fewer re-sent. Each reads as a one-line stub now; "
            f"read_turns([id]) shows the output in full. The history changed from "
            f"#{strip.turn_ids[0]} on, so the next request re-caches from there, once.{tail}")


# --- list_pinned ------------------------------------------------------------------------------------

def list_pinned(ctx: ToolContext, args: dict[str, Any]) -> str:
    pinned = [t for t in ctx.store.window() if t.pinned]
    if not pinned:
        return "No pinned turns. pin_turn keeps a turn in the window through evictions."
    tokens = sum(t.est_tokens for t in pinned)
    lines = [f"{len(pinned)} pinned turn(s), ~{tokens:,} estimated tokens of the "
             f"{ctx.config.max_window_tokens:,} budget (evicted last; unpin_turn releases them):"]
    lines += [f"#{t.id} {t.role} {t.created_at} ~{t.est_tokens:,} tok: {_gist(t)}" for t in pinned]
    return "\n".join(lines)


# --- log_choice -------------------------------------------------------------------------------------

def log_choice(ctx: ToolContext, args: dict[str, Any]) -> str:
    from ..memory.writes import write_note
    lines = [args["decision"].strip()]
    alternatives = [a.strip() for a in args.get("alternatives") or [] if a.strip()]
    if alternatives:
        lines.append(f"- **alternatives**: {'; '.join(alternatives)}")
    if (reason := (args.get("reason") or "").strip()):
        lines.append(f"- **reason**: {reason}")
    try:
        with ctx.memory_service().locked_store() as store:
            written = write_note(ctx.instance, store, ctx.config, "\n".join(lines), "decision")
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    except OSError as exc:
        raise ToolError(f"could not write the decision log: {exc}") from None
    indexed = " and queued for the index" if ctx.config.rag_auto_index_memory else ""
    return (f"Logged the decision as {written.id}{indexed}; rag_query with kind \"note\" finds "
            "it later, and update_memory corrects it if it changes.")


# --- the registry entries ---------------------------------------------------------------------------

_LABEL = {"type": "string", "minLength": 1, "maxLength": LABEL_MAX_CHARS,
          "description": "A short name for the sub-task, e.g. \"fix flaky test\"."}

register(
    ToolSpec(
        "tune_window",
        "Change your rolling window's budget for this instance: the most turns it holds and its "
        "estimated-token budget, within bounds the user set (the user sees a notice; config.json "
        "keeps it). Shrink it when old turns only add noise and cost; grow it when a long task "
        "needs more history. Returns the old and new values.",
        _args(max_turns={"type": "integer", "minimum": 1,
                         "description": "New max_window_turns, within the user's tune_window_turns."},
              max_tokens={"type": "integer", "minimum": 1,
                          "description": "New max_window_tokens, within the user's tune_window_tokens."}),
        tune_window, feature="window_tuning"),
    ToolSpec(
        "mark_segment",
        "Mark where a sub-task begins (by default at the message being answered now), so that "
        "when it is finished evict_segment can move all its turns to the archive as one unit. A "
        "segment runs until the next one you mark. Returns where it starts.",
        _args(("label",), label=_LABEL,
              start_id={"type": "integer", "minimum": 1,
                        "description": "Start at this earlier turn instead (an id from list_window)."}),
        mark_segment),
    ToolSpec(
        "evict_segment",
        "Move every turn of a finished sub-task (marked with mark_segment) to the archive in one "
        "batch: still searchable and readable with read_turns, no longer sent. Pinned turns and "
        "the turn being answered now stay. Returns what was archived.",
        _args(("label",), label=dict(_LABEL, description="The label given to mark_segment.")),
        evict_segment),
    ToolSpec(
        "evict_last",
        "Move the newest n turns of the window (not counting the turn being answered now) to the "
        "archive, e.g. a dead end you want out of view. Pinned turns stay. Evicting the newest "
        "turns keeps the cached prefix of the window intact. Returns what was archived.",
        _args(("n",), n={"type": "integer", "minimum": 1, "maximum": 1000,
                         "description": "How many of the newest turns to archive."}),
        evict_last),
    ToolSpec(
        "strip_tool_output",
        "Replace large tool results (Bash output, file contents, ...) in older turns by a one-line "
        "stub that says how to get them back with read_turns; the originals stay in the store. "
        "It frees context without dropping the turns. By default the strip is held until the "
        "window next has to make room (it then happens together with that change and may spare "
        "turns from the archive), because a strip makes the prompt cache re-read the history "
        "after it. now=true strips at once, all qualifying results together, and only when that "
        "frees at least the user's strip_min_chars. Returns what was held or stripped.",
        _args(ids=dict(_IDS, description="Turn ids whose tool results to strip (default: every "
                                         f"turn but the newest {STRIP_KEEP_RECENT})."),
              now={"type": "boolean", "description": "Strip at once instead of at the window's "
                                                     "next change (default false)."}),
        strip_tool_output),
    ToolSpec(
        "list_pinned",
        "List the pinned turns (kept in the window through evictions): id, role, time, estimated "
        "tokens and the start of each, with their total against the token budget.",
        _args(),
        list_pinned, read_only=True),
    ToolSpec(
        "log_choice",
        "Record a decision you or the user made, with the alternatives weighed and why, in the "
        "decision log: a memory note of category \"decision\", indexed, so later turns (and later "
        "sessions) can find why things are as they are. Returns the note's id.",
        _args(("decision",),
              decision={"type": "string", "minLength": 1, "maxLength": 4000,
                        "description": "What was decided, as one self-contained statement."},
              alternatives={"type": "array", "items": {"type": "string", "maxLength": 1000},
                            "description": "The options considered and not taken."},
              reason={"type": "string", "maxLength": 4000,
                      "description": "Why this option won."}),
        log_choice, feature="notes", blocking=True),
)
