"""The graph as a recall signal: with `graph_recall_weight` on, a memory linked to an entity the
message names is lifted and says so ("graph" in its signals); off, or with the graph unreadable,
recall is exactly what it was."""

from __future__ import annotations

from mnemara.graph import Graph
from mnemara.memory import recall
from tests.fakes.tool_calls import ok


async def _notes(ctx) -> dict[str, str]:
    ids = {}
    for key, text in (("vpn", "Ada said the staging deploy needs the VPN up."),
                      ("rollback", "Ada prefers rollbacks over hotfixes when a deploy breaks."),
                      ("timing", "Rollbacks take ten minutes when a deploy breaks on staging.")):
        reply = await ok(ctx, "write_memory", {"text": text})
        ids[key] = reply.split("(id ")[1].rstrip(").")
    ctx.memory_service().drain()  # indexes the notes
    ctx.memory_service().feed_graph()  # and links them in the graph (the chat does both after a turn)
    return ids


def _pick(ctx, weight: float) -> dict[str, dict]:
    config = ctx.config.replace(graph_recall_weight=weight, recall_min_score=0.0, recall_k=10)
    with ctx.memory_service().locked_store() as store:
        picked = recall.pick(ctx.memory_service(), store, config, "What does Ada think when a deploy breaks?")
    return {item["id"]: item for item in picked.block["items"]}


async def test_a_named_entity_lifts_the_memories_linked_to_it(ctx) -> None:
    ids = await _notes(ctx)
    assert Graph(ctx.instance.graph_dir).atoms_for_entity("person", "ada") == [ids["vpn"], ids["rollback"]]
    off = _pick(ctx, 0.0)
    on = _pick(ctx, 0.5)
    assert all("graph" not in item["signals"] for item in off.values())
    for key in ("vpn", "rollback"):
        assert on[ids[key]]["signals"]["graph"] > 0
        assert on[ids[key]]["score"] > off[ids[key]]["score"]
    assert "graph" not in on[ids["timing"]]["signals"]
    assert on[ids["timing"]]["score"] == off[ids["timing"]]["score"]
    order = list(on)
    assert order.index(ids["rollback"]) < order.index(ids["timing"])


async def test_an_unreadable_graph_leaves_recall_as_it_was(ctx) -> None:
    await _notes(ctx)
    off = _pick(ctx, 0.0)
    Graph(ctx.instance.graph_dir).path.write_bytes(b"damaged" * 1000)
    assert _pick(ctx, 0.5) == off


async def test_mnemara_recall_and_rag_query_rank_with_the_graph_too(ctx) -> None:
    # one retrieval everywhere: the CLI's `mnemara recall` (ops) and the model's rag_query
    # see the same graph lift as automatic recall (graph_recall_weight defaults to 0.3)
    from mnemara.ops.memory import recall as ops_recall
    ids = await _notes(ctx)
    question = "What does Ada think when a deploy breaks?"
    result = ops_recall(ctx.memory_service(), [question], k=10)[0]
    signals = {h.atom.id: h.signals for h in result.hits}
    assert signals[ids["rollback"]]["graph"] > 0 and "graph" not in signals[ids["timing"]]
    reply = await ok(ctx, "rag_query", {"question": question})
    line = next(x for x in reply.splitlines() if ids["rollback"] in x)
    assert "graph" in line
