"""`mnemara replay`: the consolidation pass, as a dry run (default) or with `--apply`.

Registered on the `main` group by importing this module. Importing it stays cheap (click only):
numpy, LanceDB, the embedder and the SDK load inside the command.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from .cli import _existing, instance_option, main
from .termsafe import inert, inert_json, one_line

if TYPE_CHECKING:
    from .ops.replay import ReplayReport

BODY_INDENT = "      "


@main.command()
@instance_option
@click.option("--days", type=click.IntRange(1, 3650), default=None, metavar="N",
              help="Read the memory of the last N days (default: replay_default_days).")
@click.option("--threshold", type=click.IntRange(2, 1000), default=None, metavar="N",
              help="Fewest similar atoms that make a pattern (default: replay_default_threshold).")
@click.option("--apply", "apply", is_flag=True,
              help="Write the proposals, archive the duplicates, write the digest. Without it: "
                   "a dry run that writes nothing and prints what --apply would write.")
@click.option("--synthesize", is_flag=True,
              help="Have the model (replay_model) draft the proposal bodies and write fact atoms "
                   "for archived conversations. Without it: templates, no model call.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def replay(instance_name: str, days: int | None, threshold: int | None, apply: bool,
           synthesize: bool, as_json: bool) -> None:
    """Consolidate memory: find patterns, draft proposals, archive near-duplicates.

    Reads the notes, turns and wiki pages of the last days, clusters them (by the index's
    vectors when an embedder works, by words otherwise; it says which), drafts a wiki page for
    each pattern no page covers and a role amendment for clustered self-observations, and
    archives near-duplicate notes into memory/archive/. Review with `mnemara proposals`.
    """
    from .ops.progress import progress_bar
    from .ops.replay import replay as run
    inst = _existing(instance_name)
    config = inst.load_config()
    days = days or config.replay_default_days
    threshold = threshold or config.replay_default_threshold
    with progress_bar("replay") as update:
        report = run(inst, config, days=days, threshold=threshold, apply=apply,
                     synthesize=synthesize, progress=lambda _phase, done, total: update(done, total))
    if as_json:
        from .ops.replay import report_json
        click.echo(inert_json(json.dumps(report_json(report), ensure_ascii=False)))
    else:
        _print(report)


def _print(report: "ReplayReport") -> None:
    plan = report.plan
    c = plan.loaded.counts()
    say = lambda text: click.echo(inert(text))  # noqa: E731 - note text, model text: rendered inert
    say(f"replay of {plan.instance!r}: memory since {plan.loaded.since[:10]} ({plan.days} days): "
        f"{c['notes']} notes, {c['archived_notes']} archived notes, {c['turns']} turns; "
        f"{c['wiki_sections']} wiki sections")
    say(f"similarity: {plan.space.describe()}")
    if plan.graph_note:
        say(f"graph: {plan.graph_note}")
    wiki = [d for d in plan.drafted if d.pattern.kind == "wiki"]
    role = [d for d in plan.drafted if d.pattern.kind == "role"]
    say(f"patterns: {len(wiki)} (at least {plan.threshold} atoms within similarity "
        f"{plan.space.cutoffs.pattern:.2f}); self-observation clusters: {len(role)}")
    if not plan.drafted and not (c["notes"] or c["archived_notes"] or c["turns"]):
        say("  none: there is no memory in this period (try a larger --days)")
    elif not plan.drafted:
        say(f"  none: no atom had {plan.threshold - 1} others that close")
    for d in plan.drafted:
        p = d.pattern
        span = f"{len(p.members)} atoms, {p.first[:10]}..{p.last[:10]}"
        if d.proposal is None:
            say(f"  = {p.title} ({span}): covered by wiki page {p.covered_by}")
            continue
        what = f"wiki page {p.slug}" if p.kind == "wiki" else "role amendment"
        state = "new" if d.new else "proposed before"
        say(f"  + {d.proposal.id} {what}: {p.title!r} ({span}) [{state}]")
        say(f"      sources: {one_line(', '.join(s.atom_id for s in d.proposal.sources), 400)}")
        if p.entities:
            say(f"      named together: {', '.join(f'{e} ({n})' for e, n in p.entities)}")
        if p.causes:
            say(f"      causes: {one_line(' | '.join(p.causes), 300)}")
        if p.related:
            say(f"      linked in the graph: {', '.join(p.related)}")
    moves = plan.moves
    say(f"near-duplicates: {len(plan.duplicates)} group{'s' if len(plan.duplicates) != 1 else ''}, "
        f"{len(moves)} note{'s' if len(moves) != 1 else ''} to archive"
        + (f" (within similarity {plan.space.cutoffs.duplicate:.2f})" if plan.duplicates else ""))
    for note, kept in moves:
        say(f"  {note.id} -> memory/archive/{note.source.rsplit('/', 1)[-1]} (kept: {kept.id})")
    for entry in plan.loaded.interrupted:
        say(f"  {entry.original_id}: an interrupted move to the archive, to be finished")
    if report.synthesize and not report.applied:
        say(f"--synthesize: the model (replay_model) drafts the new proposals' bodies, and "
            f"fact atoms for {len(report.fact_blocks)} blocks of archived turns"
            + (f" ({', '.join(report.fact_blocks)})" if report.fact_blocks else ""))
    _print_writes(report)


def _print_writes(report: "ReplayReport") -> None:
    plan = report.plan
    say = lambda text: click.echo(inert(text))  # noqa: E731
    new = plan.new_proposals
    if not report.applied:
        say("would write:" if (new or plan.moves or plan.loaded.interrupted or plan.digest) else "would write nothing")
        for proposal in new:
            say(f"  proposals/{proposal.id}.json ({proposal.kind}: {proposal.title!r})")
            say(f"      rationale: {proposal.rationale}")
            for line in proposal.body.rstrip("\n").splitlines():
                say(f"{BODY_INDENT}{line}")
        days = sorted({n.source for n, _ in plan.moves}
                      | {f"memory/{e.original_id.split(':')[1]}" for e in plan.loaded.interrupted})
        for source in days:
            say(f"  memory/archive/{source.rsplit('/', 1)[-1]} (the archived notes) and {source} "
                "(their lines blanked)")
        if plan.moves:
            say(f"  the index: {len(plan.moves)} archived notes marked (still searchable, not recalled)")
        say(f"  {plan.digest_path}:")
        for line in plan.digest.rstrip("\n").splitlines():
            say(f"{BODY_INDENT}{line}")
        say("dry run: nothing was written; run again with --apply to write this")
        return
    wrote = []
    if report.added:
        wrote.append(f"{len(report.added)} proposals ({', '.join(report.added)})")
    if report.archived:
        wrote.append(f"{len(report.archived)} notes archived")
    if report.facts:
        wrote.append(f"{len(report.facts)} fact atoms")
    if report.requeued:
        wrote.append(f"{len(report.requeued)} archived notes marked in the index")
    if report.digest_written:
        wrote.append(f"the digest {plan.digest_path}")
    say("wrote: " + "; ".join(wrote) if wrote else
        f"nothing new to write (the digest {plan.digest_path} is up to date)")
    for warning in report.warnings:
        click.echo(f"mnemara: warning: {inert(warning)}", err=True)
    if report.added:
        say(f"review with `mnemara proposals -i {plan.instance} list`")
