"""Auto-edges: what memory writes add to the graph, applied from the graph outbox.

Every turn, note, wiki section and manual entry reaches `graph_outbox` (turns.sqlite) in its
write's own transaction (a trigger on the index outbox), so a locked or damaged graph never fails
a write: `drain` applies the queue when the graph can be opened, and a failure leaves the rows
queued with a back-off. An atom that links to anything becomes an `atom` node, linked to:

- what its `applies_to` names (`- **applies_to**: ...` in a note written with a payload):
  APPLIES_TO edges to a file, host or project node;
- its wiki page's `tags:`: TAGGED edges to `tag` nodes;
- the people, projects, files, hosts and #tags its text names (`entities.extract_entities`),
  once the same entity is named by a second atom: MENTIONS edges from every atom naming it.

Every auto edge starts at the atom it came from and names it in its properties
(`{"atom": "note:2026-12-05.md:14", "via": "applies_to"}`); its id (`auto:<atom>><entity>`) makes
re-applying an atom (a wiki page rewritten, a drain retried) replace rather than duplicate.
Superseded and deleted atoms lose their node and edges; entity nodes stay.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..index.atoms import Atom
from ..store.db import Transaction
from .entities import KINDS, Entity, candidates, classify, extract_entities, normalise
from .store import Edge, Graph, GraphUnavailable, Node, dumps, utc_now_iso

if TYPE_CHECKING:
    from ..config import Config
    from ..instance import Instance

BATCH = 500
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 300.0
BACKGROUND_LOCK_WAIT = 0.5   # a drain beside a turn never waits long for another process
BACKGROUND_BATCH = 200       # atoms one background round applies (~1 s at most): a backlog (an
                             # import) is taken in over the following turns
SNIPPET_CHARS = 160
_APPLIES_TO = re.compile(r"^- \*\*applies_to\*\*: (.+)$", re.M)


@dataclass(frozen=True)
class FeedReport:
    applied: int = 0
    pending: int = 0           # rows still queued after this drain
    error: str | None = None   # why the rest stayed queued


def explicit_links(atom: Atom) -> list[tuple[Entity, str, str]]:
    """(entity, relationship, via) the atom states itself: its applies_to and its wiki tags."""
    links: list[tuple[Entity, str, str]] = []
    for m in _APPLIES_TO.finditer(atom.text):
        for part in re.split(r"[,;]", m.group(1)):
            entity = classify(part)
            if entity is not None:
                links.append((entity, "APPLIES_TO", "applies_to"))
    if atom.kind == "wiki" and atom.category:
        for tag in atom.category.split(","):
            name = normalise("tag", tag)
            if name:
                links.append((Entity("tag", name), "TAGGED", "tags"))
    seen: set[Entity] = set()
    return [link for link in links if not (link[0] in seen or seen.add(link[0]))]  # type: ignore[func-returns-value]


def is_derived_node(node: Node) -> bool:
    """A node this module makes from memory (an atom, or an entity with only its name), which
    `drain` makes again from the notes: an export need not carry it."""
    if node.label == "atom":
        return True
    name = node.properties.get("name")
    return (node.label in KINDS and set(node.properties) == {"name"}
            and node.id == f"{node.label}:{name}")


def is_derived_edge(edge: Edge) -> bool:
    return edge.id.startswith("auto:")


def _edge_id(atom_id: str, entity: Entity) -> str:
    return f"auto:{atom_id}>{entity.node_id}"


def _merge_entity(conn: Any, entity: Entity, at: str) -> None:
    conn.execute("MERGE (n:Node {id: $id}) ON CREATE SET n.label = $label, n.properties = $props, "
                 "n.created_at = $at", {"id": entity.node_id, "label": entity.kind,
                                        "props": dumps({"name": entity.name}), "at": at})


def atom_properties(atom: Atom) -> dict[str, Any]:
    """What an atom's node holds: where the atom is, and for all but turns (read_turns shows
    those) the start of its text."""
    if atom.kind == "turn":
        return {"kind": "turn", "turn_id": atom.turn_id, "role": atom.role, "time": atom.created_at}
    snippet = " ".join(atom.text.split())
    return {"kind": atom.kind, "source": atom.source, "line": atom.line, "time": atom.created_at,
            "text": snippet if len(snippet) <= SNIPPET_CHARS else snippet[: SNIPPET_CHARS - 1] + "…"}


def _loads_props(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _merge_atom(conn: Any, atom_id: str, properties: dict[str, Any], at: str) -> None:
    conn.execute("MERGE (n:Node {id: $id}) ON CREATE SET n.label = 'atom', n.created_at = $at "
                 "SET n.properties = $props", {"id": atom_id, "props": dumps(properties), "at": at})


def _merge_edge(conn: Any, atom_id: str, entity: Entity, relationship: str, via: str, at: str) -> None:
    conn.execute("MATCH (a:Node {id: $a}), (b:Node {id: $b}) MERGE (a)-[e:Edge {id: $id}]->(b) "
                 "ON CREATE SET e.relationship = $rel, e.properties = $props, e.created_at = $at",
                 {"a": atom_id, "b": entity.node_id, "id": _edge_id(atom_id, entity),
                  "rel": relationship, "props": dumps({"atom": atom_id, "via": via}), "at": at})


def apply_atom(conn: Any, db: sqlite3.Connection, atom_id: str, op: str, atom: Atom | None) -> None:
    """Bring the graph (an open write connection) and graph_mentions up to date with one atom.
    The caller commits `db` after the graph's transaction committed."""
    at = utc_now_iso()
    conn.execute("MATCH (a:Node {id: $id})-[e:Edge]->() WHERE starts_with(e.id, 'auto:') DELETE e",
                 {"id": atom_id})
    db.execute("DELETE FROM graph_mentions WHERE atom_id = ?", (atom_id,))
    if op == "delete" or atom is None or atom.superseded:
        conn.execute("MATCH (a:Node {id: $id}) DETACH DELETE a", {"id": atom_id})
        return
    explicit = explicit_links(atom)
    stated = {e for e, _, _ in explicit}
    mentioned = [e for e in extract_entities(atom.text) if e not in stated]
    mentioned += known_entities(db, candidates(atom.text) - stated - set(mentioned))
    props = atom_properties(atom)
    for entity in stated:  # known from now on: a bare mention elsewhere, or in a message, finds it
        db.execute("INSERT OR IGNORE INTO graph_mentions (entity, atom_id, props) VALUES (?, ?, ?)",
                   (entity.node_id, atom_id, dumps(props)))
    recurring: dict[Entity, list[tuple[str, str]]] = {}
    for entity in mentioned:
        others = [(r[0], r[1]) for r in db.execute(
            "SELECT atom_id, props FROM graph_mentions WHERE entity = ? AND atom_id != ?",
            (entity.node_id, atom_id))]
        if others:
            recurring[entity] = others
        db.execute("INSERT OR IGNORE INTO graph_mentions (entity, atom_id, props) VALUES (?, ?, ?)",
                   (entity.node_id, atom_id, dumps(props)))
    if not explicit and not recurring:
        conn.execute("MATCH (a:Node {id: $id}) DETACH DELETE a", {"id": atom_id})
        return
    _merge_atom(conn, atom_id, props, at)
    for entity, relationship, via in explicit:
        _merge_entity(conn, entity, at)
        _merge_edge(conn, atom_id, entity, relationship, via, at)
    for entity, others in recurring.items():
        _merge_entity(conn, entity, at)
        _merge_edge(conn, atom_id, entity, "MENTIONS", "text", at)
        if len(others) == 1:
            # The entity recurs from now on: the one atom that named it before links too. (With
            # more, they were linked when the second came: relinking them all on every mention
            # would make each write cost as much as the entity is common.)
            other, other_props = others[0]
            _merge_atom(conn, other, _loads_props(other_props), at)
            _merge_edge(conn, other, entity, "MENTIONS", "text", at)


