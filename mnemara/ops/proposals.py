"""Reviewing proposals, shared by `mnemara proposals` and `/proposals` (TUI and REPL); and the
one-line digest notice `mnemara run` shows.

A proposal changes nothing until it is accepted here:
- a wiki proposal is written as a page through `memory.writes.write_wiki`, so its sections are
  queued on the index outbox like any page the model writes, and the next search finds them; a
  page that already exists is appended to, never replaced (the user's text is kept);
- a role amendment is appended to the role doc only after `confirm` says yes (the CLI asks
  with the text shown, the TUI with its review screen), and the previous text is first copied
  beside the role doc as `<name>.<UTC time>.bak`, so one accept is always one copy away from
  undone.
Rejecting only records the decision; the store never takes the same fingerprint again.

Role amendments the model proposed before the store existed are `role_proposals/*.md` files.
Every review operation imports them into the store once (idempotently: the fingerprint is the
amendment's text, as for a new one) with origin "model"; the files are left where they are.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import MnemaraError
from ..fsutil import atomic_output
from ..replay.proposals import (Proposal, ProposalSource, ProposalStore, model_amendment,
                                now_iso)

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance
    from ..memory.wiki import WikiPage
    from ..store.turns import TurnStore

SLEEP_DIR = "sleep"
_DIGEST_NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.md$")
_SUMMARY_LINE = re.compile(r"^\W*summary\W*:\s*\**\s*(.+)$", re.I)
_NOTICE_CHARS = 160


@dataclass(frozen=True)
class Accepted:
    """What an accept did, in one sentence for the user."""

    proposal: Proposal
    message: str
    path: Path | None = None     # the page or role doc written
    backup: Path | None = None   # the role doc's previous text
    config: "Config | None" = None  # the config after a role accept (it may now name role.md)


# --- reading ---------------------------------------------------------------------------------------

def open_store(instance: "Instance") -> ProposalStore:
    """The instance's proposal store, with legacy `role_proposals/*.md` imported into it."""
    store = ProposalStore(instance)
    import_legacy(instance, store)
    return store


def pending(instance: "Instance") -> list[Proposal]:
    return open_store(instance).list("pending")


def listing(instance: "Instance", status: str | None = "pending") -> list[Proposal]:
    return open_store(instance).list(status)


def get(instance: "Instance", id_or_prefix: str) -> Proposal:
    return open_store(instance).get(id_or_prefix)


def damaged(instance: "Instance") -> list[tuple[Path, str]]:
    return ProposalStore(instance).damaged()


def import_legacy(instance: "Instance", store: ProposalStore) -> int:
    """Add each `role_proposals/*.md` the store does not hold yet; returns how many were added."""
    folder = instance.legacy_proposals_dir
    if not folder.is_dir():
        return 0
    added = 0
    for path in sorted(folder.glob("*.md")):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue  # unreadable: left for the user, as it always was
        try:
            proposal = _legacy_proposal(path, text)
            if proposal is not None and store.add(proposal):
                added += 1
        except OSError:
            continue  # gone meanwhile, or proposals/ cannot be written: the next review retries
    return added


