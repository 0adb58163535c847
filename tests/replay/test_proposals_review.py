"""`mnemara proposals` as a user runs it: list, show (beside its sources), accept (a wiki page
written and found by search; a role amendment appended only after confirmation, with a dated
backup), reject (never proposed again); the legacy role_proposals/*.md; doctor and backup; and
the digest notice `mnemara run` shows."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mnemara.config import Config
from mnemara.instance import Instance
from mnemara.ops import proposals as ops
from mnemara.replay.proposals import Proposal, ProposalSource, ProposalStore, make_proposal


def _source(n: int, text: str) -> ProposalSource:
    return ProposalSource(f"note:2026-12-0{n}.md:1", "note", f"memory/2026-12-0{n}.md:1",
                          f"2026-12-0{n}T09:00:00Z", text)


def wiki_proposal(inst: Instance, slug: str = "deploy/staging") -> Proposal:
    p = make_proposal(
        "wiki", "Staging host", "The staging host is stg-7; deploys go through it on Fridays.",
        "3 notes between 2026-12-01 and 2026-12-03 name stg-7",
        [_source(1, "deployed to stg-7 again"), _source(2, "stg-7 is the staging box"),
         _source(3, "friday deploy via stg-7 \x1b[2J")], "replay", target=slug,
        created_at="2026-12-04T03:00:00Z")
    assert ProposalStore(inst).add(p)
    return p


def role_proposal(inst: Instance) -> Proposal:
    p = make_proposal("role", "Run the tests before claiming a fix",
                      "- Run the test suite before saying a change works.",
                      "4 self-observations: claimed fixes that failed",
                      [_source(5, "I said it worked; it did not")], "replay",
                      created_at="2026-12-04T03:00:01Z")
    assert ProposalStore(inst).add(p)
    return p


@pytest.fixture
def inst(make_instance: Any) -> Instance:
    return make_instance("w", rag_embedder="hash", recall_min_score=0.05)


# --- list / show / reject ------------------------------------------------------------------------

def test_list_and_show_with_provenance_inert(cli: Any, inst: Instance) -> None:
    assert "no pending proposals" in cli("proposals", "-i", "w", "list").stdout
    wp, rp = wiki_proposal(inst), role_proposal(inst)
    out = cli("proposals", "-i", "w", "list")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].startswith(rp.id) and "role" in lines[0]  # newest first
    assert lines[1].startswith(wp.id) and "deploy/staging" in lines[1] and "3 sources" in lines[1]
    shown = cli("proposals", "show", wp.id[:5], "-i", "w")
    assert shown.exit_code == 0, shown.output
    text = shown.stdout
    assert "The staging host is stg-7" in text and "3 notes between" in text
    for n in (1, 2, 3):
        assert f"note:2026-12-0{n}.md:1" in text and f"memory/2026-12-0{n}.md:1" in text
    assert "\x1b" not in text and "\\x1b[2J" in text  # an escape in an atom is shown, not obeyed
    data = json.loads(cli("proposals", "show", wp.id, "--json", "-i", "w").stdout)
    assert data["target"] == "deploy/staging" and len(data["sources"]) == 3


def test_reject_records_it_and_writes_nothing_else(cli: Any, inst: Instance,
                                                   snapshot_tree: Any) -> None:
    p = wiki_proposal(inst)
    out = cli("proposals", "-i", "w", "reject", p.id)
    assert out.exit_code == 0 and "rejected" in out.stdout
    assert not inst.wiki_dir.exists()
    assert ProposalStore(inst).get(p.id).status == "rejected"
    assert ProposalStore(inst).would_add(p) is False  # replay asks this: never again
    assert "no pending proposals" in cli("proposals", "-i", "w", "list").stdout
    assert "[rejected]" in cli("proposals", "-i", "w", "list", "--all").stdout
    again = cli("proposals", "-i", "w", "accept", p.id)
    assert again.exit_code == 2 and "already rejected" in again.stderr


def test_unknown_id_is_one_line(cli: Any, inst: Instance, assert_user_error: Any) -> None:
    assert_user_error(cli("proposals", "-i", "w", "show", "pdeadbeef"), "no proposal")


# --- accept a wiki page --------------------------------------------------------------------------

def test_accepting_a_wiki_proposal_writes_the_page_and_search_finds_it(cli: Any, inst: Instance) -> None:
    from mnemara.index.embedders import HashEmbedder
    from mnemara.memory.service import MemoryService
    p = wiki_proposal(inst)
    out = cli("proposals", "-i", "w", "accept", p.id)
    assert out.exit_code == 0, out.output
    assert "wrote wiki page deploy/staging" in out.stdout
    page = (inst.wiki_dir / "deploy" / "staging.md").read_text()
    assert page.startswith("# Staging host\n") and "stg-7; deploys go through it" in page
    assert ProposalStore(inst).get(p.id).status == "accepted"
    service = MemoryService(inst, inst.load_config(), embedder=HashEmbedder())
    try:
        hits = service.search("which host do Friday deploys go through", k=5, kinds=["wiki"]).hits
    finally:
        service.close()
    assert [h.atom.id for h in hits][:1] == ["wiki:deploy/staging#1"]


def test_accepting_into_an_existing_page_appends(cli: Any, inst: Instance) -> None:
    from mnemara.ops.memory import wiki_write
    wiki_write(inst, "deploy/staging", "# Staging\n\nWritten by hand.")
    p = wiki_proposal(inst)
    assert cli("proposals", "-i", "w", "accept", p.id).exit_code == 0
    page = (inst.wiki_dir / "deploy" / "staging.md").read_text()
    assert page.startswith("# Staging\n\nWritten by hand.\n\n# Staging host\n")


# --- accept a role amendment ---------------------------------------------------------------------

def _role_doc(inst: Instance, text: str) -> Path:
    doc = inst.root / "reviewer.md"
    doc.write_text(text)
    inst.save_config(inst.load_config().replace(role_doc_path=str(doc)))
    return doc


def test_role_amendment_with_yes_appends_and_keeps_a_dated_backup(cli: Any, inst: Instance) -> None:
    doc = _role_doc(inst, "# Reviewer\n\nBe specific.\n")
    p = role_proposal(inst)
    out = cli("proposals", "-i", "w", "accept", p.id, "--yes")
    assert out.exit_code == 0, out.output
    assert "- Run the test suite before saying a change works." in out.stdout  # shown first
    assert doc.read_text() == ("# Reviewer\n\nBe specific.\n\n"
                               "- Run the test suite before saying a change works.\n")
    (backup,) = inst.root.glob("reviewer.md.*.bak")
    assert backup.read_text() == "# Reviewer\n\nBe specific.\n"
    assert backup.name[len("reviewer.md."):][:8] == date.today().strftime("%Y%m%d")
    assert str(backup) in out.stdout
    assert ProposalStore(inst).get(p.id).status == "accepted"


def test_declined_confirmation_changes_nothing(cli: Any, inst: Instance, monkeypatch: Any,
                                               snapshot_tree: Any) -> None:
    _role_doc(inst, "# Reviewer\n")
    p = role_proposal(inst)
    before = snapshot_tree(inst.root)
    monkeypatch.setattr("mnemara.cli_proposals._is_tty", lambda: True)
    out = cli("proposals", "-i", "w", "accept", p.id, input="n\n")
    assert out.exit_code == 0, out.output
    assert "Append this to the role doc?" in out.stdout and "still pending" in out.stdout
    assert snapshot_tree(inst.root) == before
    out = cli("proposals", "-i", "w", "accept", p.id, input="y\n")
    assert "appended to the role doc" in out.stdout
    assert "Run the test suite" in (inst.root / "reviewer.md").read_text()


def test_off_a_terminal_a_role_amendment_needs_yes(cli: Any, inst: Instance,
                                                   snapshot_tree: Any) -> None:
    _role_doc(inst, "# Reviewer\n")
    p = role_proposal(inst)
    before = snapshot_tree(inst.root)
    out = cli("proposals", "-i", "w", "accept", p.id)
    assert out.exit_code == 2 and "add --yes" in out.stderr
    assert snapshot_tree(inst.root) == before


def test_without_a_role_doc_accept_creates_one_and_points_the_config_at_it(cli: Any,
                                                                        inst: Instance) -> None:
    p = role_proposal(inst)
    assert cli("proposals", "-i", "w", "accept", p.id, "-y").exit_code == 0
    doc = inst.root / "role.md"
    assert doc.read_text() == "- Run the test suite before saying a change works.\n"
    assert inst.load_config().role_doc_path == str(doc)
    assert not list(inst.root.glob("*.bak"))  # there was no previous text to keep


def test_a_role_doc_that_cannot_be_edited_is_one_line_and_nothing_is_asked(
        cli: Any, inst: Instance, assert_user_error: Any) -> None:
    doc = _role_doc(inst, "")
    doc.write_bytes(b"# Reviewer\x00binary")
    p = role_proposal(inst)
    out = cli("proposals", "-i", "w", "accept", p.id, "--yes")
    assert_user_error(out, "NUL")
    assert "=====" not in out.stdout  # the amendment was not even shown for confirmation
    assert doc.read_bytes() == b"# Reviewer\x00binary" and not list(inst.root.glob("*.bak"))
    assert ProposalStore(inst).get(p.id).status == "pending"


# --- legacy files, doctor, backup ----------------------------------------------------------------

LEGACY = """# Proposed role amendment

