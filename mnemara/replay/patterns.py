"""Replay's middle phases: cluster the atoms into patterns, augment each with the entities its
members share and the causes they state, name it, and find the near-duplicates among notes.

Clustering is "star" clustering, deterministic and without chaining: the atom with the most
neighbours within the pattern cut-off (ties: the older, then the smaller id) becomes a centre
and takes its unassigned neighbours; repeated while some atom still has `threshold - 1`
unassigned neighbours. Every member is thus within the cut-off of its centre, so a long chain of
loosely related turns never becomes one giant "pattern". Self-observation notes are clustered
among themselves (they make role amendments, not wiki pages).

Near-duplicates are notes within the duplicate cut-off of each other (or with the same words);
each group keeps its oldest active note, and the others are archived into it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import MnemaraError
from ..index.atoms import Atom
from .load import order
from .similarity import Space, content_words, neighbours

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

MIN_WORDS = 3           # an atom with fewer content words ("ok, thanks") joins no pattern
TERMS = 3               # words naming a pattern
MAX_ENTITIES = 8
MAX_CAUSES = 4
MAX_RELATED = 10
ENTITY_MEMBERS = 40     # members (oldest first) whose entities are counted
ENTITY_CHARS = 2_000    # characters of each member read for entities
_CAUSAL = re.compile(r"\b(because|caused by|due to|so that|therefore|as a result|which (?:led|leads) "
                     r"to|led to|results? in|since then|broke|fixed by|fails? when|if .{3,60} then)\b",
                     re.I)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]?")


@dataclass
class Pattern:
    kind: str                          # "wiki" | "role"
    members: list[Atom]                # oldest first
    centre: Atom
    terms: list[str]
    entities: list[tuple[str, int]] = field(default_factory=list)  # ("host:stg-7", members naming it)
    causes: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)  # atom ids linked in the graph, outside it
    covered_by: str | None = None      # a wiki page that already covers it
    slug: str = ""
    title: str = ""

    @property
    def first(self) -> str:
        return self.members[0].created_at

    @property
    def last(self) -> str:
        return self.members[-1].created_at

    def kinds(self) -> str:
        counts = Counter(a.kind for a in self.members)
        names = {"note": "note", "turn": "turn", "fact": "fact", "manual": "entry"}
        return ", ".join(f"{n} {names.get(k, k)}{'s' if n != 1 else ''}"
                         for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass
class DuplicateGroup:
    kept: Atom
    absorbed: list[Atom]               # notes archived into `kept`, oldest first
    already: set[str] = field(default_factory=set)  # of which archived by an earlier run


def eligible(atom: Atom) -> bool:
    return len(content_words(atom.text)) >= MIN_WORDS


def star_clusters(space: Space, rows: Sequence[int], threshold: int) -> list[list[int]]:
    """Clusters of at least `threshold` rows (see the module docstring), in a stable order."""
    import heapq
    near = neighbours(space, space.cutoffs.pattern, rows, rows)
    rank = {r: i for i, r in enumerate(rows)}  # rows come oldest first
    free = set(rows)
    degree = {r: len(near[r]) for r in rows}  # unassigned neighbours (similarity is symmetric)
    heap = [(-degree[r], rank[r], r) for r in rows if degree[r] >= threshold - 1]
    heapq.heapify(heap)
    clusters: list[list[int]] = []
    while heap:  # lazy max-heap: an entry whose degree went stale is pushed back with the new one
        neg, _, best = heapq.heappop(heap)
        if best not in free:
            continue
        if -neg != degree[best]:
            if degree[best] >= threshold - 1:
                heapq.heappush(heap, (-degree[best], rank[best], best))
            continue
        members = [best] + [j for j in near[best] if j in free]
        free.difference_update(members)
        for m in members:
            for j in near[m]:
                degree[j] -= 1
        clusters.append(sorted(members, key=lambda r: rank[r]))
    return clusters


def name_pattern(members: Sequence[Atom], document_frequency: Counter[str], total: int) -> list[str]:
    """The words that set these atoms apart: frequent among them, rare elsewhere."""
    inside: Counter[str] = Counter()
    for atom in members:
        inside.update(set(content_words(atom.text)))
    scored = sorted(inside.items(), key=lambda kv: (-(kv[1] * math.log((1 + total) / (1 + document_frequency[kv[0]]))), kv[0]))
    return [w for w, n in scored if n >= 2 and len(w) > 2][:TERMS] or [w for w, _ in scored[:TERMS]]


def slugify(words: Sequence[str]) -> str:
    text = "-".join(re.sub(r"[^a-z0-9]+", "-", w.lower()).strip("-") for w in words if w)
    return text.strip("-")[:60] or "pattern"


def causes_in(members: Sequence[Atom]) -> list[str]:
    """Sentences of the members that state a cause or an effect, each once."""
    found: list[str] = []
    for atom in members:
        for sentence in _SENTENCE.findall(atom.text):
            sentence = " ".join(sentence.split())
            if 12 <= len(sentence) <= 240 and _CAUSAL.search(sentence) and sentence not in found:
                found.append(sentence)
                if len(found) >= MAX_CAUSES:
                    return found
    return found


class GraphView:
    """Entities of a text (the graph's extractor) and atoms the graph links to them.

    The graph is optional at run time: turned off, its engine missing, locked or damaged
    (GraphUnavailable), replay goes on without it and says so (`note`). It is only read."""

    def __init__(self, instance: "Instance", config: "Config") -> None:
        from ..graph import extract_entities, open_graph  # ladybug itself loads on first read
        self.note: str | None = None
        self._extract = extract_entities
        self._graph: Any = open_graph(instance, config)  # opens nothing yet
        if self._graph is None:
            self.note = "graph not read: graph_enabled is false"

    def entities(self, text: str) -> list[str]:
        return [e.node_id for e in self._extract(text)]

    def related(self, entity_ids: Sequence[str]) -> dict[str, list[str]]:
        """Atom ids linked to each entity in the graph ({} when it cannot be read: absent
        engine, locked or damaged graph, all GraphUnavailable; replay goes on and says so)."""
        if self._graph is None or not entity_ids:
            return {}
        from ..graph import Entity
        wanted = [Entity(*e.split(":", 1)) for e in entity_ids if ":" in e]
        try:
            found = self._graph.atoms_for_entities(wanted)
        except (MnemaraError, OSError) as exc:
            self._graph, self.note = None, f"graph not read: {_one_line(exc)}"
            return {}
        return {e.node_id: list(ids) for e, ids in found.items()}


def augment(patterns: Sequence[Pattern], graph: GraphView) -> None:
    """Co-occurring entities (named by at least two members), atoms the graph links to them
    (one graph read for all patterns), and the causal sentences of the members."""
    for pattern in patterns:
        counts: Counter[str] = Counter()
        for atom in pattern.members[:ENTITY_MEMBERS]:
            counts.update(set(graph.entities(atom.text[:ENTITY_CHARS])))
        shared = sorted(((e, n) for e, n in counts.items() if n >= 2), key=lambda en: (-en[1], en[0]))
        pattern.entities = shared[:MAX_ENTITIES]
        pattern.causes = causes_in(pattern.members)
    linked = graph.related(sorted({e for p in patterns for e, _ in p.entities}))
    for pattern in patterns:
        inside = {a.id for a in pattern.members}
        related: set[str] = set()
        for entity, _ in pattern.entities:
            related.update(i for i in linked.get(entity, ()) if i not in inside)
        pattern.related = sorted(related)[:MAX_RELATED]


def duplicate_groups(space: Space, rows: Sequence[int], atoms: Sequence[Atom],
                     archived_ids: set[str]) -> list[DuplicateGroup]:
    """Groups of near-duplicate notes among `rows`, each with one active note to keep."""
    near = neighbours(space, space.cutoffs.duplicate, rows, rows)
    parent = {r: r for r in rows}

    def root(r: int) -> int:
        while parent[r] != r:
            parent[r] = parent[parent[r]]
            r = parent[r]
        return r

    def join(a: int, b: int) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for r in rows:
        for j in near[r]:
            join(r, j)
    same_words: dict[str, int] = {}
    for r in rows:  # the same words in another order or case: a duplicate in any mode
        key = " ".join(sorted(content_words(atoms[r].text)))
        if key in same_words:
            join(r, same_words[key])
        elif key:
            same_words[key] = r
    groups: dict[int, list[int]] = {}
    for r in rows:
        groups.setdefault(root(r), []).append(r)
    out = []
    for members in groups.values():
        if len(members) < 2:
            continue
        ordered = sorted((atoms[r] for r in members), key=order)
        active = [a for a in ordered if a.id not in archived_ids]
        if not active:
            continue  # every copy archived already (its keeper outside the period)
        kept = active[0]
        absorbed = [a for a in ordered if a.id != kept.id]
        out.append(DuplicateGroup(kept, absorbed, {a.id for a in absorbed if a.id in archived_ids}))
    return sorted(out, key=lambda g: order(g.kept))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
