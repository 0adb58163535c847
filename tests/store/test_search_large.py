"""`search` over a store holding multi-megabyte turns: the right hit, with a short snippet.

FTS5's snippet() re-reads a whole text and its cost grows about with the square of it (a 10 MB
turn kept `mnemara search` busy for ten minutes), and it returns whole tokens however long. The
store now asks it only about short texts and snippets long ones from bounded slices. (The time
it takes is measured in benchmarks/bench_search_large.py, not asserted here.)
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from mnemara.store import TurnStore
from mnemara.store.turns import SNIPPET_FTS_MAX_CHARS, SNIPPET_MAX_CHARS, bounded_snippet

WORDS = ["alpha", "beta", "delta", "lorem", "ipsum", "dolor", "sit", "amet", "deploy", "server"]


def text(s: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": s}]


def filler(chars: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    return " ".join(rnd.choice(WORDS) for _ in range(chars // 6))[:chars]


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Small turns, plus a 3 MB turn whose only 'zanzibar' is near its end and a 2 MB turn that is
    one enormous token ('gamma' then two million x's) between two ordinary words."""
    path = tmp_path_factory.mktemp("big") / "turns.sqlite"
    with TurnStore(path) as s:
        for i in range(20):
            s.add_turn("user", text(f"small turn {i} about the server"))
        s.add_turn("user", text(filler(3_000_000) + " the Zanzibar deployment ended " + filler(2_000, 2)))
        s.add_turn("assistant", text("start gamma" + "x" * 2_000_000 + " finish"))
        s.add_turn("user", text("a short one mentioning quokka"))
        s.evict([1, 2, 3], "test")
    return path


def test_a_rare_word_deep_in_a_large_turn_is_found_with_a_short_snippet(big_store: Path) -> None:
    with TurnStore(big_store, readonly=True) as s:
        hits = s.search("zanzibar")
    assert [h.turn_id for h in hits] == [21]
    snip = hits[0].snippet
    assert "[Zanzibar]" in snip and "deployment" in snip
    assert len(snip) <= SNIPPET_MAX_CHARS + 10 and snip.startswith(" … ")


def test_one_enormous_token_gives_a_capped_snippet(big_store: Path) -> None:
    with TurnStore(big_store, readonly=True) as s:
        hits = s.search("finish")
    assert [h.turn_id for h in hits] == [22]
    assert "[finish]" in hits[0].snippet and len(hits[0].snippet) <= SNIPPET_MAX_CHARS + 10


def test_a_common_word_ranks_short_and_long_turns_with_bounded_snippets(big_store: Path) -> None:
    with TurnStore(big_store, readonly=True) as s:
        hits = s.search("server", limit=50)
    ids = {h.turn_id for h in hits}
    assert ids >= {21} and {i for i in range(4, 21)} <= ids  # window and the big one
    assert {h.source for h in hits} == {"window", "archive"}
    for hit in hits:
        assert "[server]" in hit.snippet, hit
        assert len(hit.snippet) <= SNIPPET_MAX_CHARS + 10


def test_porter_stemming_still_finds_and_highlights_in_a_long_text(big_store: Path) -> None:
    """'deploying' matches 'deploy'/'deployment' through stemming; the bounded snippet looks
    for the word's first letters, so the highlight is there too."""
    with TurnStore(big_store, readonly=True) as s:
        hits = {h.turn_id: h for h in s.search("deploying", limit=50)}
    assert 21 in hits and "[deploy" in hits[21].snippet


def test_short_texts_keep_fts5s_own_snippet(tmp_path: Path) -> None:
    body = "intro " * 50 + "the pelican flew over the harbour " + "outro " * 50
    assert len(body) < SNIPPET_FTS_MAX_CHARS
    with TurnStore(tmp_path / "turns.sqlite") as s:
        s.add_turn("user", text(body))
        hit, = s.search("pelican")
    assert hit.snippet.startswith(" … ") and "[pelican]" in hit.snippet and len(hit.snippet) < 200


@pytest.mark.parametrize("query, expect", [
    ("gamma", "[gamma]"), ("GAMMA", "[gamma]"), ("gam", "[gamma]"), ("runs", "[running]"),
    ("nothing here", None)])
def test_bounded_snippet_finds_the_match_in_slices(query: str, expect: str | None) -> None:
    body = filler(500_000) + " we were running the gamma test " + filler(500_000, 3)
    snip = bounded_snippet(body, query)
    assert len(snip) <= SNIPPET_MAX_CHARS + 10
    if expect is None:
        assert "[" not in snip and snip.startswith(body[:50])
    else:
        assert expect in snip


def test_cli_search_on_a_store_with_a_large_turn(cli: Any, make_instance: Any, big_store: Path) -> None:
    inst = make_instance("work")
    inst.turns_path.write_bytes(big_store.read_bytes())
    result = cli("search", "-i", "work", "zanzibar", "--json")
    assert result.exit_code == 0, result.output
    hit, = [json.loads(line) for line in result.stdout.splitlines()]
    assert hit["turn_id"] == 21 and "[Zanzibar]" in hit["snippet"]
    assert len(hit["snippet"]) <= SNIPPET_MAX_CHARS + 10
