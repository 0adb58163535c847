"""`mnemara replay`: consolidate the last days of memory, as a dry run or for real.

The dry run (the default) builds the plan (`replay/plan.py`) and returns it: it takes no lock,
opens the turn store read-only, reads the index without opening it for writing, and writes
nothing anywhere (no digest, no proposal, no index version, no lock file).

`--apply` takes the instance lock exclusively (a chat's turn waits for it, and replay waits for
a turn in flight), brings the index up to date (drains the outbox), builds the plan again from
what is now on disk, and carries it out, each step atomic and each one idempotent, so a kill at
any moment is finished by the next run and a second run with no new memory changes nothing:

1. proposals: added to the proposal store (one file each; a fingerprint already there is declined);
2. near-duplicates: moved to `memory/archive/` (`memory/archive.py`), interrupted moves finished;
3. with `--synthesize`, fact atoms for archived conversations (one transaction per block);
4. the index: archived notes re-queued with their archive source (searchable, not recalled),
   for every archived note whose index row still says otherwise, then drained;
5. the digest `sleep/YYYY-MM-DD.md`, written only when its text changed.

With `--synthesize`, the model drafts before the lock is taken (a slow model never holds up a
chat); drafts are matched to the plan built under the lock by fingerprint and fact block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MnemaraError

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..replay.plan import Plan
    from ..replay.synthesize import FactBlock
    from ..store.turns import TurnStore

Progress = Callable[[str, int, int], None]


@dataclass
class ReplayReport:
    plan: "Plan"
    applied: bool
    synthesize: bool
    added: list[str] = field(default_factory=list)          # proposal ids written now
    archived: list[str] = field(default_factory=list)       # note ids moved now (or finished)
    facts: list[str] = field(default_factory=list)          # fact atom ids written now
    fact_blocks: list[str] = field(default_factory=list)    # blocks a --synthesize would read
    requeued: list[str] = field(default_factory=list)       # archived notes re-marked in the index
    digest_written: bool = False
    warnings: list[str] = field(default_factory=list)


def replay(instance: "Instance", config: "Config", *, days: int, threshold: int,
           apply: bool = False, synthesize: bool = False, progress: Progress | None = None,
           now: datetime | None = None) -> ReplayReport:
    """One replay of `instance` (see the module docstring); `progress(phase, done, total)`.
    Raises ClusteringUnavailable, InstanceBusy or MnemaraError with one line."""
    from ..replay.plan import build_plan
    from ..store.turns import TurnStore
    if not apply:
        store = TurnStore(instance.turns_path, readonly=True) if instance.turns_path.exists() else None
        try:
            plan = build_plan(instance, config, store, days=days, threshold=threshold, now=now,
                              progress=progress)
            report = ReplayReport(plan, False, synthesize)
            if synthesize and store is not None:
                report.fact_blocks = [b.key for b in _fact_blocks(plan, store)]
            return report
        finally:
            if store is not None:
                store.close()

    drafts: dict[str, str] = {}
    facts: dict[str, list[str]] = {}
    if synthesize:
        drafts, facts = _synthesize_first(instance, config, days, threshold, now, progress)
    from ..lock import instance_lock
    with instance_lock(instance, exclusive=True, purpose="replay --apply"):
        with TurnStore(instance.turns_path) as store:
            drain_note = _drain(instance, config)
            plan = build_plan(instance, config, store, days=days, threshold=threshold, now=now,
                              progress=progress, drain_note=drain_note)
            report = ReplayReport(plan, True, synthesize)
            _apply(instance, config, store, plan, report, drafts, facts if synthesize else None)
    return report


# --- --synthesize, before the lock --------------------------------------------------------------

def _synthesize_first(instance: "Instance", config: "Config", days: int, threshold: int,
                      now: datetime | None,
                      progress: Progress | None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Model drafts for the new proposals and facts for the new fact blocks of a read-only plan:
    {fingerprint: body}, {block key: facts}."""
    from ..replay.plan import build_plan
    from ..replay.synthesize import SynthesisFailed, write_body, write_facts
    from ..store.turns import TurnStore
    if not instance.turns_path.exists():
        return {}, {}
    with TurnStore(instance.turns_path, readonly=True) as store:
        plan = build_plan(instance, config, store, days=days, threshold=threshold, now=now,
                          progress=progress)
        blocks = _fact_blocks(plan, store)
    bodies: dict[str, str] = {}
    found: dict[str, list[str]] = {}
    try:
        for d in plan.drafted:
            if d.proposal is not None and d.new:
                bodies[d.proposal.fingerprint] = write_body(config, d.pattern)
        for block in blocks:
            found[block.key] = write_facts(config, block)
    except SynthesisFailed as exc:
        raise MnemaraError(f"{exc}; nothing was written (run without --synthesize for "
                           "template drafts)") from None
    return bodies, found


