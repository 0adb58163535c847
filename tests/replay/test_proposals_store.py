"""The proposal store replay and the model write through: idempotent by fingerprint (a rejected
proposal is never stored again), found by an id prefix, decided once, written whole or not at
all, and never a traceback over a damaged file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mnemara.errors import MnemaraError
from mnemara.instance import Instance
from mnemara.replay.proposals import (Proposal, ProposalSource, ProposalStore, make_fingerprint,
                                      make_proposal)

REPO = Path(__file__).resolve().parents[2]


def source(n: int, text: str = "staging host is stg-7") -> ProposalSource:
    return ProposalSource(f"note:2026-12-0{n}.md:1", "note", f"memory/2026-12-0{n}.md:1",
                          f"2026-12-0{n}T10:00:00Z", f"{text} ({n})")


def wiki(slug: str = "deploy/staging", atoms: tuple[int, ...] = (1, 2, 3),
         created_at: str = "2026-12-04T00:00:00Z", body: str = "The staging host is stg-7.") -> Proposal:
    return make_proposal("wiki", "Staging", body, f"{len(atoms)} notes name stg-7",
                         [source(n) for n in atoms], "replay", target=slug, created_at=created_at)


@pytest.fixture
def store(tmp_path: Path) -> ProposalStore:
    return ProposalStore(Instance("t", tmp_path / "t"))


def test_fingerprint_ignores_order_and_wording_but_not_target_or_atoms() -> None:
    assert make_fingerprint("wiki", "a", ["x", "y"]) == make_fingerprint("wiki", "a", ["y", "x"])
    assert wiki(body="one wording").fingerprint == wiki(body="another").fingerprint
    assert make_fingerprint("wiki", "a", ["x"]) != make_fingerprint("wiki", "b", ["x"])
    assert make_fingerprint("wiki", "a", ["x"]) != make_fingerprint("role", "a", ["x"])
    assert wiki(atoms=(1, 2)).fingerprint != wiki(atoms=(1, 2, 3)).fingerprint
    p = wiki()
    assert p.id == "p" + p.fingerprint[:10] and p.status == "pending"


def test_add_is_idempotent_by_fingerprint_in_any_status(store: ProposalStore) -> None:
    p = wiki()
    assert store.would_add(p) and not store.dir.exists()  # asking writes nothing (dry runs)
    assert store.add(p) is True
    assert store.add(wiki(body="redrafted, same atoms")) is False
    assert not store.would_add(p) and store.has_fingerprint(p.fingerprint)
    store.decide(p.id, "rejected")
    assert store.add(p) is False and store.would_add(p) is False  # never proposed again
    assert [(q.id, q.status) for q in store.list()] == [(p.id, "rejected")]
    assert len(list(store.dir.glob("*.json"))) == 1


def test_files_are_private_and_round_trip(store: ProposalStore) -> None:
    p = wiki()
    store.add(p)
    path = store.dir / f"{p.id}.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.dir.stat().st_mode) == 0o700
    assert store.get(p.id) == p
    assert json.loads(path.read_text())["sources"][0]["atom_id"] == "note:2026-12-01.md:1"


def test_list_newest_first_and_by_status(store: ProposalStore) -> None:
    old = wiki("a", (1,), "2026-12-01T00:00:00Z")
    new = wiki("b", (2,), "2026-12-03T00:00:00Z")
    mid = wiki("c", (3,), "2026-12-02T00:00:00Z")
    for p in (old, new, mid):
        store.add(p)
    assert [p.target for p in store.list()] == ["b", "c", "a"]
    store.decide(mid.id, "accepted")
    assert [p.target for p in store.list("pending")] == ["b", "a"]
    assert [p.target for p in store.list("accepted")] == ["c"]
    with pytest.raises(MnemaraError, match="unknown status"):
        store.list("maybe")


def test_get_by_prefix_unknown_and_ambiguous(store: ProposalStore) -> None:
    made = [wiki(f"page{n}", (n,)) for n in range(1, 18)]
    for p in made:
        store.add(p)
    p = made[0]
    assert store.get(p.id[:6]) == p and store.get(p.id[1:7]) == p  # the "p" is optional
    with pytest.raises(MnemaraError, match="no proposal 'pzzz'"):
        store.get("pzzz")
    # 17 ids, 16 hex digits: some first digit is shared, and that prefix is ambiguous.
    firsts = [q.id[1] for q in made]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(MnemaraError, match=r"matches \d+ proposals .*give more of the id"):
        store.get("p" + shared)


def test_decide_once_with_a_time(store: ProposalStore) -> None:
    p = wiki()
    store.add(p)
    decided = store.decide(p.id[:5], "accepted")
    assert decided.status == "accepted" and decided.decided_at
    assert store.get(p.id) == decided
    with pytest.raises(MnemaraError, match="already accepted"):
        store.decide(p.id, "rejected")
    with pytest.raises(MnemaraError, match="'accepted' or 'rejected'"):
        store.decide(p.id, "pending")


def test_damaged_files_are_skipped_and_reported(store: ProposalStore) -> None:
    good = wiki()
    store.add(good)
    (store.dir / "p0000000000.json").write_text("{not json")
    (store.dir / "p1111111111.json").write_text(json.dumps({"id": "p1111111111"}))
    assert store.list() == [good]
    bad = {path.name: reason for path, reason in store.damaged()}
    assert set(bad) == {"p0000000000.json", "p1111111111.json"}
    assert "missing" in bad["p1111111111.json"]


def test_a_kill_mid_write_leaves_no_proposal_and_no_half_file(tmp_path: Path) -> None:
    """SIGKILL while the JSON is being written: the store shows nothing, the next add works."""
    root = tmp_path / "t"
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from mnemara import fsutil
        from mnemara.instance import Instance
        from mnemara.replay import proposals as P
        real = fsutil.atomic_output
        class Dying:
            def __init__(self, fh): self.fh = fh
            def write(self, text):
                self.fh.write(text[: len(text) // 2]); self.fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        from contextlib import contextmanager
        @contextmanager
        def dying(path, **kw):
            with real(path, **kw) as fh:
                yield Dying(fh)
        P.atomic_output = dying
        src = P.ProposalSource("note:a:1", "note", "memory/a.md:1", "2026-12-01T00:00:00Z", "x")
        P.ProposalStore(Instance("t", __import__("pathlib").Path({str(root)!r}))).add(
            P.make_proposal("wiki", "T", "body", "r", [src], "replay", target="t"))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == -9, done.stderr
    store = ProposalStore(Instance("t", root))
    assert store.list() == [] and store.damaged() == []
    assert not [n for n in os.listdir(store.dir) if n.endswith(".json")]
    src = ProposalSource("note:a:1", "note", "memory/a.md:1", "2026-12-01T00:00:00Z", "x")
    assert store.add(make_proposal("wiki", "T", "body", "r", [src], "replay", target="t"))


def test_add_refuses_an_id_that_is_not_its_fingerprints(store: ProposalStore) -> None:
    from dataclasses import replace
    with pytest.raises(ValueError, match="does not match"):
        store.add(replace(wiki(), id="p0123456789"))
    assert not store.dir.exists()
