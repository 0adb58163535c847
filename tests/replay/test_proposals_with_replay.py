"""Review after a real `mnemara replay --apply`: what replay drafted is listed, shown with its
sources, accepted (the page is found by search) or rejected (the next replay does not propose it
again), and the chat's start line sums up the digest replay wrote."""

from __future__ import annotations

from typing import Any

from mnemara.ops.proposals import digest_notice
from mnemara.replay.proposals import ProposalStore
from tests.replay.replay_setup import make_replay_instance


def test_review_what_replay_drafted(cli: Any, mnemara_home: Any) -> None:
    from mnemara.memory.service import MemoryService
    inst = make_replay_instance("work")
    assert cli("replay", "-i", "work", "--apply").exit_code == 0
    store = ProposalStore(inst)
    wiki = next(p for p in store.list() if p.kind == "wiki")
    role = next(p for p in store.list() if p.kind == "role")
    listed = cli("proposals", "-i", "work", "list").stdout
    assert wiki.id in listed and role.id in listed
    shown = cli("proposals", "-i", "work", "show", wiki.id).stdout
    assert all(s.atom_id in shown for s in wiki.sources)

    notice = digest_notice(inst, inst.load_config())
    assert notice.startswith("last replay ") and \
        ": 1 wiki proposal, 1 role amendment, 2 near-duplicates archived;" in notice
    assert notice.endswith("2 proposals to review (/proposals)")

    assert cli("proposals", "-i", "work", "accept", wiki.id).exit_code == 0
    assert cli("proposals", "-i", "work", "reject", role.id).exit_code == 0
    service = MemoryService(inst, inst.load_config())
    try:
        hits = service.search("staging host stg-7 make deploy", k=10, kinds=["wiki"]).hits
    finally:
        service.close()
    assert any(h.atom.id.startswith(f"wiki:{wiki.target}#") for h in hits)

    again = cli("replay", "-i", "work", "--apply")
    assert again.exit_code == 0, again.output
    assert sorted((p.id, p.status) for p in store.list()) == sorted(
        [(wiki.id, "accepted"), (role.id, "rejected")])
    assert "no pending proposals" in cli("proposals", "-i", "work", "list").stdout
