"""Automatic recall: before a turn, bring back what left the window and matters now.

The index is queried with the new message (and, for a short follow-up such as "and the other
one?", more weakly with the tail of the last reply). Hits
above the relevance threshold that are not in the window and were not already recalled into a
turn still in the window become one `recall` block, capped in tokens, stored in the user's turn
and re-sent unchanged afterwards (history stays append-only, so the prompt cache keeps serving it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..index.atoms import Hit
from ..index.fusion import query_terms
from ..store.blocks import recall_block, render_block
from .archive import archived_ids

if TYPE_CHECKING:
    from ..config import Config
    from ..store.turns import Turn, TurnStore
    from .service import MemoryService

REPLY_WEIGHT = 0.8        # a hit found only through the last reply counts for less
REPLY_QUERY_CHARS = 600   # the tail of the last reply used as a second query
FOLLOW_UP_TERMS = 8       # a message with fewer content words is a follow-up: the reply helps
HIT_TEXT_CHARS = 900      # most characters of one recalled atom
CONTEXT_TEXT_CHARS = 400  # most characters of each neighbouring turn brought along
MIN_BUDGET_TOKENS = 150
# A memory holding most of the message's content words is recalled whatever its fused score:
# BM25 scores are small while an instance is young (few turns to tell common words from rare
# ones), and the calibrated threshold assumes a grown index.
STRONG_WORD_MATCH = 0.6


@dataclass
class RecallPick:
    block: dict[str, Any] | None            # the recall block, or None when nothing qualified
    hits: list[Hit] = field(default_factory=list)
    considered: int = 0                     # hits the index returned before threshold and dedup
    mode: str = "hybrid"
    note: str | None = None                 # e.g. why retrieval was full-text only
    tokens: int = 0


def budget_tokens(config: "Config") -> int:
    return config.recall_max_tokens or max(MIN_BUDGET_TOKENS, round(config.max_window_tokens * 0.02))


def recalled_in(turns: list["Turn"]) -> set[str]:
    """Atom ids already recalled into these turns (and the turns brought along with them)."""
    ids: set[str] = set()
    for turn in turns:
        for block in turn.blocks:
            if block.get("type") == "recall":
                for item in block.get("items") or []:
                    ids.add(str(item.get("id")))
                    ids.update(f"turn:{t}" for t in item.get("context_turn_ids") or [])
    return ids


def anything_to_recall(service: "MemoryService", store: "TurnStore") -> bool:
    """Is there memory outside the window at all? Cheap (no index is opened): a fresh instance
    whose whole history is in the window has nothing to recall and need not load the index."""
    inst = service.instance
    return bool(store.archived_count()
                or store.conn.execute("SELECT 1 FROM manual_atoms LIMIT 1").fetchone()
                or (inst.memory_dir.is_dir() and next(inst.memory_dir.glob("*.md"), None))
                or (inst.wiki_dir.is_dir() and next(inst.wiki_dir.rglob("*.md"), None)))


def pick(service: "MemoryService", store: "TurnStore", config: "Config", message: str,
         *, now: datetime | None = None) -> RecallPick:
    if not anything_to_recall(service, store):
        return RecallPick(None)
    window = store.window()
    last_reply = next((t.text for t in reversed(window)
                       if t.role == "assistant" and t.status != "failed"), "")
    in_window = {f"turn:{t.id}" for t in window}
    # Notes replay archived as near-duplicates stay searchable but are never recalled: the note
    # that kept them is (excluded here, before the index drops same-text hits, or the archived
    # copy could win the tie and leave nothing to recall).
    exclude = in_window | recalled_in(window) | archived_ids(service.instance.memory_dir)
    k = config.recall_k * 3
    result = service.search(message, k=k, exclude_ids=exclude, now=now, config=config)
    best: dict[str, Hit] = {h.atom.id: h for h in result.hits}
    if last_reply.strip() and len(query_terms(message)) < FOLLOW_UP_TERMS:
        extra = service.search(last_reply[-REPLY_QUERY_CHARS:], k=k, exclude_ids=exclude, now=now,
                               config=config)
        for hit in extra.hits:
            hit.score *= REPLY_WEIGHT
            if hit.atom.id not in best or best[hit.atom.id].score < hit.score:
                best[hit.atom.id] = hit
    ranked = sorted(best.values(), key=lambda h: h.score, reverse=True)  # graph-lifted by search
    many_words = len(query_terms(message)) >= 2
    chosen = [h for h in ranked if h.score >= config.recall_min_score
              or (many_words and h.signals.get("words", 0.0) >= STRONG_WORD_MATCH)]
    out = RecallPick(None, [], len(ranked), result.mode, result.note)
    items: list[dict[str, Any]] = []
    covered = set(exclude)
    budget = budget_tokens(config)
    for hit in chosen:
        if len(items) >= config.recall_k:
            break
        if hit.atom.id in covered:
            continue  # brought along already as another hit's neighbour
        item = _item(hit, covered)
        trial = recall_block([*items, item], mode=result.mode)
        tokens = store.estimator.estimate_chars(len(render_block(trial)))
        if tokens > budget:
            continue  # a smaller, lower-ranked memory may still fit
        items.append(item)
        out.hits.append(hit)
        out.tokens = tokens
        covered.add(hit.atom.id)
        covered.update(f"turn:{t}" for t in item["context_turn_ids"])
    if items:
        out.block = recall_block(items, mode=result.mode)
    return out


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item(hit: Hit, covered: set[str]) -> dict[str, Any]:
    atom = hit.atom
    context = [a for a in hit.context if a.id == atom.id or a.id not in covered]
    if atom.kind == "turn" and len(context) > 1:
        lines = []
        for a in context:
            limit = HIT_TEXT_CHARS if a.id == atom.id else CONTEXT_TEXT_CHARS
            lines.append(f"[turn {a.turn_id} · {a.role} · {a.created_at}] {_cut(a.text, limit)}")
        text = "\n".join(lines)
    else:
        text = _cut(atom.text, HIT_TEXT_CHARS)
    item: dict[str, Any] = {"id": atom.id, "kind": atom.kind, "time": atom.created_at,
                            "score": round(hit.score, 3),
                            "signals": {k: round(v, 3) for k, v in hit.signals.items()},
                            "text": text,
                            "context_turn_ids": [a.turn_id for a in context
                                                 if a.turn_id is not None and a.id != atom.id]}
    if atom.role:
        item["role"] = atom.role
    if atom.source:
        item["source"] = atom.source + (f":{atom.line}" if atom.line else "")
    return item
