"""A batch of `ProposalStore.add` calls reads each proposal file a bounded number of times (a
5k-atom replay adds ~200 proposals: re-reading the whole store per add made that quadratic),
while a proposal another process added meanwhile is still seen, so it is never stored twice."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from mnemara.instance import Instance
from mnemara.replay.proposals import Proposal, ProposalSource, ProposalStore, make_proposal

REPO = Path(__file__).resolve().parents[2]
_opened: list[str] | None = None  # files opened while a test counts them (see the audit hook)


def _count_opens(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], (str, Path)):
        _opened.append(str(args[0]))


sys.addaudithook(_count_opens)  # audit hooks cannot be removed: it counts only when asked


@pytest.fixture
def opened() -> Iterator[list[str]]:
    global _opened
    _opened = []
    try:
        yield _opened
    finally:
        _opened = None


def proposal(n: int) -> Proposal:
    src = ProposalSource(f"note:2026-12-01.md:{n}", "note", f"memory/2026-12-01.md:{n}",
                         "2026-12-01T10:00:00Z", f"topic {n} recurs")
    return make_proposal("wiki", f"Topic {n}", f"Topic {n}.", "3 notes", [src], "replay",
                         target=f"topic-{n}", created_at="2026-12-04T00:00:00Z")


def test_a_batch_of_adds_reads_each_proposal_file_a_bounded_number_of_times(
        tmp_path: Path, opened: list[str]) -> None:
    store = ProposalStore(Instance("t", tmp_path / "t"))
    for n in range(100):  # a store that already holds 100 proposals
        assert store.add(proposal(n))
    opened.clear()
    for n in range(100, 200):
        assert store.add(proposal(n))
    for n in range(200):
        assert not store.add(proposal(n))  # every one is known, new or old
    reads = [p for p in opened if Path(p).parent == store.dir and Path(p).suffix == ".json"]
    # Before: every add read every stored file (~30,000 reads here); now one per add.
    assert len(reads) <= 2 * 300, len(reads)
    assert len(store.list()) == 200


def test_a_proposal_another_process_added_is_not_stored_again(tmp_path: Path) -> None:
    root = tmp_path / "t"
    store = ProposalStore(Instance("t", root))
    assert store.add(proposal(1))
    assert store.would_add(proposal(2))
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from pathlib import Path
        from mnemara.instance import Instance
        from mnemara.replay.proposals import ProposalStore
        from test_followups_proposal_store import proposal
        print(ProposalStore(Instance("t", Path({str(root)!r}))).add(proposal(2)))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "True", out.stderr
    assert not store.would_add(proposal(2))
    assert store.add(proposal(2)) is False  # the same store object sees the other process's file
    assert sorted(p.target for p in store.list()) == ["topic-1", "topic-2"]


def test_a_file_whose_id_does_not_match_its_fingerprint_is_reported_not_trusted(tmp_path: Path) -> None:
    import json
    store = ProposalStore(Instance("t", tmp_path / "t"))
    p = proposal(1)
    assert store.add(p)
    path = store.dir / f"{p.id}.json"
    data = json.loads(path.read_text())
    data["fingerprint"] = "0" * 64  # a hand edit: the file no longer holds the proposal its name says
    path.write_text(json.dumps(data))
    assert store.list() == [] and [why for _, why in store.damaged()] == [
        f"proposal id {p.id!r} does not match its fingerprint"]