def _legacy_proposal(path: Path, text: str) -> Proposal | None:
    m = re.search(r"^## Proposed text\n\n(.*?)\n*(?:^---\n.*)?\Z", text, re.S | re.M)
    body = (m[1] if m else text).strip()
    if not body:
        return None
    fields = dict(re.findall(r"^- (proposed|severity|rationale): (.*)$", text, re.M))
    created = fields.get("proposed") or datetime.fromtimestamp(
        path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    rationale = f"severity {fields.get('severity', 'unknown')}: {fields.get('rationale', '')}"
    source = ProposalSource(f"file:role_proposals/{path.name}", "file",
                            f"role_proposals/{path.name}", created, " ".join(body.split())[:300])
    return model_amendment(body, rationale.strip(), [source], created_at=created)


# --- deciding --------------------------------------------------------------------------------------

def reject(instance: "Instance", id_or_prefix: str) -> Proposal:
    store = open_store(instance)
    return store.decide(store.get(id_or_prefix).id, "rejected")


def accept(instance: "Instance", id_or_prefix: str, *,
           confirm: Callable[[Proposal, Path], bool] | None = None,
           config: "Config | None" = None, turns: "TurnStore | None" = None) -> Accepted | None:
    """Carry a pending proposal out and mark it accepted. A role amendment needs `confirm(
    proposal, role_doc_path)` to return True; None (declined) changes nothing."""
    store = open_store(instance)
    proposal = store.get(id_or_prefix)
    if proposal.status != "pending":
        raise MnemaraError(f"proposal {proposal.id} was already {proposal.status} "
                           f"({proposal.decided_at or 'earlier'})")
    config = config or instance.load_config()
    if proposal.kind == "wiki":
        page = _write_page(instance, proposal, config, turns)
        decided = store.decide(proposal.id, "accepted")
        return Accepted(decided, f"accepted {proposal.id}: wrote wiki page {page.slug} "
                                 "(indexed by section)", page.path)
    from .role import draft, save
    current = draft(instance, config)  # refuses a role doc that cannot be edited as text
    if confirm is None or not confirm(proposal, current.path):
        return None
    backup = _backup(current.path, current.text) if not current.creating else None
    addition = proposal.body.strip("\n")
    text = (current.text.rstrip("\n") + "\n\n" + addition + "\n") if current.text.strip() \
        else addition + "\n"
    config = save(instance, config, current.path, text)
    decided = store.decide(proposal.id, "accepted")
    kept = f"; the previous text is in {backup}" if backup else ""
    return Accepted(decided, f"accepted {proposal.id}: appended to the role doc "
                             f"{current.path}{kept}; the next turn uses it", current.path,
                    backup, config)


def _write_page(instance: "Instance", proposal: Proposal, config: "Config",
                turns: "TurnStore | None") -> "WikiPage":
    from ..memory.wiki import Wiki, WikiError
    from ..memory.writes import write_wiki
    from ..store.turns import TurnStore
    if not proposal.target:
        raise MnemaraError(f"proposal {proposal.id} names no wiki page; reject it instead")
    body = proposal.body.strip("\n")
    if not re.match(r"^(---\n|#{1,6} )", body):
        body = f"# {proposal.title}\n\n{body}"
    try:
        exists = Wiki(instance.wiki_dir).read(proposal.target) is not None
    except WikiError:
        exists = False
    mode = "append" if exists else "replace"
    try:
        if turns is not None:
            return write_wiki(instance, turns, config, proposal.target, body, mode)
        with TurnStore(instance.turns_path) as own:
            return write_wiki(instance, own, config, proposal.target, body, mode)
    except OSError as exc:
        raise MnemaraError(f"cannot write wiki page {proposal.target}: "
                           f"{exc.strerror or exc}; the proposal is still pending") from None


def _backup(path: Path, text: str) -> Path:
    """A private copy of the role doc's text beside it, named by the UTC time; never replaces."""
    target = Path(os.path.realpath(path))
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 100):
        candidate = target.with_name(f"{target.name}.{stamp}{'' if n == 1 else f'-{n}'}.bak")
        try:
            with atomic_output(candidate, overwrite=False) as fh:
                fh.write(text)
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise MnemaraError(f"cannot back up the role doc to {candidate}: "
                               f"{exc.strerror or exc}; nothing was changed") from None
    raise MnemaraError(f"too many backups of {target} at {stamp}; nothing was changed")


# --- showing ---------------------------------------------------------------------------------------

def summary_line(p: Proposal) -> str:
    """`pXXXXXXXXXX  wiki  deploy/staging  Title (3 sources, replay)` on one line."""
    what = f"{p.kind:<4}  {p.target + '  ' if p.target else ''}{' '.join(p.title.split())}"
    status = "" if p.status == "pending" else f" [{p.status}]"
    return (f"{p.id}  {what}  ({len(p.sources)} source{'s' if len(p.sources) != 1 else ''}, "
            f"{p.origin}){status}")


def describe(p: Proposal) -> str:
    """The proposal and its provenance as plain text (callers make it inert for a terminal)."""
    head = [f"{p.id} · {p.kind}{' → wiki/' + p.target + '.md' if p.target else ' → role doc'}"
            f" · {p.status}{' ' + p.decided_at if p.decided_at else ''}",
            f"title:     {p.title}",
            f"origin:    {p.origin}, {p.created_at}",
            f"rationale: {p.rationale}", "",
            "--- proposed text ---", p.body.rstrip("\n"), "",
            f"--- sources ({len(p.sources)}) ---"]
    for s in p.sources:
        head.append(f"{s.atom_id}  ({s.kind}, {s.where}, {s.created_at})")
        head.append(f"    {' '.join(s.excerpt.split())}")
    if not p.sources:
        head.append("(none)")
    return "\n".join(head)


# --- the digest notice -----------------------------------------------------------------------------

def newest_digest(instance: "Instance") -> tuple[date, Path] | None:
    folder = instance.root / SLEEP_DIR
    if not folder.is_dir():
        return None
    found = []
    for path in folder.iterdir():
        m = _DIGEST_NAME.match(path.name)
        if m and path.is_file():
            try:
                found.append((date.fromisoformat(m[1]), path))
            except ValueError:
                continue  # 2026-13-45.md: not a digest
    return max(found) if found else None