def _fact_blocks(plan: "Plan", store: "TurnStore") -> list["FactBlock"]:
    from ..replay.synthesize import fact_blocks
    return fact_blocks(plan.loaded.turns, plan.loaded.archived_turn_ids, store)


# --- --apply, under the lock --------------------------------------------------------------------

def _drain(instance: "Instance", config: "Config") -> str | None:
    """Bring the index up to date, so the plan reads every atom's vector from it. A failure is
    a note (the plan then embeds what is missing), never a stop."""
    if not config.rag_enabled:
        return None
    from ..memory.service import MemoryService, MemoryUnavailable
    service = MemoryService(instance, config)
    try:
        report = service.drain()
    except MemoryUnavailable as exc:
        return f"the index was not brought up to date ({exc})"
    finally:
        service.close()
    return f"the index was not brought up to date ({report.error})" if report.error else None


def _apply(instance: "Instance", config: "Config", store: "TurnStore", plan: "Plan",
           report: ReplayReport, drafts: dict[str, str], facts: dict[str, list[str]] | None) -> None:
    from ..fsutil import atomic_write_text, ensure_private_dir
    from ..memory.archive import remove_stale_temps
    from ..replay.digest import render_digest
    from ..replay.drafts import draft
    from ..replay.proposals import ProposalStore
    from ..replay.synthesize import existing_facts

    proposals = ProposalStore(instance)
    for d in plan.drafted:
        if d.proposal is None or not d.new:
            continue
        body = drafts.get(d.proposal.fingerprint)
        proposal = draft(d.pattern, plan.space.mode, plan.space.cutoffs.pattern, body) if body else d.proposal
        if proposals.add(proposal):
            report.added.append(proposal.id)

    report.archived = _archive(instance, plan)

    if facts is not None:
        report.facts = _write_facts(store, config, plan, facts)

    report.requeued = _mark_archived(instance, config, store, plan)

    text = render_digest(plan, existing_facts(store, plan.loaded.since))[1]
    path = instance.root / plan.digest_path
    plan.digest = text
    if path.parent.is_dir():
        remove_stale_temps(path)  # a digest write killed earlier (we hold the instance lock)
    if not path.is_file() or path.read_text(encoding="utf-8", errors="replace") != text:
        ensure_private_dir(path.parent)
        atomic_write_text(path, text)
        report.digest_written = True


def _archive(instance: "Instance", plan: "Plan") -> list[str]:
    """Move the planned duplicates (and finish interrupted moves), one day file at a time."""
    from ..memory.archive import Move, archive_notes, text_digest
    by_file: dict[str, list[Move]] = {}
    for note, kept in plan.moves:
        by_file.setdefault(note.source, []).append(Move(note.id, text_digest(note.text), kept.id))
    for entry in plan.loaded.interrupted:
        source = f"memory/{entry.original_id.split(':')[1]}"
        by_file.setdefault(source, []).append(Move(entry.original_id, entry.digest, entry.kept_id))
    moved: list[str] = []
    for source, moves in sorted(by_file.items()):
        archive_notes(instance.memory_dir, instance.root / source, moves, plan.loaded.today)
        moved.extend(m.note_id for m in moves)
    return moved


def _write_facts(store: "TurnStore", config: "Config", plan: "Plan",
                 facts: dict[str, list[str]]) -> list[str]:
    """Fact atoms for the blocks still without any, each block in one transaction."""
    import json

    from ..index.atoms import Atom
    from ..memory.outbox import enqueue
    written: list[str] = []
    blocks = {b.key: b for b in _fact_blocks(plan, store)}
    for key, lines in sorted(facts.items()):
        block = blocks.get(key)
        if block is None or not lines:
            continue  # written meanwhile, or nothing worth keeping in it
        ids = [a.turn_id for a in block.turns]
        pointer = "turns " + ", ".join(str(i) for i in ids)
        with store.transaction():
            for n, text in enumerate(lines, 1):
                if config.redact:
                    from ..redact import redact
                    text = redact(text)
                atom = Atom(id=f"fact:{key}.{n}", kind="fact", text=text,
                            created_at=block.turns[-1].created_at, source=pointer,
                            category="replay")
                store.conn.execute(
                    "INSERT OR IGNORE INTO manual_atoms (id, atom, created_at) VALUES (?, ?, ?)",
                    (atom.id, json.dumps(atom.to_json(), ensure_ascii=False), atom.created_at))
                enqueue(store.conn, "upsert", atom.id, atom)
                written.append(atom.id)
    return written