def known_entities(db: sqlite3.Connection, entities: set[Entity]) -> list[Entity]:
    """Those of `entities` some atom already named (a bare "db01" after "host db01")."""
    by_id = {e.node_id: e for e in entities}
    ids = sorted(by_id)
    found: list[Entity] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        found += [by_id[r[0]] for r in db.execute(
            f"SELECT DISTINCT entity FROM graph_mentions WHERE entity IN ({marks})", chunk)]
    return sorted(found)


def _take(db: sqlite3.Connection, limit: int) -> list[tuple[list[int], str, str, Atom | None]]:
    """Up to `limit` atoms' newest queued operation that is due, oldest first."""
    rows = db.execute("SELECT seq, atom_id, op, atom FROM graph_outbox WHERE next_try <= ? "
                      "ORDER BY seq", (time.time(),)).fetchall()
    latest: dict[str, tuple[list[int], str, str | None]] = {}
    for seq, atom_id, op, data in rows:
        if atom_id not in latest and len(latest) >= limit:
            continue
        seqs = latest[atom_id][0] if atom_id in latest else []
        seqs.append(seq)
        latest[atom_id] = (seqs, op, data)
    return [(seqs, atom_id, op, Atom.from_json(json.loads(data)) if data else None)
            for atom_id, (seqs, op, data) in latest.items()]


