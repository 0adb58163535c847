"""A replay plan: everything one run found and would write, computed without writing anything.

`build_plan` runs the seven phases as far as finding goes (load, compare, cluster, augment,
draft, find duplicates, draft role amendments) and renders the digest; `ops/replay.py` either
prints the plan (the dry run) or carries it out (`--apply`). Both read the same plan, so the dry
run shows exactly what `--apply` would write.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable

from ..index.atoms import Atom
from .drafts import draft
from .load import Loaded, is_self_observation, load, order
from .patterns import (DuplicateGroup, GraphView, Pattern, augment, duplicate_groups, eligible,
                       name_pattern, slugify, star_clusters)
from .similarity import (ClusteringUnavailable, Space, centroid_similarity, content_words,
                         lexical_space, vector_space)

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..store.turns import TurnStore
    from .proposals import Proposal

Progress = Callable[[str, int, int], None]
PHASES = ("load", "compare", "cluster", "augment", "draft", "duplicates", "digest")


@dataclass
class Drafted:
    pattern: Pattern
    proposal: "Proposal | None"       # None: a wiki page covers the pattern already
    new: bool = False                 # the store holds no proposal with its fingerprint


@dataclass
class Plan:
    instance: str
    days: int
    threshold: int
    loaded: Loaded
    space: Space
    embedder: str | None
    drafted: list[Drafted] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    graph_note: str | None = None
    digest_path: str = ""
    digest: str = ""

    @property
    def moves(self) -> list[tuple[Atom, Atom]]:
        """(note to archive, the note keeping it) for notes not archived yet."""
        return [(a, g.kept) for g in self.duplicates for a in g.absorbed if a.id not in g.already]

    @property
    def new_proposals(self) -> list["Proposal"]:
        return [d.proposal for d in self.drafted if d.proposal is not None and d.new]


def build_plan(instance: "Instance", config: "Config", store: "TurnStore | None", *, days: int,
               threshold: int, now: datetime | None = None, progress: Progress | None = None,
               drain_note: str | None = None) -> Plan:
    """The plan for one run. Reads the sources, the index (read only) and the proposal store;
    writes nothing. Raises ClusteringUnavailable when the atoms cannot be compared at all."""
    from .digest import render_digest
    from .proposals import ProposalStore

    def step(name: str) -> None:
        if progress:
            progress(name, PHASES.index(name), len(PHASES))

    step("load")
    loaded = load(instance, config, store, days, now)
    members = [a for a in loaded.members if eligible(a)]
    notes = [a for a in loaded.members if a.kind == "note"]
    universe = _unique([*members, *notes, *loaded.wiki])
    step("compare")
    space, embedder = compare(instance, config, universe, progress, drain_note)
    row = {a.id: i for i, a in enumerate(universe)}

    step("cluster")
    plan = Plan(instance.name, days, threshold, loaded, space, embedder)
    df: Counter[str] = Counter()
    for a in members:
        df.update(set(content_words(a.text)))
    patterns: list[Pattern] = []
    for kind, group in (("wiki", [a for a in members if not is_self_observation(a)]),
                        ("role", [a for a in members if is_self_observation(a)])):
        rows = [row[a.id] for a in group]
        for cluster in star_clusters(space, rows, threshold):
            atoms = [universe[r] for r in cluster]
            centre = universe[cluster[0]]
            patterns.append(Pattern(kind, atoms, centre, name_pattern(atoms, df, len(members))))

    # Largest first, then oldest: the order of the digest and of the output.
    patterns.sort(key=lambda p: (p.kind != "wiki", -len(p.members), order(p.members[0]), p.terms))
    step("augment")
    graph = GraphView(instance, config)
    augment(patterns, graph)
    plan.graph_note = graph.note

    step("draft")
    known = {p.fingerprint for p in ProposalStore(instance).list()}  # read once, not per draft
    wiki_rows = [row[a.id] for a in loaded.wiki]
    slugs = {a.source.removeprefix("wiki/").removesuffix(".md") for a in loaded.wiki}
    used: set[str] = set()
    for p in patterns:
        base = slugify(p.terms)
        p.slug = _free(f"replay/{base}" if p.kind == "wiki" else base, used)
        p.title = " ".join(w.capitalize() for w in p.terms) if p.kind == "wiki" else \
            f"Role amendment: {', '.join(p.terms)}"
        if p.kind == "wiki":
            p.covered_by = _covering_page(p, slugs, space, [row[a.id] for a in p.members],
                                          wiki_rows, universe)
        proposal = None if p.covered_by else draft(p, space.mode, space.cutoffs.pattern)
        plan.drafted.append(Drafted(p, proposal, proposal is not None and proposal.fingerprint not in known))

    step("duplicates")
    archived_ids = {a.id for a in loaded.archived}
    note_rows = [row[a.id] for a in notes if a.id not in loaded.superseded]
    plan.duplicates = duplicate_groups(space, note_rows, universe, archived_ids)

    step("digest")
    from .synthesize import existing_facts
    facts = existing_facts(store, loaded.since) if store is not None else []
    plan.digest_path, plan.digest = render_digest(plan, facts)
    return plan


def compare(instance: "Instance", config: "Config", atoms: list[Atom],
            progress: Progress | None = None, drain_note: str | None = None) -> tuple[Space, str | None]:
    """The similarity space: the index's vectors (the missing ones embedded in batches) when
    an embedder is configured and works, else lexical, saying why."""
    from ..index.embedders import EmbedderUnavailable
    from ..memory.sources import for_index
    note = drain_note
    if not config.rag_enabled:
        return lexical_space([a.text for a in atoms], "memory is off (rag_enabled is false)"), None
    if config.rag_embedder == "none":
        return lexical_space([a.text for a in atoms], "no embedder configured (rag_embedder is none)"), None
    from ..index.embedders import make_embedder
    try:
        embedder = make_embedder(config.rag_embedder, url=config.rag_embed_url,
                                 model=config.rag_embed_model)
    except (ValueError, EmbedderUnavailable) as exc:
        return lexical_space([a.text for a in atoms], f"embedder unavailable: {_line(exc)}"), None
    indexed = [for_index(a, config) for a in atoms]  # the text the index holds (redacted)
    stored: dict[str, Any] = {}
    try:
        from ..index.readonly import read_rows
        rows = read_rows(instance.index_dir, [a.id for a in atoms])
        if rows.embedder == embedder.name:
            # Only vectors of the text the index would hold now: an atom edited since it was
            # indexed is embedded afresh.
            texts = {a.id: a.text for a in indexed}
            stored = {i: v for i, v in rows.vectors.items() if rows.atoms[i].text == texts.get(i)}
        elif rows.vectors:
            note = f"the index's vectors are from {rows.embedder}, not {embedder.name}; embedded afresh"
    except (OSError, RuntimeError, ValueError, ImportError) as exc:
        note = f"index not read ({_line(exc)}); embedded afresh"

    def embedding(done: int, total: int) -> None:
        if progress:  # the bar follows the embedding while there is some to do
            progress("compare", done, total)

    try:
        space = vector_space(indexed, embedder, stored, embedding)
    except EmbedderUnavailable as exc:
        return lexical_space([a.text for a in atoms], f"embedder unavailable: {_line(exc)}"), None
    space.note = note
    return space, embedder.name


def _covering_page(p: Pattern, slugs: set[str], space: Space, member_rows: list[int],
                   wiki_rows: list[int], universe: list[Atom]) -> str | None:
    """The wiki page that already covers the pattern: the page at its slug, or a section as
    close to its members' centre as a member would be."""
    if p.slug in slugs:
        return p.slug
    if not wiki_rows:
        return None
    sims = centroid_similarity(space, member_rows, wiki_rows)
    best = max(range(len(wiki_rows)), key=lambda i: sims[i])
    if sims[best] >= space.cutoffs.pattern:
        atom = universe[wiki_rows[best]]
        return atom.id.removeprefix("wiki:").split("#")[0]
    return None


def _free(slug: str, used: set[str]) -> str:
    candidate, n = slug, 2
    while candidate in used:
        candidate, n = f"{slug}-{n}", n + 1
    used.add(candidate)
    return candidate


def _unique(atoms: list[Atom]) -> list[Atom]:
    seen: dict[str, Atom] = {}
    for a in atoms:
        seen.setdefault(a.id, a)
    return list(seen.values())


def _line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


__all__ = ["ClusteringUnavailable", "Drafted", "PHASES", "Plan", "build_plan", "compare"]
