"""`mnemara replay`: the dry run writes nothing and shows what --apply writes; --apply archives
duplicates (searchable, never recalled), drafts proposals with provenance, writes the digest, and
a second --apply changes nothing; clustering says how it compared and never reports a silent
"0 patterns"; thresholds and --days; the instance lock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from tests.replay.replay_setup import OTHER, SELF, STAGING, make_replay_instance, old_note


def _json(cli: Any, *args: str) -> dict[str, Any]:
    result = cli("replay", "-i", "work", "--json", *args)
    assert result.exit_code == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


def _day_file(inst: Instance) -> Path:
    (path,) = sorted(p for p in inst.memory_dir.glob("*.md"))
    return path


def _note_ids(inst: Instance) -> dict[str, str]:
    from mnemara.memory.notes import iter_notes
    from mnemara.memory.sources import note_id
    return {note_id(n.path, n.line): n.body for n in iter_notes(inst.memory_dir)}


def test_dry_run_leaves_the_tree_byte_identical_and_shows_exactly_what_apply_writes(
        cli: Any, mnemara_home: Path, snapshot_tree: Any) -> None:
    inst = make_replay_instance()
    before = snapshot_tree(inst.root)
    assert any(k.startswith("index/") for k in before) and any(k.startswith("graph/") for k in before)

    text = cli("replay", "-i", "work")
    assert text.exit_code == 0, text.stderr
    dry = _json(cli)
    assert snapshot_tree(inst.root) == before  # index, graph, turn store, notes: nothing written
    assert "dry run: nothing was written" in text.stdout
    assert "similarity: vector similarity: vectors of hash:64" in text.stdout

    new = [p["proposal"] for p in dry["patterns"] if p["proposal"] and p["proposal"]["new"]]
    assert {p["kind"] for p in new} == {"wiki", "role"}
    for p in new:
        assert f"proposals/{p['id']}.json" in text.stdout and p["body"].splitlines()[0] in text.stdout
    assert [m["note"] for m in dry["moves"]] == ["note:" + _day_file(inst).name + ":4",
                                                 "note:" + _day_file(inst).name + ":7"]

    applied = _json(cli, "--apply")
    assert sorted(applied["written"]["proposals"]) == sorted(p["id"] for p in new)
    assert applied["written"]["archived"] == [m["note"] for m in dry["moves"]]
    assert (inst.root / dry["digest"]["path"]).read_text() == dry["digest"]["text"]
    for p in new:  # the stored proposal is the one the dry run printed
        stored = json.loads((inst.root / "proposals" / f"{p['id']}.json").read_text())
        assert {k: stored[k] for k in ("kind", "title", "body", "target", "fingerprint", "sources")} == \
               {k: p[k] for k in ("kind", "title", "body", "target", "fingerprint", "sources")}


def test_apply_archives_duplicates_keeping_every_other_note_id_and_records_the_keeper(
        cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance()
    ids_before = _note_ids(inst)
    day = _day_file(inst).name
    _json(cli, "--apply")

    ids_after = _note_ids(inst)
    gone = {f"note:{day}:4", f"note:{day}:7"}
    assert set(ids_after) == set(ids_before) - gone  # no other note moved line, so no id changed
    assert all(ids_after[i] == ids_before[i] for i in ids_after)
    text = _day_file(inst).read_text()
    assert text.count(STAGING[0]) == 1 and STAGING[1] not in text
    archive = (inst.memory_dir / "archive" / day).read_text()
    assert archive.count(STAGING[0]) == 1 and archive.count(STAGING[1]) == 1
    assert f"id=note:{day}:4 kept=note:{day}:1" in archive and f"id=note:{day}:7 kept=note:{day}:1" in archive
    digest = next((inst.root / "sleep").glob("*.md")).read_text()
    assert f"`note:{day}:1` keeps `note:{day}:4`, `note:{day}:7`" in digest


def test_archived_notes_stay_searchable_but_are_never_recalled(cli: Any, mnemara_home: Path) -> None:
    from mnemara.memory.recall import pick
    from mnemara.memory.service import MemoryService
    from mnemara.store import TurnStore
    inst = make_replay_instance()
    day = _day_file(inst).name
    _json(cli, "--apply")

    found = cli("recall", "-i", "work", "--json", "-k", "20", "--kind", "note", "deploys staging host stg-7 make deploy")
    hits = {h["id"]: h for h in json.loads(found.stdout)["hits"]}
    assert hits[f"note:{day}:4"]["source"] == f"memory/archive/{day}"  # searchable, marked archived

    config = inst.load_config()
    service = MemoryService(inst, config)
    try:
        with TurnStore(inst.turns_path) as store:
            chosen = pick(service, store, config, "Deploys to the staging host stg-7 run with make deploy")
    finally:
        service.close()
    recalled = {h.atom.id for h in chosen.hits}
    assert f"note:{day}:1" in recalled  # the note that kept the duplicates
    assert not recalled & {f"note:{day}:4", f"note:{day}:7"}


def test_a_second_apply_with_no_new_memory_changes_nothing(cli: Any, mnemara_home: Path,
                                                           snapshot_tree: Any) -> None:
    inst = make_replay_instance()
    first = _json(cli, "--apply")
    assert first["written"]["proposals"] and first["written"]["archived"]
    before = snapshot_tree(inst.root)
    second = _json(cli, "--apply")
    assert second["written"] == {"proposals": [], "archived": [], "facts": [], "index_requeued": [],
                                 "digest": None}
    assert second["digest"]["text"] == first["digest"]["text"]
    assert snapshot_tree(inst.root) == before
    assert "nothing new to write" in cli("replay", "-i", "work", "--apply").stdout


def test_every_proposal_carries_its_provenance(cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance()
    day = _day_file(inst).name
    _json(cli, "--apply")
    stored = [json.loads(p.read_text()) for p in (inst.root / "proposals").glob("p*.json")]
    wiki = next(p for p in stored if p["kind"] == "wiki")
    by_id = {s["atom_id"]: s for s in wiki["sources"]}
    assert set(by_id) == {f"note:{day}:1", f"note:{day}:4", f"note:{day}:7", f"note:{day}:10",
                          "turn:1", "turn:2"}
    assert by_id[f"note:{day}:10"]["where"] == f"memory/{day}:10"
    assert by_id["turn:1"]["where"] == "turn 1" and by_id["turn:1"]["kind"] == "turn"
    assert by_id[f"note:{day}:10"]["excerpt"] == STAGING[3]
    assert all(s["created_at"].endswith("Z") for s in wiki["sources"])
    assert "6 atoms (4 notes, 2 turns)" in wiki["rationale"] and wiki["origin"] == "replay"
    assert wiki["target"].startswith("replay/")
    role = next(p for p in stored if p["kind"] == "role")
    assert [s["excerpt"] for s in role["sources"]] == SELF


def test_lexical_similarity_without_an_embedder_and_it_says_so(cli: Any, mnemara_home: Path) -> None:
    make_replay_instance(rag_embedder="none")
    out = cli("replay", "-i", "work")
    assert out.exit_code == 0, out.stderr
    assert "similarity: lexical similarity: TF-IDF over content words (no embedder configured" in out.stdout
    data = _json(cli)
    assert data["similarity"]["mode"] == "lexical"
    wiki = next(p for p in data["patterns"] if p["kind"] == "wiki")
    assert {"turn:1", "turn:2"} < set(wiki["members"])
    assert len(data["moves"]) == 2  # the same words are a duplicate in any mode


def test_a_dead_embedder_falls_back_to_lexical_and_says_why(cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance(rag_enabled=False)
    inst.save_config(inst.load_config().replace(rag_enabled=True, rag_embedder="ollama",
                                                rag_embed_url="http://127.0.0.1:9"))
    data = _json(cli)
    assert data["similarity"]["mode"] == "lexical"
    assert data["similarity"]["note"].startswith("embedder unavailable")
    assert data["patterns"]


def test_nothing_comparable_fails_with_one_line_instead_of_zero_patterns(
        cli: Any, make_instance: Any, assert_user_error: Any, snapshot_tree: Any) -> None:
    from mnemara.ops import memory as ops
    inst = make_instance("work", rag_embedder="none")
    for text in ("!!! ???", "12345 67890", "... --- ..."):
        ops.note(inst, text)
    before = snapshot_tree(inst.root)
    assert_user_error(cli("replay", "-i", "work"), "cannot compare the 3 atoms")
    assert snapshot_tree(inst.root) == before
    assert_user_error(cli("replay", "-i", "work", "--apply"), "cannot compare the 3 atoms")
    assert {k: v for k, v in snapshot_tree(inst.root / "memory").items()} == \
        {k.removeprefix("memory/"): v for k, v in before.items() if k.startswith("memory/")}
    assert not (inst.root / "sleep").exists() and not (inst.root / "proposals").exists()


def test_no_pattern_is_reported_with_how_it_was_looked_for(cli: Any, make_instance: Any) -> None:
    from mnemara.ops import memory as ops
    inst = make_instance("work", rag_embedder="none")
    for text in OTHER:
        ops.note(inst, text)
    out = cli("replay", "-i", "work")
    assert out.exit_code == 0
    assert "similarity: lexical similarity" in out.stdout
    assert "patterns: 0 (at least 3 atoms within similarity" in out.stdout
    assert "none: no atom had 2 others that close" in out.stdout


def test_threshold_sets_how_many_similar_atoms_make_a_pattern(cli: Any, mnemara_home: Path) -> None:
    make_replay_instance()
    sizes = {t: [len(p["members"]) for p in _json(cli, "--threshold", str(t))["patterns"]]
             for t in (3, 4, 6, 7)}
    assert sorted(sizes[3]) == [3, 6] and sizes[4] == [6] and sizes[6] == [6] and sizes[7] == []
    inst = Instance.named("work")
    inst.save_config(inst.load_config().replace(replay_default_threshold=4))
    assert [p["kind"] for p in _json(cli)["patterns"]] == ["wiki"]


def test_days_bounds_what_is_read(cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance(rag_enabled=False)
    for i in range(3):
        old_note(inst, f"Backups of the billing database run nightly at two with pgbackrest {i}", 10)
    assert not any("billing" in " ".join(p["terms"]) for p in _json(cli, "--days", "7")["patterns"])
    data = _json(cli, "--days", "14")
    assert data["atoms"]["notes"] == 12
    assert any("billing" in p["terms"] or "backups" in p["terms"] for p in data["patterns"])


def test_apply_waits_for_a_chat_turn_and_gives_up_with_one_line(
        cli: Any, mnemara_home: Path, snapshot_tree: Any, assert_user_error: Any) -> None:
    from mnemara.lock import InstanceLock
    inst = make_replay_instance()
    before = snapshot_tree(inst.root)
    turn = InstanceLock(inst.root, inst.name, exclusive=False, purpose="chat turn").acquire(0)
    try:
        result = cli("replay", "-i", "work", "--apply", env={"MNEMARA_LOCK_WAIT": "0.2"})
        assert_user_error(result, "instance 'work' is busy", "chat turn")
        assert cli("replay", "-i", "work").exit_code == 0  # a dry run reads alongside the chat
    finally:
        turn.release()
    assert snapshot_tree(inst.root) == before


def test_a_pattern_a_wiki_page_covers_gets_no_proposal(cli: Any, mnemara_home: Path) -> None:
    from mnemara.ops import memory as ops
    inst = make_replay_instance()
    ops.wiki_write(inst, "ops/staging", "# Staging\n\nThe staging host is stg-7; deploys run with "
                   "make deploy on stg-7, and fail when the disk on stg-7 is full.\n")
    data = _json(cli)
    wiki = next(p for p in data["patterns"] if p["kind"] == "wiki")
    assert wiki["covered_by"] == "ops/staging" and wiki["proposal"] is None
    assert "covered by wiki page `ops/staging`" in data["digest"]["text"]


def test_a_damaged_graph_is_reported_and_replay_goes_on(cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance()
    for path in (inst.root / "graph").iterdir():
        if path.is_file() and not path.name.endswith(".lock"):
            path.write_bytes(b"\x00garbage" * 512)
    data = _json(cli, "--apply")
    assert data["graph"].startswith("graph not read")
    assert data["written"]["proposals"]


def test_unknown_instance_is_one_line(cli: Any, mnemara_home: Path, assert_user_error: Any) -> None:
    assert_user_error(cli("replay", "-i", "nope"), "no instance named 'nope'")


@pytest.mark.parametrize("flag", ["--days", "--threshold"])
def test_bad_numbers_are_refused(cli: Any, mnemara_home: Path, flag: str) -> None:
    make_replay_instance(rag_enabled=False)
    result = cli("replay", "-i", "work", flag, "0")
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert not (Instance.named("work").root / "sleep").exists()
    assert os.listdir(Instance.named("work").root / "memory") == [_day_file(Instance.named("work")).name]


def test_patterns_are_augmented_with_shared_entities_graph_links_and_causes(
        cli: Any, mnemara_home: Path) -> None:
    from mnemara.ops import memory as ops
    inst = make_replay_instance()
    elsewhere = ops.note(inst, "Ada rebooted stg-7 after lunch on Tuesday").id  # same host, other topic
    assert cli("graph", "-i", "work").exit_code == 0  # applies the writes queued for the graph
    data = _json(cli)
    wiki = next(p for p in data["patterns"] if p["kind"] == "wiki")
    assert elsewhere not in wiki["members"]
    assert {"entity": "host:stg-7", "members": 4} in wiki["entities"]
    assert elsewhere in wiki["related"]  # linked to the pattern through the graph
    assert wiki["causes"] == [STAGING[3]]
    assert "named together: host:stg-7 (4x)" in wiki["proposal"]["rationale"]
    assert f"## Linked in the graph\n- {elsewhere}" in wiki["proposal"]["body"]


def test_vectors_come_from_the_index_or_in_batches_never_one_request_per_atom(
        cli: Any, make_instance: Any) -> None:
    from tests.fakes.fake_ollama import FakeOllama
    from mnemara.ops import memory as ops
    with FakeOllama(models={"nomic-embed-text": 8}) as server:
        inst = make_instance("work", rag_embedder="ollama", rag_embed_url=server.url)
        for i in range(150):  # queued, not indexed yet: replay must embed them itself
            ops.note(inst, f"note number {i} about topic {i % 7} and detail {i % 11}")
        server.requests.clear()
        data = _json(cli)
        assert data["similarity"]["mode"] == "vector"
        assert data["similarity"]["detail"].endswith("(0 from the index, 150 embedded now)")
        assert sorted(len(r["input"]) for r in server.requests) == [22, 64, 64]  # batches of 64

        assert _json(cli, "--apply")["similarity"]["detail"].endswith("(150 from the index, 0 embedded now)")
        server.requests.clear()
        assert _json(cli)["similarity"]["detail"].endswith("(150 from the index, 0 embedded now)")
        assert server.requests == []  # every vector read from the index
