"""/edit and /regen on the wire (the real bundled CLI, the fake Messages API on 127.0.0.1): the
request that replaces the last exchange repeats every earlier block byte for byte, so the cached
prefix survives; only the last block differs, and the old exchange is not sent."""

from __future__ import annotations

import pytest

from mnemara.engine.events import TurnFinished
from mnemara.ui.commands import dispatch
from tests.e2e.test_real_cli import our_blocks, setup  # noqa: F401

pytestmark = pytest.mark.e2e


async def finish(events) -> TurnFinished:
    done = [e async for e in events][-1]
    assert isinstance(done, TurnFinished) and done.status == "complete", done.error
    return done


async def test_regen_and_edit_keep_the_history_prefix_byte_identical(setup, api) -> None:  # noqa: F811
    _, make, _ = setup
    engine = make(rag_enabled=False)
    for message, reply in (("What is a kiwi?", "A bird."), ("How big is it?", "Chicken-sized.")):
        api.enqueue([{"type": "text", "text": reply}])
        await finish(engine.run(message))
    api.enqueue([{"type": "text", "text": "About the size of a chicken."}])
    await finish((await dispatch(engine, "/regen")).events)
    api.enqueue([{"type": "text", "text": "Up to 3.3 kg."}])
    await finish((await dispatch(engine, "/edit How heavy is it?")).events)

    asked, regen, edited = (our_blocks(b) for b in api.requests[1:4])
    assert regen[:-1] == asked[:-1] == edited[:-1]  # the history: byte for byte, every time
    assert "How big is it?" in regen[-1] and "How heavy is it?" in edited[-1]
    assert not any("Chicken-sized." in b for b in regen + edited)  # the old reply is not sent
    assert not any("About the size" in b or "How big" in b for b in edited)
    assert [t.text for t in engine.store.window()] == ["What is a kiwi?", "A bird.",
                                                        "How heavy is it?", "Up to 3.3 kg."]
    assert engine.store.archived_count() == 4  # both replaced exchanges, kept in the archive
