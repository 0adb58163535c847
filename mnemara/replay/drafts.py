"""Replay's drafts without a model: a wiki page per uncovered pattern, a role amendment per
cluster of self-observations, from templates. Each carries its provenance (every member atom)
and a fingerprint over its kind, target and sources, so the same memory drafts the same proposal
and the store declines it the second time (`replay/proposals.py`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..index.atoms import Atom
from .patterns import Pattern

if TYPE_CHECKING:
    from .proposals import Proposal, ProposalSource

MAX_LISTED = 12       # members quoted in a template body
LINE_CHARS = 200      # characters of each quoted member
ORIGIN = "replay"
ORIGIN_SYNTHESIZED = "replay --synthesize"


def where(atom: Atom) -> str:
    """Where an atom lives, for a person: "memory/2026-12-01.md:14", "turn 42", "wiki deploy#2"."""
    if atom.kind == "turn" and atom.turn_id is not None:
        return f"turn {atom.turn_id}"
    if atom.source:
        return f"{atom.source}:{atom.line}" if atom.line else atom.source
    return atom.id


def sources(members: Sequence[Atom]) -> list["ProposalSource"]:
    from .proposals import EXCERPT_CHARS, ProposalSource
    return [ProposalSource(atom_id=a.id, kind=a.kind, where=where(a), created_at=a.created_at,
                           excerpt=" ".join(a.text.split())[:EXCERPT_CHARS]) for a in members]


def _line(atom: Atom) -> str:
    text = " ".join(atom.text.split())
    if len(text) > LINE_CHARS:
        text = text[:LINE_CHARS - 1] + "…"
    return f"- {atom.created_at[:10]} ({where(atom)}): {text}"


def _listed(members: Sequence[Atom]) -> list[str]:
    lines = [_line(a) for a in members[:MAX_LISTED]]
    if len(members) > MAX_LISTED:
        lines.append(f"- … and {len(members) - MAX_LISTED} more (see the proposal's sources)")
    return lines


def rationale(pattern: Pattern, mode: str, cutoff: float) -> str:
    text = (f"{len(pattern.members)} atoms ({pattern.kinds()}) between {pattern.first[:10]} and "
            f"{pattern.last[:10]} lie within {mode} similarity {cutoff:.2f} of one another; "
            f"shared words: {', '.join(pattern.terms)}")
    if pattern.entities:
        text += "; named together: " + ", ".join(f"{e} ({n}x)" for e, n in pattern.entities[:4])
    return text


def wiki_body(pattern: Pattern) -> str:
    lines = [f"# {pattern.title}", "",
             f"{len(pattern.members)} memories from {pattern.first[:10]} to {pattern.last[:10]} "
             f"come back to {', '.join(pattern.terms)}.", "", "## What was noted", *_listed(pattern.members)]
    if pattern.entities:
        lines += ["", "## Named together", *(f"- {e} (in {n} of them)" for e, n in pattern.entities)]
    if pattern.causes:
        lines += ["", "## Causes and effects noted", *(f"- \"{c}\"" for c in pattern.causes)]
    if pattern.related:
        lines += ["", "## Linked in the graph", f"- {', '.join(pattern.related)}"]
    lines += ["", "_Drafted by `mnemara replay` from a template; edit before accepting._"]
    return "\n".join(lines) + "\n"


def role_body(pattern: Pattern) -> str:
    latest = " ".join(pattern.members[-1].text.split())
    lines = [f"## Observed about myself: {', '.join(pattern.terms)}", "",
             f"I noted this {len(pattern.members)} times between {pattern.first[:10]} and "
             f"{pattern.last[:10]}:", *_listed(pattern.members), "",
             f"Practice from now on: keep the latest observation in mind: \"{latest[:300]}\""]
    return "\n".join(lines) + "\n"


def draft(pattern: Pattern, mode: str, cutoff: float, body: str | None = None,
          created_at: str | None = None) -> "Proposal":
    """The proposal for `pattern`: the template body, or `body` written by the model."""
    from .proposals import make_proposal
    if pattern.kind == "wiki":
        text, target = body or wiki_body(pattern), pattern.slug
    else:
        text, target = body or role_body(pattern), None
    return make_proposal(pattern.kind, pattern.title, text, rationale(pattern, mode, cutoff),
                         sources(pattern.members), ORIGIN_SYNTHESIZED if body else ORIGIN,
                         target=target, created_at=created_at)
