"""The proposal store: what replay (and the model) suggest, waiting for the user's decision.

A proposal is a wiki page or a role amendment drafted from memory, with the atoms it came from
(its provenance). Nothing in the wiki or the role doc changes until the user accepts one
(`mnemara proposals`, `/proposals`; `mnemara.ops.proposals` carries the decision out).

Each proposal is one JSON file, `proposals/<id>.json`, written atomically (a reader sees the
whole file or none of it) and never clobbered. The idempotence key is the *fingerprint*: a hash
over the kind, the target and the sorted source atom ids, so replaying the same memory drafts
the same fingerprint and `add` declines it, whatever the earlier one's status: a rejected
proposal is never proposed again. The id is derived from the fingerprint too, so two processes
adding the same proposal at once race for one file name and exactly one wins.

Reading never writes (a replay dry run creates a store and asks `would_add`), and a file that is
not a readable proposal is skipped by `list` and reported by `damaged()` (for doctor), never a
traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ..errors import MnemaraError
from ..fsutil import atomic_output, ensure_private_dir, open_flocked

if TYPE_CHECKING:
    from ..instance import Instance

PROPOSALS_DIR = "proposals"
KINDS = ("wiki", "role")
STATUSES = ("pending", "accepted", "rejected")
EXCERPT_CHARS = 300
_FORMAT = 1          # the "format" field of each file, for a later migration
_LOCK_NAME = ".lock"  # serializes decisions (two reviewers never both accept one proposal)


class ProposalError(MnemaraError):
    """An unknown or ambiguous id, a decision on a decided proposal, a damaged file."""


@dataclass(frozen=True)
class ProposalSource:
    """One atom a proposal came from: enough to find it again and to show it beside the draft."""

    atom_id: str          # index atom id, e.g. "note:2026-12-01:3", "turn:42", "wiki:slug#section"
    kind: str             # "note" | "turn" | "wiki" | ...
    where: str            # file and line, or "turn 42"
    created_at: str       # ISO-8601 UTC
    excerpt: str          # <= 300 chars of the atom's text


@dataclass(frozen=True)
class Proposal:
    """A draft for the user to accept or reject. See the module docstring for the fingerprint."""

    id: str               # "p" + first 10 hex chars of fingerprint
    kind: str             # "wiki" | "role"
    title: str            # the wiki page title, or the amendment's one-line headline
    body: str             # markdown: the page body, or the amendment text to append
    rationale: str        # why: the pattern found
    sources: tuple[ProposalSource, ...]   # provenance: every atom it came from
    fingerprint: str      # sha256 hex over kind + target + sorted source atom ids
    created_at: str       # ISO-8601 UTC
    origin: str           # "replay" | "replay --synthesize" | "model"
    target: str | None = None   # wiki slug for a wiki proposal
    status: str = "pending"     # "pending" | "accepted" | "rejected"
    decided_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = [asdict(s) for s in self.sources]
        return {"format": _FORMAT, **data}

    @classmethod
    def from_json(cls, data: Any) -> "Proposal":
        """The proposal a file holds; ValueError (with a short reason) when it is not one."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            sources = tuple(ProposalSource(**{f: str(s[f]) for f in _SOURCE_FIELDS})
                            for s in data.get("sources") or ())
            fields = {f: data[f] for f in _REQUIRED}
        except (KeyError, TypeError) as exc:
            raise ValueError(f"missing or malformed field {exc}") from None
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("a field that must be text is not")
        proposal = cls(**fields, sources=sources, target=_opt_str(data.get("target")),
                       status=str(data.get("status", "pending")),
                       decided_at=_opt_str(data.get("decided_at")))
        if proposal.kind not in KINDS:
            raise ValueError(f"unknown kind {proposal.kind!r}")
        if proposal.status not in STATUSES:
            raise ValueError(f"unknown status {proposal.status!r}")
        return proposal


