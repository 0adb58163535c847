"""Auto-edges: memory writes link their atoms to the entities they name, through the graph outbox.
A graph that cannot be opened never fails the write; its queue is applied once it can."""

from __future__ import annotations

from mnemara.graph import Graph
from mnemara.graph.entities import Entity, extract_entities
from mnemara.graph.feed import drain, pending
from tests.fakes.tool_calls import ok


def edges_to(graph: Graph, node_id: str) -> set[tuple[str, str, str]]:
    edges, _ = graph.edges_of(node_id)
    return {(e.from_id, e.relationship, e.properties.get("via")) for e, _, _ in edges}


async def test_applies_to_links_the_note_to_what_it_names(ctx) -> None:
    reply = await ok(ctx, "write_memory", {"text": "Deploys need the VPN up first.", "category": "lesson",
                                           "payload": {"applies_to": "stg-7.internal, src/deploy.sh"}})
    note = reply.split("(id ")[1].rstrip(").")
    await ok(ctx, "graph_match", {})  # any graph tool applies the queue first
    graph = Graph(ctx.instance.graph_dir)
    assert edges_to(graph, "host:stg-7.internal") == {(note, "APPLIES_TO", "applies_to")}
    assert edges_to(graph, "file:src/deploy.sh") == {(note, "APPLIES_TO", "applies_to")}
    edge = graph.edges_of(note)[0][0][0]
    assert edge.properties["atom"] == note  # the edge points back to the atom it came from
    assert graph.atoms_for_entity("host", "STG-7.internal") == [note]


async def test_wiki_tags_link_every_section_to_its_tag(ctx) -> None:
    await ok(ctx, "wiki_write", {"path": "deploy/staging",
                                 "content": "---\ntags: [deploy, Ops]\n---\n# Staging\nsteps\n## Rollback\nmore"})
    await ok(ctx, "graph_match", {})
    graph = Graph(ctx.instance.graph_dir)
    assert graph.atoms_for_entity("tag", "ops") == ["wiki:deploy/staging#1", "wiki:deploy/staging#2"]
    # Rewriting the page with other tags moves the links: no stale edge is left behind.
    await ok(ctx, "wiki_write", {"path": "deploy/staging", "content": "---\ntags: [infra]\n---\n# Staging\nnew"})
    await ok(ctx, "graph_match", {})
    assert graph.atoms_for_entity("tag", "ops") == []
    assert graph.atoms_for_entity("tag", "infra") == ["wiki:deploy/staging#1"]


async def test_an_entity_becomes_a_node_once_it_recurs_across_notes(ctx) -> None:
    first = await ok(ctx, "write_memory", {"text": "Ada said the cache on host db01 is too small."})
    await ok(ctx, "graph_match", {})
    graph = Graph(ctx.instance.graph_dir)
    assert graph.get_node("host:db01") is None  # named once: no node yet
    await ok(ctx, "write_memory", {"text": "Restarted db01 after the disk filled; Ada said thanks."})
    await ok(ctx, "graph_match", {})
    ids = [r.split("(id ")[1].rstrip(").") for r in [first]]
    atoms = graph.atoms_for_entity("host", "db01")
    assert len(atoms) == 2 and atoms[0] == ids[0]
    assert graph.atoms_for_entity("person", "ada") == atoms
    assert all(via == "text" and rel == "MENTIONS" for _, rel, via in edges_to(graph, "host:db01"))
    # The two notes are now two hops apart through what they share.
    assert [n.id for n, _ in graph.shortest_path(atoms[0], atoms[1])][1] in {"host:db01", "person:ada"}


async def test_a_superseded_note_leaves_the_graph(ctx) -> None:
    reply = await ok(ctx, "write_memory", {"text": "Deploys go to stg-7.internal.",
                                           "payload": {"applies_to": "stg-7.internal"}})
    old = reply.split("(id ")[1].rstrip(").")
    await ok(ctx, "graph_match", {})
    graph = Graph(ctx.instance.graph_dir)
    assert graph.atoms_for_entity("host", "stg-7.internal") == [old]
    await ok(ctx, "update_memory", {"id": old, "text": "Deploys go to stg-8.internal."})
    await ok(ctx, "graph_match", {})
    assert graph.get_node(old) is None and graph.atoms_for_entity("host", "stg-7.internal") == []


