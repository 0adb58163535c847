"""Slots on the wire, through the REAL bundled Claude Code CLI and the fake Messages API.

The placement claim of memory/slots.py, measured: with unchanged slots every request extends
the previous one byte for byte and pays for no more uncached input than the same conversation
without slots; a slot change costs the new `<slots>` block and nothing else.

The fake API does not cache, so `CacheModel` (tests/fakes/cache_model.py) replays Anthropic's
documented prompt-cache rule over the recorded requests: a request reads from the cache the
longest prefix (tools, system, then message blocks, at block boundaries, looking back at most 20
blocks from each of its `cache_control` breakpoints) that an earlier request wrote at one of its
breakpoints.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from mnemara.engine.events import TurnFinished
from mnemara.engine.turn import TurnEngine
from mnemara.memory.slots import SlotBook
from mnemara.store.blocks import render_block
from tests.fakes.drive import run_turn as run
from tests.e2e.conftest import CliHome
from tests.fakes.cache_model import CacheModel
from tests.fakes.fake_api import FakeMessagesAPI

pytestmark = pytest.mark.e2e

def our_blocks(body: dict[str, Any]) -> list[str]:
    content = body["messages"][0]["content"]
    return [b["text"] for b in content if b.get("type") == "text" and b["text"].startswith("<turn ")]


@pytest.fixture
def instances(cli_home: CliHome):
    env, home = cli_home.env, cli_home.home
    role = home / "role.md"
    role.write_text("You are the e2e test role. Answer briefly.")
    engines: list[TurnEngine] = []

    def make(name: str) -> TurnEngine:
        inst = cli_home.instance(name, role_doc_path=str(role))
        engine = TurnEngine(inst, env=env)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


SCRIPT = [("Let's plan the release.", "Sure: what ships?"),
          ("The parser rewrite and the new CLI.", "Noted, two items."),
          ("Which goes first?", "The parser rewrite."),
          ("Good. And after that?", "The new CLI.")]


async def _converse(engine: TurnEngine, api: FakeMessagesAPI, before_turn: dict[int, Any]) -> list[dict[str, Any]]:
    start = len(api.requests)
    for n, (message, reply) in enumerate(SCRIPT):
        if n in before_turn:
            before_turn[n](SlotBook(engine.store, engine.config))
        api.enqueue([{"type": "text", "text": reply}])
        done = (await run(engine, message))[-1]
        assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    return api.requests[start:]


async def test_unchanged_slots_cost_no_uncached_input_and_a_change_costs_only_its_block(instances, api) -> None:
    plain = await _converse(instances("plain"), api, {})
    engine = instances("slotted")
    edits = {0: lambda book: (book.set("current_task", "plan the release", "user"),
                              book.set("user_profile", "prefers short answers", "user")),
             3: lambda book: book.set("current_task", "plan the release: parser first, then CLI", "model")}
    slotted = await _converse(engine, api, edits)
    assert len(plain) == len(slotted) == len(SCRIPT)

    # History is byte-identical from request to request: each extends the one before.
    for before, after in zip(slotted, slotted[1:]):
        a, b = our_blocks(before), our_blocks(after)
        assert b[: len(a)] == a and len(b) == len(a) + 2
    # The slots travel at the END of the new message, after the user's words, and only when
    # they changed: in the first request and after the edit, never in between.
    stored = engine.store.window()
    first, changed = stored[0].blocks[-1], stored[6].blocks[-1]
    assert [b["type"] for b in stored[0].blocks] == ["text", "slots"]
    assert [b["type"] for b in stored[2].blocks] == ["text"] and [b["type"] for b in stored[4].blocks] == ["text"]
    assert [b["type"] for b in stored[6].blocks] == ["text", "slots"]
    newest = our_blocks(slotted[3])[-1]
    assert newest.index("Good. And after that?") < newest.index("<slots ") < newest.index("parser first, then CLI")
    assert "<slots" not in system_of(slotted[3])  # never in the system prompt
    # ... and the slot block is the only difference from the same message without slots
    # (apart from the time the turn was written)
    assert _no_times(newest.replace("\n" + render_block(changed), "")) == _no_times(our_blocks(plain[3])[-1])

    # Measured with the cache rule: unchanged slots add no uncached byte; each change adds
    # exactly its rendered block (with the newline that joins it into the turn), as JSON text.
    cache_plain, cache_slotted = CacheModel(), CacheModel()
    costs = [(cache_plain.read(p)[1], cache_slotted.read(s)[1]) for p, s in zip(plain, slotted)]
    assert costs[1][1] == costs[1][0] and costs[2][1] == costs[2][0]
    assert costs[0][1] - costs[0][0] == wire_size("\n" + render_block(first))
    assert costs[3][1] - costs[3][0] == wire_size("\n" + render_block(changed))
    # ... so the cached share of input is at least what it is without slots (the block, once
    # sent, is read from the cache like the rest of the history)
    shares = list(zip(_shares(plain), _shares(slotted)))
    assert all(0 < share_plain <= share_slotted for share_plain, share_slotted in shares[1:3])
    # the history before the new message is read back from the cache in every later request
    cache = CacheModel()
    reads = [cache.read(body)[0] for body in slotted]
    assert reads[0] == 0 and all(r > 0 for r in reads[1:])


def _no_times(text: str) -> str:
    return re.sub(r' at="[^"]*"', ' at=""', text)


def wire_size(text: str) -> int:
    """Bytes `text` takes inside a JSON string on the wire (quotes and newlines escaped)."""
    return len(json.dumps(text)) - 2


def _shares(bodies: list[dict[str, Any]]) -> list[float]:
    cache = CacheModel()
    out = []
    for body in bodies:
        cached, uncached = cache.read(body)
        out.append(cached / (cached + uncached))
    return out


def system_of(body: dict[str, Any]) -> str:
    system = body.get("system")
    return system if isinstance(system, str) else json.dumps(system)