def resolve_turn(db: sqlite3.Connection, atom_id: str, redact: bool) -> tuple[str, Atom | None] | None:
    """A queued turn as (op, atom): its atom once complete or interrupted (secrets redacted when
    `redact`), a delete once failed, emptied or purged; None while it is pending (completing it
    queues it again)."""
    from ..memory.sources import turn_atom
    from ..store.turns import _COLUMNS, Turn
    turn_id = int(atom_id.partition(":")[2] or 0)
    row = None
    for table in ("turns", "archive"):
        row = db.execute(f"SELECT {_COLUMNS} FROM {table} WHERE id = ?", (turn_id,)).fetchone()
        if row is not None:
            break
    if row is None:
        return "delete", None
    try:
        turn = Turn.from_row(row)
    except (ValueError, TypeError, KeyError):
        return "delete", None  # a damaged row: the store's own checks report it
    atom = turn_atom(turn)
    if atom is None:
        return None if turn.status == "pending" else ("delete", None)
    if redact:
        from ..redact import redact as redact_text
        atom = Atom(**{**atom.__dict__, "text": redact_text(atom.text)})
    return "upsert", atom


def _failed(db: sqlite3.Connection, seqs: list[int], error: str) -> None:
    now = time.time()
    with Transaction(db):
        db.executemany("UPDATE graph_outbox SET attempts = attempts + 1, last_error = ?, "
                       "next_try = ? + min(?, ? * (1 << min(attempts, 12))) WHERE seq = ?",
                       [(error[:500], now, RETRY_MAX_SECONDS, RETRY_BASE_SECONDS, s) for s in seqs])


def pending(db: sqlite3.Connection) -> tuple[int, str | None]:
    """(atoms waiting for the graph, the last error that left one queued)."""
    try:
        count = db.execute("SELECT count(DISTINCT atom_id) FROM graph_outbox").fetchone()[0]
        row = db.execute("SELECT last_error FROM graph_outbox WHERE last_error IS NOT NULL "
                         "ORDER BY seq DESC LIMIT 1").fetchone()
    except sqlite3.OperationalError:
        return 0, None  # a store from before the graph's migration (read-only open)
    return count, row[0] if row else None