async def test_a_broken_graph_never_fails_the_write_and_catches_up_later(ctx) -> None:
    await ok(ctx, "graph_add_node", {"label": "person"})  # the graph exists
    graph = Graph(ctx.instance.graph_dir)
    good = graph.path.read_bytes()
    graph.path.write_bytes(b"\x00damaged" * 1000)
    reply = await ok(ctx, "write_memory", {"text": "Check the backups.",
                                           "payload": {"applies_to": "backup.example.com"}})
    assert reply.startswith("Saved a 'note' note")
    report = drain(graph, ctx.store.conn, force=True)
    assert report.applied == 0 and report.pending == 1 and "damaged" in report.error
    assert pending(ctx.store.conn)[1] and "damaged" in pending(ctx.store.conn)[1]
    graph.path.write_bytes(good)
    report = drain(graph, ctx.store.conn, force=True)
    assert report.applied == 1 and report.pending == 0 and report.error is None
    assert len(graph.atoms_for_entity("host", "backup.example.com")) == 1


async def test_the_background_drain_feeds_the_graph_in_bounded_rounds(ctx, monkeypatch) -> None:
    monkeypatch.setattr("mnemara.graph.feed.BACKGROUND_BATCH", 2)
    for n in range(3):
        await ok(ctx, "write_memory", {"text": f"note {n}", "payload": {"applies_to": "billing"}})
    service = ctx.memory_service()
    service.feed_graph()  # what a chat does after each turn, beside the index drain
    graph = Graph(ctx.instance.graph_dir)
    assert len(graph.atoms_for_entity("project", "billing")) == 2  # one round: the rest next turn
    service.feed_graph()
    assert len(graph.atoms_for_entity("project", "billing")) == 3


def test_extractor_finds_people_projects_files_hosts_and_tags() -> None:
    text = ("Ada said the deploy of ./src/app.py to stg-7.internal failed; ssh deploy@db01 worked. "
            "See https://ci.example.com/run/5 for project Apollo. #ops @bob\nCaroline: and/or 1/2")
    assert extract_entities(text) == [
        Entity("person", "ada"), Entity("file", "src/app.py"),
        Entity("host", "stg-7.internal"), Entity("host", "db01"), Entity("host", "ci.example.com"), Entity("project", "apollo"),
        Entity("tag", "ops"), Entity("person", "bob"), Entity("person", "caroline")]
    assert extract_entities("Then I went home. Monday is fine, thanks!") == []


def test_applies_to_values_are_classified() -> None:
    from mnemara.graph.entities import classify
    assert classify("stg-7") == Entity("host", "stg-7")
    assert classify("db.example.com") == Entity("host", "db.example.com")
    assert classify("./src/app.py") == Entity("file", "src/app.py")
    assert classify("Billing Service") == Entity("project", "billing service")
    assert classify("  ") is None


async def test_turns_that_name_the_same_entity_are_linked_without_their_text(ctx) -> None:
    store = ctx.store
    first = store.add_turn("user", [{"type": "text", "text": "The deploy to host stg-7 failed again."}])
    store.add_turn("assistant", [{"type": "text", "text": "Then roll back; ghp_" + "a" * 36 + " is the token."}])
    third = store.add_turn("user", [{"type": "text", "text": "stg-7 is back up."}])
    ctx.memory_service().feed_graph()
    graph = Graph(ctx.instance.graph_dir)
    assert graph.atoms_for_entity("host", "stg-7") == [f"turn:{first.id}", f"turn:{third.id}"]
    node = graph.get_node(f"turn:{first.id}")
    assert node.properties == {"kind": "turn", "turn_id": first.id, "role": "user",
                               "time": first.created_at}
    assert "ghp_" not in str(graph.dump())


async def test_one_atom_the_graph_refuses_stays_queued_and_the_rest_of_its_round_is_linked(
        ctx, monkeypatch) -> None:
    # a round is applied in one transaction; when one atom fails, the round is rolled back and
    # each atom applied on its own, so only the failing one waits for a retry
    from mnemara.graph import feed
    ids = []
    for n in range(4):
        reply = await ok(ctx, "write_memory", {"text": f"Step {n}.", "category": "lesson",
                                               "payload": {"applies_to": "stg-7.internal"}})
        ids.append(reply.split("(id ")[1].rstrip(")."))
    real = feed.apply_atom

    def apply_atom(conn, db, atom_id, op, atom):
        if atom_id == ids[2]:
            raise RuntimeError("Binder exception: simulated")
        return real(conn, db, atom_id, op, atom)

    monkeypatch.setattr(feed, "apply_atom", apply_atom)
    graph = Graph(ctx.instance.graph_dir)
    store = ctx.memory_service().store()
    report = drain(graph, store.conn)
    assert report.applied == 3 and report.pending == 1 and "simulated" in report.error
    assert graph.atoms_for_entity("host", "stg-7.internal") == sorted(ids[:2] + ids[3:])
    monkeypatch.setattr(feed, "apply_atom", real)
    assert drain(graph, store.conn, force=True).pending == 0
    assert graph.atoms_for_entity("host", "stg-7.internal") == sorted(ids)
