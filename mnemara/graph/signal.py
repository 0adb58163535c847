"""The graph as a recall signal: a message that names an entity brings the memories linked to it
a little closer.

Recall ranks its candidates by words, vectors and time (index/fusion.py); this runs after, on
those candidates only: each hit linked in the graph to an entity the message names (by the
extractor, or by a bare name the graph already knows) moves `weight` of the way towards a score
of 1, less for an entity linked to many atoms (an entity on every note says little about any
one of them). The hit's `signals` then holds "graph". It never adds a hit and never drops one.

`graph_recall_weight` (default 0.3, 0 = off) was chosen on the LoCoMo dev set
(benchmarks/bench_graph.py, figures in the README): hit@t10 0.834 -> 0.842; heavier weights gain
a little more but push more unanswerable questions' best hits over the recall threshold.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .entities import Entity, candidates, extract_entities

if TYPE_CHECKING:
    import sqlite3

    from ..config import Config
    from ..index.atoms import Hit
    from ..instance import Instance
    from .store import Graph

MAX_LOOKUPS = 400  # candidate entity ids looked up for one message


def closeness(message: str, graph: "Graph", entities: "list[Entity] | None" = None) -> dict[str, float]:
    """Atom id -> how closely the graph ties it to what the message names (0..1]: 1 for the only
    atom linked to a named entity, less the more atoms share the entity. `entities`: those the
    message names, when the caller has looked them up already."""
    if not message.strip():
        return {}
    wanted = entities if entities is not None else \
        list(dict.fromkeys(extract_entities(message) + sorted(candidates(message))))[:MAX_LOOKUPS]
    out: dict[str, float] = {}
    for atoms in graph.atoms_for_entities(wanted).values():
        specificity = 1.0 / (1.0 + math.log2(max(1, len(atoms))))
        for atom_id in atoms:
            out[atom_id] = max(out.get(atom_id, 0.0), specificity)
    return out


def lift(hits: list["Hit"], message: str, graph: "Graph", weight: float,
         close: dict[str, float] | None = None) -> list["Hit"]:
    """`hits` re-ranked with the graph signal (changed in place; returned sorted). `close`:
    `closeness(message, graph)` when the caller has it already."""
    if weight <= 0 or not hits:
        return hits
    close = closeness(message, graph) if close is None else close
    if not close:
        return hits
    for hit in hits:
        share = close.get(hit.atom.id)
        if share:
            hit.score += weight * share * (1.0 - hit.score)
            hit.signals["graph"] = weight * share
    return sorted(hits, key=lambda h: h.score, reverse=True)


def lift_for_recall(instance: "Instance", config: "Config", message: str,
                    hits: list["Hit"], db: "sqlite3.Connection | None" = None) -> list["Hit"]:
    """`lift` with the instance's graph and config; the hits unchanged when the signal is off or
    the graph cannot be read (recall never fails because of the graph). With `db` (the turn
    store), a message naming no entity any atom names costs one SQLite lookup, not a graph read."""
    weight = float(getattr(config, "graph_recall_weight", 0.0) or 0.0)
    if weight <= 0 or not hits or not getattr(config, "graph_enabled", True):
        return hits
    from .store import Graph, GraphUnavailable
    graph = Graph(instance.graph_dir, lock_wait=0.5)
    if not graph.exists():
        return hits
    known = None
    if db is not None:
        import sqlite3

        from .feed import known_entities
        try:
            known = known_entities(db, set(extract_entities(message)) | candidates(message))
        except sqlite3.Error:
            known = None  # a store without the graph's tables: ask the graph
        if known == []:
            return hits
    try:
        return lift(hits, message, graph, weight, closeness(message, graph, known))
    except GraphUnavailable:
        return hits
