"""The status bar's figures and layout, without Textual (the widget only paints the result).

A status line is a list of segments (each a few styled parts, a shorter form, a priority).
`fit` makes them one line of the given width: the least important segments take their short
form first, then the least important are left out, so at 80 columns the bar is one line that
still shows what matters most (the window's fill, a running turn, index trouble).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...engine.events import Usage
    from ...engine.turn import TurnEngine

SEPARATOR = " │ "
METER_WIDTH = 10
WARN_AT, ALERT_AT = 0.60, 0.85  # meter colour changes at these shares of the token budget


@dataclass(frozen=True)
class StatusFigures:
    turns: int
    max_turns: int
    est_tokens: int
    max_tokens: int
    last_input: int | None  # real tokens of the last turn (None before the first one)
    last_output: int | None
    cache_hit: float | None
    session_cost: float
    model: str
    archived_session: int  # turns moved to the archive since the TUI started
    busy: bool = False
    recalled: int = 0             # memories recalled into the latest turn
    recall_tokens: int = 0
    memory_pending: int = 0       # index work waiting in the outbox
    memory_failing: int = 0       # of which failed at least once
    memory_mode: str | None = None  # "hybrid" | "text" once the index is open

    @classmethod
    def from_engine(cls, engine: "TurnEngine", *, busy: bool = False,
                    earlier: "Usage | None" = None) -> "StatusFigures":
        """Figures from the engine; `earlier` is the last stored turn's usage, shown until this
        session has run a turn of its own."""
        from ..commands import window_totals
        totals = window_totals(engine)
        stats = engine.stats
        usage = stats.last_usage if stats.turns_run else earlier
        known = usage is not None and usage.total_input + usage.output_tokens > 0
        recall, memory = stats.last_recall, stats.memory
        return cls(totals.turns, totals.max_turns, totals.est_tokens, totals.max_tokens,
                   usage.total_input if known else None, usage.output_tokens if known else None,
                   usage.cache_hit_ratio if known else None, stats.session_cost_usd,
                   engine.config.model, stats.archived_this_session, busy,
                   len(recall.items) if recall else 0, recall.tokens if recall else 0,
                   memory.pending if memory else 0, memory.failing if memory else 0,
                   memory.mode if memory else None)


@dataclass(frozen=True)
class Segment:
    """One item of the bar: (text, style) parts; style is a name the widget maps to colours."""

    parts: tuple[tuple[str, str], ...]
    key: str = ""
    short: tuple[tuple[str, str], ...] | None = None  # the same, in fewer columns
    priority: int = 0  # the higher, the later it is shortened or left out

    def shortened(self) -> "Segment":
        return Segment(self.short, self.key, None, self.priority) if self.short else self

    @property
    def text(self) -> str:
        return "".join(t for t, _ in self.parts)

    def __len__(self) -> int:
        return len(self.text)


def compact(n: int) -> str:
    """950, 8.2k, 82k, 1.2M: token counts that fit a narrow bar."""
    if n < 1000:
        return str(n)
    if n < 10_000:
        return f"{n / 1000:.1f}k"
    if n < 1_000_000:
        return f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


def level(fraction: float) -> str:
    return "alert" if fraction >= ALERT_AT else "warn" if fraction >= WARN_AT else "ok"


def meter(fraction: float, width: int = METER_WIDTH) -> tuple[str, str]:
    """(filled, empty) cells of a `width`-cell bar; any use at all shows at least one cell."""
    fraction = min(1.0, max(0.0, fraction))
    filled = round(fraction * width)
    if fraction > 0 and filled == 0:
        filled = 1
    return "█" * filled, "░" * (width - filled)


def segments(f: StatusFigures) -> list[Segment]:
    share = f.est_tokens / f.max_tokens if f.max_tokens else 0.0
    full, empty = meter(share)
    fill = f"meter-{level(share)}"
    little, rest = meter(share, METER_WIDTH // 2)
    out = [
        Segment((("turns ", "label"), (f"{f.turns}/{f.max_turns}",
                                       "warn" if f.turns >= f.max_turns else "value")), "turns",
                priority=100),
        Segment((("ctx ", "label"), (full, fill), (empty, "meter-empty"),
                 (f" ~{compact(f.est_tokens)}/{compact(f.max_tokens)} {share:.0%}", "value")),
                "tokens", (("ctx ", "label"), (little, fill), (rest, "meter-empty"),
                           (f" ~{compact(f.est_tokens)} {share:.0%}", "value")), 95),
    ]
    if f.last_input is None:
        out.append(Segment((("last in ", "label"), ("–", "value"), (" out ", "label"), ("–", "value")),
                           "last", (("in ", "label"), ("–", "value"), (" out ", "label"), ("–", "value")),
                           50))
    else:
        out.append(Segment((("last in ", "label"), (f"{f.last_input:,}", "value"),
                            (" out ", "label"), (f"{f.last_output:,}", "value")), "last",
                           (("in ", "label"), (compact(f.last_input), "value"), (" out ", "label"),
                            (compact(f.last_output or 0), "value")), 50))
    hit = "–" if f.cache_hit is None else f"{f.cache_hit:.0%}"
    out.append(Segment((("cache ", "label"), (hit, "value")), "cache", priority=60))
    out.append(Segment((("cost ", "label"), (f"${f.session_cost:.4f}", "value")), "cost",
                       ((f"${f.session_cost:.4f}", "value"),), 40))
    out.append(Segment(((f.model, "model"),), "model",
                       ((f.model.removeprefix("claude-"), "model"),), 30))  # the header has it too
    if f.archived_session:
        n = f.archived_session
        out.append(Segment(((f"{n} turn{'s' if n != 1 else ''} archived", "warn"),), "archived",
                           ((f"{n} archived", "warn"),), 70))
    if f.recalled:
        out.append(Segment(((f"⟲ {f.recalled} recalled", "value"), (f" ~{compact(f.recall_tokens)}", "label")),
                           "recall", ((f"⟲ {f.recalled} recalled", "value"),), 20))
    if f.memory_failing:
        out.append(Segment(((f"index: {f.memory_failing} failing", "alert"),), "memory",
                           ((f"idx {f.memory_failing} failing", "alert"),), 80))
    elif f.memory_pending:
        out.append(Segment(((f"index: {f.memory_pending} queued", "label"),), "memory",
                           ((f"idx {f.memory_pending} queued", "label"),), 10))
    elif f.memory_mode == "text":
        out.append(Segment((("memory: full-text only", "warn"),), "memory", priority=15))
    if f.busy:
        out.append(Segment((("● working", "busy"),), "busy", priority=97))
    return out


def line_width(items: list[Segment], sep: str = SEPARATOR) -> int:
    return sum(len(s) for s in items) + len(sep) * max(0, len(items) - 1)


def fit(items: list[Segment], width: int, sep: str = SEPARATOR) -> list[Segment]:
    """The segments as one line no wider than `width`, in their order. Most important first,
    each takes its short form while there is room (the rest are left out); then the full forms
    come back where they still fit, those that cost the fewest columns first, so as many items
    as possible read in full. The most important segment always stays."""
    order = sorted(range(len(items)), key=lambda i: -items[i].priority)
    chosen: dict[int, Segment] = {}
    for i in order:
        trial = {**chosen, i: items[i].shortened()}
        if not chosen or line_width(list(trial.values()), sep) <= width:
            chosen = trial
    regrow = sorted(chosen, key=lambda i: (len(items[i]) - len(chosen[i]), -items[i].priority))
    for i in regrow:
        if chosen[i] is not items[i]:
            trial = {**chosen, i: items[i]}
            if line_width(list(trial.values()), sep) <= width:
                chosen = trial
    return [chosen[i] for i in sorted(chosen)]
