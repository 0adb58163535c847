"""Scoring for hybrid recall: query terms, signal normalisation, fusion, neighbour lifting, and
what the full-text index holds for a turn (the turn with its neighbours).

Pure Python over plain values, so the weights can be tuned by the recall-quality benchmark
(`benchmarks/bench_recall_quality.py`, whose docstring logs what was tried) without touching
storage. Every signal is mapped to 0..1 in a way that does not depend on the other candidates of
the query (no min-max over the result list), because the caller compares the fused score with an
absolute relevance threshold (AUTO_RECALL_THRESHOLD): a query with no good match must come out
low, not rescaled to 1.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from .atoms import Atom

if TYPE_CHECKING:
    from .timephrase import TimeRange

# Words that carry no topic in a question or a turn. Wider than the FTS index's own list on
# purpose: question words ("what", "when", "did") would otherwise dominate BM25 for questions.
STOPWORDS = frozenset("""
a about above after again against all am an and any are aren't as at be because been before
being below between both but by can could couldn't did didn't do does doesn't doing don't down
during each few for from further had has have having he her here hers herself him himself his
how i if in into is isn't it it's its itself just let me more most my myself no nor not now of
off on once only or other our ours ourselves out over own same she should so some such than that
the their theirs them themselves then there these they this those through to too under until up
very was we were what when where which while who whom why will with would you your yours yourself
yourselves s t ll re ve d m also get got ever really much many one thing things like likely
""".split())

MAX_TERMS = 48        # a pasted page must not become a 2,000-term query
MAX_TERM_CHARS = 40   # the FTS tokenizer drops longer tokens anyway
SESSION_GAP_S = 6 * 3600  # turns further apart than this are not indexed together
SEARCH_REACH = 2  # turns either side indexed with a turn (see search_text)
SCAN_CHARS = 20_000  # how much of a candidate's text the per-search word and time checks read


def query_terms(query: str) -> list[str]:
    """The query's content words, lower-cased, deduplicated, in order (may be empty)."""
    seen: dict[str, None] = {}
    for word in re.findall(r"\w+", query.lower()):
        if word in STOPWORDS or len(word) > MAX_TERM_CHARS or word.isdigit() and len(word) < 2:
            continue
        seen.setdefault(word, None)
        if len(seen) >= MAX_TERMS:
            break
    return list(seen)


@dataclass(frozen=True)
class Params:
    """Fusion parameters, calibrated on the recall-quality benchmark (its docstring keeps the
    log of what was tried and measured). `search(..., params=)` takes another set for tuning."""

    text_weight: float = 0.9
    vector_weight: float = 0.1
    bm25_half: float = 8.0      # BM25 score mapped to s / (s + bm25_half): 0.5 at this score
    cos_floor: float = 0.10     # cosine at or below this is "unrelated" (0)
    cos_ceil: float = 0.70      # cosine at or above this is a full match (1)
    pool: int = 60              # candidates fetched per signal before fusion (at least 5 x k)
    neighbour_lift: float = 0.6  # a weaker neighbour moves this share of the way up to a hit
    neighbour_reach: int = 2    # turns either side that a hit lifts
    neighbour_decay: float = 0.8  # per further turn of distance
    neighbour_back: float = 0.8   # the turn before a hit is lifted by this share of the hit
    bm25_relative: bool = False   # text signal = saturate(best) * s / best, per query
    context_before: int = 0     # context turns carried before a turn hit
    context_after: int = 0      # and after it
    context_gap_s: int = 1800   # ... only when within this many seconds of the hit
    time_boost: float = 0.3     # added to atoms inside a time phrase's range
    when_boost: float = 0.3     # score x (1 + this) for atoms stating a time, if the query asks when
    time_mode: str = "boost"    # "boost", or "filter" (falling back to boost when empty)
    lift_gap_s: float = SESSION_GAP_S  # only neighbours this close in time are lifted
    own_weight: float = 0.6     # text signal x (1 - w + w x share of terms in the atom's own text)
    lift_top: int = 20          # how many of the best candidates lift their neighbours

    def with_(self, **changes: object) -> "Params":
        return replace(self, **changes)


DEFAULT = Params()

