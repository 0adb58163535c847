"""`replay --synthesize` through the real SDK and the scripted fake Claude Code CLI: the model
(replay_model) drafts the proposal bodies and writes fact atoms for archived conversations,
indexed with pointers to their turns; without --synthesize no model is asked at all; a second
run asks nothing again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mnemara.instance import Instance
from mnemara.store import TurnStore
from tests.fakes.fake_cli import FAKE_CLI_PATH, fake_cli
from tests.replay.replay_setup import make_replay_instance

WIKI_BODY = "# Staging deploys\n\nThe staging host is stg-7 [note:x]; deploy with make deploy."
ROLE_BODY = "## Brevity\n\nKeep answers short and direct."
FACTS = ("- The user's staging server is the host stg-7 (said on 2026-12-05)\n"
         "- Deploys to staging run with make deploy\n"
         "not a fact line")


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    setup = fake_cli(tmp_path / "fake", [[{"text": WIKI_BODY}], [{"text": ROLE_BODY}], [{"text": FACTS}]])
    monkeypatch.setenv("MNEMARA_CLI_PATH", FAKE_CLI_PATH)
    for key, value in setup.env.items():
        monkeypatch.setenv(key, value)
    return setup


def _instance_with_archived_conversation() -> Instance:
    inst = make_replay_instance(replay_model="claude-haiku-test")
    with TurnStore(inst.turns_path) as store:
        store.evict([t.id for t in store.window()], "test")  # the whole conversation left the window
    return inst


def test_synthesize_drafts_bodies_and_fact_atoms_with_the_replay_model(cli: Any, mnemara_home: Path,
                                                                       fake: Any) -> None:
    inst = _instance_with_archived_conversation()
    dry = cli("replay", "-i", "work", "--synthesize")
    assert dry.exit_code == 0, dry.stderr
    assert "fact atoms for 1 blocks of archived turns (turns-0-19)" in dry.stdout
    assert fake.argvs() == []  # a dry run asks no model

    out = cli("replay", "-i", "work", "--apply", "--synthesize", "--json")
    assert out.exit_code == 0, out.stderr + out.stdout
    report = json.loads(out.stdout)
    assert len(fake.argvs()) == 3 and all(fake.flag("--model", i) == "claude-haiku-test" and fake.flag("--tools", i) == "" for i in range(3))
    asked = json.dumps(fake.user_messages()[0])
    assert "note:" in asked and "stg-7" in asked  # the model sees the atoms, with their ids

    proposals = {p.kind: p for p in __import__("mnemara.replay.proposals", fromlist=["x"])
                 .ProposalStore(inst).list()}
    assert proposals["wiki"].body == WIKI_BODY + "\n" and proposals["wiki"].origin == "replay --synthesize"
    assert proposals["role"].body == ROLE_BODY + "\n"
    assert {s.atom_id for s in proposals["wiki"].sources} >= {"turn:1", "turn:2"}

    assert report["written"]["facts"] == ["fact:turns-0-19.1", "fact:turns-0-19.2"]
    with TurnStore(inst.turns_path, readonly=True) as store:
        facts = [json.loads(r[0]) for r in store.conn.execute(
            "SELECT atom FROM manual_atoms WHERE id LIKE 'fact:%' ORDER BY id")]
        last = store.get_any(4)[0].created_at
    assert [f["text"] for f in facts] == [
        "The user's staging server is the host stg-7 (said on 2026-12-05)",
        f"Deploys to staging run with make deploy (said on {last[:10]})"]
    assert all(f["kind"] == "fact" and f["source"] == "turns 1, 2, 3, 4" and f["created_at"] == last
               for f in facts)
    found = json.loads(cli("recall", "-i", "work", "--json", "--kind", "fact",
                           "which server is staging").stdout)
    assert found["hits"][0]["id"] == "fact:turns-0-19.1" and found["hits"][0]["source"] == "turns 1, 2, 3, 4"
    assert "## Facts from archived conversations (2)" in report["digest"]["text"]

    again = json.loads(cli("replay", "-i", "work", "--apply", "--synthesize", "--json").stdout)
    assert len(fake.argvs()) == 3  # nothing new: the model is not asked again
    assert again["written"]["facts"] == [] and again["written"]["proposals"] == []


def test_without_synthesize_templates_and_no_model_call(cli: Any, mnemara_home: Path, fake: Any) -> None:
    inst = _instance_with_archived_conversation()
    out = cli("replay", "-i", "work", "--apply", "--json")
    assert out.exit_code == 0, out.stderr
    assert fake.argvs() == []
    from mnemara.replay.proposals import ProposalStore
    assert {p.origin for p in ProposalStore(inst).list()} == {"replay"}
    assert json.loads(out.stdout)["written"]["facts"] == []


def test_a_model_failure_writes_nothing(cli: Any, mnemara_home: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch, snapshot_tree: Any,
                                        assert_user_error: Any) -> None:
    failing = fake_cli(tmp_path / "failing", [[{"api_error": 401, "message": "invalid x-api-key"}]])
    monkeypatch.setenv("MNEMARA_CLI_PATH", FAKE_CLI_PATH)
    for key, value in failing.env.items():
        monkeypatch.setenv(key, value)
    inst = _instance_with_archived_conversation()
    before = snapshot_tree(inst.root)
    assert_user_error(cli("replay", "-i", "work", "--apply", "--synthesize"),
                      "the model could not draft", "nothing was written")
    assert snapshot_tree(inst.root) == before
