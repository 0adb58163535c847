"""Edits the model makes to its own window, as store operations: segments and stripped outputs.

Both change what later requests carry, so both are deliberate and batched: nothing here runs on
its own, only when the model asks (see `engine/window_tools.py`), and each is one transaction.

- A **segment** marks the turn where a sub-task began (`mark_segment`). It runs until the next
  segment's start, so `evict_segment` can archive a finished sub-task as one unit. Evicted turns
  go to the archive like any eviction: still searchable, recallable, readable with read_turns.
- **Stripping** replaces large tool results in window turns by a one-line stub (`strip_results`).
  The original stays inside the block (`blocks.strip_result`), so the turn's search text, its
  index entry, exports and read_turns keep it whole; only what is re-sent shrinks. A strip is
  all or nothing above a threshold: the history changes once, from the first stripped turn on,
  for a saving worth re-caching the rest of the window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blocks import original_result, render_block, result_text, strip_result
from .turns import Eviction, Turn, TurnStore, utc_now

#: A result that re-sends fewer characters than this is left alone: its stub would save little.
STRIP_RESULT_MIN_CHARS = 400


@dataclass(frozen=True)
class Segment:
    id: int
    label: str
    start_turn: int
    created_at: str
    evicted_at: str | None


@dataclass(frozen=True)
class Skipped:
    turn_id: int
    why: str  # "pending" | "pinned"


@dataclass(frozen=True)
class SegmentEviction:
    segment: Segment
    eviction: Eviction | None
    skipped: list[Skipped]


# --- segments -------------------------------------------------------------------------------------

def _segment(row: Any) -> Segment:
    return Segment(row["id"], row["label"], row["start_turn"], row["created_at"], row["evicted_at"])


def open_segments(store: TurnStore) -> list[Segment]:
    """Segments not evicted yet, in the order they start."""
    rows = store.conn.execute(
        "SELECT id, label, start_turn, created_at, evicted_at FROM segments"
        " WHERE evicted_at IS NULL ORDER BY start_turn, id")
    return [_segment(r) for r in rows]


def mark_segment(store: TurnStore, label: str, start_turn: int) -> Segment:
    """Start the segment `label` at turn `start_turn`. An open segment of the same label is a
    ValueError: evicting by label must name one unit, not two."""
    with store.transaction():
        if any(s.label == label for s in open_segments(store)):
            raise ValueError(f"a segment named {label!r} is already open")
        cur = store.conn.execute(
            "INSERT INTO segments (label, start_turn, created_at) VALUES (?, ?, ?)",
            (label, start_turn, utc_now()))
        row = store.conn.execute("SELECT id, label, start_turn, created_at, evicted_at FROM segments"
                                 " WHERE id = ?", (cur.lastrowid,)).fetchone()
    return _segment(row)


def segment_end(store: TurnStore, segment: Segment) -> int | None:
    """The first turn id after `segment`: where the next segment (open or not) starts; None when
    it runs to the present."""
    row = store.conn.execute(
        "SELECT min(start_turn) FROM segments WHERE start_turn > ? OR (start_turn = ? AND id > ?)",
        (segment.start_turn, segment.start_turn, segment.id)).fetchone()
    return row[0]


def segment_turns(store: TurnStore, segment: Segment) -> list[Turn]:
    """The window turns `segment` covers, oldest first."""
    end = segment_end(store, segment)
    return [t for t in store.window()
            if t.id >= segment.start_turn and (end is None or t.id < end)]


def evict_segment(store: TurnStore, label: str, reason: str = "segment") -> SegmentEviction:
    """Archive the window turns of the open segment `label` in one eviction and close it.

    The turn being answered now and pinned turns stay (reported as skipped). A KeyError when no
    open segment has that label."""
    with store.transaction():
        found = [s for s in open_segments(store) if s.label == label]
        if not found:
            raise KeyError(label)
        segment = found[-1]
        chosen, skipped = [], []
        for turn in segment_turns(store, segment):
            if turn.status == "pending":
                skipped.append(Skipped(turn.id, "pending"))
            elif turn.pinned:
                skipped.append(Skipped(turn.id, "pinned"))
            else:
                chosen.append(turn.id)
        eviction = store.evict(chosen, reason) if chosen else None
        store.conn.execute("UPDATE segments SET evicted_at = ? WHERE id = ?", (utc_now(), segment.id))
    return SegmentEviction(segment, eviction, skipped)


# --- stripping tool output ------------------------------------------------------------------------

@dataclass(frozen=True)
class StripItem:
    turn_id: int
    block: int          # position of the tool_result in the turn's blocks
    tool: str           # the tool's name, from its call in the same turn
    original_chars: int  # characters of the whole original output
    freed_chars: int    # characters fewer re-sent with the stub


@dataclass(frozen=True)
class Strip:
    items: list[StripItem]
    skipped: list[Skipped]
    applied: bool       # False: below the threshold, nothing changed

    @property
    def freed_chars(self) -> int:
        return sum(i.freed_chars for i in self.items)

    @property
    def turn_ids(self) -> list[int]:
        return sorted({i.turn_id for i in self.items})


def stub_text(tool: str, chars: int, turn_id: int) -> str:
    """The one line a stripped result reads as, saying how to get the output back."""
    return (f"[{tool} output stripped from the window: {chars:,} characters; "
            f"read_turns([{turn_id}]) shows it in full]")


def strip_results(store: TurnStore, turn_ids: list[int], *, min_total_chars: int,
                  min_result_chars: int = STRIP_RESULT_MIN_CHARS) -> Strip:
    """Replace every large tool result in the window turns `turn_ids` by its stub, all at once,
    when together they free at least `min_total_chars` re-sent characters; otherwise change
    nothing (`applied` False) and say what it would have freed.

    Pending and pinned turns are skipped: one is being answered, the other is kept verbatim on
    purpose. Ids not in the window are ignored (the caller reports them)."""
    with store.transaction():
        wanted = set(turn_ids)
        now = utc_now()
        items: list[StripItem] = []
        skipped: list[Skipped] = []
        changed: dict[int, list[dict[str, Any]]] = {}
        for turn in store.window():
            if turn.id not in wanted:
                continue
            found = _large_results(turn, store.result_max_chars, min_result_chars)
            if found and turn.status == "pending":
                skipped.append(Skipped(turn.id, "pending"))
                continue
            if found and turn.pinned:
                skipped.append(Skipped(turn.id, "pinned"))
                continue
            blocks = list(turn.blocks)
            for item in found:
                blocks[item.block] = strip_result(
                    blocks[item.block], stub_text(item.tool, item.original_chars, turn.id), now)
            if found:
                items += found
                changed[turn.id] = blocks
        strip = Strip(items, skipped, applied=False)
        if not items or strip.freed_chars < min_total_chars:
            return strip
        for turn_id, blocks in changed.items():
            store.update_turn(turn_id, blocks=blocks)
    return Strip(items, skipped, applied=True)


def _large_results(turn: Turn, result_max_chars: int, min_result_chars: int) -> list[StripItem]:
    names = {b.get("id"): b.get("name", "tool") for b in turn.blocks if b.get("type") == "tool_use"}
    out = []
    for n, block in enumerate(turn.blocks):
        if block.get("type") != "tool_result" or "stripped" in block:
            continue
        sent = len(render_block(block, result_max_chars))
        if sent < min_result_chars:
            continue
        tool = _short_tool_name(str(names.get(block.get("tool_use_id"), "tool")))
        chars = len(result_text(original_result(block)))
        stub = render_block(strip_result(block, stub_text(tool, chars, turn.id), ""), result_max_chars)
        out.append(StripItem(turn.id, n, tool, chars, sent - len(stub)))
    return out


def _short_tool_name(name: str) -> str:
    """`mcp__mnemara__read_turns` reads as `read_turns` in a stub; built-ins keep their name."""
    return name.rsplit("__", 1)[-1] if name.startswith("mcp__") else name


def stripped_outputs(turn: Turn) -> str:
    """The original output of every stripped tool result in `turn`, for read_turns ('' if none):
    the stub in the window points here."""
    names = {b.get("id"): b.get("name", "tool") for b in turn.blocks if b.get("type") == "tool_use"}
    parts = []
    for block in turn.blocks:
        if block.get("type") == "tool_result" and "stripped" in block:
            tool = _short_tool_name(str(names.get(block.get("tool_use_id"), "tool")))
            parts.append(f"\n  [{tool} output {block.get('tool_use_id', '')}, stripped from the "
                         f"window, in full:]\n{result_text(original_result(block))}")
    return "".join(parts)