# The score a hit needs for automatic recall (recall injected without being asked). On the
# benchmark's 7 conversations the best hit of an answerable question scores p10 0.32 / p50 0.48,
# of a question about a different conversation (nothing relevant stored) p50 0.21 / p90 0.33:
# at 0.30, 94% of answerable questions keep their best hit and 85% of off-topic ones recall
# nothing. Adversarial questions (on the conversation's topics, unanswerable) score like
# answerable ones: no threshold separates them. Re-run the benchmark after changing weights.
AUTO_RECALL_THRESHOLD = 0.30


SUFFIXES = ("ing", "ed", "es", "er", "ly", "s", "e")
WORD = re.compile(r"\w+")


@lru_cache(maxsize=1 << 16)  # a search stems every word of ~80 candidates: most words recur
def crude_stem(word: str) -> str:
    """Strip one common English suffix ("decided", "decide" -> "decid"; "hikes", "hiking" ->
    "hik"): close enough to the index's stemmer to tell which turn holds a query's words."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def own_match(terms: list[str], text: str) -> float:
    """Share of the query's terms in the atom's own text. The full-text index matches a turn
    together with its neighbours; this tells the turn that holds the words from the ones that
    merely sit beside it."""
    if not terms:
        return 0.0
    words = {crude_stem(w) for w in set(WORD.findall(text[:SCAN_CHARS].lower()))}
    return sum(crude_stem(t) in words for t in terms) / len(terms)


# A question asking for a time ("When did we move the cron job?", "Which year ...", "How long
# ...") is answered by the turn or note that states one ("... moved it last Friday", "... for
# three years", "in March"), which rarely repeats the question's words. Measured on the recall
# benchmark: such atoms' scores x 1.3 raise temporal questions from 0.800 to 0.835 hit@t10. A
# multiplier, not an addition: +0.15 ranked a little better (0.861) but lifted unrelated
# time-stating atoms over the automatic-recall threshold, so questions about another
# conversation recalled something 31% of the time instead of 18% (x 1.3: 21%). Resolving each
# candidate's time phrases with the query grammar (timephrase.py) instead of this word list
# found fewer of them.
ASKS_WHEN = re.compile(
    r"^\W*(?:when\b|(?:in |on |at )?(?:what|which) (?:year|month|date|day|week|weekend|time)\b"
    r"|how long\b)", re.I)
_MONTHS = ("january|february|march|april|june|july|august|september|october|november|december"
           "|in may")  # not the verb
_WEEKDAYS = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
STATES_TIME = re.compile(
    r"\b(?:yesterday|today|tonight|tomorrow|ago|recently|lately|earlier"
    rf"|(?:last|next|this|past|coming) (?:night|evening|morning|week|weekend|month|year|summer"
    rf"|winter|spring|fall|autumn|{_WEEKDAYS})"
    rf"|{_MONTHS}|{_WEEKDAYS}|(?:19|20)\d\d"
    r"|on the \d{1,2}(?:st|nd|rd|th)"
    r"|for (?:about |almost |nearly |over )?(?:a|an|\d+|a few|a couple of|several|two|three|four"
    r"|five|six) (?:days?|weeks?|months?|years?))\b",
    re.I)


def asks_when(query: str) -> bool:
    return bool(ASKS_WHEN.search(query))


def states_time(text: str) -> bool:
    return bool(STATES_TIME.search(text[:SCAN_CHARS]))


# What an atom's own text says about time is read once, when the atom is written (lance.py keeps
# it in the row), not at every search: a search whose query names a period read the first time
# phrase of each of its ~150-250 candidates, 20-45 ms a search, more as the index grew (its
# full-text and vector lists overlap less, so there are more candidates), and in the 2,000-turn
# soak these searches were the slowest turns. A row's facts count only when they were read by
# this grammar: TIME_FACTS_VERSION goes up with every change to timephrase.py or STATES_TIME
# (tests/index/test_time_facts.py holds their fingerprint), and older rows are read again in the
# background (MemoryIndex.optimize) and meanwhile at search time, as before.
TIME_FACTS_VERSION = 1


@dataclass(frozen=True)
class TimeFacts:
    """The period the atom's first time phrase names, read at the time it was written
    ("yesterday" in a turn of 17 March is 16 March), as [since, until) in UTC, or None; and
    whether it states a time at all (STATES_TIME)."""

    told: tuple[datetime, datetime] | None
    states: bool


def time_facts(text: str, created_at: str,
               resolve: Callable[[str, datetime], "TimeRange | None"]) -> TimeFacts:
    return TimeFacts(told_period(text, created_at, resolve), states_time(text))


def told_period(text: str, created_at: str, resolve: Callable[[str, datetime], "TimeRange | None"]
                ) -> tuple[datetime, datetime] | None:
    try:
        said = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return None
    told = resolve(text[:SCAN_CHARS], said)
    return None if told is None else (told.since, told.until)


def mark_time(cands: Iterable["Candidate"], query: str, period: "TimeRange | None", lo: str, hi: str,
              resolve: Callable[[str, datetime], "TimeRange | None"]) -> None:
    """The time signals of a search's candidates: "time" for those written in the period the
    query names (`lo` <= created_at < `hi`, its bounds as ISO-8601 UTC strings) or speaking of
    it, "when" for those stating a time when the query asks when. A candidate's stored
    `facts` are used when it has them; otherwise its text is read here, with `resolve(text,
    now)`, the time-phrase resolver."""
    cands = list(cands)
    if period is not None:
        for c in cands:
            told = c.facts.told if c.facts else told_period(c.atom.text, c.atom.created_at, resolve)
            if lo <= c.atom.created_at < hi or speaks_of(told, period):
                c.raw["time"] = 1.0
    if asks_when(query):
        for c in cands:
            if c.facts.states if c.facts else states_time(c.atom.text):
                c.raw["when"] = 1.0


def speaks_of(told: tuple[datetime, datetime] | None, period: "TimeRange") -> bool:
    """Whether the period an atom's own time phrase names (`told_period`) overlaps `period`: a
    question about 16 March is answered by what was said about that day, often a day or a week
    later. Measured on the recall benchmark: temporal questions 0.774 -> 0.800 hit@t10."""
    return told is not None and told[0] < period.until and period.since < told[1]


def text_signal(bm25: float, p: Params) -> float:
    """BM25 (unbounded, grows with matched terms) -> 0..1, saturating, same scale for every query."""
    return bm25 / (bm25 + p.bm25_half) if bm25 > 0 else 0.0


def vector_signal(cosine: float, p: Params) -> float:
    """Cosine similarity -> 0..1 through a fixed linear ramp between floor and ceiling."""
    return min(1.0, max(0.0, (cosine - p.cos_floor) / (p.cos_ceil - p.cos_floor)))


@dataclass
class Candidate:
    atom: Atom
    raw: dict[str, float] = field(default_factory=dict)      # "bm25", "cosine", "time", "when"
    signals: dict[str, float] = field(default_factory=dict)  # each 0..1, set by fuse()
    score: float = 0.0
    facts: TimeFacts | None = None  # as stored with the atom, when the stored ones are current


def fuse(cands: Iterable[Candidate], p: Params, *, hybrid: bool) -> list[Candidate]:
    """Weighted sum of the normalised signals; in text mode the text signal alone (full weight)."""
    out = []
    cands = list(cands)
    best = max((c.raw.get("bm25", 0.0) for c in cands), default=0.0)
    for c in cands:
        c.signals = {}
        if "bm25" in c.raw:
            if p.bm25_relative and best > 0:
                c.signals["text"] = text_signal(best, p) * c.raw["bm25"] / best
            else:
                c.signals["text"] = text_signal(c.raw["bm25"], p)
            c.signals["text"] *= 1 - p.own_weight + p.own_weight * c.raw.get("own", 1.0)
        if "cosine" in c.raw and hybrid:
            c.signals["vector"] = vector_signal(c.raw["cosine"], p)
        for name in ("time", "when"):
            if name in c.raw:
                c.signals[name] = c.raw[name]
        t = c.signals.get("text", 0.0)
        if hybrid:
            v = c.signals.get("vector", 0.0)
            c.score = (p.text_weight * t + p.vector_weight * v) / (p.text_weight + p.vector_weight)
        else:
            c.score = t
        c.score += c.signals.get("time", 0.0) * p.time_boost
        c.score *= 1.0 + c.signals.get("when", 0.0) * p.when_boost
        out.append(c)
    return out


def seconds_apart(a: Atom, b: Atom) -> float:
    try:
        return abs((datetime.fromisoformat(a.created_at) - datetime.fromisoformat(b.created_at)).total_seconds())
    except ValueError:
        return float("inf")


def lift_neighbours(cands: dict[str, Candidate], by_turn: dict[int, Atom], p: Params) -> None:
    """A strong turn lifts the turns next to it: each neighbour scores at least
    `neighbour_lift` x the hit's score (an answer often sits one turn after the question that
    names the topic). Neighbours not yet candidates join the pool."""
    if p.neighbour_lift <= 0 or p.neighbour_reach <= 0:
        return
    strongest = sorted(cands.values(), key=lambda c: c.score, reverse=True)[:p.lift_top]
    turn_cands = {c.atom.turn_id: c for c in strongest if c.atom.kind == "turn" and c.atom.turn_id is not None}
    best: dict[int, float] = {}  # the best neighbouring score of each turn, before lifting
    for tid, c in turn_cands.items():
        for d in range(1, p.neighbour_reach + 1):
            for n, side in ((tid - d, p.neighbour_back), (tid + d, 1.0)):
                value = c.score * side * p.neighbour_decay ** (d - 1)
                other = by_turn.get(n)
                if (value > best.get(n, 0.0) and other is not None
                        and seconds_apart(c.atom, other) <= p.lift_gap_s):
                    best[n] = value
    for n, value in best.items():
        atom = by_turn.get(n)
        if atom is None:
            continue
        c = cands.get(atom.id)
        if c is None:
            c = cands[atom.id] = Candidate(atom)
        if value > c.score:
            # move part of the way towards the neighbour's score: a turn with its own match
            # and a strong neighbour beats one that only has the neighbour
            lifted = c.score + p.neighbour_lift * (value - c.score)
            c.signals["neighbour"] = lifted
            c.score = lifted


# -- turn neighbours: what the full-text index holds, and context ------------------------------

def search_text(atom: Atom, by_turn: dict[int, Atom]) -> str:
    """What the full-text index holds for an atom: its text, and for a turn also up to
    SEARCH_REACH turns either side in the same session (no gap over SESSION_GAP_S). An answer
    rarely repeats the words of the question it answers; indexing each turn with its
    neighbours lets a question match the exchange. Measured on the recall benchmark, beside
    neighbour lifting: +-1 turn +0.02 hit@t10, +-2 +0.035, +-3 +0.03."""
    if atom.kind != "turn" or atom.turn_id is None:
        return atom.text
    parts = [atom.text]
    for step in (-1, 1):
        edge = atom
        for d in range(1, SEARCH_REACH + 1):
            other = by_turn.get(atom.turn_id + step * d)
            if other is None or seconds_apart(edge, other) > SESSION_GAP_S:
                break
            parts.insert(0, other.text) if step < 0 else parts.append(other.text)
            edge = other
    return "\n".join(parts)


def with_search_text(atoms: Iterable[Atom]) -> Iterator[tuple[Atom, str]]:
    """Each atom of a stream with its full-text entry, seeing SEARCH_REACH atoms each side."""
    window: deque[Atom] = deque()
    it = iter(atoms)
    pending = 0  # index in `window` of the next atom to emit

    def emit(i: int) -> tuple[Atom, str]:
        near = {a.turn_id: a for a in window if a.kind == "turn" and a.turn_id is not None}
        return window[i], search_text(window[i], near)

    for atom in it:
        window.append(atom)
        if len(window) - 1 - pending >= SEARCH_REACH:  # the atom at `pending` sees far enough ahead
            yield emit(pending)
            pending += 1
            if pending > SEARCH_REACH:
                window.popleft()
                pending -= 1
    while pending < len(window):
        yield emit(pending)
        pending += 1


def context_turns(atom: Atom, by_turn: dict[int, Atom], p: Params) -> list[Atom]:
    """The hit with its neighbouring turns that are close in time, oldest first."""
    if atom.kind != "turn" or atom.turn_id is None or (p.context_before == 0 and p.context_after == 0):
        return []
    out = [atom]
    for d in range(1, p.context_before + 1):
        prev = by_turn.get(atom.turn_id - d)
        if prev is None or seconds_apart(prev, out[0]) > p.context_gap_s:
            break
        out.insert(0, prev)
    for d in range(1, p.context_after + 1):
        nxt = by_turn.get(atom.turn_id + d)
        if nxt is None or seconds_apart(out[-1], nxt) > p.context_gap_s:
            break
        out.append(nxt)
    return out if len(out) > 1 else []