def _mark_archived(instance: "Instance", config: "Config", store: "TurnStore", plan: "Plan") -> list[str]:
    """Record in the index that the archived notes of the period now live in the archive (so
    they are shown as archived, and a rebuild finds them there): every one whose index row says
    otherwise, moved now or by a run killed before it got here. One index write, nothing
    embedded again; an archived note the index has not taken in yet is queued instead."""
    if not (config.rag_enabled and config.rag_auto_index_memory and instance.index_dir.is_dir()):
        return []
    from ..index.readonly import read_rows
    from ..memory.archive import archived_atom, is_archived, iter_archived
    from ..memory.notes import iter_notes
    from ..memory.outbox import enqueue
    from ..memory.sources import for_index, note_id
    active = {note_id(n.path, n.line) for n in iter_notes(instance.memory_dir) if n.body.strip()}
    entries = {e.original_id: e for e in iter_archived(instance.memory_dir)
               if e.note.body.strip() and e.original_id not in active
               and archived_atom(e).created_at >= plan.loaded.since}
    if not entries:
        return []
    try:
        stored = read_rows(instance.index_dir, list(entries), vectors=False).atoms
    except (OSError, RuntimeError, ValueError) as exc:
        plan.space.note = f"index not read ({exc})"
        return []
    todo = [i for i in sorted(entries) if i not in stored or not is_archived(stored[i])]
    if not todo:
        return []
    places = {i: (archived_atom(entries[i]).source, entries[i].note.line) for i in todo if i in stored}
    from ..index.embedders import EmbedderUnavailable
    from ..memory.service import MemoryService, MemoryUnavailable
    service = MemoryService(instance, config)
    try:
        service.index().relocate(places)
    except (MemoryUnavailable, EmbedderUnavailable, OSError, RuntimeError, ValueError) as exc:
        plan.space.note = f"archived notes not marked in the index yet ({exc}); the next replay does it"
        return []
    finally:
        service.close()
    missing = [i for i in todo if i not in stored]
    if missing:  # never indexed (memory was off when written): index them as archived notes
        with store.transaction():
            for atom_id in missing:
                enqueue(store.conn, "upsert", atom_id, for_index(archived_atom(entries[atom_id]), config))
        _drain(instance, config)
    return todo


def report_json(report: ReplayReport) -> dict[str, Any]:
    """Everything the run found and did (or, dry, would do), for `--json`."""
    plan = report.plan
    return {
        "instance": plan.instance, "applied": report.applied, "days": plan.days,
        "threshold": plan.threshold, "since": plan.loaded.since,
        "similarity": {"mode": plan.space.mode, "embedder": plan.embedder,
                       "detail": plan.space.detail, "note": plan.space.note,
                       "pattern_cutoff": round(plan.space.cutoffs.pattern, 3),
                       "duplicate_cutoff": round(plan.space.cutoffs.duplicate, 3)},
        "atoms": plan.loaded.counts(),
        "graph": plan.graph_note or "read",
        "patterns": [{
            "kind": d.pattern.kind, "title": d.pattern.title, "target": d.pattern.slug if d.pattern.kind == "wiki" else None,
            "members": [a.id for a in d.pattern.members], "terms": d.pattern.terms,
            "entities": [{"entity": e, "members": n} for e, n in d.pattern.entities],
            "causes": d.pattern.causes, "related": d.pattern.related,
            "covered_by": d.pattern.covered_by,
            "proposal": None if d.proposal is None else {
                **{k: v for k, v in d.proposal.to_json().items() if k != "format"},
                "new": d.new}} for d in plan.drafted],
        "duplicates": [{"kept": g.kept.id, "absorbed": [a.id for a in g.absorbed],
                        "archived_before": sorted(g.already)} for g in plan.duplicates],
        "moves": [{"note": n.id, "from": n.source, "to": f"memory/archive/{Path(n.source).name}",
                   "kept": k.id} for n, k in plan.moves],
        "interrupted": [e.original_id for e in plan.loaded.interrupted],
        "fact_blocks": report.fact_blocks,
        "written": {"proposals": report.added, "archived": report.archived, "facts": report.facts,
                    "index_requeued": report.requeued,
                    "digest": plan.digest_path if report.digest_written else None},
        "digest": {"path": plan.digest_path, "text": plan.digest},
        "warnings": report.warnings,
    }
