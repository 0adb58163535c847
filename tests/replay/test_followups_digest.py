"""The replay digest's one-line `summary:`, which the chat's start notice shows as written:
each count worded for its number ("1 wiki proposal", "2 near-duplicates archived"), never
"1 patterns"; the digest stays byte-identical across a second `--apply`."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from mnemara.ops import proposals as ops
from mnemara.replay.digest import summary
from tests.replay.replay_setup import make_replay_instance


def test_the_start_notice_shows_the_replay_digests_summary_in_the_singular_and_plural(
        cli: Any, mnemara_home: Path) -> None:
    inst = make_replay_instance()
    out = cli("replay", "-i", "work", "--apply", "--json")
    assert out.exit_code == 0, out.stderr + out.stdout
    digest = json.loads(out.stdout)["digest"]["text"]
    assert "summary: 1 wiki proposal, 1 role amendment, 2 near-duplicates archived\n" in digest
    today = datetime.now(timezone.utc).date()
    line = ops.digest_notice(inst, inst.load_config(), today)
    assert line == (f"last replay {today.isoformat()}: 1 wiki proposal, 1 role amendment, "
                    "2 near-duplicates archived; 2 proposals to review (/proposals)")
    again = cli("replay", "-i", "work", "--apply", "--json")
    assert json.loads(again.stdout)["digest"]["text"] == digest  # same bytes, file untouched


def test_summary_words_each_count_for_its_number() -> None:
    assert summary(wiki_proposals=2, covered=1, role=0, archived=1, facts=1) == (
        "2 wiki proposals, 1 pattern already in the wiki, 1 near-duplicate archived, 1 fact atom")
    assert summary(wiki_proposals=0, covered=3, role=2, archived=0, facts=12) == (
        "3 patterns already in the wiki, 2 role amendments, 12 fact atoms")
    assert summary(wiki_proposals=0, covered=0, role=0, archived=0, facts=0) == \
        "nothing new to consolidate"
