"""The sleep digest, `sleep/YYYY-MM-DD.md`: what one day's replay found, with pointers.

It describes the state replay found, not the steps one run took: the patterns with their
proposal ids (new or proposed before), the near-duplicates with the notes that keep them
(archived now or earlier), and the fact atoms of the period; its `summary:` line says the same
in one line, for the chat's start notice. So a second `--apply` with no new
memory renders the same bytes, and the file is left untouched. No clock time appears in it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .plan import Plan

SLEEP_DIR = "sleep"


def render_digest(plan: "Plan", facts: list[tuple[str, int]] | None = None) -> tuple[str, str]:
    """(path relative to the instance, Markdown text). `facts`: (turn range, fact atoms) pairs."""
    loaded = plan.loaded
    c = loaded.counts()
    wiki = [d for d in plan.drafted if d.pattern.kind == "wiki"]
    role = [d for d in plan.drafted if d.pattern.kind == "role"]
    absorbed = sum(len(g.absorbed) for g in plan.duplicates)
    facts_total = sum(n for _, n in facts or ())
    # The chat's start notice (ops/proposals.py `digest_summary`) shows this line as it is.
    lines = [f"# Replay digest {loaded.today}", "",
             "summary: " + summary(wiki_proposals=sum(1 for d in wiki if d.proposal),
                                   covered=sum(1 for d in wiki if d.proposal is None),
                                   role=sum(1 for d in role if d.proposal), archived=absorbed,
                                   facts=facts_total), "",
             f"Instance `{plan.instance}`, memory since {loaded.since[:10]} ({plan.days} days); "
             f"patterns of at least {plan.threshold} atoms, by {plan.space.mode} similarity"
             + (f" ({plan.embedder})" if plan.embedder else "") + ".", "",
             "## Read",
             f"- {c['notes'] + c['archived_notes']} notes, {c['turns']} turns; "
             f"{c['wiki_sections']} wiki sections checked for coverage", ""]
    lines.append(f"## Patterns ({len(wiki)})")
    for d in wiki:
        p = d.pattern
        span = f"{len(p.members)} atoms, {p.first[:10]} to {p.last[:10]}"
        if d.proposal is None:
            lines.append(f"- {p.title}: {span}; covered by wiki page `{p.covered_by}`")
        else:
            lines.append(f"- {p.title}: {span}; proposal {d.proposal.id} (wiki page `{p.slug}`)")
        if p.entities:
            lines.append("  - named together: " + ", ".join(e for e, _ in p.entities[:5]))
    lines += ["", f"## Role amendments ({len(role)})"]
    for d in role:
        p = d.pattern
        pid = d.proposal.id if d.proposal else "-"
        lines.append(f"- {p.title}: {len(p.members)} self-observations, {p.first[:10]} to "
                     f"{p.last[:10]}; proposal {pid}")
    lines += ["", f"## Near-duplicates archived ({absorbed})"]
    for g in plan.duplicates:
        lines.append(f"- `{g.kept.id}` keeps " + ", ".join(f"`{a.id}`" for a in g.absorbed))
    if facts:
        lines += ["", f"## Facts from archived conversations ({facts_total})"]
        lines += [f"- turns {r}: {n} fact atoms" for r, n in facts]
    lines += ["", "Review proposals with `mnemara proposals -i " + plan.instance + " list`."]
    return f"{SLEEP_DIR}/{loaded.today}.md", "\n".join(lines) + "\n"


def summary(*, wiki_proposals: int, covered: int, role: int, archived: int, facts: int) -> str:
    """The digest in one line, each count worded for its number ("1 wiki proposal, 2
    near-duplicates archived"); counts of zero are left out."""
    parts = [_count(wiki_proposals, "wiki proposal"),
             _count(covered, "pattern already in the wiki", "patterns already in the wiki"),
             _count(role, "role amendment"),
             _count(archived, "near-duplicate archived", "near-duplicates archived"),
             _count(facts, "fact atom")]
    return ", ".join(p for p in parts if p) or "nothing new to consolidate"


def _count(n: int, one: str, many: str | None = None) -> str:
    if not n:
        return ""
    return f"{n} {one if n == 1 else many or one + 's'}"
