"""strip_tool_output's default: the strip is held until the budget has to make room, then done
in the same change (store/strip_queue.py). Real SQLite store; the tool through the registry."""

from __future__ import annotations

from mnemara.store import Budget, TurnStore
from mnemara.store import strip_queue
from tests.engine.test_tools import ctx  # noqa: F401  (the ToolContext fixture)
from tests.engine.test_window_tools import BIG, tool_turn, user
from tests.fakes.tool_calls import ok


def big_window(store: TurnStore) -> None:
    user(store, "read the logs")      # 1
    tool_turn(store, "toolu_a", BIG)  # 2
    tool_turn(store, "toolu_b", BIG)  # 3
    user(store, "thanks")             # 4


def room_for(store: TurnStore, spare: int) -> Budget:
    """A token budget `spare` tokens above what the window and a 10-token message need."""
    return Budget(100, sum(r.est_tokens for r in store.costs()) + 10 + spare)


async def test_the_strip_is_held_and_nothing_is_sent_differently_until_then(ctx):  # noqa: F811
    store = ctx.store
    big_window(store)
    before = store.sendable_renderings()
    text = await ok(ctx, "strip_tool_output", {"ids": [2, 3]})
    assert text.startswith("Held 2 large tool results in #2, #3 (")
    assert "the next time the window has to make room" in text
    assert store.sendable_renderings() == before and ctx.notices == []
    assert strip_queue.queued(store) == [2, 3]
    # While everything fits, the held strip waits: the history stays byte-identical.
    assert strip_queue.apply_if_due(store, room_for(store, 5), incoming_tokens=10, low_water=0.75) is None
    assert store.sendable_renderings() == before and strip_queue.queued(store) == [2, 3]


async def test_when_the_budget_must_make_room_the_held_strip_goes_first_and_once(ctx):  # noqa: F811
    store = ctx.store
    big_window(store)
    await ok(ctx, "strip_tool_output", {"ids": [2, 3]})
    budget = room_for(store, -1)  # one token short: an eviction is due
    strip = strip_queue.apply_if_due(store, budget, incoming_tokens=10, low_water=0.75)
    assert strip is not None and strip.turn_ids == [2, 3]
    window = {t.id: t for t in store.window()}
    assert all("stripped" in window[i].blocks[1] for i in (2, 3))
    assert strip_queue.queued(store) == []  # done once; the next turn finds nothing held
    assert list(window) == [1, 2, 3, 4] and "renewed by worker" not in window[2].rendered
    assert strip_queue.applied_notice(strip, 3.5).startswith("the model stripped 2 tool outputs from #2, #3 (")


async def test_the_queue_outlives_the_session_and_ignores_turns_that_left(ctx):  # noqa: F811
    store = ctx.store
    big_window(store)
    await ok(ctx, "strip_tool_output", {"ids": [2]})
    await ok(ctx, "strip_tool_output", {"ids": [3]})
    with TurnStore(ctx.instance.turns_path) as reopened:
        assert strip_queue.queued(reopened) == [2, 3]
    store.evict([2], "test")
    strip = strip_queue.apply_if_due(store, room_for(store, -1), incoming_tokens=10, low_water=0.75)
    assert strip is not None and strip.turn_ids == [3]
    archived, where = store.get_any(2)
    assert where == "archive" and "stripped" not in archived.blocks[1]


async def test_now_strips_at_once(ctx):  # noqa: F811
    store = ctx.store
    ctx.config = ctx.config.replace(strip_min_chars=0)
    big_window(store)
    text = await ok(ctx, "strip_tool_output", {"ids": [2], "now": True})
    assert text.startswith("Stripped 1 tool result in #2")
    assert "stripped" in store.get(2).blocks[1] and strip_queue.queued(store) == []