_REQUIRED = ("id", "kind", "title", "body", "rationale", "fingerprint", "created_at", "origin")
_SOURCE_FIELDS = ("atom_id", "kind", "where", "created_at", "excerpt")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_fingerprint(kind: str, target: str | None, atom_ids: Iterable[str]) -> str:
    """The idempotence key: the same kind, target and set of source atoms give the same key,
    whatever order the atoms were found in and whatever the draft's wording."""
    payload = json.dumps([kind, target or "", sorted(set(atom_ids))], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def proposal_id(fingerprint: str) -> str:
    return "p" + fingerprint[:10]


def make_proposal(kind: str, title: str, body: str, rationale: str,
                  sources: Iterable[ProposalSource], origin: str, target: str | None = None,
                  created_at: str | None = None,
                  identity: Iterable[str] | None = None) -> Proposal:
    """A pending proposal with its fingerprint and id filled in. The fingerprint covers the
    source atom ids, or `identity` instead when given (the model's own amendment has no atoms
    behind it: its text is what must not be proposed twice)."""
    sources = tuple(replace(s, excerpt=s.excerpt[:EXCERPT_CHARS]) for s in sources)
    ids = list(identity) if identity is not None else [s.atom_id for s in sources]
    fingerprint = make_fingerprint(kind, target, ids)
    return Proposal(id=proposal_id(fingerprint), kind=kind, title=title, body=body,
                    rationale=rationale, sources=sources, fingerprint=fingerprint,
                    created_at=created_at or now_iso(), origin=origin, target=target)


def model_amendment(text: str, rationale: str, sources: list[ProposalSource],
                    created_at: str | None = None) -> Proposal:
    """A role amendment the model proposed: its text is its identity (see `make_proposal`)."""
    headline = " ".join(text.split())
    return make_proposal(
        "role", headline if len(headline) <= 80 else headline[:77] + "...",
        text.strip() + "\n", rationale, sources, "model", created_at=created_at,
        identity=[f"model-text:{headline}"])


class ProposalStore:
    """Proposals of one instance, as files under `instance.root / "proposals"`."""

    def __init__(self, instance: "Instance") -> None:
        self.dir = Path(instance.root) / PROPOSALS_DIR

    # --- reading (never writes) ----------------------------------------------------------------

    def _files(self) -> list[Path]:
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob("p*.json") if not p.name.startswith("."))

    def _read(self, path: Path) -> Proposal:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ValueError(str(getattr(exc, "strerror", None) or exc).splitlines()[0]) from None
        proposal = Proposal.from_json(data)
        if path.stem != proposal.id:
            raise ValueError(f"holds proposal {proposal.id!r}, not {path.stem!r}")
        if proposal.id != proposal_id(proposal.fingerprint):
            raise ValueError(f"proposal id {proposal.id!r} does not match its fingerprint")
        return proposal

    def _all(self) -> list[Proposal]:
        out = []
        for path in self._files():
            try:
                out.append(self._read(path))
            except ValueError:
                continue  # reported by damaged(); one bad file never hides the rest
        return out

    def damaged(self) -> list[tuple[Path, str]]:
        """(file, reason) for every file in the store that is not a readable proposal."""
        bad = []
        for path in self._files():
            try:
                self._read(path)
            except ValueError as exc:
                bad.append((path, str(exc)))
        return bad

    def has_fingerprint(self, fingerprint: str) -> bool:
        """Whether a proposal with this fingerprint is stored, in any status. One file is read:
        a stored proposal's file is named by its id, and its id by its fingerprint (`add` and
        the import refuse any other), so only `proposal_id(fingerprint)` can hold it. Asking
        the directory each time keeps it right when another process adds meanwhile, and a
        batch of n adds costs n reads, not n^2."""
        path = self.dir / f"{proposal_id(fingerprint)}.json"
        try:
            return self._read(path).fingerprint == fingerprint
        except ValueError:
            return False  # absent, or damaged (`add` then finds the name taken and declines)

    def would_add(self, proposal: Proposal) -> bool:
        """What `add` would do, writing nothing (replay's dry run)."""
        return not self.has_fingerprint(proposal.fingerprint)

    def list(self, status: str | None = None) -> list[Proposal]:
        """Proposals, newest first (ties by id, so the order is stable)."""
        if status is not None and status not in STATUSES:
            raise ProposalError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
        found = [p for p in self._all() if status is None or p.status == status]
        return sorted(found, key=lambda p: (p.created_at, p.id), reverse=True)

    def get(self, id_or_prefix: str) -> Proposal:
        """The one proposal whose id starts with `id_or_prefix` ("p" optional)."""
        key = id_or_prefix.strip().lower()
        if key and not key.startswith("p"):
            key = "p" + key
        if len(key) < 2:
            raise ProposalError("give a proposal id (see `mnemara proposals list`)")
        matches = [p for p in self._all() if p.id.startswith(key)]
        if not matches:
            raise ProposalError(f"no proposal {id_or_prefix.strip()[:40]!r} "
                                "(see `mnemara proposals list`)")
        if len(matches) > 1:
            shown = ", ".join(p.id for p in matches[:5])
            raise ProposalError(f"{id_or_prefix.strip()[:40]!r} matches {len(matches)} proposals "
                                f"({shown}); give more of the id")
        return matches[0]

    # --- writing -------------------------------------------------------------------------------

    def add(self, proposal: Proposal) -> bool:
        """Store `proposal` (atomically); False, writing nothing, when one with its fingerprint
        exists in any status."""
        if proposal.kind not in KINDS:
            raise ValueError(f"unknown proposal kind {proposal.kind!r}")
        if proposal.id != proposal_id(proposal.fingerprint):
            raise ValueError(f"proposal id {proposal.id!r} does not match its fingerprint")
        if self.has_fingerprint(proposal.fingerprint):
            return False
        ensure_private_dir(self.dir)
        try:
            self._write(proposal, overwrite=False)
        except FileExistsError:  # another process added it meanwhile (same fingerprint, same id)
            return False
        return True

    def decide(self, id: str, status: str) -> Proposal:
        """Mark a pending proposal accepted or rejected (atomic rewrite, with decided_at)."""
        if status not in ("accepted", "rejected"):
            raise ProposalError(f"a decision is 'accepted' or 'rejected', not {status!r}")
        ensure_private_dir(self.dir)
        fd = open_flocked(self.dir / _LOCK_NAME)
        try:
            current = self.get(id)
            if current.status != "pending":
                raise ProposalError(f"proposal {current.id} was already {current.status} "
                                    f"({current.decided_at or 'earlier'})")
            decided = replace(current, status=status, decided_at=now_iso())
            self._write(decided, overwrite=True)
            return decided
        finally:
            os.close(fd)

    def _write(self, proposal: Proposal, *, overwrite: bool) -> None:
        text = json.dumps(proposal.to_json(), ensure_ascii=False, indent=2) + "\n"
        with atomic_output(self.dir / f"{proposal.id}.json", overwrite=overwrite,
                           sync_dir=True) as fh:
            fh.write(text)
