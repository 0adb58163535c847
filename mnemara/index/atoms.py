"""Memory atoms: the unit the index stores and recall returns. No heavy imports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS = ("turn", "note", "wiki", "manual", "fact")


@dataclass(frozen=True)
class Atom:
    """One indexable piece of memory.

    `id` is stable and says where the atom lives: `turn:42`, `note:2026-12-05.md:14` (file and
    header line under memory/), `wiki:deploy/staging#2` (page slug and section number),
    `manual:<hex>`.
    """

    id: str
    kind: str                  # one of KINDS
    text: str
    created_at: str            # ISO-8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"
    source: str = ""           # a path relative to the instance directory (notes, wiki, manual)
    line: int = 0              # 1-based line in `source`, when it has one
    turn_id: int | None = None  # for kind "turn"
    role: str = ""             # "user" | "assistant" for turns
    category: str = ""         # note category, wiki tags, manual category
    superseded: bool = False   # replaced by a corrected atom: kept, but never recalled

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Atom":
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class Hit:
    """One retrieval result: the atom, a fused score in 0..1, and why it was found.

    `signals` names each signal that contributed with its own 0..1 value (e.g. "text": the
    full-text match, "vector": the embedding similarity, "time": a match on a time phrase in the
    query, "neighbour": lifted by an adjacent turn). `context` holds neighbouring turns brought
    along with a turn hit, oldest first, the hit itself included in its place.
    """

    atom: Atom
    score: float
    signals: dict[str, float] = field(default_factory=dict)
    context: list[Atom] = field(default_factory=list)

    def turn_ids(self) -> list[int]:
        """The conversation turns this hit surfaces, in order (its context, else itself)."""
        atoms = self.context or [self.atom]
        return [a.turn_id for a in atoms if a.turn_id is not None]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.atom.id, "kind": self.atom.kind, "source": self.atom.source,
                "line": self.atom.line, "turn_id": self.atom.turn_id, "role": self.atom.role,
                "category": self.atom.category, "time": self.atom.created_at,
                "score": round(self.score, 4), "signals": {k: round(v, 4) for k, v in self.signals.items()},
                "text": self.atom.text,
                "context_turn_ids": [a.turn_id for a in self.context if a.turn_id is not None]}