def drain(graph: Graph, db: sqlite3.Connection, *, limit: int = BATCH, force: bool = False,
          redact: bool = True, rounds: int | None = None) -> FeedReport:
    """Apply the graph outbox to the graph, `limit` atoms per round, at most `rounds` rounds
    (None: until it is empty). `force`: also rows still backing off after a failure.
    `redact`: the config's `redact` (a turn's text is read here, as the store keeps it).
    Never raises for a graph that cannot be opened: the rows stay queued and the report says why."""
    if force:
        with Transaction(db):
            db.execute("UPDATE graph_outbox SET next_try = 0")
    applied = 0
    done_rounds = 0
    while True:
        if rounds is not None and done_rounds >= rounds:
            return FeedReport(applied, pending(db)[0])
        done_rounds += 1
        items = _take(db, limit)
        if not items:
            return FeedReport(applied, 0)
        try:
            with graph.session(write=True) as conn:
                ready = []
                for seqs, atom_id, op, atom in items:
                    if atom is None and op == "upsert" and atom_id.startswith("turn:"):
                        resolved = resolve_turn(db, atom_id, redact)
                        if resolved is None:  # still pending: its completion queues it again
                            with Transaction(db):
                                db.executemany("DELETE FROM graph_outbox WHERE seq = ?", [(s,) for s in seqs])
                            continue
                        op, atom = resolved
                    ready.append((seqs, atom_id, op, atom))
                # The round in one graph transaction and one SQLite transaction (a commit costs
                # ~3 ms: an import of 5,000 turns links in seconds, not half a minute); if any
                # atom fails, nothing of the round is kept and each is applied on its own.
                if len(ready) > 1:
                    try:
                        _apply(conn, db, ready)
                        applied += len(ready)
                        ready = []
                    except RuntimeError:
                        pass  # nothing of the round was kept: one atom at a time below
                for item in ready:
                    # One graph transaction and one SQLite transaction per atom: a failure on
                    # one (an engine error) leaves it queued and the others applied.
                    try:
                        _apply(conn, db, [item])
                        applied += 1
                    except RuntimeError as exc:
                        _failed(db, item[0], f"graph update failed: {exc}")
        except GraphUnavailable as exc:
            seqs = [s for item in items for s in item[0]]
            _failed(db, seqs, str(exc))
            return FeedReport(applied, pending(db)[0], str(exc))
        if len(items) < limit:
            left, error = pending(db)
            return FeedReport(applied, left, error if left else None)


def _apply(conn: Any, db: sqlite3.Connection,
           items: list[tuple[list[int], str, str, Atom | None]]) -> None:
    """Apply `items` in one graph transaction and one SQLite transaction, their outbox rows
    removed with them; on a RuntimeError both are rolled back (nothing applied) and it is
    raised."""
    db.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("BEGIN TRANSACTION")
        try:
            for _, atom_id, op, atom in items:
                apply_atom(conn, db, atom_id, op, atom)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        db.executemany("DELETE FROM graph_outbox WHERE seq = ?",
                       [(s,) for seqs, *_ in items for s in seqs])
        db.execute("COMMIT")
    except RuntimeError:
        db.execute("ROLLBACK")
        raise


def feed(instance: "Instance", config: "Config", db: sqlite3.Connection | None = None, *,
         lock_wait: float = BACKGROUND_LOCK_WAIT, limit: int | None = None) -> FeedReport | None:
    """One bounded round of the graph outbox for an instance whose graph is on (None when it is
    off), on `db` or a store connection of its own. For callers that must not fail because of
    the graph (the chat's background drain): every expected failure is reported, not raised."""
    if not getattr(config, "graph_enabled", True) or not instance.turns_path.exists():
        return None
    graph = Graph(instance.graph_dir, lock_wait=lock_wait)
    redact = bool(getattr(config, "redact", True))
    limit = BACKGROUND_BATCH if limit is None else limit
    try:
        if db is not None:
            return drain(graph, db, limit=limit, redact=redact, rounds=1)
        from ..store.turns import TurnStore
        with TurnStore(instance.turns_path) as store:
            return drain(graph, store.conn, limit=limit, redact=redact, rounds=1)
    except (sqlite3.Error, OSError) as exc:
        return FeedReport(0, 0, f"graph update failed: {type(exc).__name__}: {exc}")


def queue_all(db: sqlite3.Connection, atoms: list[Atom]) -> int:
    """Queue atoms for the graph (a rebuild of the auto-edges from the sources)."""
    with Transaction(db):
        db.executemany("INSERT INTO graph_outbox (atom_id, op, atom) VALUES (?, 'upsert', ?)",
                       [(a.id, json.dumps(a.to_json(), ensure_ascii=False)) for a in atoms])
    return len(atoms)