def digest_summary(path: Path) -> str:
    """The digest's `summary:` line (replay/digest.py writes one, each count worded for its
    number); else its first line of text."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            lines = fh.read(16384).splitlines()
    except OSError:
        return ""
    for line in lines:
        m = _SUMMARY_LINE.match(line.strip())
        if m:
            return m[1].strip().rstrip("*").strip()
    return next((ln.strip() for ln in lines
                 if ln.strip() and not ln.lstrip().startswith(("#", "---"))), "")


def digest_notice(instance: "Instance", config: "Config", today: date | None = None) -> str | None:
    """One line for the start of a chat: the newest digest's summary (and the pending proposals
    to review), plus a suggestion to replay when it is older than `replay_default_days`, or when
    there is none but memory to replay. None when there is nothing to say."""
    try:
        return _digest_notice(instance, config, today or datetime.now(timezone.utc).date())
    except OSError:
        return None  # an unreadable sleep/ or proposals/ never stops a chat from starting


def _digest_notice(instance: "Instance", config: "Config", today: date) -> str | None:
    newest = newest_digest(instance)
    suggest = f"`mnemara replay -i {instance.name}`"
    waiting = _pending_count(instance)
    review = f"; {waiting} proposal{'s' if waiting != 1 else ''} to review (/proposals)" \
        if waiting else ""
    if newest is None:
        if not _has_memory(instance):
            return f"{waiting} proposal{'s' if waiting != 1 else ''} to review (/proposals)" \
                if waiting else None
        return f"no replay digest yet: consolidate memory with {suggest}{review}"
    day, path = newest
    summary = " ".join(digest_summary(path).split())
    if len(summary) > _NOTICE_CHARS:
        summary = summary[:_NOTICE_CHARS - 3] + "..."
    line = f"last replay {day.isoformat()}: {summary or '(no summary)'}{review}"
    age = (today - day).days
    if age > config.replay_default_days:
        line += f"; {age} days ago, run {suggest}"
    return line


def _pending_count(instance: "Instance") -> int:
    try:
        return len(ProposalStore(instance).list("pending"))  # read only: chat start writes nothing
    except OSError:
        return 0


def _has_memory(instance: "Instance") -> bool:
    folder = instance.memory_dir
    try:
        return folder.is_dir() and any(p.suffix == ".md" for p in folder.iterdir())
    except OSError:
        return False


__all__ = ["Accepted", "accept", "reject", "listing", "pending", "get", "damaged", "describe",
           "summary_line", "digest_notice", "digest_summary", "newest_digest", "import_legacy",
           "model_amendment", "open_store", "now_iso", "export_records", "check_record",
           "redact_record", "stage_records", "markdown_record"]


# --- export and import (`mnemara export` / `mnemara import` of an export file) ---------------------

def export_records(instance: "Instance",
                   redact_text: Callable[[str], str] | None) -> list[dict[str, Any]]:
    """`{"type": "proposal", "proposal": {...}}` for every readable proposal, oldest first, so an
    imported instance keeps its decisions (a rejected proposal stays rejected). With
    `redact_text`, its free text (title, body, rationale, excerpts) goes through it."""
    out = []
    for p in reversed(ProposalStore(instance).list()):
        data = p.to_json()
        if redact_text is not None:
            _redact(data, redact_text)
        out.append({"type": "proposal", "proposal": data})
    return out


def check_record(record: dict[str, Any]) -> Proposal:
    """The proposal an export record holds; ValueError (one line) when it is not one."""
    if set(record) != {"type", "proposal"}:
        raise ValueError("a proposal record has exactly the keys \"type\" and \"proposal\"")
    try:
        proposal = Proposal.from_json(record["proposal"])
    except ValueError as exc:
        raise ValueError(f"not a proposal: {exc}") from None
    if not re.fullmatch(r"p[0-9a-f]{10}", proposal.id) or \
            proposal.id != "p" + proposal.fingerprint[:10]:
        raise ValueError(f"proposal id {proposal.id[:40]!r} does not match its fingerprint")
    return proposal


def redact_record(record: dict[str, Any], redact_text: Callable[[str], str]) -> None:
    _redact(record["proposal"], redact_text)


def _redact(data: dict[str, Any], redact_text: Callable[[str], str]) -> None:
    for key in ("title", "body", "rationale"):
        data[key] = redact_text(data[key])
    for source in data.get("sources") or ():
        source["excerpt"] = redact_text(source["excerpt"])


def stage_records(records: list[dict[str, Any]], staging: Path) -> None:
    """Write the records' proposals as `staging/proposals/<id>.json` (the import moves the
    directory into place with the notes and pages)."""
    from ..fsutil import atomic_write_text, ensure_private_dir
    if not records:
        return
    folder = ensure_private_dir(staging / "proposals")
    for record in records:
        data = {"format": 1, **{k: v for k, v in record["proposal"].items() if k != "format"}}
        atomic_write_text(folder / f"{data['id']}.json",
                          json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def markdown_record(record: dict[str, Any]) -> str:
    """One proposal in the Markdown export: its head line, the text, its sources."""
    p = record["proposal"]
    where = f"wiki/{p.get('target')}.md" if p.get("kind") == "wiki" else "the role doc"
    lines = [f"\n- `{p['id']}` {p['kind']} → {where} · {p['status']} · {p['origin']} · "
             f"{p['created_at']}: {p['title']}", f"  {p['rationale']}", ""]
    text = p["body"].rstrip("\n")
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    lines += [f"{fence}markdown", text, fence, ""]
    lines += [f"  - {s['atom_id']} ({s['where']}, {s['created_at']}): {s['excerpt']}"
              for s in p.get("sources") or ()]
    return "\n".join(lines) + "\n"