- proposed: 2026-04-27T18:32:01Z
- severity: high
- rationale: I claimed a fix worked twice.

## Proposed text

Always run the tests.

---
Proposed by the model for the user to review. Nothing is applied automatically.
"""


def test_legacy_role_proposals_are_imported_once(cli: Any, inst: Instance) -> None:
    inst.legacy_proposals_dir.mkdir()
    (inst.legacy_proposals_dir / "20260427T183201Z_always-run-the-tests.md").write_text(LEGACY)
    out = cli("proposals", "-i", "w", "list")
    (line,) = out.stdout.splitlines()
    assert "role  Always run the tests." in line and "model" in line
    p = ProposalStore(inst).get(line.split()[0])
    assert p.body == "Always run the tests.\n" and p.rationale == "severity high: I claimed a fix worked twice."
    assert p.created_at == "2026-04-27T18:32:01Z"
    cli("proposals", "-i", "w", "reject", p.id)
    assert "no pending proposals" in cli("proposals", "-i", "w", "list").stdout  # not re-imported
    assert len(ProposalStore(inst).list()) == 1


def test_doctor_reports_a_damaged_proposal_file(cli: Any, inst: Instance) -> None:
    wiki_proposal(inst)
    (inst.proposals_dir / "p0123456789.json").write_text('{"id": "p0123')
    out = cli("doctor", "-i", "w", "--json")
    assert "Traceback" not in out.output
    (check,) = [c for c in json.loads(out.stdout)["checks"] if c["check"] == "proposals"]
    assert check["status"] == "warning" and "p0123456789.json" in check["detail"]
    listed = cli("proposals", "-i", "w", "list")
    assert listed.exit_code == 0 and "deploy/staging" in listed.stdout
    assert "skipped p0123456789.json" in listed.stderr


def test_backup_and_restore_keep_the_proposals(cli: Any, inst: Instance, tmp_path: Path) -> None:
    p = wiki_proposal(inst)
    ProposalStore(inst).decide(p.id, "rejected")
    archive = tmp_path / "w.tar.gz"
    assert cli("backup", "-i", "w", "-o", str(archive)).exit_code == 0
    assert cli("restore", str(archive), "-i", "w2").exit_code == 0
    assert ProposalStore(Instance.named("w2")).get(p.id).status == "rejected"


# --- the digest notice ---------------------------------------------------------------------------

def _digest(inst: Instance, day: str, text: str) -> None:
    (inst.root / "sleep").mkdir(exist_ok=True)
    (inst.root / "sleep" / f"{day}.md").write_text(text)


def test_digest_notice(inst: Instance) -> None:
    config = Config.defaults().replace(replay_default_days=7)
    today = date(2026, 12, 5)
    assert ops.digest_notice(inst, config, today) is None  # nothing in memory, no digest
    from mnemara.ops.memory import note
    note(inst, "stg-7 is the staging host")
    line = ops.digest_notice(inst, config, today)
    assert line == "no replay digest yet: consolidate memory with `mnemara replay -i w`"
    _digest(inst, "2026-12-01", "# Replay 2026-12-01\n\nsummary: 2 wiki proposals, 1 archived\n")
    _digest(inst, "2026-12-03", "# Replay 2026-12-03\n\nsummary: 1 wiki proposal, 3 near-duplicates "
                                "archived\n\n## Details\n")
    (inst.root / "sleep" / "notes.md").write_text("not a digest")
    line = ops.digest_notice(inst, config, today)
    assert line == "last replay 2026-12-03: 1 wiki proposal, 3 near-duplicates archived"
    wiki_proposal(inst)
    assert ops.digest_notice(inst, config, today).endswith("; 1 proposal to review (/proposals)")
    stale = ops.digest_notice(inst, config, date(2026, 12, 11))
    assert stale.endswith("; 8 days ago, run `mnemara replay -i w`")
    _digest(inst, "2026-12-04", "# Replay\n\nNothing new to consolidate.\n")
    assert "last replay 2026-12-04: Nothing new to consolidate." in ops.digest_notice(inst, config, today)
    # replay's own digest carries its summary line (replay/digest.py); the headings are not it
    _digest(inst, "2026-12-05", "# Replay digest 2026-12-05\n\nsummary: 1 wiki proposal, "
                                "2 near-duplicates archived\n\nInstance `w`, memory since ...\n\n"
                                "## Patterns (1)\n- a\n\n## Near-duplicates archived (2)\n- x\n")
    assert ops.digest_notice(inst, config, today).startswith(
        "last replay 2026-12-05: 1 wiki proposal, 2 near-duplicates archived;")


# --- export and import ---------------------------------------------------------------------------

def test_export_carries_proposals_and_their_decisions_into_an_import(cli: Any, inst: Instance,
                                                                     tmp_path: Path) -> None:
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    wp = make_proposal("wiki", "CI token", f"The CI uses {token} for pushes.", "2 notes",
                       [_source(1, f"token {token}")], "replay", target="ci",
                       created_at="2026-12-04T03:00:00Z")
    ProposalStore(inst).add(wp)
    rp = role_proposal(inst)
    ProposalStore(inst).decide(rp.id, "rejected")
    out = tmp_path / "w.jsonl"
    assert cli("export", "-i", "w", "-o", str(out)).exit_code == 0
    text = out.read_text()
    assert token not in text and "[redacted:github-token]" in text
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["proposal"]["id"] for r in records if r["type"] == "proposal"] == [wp.id, rp.id]
    result = cli("import", "-i", "copy", str(out))
    assert result.exit_code == 0, result.output
    copy = ProposalStore(Instance.named("copy"))
    assert copy.get(rp.id).status == "rejected" and copy.would_add(rp) is False
    got = copy.get(wp.id)
    assert got.status == "pending" and "[redacted:github-token]" in got.body
    assert got.sources[0].atom_id == wp.sources[0].atom_id
    md = tmp_path / "w.md"
    assert cli("export", "-i", "w", "--format", "md", "-o", str(md)).exit_code == 0
    assert "## Proposals" in md.read_text() and f"`{wp.id}` wiki → wiki/ci.md" in md.read_text()


def test_an_export_with_a_forged_proposal_imports_nothing(cli: Any, inst: Instance,
                                                          tmp_path: Path) -> None:
    wiki_proposal(inst)
    out = tmp_path / "w.jsonl"
    cli("export", "-i", "w", "-o", str(out))
    lines = out.read_text().splitlines()
    record = json.loads(lines[-1])
    record["proposal"]["id"] = "p0000000000"
    out.write_text("\n".join(lines[:-1] + [json.dumps(record)]) + "\n")
    result = cli("import", "-i", "copy", str(out))
    assert result.exit_code == 2 and "does not match its fingerprint" in result.stderr
    assert "nothing was imported" in result.stderr
